//! The scrape manager: one pool per job, incremental target sync, scrape loops on the
//! Prometheus 3.x phase grid.
//!
//! * A pool keeps, for every source `(provider, source)` of its job, the group and what
//!   each of its targets became (active, dropped by rule *n*, failed). A delivery re-runs
//!   relabeling only for the sources it names, so the cost is proportional to what
//!   changed.
//! * An active target is identified by its full final label set and URL (the
//!   [`ScrapeTarget`]); the 64-bit target hash only picks the scrape phase. Several
//!   discovered entries yielding the same identity share one loop (reference-counted).
//! * A loop scrapes at `phase + k·interval` (wall-clock grid, as Prometheus), never has two
//!   scrapes in flight, cancels a scrape at `scrape_timeout`, and, when stopped, lets its
//!   in-flight scrape finish before it goes.

pub mod pipeline;
pub mod request;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{ScrapeConfig, TargetGroup};
use crate::discovery::SourceKey;
use crate::exposition::gzip::{Gunzip, GzipError};
use crate::exposition::{
    BodyParser, FeedError, Format, HistogramOptions, MetricType, select_format,
};
use crate::io::{IoEvent, IoOp, IoQueue, Origin, RequestId};
use crate::labels::{self, Labels, LabelsBuilder};
use crate::metrics::{Buckets, Metrics, Summary};
use crate::target::{self, Health, Populated, ScrapeTarget};
use crate::time::{Instant, Now, UnixNanos};
use pipeline::{Batch, CacheStats, ScrapeContext, ScrapeRun, SeriesCache};
use request::RequestTemplate;

/// Identifies a scrape loop for the lifetime of the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LoopId(pub u64);

/// Where a loop lives: its id (never reused; orders loops as before) and its slot in
/// the loop slab (reused after the loop ends), so finding a loop is an index, not a
/// tree search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct LoopKey {
    id: LoopId,
    slot: u32,
}

// Most slots are live: boxing the loop would add an allocation per loop for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum SlabSlot {
    Free,
    /// Numbered for a new identity; the loop starts later in the same sync.
    Reserved(LoopId),
    Live(LoopId, Loop),
}

/// The scrape loops, in a slab indexed by [`LoopKey::slot`].
#[derive(Debug, Default)]
struct Loops {
    slots: Vec<SlabSlot>,
    free: Vec<u32>,
    live: usize,
}

impl Loops {
    /// Numbers a loop and holds a slot for it.
    fn reserve(&mut self, id: LoopId) -> LoopKey {
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = SlabSlot::Reserved(id);
                s
            }
            None => {
                self.slots.push(SlabSlot::Reserved(id));
                // More than 2^32 loops at once cannot fit in memory anyway.
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        LoopKey { id, slot }
    }

    /// Gives back a reserved slot whose loop will not start.
    fn release(&mut self, key: LoopKey) {
        if let Some(s) = self.slots.get_mut(key.slot as usize)
            && matches!(s, SlabSlot::Reserved(id) if *id == key.id)
        {
            *s = SlabSlot::Free;
            self.free.push(key.slot);
        }
    }

    /// Starts the loop in its reserved slot.
    fn fill(&mut self, key: LoopKey, l: Loop) {
        if let Some(s) = self.slots.get_mut(key.slot as usize)
            && matches!(s, SlabSlot::Reserved(id) if *id == key.id)
        {
            *s = SlabSlot::Live(key.id, l);
            self.live += 1;
        }
    }

    /// Every live loop, in slot order.
    fn values(&self) -> impl Iterator<Item = &Loop> {
        self.slots.iter().filter_map(|s| match s {
            SlabSlot::Live(_, l) => Some(l),
            _ => None,
        })
    }

    fn get(&self, key: &LoopKey) -> Option<&Loop> {
        match self.slots.get(key.slot as usize) {
            Some(SlabSlot::Live(id, l)) if *id == key.id => Some(l),
            _ => None,
        }
    }

    fn get_mut(&mut self, key: &LoopKey) -> Option<&mut Loop> {
        match self.slots.get_mut(key.slot as usize) {
            Some(SlabSlot::Live(id, l)) if *id == key.id => Some(l),
            _ => None,
        }
    }

    fn remove(&mut self, key: &LoopKey) -> Option<Loop> {
        let s = self.slots.get_mut(key.slot as usize)?;
        if !matches!(s, SlabSlot::Live(id, _) if *id == key.id) {
            return None;
        }
        self.free.push(key.slot);
        self.live -= 1;
        match std::mem::replace(s, SlabSlot::Free) {
            SlabSlot::Live(_, l) => Some(l),
            _ => None,
        }
    }

    fn len(&self) -> usize {
        self.live
    }

    /// Every live loop, in slot order.
    fn iter(&self) -> impl Iterator<Item = (LoopKey, &Loop)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| match s {
                // Slots are counted in u32 when they are made (see `reserve`).
                SlabSlot::Live(id, l) => Some((
                    LoopKey {
                        id: *id,
                        slot: slot as u32,
                    },
                    l,
                )),
                _ => None,
            })
    }
}

/// What one discovered entry of a source became.
#[derive(Clone, Debug)]
enum Slot {
    Active(ScrapeTarget),
    Dropped { rule: u32 },
    Failed,
}

#[derive(Debug)]
struct Source {
    group: Arc<TargetGroup>,
    slots: Vec<Slot>,
}

#[derive(Debug)]
struct ActiveEntry {
    loop_id: LoopKey,
    /// Discovered entries yielding this identity.
    refs: u32,
    /// The entry synced last (its discovered labels are shown).
    producer: (SourceKey, u32),
}

/// Per-pool counters, under Prometheus's names (`{scrape_job}`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// `prometheus_target_scrape_pool_sync_total`.
    pub syncs: u64,
    /// `prometheus_target_sync_failed_total`.
    pub sync_failed: u64,
    /// `prometheus_target_scrape_pool_exceeded_target_limit_total`.
    pub exceeded_target_limit: u64,
    /// `prometheus_target_scrape_pool_reloads_total`.
    pub reloads: u64,
    /// Relabel-and-finalise runs, one per discovered entry processed (how much work the
    /// incremental sync did; Prometheus re-runs every entry of the job on each sync).
    pub entries_relabeled: u64,
}

#[derive(Debug)]
struct Pool {
    config: Arc<ScrapeConfig>,
    template: Arc<RequestTemplate>,
    seed: u64,
    sources: BTreeMap<SourceKey, Source>,
    active: BTreeMap<ScrapeTarget, ActiveEntry>,
    dropped: usize,
    limit_error: Option<Arc<str>>,
    stats: PoolStats,
    /// When the pool was created (see [`crate::agent::AgentOptions::first_scrape_at_once`]).
    created: Instant,
}

#[derive(Debug)]
struct InFlight {
    id: RequestId,
    started: Now,
    deadline: Instant,
    status: Option<(u16, String)>,
    bytes: u64,
    /// Boxed: a loop holds an `InFlight` inline for its whole life, a body (parser and
    /// gzip state, about a kilobyte) only while a response arrives.
    body: Option<Box<Body>>,
}

/// Decompressed bytes one scrape parses per input at most: a gzip body that inflates
/// far (a decompression bomb within the body limit) is parsed in slices, the agent
/// asking for an immediate [`crate::Input::Timeout`] to go on, so other scrapes, timers
/// and the shell's own work get their turns in between. Until a slice leaves nothing
/// pending, [`crate::Agent::accepts_body`] tells the shell to read no more of that body.
pub const BODY_SLICE: u64 = 256 << 10;
/// gzip decoders kept for reuse (about 60 KiB each): more than the bodies usually in
/// flight at once on one loop turn.
const GUNZIPS_KEPT: usize = 8;
/// Slices of pending body work done per [`crate::Input::Timeout`], over the scrapes
/// that have some, in turn (4 MiB decompressed in all).
const SLICES_PER_TIMEOUT: usize = 16;

/// Where a body's bytes go: the scrape's run, the loop's series cache and the scrape's
/// context, and the body size limit.
struct Dest<'a, 'c> {
    run: &'a mut ScrapeRun,
    cache: &'a mut SeriesCache,
    ctx: &'a ScrapeContext<'c>,
    refs: &'a mut pipeline::Refs,
    limit: u64,
}

impl<'a, 'c> Dest<'a, 'c> {
    /// The destination in `run`, which starts (stamped `append_time`) if it has not.
    fn new(
        run: &'a mut Option<ScrapeRun>,
        cache: &'a mut SeriesCache,
        ctx: &'a ScrapeContext<'c>,
        refs: &'a mut pipeline::Refs,
        limit: u64,
        append_time: i64,
    ) -> Dest<'a, 'c> {
        let run = run.get_or_insert_with(|| ScrapeRun::new(cache, append_time));
        Dest {
            run,
            cache,
            ctx,
            refs,
            limit,
        }
    }
}

/// A response body being parsed into the scrape's batch.
#[derive(Debug)]
struct Body {
    format: Result<Format, String>,
    gunzip: Option<Gunzip>,
    parser: Option<BodyParser>,
    decompressed: u64,
    /// Compressed bytes received and not yet inflated (see [`BODY_SLICE`]), from
    /// `pending_at` on.
    pending: Vec<u8>,
    pending_at: usize,
    /// The response ended while bytes were pending: the scrape finishes once they are
    /// parsed.
    ended: bool,
    /// In the manager's queue of scrapes with pending body work.
    queued: bool,
}

impl Body {
    fn new(format: Result<Format, String>, gunzip: Option<Gunzip>) -> Body {
        Body {
            format,
            gunzip,
            parser: None,
            decompressed: 0,
            pending: Vec::new(),
            pending_at: 0,
            ended: false,
            queued: false,
        }
    }

    /// Decompresses and parses one chunk into `run`, at most [`BODY_SLICE`] of it;
    /// what is left waits in `pending` for [`Body::work`].
    fn feed(&mut self, chunk: &[u8], d: &mut Dest<'_, '_>) -> Result<(), String> {
        if !self.pending.is_empty() {
            // Behind what is already waiting, in order.
            self.pending.extend_from_slice(chunk);
            return Ok(());
        }
        let used = self.slice(chunk, d)?;
        if used < chunk.len() {
            self.pending.extend_from_slice(&chunk[used..]);
        }
        Ok(())
    }

    /// Parses the next slice of what is pending.
    fn work(&mut self, d: &mut Dest<'_, '_>) -> Result<(), String> {
        let pending = std::mem::take(&mut self.pending);
        let used = self.slice(&pending[self.pending_at..], d)?;
        self.pending = pending;
        self.pending_at += used;
        if self.pending_at == self.pending.len() {
            // Done: a bomb's backlog is not kept around.
            self.pending = Vec::new();
            self.pending_at = 0;
        } else if self.pending_at > self.pending.len() / 2 {
            // Moved down only once half is parsed: linear in the body, not quadratic.
            self.pending.drain(..self.pending_at);
            self.pending_at = 0;
        }
        Ok(())
    }

    /// Decompresses and parses from `input` until [`BODY_SLICE`] bytes came out (plain
    /// bodies: all of it; a chunk is one read of the shell); the input bytes taken.
    fn slice(&mut self, input: &[u8], d: &mut Dest<'_, '_>) -> Result<usize, String> {
        let Body {
            format,
            gunzip,
            parser,
            decompressed,
            ..
        } = self;
        let Dest {
            run,
            cache,
            ctx,
            refs,
            limit,
        } = d;
        let limit = *limit;
        let mut on_bytes = |bytes: &[u8]| -> Result<(), String> {
            if bytes.is_empty() {
                return Ok(());
            }
            *decompressed += bytes.len() as u64;
            if limit > 0 && *decompressed >= limit {
                run.body_bytes = -1;
                cache.stats.exceeded_body_size_limit += 1;
                return Err("body size limit exceeded".to_owned());
            }
            // An empty body is never parsed, so its Content-Type does not matter.
            let p = match parser {
                Some(p) => p,
                None => {
                    let cfg = ctx.cfg;
                    let hist = HistogramOptions {
                        native: cfg.scrape_native_histograms,
                        keep_classic: cfg.always_scrape_classic_histograms,
                        nhcb: cfg.convert_classic_histograms_to_nhcb,
                        start_timestamps: ctx.start_timestamps,
                    };
                    parser.insert(BodyParser::new(format.clone()?).histograms(hist))
                }
            };
            let r = p.feed(bytes, &mut |e| run.entry(cache, ctx, refs, e));
            r.map_err(|e| body_error(run, e))
        };
        match gunzip {
            Some(g) => g
                .feed_some(input, BODY_SLICE, &mut on_bytes)
                .map_err(gzip_error),
            None => on_bytes(input).map(|()| input.len()),
        }
    }

    /// The end of the body: the rest of the stream and the format's end rules.
    fn finish(&mut self, d: &mut Dest<'_, '_>) -> Result<(), String> {
        if let Some(mut g) = self.gunzip.take() {
            // What the decoder still holds is at most a step's output.
            let mut rest = Vec::new();
            g.finish(&mut |b: &[u8]| -> Result<(), String> {
                rest.extend_from_slice(b);
                Ok(())
            })
            .map_err(gzip_error)?;
            self.slice(&rest, d)?;
            // Kept for the manager to use again.
            self.gunzip = Some(g);
        }
        d.run.body_bytes = self.decompressed as i64;
        let Dest {
            run,
            cache,
            ctx,
            refs,
            ..
        } = d;
        match self.parser.as_mut() {
            Some(p) => {
                let r = p.finish(&mut |e| run.entry(cache, ctx, refs, e));
                r.map_err(|e| body_error(run, e))
            }
            None => Ok(()),
        }
    }
}

/// A body that does not parse fails the scrape as an append error (recorded in the
/// run, unlike a transport error).
fn body_error(run: &mut ScrapeRun, e: FeedError<String>) -> String {
    let m = feed_error(e);
    run.fail(m.clone());
    m
}

fn gzip_error(e: GzipError<String>) -> String {
    match e {
        GzipError::Invalid(m) | GzipError::Sink(m) => m,
    }
}

fn feed_error(e: FeedError<String>) -> String {
    match e {
        FeedError::Parse(p) => p.to_string(),
        FeedError::Sink(s) => s,
    }
}

#[derive(Debug)]
struct Loop {
    job: Arc<str>,
    target: ScrapeTarget,
    /// The target's public labels, attached to every series.
    public: Labels,
    cfg: Arc<ScrapeConfig>,
    cache: SeriesCache,
    /// The scrape in progress (created with the first byte of a body, or at the end).
    run: Option<ScrapeRun>,
    template: Arc<RequestTemplate>,
    next_tick: Instant,
    next_wall: UnixNanos,
    in_flight: Option<InFlight>,
    stopping: bool,
    /// End-of-run staleness for a target that went away: when to write the markers
    /// (monotonic) and their timestamp (the loop's next tick).
    ending: Option<(Instant, UnixNanos)>,
    health: Health,
    last_error: String,
    last_scrape: Option<UnixNanos>,
    last_duration: Duration,
    /// When the last scrape request began (for `prometheus_target_interval_length_seconds`).
    last_start: Option<Instant>,
    /// A first scrape at once is due from this instant (see
    /// [`crate::agent::AgentOptions::first_scrape_at_once`]).
    at_once: Option<Instant>,
    /// The instant this loop's timer entry is filed under.
    wake: Instant,
}

impl Loop {
    fn wake_at(&self) -> Instant {
        match (&self.in_flight, self.ending) {
            // A stopping loop waits for its scrape to end, then for its stale markers.
            (Some(f), _) if self.stopping => f.deadline,
            (Some(f), _) => f.deadline.min(self.next_tick),
            (None, Some((at, _))) => at,
            (None, None) => self
                .at_once
                .map_or(self.next_tick, |t| t.min(self.next_tick)),
        }
    }

    /// True once nothing is left for the loop to do.
    fn done(&self) -> bool {
        self.stopping && self.in_flight.is_none() && self.ending.is_none()
    }
}

/// Scrape-manager counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    /// `prometheus_target_scrape_pools_total`.
    pub pools_created: u64,
    /// `prometheus_target_scrape_pools_failed_total`.
    pub pools_failed: u64,
    /// Scrape requests started.
    pub scrapes_started: u64,
    /// Scrapes cancelled at their timeout.
    pub scrapes_timed_out: u64,
    /// Ticks that found the previous scrape still running (cannot happen while
    /// timeout ≤ interval; counted to prove it).
    pub ticks_skipped_busy: u64,
    /// First scrapes started at once, off the grid
    /// ([`crate::agent::AgentOptions::first_scrape_at_once`]).
    pub scrapes_at_once: u64,
    /// `prometheus_target_scrape_pool_reloads_total` (all pools).
    pub reloads: u64,
    /// `prometheus_target_scrape_pool_exceeded_target_limit_total` (all pools).
    pub exceeded_target_limit: u64,
}

/// The scrape manager's duration estimators (3.x's `scrapeMetrics` summaries and
/// histograms).
#[derive(Clone, Debug)]
pub(crate) struct Timings {
    /// `prometheus_target_interval_length_seconds` and `_histogram_seconds`, by interval.
    interval: BTreeMap<Duration, (Summary, Buckets)>,
    /// `prometheus_target_scrape_duration_seconds`.
    duration: Buckets,
}

impl Default for Timings {
    fn default() -> Timings {
        Timings {
            interval: BTreeMap::new(),
            duration: Buckets::new(crate::metrics::DEFAULT_BUCKETS),
        }
    }
}

/// A change of a target's health, for logs and the shells' views.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthChange {
    /// Job.
    pub job: Arc<str>,
    /// URL.
    pub url: Arc<str>,
    /// New health.
    pub health: Health,
    /// The error, empty when up.
    pub error: String,
}

/// One active target as the views show it.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetView {
    /// The job.
    pub job: Arc<str>,
    /// The target (identity, URL, interval, timeout).
    pub target: ScrapeTarget,
    /// Labels before relabeling (of the entry synced last).
    pub discovered_labels: Labels,
    /// Health of the last scrape.
    pub health: Health,
    /// Last error, empty if none.
    pub last_error: String,
    /// Start of the last scrape (its sample timestamp).
    pub last_scrape: Option<UnixNanos>,
    /// How long the last scrape took.
    pub last_scrape_duration: Duration,
    /// The next scheduled scrape (wall clock).
    pub next_scrape: UnixNanos,
    /// The loop.
    pub loop_id: LoopId,
}

/// A metric family's metadata as a target exposed it: family, type, help, unit.
pub type FamilyMetadata = (String, MetricType, String, String);

/// One dropped target as the views show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedView {
    /// The job.
    pub job: Arc<str>,
    /// Labels before relabeling.
    pub discovered_labels: Labels,
    /// Index of the relabel rule that dropped it.
    pub rule: usize,
}

/// One pool as the views show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolView {
    /// The job.
    pub job: Arc<str>,
    /// Active targets (distinct identities).
    pub active: usize,
    /// Dropped entries.
    pub dropped: usize,
    /// Sources known.
    pub sources: usize,
    /// The target-limit error, if the limit is exceeded.
    pub limit_error: Option<String>,
    /// Counters.
    pub stats: PoolStats,
}

/// Everything the scrape manager reports back to the agent from one call.
#[derive(Debug, Default)]
pub(crate) struct ScrapeOut {
    pub(crate) health: Vec<HealthChange>,
    pub(crate) sync_failures: Vec<(Arc<str>, String)>,
    pub(crate) pools_created: Vec<Arc<str>>,
    pub(crate) pools_stopped: Vec<Arc<str>>,
    pub(crate) batches: Vec<Batch>,
    /// Stopped targets whose end-of-run stale markers were still due when shutdown came
    /// (dropped, as Prometheus drops them).
    pub(crate) stale_dropped: usize,
}

/// The fields a pool can change in place, keeping its loops (and, later, their series
/// caches): interval, timeout, the sample/body/target limits, `keep_dropped_targets`, the HTTP
/// client and the discovery blocks. Label limits are not among them: cached series skip those checks, so
/// Prometheus starts fresh caches when they change (§9.5 #62), and so do we.
fn reusable_change(a: &ScrapeConfig, b: &ScrapeConfig) -> bool {
    let mut a = a.clone();
    let b = b.clone();
    a.scrape_interval = b.scrape_interval;
    a.scrape_timeout = b.scrape_timeout;
    a.limits.sample_limit = b.limits.sample_limit;
    a.limits.body_size_limit = b.limits.body_size_limit;
    a.limits.target_limit = b.limits.target_limit;
    a.limits.keep_dropped_targets = b.limits.keep_dropped_targets;
    a.http_client = b.http_client.clone();
    a.target_defaults = b.target_defaults.clone();
    // Discovery blocks reach the pool as target changes; the loops of targets that
    // stay are not affected.
    a.sd_configs = b.sd_configs.clone();
    a == b
}

/// URL and encoded labels (see [`stable_identity`]).
type StableIdentity = (Arc<str>, Vec<u8>);

/// A target's URL and labels without the interval and timeout labels: what stays the same
/// when only those change, so a loop can be handed over.
fn stable_identity(t: &ScrapeTarget) -> StableIdentity {
    let mut key = Vec::new();
    for (n, v) in t.labels.iter() {
        if n != labels::SCRAPE_INTERVAL && n != labels::SCRAPE_TIMEOUT {
            key.extend_from_slice(n.as_bytes());
            key.push(0xff);
            key.extend_from_slice(v.as_bytes());
            key.push(0xff);
        }
    }
    (t.url.clone(), key)
}

/// The scrape manager.
#[derive(Debug)]
pub(crate) struct ScrapeManager {
    configs: BTreeMap<Arc<str>, Arc<ScrapeConfig>>,
    pools: BTreeMap<Arc<str>, Pool>,
    loops: Loops,
    timers: BTreeSet<(Instant, LoopKey)>,
    owners: BTreeMap<RequestId, LoopKey>,
    next_loop: u64,
    /// Series refs.
    pub(crate) refs: pipeline::Refs,
    /// Batches retiring the series of loops that ended without an end-of-run batch.
    retire_batches: Vec<Batch>,
    seed: u64,
    user_agent: Arc<str>,
    /// The body limit of jobs that set none ([`crate::agent::AgentOptions::body_size_limit`]).
    default_body_limit: u64,
    /// [`crate::agent::AgentOptions::start_timestamps`].
    pub(crate) start_timestamps: bool,
    /// [`crate::agent::AgentOptions::first_scrape_at_once`].
    pub(crate) first_at_once: bool,
    /// The hash that picks a target's phase (Prometheus's target hash). A field so a
    /// test can force collisions and show identity does not depend on it.
    phase_hash: fn(&ScrapeTarget) -> u64,
    /// Scrapes whose body has bytes waiting to be parsed (see [`BODY_SLICE`]), served in
    /// turn, and since when the queue has not been empty.
    busy: std::collections::VecDeque<RequestId>,
    busy_since: Option<Instant>,
    /// Bumped by every sync and configuration: the target set may have changed.
    pub(crate) version: u64,
    /// gzip decoders of finished bodies, reset for the next ones (at most
    /// [`GUNZIPS_KEPT`]): inflate state, window and output buffer are allocated once.
    gunzips: Vec<Gunzip>,
    pub(crate) stats: ScrapeStats,
    /// Duration estimators for the self-metrics.
    timings: Timings,
    /// The per-loop counters of loops that have ended (the `prometheus_target_scrapes_*`
    /// counters must not go back when a target leaves).
    ended: CacheStats,
}

/// What moves a scrape's body on: an IO event, or a turn to parse what is pending.
enum Step<'a> {
    Io(IoEvent<'a>),
    Work,
}

impl ScrapeManager {
    pub(crate) fn new(user_agent: Arc<str>, default_body_limit: u64) -> ScrapeManager {
        ScrapeManager {
            configs: BTreeMap::new(),
            pools: BTreeMap::new(),
            loops: Loops::default(),
            timers: BTreeSet::new(),
            owners: BTreeMap::new(),
            next_loop: 0,
            refs: pipeline::Refs::new(),
            retire_batches: Vec::new(),
            seed: 0,
            user_agent,
            default_body_limit,
            start_timestamps: false,
            first_at_once: false,
            phase_hash: ScrapeTarget::hash,
            busy: std::collections::VecDeque::new(),
            busy_since: None,
            version: 0,
            gunzips: Vec::new(),
            stats: ScrapeStats::default(),
            timings: Timings::default(),
            ended: CacheStats::default(),
        }
    }

    /// Applies a new set of scrape configs (and the offset seed for pools created from
    /// now on): removed jobs' pools stop, unchanged pools are untouched, pools whose
    /// config changed only in reusable fields keep their loops, the others restart them.
    pub(crate) fn apply_config(
        &mut self,
        now: Now,
        configs: BTreeMap<Arc<str>, Arc<ScrapeConfig>>,
        seed: u64,
        out: &mut ScrapeOut,
    ) {
        self.version += 1;
        self.seed = seed;
        let jobs: Vec<Arc<str>> = self.pools.keys().cloned().collect();
        for job in jobs {
            match configs.get(&job) {
                None => {
                    if let Some(pool) = self.pools.remove(&job) {
                        for e in pool.active.into_values() {
                            self.stop_loop(e.loop_id, false);
                        }
                        out.pools_stopped.push(job);
                    }
                }
                Some(new) => {
                    // The pool exists: `job` came from its keys.
                    let Some(pool) = self.pools.get(&job) else {
                        continue;
                    };
                    if *pool.config == **new {
                        continue;
                    }
                    let keep = reusable_change(&pool.config, new);
                    if keep && pool.config.target_defaults == new.target_defaults {
                        // Target labels cannot change: swap the config under the loops.
                        self.swap_config(&job, new.clone());
                    } else {
                        self.rebuild(now, &job, new.clone(), keep, out);
                    }
                }
            }
        }
        self.configs = configs;
    }

    /// A new config whose changes leave every target's labels as they are (limits, HTTP
    /// client): the loops stay and take the new request template.
    fn swap_config(&mut self, job: &Arc<str>, cfg: Arc<ScrapeConfig>) {
        let Some(pool) = self.pools.get_mut(job) else {
            return;
        };
        pool.stats.reloads += 1;
        self.stats.reloads += 1;
        pool.template = Arc::new(RequestTemplate::new(
            &cfg,
            &self.user_agent,
            self.default_body_limit,
        ));
        pool.config = cfg;
        for e in pool.active.values() {
            if let Some(l) = self.loops.get_mut(&e.loop_id) {
                l.template = pool.template.clone();
                l.cfg = pool.config.clone();
            }
        }
        self.check_limit(job);
    }

    /// Re-derives every target of a pool under a new config.
    fn rebuild(
        &mut self,
        now: Now,
        job: &Arc<str>,
        cfg: Arc<ScrapeConfig>,
        keep_loops: bool,
        out: &mut ScrapeOut,
    ) {
        let Some(pool) = self.pools.get_mut(job) else {
            return;
        };
        pool.stats.reloads += 1;
        self.stats.reloads += 1;
        pool.config = cfg;
        pool.template = Arc::new(RequestTemplate::new(
            &pool.config,
            &self.user_agent,
            self.default_body_limit,
        ));
        let mut old_active = std::mem::take(&mut pool.active);
        let sources = std::mem::take(&mut pool.sources);
        pool.dropped = 0;
        let changes: Vec<(SourceKey, Option<Arc<TargetGroup>>)> = sources
            .into_iter()
            .map(|(k, s)| (k, Some(s.group)))
            .collect();
        // Re-derive with no loops attached, then attach old loops where allowed.
        let mut fresh = Vec::new();
        self.apply_sources(job, changes, &mut fresh, out);
        // Loops are handed over to the same identity where it survived, else (interval or
        // timeout changed) to the identity that differs only in those two labels.
        let mut leftover: BTreeSet<LoopKey> = old_active.values().map(|e| e.loop_id).collect();
        let mut by_stable: Option<BTreeMap<StableIdentity, LoopKey>> = None;
        let template = self.pools.get(job).map(|p| p.template.clone());
        for (id, t) in fresh {
            let handed = if !keep_loops {
                None
            } else if let Some(e) = old_active.remove(&t) {
                leftover.remove(&e.loop_id).then_some(e.loop_id)
            } else {
                let map = by_stable.get_or_insert_with(|| {
                    old_active
                        .iter()
                        .map(|(t, e)| (stable_identity(t), e.loop_id))
                        .collect()
                });
                map.remove(&stable_identity(&t))
                    .filter(|l| leftover.remove(l))
            };
            match (handed, &template) {
                (Some(l), Some(template)) => {
                    self.loops.release(id);
                    self.hand_over(now, l, t.clone(), template.clone());
                    if let Some(e) = self.pools.get_mut(job).and_then(|p| p.active.get_mut(&t)) {
                        e.loop_id = l;
                    }
                }
                _ => self.start_loop(now, job, id, t),
            }
        }
        for l in leftover {
            self.stop_loop(l, true);
        }
        self.check_limit(job);
    }

    /// A loop takes over a target whose interval/timeout/config changed in reusable ways.
    fn hand_over(
        &mut self,
        now: Now,
        id: LoopKey,
        t: ScrapeTarget,
        template: Arc<RequestTemplate>,
    ) {
        let seed = self.seed;
        let Some(l) = self.loops.get_mut(&id) else {
            return;
        };
        let regrid = l.target.interval != t.interval;
        l.template = template;
        l.public = t.public_labels();
        l.target = t;
        if let Some(p) = self.pools.get(&l.job) {
            l.cfg = p.config.clone();
        }
        if regrid {
            let pool_seed = self.pools.get(&l.job).map_or(seed, |p| p.seed);
            let interval = l.target.interval.as_nanos();
            let wait = crate::hash::first_scrape_wait(
                (self.phase_hash)(&l.target),
                pool_seed,
                interval,
                now.wall.0,
            );
            l.next_tick = now.mono + Duration::from_nanos(wait);
            l.next_wall = now.wall + Duration::from_nanos(wait);
        }
        self.refile(id);
    }

    /// Applies the changed sources of one job (creating its pool on first mention).
    pub(crate) fn sync(
        &mut self,
        now: Now,
        job: &Arc<str>,
        changes: Vec<(SourceKey, Option<Arc<TargetGroup>>)>,
        out: &mut ScrapeOut,
    ) {
        self.version += 1;
        if !self.pools.contains_key(job) {
            let Some(cfg) = self.configs.get(job).cloned() else {
                // Discovery named a job the scrape configs do not have (cannot happen
                // while both come from one config; kept as data, not a panic).
                self.stats.pools_failed += 1;
                out.sync_failures
                    .push((job.clone(), format!("invalid config id:{job}")));
                return;
            };
            self.stats.pools_created += 1;
            out.pools_created.push(job.clone());
            self.pools.insert(
                job.clone(),
                Pool {
                    template: Arc::new(RequestTemplate::new(
                        &cfg,
                        &self.user_agent,
                        self.default_body_limit,
                    )),
                    config: cfg,
                    seed: self.seed,
                    sources: BTreeMap::new(),
                    active: BTreeMap::new(),
                    dropped: 0,
                    limit_error: None,
                    stats: PoolStats::default(),
                    created: now.mono,
                },
            );
        }
        let mut fresh = Vec::new();
        let gone = self.apply_sources(job, changes, &mut fresh, out);
        for (id, t) in fresh {
            self.start_loop(now, job, id, t);
        }
        for l in gone {
            self.stop_loop(l, true);
        }
        self.check_limit(job);
    }

    /// Replaces the given sources of a pool. New identities go to `fresh` with the id
    /// their loop is to have (their entries already carry it; the loop is not started);
    /// the loops of identities no entry yields any more are returned.
    fn apply_sources(
        &mut self,
        job: &Arc<str>,
        changes: Vec<(SourceKey, Option<Arc<TargetGroup>>)>,
        fresh: &mut Vec<(LoopKey, ScrapeTarget)>,
        out: &mut ScrapeOut,
    ) -> Vec<LoopKey> {
        let Some(pool) = self.pools.get_mut(job) else {
            return Vec::new();
        };
        pool.stats.syncs += 1;
        let cfg = pool.config.clone();
        // Loops numbered from here on are this call's new identities, not yet started.
        let first_new = self.next_loop;
        let mut candidates: Vec<ScrapeTarget> = Vec::new();
        for (key, group) in changes {
            if let Some(old) = pool.sources.remove(&key) {
                for slot in old.slots {
                    match slot {
                        Slot::Active(t) => {
                            if let Some(e) = pool.active.get_mut(&t) {
                                e.refs -= 1;
                                if e.refs == 0 {
                                    candidates.push(t);
                                }
                            }
                        }
                        Slot::Dropped { .. } => pool.dropped -= 1,
                        Slot::Failed => {}
                    }
                }
            }
            let Some(group) = group else { continue };
            let mut slots = Vec::with_capacity(group.targets.len());
            let mut lb = LabelsBuilder::with_capacity(16);
            let plan = target::GroupPlan::new(&group.labels, &group.targets, &cfg, &mut lb);
            for (i, t) in group.targets.iter().enumerate() {
                pool.stats.entries_relabeled += 1;
                let slot = match plan.populate(t, &cfg, &mut lb) {
                    Ok(Populated::Active(st)) => {
                        let producer = (key.clone(), i as u32);
                        match pool.active.entry(st.clone()) {
                            std::collections::btree_map::Entry::Occupied(mut e) => {
                                let e = e.get_mut();
                                e.refs += 1;
                                e.producer = producer;
                            }
                            std::collections::btree_map::Entry::Vacant(v) => {
                                let loop_id = self.loops.reserve(LoopId(self.next_loop));
                                self.next_loop += 1;
                                v.insert(ActiveEntry {
                                    loop_id,
                                    refs: 1,
                                    producer,
                                });
                                fresh.push((loop_id, st.clone()));
                            }
                        }
                        Slot::Active(st)
                    }
                    Ok(Populated::Dropped { rule }) => {
                        pool.dropped += 1;
                        Slot::Dropped { rule: rule as u32 }
                    }
                    Err(e) => {
                        pool.stats.sync_failed += 1;
                        out.sync_failures.push((
                            job.clone(),
                            format!("instance {i} in group {}: {e}", group.source),
                        ));
                        Slot::Failed
                    }
                };
                slots.push(slot);
            }
            drop(plan);
            drop(lb);
            pool.sources.insert(key, Source { group, slots });
        }
        let mut gone = Vec::new();
        for t in candidates {
            if let std::collections::btree_map::Entry::Occupied(e) = pool.active.entry(t)
                && e.get().refs == 0
            {
                let id = e.remove().loop_id;
                if id.id.0 >= first_new {
                    // The identity came and went inside this call: its loop never starts.
                    fresh.retain(|(f, _)| *f != id);
                    self.loops.release(id);
                } else {
                    gone.push(id);
                }
            }
        }
        gone
    }

    fn check_limit(&mut self, job: &Arc<str>) {
        let Some(pool) = self.pools.get_mut(job) else {
            return;
        };
        let limit = pool.config.limits.target_limit;
        let n = pool.active.len() as u64;
        if limit > 0 && n > limit {
            pool.stats.exceeded_target_limit += 1;
            self.stats.exceeded_target_limit += 1;
            pool.limit_error = Some(
                format!("target_limit exceeded (number of targets: {n}, limit: {limit})").into(),
            );
        } else {
            pool.limit_error = None;
        }
    }

    /// Starts the loop `id` (numbered by [`ScrapeManager::apply_sources`]) for `t`.
    fn start_loop(&mut self, now: Now, job: &Arc<str>, id: LoopKey, t: ScrapeTarget) {
        // Loops are only started for targets of an existing pool.
        let Some(pool) = self.pools.get(job) else {
            self.loops.release(id);
            return;
        };
        let (seed, template, cfg) = (pool.seed, pool.template.clone(), pool.config.clone());
        let interval = t.interval.as_nanos();
        let wait =
            crate::hash::first_scrape_wait((self.phase_hash)(&t), seed, interval, now.wall.0);
        let at_once = (self.first_at_once
            && now.mono >= pool.created + t.interval.to_std()
            && Duration::from_nanos(wait) > t.timeout.to_std())
        .then_some(now.mono);
        let mut l = Loop {
            job: job.clone(),
            template,
            public: t.public_labels(),
            cfg,
            cache: SeriesCache::new(),
            run: None,
            target: t,
            next_tick: now.mono + Duration::from_nanos(wait),
            next_wall: now.wall + Duration::from_nanos(wait),
            in_flight: None,
            stopping: false,
            ending: None,
            health: Health::Unknown,
            last_error: String::new(),
            last_scrape: None,
            last_duration: Duration::ZERO,
            last_start: None,
            at_once,
            wake: Instant::ZERO,
        };
        l.wake = l.wake_at();
        self.timers.insert((l.wake, id));
        self.loops.fill(id, l);
    }

    /// Stops a loop: gone once its in-flight scrape (if any) ends. With `stale` (its
    /// target left discovery, or a reload restarts it) a loop that has scraped writes
    /// end-of-run stale markers first, as Prometheus does: at its next tick's time, one
    /// interval and a tenth after that tick — unless its target is back by then.
    fn stop_loop(&mut self, id: LoopKey, stale: bool) {
        let Some(l) = self.loops.get_mut(&id) else {
            return;
        };
        l.stopping = true;
        if stale && l.last_scrape.is_some() && l.ending.is_none() {
            let interval = l.target.interval.to_std();
            l.ending = Some((l.next_tick + interval + interval / 10, l.next_wall));
        }
        if l.done() {
            self.remove_loop(id);
        } else {
            self.refile(id);
        }
    }

    fn remove_loop(&mut self, id: LoopKey) {
        if let Some(mut l) = self.loops.remove(&id) {
            self.ended.add(&l.cache.stats);
            let retired = l.cache.retire_all();
            if !retired.is_empty() {
                self.retire_batches.push(Batch {
                    job: l.job.clone(),
                    target: l.target.url.clone(),
                    loop_id: id.id.0,
                    series: Vec::new(),
                    samples: Vec::new(),
                    histograms: Default::default(),
                    exemplars: Default::default(),
                    retired: retired.into(),
                });
            }
            self.timers.remove(&(l.wake, id));
            if let Some(f) = l.in_flight {
                self.owners.remove(&f.id);
            }
        }
    }

    /// Files a loop's timer entry under its current wake-up time.
    fn refile(&mut self, id: LoopKey) {
        let Some(l) = self.loops.get_mut(&id) else {
            return;
        };
        self.timers.remove(&(l.wake, id));
        l.wake = l.wake_at();
        self.timers.insert((l.wake, id));
    }

    /// Batches that only retire series (of loops that ended), in the order the loops
    /// ended; the agent emits them after the scrape batches of the same call.
    pub(crate) fn take_retire_batches(&mut self) -> Vec<Batch> {
        std::mem::take(&mut self.retire_batches)
    }

    /// The earliest loop deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let timer = self.timers.first().map(|(t, _)| *t);
        match (timer, self.busy_since) {
            (Some(t), Some(b)) => Some(t.min(b)),
            (t, b) => t.or(b),
        }
    }

    /// False while the scrape `id`'s body has received bytes not yet parsed: the shell
    /// should read no more of it until this turns true (true for any other id).
    pub(crate) fn accepts_body(&self, id: RequestId) -> bool {
        let Some(lid) = self.owners.get(&id) else {
            return true;
        };
        self.loops
            .get(lid)
            .and_then(|l| l.in_flight.as_ref())
            .filter(|f| f.id == id)
            .and_then(|f| f.body.as_ref())
            .is_none_or(|b| b.pending.is_empty())
    }

    /// Parses a slice of each of the next scrapes with pending body work.
    fn work_bodies(&mut self, now: Now, io: &mut IoQueue, out: &mut ScrapeOut) {
        for _ in 0..SLICES_PER_TIMEOUT {
            let Some(id) = self.busy.pop_front() else {
                break;
            };
            self.step(now, id, Step::Work, io, out);
        }
        if self.busy.is_empty() {
            self.busy_since = None;
        }
    }

    /// Parses pending bodies a slice further, then runs every loop whose deadline has
    /// passed.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Now,
        timeout: bool,
        io: &mut IoQueue,
        out: &mut ScrapeOut,
    ) {
        if timeout && self.busy_since.is_some_and(|b| b <= now.mono) {
            self.work_bodies(now, io, out);
        }
        // Each due loop runs once per call: a loop can never spin the agent, whatever
        // its next wake-up is.
        let due: Vec<(Instant, LoopKey)> = self
            .timers
            .range(
                ..=(
                    now.mono,
                    LoopKey {
                        id: LoopId(u64::MAX),
                        slot: u32::MAX,
                    },
                ),
            )
            .copied()
            .collect();
        for (at, id) in due {
            self.timers.remove(&(at, id));
            self.run_loop(now, id, io, out);
        }
    }

    fn run_loop(&mut self, now: Now, id: LoopKey, io: &mut IoQueue, out: &mut ScrapeOut) {
        let Some(l) = self.loops.get_mut(&id) else {
            return;
        };
        // 1. A scrape past its timeout is cancelled and counts as failed.
        if let Some(rid) = l
            .in_flight
            .as_ref()
            .filter(|f| now.mono >= f.deadline)
            .map(|f| f.id)
        {
            io.cancel(rid);
            self.owners.remove(&rid);
            self.stats.scrapes_timed_out += 1;
            let url = crate::gourl::redact_url(&l.target.url, crate::gourl::STRIPPED);
            let error = format!("Get {url:?}: context deadline exceeded");
            Self::finish(
                l,
                id.id.0,
                now,
                Err(error),
                out,
                &mut self.refs,
                &mut self.timings,
            );
            if l.done() {
                self.remove_loop(id);
                return;
            }
        }
        // End-of-run staleness, once the last scrape is over.
        if let Some((at, stale_time)) = l.ending
            && l.in_flight.is_none()
        {
            if now.mono < at {
                self.refile(id);
                return;
            }
            let back = self
                .pools
                .get(&l.job)
                .is_some_and(|p| p.active.contains_key(&l.target));
            if !back {
                out.batches.push(pipeline::end_of_run(
                    &mut l.cache,
                    &l.job,
                    &l.target.url,
                    id.id.0,
                    stale_time.as_millis(),
                ));
            }
            self.remove_loop(id);
            return;
        }
        // 2. Ticks: scrape on the grid (or at once, the first time, if asked); never two
        // in flight.
        let on_grid = now.mono >= l.next_tick;
        if (on_grid || l.at_once.is_some_and(|t| now.mono >= t)) && !l.stopping {
            let forced = self.pools.get(&l.job).and_then(|p| p.limit_error.clone());
            let interval = l.target.interval.to_std();
            // An at-once scrape is stamped when it starts, off the grid.
            let scheduled_wall = if on_grid { l.next_wall } else { now.wall };
            if l.at_once.take().is_some() && !on_grid {
                self.stats.scrapes_at_once += 1;
            }
            // Advance to the next grid point after now (a late wake-up skips what it missed).
            while l.next_tick <= now.mono {
                l.next_tick = l.next_tick + interval;
                l.next_wall = l.next_wall + interval;
            }
            if l.in_flight.is_some() {
                self.stats.ticks_skipped_busy += 1;
            } else if let Some(e) = forced {
                l.last_scrape = Some(scheduled_wall);
                Self::finish(
                    l,
                    id.id.0,
                    Now::new(now.mono, scheduled_wall),
                    Err(e.to_string()),
                    out,
                    &mut self.refs,
                    &mut self.timings,
                );
            } else {
                let req = l.template.request(
                    &l.target.url,
                    l.target.timeout.to_std(),
                    Origin::Scrape {
                        job: l.job.clone(),
                        loop_id: id.id.0,
                    },
                );
                let rid = io.start(IoOp::Http(req));
                self.stats.scrapes_started += 1;
                // 3.x's `scrapeLoop.scrapeAndReport`: the time since the last scrape
                // began, under the loop's interval.
                if let Some(last) = l.last_start {
                    let (summary, buckets) =
                        self.timings.interval.entry(interval).or_insert_with(|| {
                            (
                                Summary::new(),
                                Buckets::new(crate::metrics::INTERVAL_BUCKETS),
                            )
                        });
                    let seconds = now.mono.saturating_since(last).as_secs_f64();
                    summary.observe(now.mono, seconds);
                    buckets.observe(seconds);
                }
                l.last_start = Some(now.mono);
                self.owners.insert(rid, id);
                l.in_flight = Some(InFlight {
                    id: rid,
                    started: Now::new(now.mono, scheduled_wall),
                    deadline: now.mono + l.target.timeout.to_std(),
                    status: None,
                    bytes: 0,
                    body: None,
                });
                l.last_scrape = Some(scheduled_wall);
            }
        }
        self.refile(id);
    }

    /// Records the end of a scrape (or of a forced-error tick, which started at `now`):
    /// its batch and the target's health.
    fn finish(
        l: &mut Loop,
        loop_id: u64,
        now: Now,
        result: Result<(), String>,
        out: &mut ScrapeOut,
        refs: &mut pipeline::Refs,
        timings: &mut Timings,
    ) {
        let started = l.in_flight.take().map_or(now, |f| f.started);
        l.last_duration = now.mono.saturating_since(started.mono);
        // 3.x's `prometheus_target_scrape_duration_seconds` (`scrapeAndReport`).
        timings.duration.observe(l.last_duration.as_secs_f64());
        let append_time = started.wall.as_millis();
        let run = match l.run.take() {
            Some(r) => r,
            None => ScrapeRun::new(&mut l.cache, append_time),
        };
        let (cfg, public) = (l.cfg.clone(), l.public.clone());
        let (job, url) = (l.job.clone(), l.target.url.clone());
        let ctx = ScrapeContext {
            job: &job,
            url: &url,
            loop_id,
            cfg: &cfg,
            target_labels: &public,
            append_time,
            max_time: now.wall.as_millis().saturating_add(10 * 60 * 1000),
            start_timestamps: false, // nothing is parsed here,
        };
        let done = run.finish(&mut l.cache, &ctx, refs, l.last_duration, result);
        out.batches.push(done.batch);
        let (health, error) = match done.result {
            Ok(()) => (Health::Up, String::new()),
            Err(e) => (Health::Down, e),
        };
        if health != l.health || error != l.last_error {
            out.health.push(HealthChange {
                job: l.job.clone(),
                url: l.target.url.clone(),
                health,
                error: error.clone(),
            });
        }
        l.health = health;
        l.last_error = error;
    }

    /// Routes an IO event to its loop; false if no loop owns `id`.
    pub(crate) fn handle_io(
        &mut self,
        now: Now,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut ScrapeOut,
    ) -> bool {
        self.step(now, id, Step::Io(ev), io, out)
    }

    /// Moves scrape `id` on by `step`; false if no loop owns `id`.
    fn step(
        &mut self,
        now: Now,
        id: RequestId,
        step: Step<'_>,
        io: &mut IoQueue,
        out: &mut ScrapeOut,
    ) -> bool {
        let Some(&lid) = self.owners.get(&id) else {
            return false;
        };
        let Some(l) = self.loops.get_mut(&lid) else {
            self.owners.remove(&id);
            return true;
        };
        if l.in_flight.as_ref().is_none_or(|f| f.id != id) {
            self.owners.remove(&id);
            return true;
        }
        let Loop {
            in_flight,
            cache,
            cfg,
            public,
            run,
            template,
            target,
            job: l_job,
            ..
        } = &mut *l;
        let Some(f) = in_flight.as_mut() else {
            return true;
        };
        let limit = template.body_limit();
        let cfg = cfg.clone();
        let append_time = f.started.wall.as_millis();
        let (job, url) = (l_job.clone(), target.url.clone());
        let ctx = ScrapeContext {
            job: &job,
            url: &url,
            loop_id: lid.id.0,
            cfg: &cfg,
            target_labels: public,
            append_time,
            max_time: now.wall.as_millis().saturating_add(10 * 60 * 1000),
            start_timestamps: self.start_timestamps,
        };
        let refs = &mut self.refs;
        let result = match step {
            Step::Io(IoEvent::HttpHead {
                status,
                reason,
                headers,
            }) => {
                f.status = Some((status, reason.to_owned()));
                if status != 200 {
                    // The body is of no use: stop reading it.
                    io.cancel(id);
                    Some(Err(format!(
                        "server returned HTTP status {status} {reason}"
                    )))
                } else {
                    let header = |name: &str| {
                        headers
                            .iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case(name))
                            .map(|(_, v)| *v)
                    };
                    let format =
                        select_format(header("Content-Type"), cfg.fallback_scrape_protocol);
                    let gunzip = (header("Content-Encoding") == Some("gzip"))
                        .then(|| self.gunzips.pop().unwrap_or_default());
                    f.body = Some(Box::new(Body::new(format, gunzip)));
                    None
                }
            }
            Step::Io(IoEvent::HttpBody(chunk)) => {
                f.bytes += chunk.len() as u64;
                let mut d = Dest::new(run, cache, &ctx, refs, limit, append_time);
                match f.body.as_mut() {
                    Some(b) => match b.feed(chunk, &mut d) {
                        Ok(()) => None,
                        Err(e) => {
                            io.cancel(id);
                            Some(Err(e))
                        }
                    },
                    None => {
                        io.cancel(id);
                        Some(Err("response body before its status line".to_owned()))
                    }
                }
            }
            Step::Io(IoEvent::HttpEnd) => match (f.status.as_ref(), f.body.as_mut()) {
                // The rest is parsed first, slice by slice.
                (Some((200, _)), Some(b)) if !b.pending.is_empty() => {
                    b.ended = true;
                    None
                }
                (Some((200, _)), Some(b)) => {
                    let mut d = Dest::new(run, cache, &ctx, refs, limit, append_time);
                    Some(b.finish(&mut d))
                }
                _ => Some(Err("response ended before its status line".to_owned())),
            },
            Step::Work => match f.body.as_mut() {
                Some(b) if !b.pending.is_empty() => {
                    b.queued = false;
                    let mut d = Dest::new(run, cache, &ctx, refs, limit, append_time);
                    match b.work(&mut d) {
                        Err(e) => {
                            if !b.ended {
                                io.cancel(id);
                            }
                            Some(Err(e))
                        }
                        Ok(()) if b.pending.is_empty() && b.ended => Some(b.finish(&mut d)),
                        Ok(()) => None,
                    }
                }
                _ => None,
            },
            Step::Io(IoEvent::Failed(e)) => {
                let url = crate::gourl::redact_url(&target.url, crate::gourl::STRIPPED);
                Some(Err(format!("Get {url:?}: {e}")))
            }
            Step::Io(_) => Some(Err("unexpected answer to a scrape request".to_owned())),
        };
        // Bytes left to parse: the scrape waits its turn in the queue.
        let wait = result.is_none()
            && f.body
                .as_mut()
                .is_some_and(|b| !b.pending.is_empty() && !std::mem::replace(&mut b.queued, true));
        if wait {
            self.busy.push_back(id);
            self.busy_since.get_or_insert(now.mono);
        }
        if let Some(r) = result {
            if let Some(mut g) = f.body.as_mut().and_then(|b| b.gunzip.take())
                && self.gunzips.len() < GUNZIPS_KEPT
            {
                g.reset();
                self.gunzips.push(g);
            }
            self.owners.remove(&id);
            Self::finish(l, lid.id.0, now, r, out, &mut self.refs, &mut self.timings);
            if l.done() {
                self.remove_loop(lid);
            } else {
                self.refile(lid);
            }
        }
        true
    }

    /// Shutdown: every loop stops without end-of-run stale markers, and markers still
    /// waiting for their time (targets removed in the last two intervals) are dropped.
    /// This is Prometheus 3.x's `scrapeLoop.endOfRunStaleness`: once the pool's parent
    /// context is cancelled it returns without appending, presuming the server restarts
    /// where it was. Scrapes in flight still finish (bounded by their timeouts); a
    /// marker due for such a loop is dropped too.
    pub(crate) fn stop_all(&mut self, out: &mut ScrapeOut) {
        let pools = std::mem::take(&mut self.pools);
        for (job, pool) in pools {
            for e in pool.active.into_values() {
                self.stop_loop(e.loop_id, false);
            }
            out.pools_stopped.push(job);
        }
        self.configs.clear();
        let ending: Vec<LoopKey> = self
            .loops
            .iter()
            .filter(|(_, l)| l.ending.is_some())
            .map(|(k, _)| k)
            .collect();
        for id in ending {
            if let Some(l) = self.loops.get_mut(&id) {
                l.ending = None;
                out.stale_dropped += 1;
                if l.done() {
                    self.remove_loop(id);
                } else {
                    self.refile(id);
                }
            }
        }
    }

    /// Loops still alive (active or finishing a scrape).
    pub(crate) fn loops_alive(&self) -> usize {
        self.loops.len()
    }

    /// Scrapes in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.owners.len()
    }

    /// Active targets by job, then URL, then labels.
    /// Metric metadata of every active target's last scrapes, deduplicated and sorted
    /// (family, type, help, unit): what remote write sends as metadata.
    pub(crate) fn metadata(&self) -> Vec<(String, MetricType, String, String)> {
        let mut set = std::collections::BTreeSet::new();
        for pool in self.pools.values() {
            for e in pool.active.values() {
                if let Some(l) = self.loops.get(&e.loop_id) {
                    for (name, m) in l.cache.metadata() {
                        set.insert((name.to_owned(), m.kind, m.help.clone(), m.unit.clone()));
                    }
                }
            }
        }
        set.into_iter().collect()
    }

    /// The metadata of each active target's last scrape, by target (public labels), in
    /// the order of [`ScrapeManager::targets`]: family, type, help, unit.
    pub(crate) fn target_metadata(&self) -> Vec<(Labels, Vec<FamilyMetadata>)> {
        let mut out = Vec::new();
        for pool in self.pools.values() {
            for (t, e) in pool.in_view_order() {
                let Some(l) = self.loops.get(&e.loop_id) else {
                    continue;
                };
                let meta = l
                    .cache
                    .metadata()
                    .into_iter()
                    .map(|(name, m)| (name.to_owned(), m.kind, m.help.clone(), m.unit.clone()))
                    .collect();
                out.push((t.public_labels(), meta));
            }
        }
        out
    }

    pub(crate) fn targets(&self) -> Vec<TargetView> {
        let mut out = Vec::new();
        for (job, pool) in &self.pools {
            for (t, e) in pool.in_view_order() {
                let Some(l) = self.loops.get(&e.loop_id) else {
                    continue;
                };
                out.push(TargetView {
                    job: job.clone(),
                    target: t.clone(),
                    discovered_labels: pool.discovered(&e.producer),
                    health: l.health,
                    last_error: l.last_error.clone(),
                    last_scrape: l.last_scrape,
                    last_scrape_duration: l.last_duration,
                    next_scrape: l.next_wall,
                    loop_id: e.loop_id.id,
                });
            }
        }
        out
    }

    pub(crate) fn dropped_targets(&self) -> Vec<DroppedView> {
        let mut out = Vec::new();
        for (job, pool) in &self.pools {
            let keep = pool.config.limits.keep_dropped_targets as usize;
            let mut n = 0;
            'sources: for (key, src) in &pool.sources {
                for (i, slot) in src.slots.iter().enumerate() {
                    if let Slot::Dropped { rule } = slot {
                        if keep > 0 && n >= keep {
                            break 'sources;
                        }
                        n += 1;
                        out.push(DroppedView {
                            job: job.clone(),
                            discovered_labels: pool.discovered(&(key.clone(), i as u32)),
                            rule: *rule as usize,
                        });
                    }
                }
            }
        }
        out
    }

    /// The scrape manager's self-metrics, under 3.x's names (`scrape/metrics.go`,
    /// `newScrapeMetrics`), as of `now`.
    pub(crate) fn metrics(&self, now: Instant, m: &mut Metrics) {
        let mut totals = self.ended.clone();
        let mut meta: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for l in self.loops.values() {
            totals.add(&l.cache.stats);
            let e = meta.entry(&l.job).or_default();
            for (name, f) in l.cache.metadata() {
                // 3.x's `metaEntry.size`: the strings' lengths.
                e.0 += 1;
                e.1 += (name.len() + f.help.len() + f.unit.len() + f.kind.as_str().len()) as u64;
            }
        }
        m.gauge(
            "prometheus_agent_active_series",
            "Number of active series being tracked by the WAL storage",
            vec![],
            self.loops
                .values()
                .map(|l| l.cache.stored_len())
                .sum::<usize>() as f64,
        );
        let s = &self.stats;
        let counters: [(&'static str, &'static str, u64); 14] = [
            (
                "trawl_target_scrapes_at_once_total",
                "First scrapes of new targets started at once, off their phase grid (--scrape.first-at-once).",
                s.scrapes_at_once,
            ),
            (
                "prometheus_target_scrape_pools_total",
                "Total number of scrape pool creation attempts.",
                s.pools_created,
            ),
            (
                "prometheus_target_scrape_pools_failed_total",
                "Total number of scrape pool creations that failed.",
                s.pools_failed,
            ),
            (
                "prometheus_target_scrape_pool_reloads_total",
                "Total number of scrape pool reloads.",
                s.reloads,
            ),
            // Rebuilding a pool's HTTP client from a validated config cannot fail in
            // trawl; the counter is kept for dashboards.
            (
                "prometheus_target_scrape_pool_reloads_failed_total",
                "Total number of failed scrape pool reloads.",
                0,
            ),
            (
                "prometheus_target_scrape_pool_exceeded_target_limit_total",
                "Total number of times scrape pools hit the target limit, during sync or config reload.",
                s.exceeded_target_limit,
            ),
            (
                "prometheus_target_scrape_pool_exceeded_label_limits_total",
                "Total number of times scrape pools hit the label limits, during sync or config reload.",
                totals.exceeded_label_limits,
            ),
            (
                "prometheus_target_scrapes_exceeded_body_size_limit_total",
                "Total number of scrapes that hit the body size limit",
                totals.exceeded_body_size_limit,
            ),
            (
                "prometheus_target_scrapes_cache_flush_forced_total",
                "How many times a scrape cache was flushed due to getting big while scrapes are failing.",
                totals.cache_flush_forced,
            ),
            (
                "prometheus_target_scrapes_exceeded_sample_limit_total",
                "Total number of scrapes that hit the sample limit and were rejected.",
                totals.exceeded_sample_limit,
            ),
            (
                "prometheus_target_scrapes_sample_duplicate_timestamp_total",
                "Total number of samples rejected due to duplicate timestamps but different values.",
                totals.duplicate_timestamp,
            ),
            (
                "prometheus_target_scrapes_sample_out_of_order_total",
                "Total number of samples rejected due to not being out of the expected order.",
                totals.out_of_order,
            ),
            (
                "prometheus_target_scrapes_sample_out_of_bounds_total",
                "Total number of samples rejected due to timestamp falling outside of the time bounds.",
                totals.out_of_bounds,
            ),
            (
                "prometheus_target_scrapes_exceeded_native_histogram_bucket_limit_total",
                "Total number of scrapes that hit the native histogram bucket limit and were rejected.",
                totals.exceeded_bucket_limit,
            ),
        ];
        for (name, help, v) in counters {
            m.counter(name, help, vec![], v as f64);
        }
        // As in 3.x's agent storage, which drops only a repeat of a series' last
        // exemplar, no exemplar is refused for its order.
        m.counter(
            "prometheus_target_scrapes_exemplar_out_of_order_total",
            "Total number of exemplar rejected due to not being out of the expected order.",
            vec![],
            0.0,
        );
        for (job, p) in &self.pools {
            let l = || vec![("scrape_job", job.to_string())];
            m.gauge(
                "prometheus_target_scrape_pool_targets",
                "Current number of targets in this scrape pool.",
                l(),
                p.active.len() as f64,
            );
            m.gauge(
                "prometheus_target_scrape_pool_target_limit",
                "Maximum number of targets allowed in this scrape pool.",
                l(),
                p.config.limits.target_limit as f64,
            );
            m.counter(
                "prometheus_target_scrape_pool_sync_total",
                "Total number of syncs that were executed on a scrape pool.",
                l(),
                p.stats.syncs as f64,
            );
            m.counter(
                "prometheus_target_sync_failed_total",
                "Total number of target sync failures.",
                l(),
                p.stats.sync_failed as f64,
            );
            let (entries, bytes) = meta.get(&**job).copied().unwrap_or_default();
            m.gauge(
                "prometheus_target_metadata_cache_entries",
                "Total number of metric metadata entries in the cache",
                l(),
                entries as f64,
            );
            m.gauge("prometheus_target_metadata_cache_bytes", "The number of bytes that are currently used for storing metric metadata in the cache", l(), bytes as f64);
        }
        for (interval, (summary, buckets)) in &self.timings.interval {
            let l = || vec![("interval", crate::metrics::go_duration(*interval))];
            m.summary(
                "prometheus_target_interval_length_seconds",
                "Actual intervals between scrapes.",
                l(),
                summary,
                now,
            );
            m.histogram(
                "prometheus_target_interval_length_histogram_seconds",
                "Actual intervals between scrapes.",
                l(),
                buckets,
            );
        }
        m.histogram(
            "prometheus_target_scrape_duration_seconds",
            "Total duration of the scrape from start to commit completion in seconds.",
            vec![],
            &self.timings.duration,
        );
    }

    pub(crate) fn pools(&self) -> Vec<PoolView> {
        self.pools
            .iter()
            .map(|(job, p)| PoolView {
                job: job.clone(),
                active: p.active.len(),
                dropped: p.dropped,
                sources: p.sources.len(),
                limit_error: p.limit_error.as_deref().map(str::to_owned),
                stats: p.stats.clone(),
            })
            .collect()
    }

    /// The config a pool runs with.
    pub(crate) fn pool_config(&self, job: &str) -> Option<&Arc<ScrapeConfig>> {
        self.pools.get(job).map(|p| &p.config)
    }

    /// The active identities of a pool (for checks against a from-scratch recomputation).
    pub(crate) fn active_identities(&self, job: &str) -> Vec<ScrapeTarget> {
        self.pools
            .get(job)
            .map(|p| p.active.keys().cloned().collect())
            .unwrap_or_default()
    }
}

impl Pool {
    /// The active targets in the order the views list them: by URL, then labels.
    fn in_view_order(&self) -> Vec<(&ScrapeTarget, &ActiveEntry)> {
        let mut active: Vec<(&ScrapeTarget, &ActiveEntry)> = self.active.iter().collect();
        active.sort_by(|a, b| {
            (&*a.0.url, a.0.labels.encoded()).cmp(&(&*b.0.url, b.0.labels.encoded()))
        });
        active
    }

    fn discovered(&self, producer: &(SourceKey, u32)) -> Labels {
        self.sources
            .get(&producer.0)
            .and_then(|s| {
                s.group
                    .targets
                    .get(producer.1 as usize)
                    .map(|t| target::discovered_labels(t, &s.group.labels, &self.config))
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
