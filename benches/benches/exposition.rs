//! Exposition parsing and the per-scrape pipeline (issue #4), against the two crates a
//! Rust user would otherwise reach for, on the same bodies in the same run:
//!
//! * `parse/<body>/trawl` — trawl's streaming parser: every entry produced, labels
//!   checked but not decoded (a repeat scrape never needs them);
//! * `parse/<body>/trawl+labels` — the same, also decoding every sample's labels;
//! * `parse/<body>/prometheus-parse` — `prometheus_parse::Scrape::parse` (owned strings
//!   and maps, as that crate returns them);
//! * `parse/<body>/openmetrics-parser` — `openmetrics_parser::prometheus::parse_prometheus`;
//! * `pipeline/<body>` — a repeat scrape through trawl's whole pipeline: parse, series
//!   cache hit, staleness bookkeeping, report series, one batch.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trawl_benches::{bodies, scrape};
use trawl_core::exposition::{BodyParser, Entry, Format};

fn trawl_parse(body: &[u8], decode: bool) -> (usize, f64) {
    let mut p = BodyParser::new(Format::PromText);
    let (mut n, mut sum) = (0usize, 0.0);
    let mut sink = |e: Entry<'_>| -> Result<(), ()> {
        if let Entry::Sample(s) = e {
            n += 1;
            sum += s.value;
            if decode {
                for (k, v) in s.labels() {
                    black_box((k, v));
                }
            }
        }
        Ok(())
    };
    // One chunk: the body as it sits in the shell's buffer.
    let _ = p.feed(body, &mut sink);
    let _ = p.finish(&mut sink);
    (n, sum)
}

fn bench(c: &mut Criterion) {
    let node = bodies::node_exporter();
    let flat = bodies::flat(100_000);
    for (label, body) in [("node_exporter", &node), ("flat_100k", &flat)] {
        let n = bodies::samples(body);
        assert_eq!(trawl_parse(body.as_bytes(), true).0, n);
        let mut g = c.benchmark_group(format!("parse/{label}"));
        g.throughput(Throughput::Bytes(body.len() as u64));
        if n > 10_000 {
            g.sample_size(20);
        }
        g.bench_function("trawl", |b| {
            b.iter(|| trawl_parse(black_box(body.as_bytes()), false))
        });
        g.bench_function("trawl+labels", |b| {
            b.iter(|| trawl_parse(black_box(body.as_bytes()), true))
        });
        g.bench_function("prometheus-parse", |b| {
            b.iter(|| {
                let lines = black_box(body).lines().map(|l| Ok(l.to_owned()));
                prometheus_parse::Scrape::parse(lines).map(|s| s.samples.len())
            })
        });
        g.bench_function("openmetrics-parser", |b| {
            b.iter(|| {
                openmetrics_parser::prometheus::parse_prometheus(black_box(body))
                    .map(|e| e.families.len())
            })
        });
        g.finish();

        // The pipeline on a repeat scrape (warm cache), per sample.
        let mut g = c.benchmark_group("pipeline");
        g.throughput(Throughput::Elements(n as u64));
        if n > 10_000 {
            g.sample_size(20);
        }
        let mut target = scrape::Target::new();
        let first = target.scrape(body.as_bytes());
        assert!(first.result.is_ok());
        assert_eq!(first.batch.samples.len(), n + 5);
        g.bench_function(label, |b| {
            b.iter(|| {
                black_box(
                    target
                        .scrape(black_box(body.as_bytes()))
                        .batch
                        .samples
                        .len(),
                )
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
