//! Heap held per discovered Consul instance: `cargo run --release -p trawl-benches
//! --example consul_memory`. 1,000 services × 10 instances are discovered through the
//! real agent (Consul discovery against the fake agent's catalog model); the live heap
//! after the sync, less the live heap before it, divided by the instances. Two jobs:
//! `targets` keeps every target (one scrape loop each), `discovery only` drops them all
//! by relabeling (the provider's watches and the groups, nothing downstream).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

use trawl_benches::consul_sd::{Run, catalog};

/// Tracks live heap bytes.
struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as i64 - l.size() as i64, Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` with layout `l`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

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
        let before = LIVE.load(Ordering::Relaxed);
        let n = r.settle();
        // Watches blocked on their indexes, as in steady state.
        r.tick(2);
        let after = LIVE.load(Ordering::Relaxed);
        let per = (after - before) as f64 / (SERVICES * PER) as f64;
        println!("{label}: {n} targets, {per:.0} bytes of heap per instance");
        drop(r);
    }
}
