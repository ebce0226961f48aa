//! Native histograms against classic histograms of the same observations (issue 19):
//! 1,000 series of 1,000 latency-like observations, as protobuf bodies.
//!
//! * `pipeline/classic` — the classic histograms (`_count`, `_sum`, 12 buckets: 14
//!   samples per series) through a repeat scrape of the whole pipeline;
//! * `pipeline/native` — the same observations as native histograms of schema 3
//!   (`scrape_native_histograms: true`): one histogram per series;
//! * `pipeline/nhcb` — the classic body converted to custom buckets
//!   (`convert_classic_histograms_to_nhcb: true`).
//!
//! Throughput is in series (histograms). Before the timings, the WAL bytes of one
//! repeat scrape's batch are printed for each: the records as written (samples or
//! histogram records) and snappy-compressed, as the WAL stores them.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trawl_benches::{histograms, scrape};
use trawl_core::exposition::Format;
use trawl_core::scrape::pipeline::Batch;
use trawl_core::wal::record;

const SERIES: usize = 1000;

/// The WAL records of a batch's samples and histograms: (bytes raw, bytes compressed).
fn wal_bytes(b: &Batch) -> (usize, usize) {
    let mut recs = Vec::new();
    let mut rec = Vec::new();
    record::samples(&mut rec, &b.samples);
    recs.push(rec);
    let mut kinds: Vec<u8> = b
        .histograms
        .iter()
        .map(|h| record::histogram_kind(&h.h))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    for k in kinds {
        let mut rec = Vec::new();
        record::histograms(&mut rec, k, b.histograms.iter());
        recs.push(rec);
    }
    let raw = recs.iter().map(Vec::len).sum();
    let mut enc = snap::raw::Encoder::new();
    let compressed = recs
        .iter()
        .map(|r| {
            enc.compress_vec(r)
                .map_or(r.len(), |c| c.len().min(r.len()))
        })
        .sum();
    (raw, compressed)
}

fn bench(c: &mut Criterion) {
    let classic = histograms::classic(SERIES);
    let native = histograms::native(SERIES);
    let cases = [
        ("classic", "", &classic),
        ("native", "    scrape_native_histograms: true\n", &native),
        (
            "nhcb",
            "    convert_classic_histograms_to_nhcb: true\n",
            &classic,
        ),
    ];
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.sample_size(30);
    for (name, job, body) in cases {
        let mut t = scrape::Target::with_job(job);
        assert!(t.scrape_as(Format::Protobuf, body).result.is_ok());
        let again = t.scrape_as(Format::Protobuf, body);
        assert!(again.result.is_ok());
        let (raw, compressed) = wal_bytes(&again.batch);
        eprintln!(
            "{name}: body {} B, {} samples + {} histograms per scrape, WAL {raw} B ({:.1} B/series), snappy {compressed} B ({:.1} B/series)",
            body.len(),
            again.batch.samples.len(),
            again.batch.histograms.len(),
            raw as f64 / SERIES as f64,
            compressed as f64 / SERIES as f64
        );
        g.bench_function(name, |b| {
            b.iter(|| t.scrape_as(Format::Protobuf, black_box(body)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
