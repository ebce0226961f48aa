//! Heap held per discovered pod: `cargo run --release -p trawl-benches --example
//! k8s_memory`. 10 000 pods with 3 ports each in 500 namespaces are listed through the
//! real agent (Kubernetes discovery against the fake API server's cluster); the live heap
//! after the sync, less the live heap before it, divided by the pods. Two jobs:
//! `targets` keeps every target (3 scrape loops per pod), `discovery only` drops them all
//! by relabeling (the informer's store and the groups, nothing downstream); `store` is
//! the informer's store alone: the same pods decoded into the same map of records.

use trawl_benches::kube_sd::{Run, cluster};
use trawl_benches::live_heap::{LiveHeap, live};
use trawl_core::discovery::kubernetes::objects::Resource;

#[global_allocator]
static A: LiveHeap = LiveHeap;

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
        let before = live();
        let n = r.sync();
        let after = live();
        let per = (after - before) as f64 / PODS as f64;
        println!("{label}: {n} targets, {per:.0} bytes of heap per pod");
        drop(r);
    }
    let pages: Vec<String> = c.objects_of("Pod").iter().map(|p| p.to_string()).collect();
    let before = live();
    let mut store = std::collections::BTreeMap::new();
    for p in &pages {
        let raw = serde_json::value::RawValue::from_string(p.clone()).expect("json");
        let o = Resource::Pods.decode(&raw).expect("a pod");
        store.insert(o.meta().key(), o);
    }
    let after = live();
    println!(
        "store: {} pods, {:.0} bytes of heap per pod",
        store.len(),
        (after - before) as f64 / PODS as f64
    );
}
