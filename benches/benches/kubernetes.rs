//! Kubernetes discovery's core cost (issue 18), through the real Agent against the fake
//! API server's cluster answered inline:
//!
//! * `initial_list_10k_pods_3_ports` — 10 000 pods with 3 ports each in 500 namespaces:
//!   20 list pages decoded, 10 000 groups built, 30 000 targets relabeled and their
//!   loops scheduled;
//! * `watch_batch_100_pods_relabeled` — 1 % of those pods change a label: one watch
//!   chunk of 100 `MODIFIED` events decoded, 100 groups rebuilt, diffed and delivered,
//!   300 loops replaced (goal: under 2 ms);
//! * `watch_batch_100_pods_unchanged_labels` — 100 `MODIFIED` events that change
//!   nothing a label shows (a status heartbeat): decoded, 100 groups rebuilt and found
//!   equal, nothing delivered — discovery's own cost per batch.

use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use trawl_benches::kube_sd::{Run, churn, cluster};

const PODS: usize = 10_000;
const NAMESPACES: usize = 500;
const PORTS: usize = 3;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("kubernetes_sd");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    let mut k = cluster(PODS, NAMESPACES, PORTS);
    let mut first = Run::new(&k);
    assert_eq!(first.sync(), PODS * PORTS);
    g.bench_function("initial_list_10k_pods_3_ports", |b| {
        b.iter_batched(
            || Run::new(&k),
            |mut r| {
                assert_eq!(r.sync(), PODS * PORTS);
                r
            },
            BatchSize::PerIteration,
        )
    });
    // Two batches relabeling the same 100 pods back and forth: each is a real change.
    let a = churn(&mut k, 0, PODS / 100, NAMESPACES, PORTS, "v2");
    let b2 = churn(&mut k, 0, PODS / 100, NAMESPACES, PORTS, "v1");
    let mut flip = false;
    g.sample_size(50);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("watch_batch_100_pods_relabeled", |b| {
        b.iter(|| {
            flip = !flip;
            first.feed_watch(if flip { &a } else { &b2 });
        })
    });
    assert_eq!(first.agent.targets().len(), PODS * PORTS);
    let same = churn(
        &mut k,
        0,
        PODS / 100,
        NAMESPACES,
        PORTS,
        if flip { "v2" } else { "v1" },
    );
    let before = first.agent.stats().sd.updates;
    g.bench_function("watch_batch_100_pods_unchanged_labels", |b| {
        b.iter(|| first.feed_watch(&same))
    });
    assert_eq!(first.agent.stats().sd.updates, before, "nothing delivered");
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
