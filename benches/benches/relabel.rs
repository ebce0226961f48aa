//! Relabel and finalise one Kubernetes-style target (fixture in `trawl_benches::k8s`),
//! against a straightforward implementation of the same rules measured in the same run.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use trawl_benches::k8s::{CONFIG, naive, pod_labels};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::labels::{Labels, LabelsBuilder};
use trawl_core::target::{Populated, populate};

fn bench(c: &mut Criterion) {
    let config = Config::parse(CONFIG, &ParseOptions::for_path("bench.yml")).expect("valid");
    let job = &config.scrape_configs[0];
    assert!(job.sd_configs[0].static_groups().is_some());
    let pairs = pod_labels();
    assert_eq!(
        pairs
            .iter()
            .filter(|(n, _)| n.starts_with("__meta_"))
            .count(),
        39
    );
    let target = Labels::from_pairs(pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())));
    let group = Labels::empty();

    // Check the result once so the bench measures real work.
    let mut lb = LabelsBuilder::new();
    let Ok(Populated::Active(t)) = populate(&target, &group, job, &mut lb) else {
        panic!("target should be active")
    };
    assert_eq!(&*t.url, "http://10.1.2.3:9102/metrics");
    let public = t.public_labels();
    assert_eq!(public.get("namespace"), Some("payments"));
    assert_eq!(public.get("team"), Some("payments"));
    assert_eq!(public.get("pod_template_hash"), None);
    let naive_rules = naive::rules();
    let (nl, nurl) = naive::process(&pairs, &naive_rules).expect("kept");
    assert_eq!(nurl, &*t.url);
    assert_eq!(nl.get("team").map(String::as_str), Some("payments"));

    let mut g = c.benchmark_group("k8s_target");
    g.bench_function("trawl_relabel_finalise", |b| {
        let mut lb = LabelsBuilder::with_capacity(64);
        b.iter(|| black_box(populate(black_box(&target), &group, job, &mut lb)))
    });
    g.bench_function("trawl_relabel_finalise_hash", |b| {
        let mut lb = LabelsBuilder::with_capacity(64);
        b.iter(
            || match populate(black_box(&target), &group, job, &mut lb) {
                Ok(Populated::Active(t)) => black_box(t.hash()),
                _ => 0,
            },
        )
    });
    g.bench_function("naive_btreemap_regex", |b| {
        b.iter(|| black_box(naive::process(black_box(&pairs), &naive_rules)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
