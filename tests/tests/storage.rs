//! The local WAL writer (`trawl_mio::storage`) on real files: what it writes under a
//! realistic load is read back whole by our reader, by `promtool tsdb dump` and by a
//! Prometheus 2.42 server (Debian's `prometheus` package, installed by `.ci/run`); refs
//! survive restarts; a crash anywhere in the last record loses exactly that record;
//! retention keeps later segments readable; two processes cannot share a directory; a
//! full disk loses only what it could not store and the writer resumes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use trawl_core::scrape::pipeline::{Batch, SeriesRef};
use trawl_core::wal::record;
use trawl_core::wal::replay::Replay;
use trawl_core::wal::segment::read_segment;
use trawl_io::storage::{OpenError, SyncPolicy, Wal, WalOptions, Writer, WriterOptions};
use trawl_tests::load::{self, LoadSpec, dump_lines, go_value};

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "trawl-storage-{name}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// A load whose samples end a little before now (so a Prometheus server takes them
/// as recent).
fn spec(targets: usize, series: usize, scrapes: usize) -> LoadSpec {
    LoadSpec {
        targets,
        series,
        scrapes,
        wall: now_ns() - 20 * 60 * 1_000_000_000,
        huge_label: true,
    }
}

fn write_all(dir: &Path, opts: WalOptions, batches: &[Batch]) {
    let (mut wal, _, _) = Wal::open(dir, opts).expect("open");
    for b in batches {
        let r = wal.append(std::slice::from_ref(b), now_ns() / 1_000_000);
        assert!(r.error.is_none(), "{:?}", r.error);
    }
    wal.close().expect("close");
}

/// The segment files of `dir/wal` (checkpoint first) in replay order.
fn replay_files(dir: &Path) -> Vec<PathBuf> {
    let wal = dir.join("wal");
    let mut cps = Vec::new();
    let mut segs = Vec::new();
    for e in std::fs::read_dir(&wal).expect("wal dir") {
        let e = e.expect("entry");
        let n = e.file_name().to_string_lossy().into_owned();
        if let Some(c) = n.strip_prefix("checkpoint.") {
            cps.push((c.parse::<u32>().expect("checkpoint number"), e.path()));
        } else if let Ok(i) = n.parse::<u32>() {
            segs.push((i, e.path()));
        }
    }
    cps.sort();
    segs.sort();
    let mut out = Vec::new();
    if let Some((_, c)) = cps.last() {
        let mut f: Vec<PathBuf> = std::fs::read_dir(c)
            .expect("checkpoint")
            .map(|e| e.expect("entry").path())
            .collect();
        f.sort();
        out.extend(f);
    }
    out.extend(segs.into_iter().map(|(_, p)| p));
    out
}

/// Every sample in `dir`, as `promtool tsdb dump` prints it, sorted; and the replay
/// counts (unknown refs must be zero).
fn our_dump(dir: &Path) -> (Vec<String>, u64) {
    let mut series: BTreeMap<u64, String> = BTreeMap::new();
    let mut lines = Vec::new();
    let mut unknown = 0;
    for f in replay_files(dir) {
        let bytes = std::fs::read(&f).expect("segment");
        let (recs, err) = read_segment(&bytes);
        assert_eq!(err, None, "{}", f.display());
        for r in recs {
            let p = r.payload().expect("decompresses");
            match p[0] {
                record::kind::SERIES => {
                    for (r, l) in record::decode_series(&p).expect("series") {
                        series.insert(r.0, l.to_go_string());
                    }
                }
                record::kind::SAMPLES => {
                    for s in record::decode_samples(&p).expect("samples") {
                        match series.get(&s.series.0) {
                            Some(l) => lines.push(format!("{l} {} {}", go_value(s.value()), s.t)),
                            None => unknown += 1,
                        }
                    }
                }
                _ => {}
            }
        }
    }
    lines.sort();
    (lines, unknown)
}

#[test]
fn a_load_written_and_reopened_is_read_back_whole() {
    let d = TempDir::new("whole");
    let batches = load::run(&spec(20, 60, 6), None);
    assert!(batches.iter().any(|b| !b.retired.is_empty()));
    assert!(
        batches
            .iter()
            .any(|b| b.samples.iter().any(|p| p.is_stale()))
    );
    for compress in [false, true] {
        let _ = std::fs::remove_dir_all(&d.0);
        write_all(
            &d.0,
            WalOptions {
                compress,
                ..WalOptions::default()
            },
            &batches,
        );
        let (lines, unknown) = our_dump(&d.0);
        assert_eq!(unknown, 0);
        assert_eq!(lines, dump_lines(&batches), "compress {compress}");
        // Reopening restores every label set (the first ref declared for it) and
        // its last sample time.
        let (_wal, restored, report) = Wal::open(&d.0, WalOptions::default()).expect("reopen");
        assert_eq!(report.repair, None);
        assert_eq!(report.segments, vec![0]);
        assert_eq!(report.writing, 1);
        let mut want: BTreeMap<String, (u64, i64)> = BTreeMap::new();
        let mut labels: BTreeMap<SeriesRef, String> = BTreeMap::new();
        for b in &batches {
            for (r, l) in &b.series {
                labels.insert(*r, l.to_go_string());
                want.entry(l.to_go_string()).or_insert((r.0, i64::MIN));
            }
            for p in &b.samples {
                let e = want.get_mut(&labels[&p.series]).expect("declared");
                e.1 = e.1.max(p.t);
            }
        }
        let got: BTreeMap<String, (u64, i64)> = restored
            .series
            .iter()
            .map(|s| (s.labels.to_go_string(), (s.series.0, s.last_t)))
            .collect();
        assert_eq!(got, want);
        // A label set is declared once (under the first ref the agent gave it): later
        // refs for it only map to that one.
        let max_ref = want.values().map(|v| v.0).max().unwrap_or(0);
        assert_eq!(restored.next_ref, max_ref + 1);
        let (lines, _) = our_dump(&d.0);
        let declared = replay_files(&d.0)
            .iter()
            .map(|f| {
                let (recs, _) = read_segment(&std::fs::read(f).expect("read"));
                recs.iter()
                    .filter_map(|r| r.payload())
                    .filter_map(|p| record::decode_series(&p))
                    .map(|s| s.len())
                    .sum::<usize>()
            })
            .sum::<usize>();
        assert_eq!(declared, want.len(), "one series record per label set");
        assert!(!lines.is_empty());
    }
}

#[test]
fn series_keep_their_refs_across_a_restart() {
    let d = TempDir::new("restart");
    let s = spec(6, 30, 4);
    let first = load::run(&s, None);
    write_all(&d.0, WalOptions::default(), &first);
    let (mut wal, restored, _) = Wal::open(&d.0, WalOptions::default()).expect("reopen");
    let before: BTreeMap<String, u64> = restored
        .series
        .iter()
        .map(|x| (x.labels.to_go_string(), x.series.0))
        .collect();
    let next = restored.next_ref;
    let later = LoadSpec {
        wall: s.wall + 5 * 60 * 1_000_000_000,
        ..s
    };
    let second = load::run(&later, Some(restored));
    // The first declaration of each label set after the restart reuses its ref; new
    // label sets (and series that come back after vanishing) get refs above every
    // stored one.
    let mut seen = BTreeSet::new();
    let mut reused = 0;
    for (r, l) in second.iter().flat_map(|b| &b.series) {
        let key = l.to_go_string();
        if seen.insert(key.clone())
            && let Some(&old) = before.get(&key)
        {
            assert_eq!(r.0, old, "{key}");
            reused += 1;
        } else {
            assert!(r.0 >= next, "{key} got ref {} below {next}", r.0);
        }
    }
    assert_eq!(reused, before.len(), "every stored series came back");
    for b in &second {
        let r = wal.append(std::slice::from_ref(b), now_ns() / 1_000_000);
        assert!(r.error.is_none());
    }
    wal.close().expect("close");
    let mut all = first.clone();
    all.extend(second.iter().cloned());
    let (lines, unknown) = our_dump(&d.0);
    assert_eq!(unknown, 0);
    assert_eq!(lines, dump_lines(&all));
    // Prometheus's replay resets a series whose labels are declared again: nothing was
    // declared twice, so it keeps both runs' samples.
    assert_eq!(promtool_dump(&d.0), lines);
}

#[test]
fn a_crash_anywhere_in_the_last_record_loses_exactly_that_record() {
    let src = TempDir::new("crash-src");
    let batches = load::run(&spec(3, 40, 3), None);
    // Two layouts: the last record small, and the last record a page-spanning series
    // record (the huge label), where every fragment boundary is cut too.
    let huge = batches
        .iter()
        .position(|b| {
            b.series
                .iter()
                .any(|(_, l)| l.get("__name__") == Some("load_huge"))
        })
        .expect("the huge series is declared");
    // Uncompressed, so the huge series record really spans pages.
    let raw = WalOptions {
        compress: false,
        ..WalOptions::default()
    };
    for (name, upto) in [("small", batches.len()), ("spanning", huge + 1)] {
        let _ = std::fs::remove_dir_all(&src.0);
        let (mut wal, _, _) = Wal::open(&src.0, raw.clone()).expect("open");
        let mut last_is_series = false;
        for b in &batches[..upto] {
            // Write the huge batch's series alone as the last record.
            if name == "spanning" && std::ptr::eq(b, &batches[huge]) {
                let only = Batch {
                    samples: Vec::new(),
                    histograms: Default::default(),
                    exemplars: Default::default(),
                    retired: Default::default(),
                    ..b.clone()
                };
                assert!(wal.append(&[only], 0).error.is_none());
                last_is_series = true;
            } else {
                assert!(wal.append(std::slice::from_ref(b), 0).error.is_none());
            }
        }
        // Crash: no close, no padding.
        drop(wal);
        let seg = src.0.join("wal/00000000");
        let full = std::fs::read(&seg).expect("segment");
        let (recs, err) = read_segment(&full);
        assert_eq!(err, None);
        let last = recs.last().expect("records").clone();
        assert_eq!(last.end, full.len());
        if last_is_series {
            assert!(last.end - last.offset > 32 * 1024, "spans pages");
        }
        let cuts: Vec<usize> = if last.end - last.offset > 5000 {
            // Every 61st byte, and every byte around each page boundary.
            let mut c: BTreeSet<usize> = (last.offset..last.end).step_by(61).collect();
            let mut page = (last.offset / 32768 + 1) * 32768;
            while page < last.end {
                c.extend(page.saturating_sub(9)..(page + 9).min(last.end));
                page += 32768;
            }
            c.into_iter().collect()
        } else {
            (last.offset..last.end).collect()
        };
        let want_before: Vec<Vec<u8>> = recs[..recs.len() - 1]
            .iter()
            .map(|r| r.data.clone())
            .collect();
        let dst = TempDir::new("crash-dst");
        for cut in cuts {
            let _ = std::fs::remove_dir_all(&dst.0);
            std::fs::create_dir_all(dst.0.join("wal")).expect("mkdir");
            std::fs::write(dst.0.join("wal/00000000"), &full[..cut]).expect("write");
            let (wal, _, report) = Wal::open(&dst.0, WalOptions::default()).expect("open");
            let repaired = report.repair.as_ref();
            if cut == last.offset {
                // Cut exactly at the record's start: nothing torn.
                assert!(repaired.is_none(), "{name} cut {cut}: {repaired:?}");
            } else {
                let r = repaired.unwrap_or_else(|| panic!("{name} cut {cut}: no repair"));
                assert_eq!(
                    (r.from, r.to),
                    (cut as u64, last.offset as u64),
                    "{name} cut {cut}"
                );
            }
            drop(wal);
            let kept = std::fs::read(dst.0.join("wal/00000000")).expect("segment");
            assert_eq!(kept.len(), last.offset, "{name} cut {cut}");
            let (again, err) = read_segment(&kept);
            assert_eq!(err, None);
            let got: Vec<Vec<u8>> = again.into_iter().map(|r| r.data).collect();
            assert_eq!(got, want_before, "{name} cut {cut}");
        }
    }
}

#[test]
fn a_second_process_cannot_open_the_same_directory() {
    let d = TempDir::new("lock");
    let (wal, _, _) = Wal::open(&d.0, WalOptions::default()).expect("open");
    match Wal::open(&d.0, WalOptions::default()) {
        Err(OpenError::Locked { path }) => assert_eq!(path, d.0.join("lock")),
        other => panic!("expected the lock to hold: {other:?}"),
    }
    let msg = Wal::open(&d.0, WalOptions::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("in use by another process"), "{msg}");
    drop(wal);
    // Released with its owner.
    assert!(Wal::open(&d.0, WalOptions::default()).is_ok());
}

#[test]
fn gaps_in_segment_numbers_are_refused_with_the_place() {
    let d = TempDir::new("gap");
    std::fs::create_dir_all(d.0.join("wal")).expect("mkdir");
    std::fs::write(d.0.join("wal/00000000"), b"").expect("write");
    std::fs::write(d.0.join("wal/00000002"), b"").expect("write");
    let e = Wal::open(&d.0, WalOptions::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("segments are not sequential: expected 00000001, found 00000002"),
        "{e}"
    );
}

/// Retention deletes old segments behind a checkpoint; what is left replays with no
/// unknown refs, and every sample of the kept segments is there.
fn retained(d: &Path) -> Vec<Batch> {
    let batches = load::run(&spec(30, 50, 12), None);
    let opts = WalOptions {
        segment_size: 64 << 10,
        retention_size: 128 << 10,
        compress: false,
        retention_time: None,
        delete_sent: false,
    };
    let (mut wal, _, _) = Wal::open(d, opts.clone()).expect("open");
    for b in &batches {
        assert!(wal.append(std::slice::from_ref(b), 0).error.is_none());
    }
    let st = wal.stats().clone();
    assert!(st.checkpoints >= 2, "{st:?}");
    assert!(st.segments_deleted >= 4, "{st:?}");
    // The bound holds for the segments; the checkpoint (the live series' labels) comes
    // on top, and the segment being written may fill before the next pass.
    let checkpoint: u64 = replay_files(d)
        .iter()
        .filter(|p| p.to_string_lossy().contains("checkpoint."))
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    assert!(checkpoint > 0);
    assert!(
        wal.disk_size() <= opts.retention_size + opts.segment_size + checkpoint,
        "{} on disk, checkpoint {checkpoint}",
        wal.disk_size()
    );
    wal.close().expect("close");
    batches
}

#[test]
fn retention_deletes_old_segments_behind_a_checkpoint() {
    let d = TempDir::new("retention");
    let batches = retained(&d.0);
    let (lines, unknown) = our_dump(&d.0);
    assert_eq!(unknown, 0, "a kept sample lost its series");
    assert!(!lines.is_empty());
    // What is left is a suffix of the samples in write order.
    let all = dump_lines(&batches);
    let all: BTreeSet<&String> = all.iter().collect();
    assert!(lines.iter().all(|l| all.contains(l)));
    // And it reopens: the checkpoint first, then contiguous segments.
    let (_wal, restored, report) = Wal::open(&d.0, WalOptions::default()).expect("reopen");
    assert!(report.checkpoint.is_some());
    assert_eq!(
        report.segments.first().copied(),
        report.checkpoint.map(|c| c + 1)
    );
    assert_eq!(report.replay.unknown_refs, 0);
    assert!(!restored.series.is_empty());
}

/// Runs `promtool tsdb dump` on `dir`; its sample lines, sorted.
fn promtool_dump(dir: &Path) -> Vec<String> {
    let out = Command::new("promtool")
        .args(["tsdb", "dump"])
        .arg(dir)
        .output()
        .expect("promtool (Debian package prometheus) is installed: .ci/run installs it");
    assert!(
        out.status.success(),
        "promtool tsdb dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[test]
fn promtool_reads_every_sample_the_writer_thread_wrote() {
    let d = TempDir::new("promtool");
    let batches = load::run(&spec(40, 100, 5), None);
    let (wal, restored, _) = Wal::open(&d.0, WalOptions::default()).expect("open");
    assert!(restored.series.is_empty());
    let mut w = Writer::spawn(
        wal,
        WriterOptions {
            sync: SyncPolicy::Interval(Duration::from_millis(20)),
            ..WriterOptions::default()
        },
        || {},
    )
    .expect("spawn");
    for b in &batches {
        w.append(b.clone()).expect("queued");
    }
    let stats = w.close().expect("close");
    let acks = w.drain_acks();
    let samples: u64 = batches.iter().map(|b| b.samples.len() as u64).sum();
    assert_eq!(acks.batches, batches.len() as u64);
    assert_eq!(
        (acks.samples, acks.lost_samples, acks.error),
        (samples, 0, None)
    );
    assert_eq!(stats.samples, samples);
    assert!(stats.syncs >= 1);
    let want = dump_lines(&batches);
    assert_eq!(promtool_dump(&d.0), want);
    // The retention layout too: checkpoint plus segments.
    let r = TempDir::new("promtool-retention");
    retained(&r.0);
    let (ours, _) = our_dump(&r.0);
    assert_eq!(promtool_dump(&r.0), ours);
}

/// The writer thread with sync policy `sync`, no wake-up callback.
fn spawn_writer(wal: Wal, sync: SyncPolicy) -> Writer {
    Writer::spawn(
        wal,
        WriterOptions {
            sync,
            ..WriterOptions::default()
        },
        || {},
    )
    .expect("spawn the writer thread")
}

/// A free loopback port (bound and released; the server binds it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// GET over plain HTTP/1.1 (chunked or not); the status and body.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| std::io::Error::other("bad chunk"))?;
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..nl])
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim(),
                16,
            )
            .map_err(std::io::Error::other)?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + size]);
            rest = &rest[nl + 2 + size + 2..];
        }
        body = out;
    }
    Ok((status, body))
}

/// A Prometheus server on a copy of a data directory, stopped by PID when dropped.
struct PromServer {
    child: std::process::Child,
    port: u16,
    _dir: TempDir,
}

impl Drop for PromServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else if e.file_name() != "lock" {
            std::fs::copy(e.path(), dst).expect("copy");
        }
    }
}

fn start_prometheus(data: &Path) -> PromServer {
    let dir = TempDir::new("prom");
    copy_dir(data, &dir.0.join("data"));
    let cfg = dir.0.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").expect("config");
    let port = free_port();
    let log = std::fs::File::create(dir.0.join("prometheus.log")).expect("log");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.0.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=10y")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus (Debian package) is installed: .ci/run installs it");
    let server = PromServer {
        child,
        port,
        _dir: dir,
    };
    for _ in 0..600 {
        if matches!(http_get(port, "/-/ready"), Ok((200, _))) {
            return server;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(server._dir.0.join("prometheus.log")).unwrap_or_default();
    panic!("prometheus did not become ready:\n{log}");
}

#[test]
fn a_prometheus_server_serves_every_sample_from_a_copy_of_the_directory() {
    let d = TempDir::new("server");
    let batches = load::run(&spec(20, 50, 5), None);
    write_all(&d.0, WalOptions::default(), &batches);
    if let Some(keep) = std::env::var_os("TRAWL_KEEP_DATA") {
        copy_dir(&d.0, Path::new(&keep));
    }
    let server = start_prometheus(&d.0);
    // Every raw sample through a range selector: stale markers are not samples in
    // PromQL, every other value (NaN too) is.
    let mut want: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    let mut labels = BTreeMap::new();
    let mut last_t = i64::MIN;
    let mut first_t = i64::MAX;
    for b in &batches {
        for (r, l) in &b.series {
            labels.insert(*r, l.to_go_string());
        }
        for p in &b.samples {
            last_t = last_t.max(p.t);
            first_t = first_t.min(p.t);
            if !p.is_stale() {
                want.entry(labels[&p.series].clone())
                    .or_default()
                    .push((p.t, go_value(p.value())));
            }
        }
    }
    for v in want.values_mut() {
        v.sort();
    }
    let window = (last_t - first_t) / 1000 + 60;
    let q = format!(
        "/api/v1/query?query=%7B__name__%3D~%22.%2B%22%7D%5B{window}s%5D&time={}.{:03}",
        (last_t + 1) / 1000,
        (last_t + 1) % 1000
    );
    let (status, body) = http_get(server.port, &q).expect("query");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let mut got: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for s in v["data"]["result"].as_array().expect("matrix") {
        let m = s["metric"].as_object().expect("labels");
        let l = trawl_core::labels::Labels::from_pairs(
            m.iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or(""))),
        );
        let vals = s["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap_or(0.0) * 1000.0).round() as i64;
                (t, p[1].as_str().unwrap_or("").to_owned())
            })
            .collect();
        got.insert(l.to_go_string(), vals);
    }
    assert_eq!(got.len(), want.len());
    for (k, w) in &want {
        assert_eq!(got.get(k), Some(w), "{k}");
    }
}

/// Mounts a tmpfs of `size` at `at`; false if this machine does not allow it.
fn mount_tmpfs(at: &Path, size: &str) -> bool {
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_full_disk_loses_only_what_it_could_not_store_and_the_writer_resumes() {
    let mnt = TempDir::new("full");
    if !mount_tmpfs(&mnt.0, "2m") {
        // A small tmpfs is the only way to get a real full disk; mounting one needs
        // root (or CAP_SYS_ADMIN). Without it the test cannot run, and says so.
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root): disk-full test not run");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&mnt.0);
    let data = mnt.0.join("data");
    let batches = load::run(&spec(20, 60, 8), None);
    let (wal, _, _) = Wal::open(
        &data,
        WalOptions {
            compress: false,
            ..WalOptions::default()
        },
    )
    .expect("open");
    let mut w = spawn_writer(wal, SyncPolicy::EveryWrite);
    // Fill the disk beside the WAL, then leave a little room.
    let filler = mnt.0.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let len = f.metadata().expect("len").len();
        f.set_len(len.saturating_sub(120_000)).expect("truncate");
    }
    let half = batches.len() / 2;
    let mut acks = Vec::new();
    for b in &batches[..half] {
        w.append(b.clone()).expect("queued");
        acks.push(w.acks().recv_timeout(Duration::from_secs(10)).expect("ack"));
    }
    let lost: u64 = acks.iter().map(|a| a.lost_samples).sum();
    assert!(lost > 0, "the disk never filled");
    let failed = acks.iter().find_map(|a| a.error.clone()).expect("an error");
    assert!(failed.contains("No space left on device"), "{failed}");
    // Space returns: the writer resumes by itself.
    std::fs::remove_file(&filler).expect("free space");
    for b in &batches[half..] {
        w.append(b.clone()).expect("queued");
        acks.push(w.acks().recv_timeout(Duration::from_secs(10)).expect("ack"));
    }
    let tail = &acks[half..];
    assert!(tail.iter().all(|a| a.error.is_none()), "{tail:?}");
    w.close().expect("close");
    let stored: u64 = acks.iter().map(|a| a.samples).sum();
    let lost: u64 = acks.iter().map(|a| a.lost_samples).sum();
    let total: u64 = batches.iter().map(|b| b.samples.len() as u64).sum();
    assert_eq!(stored + lost, total);
    // What was stored is readable, every sample with its series (series declared by a
    // failed write were declared again before use).
    let (lines, unknown) = our_dump(&data);
    assert_eq!(unknown, 0);
    assert_eq!(lines.len() as u64, stored);
    assert_eq!(promtool_dump(&data), lines);
    let mut rp = Replay::new();
    for f in replay_files(&data) {
        let (recs, _) = read_segment(&std::fs::read(f).expect("read"));
        for r in recs {
            rp.record(&r.payload().expect("payload"));
        }
    }
    assert_eq!(rp.stats().unknown_refs, 0);
}

/// One step of the WAL property test.
#[derive(Clone, Debug)]
enum Step {
    /// Loop `0` scrapes the label sets in the mask (of a universe of eight): new ones
    /// are declared under fresh agent refs, vanished ones retired.
    Scrape(usize, u8),
    /// Loop `0` ends: everything it holds is retired.
    End(usize),
    /// The process stops cleanly and starts again with what the WAL restores.
    Restart,
}

fn arb_step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        8 => (0usize..3, any::<u8>()).prop_map(|(l, m)| Step::Scrape(l, m)),
        1 => (0usize..3).prop_map(Step::End),
        1 => Just(Step::Restart),
    ]
}

/// Every label set declared in `dir`, with how many times.
fn declarations(dir: &Path) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for f in replay_files(dir) {
        let (recs, _) = read_segment(&std::fs::read(f).expect("read"));
        for r in recs {
            let p = r.payload().expect("payload");
            for (_, l) in record::decode_series(&p).unwrap_or_default() {
                *n.entry(l.to_go_string()).or_default() += 1;
            }
        }
    }
    n
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever the agent does with refs — series that vanish and come back under new
    /// refs, two loops exposing one label set, loops ending, restarts that restore refs,
    /// rotation and retention — every label set is declared once in the WAL (Prometheus
    /// would drop what it read of a series declared again), no sample lacks its series,
    /// and without retention every sample reads back.
    #[test]
    fn the_wal_holds_each_label_set_once_and_every_sample(
        steps in proptest::collection::vec(arb_step(), 1..120),
        keep in 0u64..3,
    ) {
        let d = TempDir::new("prop");
        let opts = WalOptions {
            segment_size: 32 << 10,
            // No bound, or one keeping about one or about two closed segments.
            retention_size: keep * (40 << 10),
            compress: false,
            retention_time: None,
            delete_sent: false,
        };
        // Eight label sets the steps turn on and off, and 400 that every scrape carries
        // (so segments fill, rotate and are retained away).
        let universe: Vec<trawl_core::labels::Labels> = (0..8 + 400)
            .map(|i| {
                let v = format!("{i}");
                let name = if i < 8 { "m" } else { "filler" };
                trawl_core::labels::Labels::from_pairs([("__name__", name), ("i", v.as_str())])
            })
            .collect();
        let mut checkpoints = 0;
        let retention = keep > 0;
        let (mut wal, _, _) = Wal::open(&d.0, opts.clone()).expect("open");
        let mut next_ref = 1u64;
        let mut restored: BTreeMap<String, u64> = BTreeMap::new();
        // Loop → label index → agent ref.
        let mut loops: BTreeMap<usize, BTreeMap<usize, u64>> = BTreeMap::new();
        let mut want: Vec<String> = Vec::new();
        let mut t = 1_700_000_000_000i64;
        for step in &steps {
            let mut b = Batch {
                job: "j".into(),
                target: "u".into(),
                loop_id: 0,
                series: Vec::new(),
                samples: Vec::new(),
                histograms: Default::default(),
                exemplars: Default::default(),
                retired: Default::default(),
            };
            match *step {
                Step::Scrape(l, mask) => {
                    t += 1000;
                    let held = loops.entry(l).or_default();
                    for (i, labels) in universe.iter().enumerate() {
                        if i < 8 && mask & (1 << i) == 0 {
                            if let Some(r) = held.remove(&i) {
                                b.retired.push(SeriesRef(r));
                            }
                            continue;
                        }
                        let r = *held.entry(i).or_insert_with(|| {
                            let r = restored.remove(&labels.to_go_string()).unwrap_or_else(|| {
                                next_ref += 1;
                                next_ref - 1
                            });
                            b.series.push((SeriesRef(r), labels.clone()));
                            r
                        });
                        let v = (t % 977) as f64;
                        b.samples.push(trawl_core::scrape::pipeline::Point { series: SeriesRef(r), t, v: v.to_bits() });
                        want.push(format!("{} {} {t}", labels.to_go_string(), go_value(v)));
                    }
                }
                Step::End(l) => {
                    for (_, r) in loops.remove(&l).unwrap_or_default() {
                        b.retired.push(SeriesRef(r));
                    }
                }
                Step::Restart => {
                    for (_, held) in std::mem::take(&mut loops) {
                        b.retired.extend(held.into_values().map(SeriesRef));
                    }
                    let r = wal.append(&[b], t);
                    proptest::prop_assert!(r.error.is_none());
                    checkpoints += wal.close().expect("close").checkpoints;
                    let (w, rs, report) = Wal::open(&d.0, opts.clone()).expect("reopen");
                    proptest::prop_assert_eq!(report.replay.unknown_refs, 0);
                    wal = w;
                    next_ref = rs.next_ref;
                    restored = rs.series.iter().map(|s| (s.labels.to_go_string(), s.series.0)).collect();
                    continue;
                }
            }
            let r = wal.append(&[b], t);
            proptest::prop_assert!(r.error.is_none());
        }
        checkpoints += wal.close().expect("close").checkpoints;
        if std::env::var_os("TRAWL_PROP_STATS").is_some() {
            eprintln!("PROPSTATS retention={retention} checkpoints={checkpoints}");
        }
        let (lines, unknown) = our_dump(&d.0);
        proptest::prop_assert_eq!(unknown, 0);
        for (l, n) in declarations(&d.0) {
            proptest::prop_assert_eq!(n, 1, "{} declared {} times", l, n);
        }
        want.sort();
        if retention {
            let all: BTreeSet<&String> = want.iter().collect();
            proptest::prop_assert!(lines.iter().all(|l| all.contains(l)));
        } else {
            proptest::prop_assert_eq!(lines, want);
        }
    }
}

#[test]
fn acknowledgements_follow_the_sync_policy() {
    let batches = load::run(&spec(2, 10, 2), None);
    let first = || batches[0].clone();
    // Never: acknowledged once written.
    let d = TempDir::new("ack-never");
    let (wal, _, _) = Wal::open(&d.0, WalOptions::default()).expect("open");
    let mut w = spawn_writer(wal, SyncPolicy::Never);
    w.append(first()).expect("queued");
    let a = w.acks().recv_timeout(Duration::from_secs(10)).expect("ack");
    assert_eq!((a.batches, a.samples), (1, batches[0].samples.len() as u64));
    w.close().expect("close");
    // Every write: acknowledged after its fsync.
    let d = TempDir::new("ack-every");
    let (wal, _, _) = Wal::open(&d.0, WalOptions::default()).expect("open");
    let mut w = spawn_writer(wal, SyncPolicy::EveryWrite);
    for b in &batches[..3] {
        w.append(b.clone()).expect("queued");
        w.acks().recv_timeout(Duration::from_secs(10)).expect("ack");
    }
    let st = w.close().expect("close");
    assert!(st.syncs >= 3, "{st:?}");
    // An interval: the acknowledgement waits for the sync (here, the close).
    let d = TempDir::new("ack-interval");
    let (wal, _, _) = Wal::open(&d.0, WalOptions::default()).expect("open");
    let woken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let wk = woken.clone();
    let mut w = Writer::spawn(
        wal,
        WriterOptions {
            sync: SyncPolicy::Interval(Duration::from_secs(3600)),
            ..WriterOptions::default()
        },
        move || {
            wk.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        },
    )
    .expect("spawn");
    w.append(first()).expect("queued");
    assert!(
        w.acks().recv_timeout(Duration::from_millis(300)).is_err(),
        "acknowledged before its sync"
    );
    let st = w.close().expect("close");
    let a = w.drain_acks();
    assert_eq!(a.batches, 1);
    assert!(st.syncs >= 1);
    assert_eq!(
        woken.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one wake per acknowledgement"
    );
}

#[test]
fn acknowledgements_reach_the_agent_as_storage_reports() {
    use trawl_core::agent::{AgentOptions, Event, Input, Output};
    let mut h = trawl_tests::Harness::new(
        "scrape_configs: [{job_name: j, scrape_interval: 10s, static_configs: [{targets: [\"a:1\", \"b:1\"]}]}]",
        AgentOptions::default(),
    );
    let d = TempDir::new("ack-agent");
    let (wal, restored, _) = Wal::open(&d.0, WalOptions::default()).expect("open");
    h.input(Input::Restore(Box::new(restored)));
    let mut w = spawn_writer(wal, SyncPolicy::EveryWrite);
    let mut sent = 0;
    let mut samples = 0;
    for _ in 0..6 {
        for (id, _) in h.advance_until_scrape(Duration::from_secs(30)) {
            let before = h.log.len();
            h.respond(id, 200, "text/plain", b"m 1\nn 2\n");
            let new: Vec<Output> = h.log[before..].iter().map(|(_, o)| o.clone()).collect();
            for o in new {
                if let Output::Append(b) = o {
                    samples += b.samples.len() as u64;
                    w.append(b).expect("queued");
                    sent += 1;
                }
            }
        }
        while let Ok(a) = w.acks().recv_timeout(Duration::from_millis(200)) {
            h.input(Input::Stored(a.as_input()));
        }
    }
    let st = h.agent.stats().storage;
    assert_eq!(st.appended_batches, sent);
    assert_eq!(st.pending_batches(), 0);
    assert_eq!(
        (st.stored_samples, st.lost_samples, st.failing),
        (samples, 0, false)
    );
    w.close().expect("close");
    // A failing report and a good one: the agent says so, once each.
    let bad = trawl_io::storage::Ack {
        batches: 1,
        samples: 0,
        lost_samples: 7,
        error: Some("write data: No space left on device".into()),
        ..Default::default()
    };
    let outs = h.input(Input::Stored(bad.as_input()));
    assert!(
        outs.iter().any(
            |o| matches!(o, Output::Event(Event::StorageFailing(e)) if e.contains("No space"))
        )
    );
    assert!(
        h.input(Input::Stored(bad.as_input()))
            .iter()
            .all(|o| !matches!(o, Output::Event(Event::StorageFailing(_))))
    );
    let good = trawl_io::storage::Ack {
        batches: 1,
        samples: 5,
        ..Default::default()
    };
    let outs = h.input(Input::Stored(good.as_input()));
    assert!(outs.contains(&Output::Event(Event::StorageRecovered)));
    assert_eq!(h.agent.stats().storage.lost_samples, 14);
}

#[test]
fn age_retention_deletes_segments_whose_newest_sample_is_too_old() {
    let d = TempDir::new("age");
    let opts = WalOptions {
        segment_size: 32 << 10,
        retention_time: Some(Duration::from_secs(3600)),
        compress: false,
        retention_size: 0,
        delete_sent: false,
    };
    let now = now_ns() / 1_000_000;
    // Two hours ago, then now: the old segments go at the first rotation after.
    let old = load::run(
        &LoadSpec {
            wall: (now - 2 * 3_600_000) * 1_000_000,
            ..spec(10, 40, 6)
        },
        None,
    );
    let (mut wal, _, _) = Wal::open(&d.0, opts.clone()).expect("open");
    for b in &old {
        assert!(
            wal.append(std::slice::from_ref(b), now - 2 * 3_600_000)
                .error
                .is_none()
        );
    }
    assert_eq!(
        wal.stats().segments_deleted,
        0,
        "nothing was old when written"
    );
    let segments_before = wal.current_segment();
    assert!(segments_before >= 2);
    let recent = load::run(
        &LoadSpec {
            wall: now * 1_000_000,
            ..spec(10, 40, 6)
        },
        None,
    );
    for b in &recent {
        assert!(wal.append(std::slice::from_ref(b), now).error.is_none());
    }
    let st = wal.stats().clone();
    assert!(
        st.segments_deleted >= u64::from(segments_before) - 1,
        "{st:?}"
    );
    wal.close().expect("close");
    let (lines, unknown) = our_dump(&d.0);
    assert_eq!(unknown, 0);
    // Retention is by whole segments: every segment left has a sample newer than the
    // bound (the one where old samples end and recent ones begin may hold both).
    let cutoff = now - 3_600_000;
    for f in replay_files(&d.0) {
        if f.to_string_lossy().contains("checkpoint.") {
            continue;
        }
        let (recs, _) = read_segment(&std::fs::read(&f).expect("read"));
        let newest = recs
            .iter()
            .filter_map(|r| r.payload())
            .filter_map(|p| record::decode_samples(&p))
            .flatten()
            .map(|p| p.t)
            .max();
        if let Some(t) = newest {
            assert!(
                t >= cutoff,
                "{} holds only samples older than the bound",
                f.display()
            );
        }
    }
    let old_left = lines
        .iter()
        .filter(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|t| t.parse::<i64>().ok())
                .is_some_and(|t| t < cutoff)
        })
        .count();
    // At most one segment's worth (a sample takes at least ten bytes).
    assert!(
        old_left as u64 * 10 <= opts.segment_size,
        "{old_left} old samples left"
    );
    assert!(!lines.is_empty());
}

#[test]
fn with_delete_sent_segments_go_once_every_queue_has_sent_them() {
    let d = TempDir::new("sent");
    let opts = WalOptions {
        segment_size: 32 << 10,
        delete_sent: true,
        compress: false,
        ..WalOptions::default()
    };
    let batches = load::run(&spec(10, 40, 24), None);
    let (mut wal, _, _) = Wal::open(&d.0, opts).expect("open");
    // The queues have sent nothing yet (mark 0): nothing may go.
    let mark = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    wal.keep_segments_from(mark.clone());
    let half = batches.len() / 2;
    for b in &batches[..half] {
        assert!(wal.append(std::slice::from_ref(b), 0).error.is_none());
    }
    assert_eq!(wal.stats().segments_deleted, 0, "{:?}", wal.stats());
    let written = wal.current_segment();
    assert!(written >= 2, "several segments: {written}");
    // Sent all but the last closed segment: the ones before it go at the next
    // rotation, behind a checkpoint.
    let m = written - 1;
    mark.store(m, std::sync::atomic::Ordering::Release);
    for b in &batches[half..] {
        assert!(wal.append(std::slice::from_ref(b), 0).error.is_none());
    }
    let st = wal.stats().clone();
    assert_eq!(st.segments_deleted, u64::from(m), "{st:?}");
    assert!(st.checkpoints >= 1);
    assert_eq!(st.segments_deleted_unsent, 0);
    let names: Vec<String> = std::fs::read_dir(d.0.join("wal"))
        .expect("wal dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.contains(&format!("{:08}", m - 1)), "{names:?}");
    assert!(names.contains(&format!("{m:08}")), "{names:?}");
    wal.close().expect("close");
}
