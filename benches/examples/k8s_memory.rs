//! Heap held per discovered pod: `cargo run --release -p trawl-benches --example
//! k8s_memory`. 10 000 pods with 3 ports each in 500 namespaces are listed through the
//! real agent (Kubernetes discovery against the fake API server's cluster); the live heap
//! after the sync, less the live heap before it, divided by the pods. Two jobs:
//! `targets` keeps every target (3 scrape loops per pod), `discovery only` drops them all
//! by relabeling (the informer's store and the groups, nothing downstream); `store` is
//! the informer's store alone: the same pods decoded into the same map of records.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

use trawl_benches::kube_sd::{Run, cluster};
use trawl_core::discovery::kubernetes::objects::Resource;

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

const PODS: usize = 10_000;

#[allow(clippy::print_stdout)]
fn main() {
    let c = cluster(PODS, 500, 3);
    for (label, extra) in [
        ("targets", ""),
        (
            "discovery only",
            "  keep_dropped_targets: 1\n  relabel_configs: [{action: drop, regex: '.*', source_labels: [__address__]}]\n",
        ),
    ] {
        let mut r = Run::with_job(&c, extra);
        let before = LIVE.load(Ordering::Relaxed);
        let n = r.sync();
        let after = LIVE.load(Ordering::Relaxed);
        let per = (after - before) as f64 / PODS as f64;
        println!("{label}: {n} targets, {per:.0} bytes of heap per pod");
        drop(r);
    }
    let pages: Vec<String> = c.objects_of("Pod").iter().map(|p| p.to_string()).collect();
    let before = LIVE.load(Ordering::Relaxed);
    let mut store = std::collections::BTreeMap::new();
    for p in &pages {
        let raw = serde_json::value::RawValue::from_string(p.clone()).expect("json");
        let o = Resource::Pods.decode(&raw).expect("a pod");
        store.insert(o.meta().key(), o);
    }
    let after = LIVE.load(Ordering::Relaxed);
    println!(
        "store: {} pods, {:.0} bytes of heap per pod",
        store.len(),
        (after - before) as f64 / PODS as f64
    );
}
