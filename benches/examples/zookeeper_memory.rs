//! Heap held per discovered ZooKeeper member: `cargo run --release -p trawl-benches
//! --example zookeeper_memory`. 10,000 serverset members are discovered through the real
//! agent (a session against the tests' server model); the agent's heap after the sync
//! (the live heap less what stays once the agent is dropped: the server model, whose
//! watches grew too) less the agent's heap before it, divided by the members. Two
//! jobs: `targets` keeps every target (one scrape loop each), `discovery only` drops them
//! all by relabeling (the session, the tree cache with every member's data, the groups).

use trawl_benches::live_heap::{LiveHeap, live};
use trawl_benches::zk_sd::{Run, server};

#[global_allocator]
static A: LiveHeap = LiveHeap;

const MEMBERS: usize = 10_000;

#[allow(clippy::print_stdout)]
fn main() {
    for (label, extra) in [
        ("targets", ""),
        (
            "discovery only",
            "  keep_dropped_targets: 1\n  relabel_configs: [{action: drop, regex: '.*', source_labels: [__address__]}]\n",
        ),
    ] {
        let s = server(MEMBERS);
        let base = live();
        let mut r = Run::new(s, extra);
        let agent_before = live() - base;
        let n = r.settle();
        let total = live();
        let s = r.into_server();
        let agent_after = total - live();
        let per = (agent_after - agent_before) as f64 / MEMBERS as f64;
        println!("{label}: {n} targets, {per:.0} bytes of heap per member");
        drop(s);
    }
}
