//! The synchronous WAL: one owner, plain file calls. See the module docs of
//! [`crate::storage`] for the design.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::declared::{Declared, RefState};
use trawl_core::labels::{Key128, Labels};
use trawl_core::metrics::{Metrics, Summary};
use trawl_core::scrape::pipeline::{Batch, Point, SeriesRef};
use trawl_core::wal::record;
use trawl_core::wal::replay::{Replay, ReplayStats, Restored};
use trawl_core::wal::segment::{self, PAGE, SegmentWriter};

/// Prometheus's default segment size.
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 << 20;

/// Series per record in a checkpoint.
const CHECKPOINT_SERIES_PER_RECORD: usize = 10_000;

/// How the WAL is laid out and bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// Segment size in bytes: a multiple of 32 KiB (default 128 MiB). A record larger
    /// than a segment gets a segment of its own, as in Prometheus.
    pub segment_size: u64,
    /// Snappy-compress records when that makes them shorter (Prometheus's default).
    pub compress: bool,
    /// Delete the oldest segments while the directory holds more than this many bytes
    /// (0: no size bound). The segment being written is never deleted.
    pub retention_size: u64,
    /// Delete segments whose newest sample is older than this (`None`: no time bound).
    pub retention_time: Option<Duration>,
    /// Delete segments as soon as every remote-write queue has sent them (the WAL then
    /// holds only what is still to send; with no queue, nothing is deleted this way).
    pub delete_sent: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            compress: true,
            retention_size: 0,
            retention_time: None,
            delete_sent: false,
        }
    }
}

/// Why a data directory could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another process holds the directory's lock.
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A file operation failed.
    Io {
        /// What was being done, and on which path.
        what: String,
        /// The error.
        error: io::Error,
    },
    /// Segment numbers have a gap, or do not start where the checkpoint ends: Prometheus
    /// refuses such a directory too.
    NotSequential {
        /// The WAL directory.
        dir: PathBuf,
        /// The segment expected next.
        expected: u32,
        /// The segment found.
        found: u32,
    },
    /// The newest checkpoint cannot be read.
    BadCheckpoint {
        /// Its directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The options are invalid.
    Options(String),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Locked { path } => write!(
                f,
                "the data directory is in use by another process: {} is locked",
                path.display()
            ),
            OpenError::Io { what, error } => write!(f, "{what}: {error}"),
            OpenError::NotSequential {
                dir,
                expected,
                found,
            } => write!(
                f,
                "{}: segments are not sequential: expected {expected:08}, found {found:08}",
                dir.display()
            ),
            OpenError::BadCheckpoint { path, reason } => {
                write!(f, "{}: unreadable checkpoint: {reason}", path.display())
            }
            OpenError::Options(m) => write!(f, "invalid storage options: {m}"),
        }
    }
}

impl std::error::Error for OpenError {}

fn io_err(what: impl FnOnce() -> String) -> impl FnOnce(io::Error) -> OpenError {
    move |error| OpenError::Io {
        what: what(),
        error,
    }
}

/// What opening found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// The checkpoint replayed first, if any.
    pub checkpoint: Option<u32>,
    /// Segments replayed after it.
    pub segments: Vec<u32>,
    /// Counts from the replay.
    pub replay: ReplayStats,
    /// A damaged segment that was repaired.
    pub repair: Option<Repair>,
    /// The segment this run writes to.
    pub writing: u32,
}

/// A repair done at open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    /// The damaged segment.
    pub segment: u32,
    /// Why it was damaged (torn record, checksum, ...).
    pub reason: String,
    /// Its length before and after truncation.
    pub from: u64,
    /// Its length after truncation (the end of its last whole record).
    pub to: u64,
    /// Later segments removed (unreadable behind the damage).
    pub removed: Vec<u32>,
}

/// Writer counters, for logs and self-metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records written.
    pub records: u64,
    /// Bytes written to segments (after compression, with headers and padding).
    pub bytes: u64,
    /// Series declared.
    pub series: u64,
    /// Samples written.
    pub samples: u64,
    /// Exemplars written.
    pub exemplars: u64,
    /// Native histogram samples written.
    pub histograms: u64,
    /// Samples lost to write errors.
    pub lost_samples: u64,
    /// Writes that failed.
    pub write_errors: u64,
    /// fsyncs done.
    pub syncs: u64,
    /// Segments created.
    pub segments_created: u64,
    /// Segments deleted by retention.
    pub segments_deleted: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Retention passes that failed (retried at the next rotation).
    pub retention_errors: u64,
    /// Segments deleted by the size bound although a remote-write queue had not sent
    /// them yet (their samples are lost to that queue).
    pub segments_deleted_unsent: u64,
}

/// What an append did.
#[derive(Debug)]
pub struct Appended {
    /// Samples written.
    pub stored: u64,
    /// Samples lost (the write failed).
    pub lost: u64,
    /// The failure, if any.
    pub error: Option<io::Error>,
}

#[derive(Clone, Debug)]
struct SegInfo {
    size: u64,
    /// Newest sample written up to its end (in it or before it).
    max_t: i64,
    /// Where its series records are (start, end): a checkpoint reads just those.
    series: Vec<(u64, u64)>,
}

/// Hashes the writer's integer keys: refs (sequential, so a multiplicative hash spreads
/// them) and label keys (already uniform: a [`Key128`] hashes one of its words). Far cheaper than SipHash
/// on the per-sample path.
#[derive(Default)]
struct IntHasher(u64);

impl std::hash::Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IntMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IntHasher>>;

/// Record and page buffers keep at most this much capacity between writes.
const KEEP_BUFFER: usize = 256 << 10;

/// An open data directory.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    wal_dir: PathBuf,
    /// Held (locked) for as long as the `Wal` lives.
    _lock: File,
    opts: WalOptions,
    current: u32,
    file: File,
    seg: SegmentWriter,
    current_max_t: i64,
    /// Where the current segment's series records are.
    current_series: Vec<(u64, u64)>,
    /// Older segments still on disk.
    closed: BTreeMap<u32, SegInfo>,
    /// The newest checkpoint and its size.
    checkpoint: Option<(u32, u64)>,
    /// Series declared in the WAL (and not yet dropped by a checkpoint): their state by
    /// WAL ref, and the WAL ref by label-set hash: a label set is declared once.
    /// (Prometheus's replay resets a series whenever its labels are declared again,
    /// dropping the samples read so far, so a second declaration would lose data.)
    declared: Declared,
    /// Agent refs whose label set the WAL already holds under another ref (a series
    /// that vanished and came back): agent ref → WAL ref.
    remap: IntMap<u64, u64>,
    /// Series declared by batches whose write failed: declared again before first use.
    pending: BTreeMap<u64, Labels>,
    rec: Vec<u8>,
    unsynced: bool,
    stats: WalStats,
    /// The oldest segment remote-write queues still need (`None`: no queue).
    keep_from: Option<std::sync::Arc<std::sync::atomic::AtomicU32>>,
    /// The origin of the fsync summary's clock.
    origin: std::time::Instant,
    /// `prometheus_tsdb_wal_fsync_duration_seconds`.
    fsync: Summary,
    /// Records written since [`Wal::take_written`] last took them, for remote write
    /// (kept only while a queue marks `keep_from`).
    written: Vec<Written>,
    written_bytes: usize,
    /// A record was left out (the bound): later ones would not follow on.
    written_full: bool,
}

/// Most bytes of records [`Wal::take_written`] holds (and an [`super::Ack`] carries):
/// past it, remote write reads the rest from the segment files as before. A second of
/// samples at 100 000 a second is about 1.2 MB.
pub const WRITTEN_MAX: usize = 4 << 20;

/// Records larger than this are not handed over (first scrapes' series records, a few
/// megabytes at a start): the queues read them from the files, and peak memory does
/// not hold a second copy of them.
pub const WRITTEN_RECORD_MAX: usize = 256 << 10;

/// A record as written to a segment, handed to remote write in memory so that a queue
/// that is caught up need not read it back from the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The segment it is in.
    pub segment: u32,
    /// Where a reader stands after the record before it (the record may start later,
    /// after padding to a page): a reader at this offset reads this record next.
    pub after: u64,
    /// The offset just past the record.
    pub end: u64,
    /// The record, decompressed (as `ReadRecord::payload` gives it); shared by the
    /// queues.
    pub payload: std::sync::Arc<[u8]>,
}

fn segment_name(i: u32) -> String {
    format!("{i:08}")
}

fn sync_dir(p: &Path) -> io::Result<()> {
    File::open(p)?.sync_all()
}

/// How far a replay has come, for `/api/v1/status/walreplay` while it runs (another
/// thread reads it): the first and last segment to replay and the one being read.
#[derive(Debug, Default)]
pub struct ReplayProgress {
    /// The first segment (or the checkpoint's number).
    pub min: std::sync::atomic::AtomicU32,
    /// The last segment.
    pub max: std::sync::atomic::AtomicU32,
    /// The segment being replayed (`max` once done).
    pub current: std::sync::atomic::AtomicU32,
}

impl Wal {
    /// Opens (creating it if needed) the data directory `dir`: takes its lock, replays
    /// and repairs the WAL, and starts a new segment.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, Restored, OpenReport), OpenError> {
        Self::open_with_progress(dir, opts, &ReplayProgress::default())
    }

    /// [`Wal::open`], telling `progress` which segment it replays.
    pub fn open_with_progress(
        dir: &Path,
        opts: WalOptions,
        progress: &ReplayProgress,
    ) -> Result<(Wal, Restored, OpenReport), OpenError> {
        use std::sync::atomic::Ordering::Relaxed;
        if opts.segment_size == 0 || !opts.segment_size.is_multiple_of(PAGE as u64) {
            return Err(OpenError::Options(format!(
                "segment size {} is not a positive multiple of 32 KiB",
                opts.segment_size
            )));
        }
        let wal_dir = dir.join("wal");
        fs::create_dir_all(&wal_dir).map_err(io_err(|| format!("create {}", wal_dir.display())))?;
        let lock = Self::lock(dir)?;
        let mut report = OpenReport::default();

        // What is there.
        let mut segments = Vec::new();
        let mut checkpoints = Vec::new();
        let entries =
            fs::read_dir(&wal_dir).map_err(io_err(|| format!("list {}", wal_dir.display())))?;
        for e in entries {
            let e = e.map_err(io_err(|| format!("list {}", wal_dir.display())))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(i) = name.parse::<u32>() {
                    segments.push(i);
                }
            } else if let Some(rest) = name.strip_prefix("checkpoint.") {
                if rest.ends_with(".tmp") {
                    // A checkpoint that was never finished.
                    let p = e.path();
                    fs::remove_dir_all(&p).map_err(io_err(|| format!("remove {}", p.display())))?;
                } else if let Ok(i) = rest.parse::<u32>() {
                    checkpoints.push(i);
                }
            }
        }
        segments.sort_unstable();
        checkpoints.sort_unstable();
        let cp = checkpoints.last().copied();
        // Older checkpoints and segments a checkpoint covers are left over from a
        // retention pass that did not finish: finish it.
        for &c in checkpoints.iter().filter(|&&c| Some(c) != cp) {
            let p = wal_dir.join(format!("checkpoint.{c:08}"));
            fs::remove_dir_all(&p).map_err(io_err(|| format!("remove {}", p.display())))?;
        }
        if let Some(c) = cp {
            for &s in segments.iter().filter(|&&s| s <= c) {
                let p = wal_dir.join(segment_name(s));
                fs::remove_file(&p).map_err(io_err(|| format!("remove {}", p.display())))?;
            }
            segments.retain(|&s| s > c);
        }
        for (expected, &s) in (cp.map_or(0, |c| c + 1)..).zip(&segments) {
            if s != expected {
                return Err(OpenError::NotSequential {
                    dir: wal_dir,
                    expected,
                    found: s,
                });
            }
        }

        // Replay.
        let first = cp.or(segments.first().copied()).unwrap_or(0);
        let last = segments.last().copied().or(cp).unwrap_or(0);
        progress.min.store(first, Relaxed);
        progress.max.store(last, Relaxed);
        progress.current.store(first, Relaxed);
        let mut rp = Replay::new();
        let mut checkpoint = None;
        if let Some(c) = cp {
            let p = wal_dir.join(format!("checkpoint.{c:08}"));
            let size = Self::replay_checkpoint(&p, &mut rp)?;
            checkpoint = Some((c, size));
            report.checkpoint = Some(c);
        }
        let mut closed = BTreeMap::new();
        let mut k = 0;
        // Newest sample so far: segments are dated by it (see `SegInfo::max_t`).
        let mut newest = i64::MIN;
        while k < segments.len() {
            let s = segments[k];
            progress.current.store(s, Relaxed);
            let p = wal_dir.join(segment_name(s));
            let bytes = fs::read(&p).map_err(io_err(|| format!("read {}", p.display())))?;
            let (recs, err) = segment::read_segment(&bytes);
            let mut series = Vec::new();
            for r in &recs {
                match r.payload() {
                    Some(pl) => {
                        if pl.first() == Some(&record::kind::SERIES) {
                            series.push((r.offset as u64, r.end as u64));
                        }
                        rp.record(&pl);
                    }
                    None => rp.malformed(),
                }
            }
            report.segments.push(s);
            let mut size = bytes.len() as u64;
            if let Some(err) = err {
                let to = segment::valid_len(&recs) as u64;
                let f = OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .map_err(io_err(|| format!("open {}", p.display())))?;
                f.set_len(to)
                    .and_then(|()| f.sync_all())
                    .map_err(io_err(|| format!("truncate {}", p.display())))?;
                let removed: Vec<u32> = segments[k + 1..].to_vec();
                for &r in &removed {
                    let q = wal_dir.join(segment_name(r));
                    fs::remove_file(&q).map_err(io_err(|| format!("remove {}", q.display())))?;
                }
                report.repair = Some(Repair {
                    segment: s,
                    reason: err.to_string(),
                    from: size,
                    to,
                    removed,
                });
                size = to;
            }
            newest = newest.max(rp.take_max_t());
            closed.insert(
                s,
                SegInfo {
                    size,
                    max_t: newest,
                    series,
                },
            );
            if report.repair.is_some() {
                break;
            }
            k += 1;
        }
        report.replay = rp.stats();
        progress.current.store(last, Relaxed);
        let current = closed
            .keys()
            .next_back()
            .map_or(cp.map_or(0, |c| c + 1), |&s| s + 1);
        let restored = rp.finish();
        // Every series found may have samples in any segment kept so far: retired (by
        // this start) in the segment now begun, unless the agent takes it up again.
        let mut declared = Declared::default();
        for x in &restored.series {
            declared.insert(
                x.labels.key(),
                x.series.0,
                RefState {
                    users: 0,
                    retired_at: current,
                },
            );
        }
        let file = Self::create_segment(&wal_dir, current)?;
        report.writing = current;
        let wal = Wal {
            dir: dir.to_path_buf(),
            wal_dir,
            _lock: lock,
            opts,
            current,
            file,
            seg: SegmentWriter::new(),
            current_max_t: newest,
            current_series: Vec::new(),
            closed,
            checkpoint,
            declared,
            remap: IntMap::default(),
            pending: BTreeMap::new(),
            rec: Vec::new(),
            unsynced: false,
            stats: WalStats {
                segments_created: 1,
                ..WalStats::default()
            },
            keep_from: None,
            origin: std::time::Instant::now(),
            fsync: Summary::new(),
            written: Vec::new(),
            written_bytes: 0,
            written_full: false,
        };
        Ok((wal, restored, report))
    }

    fn lock(dir: &Path) -> Result<File, OpenError> {
        let path = dir.join("lock");
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(|| format!("open {}", path.display())))?;
        match f.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(OpenError::Locked { path }),
            Err(fs::TryLockError::Error(error)) => {
                return Err(OpenError::Io {
                    what: format!("lock {}", path.display()),
                    error,
                });
            }
        }
        // The holder's pid, for a person looking at the directory.
        let _ = f
            .set_len(0)
            .and_then(|()| writeln!(f, "{}", std::process::id()));
        Ok(f)
    }

    fn create_segment(wal_dir: &Path, i: u32) -> Result<File, OpenError> {
        let p = wal_dir.join(segment_name(i));
        let f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&p)
            .map_err(io_err(|| format!("create {}", p.display())))?;
        sync_dir(wal_dir).map_err(io_err(|| format!("sync {}", wal_dir.display())))?;
        Ok(f)
    }

    /// Replays a checkpoint directory's segments; returns its size.
    fn replay_checkpoint(p: &Path, rp: &mut Replay) -> Result<u64, OpenError> {
        let bad = |reason: String| OpenError::BadCheckpoint {
            path: p.to_path_buf(),
            reason,
        };
        let mut files: Vec<u32> = fs::read_dir(p)
            .map_err(|e| bad(e.to_string()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect();
        files.sort_unstable();
        let mut size = 0;
        for f in files {
            let q = p.join(segment_name(f));
            let bytes = fs::read(&q).map_err(|e| bad(format!("{}: {e}", q.display())))?;
            size += bytes.len() as u64;
            let (recs, err) = segment::read_segment(&bytes);
            if let Some(err) = err {
                return Err(bad(format!("{}: {err:?}", q.display())));
            }
            for r in &recs {
                match r.payload() {
                    Some(pl) => rp.record(&pl),
                    None => rp.malformed(),
                }
            }
        }
        Ok(size)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Counters.
    pub fn stats(&self) -> &WalStats {
        &self.stats
    }

    /// Retention keeps segment `mark` and later ones (remote-write queues set it to the
    /// oldest segment they have not sent; `u32::MAX` needs none), unless the size bound
    /// forces their deletion ([`WalStats::segments_deleted_unsent`]).
    pub fn keep_segments_from(&mut self, mark: std::sync::Arc<std::sync::atomic::AtomicU32>) {
        self.keep_from = Some(mark);
    }

    /// The `wal/` directory.
    pub fn wal_dir(&self) -> &Path {
        &self.wal_dir
    }

    /// The segment being written.
    pub fn current_segment(&self) -> u32 {
        self.current
    }

    /// Bytes on disk: segments and checkpoint.
    pub fn disk_size(&self) -> u64 {
        self.closed.values().map(|s| s.size).sum::<u64>()
            + self.seg.len()
            + self.checkpoint.map_or(0, |c| c.1)
    }

    /// Appends a group of batches: one series record (the label sets the WAL does not
    /// hold yet, including series of a failed write that these samples use), then one
    /// samples record. `now_ms` (wall time) dates the segments for age-bounded
    /// retention.
    pub fn append(&mut self, batches: &[Batch], now_ms: i64) -> Appended {
        let samples: u64 = batches.iter().map(|b| b.samples.len() as u64).sum();
        let mut out = Appended {
            stored: 0,
            lost: 0,
            error: None,
        };
        // The series: new label sets are declared under the agent's ref; a label set
        // the WAL holds already maps the agent's ref to the WAL's.
        let mut again: Vec<(SeriesRef, Labels)> = Vec::new();
        if !self.pending.is_empty() {
            let mut seen = BTreeSet::new();
            let used = batches.iter().flat_map(|b| {
                b.samples
                    .iter()
                    .map(|p| p.series)
                    .chain(b.histograms.iter().map(|h| h.series))
            });
            for r in used {
                if let Some(l) = self.pending.get(&r.0)
                    && seen.insert(r.0)
                {
                    again.push((r, l.clone()));
                }
            }
        }
        let mut declare: Vec<(SeriesRef, &Labels, Key128)> = Vec::new();
        let mut dups: Vec<(SeriesRef, &Labels, Key128)> = Vec::new();
        let mut in_group: IntMap<Key128, u64> = IntMap::default();
        for (r, l) in again.iter().map(|(r, l)| (*r, l)).chain(
            batches
                .iter()
                .flat_map(|b| b.series.iter().map(|(r, l)| (*r, l))),
        ) {
            let h = l.key();
            if let Some(w) = self.declared.ref_of(h) {
                if w != r.0 {
                    self.remap.insert(r.0, w);
                }
                if let Some(st) = self.declared.state_mut(w) {
                    st.users += 1;
                    st.retired_at = u32::MAX;
                }
                self.pending.remove(&r.0);
            } else {
                match in_group.entry(h) {
                    std::collections::hash_map::Entry::Occupied(_) => dups.push((r, l, h)),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(r.0);
                        declare.push((r, l, h));
                    }
                }
            }
        }
        let mut failed = false;
        if !declare.is_empty() {
            self.rec.clear();
            record::series(&mut self.rec, declare.iter().map(|(r, l, _)| (*r, *l)));
            match self.put(now_ms) {
                Ok(()) => {
                    self.stats.series += declare.len() as u64;
                    for &(r, _, hash) in &declare {
                        self.pending.remove(&r.0);
                        self.declared.insert(
                            hash,
                            r.0,
                            RefState {
                                users: 1,
                                retired_at: u32::MAX,
                            },
                        );
                    }
                    // Two agent refs with one new label set in this group: the second
                    // maps to the first.
                    for &(r, _, h) in &dups {
                        if let Some(&w) = in_group.get(&h) {
                            self.remap.insert(r.0, w);
                            if let Some(st) = self.declared.state_mut(w) {
                                st.users += 1;
                            }
                        }
                    }
                }
                Err(e) => {
                    for &(r, l, _) in declare.iter().chain(&dups) {
                        self.pending.insert(r.0, l.clone());
                    }
                    out.error = Some(e);
                    failed = true;
                }
            }
        }
        if samples > 0 && !failed {
            self.rec.clear();
            let remap = &self.remap;
            let mut max_t = i64::MIN;
            let points = batches.iter().flat_map(|b| b.samples.iter()).map(|p| {
                max_t = max_t.max(p.t);
                // Most of the time nothing is remapped: no lookup at all.
                if remap.is_empty() {
                    return *p;
                }
                match remap.get(&p.series.0) {
                    Some(&w) => Point {
                        series: SeriesRef(w),
                        ..*p
                    },
                    None => *p,
                }
            });
            record::samples_iter(&mut self.rec, points);
            match self.put(now_ms) {
                Ok(()) => {
                    out.stored = samples;
                    self.stats.samples += samples;
                    self.current_max_t = self.current_max_t.max(max_t);
                }
                Err(e) => {
                    out.error = Some(e);
                    failed = true;
                }
            }
        }
        // Native histograms, after the float samples, one record per kind (integer and
        // float, exponential and custom buckets), as Prometheus's agent logs them.
        let histograms: u64 = batches.iter().map(|b| b.histograms.len() as u64).sum();
        if histograms > 0 && !failed {
            let remap = &self.remap;
            let mapped: Vec<trawl_core::batch::HistogramPoint>;
            let all: Vec<&trawl_core::batch::HistogramPoint> = if remap.is_empty() {
                batches.iter().flat_map(|b| b.histograms.iter()).collect()
            } else {
                mapped = batches
                    .iter()
                    .flat_map(|b| b.histograms.iter())
                    .map(|h| match remap.get(&h.series.0) {
                        Some(&w) => trawl_core::batch::HistogramPoint {
                            series: SeriesRef(w),
                            ..h.clone()
                        },
                        None => h.clone(),
                    })
                    .collect();
                mapped.iter().collect()
            };
            let mut kinds: Vec<u8> = all.iter().map(|h| record::histogram_kind(&h.h)).collect();
            kinds.sort_unstable();
            kinds.dedup();
            for k in kinds {
                self.rec.clear();
                record::histograms(&mut self.rec, k, all.iter().copied());
                if let Err(e) = self.put(now_ms) {
                    out.error = Some(e);
                    failed = true;
                    break;
                }
            }
            if !failed {
                self.stats.histograms += histograms;
                let max_t = all.iter().map(|h| h.t).max().unwrap_or(i64::MIN);
                self.current_max_t = self.current_max_t.max(max_t);
            }
        }
        // The exemplars, after their samples (as Prometheus's agent logs them).
        let exemplars: u64 = batches.iter().map(|b| b.exemplars.len() as u64).sum();
        if exemplars > 0 && !failed {
            self.rec.clear();
            let remap = &self.remap;
            let mapped: Vec<trawl_core::batch::ExemplarPoint>;
            let all: Vec<&trawl_core::batch::ExemplarPoint> = if remap.is_empty() {
                batches.iter().flat_map(|b| b.exemplars.iter()).collect()
            } else {
                mapped = batches
                    .iter()
                    .flat_map(|b| b.exemplars.iter())
                    .map(|e| match remap.get(&e.series.0) {
                        Some(&w) => trawl_core::batch::ExemplarPoint {
                            series: SeriesRef(w),
                            ..e.clone()
                        },
                        None => e.clone(),
                    })
                    .collect();
                mapped.iter().collect()
            };
            record::exemplars(&mut self.rec, all);
            match self.put(now_ms) {
                Ok(()) => self.stats.exemplars += exemplars,
                Err(e) => {
                    // The samples are stored; only the exemplars are lost.
                    out.error = Some(e);
                    self.stats.write_errors += 1;
                }
            }
        }
        if failed {
            out.lost = samples;
            self.stats.lost_samples += samples;
            self.stats.write_errors += 1;
        }
        // Retirement holds whatever happened to the write: the agent never uses these
        // refs again.
        for r in batches.iter().flat_map(|b| &b.retired) {
            if self.pending.remove(&r.0).is_some() {
                continue;
            }
            let w = self.remap.remove(&r.0).unwrap_or(r.0);
            if let Some(st) = self.declared.state_mut(w) {
                st.users = st.users.saturating_sub(1);
                if st.users == 0 {
                    st.retired_at = self.current;
                }
            }
        }
        out
    }

    /// Writes `self.rec` as one record, rotating first if it would not fit.
    fn put(&mut self, now_ms: i64) -> io::Result<()> {
        if !self.seg.is_empty()
            && self.seg.len() + SegmentWriter::bound(self.rec.len()) > self.opts.segment_size
        {
            self.rotate(now_ms)?;
        }
        let start = self.seg.len();
        if self.opts.compress {
            self.seg.append_compressed(&self.rec);
        } else {
            self.seg.append(&self.rec);
        }
        let end = self.seg.len();
        let written = self.write_out();
        // A large record (a first scrape's series) must not size the buffers for good.
        self.seg.trim(KEEP_BUFFER);
        written?;
        self.hand_off(start, end);
        if self.rec.first() == Some(&record::kind::SERIES) {
            self.current_series.push((start, end));
        }
        if self.rec.capacity() > KEEP_BUFFER {
            self.rec = Vec::new();
        }
        self.stats.records += 1;
        Ok(())
    }

    /// Keeps a copy of the record just written at `start..end` for remote write, while a
    /// queue wants them and within [`WRITTEN_MAX`].
    fn hand_off(&mut self, start: u64, end: u64) {
        let wanted = self
            .keep_from
            .as_ref()
            .is_some_and(|m| m.load(std::sync::atomic::Ordering::Acquire) != u32::MAX);
        if !wanted || self.written_full {
            return;
        }
        if self.rec.len() > WRITTEN_RECORD_MAX || self.written_bytes + self.rec.len() > WRITTEN_MAX
        {
            self.written_full = true;
            return;
        }
        self.written_bytes += self.rec.len();
        self.written.push(Written {
            segment: self.current,
            after: start,
            end,
            payload: std::sync::Arc::from(&self.rec[..]),
        });
    }

    /// The records written since the last call, in order (see [`Written`]).
    pub fn take_written(&mut self) -> Vec<Written> {
        self.written_bytes = 0;
        self.written_full = false;
        std::mem::take(&mut self.written)
    }

    /// Writes what the segment writer holds; on failure truncates the file back to its
    /// last whole record, so the segment stays readable.
    fn write_out(&mut self) -> io::Result<()> {
        let start = self.seg.taken();
        let file = &mut self.file;
        match self.seg.flush(|b| file.write_all(b)) {
            Ok(n) => {
                self.stats.bytes += n as u64;
                self.unsynced = true;
                Ok(())
            }
            Err(e) => {
                // If even the truncation fails, the tail is repaired at the next open.
                let _ = self
                    .file
                    .set_len(start)
                    .and_then(|()| self.file.seek(SeekFrom::Start(start)).map(drop));
                Err(e)
            }
        }
    }

    /// Pads and syncs the current segment and starts the next one; then retention.
    fn rotate(&mut self, now_ms: i64) -> io::Result<()> {
        self.seg.pad_page();
        self.write_out()?;
        self.timed_sync()?;
        let next = self.current + 1;
        let file = Self::create_segment(&self.wal_dir, next).map_err(|e| match e {
            OpenError::Io { error, .. } => error,
            other => io::Error::other(other.to_string()),
        })?;
        self.closed.insert(
            self.current,
            SegInfo {
                size: self.seg.len(),
                max_t: self.current_max_t,
                series: std::mem::take(&mut self.current_series),
            },
        );
        self.file = file;
        self.seg = SegmentWriter::new();
        self.current = next;
        // `current_max_t` carries over: a segment is dated by the newest sample written
        // up to its end, so one holding only series records is as old as what preceded it.
        self.unsynced = false;
        self.stats.segments_created += 1;
        if self.retention(now_ms).is_err() {
            self.stats.retention_errors += 1;
        }
        Ok(())
    }

    /// Deletes the oldest segments beyond the size or time bound, behind a checkpoint.
    fn retention(&mut self, now_ms: i64) -> io::Result<()> {
        // Segments from this one on are still needed by a remote-write queue.
        let needed = self
            .keep_from
            .as_ref()
            .map_or(u32::MAX, |k| k.load(std::sync::atomic::Ordering::Acquire));
        let mut total = self.disk_size();
        let oldest_kept = self
            .opts
            .retention_time
            .map(|d| now_ms.saturating_sub(d.as_millis() as i64));
        let mut cut = None;
        // Segments with no sample up to their end (series records only, at the start of
        // a new WAL) have no age: they go with the first later segment that does.
        let mut undated = 0;
        for (&i, info) in &self.closed {
            if self.opts.retention_size > 0 && total > self.opts.retention_size {
                // The size bound wins over a queue's needs: counted, and the queue
                // counts the samples it lost when it finds the segment gone.
                if i >= needed {
                    self.stats.segments_deleted_unsent += 1;
                }
                cut = Some(i);
                total -= info.size;
                continue;
            }
            if i >= needed {
                break;
            }
            if self.opts.delete_sent && needed != u32::MAX {
                // Sent by every queue: not needed any more.
                cut = Some(i);
                total -= undated + info.size;
                undated = 0;
                continue;
            }
            if info.max_t == i64::MIN {
                undated += info.size;
                continue;
            }
            if oldest_kept.is_none_or(|o| info.max_t >= o) {
                break;
            }
            cut = Some(i);
            total -= undated + info.size;
            undated = 0;
        }
        match cut {
            Some(n) => self.checkpoint(n),
            None => Ok(()),
        }
    }

    /// Writes `checkpoint.N` with the series still needed, then deletes segments `..=N`
    /// and the previous checkpoint.
    fn checkpoint(&mut self, n: u32) -> io::Result<()> {
        let keep = |declared: &Declared, r: u64| {
            declared
                .state(r)
                .is_some_and(|st| st.users > 0 || st.retired_at > n)
        };
        let mut kept: BTreeMap<u64, Labels> = BTreeMap::new();
        let mut take = |recs: Vec<segment::ReadRecord>, declared: &Declared| {
            for r in recs {
                let Some(pl) = r.payload() else { continue };
                if pl.first() != Some(&record::kind::SERIES) {
                    continue;
                }
                for (r, l) in record::decode_series(&pl).unwrap_or_default() {
                    if keep(declared, r.0) {
                        kept.entry(r.0).or_insert(l);
                    }
                }
            }
        };
        // The previous checkpoint holds only series: read it whole.
        if let Some((c, _)) = self.checkpoint {
            let d = self.wal_dir.join(format!("checkpoint.{c:08}"));
            let mut files: Vec<PathBuf> = fs::read_dir(&d)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            files.sort();
            for p in files {
                take(segment::read_segment(&fs::read(p)?).0, &self.declared);
            }
        }
        // Of the segments, only the series records, where the writer (or the replay at
        // open) saw them.
        for (&i, info) in self.closed.range(..=n) {
            if info.series.is_empty() {
                continue;
            }
            let mut f = File::open(self.wal_dir.join(segment_name(i)))?;
            let mut buf = Vec::new();
            for &(start, end) in &info.series {
                buf.resize((end - start) as usize, 0);
                f.seek(SeekFrom::Start(start))?;
                io::Read::read_exact(&mut f, &mut buf)?;
                take(
                    segment::read_segment_from(&buf, start as usize).0,
                    &self.declared,
                );
            }
        }
        let tmp = self.wal_dir.join(format!("checkpoint.{n:08}.tmp"));
        let done = self.wal_dir.join(format!("checkpoint.{n:08}"));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir(&tmp)?;
        let mut w = SegmentWriter::new();
        let all: Vec<(SeriesRef, Labels)> =
            kept.into_iter().map(|(r, l)| (SeriesRef(r), l)).collect();
        for chunk in all.chunks(CHECKPOINT_SERIES_PER_RECORD) {
            let mut rec = Vec::new();
            record::series(&mut rec, chunk.iter().map(|(r, l)| (*r, l)));
            if self.opts.compress {
                w.append_compressed(&rec);
            } else {
                w.append(&rec);
            }
        }
        w.pad_page();
        let bytes = w.take();
        {
            let mut f = File::create(tmp.join(segment_name(0)))?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        sync_dir(&tmp)?;
        fs::rename(&tmp, &done)?;
        sync_dir(&self.wal_dir)?;
        // The checkpoint is in place: what it replaces can go.
        let old: Vec<u32> = self.closed.range(..=n).map(|(&i, _)| i).collect();
        for i in old {
            fs::remove_file(self.wal_dir.join(segment_name(i)))?;
            self.closed.remove(&i);
            self.stats.segments_deleted += 1;
        }
        if let Some((c, _)) = self.checkpoint.replace((n, bytes.len() as u64)) {
            fs::remove_dir_all(self.wal_dir.join(format!("checkpoint.{c:08}")))?;
        }
        // Forgetting a ref forgets its label set too where that maps to it.
        self.declared.retain(|st| st.users > 0 || st.retired_at > n);
        self.stats.checkpoints += 1;
        Ok(())
    }

    /// Checks that the data directory is still the one opened: its lock file exists and
    /// the current segment's path names the file being written. If the directory was
    /// removed or replaced (`rm -rf` of the data directory while running), writes would
    /// go on into unlinked files and be lost silently; this says so instead.
    pub fn check_dir(&self) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt as _;
        // Only a file that is not there, or another file in its place, counts: a
        // passing error (EIO, EACCES) is not a removed directory.
        let lock = self.dir.join("lock");
        if let Err(e) = fs::symlink_metadata(&lock)
            && e.kind() == io::ErrorKind::NotFound
        {
            return Err(format!(
                "{} is gone: the data directory was removed or replaced while running",
                lock.display()
            ));
        }
        let path = self.wal_dir.join(segment_name(self.current));
        let on_disk = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(format!(
                    "{}: {e}: the data directory was removed or replaced while running",
                    path.display()
                ));
            }
            Err(_) => return Ok(()),
        };
        let Ok(open) = self.file.metadata() else {
            return Ok(());
        };
        if (on_disk.dev(), on_disk.ino()) != (open.dev(), open.ino()) {
            return Err(format!(
                "{} is not the segment being written: the data directory was replaced while running",
                path.display()
            ));
        }
        Ok(())
    }

    /// True if something was written since the last sync.
    pub fn unsynced(&self) -> bool {
        self.unsynced
    }

    /// Syncs the current segment to disk.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.unsynced {
            self.timed_sync()?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// `fdatasync`s the current segment, timing it.
    fn timed_sync(&mut self) -> io::Result<()> {
        let t = std::time::Instant::now();
        self.file.sync_data()?;
        let now = trawl_core::time::Instant(self.origin.elapsed().as_nanos() as u64);
        self.fsync.observe(now, t.elapsed().as_secs_f64());
        self.stats.syncs += 1;
        Ok(())
    }

    /// The WAL's self-metrics under Prometheus's names (3.x's `wlog` metrics and the
    /// agent storage's), as of now.
    pub fn metrics(&self) -> Metrics {
        let mut m = Metrics::new();
        let s = &self.stats;
        let now = trawl_core::time::Instant(self.origin.elapsed().as_nanos() as u64);
        m.summary(
            "prometheus_tsdb_wal_fsync_duration_seconds",
            "Duration of write log fsync.",
            vec![],
            &self.fsync,
            now,
        );
        let counters: [(&'static str, &'static str, u64); 5] = [
            (
                "prometheus_tsdb_wal_writes_failed_total",
                "Total number of write log writes that failed.",
                s.write_errors,
            ),
            (
                "prometheus_tsdb_wal_truncations_total",
                "Total number of write log truncations attempted.",
                s.checkpoints + s.retention_errors,
            ),
            (
                "prometheus_tsdb_wal_truncations_failed_total",
                "Total number of write log truncations that failed.",
                s.retention_errors,
            ),
            (
                "prometheus_agent_checkpoint_creations_total",
                "Number of WAL checkpoint creations",
                s.checkpoints,
            ),
            (
                "prometheus_agent_checkpoint_creations_failed_total",
                "Number of WAL checkpoint creations that failed",
                s.retention_errors,
            ),
        ];
        for (name, help, v) in counters {
            m.counter(name, help, vec![], v as f64);
        }
        for (kind, v) in [("float", s.samples), ("histogram", s.histograms)] {
            m.counter(
                "prometheus_agent_samples_appended_total",
                "Total number of samples appended to the storage",
                vec![("type", kind.to_owned())],
                v as f64,
            );
        }
        m.counter(
            "prometheus_agent_exemplars_appended_total",
            "Total number of exemplars appended to the storage",
            vec![],
            s.exemplars as f64,
        );
        m.gauge(
            "prometheus_tsdb_wal_segment_current",
            "Write log segment index that TSDB is currently writing to.",
            vec![],
            self.current as f64,
        );
        m.gauge(
            "prometheus_tsdb_wal_storage_size_bytes",
            "Size of the write log directory.",
            vec![],
            self.disk_size() as f64,
        );
        m
    }

    /// Pads the last page (as Prometheus does at a clean shutdown) and syncs.
    pub fn close(mut self) -> io::Result<WalStats> {
        self.seg.pad_page();
        self.write_out()?;
        self.sync()?;
        Ok(self.stats)
    }
}
