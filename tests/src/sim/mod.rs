//! The deterministic simulator: an [`Agent`], a virtual clock, a fake world (one fake per
//! discovery mechanism that runs, see [`worlds`]: SD files in a directory, an HTTP SD
//! endpoint, a DNS server; scrape targets with latency, hangs, resets and errors; config
//! reloads) and a seeded RNG. Events are delivered earliest first, ties broken by
//! the order they were scheduled. After every step the invariants are checked; a broken
//! one ends the run with an error naming the seed and the command that replays it.
//!
//! Invariants:
//! * request ids are fresh; a cancel names an open request; after shutdown nothing is
//!   open (every request completes or is cancelled);
//! * a loop never has two scrapes in flight, and a scrape is never open past its timeout;
//! * consecutive scrapes of a loop are exactly one interval apart (unless a reload
//!   changed that loop's interval, which moves it to the new grid);
//! * no queue grows without bound (outputs per step, operations in flight, live loops);
//! * the incremental pools equal a from-scratch recomputation after every delivery;
//! * a discovery change reaches the pools within the coalescing bound: once the world has
//!   been quiet that long, every job's active URLs are exactly what the world implies;
//! * storage is consistent: every series ref is declared once, before its first sample;
//!   a stale marker is written only for a live series (so a series that vanishes gets
//!   exactly one); a failed scrape stores only stale markers and report series; `up`
//!   matches what the target did (a valid body, completed, is 1; anything else 0); after a
//!   successful scrape the target's live series are exactly those its body exposed.
//!
//! Healthy targets serve generated bodies: text and OpenMetrics, gzip-compressed, with a
//! series set that changes from scrape to scrape, now and then large, slow (in chunks with
//! pauses, sometimes past the timeout) or broken halfway.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt::Write;
use std::time::Duration;

use trawl_core::agent::{Agent, AgentOptions, Event, Input, Output};
use trawl_core::io::{IoOp, Origin, OwnedIoEvent, RequestId};
use trawl_core::scrape::pipeline::REPORT_SERIES;
use trawl_core::time::{Instant, Now, UnixNanos};

use trawl_core::hash::{FNV1A64_START, fnv1a64_extend};

use crate::{T0_WALL, config};

pub mod worlds;

use worlds::{Answer, Reply, SdWorld};

/// A small, fast, seedable RNG (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p` percent.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// How a simulated target behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    /// Answers 200 after some latency.
    Healthy,
    /// Never answers (the scrape must time out).
    Hangs,
    /// Connection refused.
    Refuses,
    /// Answers 503.
    Errors,
    /// Resets the connection halfway through the body.
    Resets,
}

/// Parameters of one run.
#[derive(Clone, Debug)]
pub struct SimParams {
    /// The seed: same seed, same run, same digest.
    pub seed: u64,
    /// Simulated duration.
    pub duration: Duration,
}

/// What a finished run reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimReport {
    /// FNV-1a-64 of the whole output trace (time and output of every step).
    pub digest: u64,
    /// Steps taken.
    pub steps: u64,
    /// Scrapes started.
    pub scrapes: u64,
    /// Deliveries of discovery changes.
    pub deliveries: u64,
    /// Config reloads applied.
    pub reloads: u64,
    /// World changes made.
    pub world_changes: u64,
    /// Batches stored.
    pub batches: u64,
    /// Stale markers among them.
    pub stale_markers: u64,
    /// Batches of failed scrapes (`up` 0).
    pub failed_scrapes: u64,
    /// Operations each discovery world answered, by mechanism key.
    pub sd_answers: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone)]
enum Scheduled {
    /// Deliver the next event of an operation's scripted answer.
    Reply { id: RequestId, events: Vec<Reply> },
    /// Change the world.
    World,
    /// Apply a new config.
    Reload,
    /// Check that the pools match the world (if it stayed quiet).
    Converged { since_change: u64 },
}

/// The scrape targets' side of the world (discovery's is in [`worlds`]).
#[derive(Debug, Default)]
struct World {
    /// Behaviour of each target address.
    targets: BTreeMap<String, Behaviour>,
    /// Latency of each address.
    latency: BTreeMap<String, Duration>,
    /// The series each target exposes (changing now and then).
    series: BTreeMap<String, BTreeSet<u32>>,
}

#[derive(Debug)]
struct Variant {
    yaml: String,
    drop_9xxx: bool,
    /// Job → (the index of its world, whether the variant's relabel rule applies).
    jobs: BTreeMap<&'static str, (usize, bool)>,
}

/// One simulation run.
pub struct Sim {
    params: SimParams,
    agent: Agent,
    now: Now,
    rng: Rng,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    items: BTreeMap<u64, Scheduled>,
    seq: u64,
    world: World,
    /// The discovery worlds, as [`worlds::worlds`] lists them.
    sd: Vec<Box<dyn SdWorld>>,
    digest: u64,
    /// Open operations: id → (op, started at).
    open: BTreeMap<RequestId, (IoOp, Instant)>,
    last_id: u64,
    /// Loop id → (last scrape start, interval at that start).
    loop_starts: BTreeMap<u64, (Instant, Duration)>,
    /// Loop id → open scrape.
    loop_busy: BTreeMap<u64, RequestId>,
    /// Loop id → interval as last seen in the views.
    loop_interval: BTreeMap<u64, Duration>,
    variant: Variant,
    changes: u64,
    last_change: Instant,
    report: SimReport,
    shutting_down: bool,
    store: Store,
    /// Loops alive after the previous step.
    prev_loops: usize,
    /// The most discovery jobs a configuration of this run had.
    most_jobs: usize,
    /// Open streams → when their last scheduled event arrives: a stream's events keep
    /// their order, as TCP keeps it (replies and the world's notifications alike).
    stream_tail: BTreeMap<RequestId, Instant>,
}

/// What storage holds, as far as the invariants need it.
#[derive(Debug, Default)]
struct Store {
    /// Series ref → (loop, metric name).
    series: BTreeMap<u64, (u64, String)>,
    /// Live series (last sample not a stale marker) by loop.
    live: BTreeMap<u64, BTreeSet<u64>>,
    /// Scrape request → (its loop, the names its body exposes if valid).
    expect: BTreeMap<RequestId, (u64, Option<BTreeSet<String>>)>,
    /// Loop → expected `up` of its scrape in progress and, if it succeeds, the names it
    /// exposes.
    outcome: BTreeMap<u64, (f64, Option<BTreeSet<String>>)>,
    batches: u64,
    /// Refs retired (never to be used again).
    retired: BTreeSet<u64>,
    /// Batches and samples not yet acknowledged to the agent.
    unacked: (u64, u64),
    /// The simulated disk is full: acknowledgements report the samples lost.
    disk_full: bool,
    /// Samples acknowledged as stored, and as lost.
    stored: u64,
    lost: u64,
}

impl Store {
    /// Checks a batch; returns its `up` value (`None` for end-of-run markers).
    fn check(&mut self, b: &trawl_core::scrape::pipeline::Batch) -> Result<Option<f64>, String> {
        self.batches += 1;
        let key = b.loop_id;
        let what = || format!("loop {} ({} {})", b.loop_id, b.job, b.target);
        for (r, l) in &b.series {
            let name = l.get("__name__").unwrap_or("").to_owned();
            if self.series.insert(r.0, (key, name)).is_some() {
                return Err(format!("series ref {} declared twice", r.0));
            }
        }
        let series = &self.series;
        let name_of = |r: u64| series.get(&r).map(|s| s.1.as_str());
        let mut up = None;
        for p in &b.samples {
            let Some(name) = name_of(p.series.0) else {
                return Err(format!("sample for undeclared series ref {}", p.series.0));
            };
            if self.retired.contains(&p.series.0) {
                return Err(format!(
                    "sample for retired series ref {} ({name})",
                    p.series.0
                ));
            }
            if name == "up" && !p.is_stale() {
                up = Some(p.value());
            }
        }
        self.unacked.0 += 1;
        self.unacked.1 += b.samples.len() as u64;
        let live = self.live.entry(key).or_default();
        for p in &b.samples {
            let name = name_of(p.series.0).unwrap_or_default();
            if REPORT_SERIES.contains(&name) {
                continue;
            }
            if p.is_stale() {
                if !live.remove(&p.series.0) {
                    return Err(format!("second stale marker for {name} of {}", what()));
                }
            } else {
                if up == Some(0.0) {
                    return Err(format!("failed scrape of {} stored {name}", what()));
                }
                live.insert(p.series.0);
            }
        }
        for r in &b.retired {
            match series.get(&r.0) {
                None => return Err(format!("retired undeclared series ref {}", r.0)),
                Some((owner, _)) if *owner != key => {
                    return Err(format!("{} retired ref {} of loop {owner}", what(), r.0));
                }
                Some(_) => {}
            }
            if !self.retired.insert(r.0) {
                return Err(format!("series ref {} retired twice", r.0));
            }
        }
        let live = self.live.entry(key).or_default();
        for r in &b.retired {
            live.remove(&r.0);
        }
        let Some(up) = up else {
            // End-of-run markers: only stale markers.
            if b.samples.iter().any(|p| !p.is_stale()) {
                return Err(format!("batch of {} without up stored samples", what()));
            }
            return Ok(None);
        };
        let (want_up, names) = self.outcome.get(&key).cloned().unwrap_or((0.0, None));
        if up != want_up {
            return Err(format!("up {up} for {}, expected {want_up}", what()));
        }
        if let Some(names) = names {
            let live: BTreeSet<String> = live
                .iter()
                .filter_map(|r| series.get(r))
                .map(|s| s.1.clone())
                .collect();
            if live != names {
                return Err(format!(
                    "after a good scrape of {} live series are {live:?}, the body had {names:?}",
                    what()
                ));
            }
        }
        Ok(Some(up))
    }
}

/// A generated scrape answer.
struct GenBody {
    events: Vec<Reply>,
    /// The metric names it exposes, if it is valid.
    names: Option<BTreeSet<String>>,
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

fn gen_body(rng: &mut Rng, set: &mut BTreeSet<u32>, big: bool) -> GenBody {
    let kind = rng.below(100);
    // The target's series set changes now and then: one series comes or goes.
    if rng.chance(15) {
        let i = rng.below(if big { 110 } else { 6 }) as u32;
        if !set.remove(&i) {
            set.insert(i);
        }
    }
    let names: BTreeSet<String> = set.iter().map(|i| format!("m{i}")).collect();
    let om = (3..20).contains(&kind);
    let mut body = String::new();
    for name in &names {
        let v = rng.below(1000);
        if om {
            let _ = writeln!(body, "# TYPE {name} gauge\n{name}{{x=\"1\"}} {v}");
        } else {
            let _ = writeln!(body, "# HELP {name} help\n{name} {{x=\"1\"}}\t{v}");
        }
    }
    let broken = (20..28).contains(&kind);
    if broken {
        body.push_str("broken{x=\"1\",,} 1\n");
    }
    if om {
        body.push_str("# EOF\n");
    }
    let ct = if om {
        "application/openmetrics-text; version=1.0.0"
    } else {
        "text/plain; version=0.0.4"
    };
    let gz = (28..40).contains(&kind);
    let slow = (40..50).contains(&kind);
    let bytes = if gz {
        gzip(body.as_bytes())
    } else {
        body.into_bytes()
    };
    let mut events = vec![Reply::head(200, "OK", ct, gz)];
    if slow {
        // Chunks with pauses; the total sometimes exceeds the shortest timeout.
        for c in bytes.chunks(bytes.len().div_ceil(5).max(1)) {
            events.push(Reply::body(c.to_vec()));
            events.push(Reply::Wait(1 + rng.below(400)));
        }
    } else {
        for c in bytes.chunks(if big { 512 } else { bytes.len().max(1) }) {
            events.push(Reply::body(c.to_vec()));
        }
    }
    events.push(Reply::end());
    GenBody {
        events,
        names: (!broken).then_some(names),
    }
}

/// A configuration: each world's jobs (with the variant's interval, timeout and relabel
/// rule where they follow it), then a static job. Worlds are told whether they are in
/// use.
fn variant(rng: &mut Rng, sd: &mut [Box<dyn SdWorld>]) -> Variant {
    let interval_s = [10, 15, 30, 60][rng.below(4) as usize];
    let timeout_s = [1, 3, interval_s][rng.below(3) as usize].min(interval_s);
    let drop_9xxx = rng.chance(50);
    let mut y = String::from("scrape_configs:\n");
    let relabel = if drop_9xxx {
        "    relabel_configs: [{source_labels: [__address__], regex: '.*:9[0-9]{3}', action: drop}]\n"
    } else {
        ""
    };
    let mut jobs = BTreeMap::new();
    for (i, w) in sd.iter_mut().enumerate() {
        let wj = w.jobs(rng);
        w.reloaded(!wj.is_empty());
        for j in wj {
            if j.follows_variant {
                let _ = write!(
                    y,
                    "  - job_name: {}\n    scrape_interval: {interval_s}s\n    scrape_timeout: {timeout_s}s\n{relabel}{}",
                    j.name, j.sd
                );
            } else {
                let _ = write!(
                    y,
                    "  - job_name: {}\n    scrape_interval: 60s\n{}",
                    j.name, j.sd
                );
            }
            jobs.insert(j.name, (i, j.follows_variant));
        }
    }
    let _ = write!(
        y,
        "  - job_name: static\n    scrape_interval: 30s\n    static_configs: [{{targets: ['127.0.0.200:80', '127.0.0.201:80']}}]\n"
    );
    Variant {
        yaml: y,
        drop_9xxx,
        jobs,
    }
}

/// Number of addresses discovery can name.
const ADDRS: usize = 24;

fn addr_pool() -> Vec<String> {
    (1..=ADDRS)
        .map(|i| format!("127.0.0.{i}:{}", if i % 5 == 0 { 9100 } else { 8000 + i }))
        .collect()
}

impl Sim {
    /// A run with these parameters.
    pub fn new(params: SimParams) -> Sim {
        let mut rng = Rng::new(params.seed);
        let mut world = World::default();
        for a in addr_pool()
            .into_iter()
            .chain(["127.0.0.200:80".to_owned(), "127.0.0.201:80".to_owned()])
        {
            let b = match rng.below(20) {
                0 => Behaviour::Hangs,
                1 => Behaviour::Refuses,
                2 => Behaviour::Errors,
                3 => Behaviour::Resets,
                _ => Behaviour::Healthy,
            };
            world
                .latency
                .insert(a.clone(), Duration::from_millis(1 + rng.below(300)));
            world.targets.insert(a, b);
        }
        let mut sd = worlds::worlds();
        for w in &mut sd {
            w.init(&mut rng, &addr_pool());
        }
        let variant = variant(&mut rng, &mut sd);
        let now = Now::new(Instant(0), UnixNanos(T0_WALL));
        let options = AgentOptions {
            seed: params.seed,
            fqdn: "sim.example".into(),
            resolv_conf: worlds::dns::RESOLV_CONF.into(),
            api_bases: sd
                .iter()
                .filter_map(|w| w.api_base())
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            ..AgentOptions::default()
        };
        let agent = Agent::new(config(&variant.yaml), options, now);
        let mut sim = Sim {
            params,
            agent,
            now,
            rng,
            queue: BinaryHeap::new(),
            items: BTreeMap::new(),
            stream_tail: BTreeMap::new(),
            seq: 0,
            world,
            sd,
            digest: FNV1A64_START,
            open: BTreeMap::new(),
            last_id: 0,
            loop_starts: BTreeMap::new(),
            loop_busy: BTreeMap::new(),
            loop_interval: BTreeMap::new(),
            variant,
            changes: 0,
            last_change: Instant(0),
            report: SimReport {
                digest: 0,
                steps: 0,
                scrapes: 0,
                deliveries: 0,
                reloads: 0,
                world_changes: 0,
                batches: 0,
                stale_markers: 0,
                failed_scrapes: 0,
                sd_answers: BTreeMap::new(),
            },
            shutting_down: false,
            store: Store::default(),
            prev_loops: 0,
            most_jobs: 0,
        };
        let first_change = Duration::from_secs(60 + sim.rng.below(600));
        sim.schedule(first_change, Scheduled::World);
        let first_reload = Duration::from_secs(600 + sim.rng.below(1800));
        sim.schedule(first_reload, Scheduled::Reload);
        sim
    }

    fn schedule(&mut self, after: Duration, what: Scheduled) {
        self.seq += 1;
        let mut at = self.now.mono + after;
        // A stream's events never overtake each other.
        if let Scheduled::Reply { id, .. } = &what
            && let Some(tail) = self.stream_tail.get_mut(id)
        {
            at = at.max(*tail);
            *tail = at;
        }
        self.queue.push(Reverse((at, self.seq)));
        self.items.insert(self.seq, what);
    }

    /// The URLs the world implies for a job, after the job's relabel rule.
    fn expected_urls(&self, job: &str) -> BTreeSet<String> {
        let (addrs, relabeled): (Vec<String>, bool) = match self.variant.jobs.get(job) {
            Some(&(w, follows)) => (self.sd[w].addresses(), follows),
            None if job == "static" => (
                vec!["127.0.0.200:80".into(), "127.0.0.201:80".into()],
                false,
            ),
            None => (vec![], false),
        };
        let drops = self.variant.drop_9xxx && relabeled;
        addrs
            .into_iter()
            .filter(|a| {
                !(drops
                    && a.rsplit(':')
                        .next()
                        .is_some_and(|p| p.len() == 4 && p.starts_with('9')))
            })
            .map(|a| format!("http://{a}/metrics"))
            .collect()
    }

    fn fail(&self, what: String) -> String {
        format!(
            "seed {} at {}: {what}\nreplay: cargo run -p trawl-tests --bin sim -- --seed {} --hours {}",
            self.params.seed,
            self.now.mono,
            self.params.seed,
            self.params.duration.as_secs_f64() / 3600.0
        )
    }

    /// Runs to the end, then shuts down and drains; returns the report or the first
    /// broken invariant.
    pub fn run(mut self) -> Result<SimReport, String> {
        self.drain()?;
        let end = Instant(self.params.duration.as_nanos() as u64);
        let mut last_timeout_at = Instant(u64::MAX);
        let mut repeats = 0u32;
        loop {
            let next_event = self.queue.peek().map(|Reverse((t, _))| *t);
            let next_timer = self.agent.poll_timeout();
            let next = match (next_event, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > end && !self.shutting_down {
                self.shutting_down = true;
                self.set_time(end);
                self.agent.handle_input(self.now, Input::Shutdown);
                // The world stops changing; only answers in flight remain.
                self.items
                    .retain(|_, it| matches!(it, Scheduled::Reply { .. }));
                let items = &self.items;
                self.queue
                    .retain(|Reverse((_, seq))| items.contains_key(seq));
                self.drain()?;
                continue;
            }
            if self.shutting_down && next > end + Duration::from_secs(3600) {
                return Err(self.fail("shutdown did not finish within an hour".into()));
            }
            self.set_time(next);
            self.report.steps += 1;
            if self.report.steps > 50_000_000 {
                return Err(self.fail("no progress: more than 50 million steps".into()));
            }
            // At equal times the agent's timer goes first (a deadline beats a reply).
            if next_timer == Some(next) {
                if next == last_timeout_at {
                    repeats += 1;
                    if repeats > 1000 {
                        return Err(self.fail(format!(
                            "the agent's deadline {next} does not move after a timeout"
                        )));
                    }
                } else {
                    last_timeout_at = next;
                    repeats = 0;
                }
                self.agent.handle_input(self.now, Input::Timeout);
            } else if let Some(item) = self
                .queue
                .pop()
                .and_then(|Reverse((_, seq))| self.items.remove(&seq))
            {
                self.apply(item)?;
            }
            self.drain()?;
            if self.shutting_down && self.agent.is_shut_down() && self.queue.is_empty() {
                break;
            }
        }
        if !self.agent.is_shut_down() {
            return Err(self.fail("the agent never reported shutdown".into()));
        }
        let open: Vec<_> = self
            .open
            .iter()
            .filter(|(_, (op, _))| !matches!(op, IoOp::Watch { .. }))
            .map(|(id, _)| *id)
            .collect();
        if !open.is_empty() {
            return Err(self.fail(format!("requests never completed nor cancelled: {open:?}")));
        }
        let open = self.open_ops();
        for w in &self.sd {
            if let Err(e) = w.check_end(&open) {
                return Err(self.fail(format!("{}: {e}", w.key())));
            }
        }
        // Every series the agent declared was retired by the time every loop ended.
        let unretired: Vec<u64> = self
            .store
            .series
            .keys()
            .filter(|r| !self.store.retired.contains(r))
            .copied()
            .take(5)
            .collect();
        if !unretired.is_empty() {
            return Err(self.fail(format!("series never retired: {unretired:?}…")));
        }
        // The agent's storage counters agree with what the storage reported.
        self.ack_storage();
        while self.agent.poll_output().is_some() {}
        let st = self.agent.stats().storage;
        if st.pending_batches() != 0
            || st.stored_samples != self.store.stored
            || st.lost_samples != self.store.lost
        {
            return Err(self.fail(format!(
                "storage counters {st:?}, but {} stored and {} lost",
                self.store.stored, self.store.lost
            )));
        }
        self.report.digest = self.digest;
        Ok(self.report)
    }

    /// Reports every batch not yet reported, as stored or (disk full) lost.
    fn ack_storage(&mut self) {
        let (batches, samples) = std::mem::take(&mut self.store.unacked);
        let full = self.store.disk_full;
        if full {
            self.store.lost += samples;
        } else {
            self.store.stored += samples;
        }
        let st = trawl_core::Stored {
            batches,
            samples: if full { 0 } else { samples },
            lost_samples: if full { samples } else { 0 },
            error: full.then_some("write wal/00000000: no space left on device"),
        };
        self.agent.handle_input(self.now, Input::Stored(st));
    }

    fn set_time(&mut self, mono: Instant) {
        let mono = mono.max(self.now.mono);
        self.now = Now::new(mono, UnixNanos(T0_WALL + mono.0 as i64));
    }

    fn apply(&mut self, item: Scheduled) -> Result<(), String> {
        match item {
            Scheduled::Reply { id, mut events } => {
                if !self.open.contains_key(&id) {
                    // Cancelled meanwhile; a real shell would drop it too. Deliver the
                    // first event anyway now and then: late completions must be ignored.
                    if self.rng.chance(10) && !events.is_empty() {
                        let ev = events.remove(0);
                        self.feed(id, &ev);
                    }
                    return Ok(());
                }
                if events.is_empty() {
                    return Ok(());
                }
                let ev = events.remove(0);
                if let Reply::Wait(ms) = ev {
                    self.schedule(Duration::from_millis(ms), Scheduled::Reply { id, events });
                    return Ok(());
                }
                // A completed valid body: the scrape should succeed.
                if matches!(ev, Reply::Io(OwnedIoEvent::HttpEnd))
                    && let Some((key, Some(names))) = self.store.expect.remove(&id)
                {
                    self.store.outcome.insert(key, (1.0, Some(names)));
                }
                // After a final event the operation is over for both sides; after a
                // head without a body the agent must cancel (or it stays open and the
                // end-of-run check reports it).
                let final_event = ev.is_final();
                if final_event {
                    self.open.remove(&id);
                    self.stream_tail.remove(&id);
                }
                self.feed(id, &ev);
                if !final_event && !events.is_empty() {
                    self.schedule(Duration::from_millis(1), Scheduled::Reply { id, events });
                }
                self.check_scrape_end(id);
            }
            Scheduled::World | Scheduled::Reload | Scheduled::Converged { .. }
                if self.shutting_down => {}
            Scheduled::World => {
                self.changes += 1;
                self.report.world_changes += 1;
                self.last_change = self.now.mono;
                let w = self.rng.below(self.sd.len() as u64) as usize;
                let open = self.open_ops();
                let tell = self.sd[w].change(&mut self.rng, &addr_pool(), &open);
                for (id, e) in tell {
                    // The agent may have cancelled it after an earlier event of this
                    // change (a watch's 410): a real shell drops the rest.
                    if !self.open.contains_key(&id) {
                        continue;
                    }
                    // On a stream, after what is already on its way.
                    if self.stream_tail.contains_key(&id) {
                        self.schedule(
                            Duration::ZERO,
                            Scheduled::Reply {
                                id,
                                events: vec![Reply::Io(e)],
                            },
                        );
                        continue;
                    }
                    // A final event (a watch's end) closes the operation for both sides.
                    if e.is_final() {
                        self.open.remove(&id);
                    }
                    e.with_event(|event| {
                        self.agent.handle_input(self.now, Input::Io { id, event })
                    });
                    // What the agent did about it (a cancel) before the next event.
                    self.drain()?;
                }
                // Flip a target's behaviour now and then.
                if self.rng.chance(30) {
                    let addrs: Vec<String> = self.world.targets.keys().cloned().collect();
                    let a = &addrs[self.rng.below(addrs.len() as u64) as usize];
                    let b = if self.rng.chance(50) {
                        Behaviour::Healthy
                    } else {
                        Behaviour::Hangs
                    };
                    self.world.targets.insert(a.clone(), b);
                }
                let since_change = self.changes;
                // Quiet long enough: the slowest world's refresh and latency, and the
                // coalescing bound (5 s).
                let quiet = self.settle();
                self.schedule(quiet, Scheduled::Converged { since_change });
                let next = Duration::from_secs(30 + self.rng.below(900));
                self.schedule(next, Scheduled::World);
            }
            Scheduled::Reload => {
                self.variant = variant(&mut self.rng, &mut self.sd);
                self.report.reloads += 1;
                self.changes += 1;
                self.last_change = self.now.mono;
                self.agent.handle_input(
                    self.now,
                    Input::Config(Box::new(config(&self.variant.yaml))),
                );
                // Intervals may have changed without a discovery delivery.
                self.refresh_intervals();
                let since_change = self.changes;
                let quiet = self.settle();
                self.schedule(quiet, Scheduled::Converged { since_change });
                let next = Duration::from_secs(600 + self.rng.below(3600));
                self.schedule(next, Scheduled::Reload);
            }
            Scheduled::Converged { since_change } => {
                if since_change == self.changes && !self.shutting_down {
                    self.check_converged()?;
                }
            }
        }
        Ok(())
    }

    fn feed(&mut self, id: RequestId, ev: &Reply) {
        if let Reply::Io(e) = ev {
            if std::env::var_os("TRAWL_SIM_TRACE").is_some() {
                let shown = format!("{e:?}");
                eprintln!(
                    "in {} {id} {}",
                    self.now.mono.0,
                    &shown[..shown.len().min(300)]
                );
            }
            let now = self.now;
            e.with_event(|event| self.agent.handle_input(now, Input::Io { id, event }));
        }
    }

    /// The operations open now.
    fn open_ops(&self) -> BTreeMap<RequestId, IoOp> {
        self.open
            .iter()
            .map(|(id, (op, _))| (*id, op.clone()))
            .collect()
    }

    /// How long after a change the pools surely match the world: the slowest world's
    /// settling time, the coalescing bound (5 s) and a second of margin.
    fn settle(&self) -> Duration {
        let worst = self.sd.iter().map(|w| w.settle()).max().unwrap_or_default();
        worst + Duration::from_secs(6)
    }

    fn check_scrape_end(&mut self, id: RequestId) {
        if !self.open.contains_key(&id) {
            self.loop_busy.retain(|_, r| *r != id);
        }
    }

    /// Drains outputs, recording them in the digest, answering starts and checking
    /// the per-step invariants.
    fn drain(&mut self) -> Result<(), String> {
        let mut n = 0usize;
        let mut delivered = false;
        while let Some(o) = self.agent.poll_output() {
            n += 1;
            self.digest = match &o {
                // Batches are digested field by field (their Debug text is large).
                Output::Append(b) => {
                    let head = format!(
                        "{} append {} {} {}",
                        self.now.mono.0, b.job, b.target, b.loop_id
                    );
                    let mut d = fnv1a64_extend(self.digest, head.as_bytes());
                    for (r, l) in &b.series {
                        d = fnv1a64_extend(d, &r.0.to_le_bytes());
                        d = fnv1a64_extend(d, l.to_string().as_bytes());
                    }
                    for p in &b.samples {
                        d = fnv1a64_extend(d, &p.series.0.to_le_bytes());
                        d = fnv1a64_extend(d, &p.t.to_le_bytes());
                        d = fnv1a64_extend(d, &p.v.to_le_bytes());
                    }
                    for r in &b.retired {
                        d = fnv1a64_extend(d, &r.0.to_le_bytes());
                    }
                    d
                }
                _ => {
                    let line = format!("{} {:?}\n", self.now.mono.0, o);
                    if std::env::var_os("TRAWL_SIM_TRACE").is_some() {
                        eprint!("out {line}");
                    }
                    fnv1a64_extend(self.digest, line.as_bytes())
                }
            };
            match o {
                Output::Start { id, op } => {
                    if id.0 <= self.last_id {
                        return Err(self.fail(format!("request id {id} reused or out of order")));
                    }
                    self.last_id = id.0;
                    self.start(id, op)?;
                }
                Output::Cancel(id) => {
                    if self.open.remove(&id).is_none() {
                        return Err(self.fail(format!("cancel of {id}, which is not open")));
                    }
                    self.stream_tail.remove(&id);
                    for w in &mut self.sd {
                        w.closed(id);
                    }
                    self.check_scrape_end(id);
                }
                Output::Send { id, data } => self.send(id, &data)?,
                Output::Event(Event::Delivered { .. }) => {
                    self.report.deliveries += 1;
                    delivered = true;
                }
                Output::Append(b) => match self.store.check(&b) {
                    Err(e) => return Err(self.fail(e)),
                    Ok(up) => {
                        self.report.batches += 1;
                        self.report.failed_scrapes += u64::from(up == Some(0.0));
                        self.report.stale_markers +=
                            b.samples.iter().filter(|p| p.is_stale()).count() as u64;
                    }
                },
                Output::Event(_) => {}
            }
        }
        // Bounds: outputs per step, operations in flight, loops alive.
        let loops = self.agent.loops_alive();
        // Loops that ended in this step emit one batch retiring their series.
        let bound_loops = loops.max(self.prev_loops);
        self.prev_loops = loops;
        if n > 64 + 8 * bound_loops {
            return Err(self.fail(format!("{n} outputs in one step")));
        }
        // Storage: acknowledge what is pending now and then, through spells of a full disk.
        if self.store.unacked.0 > 0 && self.rng.chance(50) {
            if self.rng.chance(2) {
                self.store.disk_full = !self.store.disk_full;
            }
            self.ack_storage();
            if self
                .agent
                .poll_output()
                .is_some_and(|o| !matches!(o, Output::Event(_)))
            {
                return Err(self.fail("a storage report produced more than an event".into()));
            }
        }
        // Each job has at most one loop per address, and while a reload replaces a
        // job's loops the old ones finish their scrape: twice that, for the most jobs
        // any configuration of the run had (the static job included).
        let most_jobs = self.variant.jobs.len().max(self.most_jobs) + 1;
        self.most_jobs = most_jobs - 1;
        if loops > 2 * most_jobs * ADDRS + 8 {
            return Err(self.fail(format!("{loops} loops alive")));
        }
        // Scrapes, and a few operations per discovery world (Kubernetes has a watch per
        // resource; a ZooKeeper session one stream).
        if self.agent.in_flight() > loops + 4 * self.sd.len() {
            return Err(self.fail(format!("{} operations in flight", self.agent.in_flight())));
        }
        for (id, (op, started)) in &self.open {
            if let IoOp::Http(r) = op
                && self.now.mono - *started > r.timeout
            {
                return Err(self.fail(format!(
                    "request {id} ({}, timeout {:?}, started {}) open past its timeout",
                    r.url, r.timeout, started
                )));
            }
        }
        if delivered {
            self.check_incremental()?;
        }
        Ok(())
    }

    /// Bytes the agent wrote on a stream: the world that owns it answers.
    fn send(&mut self, id: RequestId, data: &[u8]) -> Result<(), String> {
        if !matches!(self.open.get(&id), Some((IoOp::Stream(_), _))) {
            return Err(self.fail(format!("bytes sent on {id}, which is not an open stream")));
        }
        let mut answered = None;
        for w in &mut self.sd {
            if let Some(a) = w.send(id, data, &mut self.rng) {
                *self.report.sd_answers.entry(w.key()).or_default() += 1;
                answered = Some(a);
                break;
            }
        }
        match answered {
            None => Err(self.fail(format!("no world takes the bytes sent on {id}"))),
            Some(Err(e)) => Err(self.fail(e)),
            Some(Ok(Answer::Hold)) => Ok(()),
            Some(Ok(Answer::After(after, events))) => {
                self.schedule(after, Scheduled::Reply { id, events });
                Ok(())
            }
        }
    }

    fn start(&mut self, id: RequestId, op: IoOp) -> Result<(), String> {
        self.open.insert(id, (op.clone(), self.now.mono));
        if matches!(op, IoOp::Stream(_)) {
            self.stream_tail.insert(id, self.now.mono);
        }
        if !matches!(&op, IoOp::Http(r) if matches!(r.origin, Origin::Scrape { .. })) {
            let mut answered = None;
            let mut moved = false;
            for w in &mut self.sd {
                let before = w.addresses();
                if let Some(a) = w.answer(id, &op, &mut self.rng) {
                    *self.report.sd_answers.entry(w.key()).or_default() += 1;
                    moved = w.addresses() != before;
                    answered = Some(a);
                    break;
                }
            }
            if moved {
                // A refresh went through (perhaps late, after failed ones): what the
                // world says the agent should scrape changed now, so the quiet period
                // starts again. A world's `settle` cannot bound a run of failed
                // refreshes.
                self.changes += 1;
                self.last_change = self.now.mono;
                let since_change = self.changes;
                let quiet = self.settle();
                self.schedule(quiet, Scheduled::Converged { since_change });
            }
            match answered {
                None => return Err(self.fail(format!("no world answers {op:?}"))),
                Some(Err(e)) => return Err(self.fail(e)),
                Some(Ok(Answer::Hold)) => {}
                Some(Ok(Answer::After(after, events))) => {
                    self.schedule(after, Scheduled::Reply { id, events });
                }
            }
            return Ok(());
        }
        if let IoOp::Http(r) = op {
            match &r.origin {
                Origin::Discovery { .. } => {
                    return Err(self.fail("a discovery request no world answered".into()));
                }
                Origin::Scrape { loop_id, job } => {
                    self.report.scrapes += 1;
                    self.scrape_started(id, *loop_id)?;
                    let _ = job;
                    let key = *loop_id;
                    // Until the target completes a valid body, the scrape counts as failed.
                    self.store.outcome.insert(key, (0.0, None));
                    let addr = r
                        .url
                        .strip_prefix("http://")
                        .and_then(|u| u.split('/').next())
                        .unwrap_or("")
                        .to_owned();
                    let behaviour = self
                        .world
                        .targets
                        .get(&addr)
                        .copied()
                        .unwrap_or(Behaviour::Refuses);
                    let latency = self
                        .world
                        .latency
                        .get(&addr)
                        .copied()
                        .unwrap_or(Duration::from_millis(1));
                    let body = b"# TYPE up gauge\nup 1\n".to_vec();
                    let events = match behaviour {
                        Behaviour::Healthy => {
                            // Two addresses are large targets.
                            let big =
                                addr.starts_with("127.0.0.11:") || addr.starts_with("127.0.0.22:");
                            let set = self.world.series.entry(addr.clone()).or_insert_with(|| {
                                if big {
                                    (0..100).collect()
                                } else {
                                    BTreeSet::new()
                                }
                            });
                            let g = gen_body(&mut self.rng, set, big);
                            self.store.expect.insert(id, (key, g.names.clone()));
                            g.events
                        }
                        Behaviour::Hangs => vec![],
                        Behaviour::Refuses => vec![Reply::failed("connection refused")],
                        Behaviour::Errors => {
                            vec![Reply::head(503, "Service Unavailable", "text/plain", false)]
                        }
                        Behaviour::Resets => vec![
                            Reply::head(200, "OK", "text/plain; version=0.0.4", false),
                            Reply::body(body),
                            Reply::failed("connection reset by peer"),
                        ],
                    };
                    if !events.is_empty() {
                        self.schedule(latency, Scheduled::Reply { id, events });
                    }
                }
            }
        }
        Ok(())
    }

    fn scrape_started(&mut self, id: RequestId, loop_id: u64) -> Result<(), String> {
        if let Some(other) = self.loop_busy.get(&loop_id) {
            return Err(self.fail(format!(
                "loop {loop_id} started {id} while {other} is in flight"
            )));
        }
        self.loop_busy.insert(loop_id, id);
        let interval = match self.loop_interval.get(&loop_id) {
            Some(i) => *i,
            None => {
                self.refresh_intervals();
                self.loop_interval
                    .get(&loop_id)
                    .copied()
                    .unwrap_or(Duration::ZERO)
            }
        };
        if let Some((last, last_interval)) = self.loop_starts.get(&loop_id).copied()
            && last_interval == interval
            && self.now.mono - last != interval
        {
            return Err(self.fail(format!(
                "loop {loop_id}: scrapes {:?} apart, interval {interval:?}",
                self.now.mono - last
            )));
        }
        self.loop_starts.insert(loop_id, (self.now.mono, interval));
        Ok(())
    }

    fn refresh_intervals(&mut self) {
        for t in self.agent.targets() {
            self.loop_interval
                .insert(t.loop_id.0, t.target.interval.to_std());
        }
    }

    /// After a delivery: incremental pools = from-scratch recomputation.
    fn check_incremental(&mut self) -> Result<(), String> {
        self.refresh_intervals();
        for p in self.agent.pools() {
            let inc = self.agent.active_identities(&p.job);
            let scratch = self.agent.recompute_from_scratch(&p.job);
            if inc != scratch {
                return Err(self.fail(format!(
                    "job {}: incremental pool has {} targets, from scratch {}",
                    p.job,
                    inc.len(),
                    scratch.len()
                )));
            }
        }
        Ok(())
    }

    /// The world has been quiet for longer than the discovery bound: pools match it.
    fn check_converged(&mut self) -> Result<(), String> {
        let jobs: Vec<String> = self
            .agent
            .pools()
            .iter()
            .map(|p| p.job.to_string())
            .collect();
        for job in jobs {
            let got: BTreeSet<String> = self
                .agent
                .targets()
                .into_iter()
                .filter(|t| *t.job == *job)
                .map(|t| t.target.url.to_string())
                .collect();
            let want = self.expected_urls(&job);
            if got != want {
                return Err(self.fail(format!(
                    "job {job} has {got:?}, the world says {want:?} (quiet since {}); worlds {:?}",
                    self.last_change,
                    self.sd.iter().map(|w| w.describe()).collect::<Vec<_>>()
                )));
            }
        }
        Ok(())
    }
}

/// Runs one seed for `hours` simulated hours.
pub fn run(seed: u64, hours: f64) -> Result<SimReport, String> {
    Sim::new(SimParams {
        seed,
        duration: Duration::from_secs_f64(hours * 3600.0),
    })
    .run()
}
