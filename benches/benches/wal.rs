//! The local WAL (issue #5): encoding and writing scrapes of 1 000 series.
//!
//! * `encode/samples` — one samples record for a repeat scrape (1 000 samples): what
//!   dominates a steady state;
//! * `encode/series+samples` — a first scrape: the series record (1 000 label sets of
//!   five labels) and the samples record;
//! * `segment/raw`, `segment/snappy` — the samples record framed into pages (CRC-32C per
//!   fragment), uncompressed and snappy-compressed;
//! * `write/<shm|disk>/<fsync-off|fsync-1s>/<raw|snappy>` — `Wal::append` of groups of
//!   ten repeat scrapes to real files (encoding, framing, compression, `write(2)`,
//!   128 MiB segments synced when full, retention at 512 MiB with checkpoints), without
//!   further syncing and with an fsync whenever a second has passed; on `/dev/shm` (a
//!   tmpfs: the CPU cost) and on the temp directory's disk;
//! * `write/<shm|disk>/bytes-only` — the baseline: the bytes the uncompressed WAL writes
//!   for the same samples, written to 128 MiB files synced when full, without encoding.
//!
//! Throughput is in samples.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trawl_core::labels::Labels;
use trawl_core::scrape::pipeline::{Batch, Point, SeriesRef};
use trawl_core::wal::record;
use trawl_core::wal::segment::SegmentWriter;
use trawl_io::storage::{Wal, WalOptions};

const SERIES: usize = 1000;

fn labels(target: u64, i: usize) -> Labels {
    let series = i.to_string();
    let pod = format!("web-{}", i % 37);
    let instance = format!("10.1.2.{target}:9100");
    Labels::from_pairs([
        ("__name__", "http_requests_total"),
        ("instance", instance.as_str()),
        ("job", "kubernetes-pods"),
        ("pod", pod.as_str()),
        ("series", series.as_str()),
    ])
}

/// Scrape `k` of target `target`: 1 000 samples at one timestamp, values that change.
fn points(target: u64, k: i64) -> Vec<Point> {
    (0..SERIES as u64)
        .map(|i| Point {
            series: SeriesRef(target * SERIES as u64 + i + 1),
            t: 1_700_000_000_000 + 15_000 * k,
            v: ((i as f64) * 1.5 + k as f64 * 0.25).to_bits(),
        })
        .collect()
}

fn batch(target: u64, k: i64, with_series: bool) -> Batch {
    Batch {
        job: Arc::from("kubernetes-pods"),
        target: Arc::from("http://10.1.2.3:9100/metrics"),
        loop_id: target,
        series: if with_series {
            (0..SERIES)
                .map(|i| {
                    (
                        SeriesRef(target * SERIES as u64 + i as u64 + 1),
                        labels(target, i),
                    )
                })
                .collect()
        } else {
            Vec::new()
        },
        samples: points(target, k),
        histograms: Default::default(),
        exemplars: Default::default(),
        retired: Default::default(),
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(SERIES as u64));
    let p = points(0, 1);
    let mut rec = Vec::new();
    g.bench_function("samples", |b| {
        b.iter(|| {
            rec.clear();
            record::samples(&mut rec, black_box(&p));
            rec.len()
        })
    });
    let first = batch(0, 0, true);
    g.bench_function("series+samples", |b| {
        b.iter(|| {
            rec.clear();
            record::series(&mut rec, first.series.iter().map(|(r, l)| (*r, l)));
            let n = rec.len();
            rec.clear();
            record::samples(&mut rec, black_box(&first.samples));
            n + rec.len()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("segment");
    g.throughput(Throughput::Elements(SERIES as u64));
    let mut rec = Vec::new();
    record::samples(&mut rec, &p);
    for compress in [false, true] {
        let mut w = SegmentWriter::new();
        g.bench_function(if compress { "snappy" } else { "raw" }, |b| {
            b.iter(|| {
                if compress {
                    w.append_compressed(black_box(&rec));
                } else {
                    w.append(black_box(&rec));
                }
                w.take().len()
            })
        });
    }
    g.finish();

    // Whole writes: groups of ten repeat scrapes (ten targets), as the writer thread
    // forms them under load; on a tmpfs (what the CPU costs) and on the disk.
    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Elements(10 * SERIES as u64));
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(8));
    for (medium, root) in [
        ("shm", PathBuf::from("/dev/shm")),
        ("disk", std::env::temp_dir()),
    ] {
        if !root.is_dir() {
            continue;
        }
        for (name, sync) in [("fsync-off", false), ("fsync-1s", true)] {
            for compress in [false, true] {
                let dir = root.join(format!("trawl-bench-wal-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                let opts = WalOptions {
                    compress,
                    // Bounded, so a long run does not fill the disk; retention is part
                    // of the cost.
                    retention_size: 512 << 20,
                    ..WalOptions::default()
                };
                let (mut wal, _, _) = Wal::open(&dir, opts).expect("open the bench WAL");
                let first: Vec<Batch> = (0..10).map(|t| batch(t, 0, true)).collect();
                assert!(wal.append(&first, 0).error.is_none());
                let mut k = 1;
                let mut last_sync = Instant::now();
                let id = format!(
                    "{medium}/{name}/{}",
                    if compress { "snappy" } else { "raw" }
                );
                g.bench_function(id, |b| {
                    b.iter_batched(
                        || {
                            k += 1;
                            (0..10).map(|t| batch(t, k, false)).collect::<Vec<_>>()
                        },
                        |group| {
                            let r = wal.append(&group, 0);
                            if sync && last_sync.elapsed() >= Duration::from_secs(1) {
                                let _ = wal.sync();
                                last_sync = Instant::now();
                            }
                            r.stored
                        },
                        criterion::BatchSize::SmallInput,
                    )
                });
                drop(wal);
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        // Baseline: the same bytes as the uncompressed WAL writes (ten samples records
        // and their headers), in 128 MiB files synced when full, four files kept: the
        // file work alone, without encoding.
        let bytes = vec![0x5au8; 10 * (rec.len() + 7)];
        let dir = root.join(format!("trawl-bench-raw-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut n = 0u32;
        let mut f = std::fs::File::create(dir.join("0")).expect("create");
        let mut written = 0u64;
        g.bench_function(format!("{medium}/bytes-only"), |b| {
            b.iter(|| {
                use std::io::Write;
                if written + bytes.len() as u64 > 128 << 20 {
                    let _ = f.sync_data();
                    n += 1;
                    f = std::fs::File::create(dir.join(n.to_string())).expect("create");
                    if n >= 4 {
                        let _ = std::fs::remove_file(dir.join((n - 4).to_string()));
                    }
                    written = 0;
                }
                let _ = f.write_all(&bytes);
                written += bytes.len() as u64;
            })
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
