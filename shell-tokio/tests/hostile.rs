//! The hostile-input suite against trawl-tokio (issue 16): the daemon's scenarios
//! (`shell-mio/tests/hostile.rs`) with the agent embedded in this process. The tests
//! here take turns, so the process's resident memory is one agent's.

#[path = "../../shell-mio/tests/common/mod.rs"]
mod common;
mod embedded;

use std::sync::Mutex;

use common::{Shell, TempDir, scenario};
use embedded::embedded_alone;

/// One agent at a time in this process.
static ALONE: Mutex<()> = Mutex::new(());

#[test]
fn endless_bodies_are_cut_at_their_limits() {
    let _one = ALONE.lock().unwrap_or_else(|p| p.into_inner());
    let d = TempDir::new("tokio-endless");
    scenario::endless_bodies_are_cut_at_their_limits(&d.0, &mut embedded_alone);
}

#[test]
fn hostile_discovery_files_are_refused_and_the_rest_goes_on() {
    let _one = ALONE.lock().unwrap_or_else(|p| p.into_inner());
    let d = TempDir::new("tokio-sdfiles");
    scenario::hostile_discovery_files_are_refused_and_the_rest_goes_on(
        &d.0,
        &mut embedded_alone,
        &mut |_: &dyn Shell| {},
    );
}

#[test]
fn a_decompression_bomb_is_parsed_in_slices() {
    let _one = ALONE.lock().unwrap_or_else(|p| p.into_inner());
    let d = TempDir::new("tokio-bomb");
    scenario::a_decompression_bomb_is_parsed_in_slices(&d.0, &mut embedded_alone);
}
