//! The daemon: one mio thread owns the [`Agent`] and every socket; the WAL writer and the
//! resolver are threads that wake the loop through a [`mio::Waker`]. The loop is the
//! core's: drain the agent's outputs and carry them out, wait for IO or the agent's
//! deadline, feed what happened with a fresh clock reading.

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use trawl_core::agent::{Agent, AgentOptions, Event, Input, Output};
use trawl_core::batch::Batch;
use trawl_core::config::{Config, RemoteWriteConfig};
use trawl_core::io::{DnsQuery, HttpRequest, IoOp, OwnedIoEvent, RequestId, StreamOpen};
use trawl_core::metrics::{Buckets, Metrics, Summary};
use trawl_core::recording::{self, ConfigSource, Digest};
use trawl_core::time::{Now, UnixNanos};
use trawl_io::client::Caller;
use trawl_io::drive::{carry_out, wait_for};
use trawl_io::remote::Remote;
use trawl_io::source::config_source;
use trawl_io::storage::{
    Ack, Lost, Overflow, ReplayProgress, Wal, WalOptions, Writer, WriterOptions,
};

use crate::net::{self, CONN_BASE, Net};
use crate::web::{self, Action, Web};

const WAKER: Token = Token(0);
const SIGNALS: Token = Token(1);
const INOTIFY: Token = Token(2);

/// How the daemon runs.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    /// `--config.file`.
    pub config_file: PathBuf,
    /// `--storage.path`: the data directory.
    pub storage_path: PathBuf,
    /// WAL layout and retention.
    pub wal: WalOptions,
    /// Writer thread settings.
    pub writer: WriterOptions,
    /// Agent options (seed, coalescing, user agent...).
    pub agent: AgentOptions,
    /// `--web.listen-address`es.
    pub listen: Vec<std::net::SocketAddr>,
    /// `--storage.remote.flush-deadline`: how long a shutdown waits for remote write.
    pub flush_deadline: Duration,
    /// `--config.auto-reload` with its interval: the configuration file is looked at
    /// this often and reloaded when its content changed.
    pub auto_reload: Option<Duration>,
    /// The HTTP API's lifecycle endpoints and bounds.
    pub web: web::WebOptions,
    /// The hosts file every connection's name is looked up in first (`/etc/hosts`).
    pub hosts_file: String,
    /// `--debug.record`: record every input to this file.
    pub record: Option<PathBuf>,
    /// Timer slack: the loop wakes for the agent's deadlines on a grid of this step,
    /// so deadlines close together are handled in one wake-up. Scrapes are stamped with
    /// their scheduled time, so a scrape started up to one step late keeps its
    /// timestamp; zero wakes for every deadline exactly.
    pub timer_slack: Duration,
}

/// The agent with the daemon's record keeping: every input is recorded (with
/// `--debug.record`) and its outputs are taken at once, digested with that input's time,
/// exactly as `trawl replay` will take them.
struct Core {
    agent: Agent,
    /// The text of the configuration in force (for `/api/v1/status/config`).
    config_text: String,
    /// Remote write's part of the configuration in force, and whether a reload changed
    /// it (the queues are then rebuilt).
    remote: (trawl_core::labels::Labels, Vec<RemoteWriteConfig>),
    remote_changed: bool,
    queue: VecDeque<Output>,
    rec: Option<(std::io::BufWriter<std::fs::File>, Digest)>,
    buf: Vec<u8>,
    /// `prometheus_target_sync_length_seconds` and `_histogram_seconds` per job: the
    /// time of the agent's turn that synced the pool (pools synced in one turn share
    /// it; the core keeps no clock, so the shell times it).
    sync: SyncTimes,
}

struct SyncTimes {
    /// The origin of the summaries' clock.
    origin: std::time::Instant,
    /// Each pool's sync count when last looked at.
    seen: BTreeMap<std::sync::Arc<str>, u64>,
    by_job: BTreeMap<std::sync::Arc<str>, (Summary, Buckets)>,
}

impl SyncTimes {
    fn new() -> SyncTimes {
        SyncTimes {
            origin: std::time::Instant::now(),
            seen: BTreeMap::new(),
            by_job: BTreeMap::new(),
        }
    }

    fn now(&self) -> trawl_core::time::Instant {
        trawl_core::time::Instant(self.origin.elapsed().as_nanos() as u64)
    }

    /// After a turn that delivered discovery changes and took `took`: observes it for
    /// every pool whose sync count moved.
    fn delivered(&mut self, agent: &Agent, took: Duration) {
        let now = self.now();
        for p in agent.pools() {
            let before = self.seen.insert(p.job.clone(), p.stats.syncs);
            if before.is_none_or(|b| b < p.stats.syncs) {
                let (summary, buckets) = self.by_job.entry(p.job.clone()).or_insert_with(|| {
                    (
                        Summary::new(),
                        Buckets::new(trawl_core::metrics::INTERVAL_BUCKETS),
                    )
                });
                summary.observe(now, took.as_secs_f64());
                buckets.observe(took.as_secs_f64());
            }
        }
    }

    fn metrics(&self, agent: &Agent, m: &mut Metrics) {
        let now = self.now();
        let live: std::collections::BTreeSet<_> =
            agent.pools().into_iter().map(|p| p.job).collect();
        for (job, (summary, buckets)) in self.by_job.iter().filter(|(j, _)| live.contains(*j)) {
            let l = || vec![("scrape_job", job.to_string())];
            m.summary(
                "prometheus_target_sync_length_seconds",
                "Actual interval to sync the scrape pool.",
                l(),
                summary,
                now,
            );
            m.histogram(
                "prometheus_target_sync_length_histogram_seconds",
                "Actual interval to sync the scrape pool.",
                l(),
                buckets,
            );
        }
    }
}

impl Core {
    /// The agent on `config`, parsed from `src` (which the recording keeps).
    fn new(
        src: &ConfigSource,
        config: Config,
        options: AgentOptions,
        now: Now,
        record: Option<&Path>,
    ) -> Result<Core, String> {
        let rec = match record {
            Some(p) => {
                // The recording holds the configuration with its secrets, the
                // environment and everything scraped: only the owner may read it.
                use std::os::unix::fs::OpenOptionsExt as _;
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(p)
                    .map_err(|e| format!("--debug.record={}: {e}", p.display()))?;
                // An existing file keeps its mode on open: narrow it too.
                use std::os::unix::fs::PermissionsExt as _;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| format!("--debug.record={}: {e}", p.display()))?;
                Some((std::io::BufWriter::new(f), Digest::default()))
            }
            None => None,
        };
        let remote = (
            config.global.external_labels.clone(),
            config.remote_write.clone(),
        );
        let mut core = Core {
            agent: Agent::new(config, options.clone(), now),
            config_text: src.text.clone(),
            remote,
            remote_changed: false,
            queue: VecDeque::new(),
            rec,
            buf: Vec::new(),
            sync: SyncTimes::new(),
        };
        if core.rec.is_some() {
            recording::encode_start(&mut core.buf, &options, src, now);
            core.write();
        }
        core.collect(now, Duration::ZERO);
        Ok(core)
    }

    fn write(&mut self) {
        if let Some((w, _)) = self.rec.as_mut() {
            use std::io::Write as _;
            if let Err(e) = w.write_all(&self.buf) {
                tracing::error!(err = %e, "recording stopped");
                self.rec = None;
            }
        }
        self.buf.clear();
    }

    /// Takes the outputs of a turn that took `took`.
    fn collect(&mut self, now: Now, took: Duration) {
        let mut delivered = false;
        while let Some(o) = self.agent.poll_output() {
            if let Some((_, d)) = self.rec.as_mut() {
                d.add(now, &o);
            }
            delivered |= matches!(o, Output::Event(Event::Delivered { .. }));
            self.queue.push_back(o);
        }
        if delivered {
            self.sync.delivered(&self.agent, took);
        }
    }

    fn input(&mut self, now: Now, input: Input<'_>) {
        if self.rec.is_some() {
            recording::encode_input(&mut self.buf, now, &input);
            self.write();
        }
        let t = std::time::Instant::now();
        self.agent.handle_input(now, input);
        self.collect(now, t.elapsed());
    }

    fn reload(&mut self, now: Now, src: &ConfigSource) -> Result<(), String> {
        let c = src.parse()?;
        log_warnings(&c);
        let remote = (c.global.external_labels.clone(), c.remote_write.clone());
        if remote != self.remote {
            self.remote = remote;
            self.remote_changed = true;
        }
        if self.rec.is_some() {
            recording::encode_config(&mut self.buf, now, src);
            self.write();
        }
        let t = std::time::Instant::now();
        self.agent.handle_input(now, Input::Config(Box::new(c)));
        self.config_text = src.text.clone();
        self.collect(now, t.elapsed());
        Ok(())
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.queue.pop_front()
    }

    /// Ends the recording with the digest of every output.
    fn finish(&mut self) -> Option<Digest> {
        let d = self.rec.as_ref().map(|(_, d)| *d)?;
        recording::encode_digest(&mut self.buf, d);
        self.write();
        if let Some((w, _)) = self.rec.as_mut() {
            use std::io::Write as _;
            let _ = w.flush();
        }
        Some(d)
    }
}

/// The host name, for the scrape-phase seed (as Prometheus's `os.Hostname`-based FQDN)
/// and `/api/v1/status/runtimeinfo`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

struct Clock {
    start: std::time::Instant,
}

impl Clock {
    fn now(&self) -> Now {
        let mono = trawl_core::time::Instant(self.start.elapsed().as_nanos() as u64);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        Now::new(mono, UnixNanos(wall))
    }
}

/// What the storage queue's overflow reports when a batch's samples are lost.
const QUEUE_FULL: &str = "the WAL writer's queue is full";

/// Runs the daemon until SIGTERM or SIGINT and a graceful shutdown: the core's loop, in
/// three named steps per turn, then the shutdown's flush.
pub fn run(opts: DaemonOptions) -> Result<(), String> {
    let Some((mut shell, mut agent)) = Shell::start(opts)? else {
        tracing::info!("stopped during start-up");
        return Ok(());
    };
    loop {
        // 1. Carry out what the agent asks; feed what finished at once.
        shell.execute(&mut agent);
        if shell.stopped(&agent) {
            break;
        }
        // 2. Wait for IO or the next deadline.
        shell.wait(&agent)?;
        // 3. Feed what happened, with a fresh clock reading.
        shell.feed(&mut agent);
        if shell.forced {
            break;
        }
    }
    shell.finish(agent)
}

/// Everything the loop owns besides the agent: the poll, its sockets and threads,
/// storage and remote write.
struct Shell {
    opts: DaemonOptions,
    clock: Clock,
    poll: Poll,
    events: Events,
    signals: Signals,
    inotify: inotify::Inotify,
    inotify_buf: Vec<u8>,
    watches: BTreeMap<inotify::WatchDescriptor, RequestId>,
    watch_ids: BTreeMap<RequestId, inotify::WatchDescriptor>,
    net: Net,
    dns: crate::dns::Dns,
    streams: crate::stream::Streams,
    file_work: crossbeam_channel::Sender<(RequestId, IoOp)>,
    files_done: crossbeam_channel::Receiver<(RequestId, OwnedIoEvent)>,
    /// Outcomes known without waiting (failures to start), fed in the same turn.
    done: VecDeque<(RequestId, OwnedIoEvent)>,
    writer: Writer,
    overflow: Overflow,
    remote: Remote,
    keep_from: Arc<AtomicU32>,
    api: Web,
    shutting_down: bool,
    forced: bool,
    /// When `--config.auto-reload` looks at the file next.
    auto_reload_at: Option<std::time::Instant>,
    lost_dir: Option<String>,
}

/// The loop's IO as the agent's outputs see it ([`trawl_io::drive::Io`]).
struct LoopIo<'a> {
    reg: &'a Registry,
    net: &'a mut Net,
    dns: &'a mut crate::dns::Dns,
    streams: &'a mut crate::stream::Streams,
    file_work: &'a crossbeam_channel::Sender<(RequestId, IoOp)>,
    inotify: &'a mut inotify::Inotify,
    watches: &'a mut BTreeMap<inotify::WatchDescriptor, RequestId>,
    watch_ids: &'a mut BTreeMap<RequestId, inotify::WatchDescriptor>,
    done: &'a mut VecDeque<(RequestId, OwnedIoEvent)>,
    writer: &'a Writer,
    overflow: &'a mut Overflow,
}

impl trawl_io::drive::Io for LoopIo<'_> {
    fn http(&mut self, id: RequestId, r: HttpRequest) {
        self.net.start(self.reg, Caller::Agent(id), r);
    }

    fn dns(&mut self, id: RequestId, q: DnsQuery) {
        if let Err(e) = self.dns.start(self.reg, id, &q) {
            self.done.push_back((id, OwnedIoEvent::Failed(e)));
        }
    }

    fn file(&mut self, id: RequestId, op: IoOp) {
        if self.file_work.send((id, op)).is_err() {
            let msg = "the file worker thread is gone".to_owned();
            self.done.push_back((id, OwnedIoEvent::Failed(msg)));
        }
    }

    fn watch(&mut self, id: RequestId, path: String) {
        match self
            .inotify
            .watches()
            .add(&path, trawl_io::files::watch_mask())
        {
            Ok(wd) => {
                self.watches.insert(wd.clone(), id);
                self.watch_ids.insert(id, wd);
            }
            Err(e) => {
                let msg = format!("watch {path}: {e}");
                self.done.push_back((id, OwnedIoEvent::Failed(msg)));
            }
        }
    }

    fn stream(&mut self, id: RequestId, s: StreamOpen) {
        self.streams.open(self.reg, id, s);
    }

    fn send(&mut self, id: RequestId, data: Vec<u8>) {
        self.streams.send(self.reg, id, &data);
    }

    fn cancel(&mut self, id: RequestId) {
        self.net.cancel(self.reg, Caller::Agent(id));
        self.dns.cancel(self.reg, id);
        self.streams.cancel(self.reg, id);
        if let Some(wd) = self.watch_ids.remove(&id) {
            self.watches.remove(&wd);
            let _ = self.inotify.watches().remove(wd);
        }
    }

    fn append(&mut self, b: Batch) -> Option<Lost> {
        // A full queue costs the samples; the series still go (in order).
        let w = self.writer;
        self.overflow.push(b, |b| w.try_append(b))
    }
}

impl Shell {
    /// Reads and parses the configuration (a mistake fails here, before the data
    /// directory is locked), binds the API, replays the WAL on another thread while the
    /// API answers (`/-/ready` is 503 and `/api/v1/status/walreplay` shows the
    /// progress), starts the threads and builds the agent on the replayed series.
    /// `None` if SIGTERM or SIGINT came during the replay.
    fn start(opts: DaemonOptions) -> Result<Option<(Shell, Core)>, String> {
        let clock = Clock {
            start: std::time::Instant::now(),
        };
        match crate::rlimit::raise_nofile() {
            Some((before, after)) if after > before => {
                tracing::info!(before, after, "raised the open files limit")
            }
            Some((_, now)) => tracing::debug!(limit = now, "open files limit"),
            None => tracing::warn!("could not raise the open files limit"),
        }
        let source = config_source(&opts.config_file)?;
        let config = source.parse().map_err(|e| {
            format!(
                "couldn't load configuration (--config.file={}): {e}",
                source.path
            )
        })?;
        log_warnings(&config);
        let poll = Poll::new().map_err(|e| format!("create poll: {e}"))?;
        let waker =
            Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| format!("create waker: {e}"))?);
        let mut signals = Signals::new([SIGHUP, SIGINT, SIGTERM])
            .map_err(|e| format!("install signal handlers: {e}"))?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(|e| format!("register signals: {e}"))?;

        let progress = Arc::new(ReplayProgress::default());
        let mut api = Web::bind(
            poll.registry(),
            &opts.listen,
            opts.web.clone(),
            progress.clone(),
        )?;
        for a in api.local_addrs() {
            tracing::info!(address = %a, "listening");
        }

        let mut poll = poll;
        let Some(opened) = replay(&mut poll, &waker, &mut signals, &mut api, &opts, progress)?
        else {
            return Ok(None);
        };
        let (mut wal, restored, report) = opened.map_err(|e| e.to_string())?;
        tracing::info!(
            dir = %opts.storage_path.display(),
            segments = report.segments.len(),
            series = restored.series.len(),
            samples = report.replay.samples,
            writing = report.writing,
            "WAL replayed"
        );
        if let Some(r) = &report.repair {
            api.corruptions = 1;
            tracing::warn!(segment = r.segment, reason = %r.reason, from = r.from, to = r.to, removed = %r.removed.iter().map(u32::to_string).collect::<Vec<_>>().join(","), "WAL repaired");
        }
        let keep_from = Arc::new(AtomicU32::new(u32::MAX));
        let remote = Remote::new(
            &config.remote_write,
            &config.global.external_labels,
            &opts.storage_path,
            opts.agent.seed,
            &opts.agent.user_agent,
            clock.now(),
            keep_from.clone(),
        )?;
        wal.keep_segments_from(keep_from.clone());
        let w = waker.clone();
        let writer = Writer::spawn(wal, opts.writer.clone(), move || {
            let _ = w.wake();
        })
        .map_err(|e| format!("start the WAL writer: {e}"))?;
        let w = waker.clone();
        let (file_work, files_done) = trawl_io::files::spawn_worker(move || {
            let _ = w.wake();
        })
        .map_err(|e| format!("start the file worker: {e}"))?;

        let inotify = inotify::Inotify::init().map_err(|e| format!("inotify: {e}"))?;
        let ifd = inotify.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&ifd), INOTIFY, Interest::READABLE)
            .map_err(|e| format!("register inotify: {e}"))?;

        let mut agent = Core::new(
            &source,
            config,
            opts.agent.clone(),
            clock.now(),
            opts.record.as_deref(),
        )?;
        agent.input(clock.now(), Input::Restore(Box::new(restored)));
        tracing::info!(config = %opts.config_file.display(), "trawl started");
        let resolver = trawl_io::resolve::ResolverOptions {
            resolv_conf: opts.agent.resolv_conf.clone(),
            hosts: opts.hosts_file.clone(),
            port: opts.agent.dns_port,
            seed: opts.agent.seed,
        };
        let net = Net::new(resolver.clone());
        let streams = crate::stream::Streams::new(resolver);
        let shell = Shell {
            opts,
            clock,
            poll,
            events: Events::with_capacity(1024),
            signals,
            inotify,
            inotify_buf: vec![0u8; 64 * 1024],
            watches: BTreeMap::new(),
            watch_ids: BTreeMap::new(),
            net,
            dns: crate::dns::Dns::new(crate::dns::DNS_BASE..crate::dns::DNS_MID),
            streams,
            file_work,
            files_done,
            done: VecDeque::new(),
            writer,
            overflow: Overflow::default(),
            remote,
            keep_from,
            api,
            shutting_down: false,
            forced: false,
            lost_dir: None,
            auto_reload_at: None,
        };
        let mut shell = shell;
        shell.auto_reload_at = shell
            .opts
            .auto_reload
            .map(|d| std::time::Instant::now() + d);
        Ok(Some((shell, agent)))
    }

    /// Step 1: carries out the agent's outputs and feeds what finished without waiting
    /// (failures to start, responses already read), until neither is left; then remote
    /// write sends what it can.
    fn execute(&mut self, agent: &mut Core) {
        loop {
            while let Some(o) = agent.poll_output() {
                let mut io = LoopIo {
                    reg: self.poll.registry(),
                    net: &mut self.net,
                    dns: &mut self.dns,
                    streams: &mut self.streams,
                    file_work: &self.file_work,
                    inotify: &mut self.inotify,
                    watches: &mut self.watches,
                    watch_ids: &mut self.watch_ids,
                    done: &mut self.done,
                    writer: &self.writer,
                    overflow: &mut self.overflow,
                };
                if let Some(lost) = carry_out(o, &mut io) {
                    agent.input(self.clock.now(), Input::Stored(lost.as_input(QUEUE_FULL)));
                }
            }
            if !self.feed_finished(agent) {
                break;
            }
        }
        if agent.remote_changed {
            agent.remote_changed = false;
            self.restart_remote(agent);
        }
        let meta = || agent.agent.metadata();
        let mut t = net::MioTransport {
            net: &mut self.net,
            reg: self.poll.registry(),
        };
        self.remote.pump(self.clock.now(), &mut t, &meta);
        if !self.net.events.is_empty() {
            // Remote write's requests failed at once: their answers go in this turn.
            self.feed_finished(agent);
        }
    }

    /// Feeds the HTTP events and the outcomes already queued; false if there were none.
    fn feed_finished(&mut self, agent: &mut Core) -> bool {
        let now = self.clock.now();
        let mut fed = false;
        while let Some((caller, e)) = self.net.events.pop_front() {
            fed = true;
            match caller {
                Caller::Remote(id) => self.remote.on_net(now, id, e),
                Caller::Agent(id) => {
                    let body = matches!(e, OwnedIoEvent::HttpBody(_));
                    e.with_event(|event| agent.input(now, Input::Io { id, event }));
                    // A body that inflates far is parsed in slices: read no more of it
                    // until the agent has caught up.
                    if body && !agent.agent.accepts_body(id) {
                        self.net.hold(caller);
                    }
                }
            }
        }
        while let Some((id, d)) = self.done.pop_front() {
            fed = true;
            d.with_event(|event| agent.input(now, Input::Io { id, event }));
        }
        while let Some((id, d)) = self.streams.events.pop_front() {
            fed = true;
            d.with_event(|event| agent.input(now, Input::Io { id, event }));
        }
        fed
    }

    /// A reload changed `remote_write` or the external labels: the queues are rebuilt
    /// (what they had not sent is read again from the WAL). The new queues are made
    /// first: if they cannot be (a `sigv4` block finds no credentials, a queue
    /// directory cannot be created), the running ones go on untouched, their requests
    /// in flight included, as Prometheus keeps its queues when a new configuration's
    /// client cannot be made.
    fn restart_remote(&mut self, agent: &Core) {
        let (ext, rws) = &agent.remote;
        match Remote::new(
            rws,
            ext,
            &self.opts.storage_path,
            self.opts.agent.seed,
            &self.opts.agent.user_agent,
            self.clock.now(),
            self.keep_from.clone(),
        ) {
            Ok(r) => {
                self.remote.abandon(&mut net::MioTransport {
                    net: &mut self.net,
                    reg: self.poll.registry(),
                });
                self.remote = r;
            }
            Err(e) => {
                tracing::error!(err = %e, "remote write not restarted: the queues go on with the previous configuration")
            }
        }
    }

    /// True once a shutdown has finished (or was forced).
    fn stopped(&self, agent: &Core) -> bool {
        self.shutting_down && (self.forced || agent.agent.is_shut_down())
    }

    /// Step 2: waits for IO, the agent's or remote write's next deadline (on the timer
    /// slack grid), or the web server's; never sleeps while connections have data left
    /// from the last turn.
    fn wait(&mut self, agent: &Core) -> Result<(), String> {
        let now = self.clock.now();
        let deadline = match (agent.agent.poll_timeout(), self.remote.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = if self.net.has_backlog() || self.streams.has_backlog() {
            Some(Duration::ZERO)
        } else {
            let agent_wait = deadline.map(|d| wait_for(d, now.mono, self.opts.timer_slack));
            // The web server's and the HTTP client's lookups' deadlines are real
            // instants.
            let real = [
                self.api.poll_timeout(),
                self.net.poll_timeout(),
                self.streams.poll_timeout(),
                self.auto_reload_at,
            ]
            .into_iter()
            .flatten()
            .min();
            let real_wait = real.map(|d| {
                d.saturating_duration_since(std::time::Instant::now())
                    .max(Duration::from_millis(1))
            });
            match (agent_wait, real_wait) {
                (Some(a), Some(w)) => Some(a.min(w)),
                (a, w) => a.or(w),
            }
        };
        match self.poll.poll(&mut self.events, timeout) {
            Err(e) if e.kind() != std::io::ErrorKind::Interrupted => Err(format!("poll: {e}")),
            _ => Ok(()),
        }
    }

    /// Step 3: feeds what the wait brought: signals, API requests, DNS answers, file
    /// changes, socket readiness (reads bounded per connection and per turn, see
    /// `net::READ_PER_TURN`), the threads' results, storage acknowledgements, and the
    /// agent's timer if it is due.
    fn feed(&mut self, agent: &mut Core) {
        self.auto_reload(agent);
        self.net.new_turn();
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for ev in events.iter() {
            match ev.token() {
                WAKER => {}
                SIGNALS => {
                    let pending: Vec<i32> = self.signals.pending().collect();
                    for s in pending {
                        if s == SIGHUP {
                            let _ = reload(agent, &self.clock, &self.opts.config_file);
                            // TLS certificates and keys are read again on reload too.
                            self.api.refresh_config(true);
                        } else {
                            self.shutdown(agent);
                        }
                    }
                }
                t if web::is_listener(t) => self.api.accept(self.poll.registry()),
                Token(t) if self.net.owns_dns_token(t) => {
                    self.net.dns_ready(self.poll.registry(), t)
                }
                Token(t) if self.streams.owns_token(t) => self.streams.ready(
                    self.poll.registry(),
                    t,
                    ev.is_readable() || ev.is_read_closed(),
                    ev.is_writable(),
                ),
                Token(t) if self.streams.owns_dns_token(t) => {
                    self.streams.dns_ready(self.poll.registry(), t)
                }
                Token(t) if self.dns.owns_token(t) => {
                    if let Some((id, d)) = self.dns.ready(self.poll.registry(), t) {
                        let now = self.clock.now();
                        d.with_event(|event| agent.input(now, Input::Io { id, event }));
                    }
                }
                Token(t) if (web::WEB_BASE..CONN_BASE).contains(&t) => self.web(agent, t),
                INOTIFY => self.read_inotify(agent),
                Token(t) if t >= CONN_BASE => {
                    self.net.ready(
                        self.poll.registry(),
                        t,
                        ev.is_readable() || ev.is_read_closed(),
                        ev.is_writable(),
                    );
                }
                _ => {}
            }
        }
        self.events = events;
        self.net.release(|c| match c {
            Caller::Agent(id) => agent.agent.accepts_body(id),
            Caller::Remote(_) => true,
        });
        self.net.drain_backlog(self.poll.registry());
        self.streams.drain_backlog(self.poll.registry());
        self.api
            .timeouts(self.poll.registry(), std::time::Instant::now());
        self.net.timeouts(self.poll.registry());
        self.streams.timeouts(self.poll.registry());
        self.done.extend(self.files_done.try_iter());
        while let Some(a) = self.writer.try_ack() {
            feed_ack(agent, self.clock.now(), &a);
            self.remote.wal_written(self.clock.now(), &a.written);
        }
        let w = &self.writer;
        self.overflow.flush(|b| w.try_append(b));
        if let Some(e) = self.writer.lost_dir()
            && self.lost_dir.is_none()
        {
            // Nothing written from now on would survive: say so and stop, for a
            // supervisor to restart the daemon on a fresh directory.
            tracing::error!(err = %e, "the data directory is gone; stopping so that nothing more is lost");
            self.lost_dir = Some(e.to_owned());
            if !self.shutting_down {
                self.shutting_down = true;
                agent.input(self.clock.now(), Input::Shutdown);
            }
            self.forced = true;
        }
        let now = self.clock.now();
        if agent.agent.poll_timeout().is_some_and(|d| d <= now.mono) {
            agent.input(now, Input::Timeout);
        }
    }

    /// `--config.auto-reload`: when due, reloads the configuration if its file's
    /// content differs from the configuration in force (3.x compares checksums).
    fn auto_reload(&mut self, agent: &mut Core) {
        let (Some(at), Some(every)) = (self.auto_reload_at, self.opts.auto_reload) else {
            return;
        };
        let now = std::time::Instant::now();
        if now < at || self.shutting_down {
            return;
        }
        self.auto_reload_at = Some(now + every);
        match config_source(&self.opts.config_file) {
            Ok(src) if src.text != agent.config_text => {
                tracing::info!(config = %self.opts.config_file.display(), "configuration file changed; reloading");
                // Remote write follows in the next turn's `execute`.
                let _ = reload(agent, &self.clock, &self.opts.config_file);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(err = %e, "auto-reload: could not read the configuration"),
        }
    }

    /// An API connection is ready.
    fn web(&mut self, agent: &mut Core, t: usize) {
        let (writer, remote, sync, a) = (&self.writer, &self.remote, &agent.sync, &agent.agent);
        let extra = || {
            let mut m = writer.metrics();
            remote.metrics(&mut m);
            sync.metrics(a, &mut m);
            m
        };
        let action = self.api.ready(
            self.poll.registry(),
            t,
            Some(&agent.agent),
            &agent.config_text,
            &extra,
        );
        match action {
            Action::Reload(t) => {
                let r = reload(agent, &self.clock, &self.opts.config_file);
                self.api.reloaded(self.poll.registry(), t, &r);
            }
            Action::Quit => self.shutdown(agent),
            Action::None => {}
        }
    }

    /// Reads the inotify events and feeds each watched directory's changes.
    fn read_inotify(&mut self, agent: &mut Core) {
        loop {
            let evs = match self.inotify.read_events(&mut self.inotify_buf) {
                Ok(evs) => evs
                    .map(|e| {
                        (
                            e.wd.clone(),
                            e.name.map(|n| n.to_string_lossy().into_owned()),
                        )
                    })
                    .collect::<Vec<_>>(),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!(err = %e, "inotify read");
                    return;
                }
            };
            if evs.is_empty() {
                return;
            }
            let now = self.clock.now();
            for (wd, name) in evs {
                if let Some(&id) = self.watches.get(&wd) {
                    let event = trawl_core::io::IoEvent::Changed {
                        name: name.as_deref(),
                    };
                    agent.input(now, Input::Io { id, event });
                }
            }
        }
    }

    /// The first request to stop: discovery stops, scrapes in flight finish (each
    /// within its timeout), pending end-of-run stale markers are dropped as Prometheus
    /// drops them. A second one (signal or `/-/quit`) stops waiting: the loop ends at
    /// once, storage still written and synced.
    fn shutdown(&mut self, agent: &mut Core) {
        if !self.shutting_down {
            tracing::info!(
                "shutting down: finishing scrapes in flight (a second signal stops without waiting)"
            );
            self.shutting_down = true;
            self.api.stopping = true;
            agent.input(self.clock.now(), Input::Shutdown);
        } else if !self.forced {
            let in_flight = agent.agent.in_flight();
            tracing::warn!(
                in_flight,
                "second stop request: scrapes in flight are abandoned, remote write is not flushed"
            );
            self.forced = true;
        }
    }

    /// After the loop: storage takes what is queued and is synced, remote write sends
    /// what the WAL holds for up to the flush deadline, the recording is closed.
    fn finish(mut self, mut agent: Core) -> Result<(), String> {
        // The series still waiting for room, then everything queued is written and
        // synced.
        for b in self.overflow.drain() {
            if self.writer.append(b).is_err() {
                break;
            }
        }
        let stats = self
            .writer
            .close()
            .map_err(|e| format!("close the WAL: {e}"))?;
        feed_ack(&mut agent, self.clock.now(), &self.writer.drain_acks());
        // Not after a second stop request: what is left goes after the next start.
        if !self.remote.is_empty() && !self.forced {
            self.flush_remote();
        }
        if let Some(d) = agent.finish() {
            tracing::info!(digest = %format!("{:016x}", d.0), "recording closed");
        }
        tracing::info!(
            samples = stats.samples,
            series = stats.series,
            lost = stats.lost_samples,
            "WAL closed; bye"
        );
        match self.lost_dir {
            Some(e) => Err(format!("stopped: {e}")),
            None => Ok(()),
        }
    }

    /// After the agent and the WAL writer stopped: remote write sends the rest.
    fn flush_remote(&mut self) {
        let end = self.clock.now().mono + self.opts.flush_deadline;
        self.remote.close(self.clock.now());
        loop {
            let now = self.clock.now();
            while let Some((caller, e)) = self.net.events.pop_front() {
                if let Caller::Remote(id) = caller {
                    self.remote.on_net(now, id, e);
                }
            }
            self.remote.pump(
                now,
                &mut net::MioTransport {
                    net: &mut self.net,
                    reg: self.poll.registry(),
                },
                &Vec::new,
            );
            if self.remote.is_idle() || now.mono >= end {
                break;
            }
            if !self.net.events.is_empty() {
                continue;
            }
            let until = self.remote.poll_timeout().map_or(end, |t| t.min(end));
            let timeout = if self.net.has_backlog() {
                Duration::ZERO
            } else {
                let lookups = self.net.poll_timeout().map(|d| {
                    d.saturating_duration_since(std::time::Instant::now())
                        .max(Duration::from_millis(1))
                });
                let t = until
                    .saturating_since(now.mono)
                    .max(Duration::from_millis(1));
                lookups.map_or(t, |l| l.min(t))
            };
            if self.poll.poll(&mut self.events, Some(timeout)).is_err() {
                break;
            }
            self.net.new_turn();
            for ev in self.events.iter() {
                if let Token(t) = ev.token()
                    && self.net.owns_dns_token(t)
                {
                    self.net.dns_ready(self.poll.registry(), t);
                } else if let Token(t) = ev.token()
                    && t >= CONN_BASE
                {
                    self.net.ready(
                        self.poll.registry(),
                        t,
                        ev.is_readable() || ev.is_read_closed(),
                        ev.is_writable(),
                    );
                }
            }
            self.net.drain_backlog(self.poll.registry());
            self.net.timeouts(self.poll.registry());
        }
        self.remote.abandon(&mut net::MioTransport {
            net: &mut self.net,
            reg: self.poll.registry(),
        });
    }
}

fn reload(agent: &mut Core, clock: &Clock, path: &Path) -> Result<(), String> {
    let r = config_source(path).and_then(|src| agent.reload(clock.now(), &src));
    match &r {
        Ok(()) => tracing::info!("configuration reloaded"),
        Err(e) => {
            agent.agent.config_rejected();
            tracing::error!(err = %e, "reload failed; the running configuration stays")
        }
    }
    r
}

/// What opening the WAL gave.
type Opened = Result<
    (
        Wal,
        trawl_io::storage::Restored,
        trawl_io::storage::OpenReport,
    ),
    trawl_io::storage::OpenError,
>;

/// Opens and replays the WAL on a thread of its own while the API answers on this one
/// (not ready yet); `None` if SIGTERM or SIGINT came meanwhile (the replay is finished
/// first, then dropped: it holds the directory's lock until then).
fn replay(
    poll: &mut Poll,
    waker: &Arc<Waker>,
    signals: &mut Signals,
    api: &mut Web,
    opts: &DaemonOptions,
    progress: Arc<ReplayProgress>,
) -> Result<Option<Opened>, String> {
    let (tx, rx) = crossbeam_channel::bounded::<Opened>(1);
    let (dir, wal_opts, w) = (opts.storage_path.clone(), opts.wal.clone(), waker.clone());
    let thread = std::thread::Builder::new()
        .name("trawl-replay".into())
        .spawn(move || {
            let _ = tx.send(Wal::open_with_progress(&dir, wal_opts, &progress));
            let _ = w.wake();
        })
        .map_err(|e| format!("start the WAL replay: {e}"))?;
    let mut poll_events = Events::with_capacity(256);
    let mut stop = false;
    let opened = loop {
        if let Ok(r) = rx.try_recv() {
            break r;
        }
        let timeout = api
            .poll_timeout()
            .map(|d| d.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        match poll.poll(&mut poll_events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        let p = &*poll;
        for e in poll_events.iter() {
            match e.token() {
                t if web::is_listener(t) => api.accept(p.registry()),
                SIGNALS => {
                    for sig in signals.pending() {
                        if sig == SIGINT || sig == SIGTERM {
                            tracing::info!(
                                "stop requested during the WAL replay; stopping once it is done"
                            );
                            stop = true;
                        }
                    }
                }
                Token(t) if (web::WEB_BASE..CONN_BASE).contains(&t) => {
                    // Not ready: nothing a request asks may change anything.
                    let none = Metrics::new;
                    let _ = api.ready(p.registry(), t, None, "", &none);
                }
                _ => {}
            }
        }
        api.timeouts(p.registry(), std::time::Instant::now());
    };
    let _ = thread.join();
    Ok((!stop).then_some(opened))
}

/// Logs what the configuration asks for that trawl does not act on
/// ([`Config::warnings`]).
fn log_warnings(c: &Config) {
    for w in c.warnings() {
        tracing::warn!("{w}");
    }
}

fn feed_ack(agent: &mut Core, now: Now, a: &Ack) {
    if a.batches > 0 {
        agent.input(now, Input::Stored(a.as_input()));
    }
}
