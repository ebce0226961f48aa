//! Discovery → pools at fleet scale (issue #3): 100 000 targets in 1 000 file SD groups
//! with Kubernetes relabel rules, through the real Agent.
//!
//! * `initial_sync` — a new agent lists the directory, reads and parses the 1 000 files,
//!   relabels 100 000 targets, builds the pool and schedules 100 000 loops;
//! * `update_1pct` — 10 files change (1 000 targets move to new addresses): inotify-style
//!   change events, a listing, 10 reads, relabeling of those 10 groups only, 1 000 loops
//!   stopped and 1 000 started;
//! * `reload_no_change` — the same configuration applied again;
//! * `reload_sample_limit` — a reload that changes a reusable field: every target is
//!   re-derived and keeps its loop (the O(all) work Prometheus does on *every* sync).

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use trawl_benches::fleet::{self, Shell};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("fleet_100k");
    g.sample_size(10);

    let s = Shell::start();
    assert_eq!(s.agent.targets().len(), fleet::GROUPS * fleet::PER_GROUP);
    drop(s);

    g.bench_function("initial_sync", |b| {
        b.iter_batched(
            || {
                (0..fleet::GROUPS)
                    .map(|g| (fleet::name(g), fleet::file(g, 0)))
                    .collect()
            },
            Shell::start_with,
            BatchSize::PerIteration,
        )
    });

    let mut s = Shell::start();
    let changed: Vec<usize> = (0..10).map(|i| i * 97).collect();
    let versions: Vec<Vec<Vec<u8>>> = (0..2)
        .map(|v| changed.iter().map(|g| fleet::file(*g, 1 + v)).collect())
        .collect();
    let mut version = 0;
    g.bench_function("update_1pct", |b| {
        b.iter(|| {
            version = 1 - version;
            s.rewrite(&changed, &versions[version]);
        })
    });
    assert_eq!(s.agent.targets().len(), fleet::GROUPS * fleet::PER_GROUP);
    let relabeled = s.agent.pools()[0].stats.entries_relabeled;
    eprintln!("entries relabeled over all runs: {relabeled}");

    g.bench_function("reload_no_change", |b| {
        b.iter_batched(fleet::config, |c| s.reload(c), BatchSize::SmallInput)
    });

    let mut limit = 0u64;
    g.bench_function("reload_sample_limit", |b| {
        b.iter_batched(
            || {
                limit += 1;
                let mut c = fleet::config();
                c.scrape_configs[0].limits.sample_limit = limit;
                c
            },
            |c| s.reload(c),
            BatchSize::SmallInput,
        )
    });
    assert_eq!(s.agent.targets().len(), fleet::GROUPS * fleet::PER_GROUP);
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
