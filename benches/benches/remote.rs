//! Remote write's queue (issue #22): what a sample costs between the WAL record and the
//! compressed request.
//!
//! * `queue/samples` — a repeat scrape of 100 targets × 1 000 series (the shape of
//!   `benches/whole-process` at `--targets 100 --series 1000`): one samples record per
//!   target handed to `Queue::handle_record`, every request the queue makes encoded
//!   (labels from the interned pairs, samples, snappy) and acknowledged. Series carry
//!   seven labels with the external one, as the whole-process run's do.
//! * `encode/put_timeseries` (labels encoded beforehand) and `encode/snappy` — the two halves of a request alone, for
//!   2 000 series of one sample (the default `max_samples_per_send`).
//!
//! Throughput is in samples.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trawl_core::config::{Config, ParseOptions, RemoteWriteConfig};
use trawl_core::labels::Labels;
use trawl_core::remote::encode::{RwSample, compress, encode_labels, put_timeseries_encoded};
use trawl_core::remote::queue::{Queue, SendOutcome, WalPos};
use trawl_core::scrape::pipeline::{Point, SeriesRef};
use trawl_core::time::{Instant, Now, UnixNanos};
use trawl_core::wal::record;

const TARGETS: u64 = 100;
const SERIES: u64 = 1000;

fn config() -> Arc<RemoteWriteConfig> {
    let text = "global:\n  external_labels: {bench_agent: trawl}\nremote_write:\n  - url: http://127.0.0.1:1/api/v1/write\n";
    // A fixed, valid configuration.
    let c = Config::parse(text, &ParseOptions::for_path("bench.yml")).expect("valid config");
    Arc::new(c.remote_write[0].clone())
}

fn at(ms: u64) -> Now {
    Now::new(
        Instant(ms * 1_000_000),
        UnixNanos(1_800_000_000_000_000_000 + ms as i64 * 1_000_000),
    )
}

fn labels(target: u64, i: u64) -> Labels {
    let path = format!("/api/v1/item/{i}");
    let instance = format!("127.1.0.{}:8080", target + 1);
    Labels::from_pairs([
        ("__name__", "bench_metric"),
        ("code", "200"),
        ("instance", instance.as_str()),
        ("job", "bench"),
        ("method", "GET"),
        ("path", path.as_str()),
    ])
}

fn series_ref(target: u64, i: u64) -> SeriesRef {
    SeriesRef(target * SERIES + i + 1)
}

fn series_record(target: u64) -> Vec<u8> {
    let ls: Vec<(SeriesRef, Labels)> = (0..SERIES)
        .map(|i| (series_ref(target, i), labels(target, i)))
        .collect();
    let mut out = Vec::new();
    record::series(&mut out, ls.iter().map(|(r, l)| (*r, l)));
    out
}

fn samples_record(target: u64, k: i64) -> Vec<u8> {
    let points: Vec<Point> = (0..SERIES)
        .map(|i| Point {
            series: series_ref(target, i),
            t: 1_800_000_000_000 + 1000 * k,
            v: (i as f64 * 1.5).to_bits(),
        })
        .collect();
    let mut out = Vec::new();
    record::samples(&mut out, &points);
    out
}

fn ok() -> SendOutcome<'static> {
    SendOutcome::Status {
        code: 204,
        retry_after: None,
        body: "",
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue");
    g.throughput(Throughput::Elements(TARGETS * SERIES));
    g.bench_function("samples", |b| {
        let mut q = Queue::new(
            config(),
            Labels::from_pairs([("bench_agent", "trawl")]),
            None,
            1,
        );
        let mut offset = 0u64;
        let mut pos = || {
            offset += 1;
            WalPos { segment: 0, offset }
        };
        for t in 0..TARGETS {
            q.handle_record(at(0), pos(), &series_record(t));
        }
        let records: Vec<Vec<u8>> = (0..TARGETS).map(|t| samples_record(t, 0)).collect();
        let mut ms = 0u64;
        b.iter(|| {
            ms += 1000;
            let mut bytes = 0usize;
            for r in &records {
                q.handle_record(at(ms), pos(), r);
                while let Some(s) = q.poll_transmit() {
                    bytes += s.body.len();
                    q.handle_response(at(ms), s.id, ok());
                }
            }
            black_box(bytes)
        });
    });
    g.finish();

    let mut g = c.benchmark_group("encode");
    let n = 2000u64;
    g.throughput(Throughput::Elements(n));
    let sets: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut l = Vec::new();
            encode_labels(
                &mut l,
                labels(i / SERIES, i % SERIES)
                    .iter()
                    .chain([("bench_agent", "trawl")]),
            );
            l
        })
        .collect();
    let mut body = Vec::new();
    g.bench_function("put_timeseries", |b| {
        b.iter(|| {
            body.clear();
            for (i, l) in sets.iter().enumerate() {
                put_timeseries_encoded(
                    &mut body,
                    l,
                    &[RwSample {
                        t: 1_800_000_000_000,
                        v: (i as f64 * 1.5).to_bits(),
                    }],
                );
            }
            black_box(body.len())
        });
    });
    let mut enc = snap::raw::Encoder::new();
    let mut z = Vec::new();
    g.bench_function("snappy", |b| {
        b.iter(|| {
            // The body is far below snappy's 4 GiB limit.
            compress(&mut enc, &body, &mut z).expect("compressible");
            black_box(z.len())
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
