//! From a scrape response to one atomic batch (Prometheus 3.x `scrapeAndReport` /
//! `append`): the series cache, target labels (`honor_labels`), `metric_relabel_configs`,
//! limits, duplicates, staleness and the report series.
//!
//! A loop owns one [`SeriesCache`] for its lifetime (kept across reloads that only change
//! intervals, timeouts, limits or the HTTP client). Each scrape runs a [`ScrapeRun`] fed the
//! body's entries; at the end it either commits — samples, stale markers for the series
//! that vanished, the report series — or, on any error, rolls back to stale markers for
//! everything the previous scrape saw plus report series with `up` = 0. Either way the
//! result is one [`Batch`].
//!
//! The cache is keyed by the series text as exposed (`name{labels}` byte for byte, held
//! as its 128-bit [`Key128`]): a repeat scrape finds each series with one hash of the line
//! and one comparison, without decoding its labels or allocating. The cache keeps no
//! labels: a new series' labels go out once in its batch, and storage keeps them.

use std::sync::Arc;

use hashbrown::HashTable;

use crate::config::ScrapeConfig;
use crate::exposition::created::{Disposition, StartTimes};
use crate::exposition::float::{NORMAL_NAN, STALE_NAN};
use crate::exposition::{Entry, Exemplar, HistogramSample, MetricType, Sample};
use crate::histogram::{self, Histogram};
use crate::labels::{self, Key128, Labels, LabelsBuilder};
use crate::relabel::{self, Outcome};

pub use crate::batch::{Batch, ExemplarPoint, HistogramPoint, Point, SeriesRef};

/// What a series' last stored sample was (its stale marker is of the same kind).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Stored {
    #[default]
    Float,
    IntHistogram,
    FloatHistogram,
}

/// A sample's value: a float or a native histogram.
enum Val {
    Float(f64),
    Hist(Histogram),
}

/// Hands out series refs: each one once, never reused; after a restart
/// ([`Refs::restore`]), a label set the WAL already holds gets its ref back, with the time
/// of its last stored sample (so a sample at or before it is out of order, as it would
/// be for Prometheus's head).
#[derive(Debug)]
pub struct Refs {
    next: u64,
    handed_out: bool,
    /// (labels hash, ref, last sample time, labels) of restored series not yet claimed.
    restored: HashTable<(u64, SeriesRef, i64, Labels)>,
    /// Unclaimed restored series are forgotten after this wall time (ms).
    restored_until: i64,
}

impl Default for Refs {
    fn default() -> Self {
        Refs::new()
    }
}

/// How long restored series wait to be claimed by a scrape (one hour): a target that
/// comes back later gets new refs, which readers merge by label set anyway.
const RESTORE_WINDOW_MS: i64 = 3_600_000;

impl Refs {
    /// Refs from 1.
    pub fn new() -> Refs {
        Refs {
            next: 1,
            handed_out: false,
            restored: HashTable::new(),
            restored_until: i64::MIN,
        }
    }

    /// The next ref a new series would get.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Restored series still waiting for a scrape to claim them.
    pub fn unclaimed(&self) -> usize {
        self.restored.len()
    }

    /// Takes what a WAL held (at wall time `now_ms`). Refused (false) once any ref has
    /// been handed out: a ref given before could collide with one the WAL holds.
    pub fn restore(&mut self, r: crate::wal::replay::Restored, now_ms: i64) -> bool {
        if self.handed_out {
            return false;
        }
        self.next = self.next.max(r.next_ref);
        for s in r.series {
            self.next = self.next.max(s.series.0.saturating_add(1));
            let h = s.labels.hash();
            self.restored
                .insert_unique(h, (h, s.series, s.last_t, s.labels), |e| e.0);
        }
        self.restored_until = now_ms.saturating_add(RESTORE_WINDOW_MS);
        true
    }

    /// Forgets unclaimed restored series once their window is over.
    fn expire(&mut self, now_ms: i64) {
        if now_ms > self.restored_until && !self.restored.is_empty() {
            self.restored = HashTable::new();
        }
    }

    /// The ref for a new series with these labels, and the time of its last stored
    /// sample (`i64::MIN` if none).
    fn alloc(&mut self, labels: &Labels, now_ms: i64) -> (SeriesRef, i64) {
        self.handed_out = true;
        self.expire(now_ms);
        if !self.restored.is_empty() {
            let h = labels.hash();
            if let Ok(e) = self.restored.find_entry(h, |e| e.0 == h && e.3 == *labels) {
                let ((_, r, last_t, _), _) = e.remove();
                return (r, last_t);
            }
        }
        let r = SeriesRef(self.next);
        self.next += 1;
        (r, i64::MIN)
    }
}

/// What a loop knows of one metric family (for a metadata API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyMeta {
    /// The type.
    pub kind: MetricType,
    /// The help text.
    pub help: String,
    /// The unit.
    pub unit: String,
    last_iter: u64,
}

/// A cached series holds no text: its exposed spelling and its final labels are kept
/// as [`Key128`]s (16 bytes each instead of two allocations of the whole series), so a
/// series costs the cache 80 bytes plus its share of two hash tables. Only a loop's own
/// series are compared, so a collision (odds of about 10^-21 among a billion series)
/// could at worst merge two series of one target, something the target can do anyway
/// by exposing one series twice.
#[derive(Debug)]
enum Slot {
    Free,
    Series {
        /// The key of the series text as exposed.
        key: Key128,
        series: SeriesRef,
        /// The key of the final labels (to find the series under another spelling).
        labels: Key128,
        /// The last scrape that exposed it.
        last_iter: u64,
        /// The last scrape in which it counts as seen for staleness.
        seen_iter: u64,
        last_t: i64,
        /// The last value's bits (a histogram's [`Histogram::fingerprint`]).
        last_v: u64,
        /// What the last value was.
        stored: Stored,
    },
    Dropped {
        key: Key128,
        last_iter: u64,
    },
    /// Another spelling of a cached series (`a{x="1",y="2"}` and `a{y="2",x="1"}`): the
    /// same series, so the same ref and the same staleness bookkeeping.
    Alias {
        key: Key128,
        target: u32,
        last_iter: u64,
    },
}

impl Slot {
    fn key(&self) -> Key128 {
        match self {
            Slot::Series { key, .. } | Slot::Dropped { key, .. } | Slot::Alias { key, .. } => *key,
            Slot::Free => Key128::default(),
        }
    }
}

/// The report series' names, in the order they are appended (the last three only with
/// `extra_scrape_metrics`).
pub const REPORT_SERIES: [&str; 8] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "scrape_timeout_seconds",
    "scrape_sample_limit",
    "scrape_body_size_bytes",
];

/// A loop's memory of what its target exposed.
#[derive(Debug, Default)]
pub struct SeriesCache {
    table: HashTable<u32>,
    /// Series slots by the hash of their final labels.
    by_labels: HashTable<u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    iter: u64,
    /// Slots seen (for staleness) by the last scrape that committed samples.
    prev_seen: Vec<u32>,
    report: [Option<(SeriesRef, i64)>; 8],
    /// Family metadata, found by the hash of the family name.
    meta: Vec<(Box<str>, FamilyMeta)>,
    meta_index: HashTable<u32>,
    /// The family the last metadata line named.
    last_meta: usize,
    size_at_success: usize,
    /// Samples of the last scrape (to size the next one's vectors up front).
    last_samples: usize,
    /// Stored series removed since the last batch took them.
    retired: Vec<SeriesRef>,
    /// The last exemplar stored per series slot (a hash of labels, value and time), to
    /// drop repeats as Prometheus's agent does (`validateExemplar`); only series that
    /// had one are here.
    last_exemplar: std::collections::BTreeMap<u32, u64>,
    /// Counters for the agent's metrics.
    pub stats: CacheStats,
}

/// Per-loop counters (Prometheus's `prometheus_target_scrapes_*` families).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Samples with a timestamp older than the series' last one.
    pub out_of_order: u64,
    /// Samples repeating a series' timestamp with another value, or a series exposed
    /// twice in one scrape.
    pub duplicate_timestamp: u64,
    /// Samples with a timestamp too far in the future.
    pub out_of_bounds: u64,
    /// Scrapes failed on `sample_limit`.
    pub exceeded_sample_limit: u64,
    /// Scrapes failed on `native_histogram_bucket_limit`.
    pub exceeded_bucket_limit: u64,
    /// Scrapes failed on a label limit.
    pub exceeded_label_limits: u64,
    /// Scrapes failed on `body_size_limit`.
    pub exceeded_body_size_limit: u64,
    /// Flushes forced by a cache grown during failing scrapes.
    pub cache_flush_forced: u64,
    /// Exemplars stored.
    pub exemplars_appended: u64,
    /// Exemplars refused: a repeated label name, or labels longer than 128 characters
    /// (Prometheus logs these at debug level and goes on).
    pub exemplars_invalid: u64,
}

impl CacheStats {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &CacheStats) {
        self.out_of_order += other.out_of_order;
        self.duplicate_timestamp += other.duplicate_timestamp;
        self.out_of_bounds += other.out_of_bounds;
        self.exceeded_sample_limit += other.exceeded_sample_limit;
        self.exceeded_bucket_limit += other.exceeded_bucket_limit;
        self.exceeded_label_limits += other.exceeded_label_limits;
        self.exceeded_body_size_limit += other.exceeded_body_size_limit;
        self.cache_flush_forced += other.cache_flush_forced;
        self.exemplars_appended += other.exemplars_appended;
        self.exemplars_invalid += other.exemplars_invalid;
    }
}

fn slot_labels_hash(slots: &[Slot], j: u32) -> u64 {
    match &slots[j as usize] {
        Slot::Series { labels, .. } => labels.0,
        _ => 0,
    }
}

fn hash_text(s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

impl SeriesCache {
    /// An empty cache.
    pub fn new() -> SeriesCache {
        SeriesCache::default()
    }

    /// Series kept (stored), without dropped series and other spellings.
    pub fn stored_len(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s, Slot::Series { .. }))
            .count()
    }

    /// Series currently cached (kept and dropped).
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every series (the loop is ending) and returns every stored ref the cache
    /// held, report series included, with those retired earlier and not yet taken.
    pub fn retire_all(&mut self) -> Vec<SeriesRef> {
        for i in 0..self.slots.len() as u32 {
            self.remove(i, true);
        }
        self.prev_seen.clear();
        let mut r = std::mem::take(&mut self.retired);
        r.extend(
            self.report
                .iter_mut()
                .filter_map(|x| x.take())
                .map(|(s, _)| s),
        );
        r
    }

    /// The metadata of the families last exposed, by family name.
    pub fn metadata(&self) -> std::collections::BTreeMap<&str, &FamilyMeta> {
        self.meta.iter().map(|(n, m)| (&**n, m)).collect()
    }

    fn find(&self, key: Key128) -> Option<u32> {
        let slots = &self.slots;
        self.table
            .find(key.0, |&i| slots[i as usize].key() == key)
            .copied()
    }

    fn insert(&mut self, slot: Slot) -> u32 {
        let h = slot.key().0;
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                // A cache of 2^32 series does not fit in memory.
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let slots = &self.slots;
        self.table
            .insert_unique(h, i, |&j| slots[j as usize].key().0);
        if let Slot::Series { labels, .. } = &self.slots[i as usize] {
            self.by_labels
                .insert_unique(labels.0, i, |&j| slot_labels_hash(slots, j));
        }
        i
    }

    /// The series slot whose final labels have this key.
    fn find_labels(&self, l: Key128) -> Option<u32> {
        let slots = &self.slots;
        self.by_labels
            .find(
                l.0,
                |&j| matches!(&slots[j as usize], Slot::Series { labels, .. } if *labels == l),
            )
            .copied()
    }

    /// Frees a slot; a series that reached storage (`stored`) is retired.
    fn remove(&mut self, i: u32, stored: bool) {
        let Some(slot) = self.slots.get(i as usize) else {
            return;
        };
        if matches!(slot, Slot::Free) {
            return;
        }
        if let Slot::Series { series, .. } = slot
            && stored
        {
            self.retired.push(*series);
        }
        let h = slot.key().0;
        if let Ok(e) = self.table.find_entry(h, |&j| j == i) {
            e.remove();
        }
        if let Slot::Series { labels, .. } = slot
            && let Ok(e) = self.by_labels.find_entry(labels.0, |&j| j == i)
        {
            e.remove();
        }
        if !self.last_exemplar.is_empty() {
            self.last_exemplar.remove(&i);
        }
        self.slots[i as usize] = Slot::Free;
        self.free.push(i);
    }

    /// Appends a stale marker at `t` for every series the last committed scrape saw,
    /// except those seen again by scrape `fresh`, and records it as their last sample.
    fn mark_stale(
        &mut self,
        t: i64,
        fresh: Option<u64>,
        out: &mut Vec<Point>,
        hout: &mut crate::batch::Histograms,
    ) {
        for &i in &self.prev_seen {
            if let Some(Slot::Series {
                series,
                seen_iter,
                last_t,
                stored,
                ..
            }) = self.slots.get_mut(i as usize)
                && fresh != Some(*seen_iter)
                && t > *last_t
            {
                *last_t = t;
                match stored {
                    Stored::Float => out.push(Point {
                        series: *series,
                        t,
                        v: STALE_NAN,
                    }),
                    // A histogram series gets a histogram marker, as Prometheus's head
                    // turns a scrape's stale NaN into one (`headAppender.Append`); its
                    // readers of any version see the series end either way.
                    Stored::IntHistogram | Stored::FloatHistogram => hout.push(HistogramPoint {
                        series: *series,
                        t,
                        h: Histogram::stale_marker(*stored == Stored::FloatHistogram),
                    }),
                }
            }
        }
    }

    /// Forgets what the last scrape did not expose, and metadata unseen for more than
    /// ten scrapes.
    fn flush(&mut self) {
        let iter = self.iter;
        let stale: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Slot::Series { last_iter, .. }
                | Slot::Dropped { last_iter, .. }
                | Slot::Alias { last_iter, .. }
                    if *last_iter != iter =>
                {
                    Some(i as u32)
                }
                _ => None,
            })
            .collect();
        for i in stale {
            self.remove(i, true);
        }
        // An alias never outlives its series.
        let orphans: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&i| match &self.slots[i as usize] {
                Slot::Alias { target, .. } => {
                    !matches!(self.slots.get(*target as usize), Some(Slot::Series { .. }))
                }
                _ => false,
            })
            .collect();
        for i in orphans {
            self.remove(i, true);
        }
        if self.meta.iter().any(|(_, m)| m.last_iter + 10 < iter) {
            self.meta.retain(|(_, m)| m.last_iter + 10 >= iter);
            self.meta_index.clear();
            for (i, (n, _)) in self.meta.iter().enumerate() {
                let meta = &self.meta;
                self.meta_index
                    .insert_unique(hash_text(n), i as u32, |&j| hash_text(&meta[j as usize].0));
            }
        }
        self.size_at_success = self.len();
        // Slots are most of a loop's memory: give back what doubling left unused.
        let n = self.slots.len();
        if self.slots.capacity() > n + n / 8 + 8 {
            self.slots.shrink_to(n + n / 16 + 4);
        }
    }
}

/// What a scrape needs to know about its target and job.
#[derive(Clone, Copy, Debug)]
pub struct ScrapeContext<'a> {
    /// The job.
    pub job: &'a Arc<str>,
    /// The target's URL.
    pub url: &'a Arc<str>,
    /// The scraping loop's id.
    pub loop_id: u64,
    /// The job's config.
    pub cfg: &'a ScrapeConfig,
    /// The target's public labels (no `__` names), attached to every series.
    pub target_labels: &'a Labels,
    /// The scrape's timestamp (ms): the wall-clock start of the scrape.
    pub append_time: i64,
    /// Samples stamped later than this (ms) are out of bounds (now + 10 min).
    pub max_time: i64,
    /// `created-timestamp-zero-ingestion`: `_created` lines of OpenMetrics counters,
    /// summaries and histograms are start timestamps, not samples, and a series' start
    /// is stored as a 0 sample before its first sample after it.
    pub start_timestamps: bool,
}

/// One scrape in progress.
#[derive(Debug)]
pub struct ScrapeRun {
    append_time: i64,
    total: u64,
    added: u64,
    series_added: u64,
    samples: Vec<Point>,
    new_series: Vec<(SeriesRef, Labels)>,
    new_slots: Vec<u32>,
    seen: Vec<u32>,
    limit_hit: bool,
    error: Option<String>,
    /// Series state before this scrape touched it: (slot, last_iter, last_t, last_v,
    /// stored),
    /// restored if the scrape fails.
    undo: Vec<(u32, u64, i64, u64, Stored)>,
    /// Samples that reached the sample limit's count.
    appended: u64,
    /// Decompressed body bytes (−1 when the body limit was hit).
    pub body_bytes: i64,
    oob: u64,
    ooo: u64,
    dup: u64,
    /// Start timestamps, when the scrape takes them.
    st: Option<Box<StState>>,
    /// Exemplars of stored samples.
    exemplars: Vec<ExemplarPoint>,
    /// Native histogram samples.
    histograms: Vec<HistogramPoint>,
    /// `native_histogram_bucket_limit` was hit.
    bucket_limit_hit: bool,
}

/// A stored sample waiting for its start timestamp: its series, its time, the series'
/// last time before this scrape, and for a histogram whether it is a float one.
type Wait = (SeriesRef, i64, i64, Option<bool>);

/// The zero samples of start timestamps, stored before the scrape's samples.
#[derive(Debug, Default)]
struct Zeros {
    floats: Vec<Point>,
    histograms: Vec<HistogramPoint>,
}

/// A scrape's start-timestamp bookkeeping (3.x `AppendSTZeroSample`).
#[derive(Debug, Default)]
struct StState {
    times: StartTimes,
    /// By token: the stored sample waiting for its start timestamp; `None` if it was
    /// not stored.
    waiting: Vec<Option<Wait>>,
    zeros: Zeros,
}

impl StState {
    /// A sample at `t` of `series` (last stored at `prev`) starts at `st`: a 0 sample
    /// (an empty histogram of the sample's kind for a histogram, 3.x
    /// `AppendHistogramSTZeroSample`) at `st` if it is before the sample and after
    /// anything stored (else Prometheus's agent refuses it as out of order, silently).
    fn zero(zeros: &mut Zeros, (series, t, prev, hist): Wait, st: i64) {
        if st < t && st > prev {
            match hist {
                None => zeros.floats.push(Point {
                    series,
                    t: st,
                    v: 0,
                }),
                Some(float) => zeros.histograms.push(HistogramPoint {
                    series,
                    t: st,
                    h: Histogram::empty(float),
                }),
            }
        }
    }

    fn resolver<'a>(
        waiting: &'a [Option<Wait>],
        zeros: &'a mut Zeros,
    ) -> impl FnMut(u64, Option<i64>) + 'a {
        move |token, st| {
            if let (Some(st), Some(Some(w))) = (st, waiting.get(token as usize)) {
                StState::zero(zeros, *w, st);
            }
        }
    }

    fn metadata(&mut self, family: &str) {
        let StState {
            times,
            waiting,
            zeros,
        } = self;
        times.metadata(family, &mut StState::resolver(waiting, zeros));
    }

    fn end(&mut self) {
        let StState {
            times,
            waiting,
            zeros,
        } = self;
        times.end(&mut StState::resolver(waiting, zeros));
    }
}

/// The outcome of a scrape, for the target's health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResult {
    /// The batch to store.
    pub batch: Batch,
    /// `Err` with the scrape's error if it failed.
    pub result: Result<(), String>,
}

impl ScrapeRun {
    /// A scrape stamped `append_time` (ms).
    pub fn new(cache: &mut SeriesCache, append_time: i64) -> ScrapeRun {
        cache.iter += 1;
        // Sized after the last scrape, so a repeat scrape never grows them.
        let n = cache.last_samples;
        ScrapeRun {
            append_time,
            total: 0,
            added: 0,
            series_added: 0,
            samples: Vec::with_capacity(n + REPORT_SERIES.len()),
            new_series: Vec::new(),
            new_slots: Vec::new(),
            seen: Vec::with_capacity(n),
            limit_hit: false,
            error: None,
            undo: Vec::with_capacity(n),
            appended: 0,
            body_bytes: 0,
            oob: 0,
            ooo: 0,
            dup: 0,
            st: None,
            exemplars: Vec::new(),
            histograms: Vec::new(),
            bucket_limit_hit: false,
        }
    }

    /// True once the scrape has failed (later entries are ignored).
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// Fails the scrape with `error` (the first error wins).
    pub fn fail(&mut self, error: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(error.into());
        }
    }

    /// Handles one entry of the body. An `Err` fails the scrape (and is remembered).
    pub fn entry(
        &mut self,
        cache: &mut SeriesCache,
        ctx: &ScrapeContext<'_>,
        refs: &mut Refs,
        e: Entry<'_>,
    ) -> Result<(), String> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        if ctx.start_timestamps && self.st.is_none() {
            self.st = Some(Box::default());
        }
        if let Some(st) = self.st.as_mut() {
            match &e {
                Entry::Help { name, .. } | Entry::Type { name, .. } | Entry::Unit { name, .. } => {
                    st.metadata(name)
                }
                Entry::Eof => st.end(),
                _ => {}
            }
        }
        let r = match e {
            Entry::Sample(s) => {
                let v = Val::Float(s.value);
                let x = s.exemplar.as_deref().map_or(&[][..], std::slice::from_ref);
                self.sample(cache, ctx, refs, &s, v, x)
            }
            Entry::Histogram(h) => {
                let HistogramSample {
                    sample,
                    histogram,
                    mut exemplars,
                } = *h;
                // 3.x sorts a sample's exemplars before appending them.
                exemplars.sort_by_key(|e| e.timestamp);
                self.sample(cache, ctx, refs, &sample, Val::Hist(histogram), &exemplars)
            }
            Entry::Help { name, text } => {
                meta(cache, name, |m| {
                    if m.help != text {
                        m.help = text.into_owned();
                    }
                });
                Ok(())
            }
            Entry::Type { name, kind } => {
                meta(cache, name, |m| m.kind = kind);
                Ok(())
            }
            Entry::Unit { name, unit } => {
                meta(cache, name, |m| {
                    if m.unit != unit {
                        m.unit = unit.to_owned();
                    }
                });
                Ok(())
            }
            Entry::Comment | Entry::Eof => Ok(()),
        };
        if let Err(e) = &r {
            self.fail(e.clone());
        }
        r
    }

    fn sample(
        &mut self,
        cache: &mut SeriesCache,
        ctx: &ScrapeContext<'_>,
        refs: &mut Refs,
        s: &Sample<'_>,
        val: Val,
        exemplars: &[Exemplar<'_>],
    ) -> Result<(), String> {
        // The start timestamp, or the token under which it will come.
        let mut st_token = None;
        let mut st_known = None;
        let mut val = val;
        if self.st.is_some() && s.start.is_some() {
            // Protobuf gives the start with the sample (3.x: 0 means none).
            st_known = s.start.filter(|&t| t != 0);
        } else if let Some(st) = self.st.as_mut() {
            let token = st.waiting.len() as u64;
            let StState {
                times,
                waiting,
                zeros,
            } = &mut **st;
            let d = times.sample(s, token, &mut StState::resolver(waiting, zeros));
            match d {
                // Not a sample (3.x skips it in the parser: not even counted).
                Disposition::Created => return Ok(()),
                Disposition::Known(v) => st_known = v,
                Disposition::Pending => {
                    waiting.push(None);
                    st_token = Some(token as usize);
                }
            }
        }
        self.total += 1;
        let cfg = ctx.cfg;
        let explicit = if cfg.honor_timestamps {
            s.timestamp
        } else {
            None
        };
        let t = explicit.unwrap_or(self.append_time);
        let iter = cache.iter;
        let key = Key128::of(s.series.as_bytes());
        let (slot, fresh) = match cache.find(key) {
            Some(i) => match cache.slots.get_mut(i as usize) {
                Some(Slot::Alias {
                    target, last_iter, ..
                }) => {
                    *last_iter = iter;
                    (*target, false)
                }
                _ => (i, false),
            },
            // Past `sample_limit` the scrape fails whatever follows: a series not seen
            // before is relabeled only to be counted (Prometheus 3.x's `append` keeps
            // parsing to report the total, `checkAddError`), never cached or given a
            // ref, so a body of a million new series costs no memory past the limit.
            None if self.limit_hit => {
                if self.new_series(cache, ctx, refs, s, key, false)?.is_some() {
                    self.added += 1;
                }
                return Ok(());
            }
            None => match self.new_series(cache, ctx, refs, s, key, true)? {
                Some(found) => found,
                None => return Ok(()),
            },
        };
        let (series, last_iter, seen_iter, last_t, last_v, stored) =
            match cache.slots.get_mut(slot as usize) {
                Some(Slot::Series {
                    series,
                    last_iter,
                    seen_iter,
                    last_t,
                    last_v,
                    stored,
                    ..
                }) => (*series, last_iter, seen_iter, last_t, last_v, stored),
                Some(Slot::Dropped { last_iter, .. }) => {
                    // Dropped by relabeling (now or in an earlier scrape).
                    *last_iter = iter;
                    return Ok(());
                }
                _ => return Ok(()),
            };
        let first = *last_iter != iter;
        // Every sample that survived relabeling counts in `added`, even one storage
        // refuses (Prometheus reports the number the target exposed).
        self.added += 1;
        if !first && explicit.is_none() {
            // The same series twice in one scrape: the first value stands. A second
            // spelling that relabeling merged into one series still counts as added,
            // as Prometheus (whose storage takes both samples) counts it.
            self.dup += 1;
            if fresh {
                self.series_added += 1;
            }
            return Ok(());
        }
        if first {
            self.undo
                .push((slot, *last_iter, *last_t, *last_v, *stored));
        }
        *last_iter = iter;
        if let Val::Hist(h) = &mut val {
            // 3.x `maxSchemaAppender` then `bucketLimitAppender`, before the sample limit.
            let max_schema = histogram::pick_schema(cfg.native_histogram_min_bucket_factor);
            if max_schema < histogram::EXPONENTIAL_SCHEMA_MAX
                && (histogram::EXPONENTIAL_SCHEMA_MIN_RESERVED
                    ..=histogram::EXPONENTIAL_SCHEMA_MAX_RESERVED)
                    .contains(&h.schema)
                && h.schema > max_schema
            {
                h.reduce_resolution(max_schema)?;
            }
            let limit = usize::try_from(cfg.native_histogram_bucket_limit).unwrap_or(usize::MAX);
            if limit > 0 && h.bucket_count() > limit {
                let exponential = (histogram::EXPONENTIAL_SCHEMA_MIN
                    ..=histogram::EXPONENTIAL_SCHEMA_MAX)
                    .contains(&h.schema);
                while exponential
                    && h.bucket_count() > limit
                    && h.schema > histogram::EXPONENTIAL_SCHEMA_MIN
                {
                    h.reduce_resolution(h.schema - 1)?;
                }
                if h.bucket_count() > limit {
                    // The scrape fails at its end; parsing goes on to count.
                    self.bucket_limit_hit = true;
                    return Ok(());
                }
            }
        }
        // `sample_limit` counts what reaches storage.
        self.appended += 1;
        if cfg.limits.sample_limit > 0 && self.appended > cfg.limits.sample_limit {
            self.limit_hit = true;
            return Ok(());
        }
        if t > ctx.max_time {
            self.oob += 1;
            return Ok(());
        }
        let v = match &val {
            Val::Float(x) if x.is_nan() => NORMAL_NAN,
            Val::Float(x) => x.to_bits(),
            Val::Hist(h) => {
                // The agent's `AppendHistogram` validates, and a refusal fails the
                // scrape (the sample is not counted as added).
                if let Err(e) = h.validate() {
                    self.added -= 1;
                    return Err(e);
                }
                h.fingerprint()
            }
        };
        if t < *last_t {
            self.ooo += 1;
            return Ok(());
        }
        if t == *last_t {
            if v != *last_v {
                self.dup += 1;
            }
            if fresh && !first {
                // A merged second spelling (see above).
                self.series_added += 1;
            }
            return Ok(());
        }
        let prev_t = std::mem::replace(last_t, t);
        *last_v = v;
        if explicit.is_none() || cfg.track_timestamps_staleness {
            *seen_iter = iter;
            self.seen.push(slot);
        }
        let histogram = matches!(val, Val::Hist(_));
        let mut hist_kind = None;
        match val {
            Val::Float(_) => {
                *stored = Stored::Float;
                self.samples.push(Point { series, t, v });
            }
            Val::Hist(h) => {
                *stored = if h.is_float() {
                    Stored::FloatHistogram
                } else {
                    Stored::IntHistogram
                };
                hist_kind = Some(h.is_float());
                self.histograms.push(HistogramPoint { series, t, h });
            }
        }
        for x in exemplars {
            // 3.x drops a histogram's exemplars without a timestamp (they cannot be
            // told apart from repeats).
            if histogram && x.timestamp.is_none() {
                continue;
            }
            self.exemplar(cache, slot, series, t, x);
        }
        if let Some(st) = self.st.as_mut() {
            let w = (series, t, prev_t, hist_kind);
            if let Some(start) = st_known {
                StState::zero(&mut st.zeros, w, start);
            } else if let Some(slot) = st_token.and_then(|k| st.waiting.get_mut(k)) {
                *slot = Some(w);
            }
        }
        if fresh && !self.bucket_limit_hit {
            self.series_added += 1;
        }
        Ok(())
    }

    /// The exemplar of a sample stored at `t` (3.x `scrapeLoop.append` and the agent's
    /// `AppendExemplar`): empty labels left out, labels sorted, the sample's time if it
    /// has none; refused (and counted) for a repeated label name or more than 128
    /// characters of names and values; dropped if it repeats the series' last one.
    fn exemplar(
        &mut self,
        cache: &mut SeriesCache,
        slot: u32,
        series: SeriesRef,
        t: i64,
        x: &Exemplar<'_>,
    ) {
        let mut pairs: Vec<crate::exposition::LabelPair<'_>> =
            x.labels().filter(|(_, v)| !v.is_empty()).collect();
        pairs.sort();
        let chars: usize = pairs
            .iter()
            .map(|(n, v)| n.chars().count() + v.chars().count())
            .sum();
        if pairs.windows(2).any(|w| w[0].0 == w[1].0) || chars > 128 {
            cache.stats.exemplars_invalid += 1;
            return;
        }
        let labels = Labels::from_pairs(pairs);
        let ts = x.timestamp.unwrap_or(t);
        let v = x.value.to_bits();
        let h = {
            let k = labels.key();
            let mut b = [0u8; 40];
            b[..8].copy_from_slice(&k.0.to_le_bytes());
            b[8..16].copy_from_slice(&k.1.to_le_bytes());
            b[16..24].copy_from_slice(&v.to_le_bytes());
            b[24..32].copy_from_slice(&ts.to_le_bytes());
            xxhash_rust::xxh3::xxh3_64(&b)
        };
        if cache.last_exemplar.insert(slot, h) == Some(h) {
            return;
        }
        self.exemplars.push(ExemplarPoint {
            series,
            t: ts,
            v,
            labels,
        });
    }

    /// A series not in the cache: its slot and whether the series is new (not another
    /// spelling of a cached one), or `None` if relabeling drops it. With `store` false
    /// nothing is cached or allocated: `Some` only says the series survives relabeling
    /// (its slot is then meaningless).
    fn new_series(
        &mut self,
        cache: &mut SeriesCache,
        ctx: &ScrapeContext<'_>,
        refs: &mut Refs,
        s: &Sample<'_>,
        key: Key128,
        store: bool,
    ) -> Result<Option<(u32, bool)>, String> {
        let cfg = ctx.cfg;
        let mut lb = LabelsBuilder::new();
        let exposed = crate::exposition::exposed_labels(s)?;
        for (n, v) in &exposed {
            lb.set(n.clone(), v.clone());
        }
        let has = |n: &str| exposed.binary_search_by(|p| (*p.0).cmp(n)).is_ok();
        if cfg.honor_labels {
            for (n, v) in ctx.target_labels.iter() {
                if !has(n) {
                    lb.set(n, v);
                }
            }
        } else {
            let mut conflicts: Vec<(&str, String)> = Vec::new();
            for (n, v) in ctx.target_labels.iter() {
                if let Some(existing) = lb.get(n).filter(|e| !e.is_empty()) {
                    conflicts.push((n, existing.to_owned()));
                }
                lb.set(n, v);
            }
            conflicts.sort_by_key(|(n, _)| n.len());
            for (n, v) in conflicts {
                let mut name = n.to_owned();
                loop {
                    name.insert_str(0, "exported_");
                    if lb.get(&name).is_none_or(str::is_empty) {
                        lb.set(name, v);
                        break;
                    }
                }
            }
        }
        if !cfg.metric_relabel_configs.is_empty()
            && let Outcome::Dropped { .. } = relabel::process(&cfg.metric_relabel_configs, &mut lb)
        {
            if !store {
                return Ok(None);
            }
            let i = cache.insert(Slot::Dropped {
                key,
                last_iter: cache.iter,
            });
            self.new_slots.push(i);
            return Ok(None);
        }
        let final_labels = lb.labels();
        if final_labels.is_empty() {
            if !store {
                return Ok(None);
            }
            let i = cache.insert(Slot::Dropped {
                key,
                last_iter: cache.iter,
            });
            self.new_slots.push(i);
            return Ok(None);
        }
        let Some(metric) = final_labels.get(labels::METRIC_NAME) else {
            return Err("missing metric name (__name__ label)".into());
        };
        let scheme = cfg.metric_name_validation_scheme;
        if !scheme.is_valid_metric_name(metric)
            || final_labels
                .iter()
                .any(|(n, _)| !scheme.is_valid_label_name(n))
        {
            return Err(format!(
                "invalid metric name or label names: {}",
                final_labels.to_go_string()
            ));
        }
        check_label_limits(cfg, metric, &final_labels).inspect_err(|_| {
            cache.stats.exceeded_label_limits += 1;
        })?;
        // A scraped series that is exactly one of the report series (`up` with just the
        // target's labels) would be the same series in storage: the report wins, the
        // scraped one is a duplicate.
        if REPORT_SERIES.contains(&metric)
            && final_labels
                .iter()
                .filter(|(n, _)| *n != labels::METRIC_NAME)
                .eq(ctx.target_labels.iter())
        {
            self.dup += 1;
            if !store {
                return Ok(None);
            }
            let i = cache.insert(Slot::Dropped {
                key,
                last_iter: cache.iter,
            });
            self.new_slots.push(i);
            return Ok(None);
        }
        if !store {
            return Ok(Some((u32::MAX, true)));
        }
        let labels_key = final_labels.key();
        if let Some(canon) = cache.find_labels(labels_key) {
            // The same series spelled differently.
            let i = cache.insert(Slot::Alias {
                key,
                target: canon,
                last_iter: cache.iter,
            });
            self.new_slots.push(i);
            // A new spelling is a new entry of Prometheus's scrape cache: it counts in
            // `scrape_series_added` (3.x `scrapeLoop.append`, `seriesAdded`).
            return Ok(Some((canon, true)));
        }
        let (series, last_t) = refs.alloc(&final_labels, ctx.append_time);
        let i = cache.insert(Slot::Series {
            key,
            series,
            labels: labels_key,
            last_iter: 0,
            seen_iter: 0,
            last_t,
            last_v: 0,
            stored: Stored::Float,
        });
        self.new_slots.push(i);
        self.new_series.push((series, final_labels));
        Ok(Some((i, true)))
    }

    /// Ends the scrape (`result` is the transport's verdict, combined with anything the
    /// body produced) and builds its batch. `duration` is the scrape's wall time.
    pub fn finish(
        mut self,
        cache: &mut SeriesCache,
        ctx: &ScrapeContext<'_>,
        refs: &mut Refs,
        duration: std::time::Duration,
        result: Result<(), String>,
    ) -> RunResult {
        // Prometheus reads the whole body before it parses (3.x `scrapeAndReport`): a
        // scrape that failed in transport (connection, timeout, body size, gzip,
        // status) parsed nothing, reports 0 samples and leaves no series behind. One
        // that failed while appending (a body that does not parse, a limit) reports
        // what it appended until then, and the series it created stay in the cache.
        let transport_failed = result.is_err() && self.error.is_none();
        if let Err(e) = result {
            self.fail(e);
        }
        if transport_failed {
            self.total = 0;
            self.added = 0;
            self.series_added = 0;
        }
        if self.limit_hit {
            cache.stats.exceeded_sample_limit += 1;
            self.fail("sample limit exceeded");
        }
        if self.bucket_limit_hit {
            cache.stats.exceeded_bucket_limit += 1;
            self.fail("histogram bucket limit exceeded");
        }
        cache.stats.out_of_bounds += self.oob;
        cache.stats.out_of_order += self.ooo;
        cache.stats.duplicate_timestamp += self.dup;
        let t = self.append_time;
        let mut batch = Batch {
            job: ctx.job.clone(),
            target: ctx.url.clone(),
            loop_id: ctx.loop_id,
            series: Vec::new(),
            samples: Vec::new(),
            histograms: Default::default(),
            exemplars: Default::default(),
            retired: Default::default(),
        };
        if let Some(st) = self.st.as_mut() {
            st.end();
        }
        let ok = self.error.is_none();
        cache.last_samples = self.samples.len();
        if ok {
            cache.stats.exemplars_appended += self.exemplars.len() as u64;
            batch.exemplars = crate::batch::Exemplars::new(std::mem::take(&mut self.exemplars));
            let mut hs = match self.st.as_mut() {
                Some(st) => std::mem::take(&mut st.zeros.histograms),
                None => Vec::new(),
            };
            hs.append(&mut self.histograms);
            batch.histograms = crate::batch::Histograms::new(hs);
            batch.series = std::mem::take(&mut self.new_series);
            batch.samples = match self.st.as_mut() {
                // The start samples go first: each is older than its series' sample.
                Some(st) if !st.zeros.floats.is_empty() => {
                    let mut all = std::mem::take(&mut st.zeros.floats);
                    all.append(&mut self.samples);
                    all
                }
                _ => std::mem::take(&mut self.samples),
            };
        } else {
            // Roll back: the samples are not stored, and the series this scrape created
            // never were (their refs go unused). As in Prometheus, the live series it did
            // append before failing still count as seen: they get no stale marker now.
            for (i, li, lt, lv, ls) in self.undo.drain(..).rev() {
                if let Some(Slot::Series {
                    last_iter,
                    last_t,
                    last_v,
                    stored,
                    ..
                }) = cache.slots.get_mut(i as usize)
                {
                    (*last_iter, *last_t, *last_v, *stored) = (li, lt, lv, ls);
                }
            }
            let mut created = std::mem::take(&mut self.new_slots);
            created.sort_unstable();
            // Only series that were live stay live (a series already marked stale, or
            // created by this failed scrape, would otherwise get a second marker later).
            let mut live = cache.prev_seen.clone();
            live.sort_unstable();
            self.seen
                .retain(|i| created.binary_search(i).is_err() && live.binary_search(i).is_ok());
            if transport_failed {
                for i in created {
                    cache.remove(i, false);
                }
            } else {
                // As in Prometheus, the series an append created stay cached (they count
                // as added once, not again on the next failing scrape), and their labels
                // are stored without samples, as the head logs its series on rollback
                // (`headAppenderBase.Rollback`).
                batch.series = std::mem::take(&mut self.new_series);
            }
        }
        // Stale markers for what the previous scrape saw and this one did not.
        cache.mark_stale(
            t,
            Some(cache.iter),
            &mut batch.samples,
            &mut batch.histograms,
        );
        cache.prev_seen = std::mem::take(&mut self.seen);
        if ok && self.body_bytes > 0 {
            // An empty body advances the cache without flushing it.
            cache.flush();
        } else if cache.len() > 2 * cache.size_at_success + 1000 {
            cache.stats.cache_flush_forced += 1;
            cache.flush();
        }
        // The report series.
        let cfg = ctx.cfg;
        let values = [
            if ok { 1.0 } else { 0.0 },
            duration.as_secs_f64(),
            self.total as f64,
            self.added as f64,
            self.series_added as f64,
            cfg.scrape_timeout.as_nanos() as f64 / 1e9,
            cfg.limits.sample_limit as f64,
            if ok {
                self.body_bytes as f64
            } else if self.body_bytes < 0 {
                -1.0
            } else {
                0.0
            },
        ];
        let n = if cfg.extra_scrape_metrics { 8 } else { 5 };
        for (k, v) in values.into_iter().take(n).enumerate() {
            let series = match cache.report[k] {
                Some((r, _)) => r,
                None => {
                    let mut lb = LabelsBuilder::new();
                    lb.set(labels::METRIC_NAME, REPORT_SERIES[k]);
                    for (n, v) in ctx.target_labels.iter() {
                        lb.set(n, v);
                    }
                    let l = lb.labels();
                    let (r, last_t) = refs.alloc(&l, ctx.append_time);
                    batch.series.push((r, l));
                    cache.report[k] = Some((r, last_t));
                    r
                }
            };
            if let Some((_, last)) = cache.report[k].as_mut()
                && t > *last
            {
                *last = t;
                batch.samples.push(Point {
                    series,
                    t,
                    v: v.to_bits(),
                });
            }
        }
        batch.retired = std::mem::take(&mut cache.retired).into();
        refs.expire(t);
        RunResult {
            batch,
            result: self.error.map_or(Ok(()), Err),
        }
    }
}

fn meta(cache: &mut SeriesCache, name: &str, f: impl FnOnce(&mut FamilyMeta)) {
    let iter = cache.iter;
    // A family's HELP, TYPE and UNIT lines come together: try the last one first.
    if let Some((n, m)) = cache.meta.get_mut(cache.last_meta)
        && &**n == name
    {
        m.last_iter = iter;
        f(m);
        return;
    }
    let h = hash_text(name);
    let meta = &cache.meta;
    if let Some(&i) = cache.meta_index.find(h, |&j| &*meta[j as usize].0 == name)
        && let Some((_, m)) = cache.meta.get_mut(i as usize)
    {
        m.last_iter = iter;
        f(m);
        cache.last_meta = i as usize;
        return;
    }
    let mut m = FamilyMeta {
        kind: MetricType::Unknown,
        help: String::new(),
        unit: String::new(),
        last_iter: iter,
    };
    f(&mut m);
    let i = cache.meta.len() as u32;
    cache.last_meta = i as usize;
    cache.meta.push((name.into(), m));
    let meta = &cache.meta;
    cache
        .meta_index
        .insert_unique(h, i, |&j| hash_text(&meta[j as usize].0));
}

/// `label_limit`, `label_name_length_limit`, `label_value_length_limit`, with
/// Prometheus's messages.
fn check_label_limits(cfg: &ScrapeConfig, metric: &str, l: &Labels) -> Result<(), String> {
    let lim = &cfg.limits;
    let cut = |s: &str| -> String { s.chars().take(50).collect() };
    if lim.label_limit > 0 && l.len() as u64 > lim.label_limit {
        return Err(format!(
            "label_limit exceeded (metric: {}, number of labels: {}, limit: {})",
            cut(metric),
            l.len(),
            lim.label_limit
        ));
    }
    if lim.label_name_length_limit == 0 && lim.label_value_length_limit == 0 {
        return Ok(());
    }
    for (n, v) in l.iter() {
        if lim.label_name_length_limit > 0 && n.len() as u64 > lim.label_name_length_limit {
            return Err(format!(
                "label_name_length_limit exceeded (metric: {}, label name: {}, length: {}, limit: {})",
                cut(metric),
                cut(n),
                n.len(),
                lim.label_name_length_limit
            ));
        }
        if lim.label_value_length_limit > 0 && v.len() as u64 > lim.label_value_length_limit {
            return Err(format!(
                "label_value_length_limit exceeded (metric: {}, label name: {}, value: {}, length: {}, limit: {})",
                cut(metric),
                cut(n),
                crate::goquote::quote(&cut(v)),
                v.len(),
                lim.label_value_length_limit
            ));
        }
    }
    Ok(())
}

/// The batch a loop writes when its target is gone (end-of-run staleness): a stale
/// marker at `t` for every series its last scrape saw, and for the report series.
pub fn end_of_run(
    cache: &mut SeriesCache,
    job: &Arc<str>,
    url: &Arc<str>,
    loop_id: u64,
    t: i64,
) -> Batch {
    let mut samples = Vec::new();
    let mut histograms = Default::default();
    cache.mark_stale(t, None, &mut samples, &mut histograms);
    cache.prev_seen.clear();
    for (r, last) in cache.report.iter_mut().flatten() {
        if t > *last {
            *last = t;
            samples.push(Point {
                series: *r,
                t,
                v: STALE_NAN,
            });
        }
    }
    Batch {
        job: job.clone(),
        target: url.clone(),
        loop_id,
        series: Vec::new(),
        samples,
        histograms,
        exemplars: Default::default(),
        retired: cache.retire_all().into(),
    }
}

#[cfg(test)]
mod tests;
