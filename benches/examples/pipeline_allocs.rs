//! Counts heap allocations of a repeat scrape (warm series cache) through the pipeline:
//! `cargo run --release -p trawl-benches --example pipeline_allocs`. A cache hit must not
//! allocate per sample; what remains per scrape is the batch and the parser.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use trawl_benches::{bodies, scrape};

/// Counts allocation calls.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` with layout `l`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[allow(clippy::print_stdout)]
fn main() {
    for (label, body) in [
        ("node_exporter", bodies::node_exporter()),
        ("flat_100k", bodies::flat(100_000)),
    ] {
        let n = bodies::samples(&body);
        let mut t = scrape::Target::new();
        // First scrape fills the cache; the second settles vector capacities.
        t.scrape(body.as_bytes());
        t.scrape(body.as_bytes());
        let before = ALLOCS.load(Ordering::Relaxed);
        let runs = 10;
        for _ in 0..runs {
            let r = t.scrape(body.as_bytes());
            assert!(r.result.is_ok());
        }
        let per = (ALLOCS.load(Ordering::Relaxed) - before) as f64 / runs as f64;
        println!(
            "{label}: {n} samples, {per:.1} allocations per repeat scrape ({:.5} per sample)",
            per / n as f64
        );
    }
}
