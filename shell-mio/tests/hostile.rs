//! The hostile-input suite against the daemon (issue 16): targets, discovery files and
//! API clients that misbehave, with bounded memory, an answering API, timely scrapes of
//! healthy targets alongside and a readable WAL asserted each time. The same scenarios
//! run against trawl-tokio in `shell-tokio/tests/hostile.rs`.

mod common;

use common::*;

#[test]
fn endless_bodies_are_cut_at_their_limits() {
    let d = TempDir::new("endless");
    scenario::endless_bodies_are_cut_at_their_limits(&d.0, &mut daemon);
}
