//! Heap held per discovered Consul instance: `cargo run --release -p trawl-benches
//! --example consul_memory`. 1,000 services × 10 instances are discovered through the
//! real agent (Consul discovery against the fake agent's catalog model); the live heap
//! after the sync, less the live heap before it, divided by the instances. Two jobs:
//! `targets` keeps every target (one scrape loop each), `discovery only` drops them all
//! by relabeling (the provider's watches and the groups, nothing downstream).

use trawl_benches::consul_sd::{Run, catalog};
use trawl_benches::live_heap::{LiveHeap, live};

#[global_allocator]
static A: LiveHeap = LiveHeap;

const SERVICES: usize = 1_000;
const PER: usize = 10;

#[allow(clippy::print_stdout)]
fn main() {
    let c = catalog(SERVICES, PER);
    for (label, extra) in [
        ("targets", ""),
        (
            "discovery only",
            "  keep_dropped_targets: 1\n  relabel_configs: [{action: drop, regex: '.*', source_labels: [__address__]}]\n",
        ),
    ] {
        let mut r = Run::new(c.clone(), extra);
        // The catalog model is the fake server's, not the agent's: counted out.
        let before = live();
        let n = r.settle();
        // Watches blocked on their indexes, as in steady state.
        r.tick(2);
        let after = live();
        let per = (after - before) as f64 / (SERVICES * PER) as f64;
        println!("{label}: {n} targets, {per:.0} bytes of heap per instance");
        drop(r);
    }
}
