//! One `remote_write` queue as a sans-IO state machine: WAL records in (read by the
//! shell from the local WAL), snappy-compressed `WriteRequest` bodies out, responses
//! back in, and a durable position the shell persists so that a restart resumes where
//! sending stopped.
//!
//! ```text
//!   shell reads WAL ──handle_record(pos, payload)──▶ Queue ──poll_transmit()──▶ POST body
//!   shell gets answer ──handle_response(id, outcome)──▶ Queue ──progress()──▶ persisted
//!   timers ──handle_timeout(now)──▶ Queue            poll_timeout() ◀── when to call again
//! ```
//!
//! - **Series**: series records give each WAL ref its labels, with the external labels
//!   added and `write_relabel_configs` applied (in that order, as Prometheus does); a
//!   dropped series is remembered as dropped, so its samples cost one lookup. A
//!   checkpoint's series are fed with [`Queue::checkpoint_series`], then
//!   [`Queue::reset_series`] forgets the series not seen since before it.
//! - **Shards**: a sample goes to shard `ref mod shards`, so one series' samples are
//!   always sent in order by one shard. A shard sends one request at a time: up to
//!   `max_samples_per_send` samples, or fewer once its oldest sample has waited
//!   `batch_send_deadline`. Samples of one series in a request share one `TimeSeries`.
//! - **Back-pressure**: [`Queue::wants_records`] is false while any shard holds
//!   `capacity` samples; the shell then stops reading the WAL (the WAL is the buffer,
//!   so nothing is dropped for lack of memory).
//! - **Retries**: network errors, 5xx and 429 are retried with exponential backoff from
//!   `min_backoff` to `max_backoff`, with jitter from the seeded generator (between half
//!   and all of the step), or after `Retry-After` when the receiver sends one; any other
//!   status drops the request's samples and counts them failed. A retry sends the same
//!   body again.
//! - **Progress**: every record read gets a sequence number; a record is done when each
//!   of its samples has been acknowledged or dropped. [`Queue::progress`] is the position
//!   after the last record that is done with every record before it: samples after it
//!   may be sent again after a restart, none before it are.
//! - **Resharding** every 10 s after Prometheus's rule: the shards needed to send the
//!   incoming rate plus 5 % of the backlog at the measured time per sample; changes within
//!   30 % are ignored, no scaling down while more than 10 s behind, none at all while
//!   sends fail. The new count takes effect once no request is in flight, so order holds.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashTable;

use super::encode::{
    RwExemplar, RwSample, compress, encode_histogram, encode_labels, put_timeseries_with,
};
use crate::config::RemoteWriteConfig;
use crate::labels::Labels;
use crate::relabel::{self, Outcome};
use crate::time::{Instant, Now};
use crate::wal::record;

/// A position in the WAL: a segment and a byte offset in it (the end of a record).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalPos {
    /// Segment number.
    pub segment: u32,
    /// Offset in the segment, just past the record.
    pub offset: u64,
}

/// How a request ended, as the shell saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome<'a> {
    /// The receiver answered.
    Status {
        /// HTTP status.
        code: u16,
        /// `Retry-After`, if it sent one (seconds or an HTTP date, converted).
        retry_after: Option<Duration>,
        /// The start of the response body (for the log).
        body: &'a str,
    },
    /// No answer: connection refused, timeout, reset…
    Failed(&'a str),
}

/// A request for the shell to POST to the queue's URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Identifies the response ([`Queue::handle_response`]).
    pub id: u64,
    /// The snappy-compressed `WriteRequest`.
    pub body: Arc<[u8]>,
    /// Samples it carries.
    pub samples: usize,
}

/// Something the shell should log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueEvent {
    /// A request was refused for good (a 4xx other than 429): its samples are lost.
    Dropped {
        /// The status.
        status: u16,
        /// Samples lost.
        samples: usize,
        /// What the receiver said.
        body: String,
    },
    /// A request failed and will be retried.
    Retrying {
        /// The error or status.
        error: String,
        /// Retries so far.
        attempt: u32,
        /// Wait before the next one.
        after: Duration,
    },
    /// The receiver accepts again after failures.
    Recovered,
    /// The shard count changed.
    Resharded {
        /// Before.
        from: usize,
        /// After.
        to: usize,
    },
    /// A WAL record could not be decoded (skipped).
    BadRecord {
        /// Where.
        pos: WalPos,
    },
}

/// Counters, under Prometheus's `prometheus_remote_storage_*` names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueStats {
    /// `samples_in_total`: samples read from the WAL.
    pub samples_in: u64,
    /// `samples_total`: samples sent and acknowledged.
    pub samples_sent: u64,
    /// `samples_failed_total`: samples refused for good.
    pub samples_failed: u64,
    /// `samples_retried_total`: samples in requests retried.
    pub samples_retried: u64,
    /// `samples_dropped_total`: samples of series dropped by relabeling, of unknown
    /// series, or older than `sample_age_limit`.
    pub samples_dropped: u64,
    /// `samples_pending`: samples held (queued or in flight).
    pub samples_pending: u64,
    /// `bytes_total`: compressed bytes acknowledged.
    pub bytes_sent: u64,
    /// `sent_batch_duration_seconds` sum.
    pub send_seconds: f64,
    /// Requests acknowledged.
    pub requests: u64,
    /// `shards`.
    pub shards: u64,
    /// `shards_desired`.
    pub shards_desired: f64,
    /// `queue_highest_sent_timestamp_seconds`, in ms.
    pub highest_sent_ms: i64,
    /// `queue_highest_timestamp_seconds` (3.x): the newest sample or histogram
    /// timestamp enqueued, in ms.
    pub highest_enqueued_ms: i64,
    /// `exemplars_retried_total`.
    pub exemplars_retried: u64,
    /// `histograms_retried_total`.
    pub histograms_retried: u64,
    /// `samples_retried` requests' failures by kind: status 5xx/429 or network.
    pub failed_requests: u64,
    /// Series records ignored because their ref lies too far from all others.
    pub series_out_of_range: u64,
    /// `exemplars_in_total`: exemplars read from the WAL (with `send_exemplars`).
    pub exemplars_in: u64,
    /// `exemplars_total`: exemplars sent and acknowledged.
    pub exemplars_sent: u64,
    /// `exemplars_failed_total`: exemplars refused for good.
    pub exemplars_failed: u64,
    /// `exemplars_dropped_total`: exemplars of dropped or unknown series, or too old.
    pub exemplars_dropped: u64,
    /// `exemplars_pending`: exemplars held (queued or in flight).
    pub exemplars_pending: u64,
    /// `histograms_in_total`: native histograms read from the WAL (with
    /// `send_native_histograms`).
    pub histograms_in: u64,
    /// `histograms_total`: native histograms sent and acknowledged.
    pub histograms_sent: u64,
    /// `histograms_failed_total`: native histograms refused for good.
    pub histograms_failed: u64,
    /// `histograms_dropped_total`: native histograms of dropped or unknown series, or
    /// too old.
    pub histograms_dropped: u64,
    /// `histograms_pending`: native histograms held (queued or in flight).
    pub histograms_pending: u64,
}

/// 12 bytes a ref: the series' label ids live in the table's arena.
#[derive(Clone, Copy, Debug, Default)]
struct SeriesEntry {
    /// Where the ids of its encoded `Label` fields ([`Pairs`]) start in the arena.
    at: u32,
    /// How many.
    len: u16,
    /// False: dropped by `write_relabel_configs`.
    kept: bool,
    /// A series record was read for this ref.
    known: bool,
    /// The last segment that named the series (record or sample).
    segment: u32,
}

/// Encoded `Label` fields shared by every series with that name and value (`job`, a
/// target's `instance`, most names): a series keeps 4-byte ids of its pairs instead of
/// its own copy of every name and value, a fraction of the memory for the usual label
/// sets, which share all but a label or two with their neighbours.
///
/// The fields live end to end in one arena (`bytes`), each at its span: no allocation
/// per pair, and the pairs a scrape's series introduce together lie together, so that
/// writing a series' labels into a request touches few cache lines. Released fields
/// leave holes, reclaimed once they are most of the arena.
#[derive(Debug, Default)]
struct Pairs {
    bytes: Vec<u8>,
    /// (start, length) in `bytes`, by id.
    spans: Vec<(u32, u32)>,
    refs: Vec<u32>,
    free: Vec<u32>,
    index: HashTable<u32>,
    /// Bytes of released fields still in the arena.
    dead: usize,
}

fn pair_hash(b: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(b)
}

/// The bytes of `span` (start, length) in an arena; empty if it lies outside.
fn span_of(bytes: &[u8], (at, len): (u32, u32)) -> &[u8] {
    bytes
        .get(at as usize..at as usize + len as usize)
        .unwrap_or_default()
}

impl Pairs {
    /// The field of `id` (empty for an unknown or released one).
    fn field(&self, id: u32) -> &[u8] {
        match self.spans.get(id as usize) {
            Some(&span) => span_of(&self.bytes, span),
            None => &[],
        }
    }

    fn intern(&mut self, field: &[u8]) -> u32 {
        let h = pair_hash(field);
        if let Some(&id) = self.index.find(h, |&i| self.field(i) == field) {
            self.refs[id as usize] += 1;
            return id;
        }
        // The arena and a field each stay far below 4 GiB: pairs are distinct names
        // and values, fewer than the series, which fit in memory.
        let span = (
            u32::try_from(self.bytes.len()).unwrap_or(u32::MAX),
            u32::try_from(field.len()).unwrap_or(u32::MAX),
        );
        self.bytes.extend_from_slice(field);
        let id = match self.free.pop() {
            Some(i) => {
                self.spans[i as usize] = span;
                self.refs[i as usize] = 1;
                i
            }
            None => {
                self.spans.push(span);
                self.refs.push(1);
                // As above: fewer pairs than series.
                u32::try_from(self.spans.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let Pairs {
            bytes,
            spans,
            index,
            ..
        } = self;
        index.insert_unique(h, id, |&i| pair_hash(span_of(bytes, spans[i as usize])));
        id
    }

    fn release(&mut self, ids: &[u32]) {
        for &id in ids {
            let Some(n) = self.refs.get_mut(id as usize) else {
                continue;
            };
            *n = n.saturating_sub(1);
            if *n == 0 {
                let h = pair_hash(self.field(id));
                if let Ok(e) = self.index.find_entry(h, |&i| i == id) {
                    e.remove();
                }
                self.dead += self.spans[id as usize].1 as usize;
                self.spans[id as usize] = (0, 0);
                self.free.push(id);
            }
        }
        self.compact();
    }

    /// Rebuilds the arena once released fields make up more than half of it.
    fn compact(&mut self) {
        if self.dead < 4096 || self.dead * 2 < self.bytes.len() {
            return;
        }
        let mut bytes = Vec::with_capacity(self.bytes.len() - self.dead);
        for span in self.spans.iter_mut() {
            if span.1 > 0 {
                // The new arena is smaller than the old, whose offsets fit in u32.
                let to = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
                bytes.extend_from_slice(span_of(&self.bytes, *span));
                span.0 = to;
            }
        }
        self.bytes = bytes;
        self.dead = 0;
    }

    /// The length of the encoded fields of `ids`.
    fn len(&self, ids: &[u32]) -> usize {
        ids.iter()
            .filter_map(|&id| self.spans.get(id as usize))
            .map(|&(_, len)| len as usize)
            .sum()
    }

    /// The encoded fields of `ids`, in order, into `out`.
    fn write(&self, ids: &[u32], out: &mut Vec<u8>) {
        for &id in ids {
            out.extend_from_slice(self.field(id));
        }
    }
}

/// How much to reserve for `more` elements past `len` in a table of `capacity`: none
/// while they fit, then a quarter more at a time, not double. The tables hold one entry
/// per series (a million at the sizes agents run at), where doubling would leave up to
/// half of them unused; blocks this large are mapped on their own (`trawl-mio`'s
/// allocator tuning), so glibc grows them by remapping, without copying.
fn grow_by(len: usize, capacity: usize, more: usize) -> usize {
    if len.saturating_add(more) <= capacity {
        0
    } else {
        more.max(capacity / 4)
    }
}

/// How far a new ref may lie from the known ones (16 M slots, 384 MiB).
const MAX_REF_GAP: u64 = 1 << 24;

/// Series by WAL ref. The WAL's refs are the agent's, handed out in sequence, so a
/// vector indexed by `ref - base` holds them densely (12 bytes a ref, no hashing);
/// forgotten refs at either end are trimmed. Label ids of all series share one arena,
/// compacted once more than half of it belongs to forgotten series.
#[derive(Debug, Default)]
struct SeriesTable {
    base: u64,
    slots: VecDeque<SeriesEntry>,
    known: usize,
    ids: Vec<u32>,
    dead: usize,
}

impl SeriesTable {
    /// A record at `segment` uses series `r`: true if it is known and kept by
    /// relabeling (its samples are sent), and its last segment moves on.
    fn touch(&mut self, r: u64, segment: u32) -> bool {
        match self.get_mut(r) {
            Some(e) => {
                e.segment = segment;
                e.kept
            }
            None => false,
        }
    }

    fn get(&self, r: u64) -> Option<&SeriesEntry> {
        let i = r.checked_sub(self.base)?;
        self.slots.get(usize::try_from(i).ok()?).filter(|e| e.known)
    }

    fn get_mut(&mut self, r: u64) -> Option<&mut SeriesEntry> {
        let i = r.checked_sub(self.base)?;
        self.slots
            .get_mut(usize::try_from(i).ok()?)
            .filter(|e| e.known)
    }

    /// A kept series' label ids.
    fn ids(&self, e: &SeriesEntry) -> Option<&[u32]> {
        let at = e.at as usize;
        e.kept
            .then(|| self.ids.get(at..at + e.len as usize))
            .flatten()
    }

    /// The slot for `r`, made if needed; `None` for a ref so far from the others that
    /// the slots between would not fit in memory (not a WAL trawl wrote).
    fn slot(&mut self, r: u64) -> Option<&mut SeriesEntry> {
        if self.slots.is_empty() {
            self.base = r;
        }
        let span = (self.slots.len() as u64).saturating_add(MAX_REF_GAP);
        if r.saturating_add(MAX_REF_GAP) < self.base || r - self.base.min(r) > span {
            return None;
        }
        while r < self.base {
            self.slots.push_front(SeriesEntry::default());
            self.base -= 1;
        }
        // Refs fit in memory as indices: there are never more than memory holds.
        let i = usize::try_from(r - self.base).unwrap_or(usize::MAX);
        if i >= self.slots.len() {
            let more = i + 1 - self.slots.len();
            self.slots
                .reserve_exact(grow_by(self.slots.len(), self.slots.capacity(), more));
            self.slots.resize_with(i + 1, SeriesEntry::default);
        }
        self.slots.get_mut(i)
    }

    /// Stores a series (`None`: dropped by relabeling). The ids it replaces, if any,
    /// go to `release`; false if its ref is out of reach ([`SeriesTable::slot`]) or it
    /// has more labels than an entry counts.
    fn set(
        &mut self,
        r: u64,
        labels: Option<&[u32]>,
        segment: u32,
        release: impl FnOnce(&[u32]),
    ) -> bool {
        let len = labels.map_or(0, <[u32]>::len);
        let (Ok(len16), Ok(at)) = (u16::try_from(len), u32::try_from(self.ids.len())) else {
            return false;
        };
        let Some(e) = self.slot(r) else {
            return false;
        };
        let old = *e;
        *e = SeriesEntry {
            at,
            len: len16,
            kept: labels.is_some(),
            known: true,
            segment: if old.known {
                segment.max(old.segment)
            } else {
                segment
            },
        };
        if let Some(l) = labels {
            self.ids
                .reserve_exact(grow_by(self.ids.len(), self.ids.capacity(), l.len()));
            self.ids.extend_from_slice(l);
        }
        if old.known {
            if let Some(ids) = self.ids(&old) {
                release(ids);
            }
            self.dead += old.len as usize;
        } else {
            self.known += 1;
        }
        self.compact();
        true
    }

    /// Forgets series last seen before segment `n`; their label ids go to `release`.
    fn retain_from(&mut self, n: u32, mut release: impl FnMut(&[u32])) {
        for i in 0..self.slots.len() {
            let e = self.slots[i];
            if e.known && e.segment < n {
                if let Some(ids) = self.ids(&e) {
                    release(ids);
                }
                self.dead += e.len as usize;
                self.slots[i] = SeriesEntry::default();
                self.known -= 1;
            }
        }
        while self.slots.front().is_some_and(|e| !e.known) {
            self.slots.pop_front();
            self.base += 1;
        }
        while self.slots.back().is_some_and(|e| !e.known) {
            self.slots.pop_back();
        }
        self.slots.shrink_to_fit();
        self.compact();
    }

    /// Rebuilds the arena once forgotten ids make up more than half of it.
    fn compact(&mut self) {
        if self.dead < 1024 || self.dead * 2 < self.ids.len() {
            return;
        }
        let mut ids = Vec::with_capacity(self.ids.len() - self.dead);
        for e in self.slots.iter_mut() {
            if e.known {
                let at = e.at as usize;
                ids.extend_from_slice(&self.ids[at..at + e.len as usize]);
                // The new arena is smaller than the old, whose offsets fit in u32.
                e.at = u32::try_from(ids.len() - e.len as usize).unwrap_or(u32::MAX);
            }
        }
        self.ids = ids;
        self.dead = 0;
    }
}

/// A sample (or an exemplar) waiting in a shard. An exemplar keeps its time and value
/// in `s` and its labels in the shard's `ex_labels`, in the same order; the top bit of
/// `seq` marks it, so a sample costs no more for exemplars existing.
#[derive(Clone, Copy, Debug)]
struct Pending {
    series: u64,
    s: RwSample,
    seq: u64,
}

const EXEMPLAR: u64 = 1 << 63;
/// Marks a native histogram: its encoded `Histogram` message waits in the shard's
/// `ex_labels` in its place.
const HISTOGRAM: u64 = 1 << 62;

/// An exemplar's encoded labels beside its [`Pending`] (`None` for a sample).
type ExLabels = Option<Box<[u8]>>;

impl Pending {
    fn is_exemplar(&self) -> bool {
        self.seq & EXEMPLAR != 0
    }

    fn is_histogram(&self) -> bool {
        self.seq & HISTOGRAM != 0
    }

    /// True if its bytes wait in the shard's `ex_labels`.
    fn has_extra(&self) -> bool {
        self.seq & (EXEMPLAR | HISTOGRAM) != 0
    }

    /// The sequence number of the record it came from.
    fn seq(&self) -> u64 {
        self.seq & !(EXEMPLAR | HISTOGRAM)
    }
}

/// (samples, exemplars, histograms) among `ps`.
fn kinds(ps: &[Pending]) -> (u64, u64, u64) {
    let x = ps.iter().filter(|p| p.is_exemplar()).count() as u64;
    let h = ps.iter().filter(|p| p.is_histogram()).count() as u64;
    (ps.len() as u64 - x - h, x, h)
}

#[derive(Debug)]
struct InFlight {
    id: u64,
    samples: Vec<Pending>,
    body: Arc<[u8]>,
    started: Instant,
    attempts: u32,
    /// Waiting to be sent again at this time.
    retry_at: Option<Instant>,
}

#[derive(Debug, Default)]
struct Shard {
    pending: VecDeque<Pending>,
    /// The encoded labels of the exemplars in `pending`, in their order.
    ex_labels: VecDeque<Box<[u8]>>,
    /// When the oldest pending sample arrived.
    since: Option<Instant>,
    flight: Option<InFlight>,
}

impl Shard {
    /// Queues `p`, with its exemplar labels or histogram message (`extra`, which must
    /// be given exactly when `p.has_extra()`); `since` is when it arrived.
    fn push(&mut self, p: Pending, extra: ExLabels, since: Option<Instant>) {
        if self.pending.is_empty() {
            self.since = since;
        }
        self.pending.push_back(p);
        if let Some(x) = extra {
            self.ex_labels.push_back(x);
        }
    }
}

/// Exponentially weighted rate, updated every resharding tick (weight 0.2).
#[derive(Debug, Default)]
struct Ewma {
    value: f64,
    init: bool,
}

impl Ewma {
    fn update(&mut self, x: f64) {
        if self.init {
            self.value += 0.2 * (x - self.value);
        } else {
            self.value = x;
            self.init = true;
        }
    }
}

/// The buckets of `sent_batch_duration_seconds` (3.x: client_golang's defaults and
/// 25, 60, 120 and 300 s).
pub const SEND_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0, 120.0, 300.0,
];

const RESHARD_EVERY: Duration = Duration::from_secs(10);

/// One `remote_write` queue.
#[derive(Debug)]
pub struct Queue {
    cfg: Arc<RemoteWriteConfig>,
    external: Labels,
    /// Samples at or before this position were sent before a restart.
    resume: Option<WalPos>,
    series: SeriesTable,
    pairs: Pairs,
    shards: Vec<Shard>,
    /// A new shard count, applied once nothing is in flight.
    reshard_to: Option<usize>,
    next_seq: u64,
    /// (seq, position, samples not yet done), by ascending seq.
    outstanding: VecDeque<(u64, WalPos, u64)>,
    durable: Option<WalPos>,
    next_id: u64,
    rng: u64,
    sends: VecDeque<Transmit>,
    events: VecDeque<QueueEvent>,
    stats: QueueStats,
    failing: bool,
    closing: bool,
    // Resharding.
    next_reshard: Option<Instant>,
    last_in: u64,
    last_out: u64,
    last_send_seconds: f64,
    /// `sent_batch_duration_seconds`.
    durations: crate::metrics::Buckets,
    rate_in: Ewma,
    rate_out: Ewma,
    last_ok: Option<Instant>,
    enc: snap::raw::Encoder,
    body: Vec<u8>,
    z: Vec<u8>,
    scratch: Vec<u8>,
}

impl Queue {
    /// A queue for `cfg`, adding `external` labels to every series; `resume` is the
    /// persisted progress of an earlier run (samples up to it are not sent again);
    /// `seed` drives the retry jitter.
    pub fn new(
        cfg: Arc<RemoteWriteConfig>,
        external: Labels,
        resume: Option<WalPos>,
        seed: u64,
    ) -> Queue {
        let n = cfg.queue_config.min_shards.max(1) as usize;
        Queue {
            cfg,
            external,
            resume,
            series: SeriesTable::default(),
            pairs: Pairs::default(),
            shards: (0..n).map(|_| Shard::default()).collect(),
            reshard_to: None,
            next_seq: 0,
            outstanding: VecDeque::new(),
            durable: resume,
            next_id: 1,
            rng: seed ^ 0x5DEE_CE66_D1CE_4E5B,
            sends: VecDeque::new(),
            events: VecDeque::new(),
            stats: QueueStats {
                shards: n as u64,
                shards_desired: n as f64,
                ..QueueStats::default()
            },
            failing: false,
            closing: false,
            next_reshard: None,
            last_in: 0,
            last_out: 0,
            last_send_seconds: 0.0,
            durations: crate::metrics::Buckets::new(SEND_BUCKETS),
            rate_in: Ewma::default(),
            rate_out: Ewma::default(),
            last_ok: None,
            enc: snap::raw::Encoder::new(),
            body: Vec::new(),
            z: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RemoteWriteConfig {
        &self.cfg
    }

    /// The durations of acknowledged requests (`sent_batch_duration_seconds`).
    pub fn send_durations(&self) -> &crate::metrics::Buckets {
        &self.durations
    }

    /// The queue's counters.
    pub fn stats(&self) -> &QueueStats {
        &self.stats
    }

    /// Series known (kept and dropped).
    pub fn series_count(&self) -> usize {
        self.series.known
    }

    /// True if the shell should read more WAL records now.
    pub fn wants_records(&self) -> bool {
        let cap = self.cfg.queue_config.capacity.max(1) as usize;
        self.shards.iter().all(|s| s.pending.len() < cap)
    }

    /// The position up to which every sample is acknowledged or dropped (persist it;
    /// WAL retention must keep the segments after it).
    pub fn progress(&self) -> Option<WalPos> {
        self.durable
    }

    /// True once nothing is queued or in flight.
    pub fn is_idle(&self) -> bool {
        self.shards
            .iter()
            .all(|s| s.pending.is_empty() && s.flight.is_none())
    }

    /// Flushes for shutdown: from now on batches go out as soon as a shard is free,
    /// without waiting for them to fill or for `batch_send_deadline`. Records may still be
    /// handed in (the shell reads the rest of the WAL while the queue has room).
    pub fn close(&mut self, now: Now) {
        self.closing = true;
        self.dispatch(now);
    }

    fn next_random(&mut self) -> u64 {
        // splitmix64: deterministic for a seed.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn store_series(&mut self, r: u64, labels: Labels, segment: u32) {
        let mut lb = labels.builder();
        for (n, v) in self.external.iter() {
            lb.set_if_absent(n.to_owned(), v.to_owned());
        }
        let cfg = self.cfg.clone();
        let kept = match relabel::process(&cfg.write_relabel_configs, &mut lb) {
            Outcome::Keep => {
                let l = lb.labels();
                (!l.is_empty()).then(|| {
                    let mut ids = Vec::with_capacity(l.len());
                    for pair in l.iter() {
                        self.scratch.clear();
                        encode_labels(&mut self.scratch, std::iter::once(pair));
                        ids.push(self.pairs.intern(&self.scratch));
                    }
                    ids
                })
            }
            Outcome::Dropped { .. } => None,
        };
        let pairs = &mut self.pairs;
        if !self
            .series
            .set(r, kept.as_deref(), segment, |old| pairs.release(old))
        {
            self.stats.series_out_of_range += 1;
            if let Some(l) = &kept {
                self.pairs.release(l);
            }
        }
    }

    /// Series of checkpoint `n` (read at start, or after the writer made a new one).
    pub fn checkpoint_series(&mut self, n: u32, payload: &[u8]) {
        if payload.first() != Some(&record::kind::SERIES) {
            return;
        }
        for (r, l) in record::decode_series(payload).unwrap_or_default() {
            self.store_series(r.0, l, n);
        }
    }

    /// Forgets series last seen in a segment before `n` (after checkpoint `n`'s series
    /// were fed).
    pub fn reset_series(&mut self, n: u32) {
        let pairs = &mut self.pairs;
        self.series.retain_from(n, |l| pairs.release(l));
    }

    /// One WAL record (decompressed payload) ending at `pos`, at `now`.
    pub fn handle_record(&mut self, now: Now, pos: WalPos, payload: &[u8]) {
        if self.next_reshard.is_none() {
            self.next_reshard = Some(now.mono + RESHARD_EVERY);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut queued = 0u64;
        match payload.first() {
            Some(&record::kind::SERIES) => match record::decode_series(payload) {
                Some(s) => {
                    for (r, l) in s {
                        self.store_series(r.0, l, pos.segment);
                    }
                }
                None => self.events.push_back(QueueEvent::BadRecord { pos }),
            },
            Some(&record::kind::SAMPLES) if self.resume.is_none_or(|r| pos > r) => {
                match record::decode_samples(payload) {
                    Some(points) => {
                        self.stats.samples_in += points.len() as u64;
                        let n = self.shards.len() as u64;
                        for p in points {
                            if !self.series.touch(p.series.0, pos.segment) {
                                self.stats.samples_dropped += 1;
                                continue;
                            }
                            self.shards[(p.series.0 % n) as usize].push(
                                Pending {
                                    series: p.series.0,
                                    s: RwSample { t: p.t, v: p.v },
                                    seq,
                                },
                                None,
                                Some(now.mono),
                            );
                            self.stats.highest_enqueued_ms =
                                self.stats.highest_enqueued_ms.max(p.t);
                            queued += 1;
                        }
                        self.stats.samples_pending += queued;
                    }
                    None => self.events.push_back(QueueEvent::BadRecord { pos }),
                }
            }
            Some(&record::kind::EXEMPLARS)
                if self.cfg.send_exemplars && self.resume.is_none_or(|r| pos > r) =>
            {
                match record::decode_exemplars(payload) {
                    Some(xs) => {
                        self.stats.exemplars_in += xs.len() as u64;
                        let n = self.shards.len() as u64;
                        for e in xs {
                            if !self.series.touch(e.series.0, pos.segment) {
                                self.stats.exemplars_dropped += 1;
                                continue;
                            }
                            let mut labels = Vec::new();
                            encode_labels(&mut labels, e.labels.iter());
                            self.shards[(e.series.0 % n) as usize].push(
                                Pending {
                                    series: e.series.0,
                                    s: RwSample { t: e.t, v: e.v },
                                    seq: seq | EXEMPLAR,
                                },
                                Some(labels.into_boxed_slice()),
                                Some(now.mono),
                            );
                            queued += 1;
                            self.stats.exemplars_pending += 1;
                        }
                    }
                    None => self.events.push_back(QueueEvent::BadRecord { pos }),
                }
            }
            Some(
                &(record::kind::HISTOGRAM_SAMPLES
                | record::kind::FLOAT_HISTOGRAM_SAMPLES
                | record::kind::CUSTOM_BUCKETS_HISTOGRAM_SAMPLES
                | record::kind::CUSTOM_BUCKETS_FLOAT_HISTOGRAM_SAMPLES),
            ) if self.cfg.send_native_histograms && self.resume.is_none_or(|r| pos > r) => {
                // 3.x `QueueManager.AppendHistograms`: sent only with
                // `send_native_histograms`, else skipped.
                match record::decode_histograms(payload) {
                    Some(hs) => {
                        self.stats.histograms_in += hs.len() as u64;
                        let n = self.shards.len() as u64;
                        for h in hs {
                            if !self.series.touch(h.series.0, pos.segment) {
                                self.stats.histograms_dropped += 1;
                                continue;
                            }
                            let mut msg = Vec::new();
                            encode_histogram(&mut msg, h.t, &h.h);
                            self.shards[(h.series.0 % n) as usize].push(
                                Pending {
                                    series: h.series.0,
                                    s: RwSample { t: h.t, v: 0 },
                                    seq: seq | HISTOGRAM,
                                },
                                Some(msg.into_boxed_slice()),
                                Some(now.mono),
                            );
                            self.stats.highest_enqueued_ms =
                                self.stats.highest_enqueued_ms.max(h.t);
                            queued += 1;
                            self.stats.histograms_pending += 1;
                        }
                    }
                    None => self.events.push_back(QueueEvent::BadRecord { pos }),
                }
            }
            _ => {}
        }
        self.outstanding.push_back((seq, pos, queued));
        self.advance();
        self.dispatch(now);
    }

    /// Marks samples done (sent or dropped) and moves the durable position.
    fn release(&mut self, samples: &[Pending]) {
        let Some(&(first, _, _)) = self.outstanding.front() else {
            return;
        };
        for p in samples {
            if let Some(e) = p
                .seq()
                .checked_sub(first)
                .and_then(|i| self.outstanding.get_mut(i as usize))
            {
                e.2 = e.2.saturating_sub(1);
            }
        }
        let (n, x, h) = kinds(samples);
        self.stats.samples_pending = self.stats.samples_pending.saturating_sub(n);
        self.stats.exemplars_pending = self.stats.exemplars_pending.saturating_sub(x);
        self.stats.histograms_pending = self.stats.histograms_pending.saturating_sub(h);
        self.advance();
    }

    fn advance(&mut self) {
        while let Some(&(_, pos, 0)) = self.outstanding.front() {
            // Never behind the resume point (series records before it are read again).
            self.durable = Some(self.durable.map_or(pos, |d| d.max(pos)));
            self.outstanding.pop_front();
        }
    }

    /// Starts the requests that are due, on shards with nothing in flight.
    fn dispatch(&mut self, now: Now) {
        if self.reshard_to.is_some() {
            self.apply_reshard();
            if self.reshard_to.is_some() {
                return;
            }
        }
        let max = self.cfg.queue_config.max_samples_per_send.max(1) as usize;
        let deadline = self.cfg.queue_config.batch_send_deadline.to_std();
        for i in 0..self.shards.len() {
            let s = &self.shards[i];
            if s.flight.is_some() || s.pending.is_empty() {
                continue;
            }
            let due = s.pending.len() >= max
                || self.closing
                || s.since.is_some_and(|t| now.mono >= t + deadline);
            if due {
                self.start(i, now, max);
            }
        }
    }

    fn start(&mut self, i: usize, now: Now, max: usize) {
        let age_limit = self.cfg.queue_config.sample_age_limit.to_std();
        let shard = &mut self.shards[i];
        let n = shard.pending.len().min(max);
        let mut batch: Vec<(Pending, ExLabels)> = Vec::with_capacity(n);
        for p in shard.pending.drain(..n) {
            let labels = if p.has_extra() {
                shard.ex_labels.pop_front()
            } else {
                None
            };
            batch.push((p, labels));
        }
        shard.since = if shard.pending.is_empty() {
            None
        } else {
            Some(now.mono)
        };
        if !age_limit.is_zero() {
            // Samples older than `sample_age_limit` are not worth sending: dropped,
            // counted, and done for the progress.
            let oldest = now.wall.as_millis() - age_limit.as_millis() as i64;
            let (keep, old): (Vec<_>, Vec<_>) =
                batch.into_iter().partition(|(p, _)| p.s.t >= oldest);
            batch = keep;
            if !old.is_empty() {
                let old: Vec<Pending> = old.into_iter().map(|(p, _)| p).collect();
                let (n, x, h) = kinds(&old);
                self.stats.samples_dropped += n;
                self.stats.exemplars_dropped += x;
                self.stats.histograms_dropped += h;
                self.release(&old);
            }
            if batch.is_empty() {
                return;
            }
        }
        // One TimeSeries per series, its samples (and exemplars) in arrival (= time)
        // order.
        batch.sort_by_key(|(p, _)| p.series);
        self.body.clear();
        let mut j = 0;
        let mut samples: Vec<RwSample> = Vec::new();
        while j < batch.len() {
            let r = batch[j].0.series;
            samples.clear();
            let from = j;
            while j < batch.len() && batch[j].0.series == r {
                if !batch[j].0.has_extra() {
                    samples.push(batch[j].0.s);
                }
                j += 1;
            }
            let exemplars: Vec<RwExemplar<'_>> = batch[from..j]
                .iter()
                .filter(|(p, _)| p.is_exemplar())
                .filter_map(|(p, l)| {
                    l.as_deref().map(|labels| RwExemplar {
                        labels,
                        t: p.s.t,
                        v: p.s.v,
                    })
                })
                .collect();
            let histograms: Vec<&[u8]> = batch[from..j]
                .iter()
                .filter(|(p, _)| p.is_histogram())
                .filter_map(|(_, l)| l.as_deref())
                .collect();
            if let Some(l) = self.series.get(r).and_then(|e| self.series.ids(e)) {
                let pairs = &self.pairs;
                put_timeseries_with(
                    &mut self.body,
                    pairs.len(l),
                    |out| pairs.write(l, out),
                    &samples,
                    &exemplars,
                    &histograms,
                );
            }
        }
        let batch: Vec<Pending> = batch.into_iter().map(|(p, _)| p).collect();
        let body: Arc<[u8]> = match compress(&mut self.enc, &self.body, &mut self.z) {
            Ok(()) => Arc::from(&self.z[..]),
            // snappy refuses only inputs above 4 GiB, which a batch never reaches.
            Err(_) => Arc::from(&[][..]),
        };
        let id = self.next_id;
        self.next_id += 1;
        self.sends.push_back(Transmit {
            id,
            body: body.clone(),
            samples: batch.len(),
        });
        self.shards[i].flight = Some(InFlight {
            id,
            samples: batch,
            body,
            started: now.mono,
            attempts: 0,
            retry_at: None,
        });
    }

    /// The next request to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.sends.pop_front()
    }

    /// The next event to log.
    pub fn poll_event(&mut self) -> Option<QueueEvent> {
        self.events.pop_front()
    }

    /// The answer to request `id`.
    pub fn handle_response(&mut self, now: Now, id: u64, outcome: SendOutcome<'_>) {
        let Some(i) = self.shards.iter().position(|s| {
            s.flight
                .as_ref()
                .is_some_and(|f| f.id == id && f.retry_at.is_none())
        }) else {
            return; // a stale answer (the request was retried or the queue resharded)
        };
        let (retry, error, after_hint) = match outcome {
            SendOutcome::Status { code, .. } if (200..300).contains(&code) => (false, None, None),
            SendOutcome::Status {
                code, retry_after, ..
            } if code == 429 || code >= 500 => {
                let hint = if code == 429 { retry_after } else { None };
                (
                    true,
                    Some(format!("server returned HTTP status {code}")),
                    hint,
                )
            }
            SendOutcome::Status { code, body, .. } => {
                // Refused for good.
                let Some(f) = self.shards[i].flight.take() else {
                    return;
                };
                let (n, x, h) = kinds(&f.samples);
                self.stats.samples_failed += n;
                self.stats.exemplars_failed += x;
                self.stats.histograms_failed += h;
                self.events.push_back(QueueEvent::Dropped {
                    status: code,
                    samples: f.samples.len(),
                    body: body.chars().take(1024).collect(),
                });
                self.release(&f.samples);
                self.dispatch(now);
                return;
            }
            SendOutcome::Failed(e) => (true, Some(e.to_owned()), None),
        };
        if !retry {
            let Some(f) = self.shards[i].flight.take() else {
                return;
            };
            let took = now.mono.saturating_since(f.started).as_secs_f64();
            let (n, x, h) = kinds(&f.samples);
            self.stats.samples_sent += n;
            self.stats.exemplars_sent += x;
            self.stats.histograms_sent += h;
            self.stats.bytes_sent += f.body.len() as u64;
            self.stats.requests += 1;
            self.stats.send_seconds += took;
            self.durations.observe(took);
            if let Some(m) = f
                .samples
                .iter()
                .filter(|p| !p.is_exemplar())
                .map(|p| p.s.t)
                .max()
            {
                self.stats.highest_sent_ms = self.stats.highest_sent_ms.max(m);
            }
            self.last_ok = Some(now.mono);
            if self.failing {
                self.failing = false;
                self.events.push_back(QueueEvent::Recovered);
            }
            self.release(&f.samples);
            self.dispatch(now);
            return;
        }
        let q = &self.cfg.queue_config;
        let (min, max) = (q.min_backoff.to_std(), q.max_backoff.to_std());
        let attempt = self.shards[i].flight.as_ref().map_or(0, |f| f.attempts) + 1;
        let step = min
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(max.max(min));
        // Jitter: between half and all of the step.
        let half = step / 2;
        let span = step.saturating_sub(half).as_nanos() as u64;
        let jitter = if span == 0 {
            0
        } else {
            self.next_random() % (span + 1)
        };
        let wait = after_hint.unwrap_or(half + Duration::from_nanos(jitter));
        self.stats.failed_requests += 1;
        self.failing = true;
        if let Some(f) = self.shards[i].flight.as_mut() {
            f.attempts = attempt;
            f.retry_at = Some(now.mono + wait);
            let (n, x, h) = kinds(&f.samples);
            self.stats.samples_retried += n;
            self.stats.exemplars_retried += x;
            self.stats.histograms_retried += h;
        }
        self.events.push_back(QueueEvent::Retrying {
            error: error.unwrap_or_default(),
            attempt,
            after: wait,
        });
    }

    /// When [`Queue::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadline = self.cfg.queue_config.batch_send_deadline.to_std();
        let mut t = self.next_reshard;
        let mut earliest = |x: Instant| {
            t = Some(t.map_or(x, |y: Instant| y.min(x)));
        };
        for s in &self.shards {
            match &s.flight {
                Some(f) => {
                    if let Some(r) = f.retry_at {
                        earliest(r);
                    }
                }
                // While resharding waits for the requests in flight, nothing new starts.
                None if self.reshard_to.is_none() => {
                    if let Some(since) = s.since {
                        earliest(since + deadline);
                    }
                }
                None => {}
            }
        }
        t
    }

    /// Retries, partial batches and resharding that are due at `now`.
    pub fn handle_timeout(&mut self, now: Now) {
        for i in 0..self.shards.len() {
            let resend = match self.shards[i].flight.as_mut() {
                Some(f) if f.retry_at.is_some_and(|r| now.mono >= r) => {
                    f.retry_at = None;
                    f.id = self.next_id;
                    self.next_id += 1;
                    f.started = now.mono;
                    Some(Transmit {
                        id: f.id,
                        body: f.body.clone(),
                        samples: f.samples.len(),
                    })
                }
                _ => None,
            };
            if let Some(s) = resend {
                self.sends.push_back(s);
            }
        }
        if self.next_reshard.is_some_and(|t| now.mono >= t) {
            self.next_reshard = Some(now.mono + RESHARD_EVERY);
            self.reshard_tick(now.mono);
        }
        self.dispatch(now);
    }

    fn reshard_tick(&mut self, now: Instant) {
        let secs = RESHARD_EVERY.as_secs_f64();
        let din = self.stats.samples_in - self.last_in;
        let dout = self.stats.samples_sent - self.last_out;
        let dsecs = self.stats.send_seconds - self.last_send_seconds;
        self.last_in = self.stats.samples_in;
        self.last_out = self.stats.samples_sent;
        self.last_send_seconds = self.stats.send_seconds;
        self.rate_in.update(din as f64 / secs);
        self.rate_out.update(dout as f64 / secs);
        let deadline = self.cfg.queue_config.batch_send_deadline.to_std();
        // Sends failing: no resharding until they work again.
        if self
            .last_ok
            .is_none_or(|t| now.saturating_since(t) > deadline * 2)
        {
            return;
        }
        if dout == 0 {
            return;
        }
        let time_per_sample = dsecs / dout as f64;
        let backlog = self.stats.samples_pending as f64;
        let desired = time_per_sample * (self.rate_in.value + 0.05 * backlog);
        self.stats.shards_desired = desired;
        let q = &self.cfg.queue_config;
        let cur = self.shards.len() as f64;
        let mut want = desired.ceil().max(1.0);
        if (want - cur).abs() <= 0.3 * cur {
            return;
        }
        // No scaling down while more than 10 s behind.
        if want < cur && backlog > self.rate_in.value * 10.0 {
            return;
        }
        want = want.clamp(q.min_shards.max(1) as f64, q.max_shards.max(1) as f64);
        let want = want as usize;
        if want != self.shards.len() {
            self.reshard_to = Some(want);
        }
    }

    /// Applies a pending shard count once nothing is in flight: pending samples are
    /// spread again by `ref mod shards`, keeping each series' order.
    fn apply_reshard(&mut self) {
        let Some(n) = self.reshard_to else { return };
        if self.shards.iter().any(|s| s.flight.is_some()) {
            return;
        }
        let from = self.shards.len();
        let mut all: Vec<(Option<Instant>, Pending, ExLabels)> = Vec::new();
        for mut s in self.shards.drain(..) {
            let since = s.since;
            for p in s.pending {
                let labels = if p.has_extra() {
                    s.ex_labels.pop_front()
                } else {
                    None
                };
                all.push((since, p, labels));
            }
        }
        // Back in arrival order (sequence, then position within the shard's queue).
        all.sort_by_key(|(_, p, _)| p.seq());
        self.shards = (0..n).map(|_| Shard::default()).collect();
        for (since, p, labels) in all {
            self.shards[(p.series % n as u64) as usize].push(p, labels, since);
        }
        self.reshard_to = None;
        self.stats.shards = n as u64;
        self.events.push_back(QueueEvent::Resharded { from, to: n });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::Pairs;

    #[derive(Clone, Debug)]
    enum Op {
        /// Intern field number `n` (fields are `n` repeated, 1 to 300 bytes).
        Intern(u8),
        /// Release the `k`-th id held (modulo how many are held).
        Release(usize),
    }

    fn field(n: u8) -> Vec<u8> {
        vec![n; 1 + (n as usize * 37) % 300]
    }

    proptest! {
        /// Whatever order fields are interned and released in, and however often the
        /// arena is compacted, every held id gives back its field; equal fields share
        /// an id while one is held; ids of released fields are reused; and the arena
        /// never holds more than twice the live bytes plus the compaction threshold.
        #[test]
        fn pairs_give_back_what_was_interned(
            ops in proptest::collection::vec(
                prop_oneof![
                    (0u8..40).prop_map(Op::Intern),
                    (0usize..1000).prop_map(Op::Release),
                ],
                1..400,
            )
        ) {
            let mut p = Pairs::default();
            // Held ids, with the field each stands for.
            let mut held: Vec<(u32, u8)> = Vec::new();
            let mut by_field: BTreeMap<u8, u32> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Intern(n) => {
                        let id = p.intern(&field(n));
                        if let Some(&known) = by_field.get(&n) {
                            prop_assert_eq!(id, known, "one id per field while held");
                        }
                        by_field.insert(n, id);
                        held.push((id, n));
                    }
                    Op::Release(k) if !held.is_empty() => {
                        let (id, n) = held.remove(k % held.len());
                        p.release(&[id]);
                        if !held.iter().any(|&(_, m)| m == n) {
                            by_field.remove(&n);
                        }
                    }
                    Op::Release(_) => {}
                }
                let live: usize = by_field.keys().map(|&n| field(n).len()).sum();
                for &(id, n) in &held {
                    prop_assert_eq!(p.field(id), &field(n)[..]);
                }
                let ids: Vec<u32> = held.iter().map(|&(id, _)| id).collect();
                let mut out = Vec::new();
                p.write(&ids, &mut out);
                prop_assert_eq!(out.len(), p.len(&ids));
                let want: Vec<u8> = held.iter().flat_map(|&(_, n)| field(n)).collect();
                prop_assert_eq!(out, want);
                prop_assert!(p.bytes.len() <= 2 * live + 4096 + 300);
                prop_assert!(p.spans.len() <= 40, "released ids are reused");
            }
        }
    }
}
