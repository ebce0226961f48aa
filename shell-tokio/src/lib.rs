//! # trawl-tokio
//!
//! The trawl agent inside a tokio application: discovery, relabeling and scraping from
//! an unmodified `prometheus.yml`, feeding the host's own pipeline, on the host's
//! runtime, without a second event loop.
//!
//! One task owns the core's [`trawl_core::Agent`] and runs its drive loop: carry out
//! what the agent asks, wait (`tokio::select!`) for IO completions, commands or the
//! agent's deadline (`tokio::time`), feed what happened. IO runs in spawned tasks that
//! report over a channel: scrapes and HTTP SD with the core's HTTP/1.1 codec over
//! `tokio::net::TcpStream` and `tokio-rustls`, file SD's reads on the blocking pool and
//! its directory watches with inotify. Committed scrapes go to a [`Sink`] on its own
//! task.
//!
//! ```no_run
//! use trawl_core::config::{Config, ParseOptions};
//! use trawl_tokio::{Agent, Batch, Outcome, Sink};
//!
//! struct Print;
//! impl Sink for Print {
//!     async fn append(&mut self, batch: Batch) -> Outcome {
//!         println!("{} samples", batch.samples.len());
//!         Outcome::Stored
//!     }
//! }
//!
//! # async fn example() {
//! let yaml = "scrape_configs: [{job_name: node, static_configs: [{targets: ['localhost:9100']}]}]";
//! let config = Config::parse(yaml, &ParseOptions::default()).expect("valid config");
//! let agent = Agent::builder(config).seed(7).sink(Print).build();
//! let handle = agent.handle();
//! // The agent runs until the future given to `run` resolves: the host's own shutdown
//! // signal (here a channel; a service would use its ctrl-c or SIGTERM handling).
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let run = tokio::spawn(agent.run(async { let _ = stopped.await; }));
//! // Later, from anywhere: no lock, a message to the agent's task.
//! let targets = handle.targets().await.expect("agent running");
//! println!("{} targets", targets.len());
//! let _ = stop.send(());
//! run.await.expect("agent task");
//! # }
//! ```
//!
//! ## Which way to run trawl
//!
//! * **The `trawl` daemon** (`trawl-mio`): a drop-in scraper beside or instead of a
//!   Prometheus agent. It owns its process: signals, the HTTP API, the WAL, remote
//!   write. Use it when trawl is the program.
//! * **This crate**: when trawl is a library inside a tokio service that wants targets
//!   and samples in its own process (its own storage, its own export, its own API). The
//!   agent is a task; [`Handle`]s reload it and read its targets and metrics; a [`Sink`]
//!   receives every committed scrape, or [`WalSink`] keeps them in the daemon's WAL
//!   format.
//! * **The core directly** (`trawl-core`): for a custom event loop, a simulator or a
//!   test harness: the [`trawl_core::Agent`] is a state machine with no IO, driven by
//!   `handle_input`, `poll_output` and `poll_timeout` (see its crate docs, and
//!   `tests/examples/blocking_loop.rs` for a complete blocking loop over `std::net`).

mod dns;
mod http;
mod sink;
mod watch;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use trawl_core::agent::{AgentOptions, Input, Output};
use trawl_core::config::Config;
use trawl_core::io::{DnsQuery, HttpRequest, IoOp, OwnedIoEvent, RequestId, StreamOpen};
use trawl_core::scrape::TargetView;
use trawl_core::time::{Instant, Now, UnixNanos};
use trawl_io::client::{Caller, RemoteId};
use trawl_io::drive::carry_out;

pub use http::HttpOptions;
pub use sink::{Acks, Batch, ChannelSink, Discard, Outcome, Sink, WalSink};
pub use trawl_core as core;
pub use trawl_io::source::load_config;
pub use trawl_io::storage::{Restored, SyncPolicy, WalOptions, WriterOptions};

/// What an IO task, a sink or a watch reports to the agent's task.
enum Done {
    /// Progress or the end of an operation: the agent's (HTTP, DNS, files, watches) or
    /// remote write's (HTTP).
    Io(Caller, OwnedIoEvent),
    /// A piece of a body with the read credit it holds, given back once the agent has
    /// parsed it ([`trawl_core::Agent::accepts_body`]).
    Read(Caller, OwnedIoEvent, Option<http::Credit>),
    /// The sink's report on batches.
    Stored(trawl_io::storage::Ack),
}

/// Completions fed to the agent in one turn of its loop before timers are looked at.
const MAX_FED_PER_TURN: usize = 256;

/// Where the agent's wall-clock time comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WallClock {
    /// The system clock (`SystemTime::now`), as the daemon and Prometheus use.
    #[default]
    System,
    /// `start` plus the time tokio's clock has advanced since the agent started: with
    /// tokio's paused clock, a run is a function of its inputs (deterministic tests).
    FromTokio {
        /// Wall-clock time at the start.
        start: UnixNanos,
    },
}

type SinkRunner = Box<
    dyn FnOnce(
            mpsc::Receiver<Batch>,
            mpsc::UnboundedSender<Done>,
        ) -> Pin<Box<dyn Future<Output = ()> + Send>>
        + Send,
>;

/// Builds an [`Agent`].
pub struct Builder {
    config: Config,
    options: AgentOptions,
    http: HttpOptions,
    sink: SinkRunner,
    max_pending: usize,
    restore: Option<Restored>,
    wall: WallClock,
    timer_slack: Duration,
    remote: Option<RemoteWrite>,
}

/// Remote write from the WAL sink's directory: the daemon's queues
/// (`trawl_mio::remote`) over this crate's HTTP client.
struct RemoteWrite {
    /// `None` while the configuration has no `remote_write`.
    remote: Option<trawl_io::remote::Remote>,
    dir: std::path::PathBuf,
    keep_from: std::sync::Arc<std::sync::atomic::AtomicU32>,
    /// The configuration's part it was built from (rebuilt when a reload changes it).
    from: (
        trawl_core::labels::Labels,
        Vec<trawl_core::config::RemoteWriteConfig>,
    ),
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("options", &self.options)
            .field("http", &self.http)
            .field("max_pending", &self.max_pending)
            .finish_non_exhaustive()
    }
}

fn runner<S: Sink>(mut s: S) -> SinkRunner {
    Box::new(move |mut rx, tx| {
        Box::pin(async move {
            s.start(Acks { tx: tx.clone() });
            while let Some(b) = rx.recv().await {
                let samples = b.samples.len() as u64;
                let (stored, lost, error) = match s.append(b).await {
                    Outcome::Stored => (samples, 0, None),
                    Outcome::Failed(e) => (0, samples, Some(e)),
                    Outcome::Deferred => continue,
                };
                Acks { tx: tx.clone() }.report(1, stored, lost, error);
            }
            s.close().await;
        })
    })
}

impl Builder {
    /// Options not in `prometheus.yml` (seed, host name, coalescing, user agent…), all
    /// at once.
    pub fn options(mut self, options: AgentOptions) -> Builder {
        self.options = options;
        self
    }

    /// The seed of every random choice the core makes (same inputs and seed, same
    /// outputs).
    pub fn seed(mut self, seed: u64) -> Builder {
        self.options.seed = seed;
        self
    }

    /// How long a discovery change waits for others before it reaches the scrape
    /// pools after a quiet period (default 100 ms), and the longest a stream of changes
    /// is held back (Prometheus's 5 s).
    pub fn coalescing(mut self, window: Duration, max: Duration) -> Builder {
        self.options.coalesce_window = window;
        self.options.updatert = max;
        self
    }

    /// `User-Agent` of scrapes and HTTP SD requests.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Builder {
        self.options.user_agent = ua.into();
        self
    }

    /// How the HTTP client keeps connections.
    pub fn http(mut self, http: HttpOptions) -> Builder {
        self.http = http;
        self
    }

    /// Where committed scrapes go (default [`Discard`]).
    pub fn sink<S: Sink>(mut self, sink: S) -> Builder {
        self.sink = runner(sink);
        self
    }

    /// Batches that may wait for the sink before new ones lose their samples (default
    /// 64; at least 1).
    pub fn max_pending(mut self, batches: usize) -> Builder {
        self.max_pending = batches.max(1);
        self
    }

    /// The series the storage holds (from [`WalSink::open`]), so that a series
    /// scraped again keeps its ref.
    pub fn restore(mut self, restored: Restored) -> Builder {
        self.restore = Some(restored);
        self
    }

    /// Stores scrapes in the WAL under `dir` (Prometheus's format, as the daemon
    /// writes it), restoring the series it holds; and, if the configuration has
    /// `remote_write` entries, sends every sample on from the WAL as the daemon does
    /// (progress in `dir/queues/`, retention keeping what a queue still needs,
    /// `prometheus_remote_storage_*` in [`Handle::metrics`]).
    pub fn wal(
        mut self,
        dir: &std::path::Path,
        wal: WalOptions,
        writer: WriterOptions,
    ) -> Result<Builder, String> {
        let keep_from = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(u32::MAX));
        let from = (
            self.config.global.external_labels.clone(),
            self.config.remote_write.clone(),
        );
        let mut rw = RemoteWrite {
            remote: None,
            dir: dir.to_owned(),
            keep_from: keep_from.clone(),
            from,
        };
        rw.build(
            self.options.seed,
            &self.options.user_agent,
            Now::new(Instant(0), wall_now()),
        )?;
        self.remote = Some(rw);
        let (sink, restored) = WalSink::open_marked(dir, wal, writer, Some(keep_from))?;
        Ok(self.sink(sink).restore(restored))
    }

    /// Where wall-clock time comes from (default: the system clock).
    pub fn wall_clock(mut self, wall: WallClock) -> Builder {
        self.wall = wall;
        self
    }

    /// Deadlines are woken on a grid of this step (default 2 ms, as the daemon), so
    /// deadlines close together share one wake-up; scrapes keep their scheduled
    /// timestamps. Zero wakes for each deadline exactly.
    pub fn timer_slack(mut self, slack: Duration) -> Builder {
        self.timer_slack = slack;
        self
    }

    /// The agent, ready to [`Agent::run`].
    pub fn build(self) -> Agent {
        let (tx, rx) = mpsc::unbounded_channel();
        Agent {
            builder: self,
            commands: rx,
            handle: Handle { tx },
        }
    }
}

/// The agent: [`Agent::run`] it on a task; talk to it through [`Handle`]s.
pub struct Agent {
    builder: Builder,
    commands: mpsc::UnboundedReceiver<Command>,
    handle: Handle,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("builder", &self.builder)
            .finish_non_exhaustive()
    }
}

enum Command {
    Reload(Box<Config>, oneshot::Sender<()>),
    Targets(oneshot::Sender<Vec<TargetView>>),
    Metrics(oneshot::Sender<String>),
    TargetsJson(oneshot::Sender<String>),
}

/// The agent has stopped (its task ended).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the trawl agent has stopped")
    }
}

impl std::error::Error for Stopped {}

/// Talks to a running agent; cheap to clone. Each call is a message to the agent's
/// task, answered between two of its steps: no lock is ever held around the core.
#[derive(Clone, Debug)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Command>,
}

impl Handle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Applies a new configuration (validated: [`Config::parse`]), as a SIGHUP reload
    /// of the daemon: unchanged targets keep scraping without a gap.
    pub async fn reload(&self, config: Config) -> Result<(), Stopped> {
        self.ask(|tx| Command::Reload(Box::new(config), tx)).await
    }

    /// The active targets, with their labels, health and last scrape.
    pub async fn targets(&self) -> Result<Vec<TargetView>, Stopped> {
        self.ask(Command::Targets).await
    }

    /// `/api/v1/targets` as Prometheus serves it (every state, every pool).
    pub async fn targets_json(&self) -> Result<String, Stopped> {
        self.ask(Command::TargetsJson).await
    }

    /// The agent's own metrics in the Prometheus text format (discovery, scrape pools,
    /// storage), as the daemon's `/metrics` shows them.
    pub async fn metrics(&self) -> Result<String, Stopped> {
        self.ask(Command::Metrics).await
    }
}

/// What [`Agent::run`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The agent's counters at the end.
    pub stats: trawl_core::agent::AgentStats,
}

fn wall_now() -> UnixNanos {
    UnixNanos(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64),
    )
}

impl RemoteWrite {
    /// The queues of `self.from` (none without `remote_write`).
    fn build(&mut self, seed: u64, user_agent: &str, now: Now) -> Result<(), String> {
        self.remote = self.make(seed, user_agent, now)?;
        Ok(())
    }

    /// New queues for `self.from`, the running ones untouched.
    fn make(
        &self,
        seed: u64,
        user_agent: &str,
        now: Now,
    ) -> Result<Option<trawl_io::remote::Remote>, String> {
        if self.from.1.is_empty() {
            return Ok(None);
        }
        trawl_io::remote::Remote::new(
            &self.from.1,
            &self.from.0,
            &self.dir,
            seed,
            user_agent,
            now,
            self.keep_from.clone(),
        )
        .map(Some)
    }

    /// After a reload: the queues again if the configuration's remote-write part
    /// changed (as the daemon does).
    fn follow(&mut self, agent: &trawl_core::Agent, t: &mut TokioTransport<'_>, now: Now) {
        let c = agent.config();
        let from = (c.global.external_labels.clone(), c.remote_write.clone());
        if from == self.from {
            return;
        }
        self.from = from;
        // The new queues first: if they cannot be made, the running ones go on
        // untouched (as the daemon does).
        let o = agent.options();
        match self.make(o.seed, &o.user_agent, now) {
            Ok(new) => {
                if let Some(r) = self.remote.as_mut() {
                    r.abandon(t);
                }
                self.remote = new;
            }
            Err(e) => {
                tracing::error!(err = %e, "remote write not restarted: the queues go on with the previous configuration")
            }
        }
    }
}

/// Remote write's requests as tasks of this crate's client.
struct TokioTransport<'a> {
    client: &'a http::Client,
    tx: &'a mpsc::UnboundedSender<Done>,
    tasks: &'a mut BTreeMap<Caller, AbortHandle>,
}

impl trawl_io::remote::Transport for TokioTransport<'_> {
    fn post(&mut self, id: RemoteId, p: trawl_io::remote::Post<'_>) {
        let task = self.client.post(id, p, self.tx.clone());
        self.tasks.insert(Caller::Remote(id), task);
    }
    fn cancel(&mut self, id: RemoteId) {
        if let Some(t) = self.tasks.remove(&Caller::Remote(id)) {
            t.abort();
        }
    }
}

/// The agent's IO as tasks ([`trawl_io::drive::Io`]).
struct TokioIo<'a> {
    client: &'a http::Client,
    tx: &'a mpsc::UnboundedSender<Done>,
    tasks: &'a mut BTreeMap<Caller, AbortHandle>,
    /// Where the bytes the agent sends on each open stream go.
    writers: &'a mut BTreeMap<RequestId, mpsc::UnboundedSender<Vec<u8>>>,
    sink: &'a mut SinkQueue,
}

impl trawl_io::drive::Io for TokioIo<'_> {
    fn http(&mut self, id: RequestId, r: HttpRequest) {
        let task = self.client.get(id, r, self.tx.clone());
        self.tasks.insert(Caller::Agent(id), task);
    }

    fn dns(&mut self, id: RequestId, q: DnsQuery) {
        let task = dns::exchange(id, q, self.tx.clone());
        self.tasks.insert(Caller::Agent(id), task);
    }

    fn file(&mut self, id: RequestId, op: IoOp) {
        let tx = self.tx.clone();
        let h = tokio::task::spawn_blocking(move || {
            if let Some(e) = trawl_io::files::run(&op) {
                let _ = tx.send(Done::Io(Caller::Agent(id), e));
            }
        });
        self.tasks.insert(Caller::Agent(id), h.abort_handle());
    }

    fn watch(&mut self, id: RequestId, path: String) {
        let task = watch::watch(id, path, self.tx.clone());
        self.tasks.insert(Caller::Agent(id), task);
    }

    fn stream(&mut self, id: RequestId, s: StreamOpen) {
        let (task, w) = self.client.stream(id, s, self.tx.clone());
        self.tasks.insert(Caller::Agent(id), task);
        self.writers.insert(id, w);
    }

    fn send(&mut self, id: RequestId, data: Vec<u8>) {
        if let Some(w) = self.writers.get(&id)
            && w.send(data).is_err()
        {
            self.writers.remove(&id);
        }
    }

    fn cancel(&mut self, id: RequestId) {
        self.writers.remove(&id);
        if let Some(t) = self.tasks.remove(&Caller::Agent(id)) {
            t.abort();
        }
    }

    fn append(&mut self, b: Batch) -> Option<trawl_io::storage::Lost> {
        self.sink.push(b)
    }
}

/// The agent's clock: the core's monotonic instant from tokio's clock (so tokio's
/// paused clock drives it), the wall clock as configured.
struct Clock {
    start: tokio::time::Instant,
    wall: WallClock,
}

impl Clock {
    fn now(&self) -> Now {
        let since = self.start.elapsed();
        let mono = Instant(since.as_nanos() as u64);
        let wall = match self.wall {
            WallClock::System => wall_now().0,
            WallClock::FromTokio { start } => start.0.saturating_add(since.as_nanos() as i64),
        };
        Now::new(mono, UnixNanos(wall))
    }

    fn at(&self, i: Instant) -> tokio::time::Instant {
        self.start + Duration::from_nanos(i.0)
    }
}

/// The sink side of the agent: a bounded queue, and the overflow that keeps series
/// declarations in order once it is full (see [`sink`]'s docs).
struct SinkQueue {
    tx: mpsc::Sender<Batch>,
    overflow: trawl_io::storage::Overflow,
}

const FULL: &str = "the sink's queue is full";

impl SinkQueue {
    fn try_send(tx: &mpsc::Sender<Batch>) -> impl FnMut(Batch) -> Result<(), Batch> + '_ {
        |b| {
            tx.try_send(b).map_err(|e| match e {
                mpsc::error::TrySendError::Full(b) | mpsc::error::TrySendError::Closed(b) => b,
            })
        }
    }

    /// Queues `b`; what it lost if the queue was full.
    fn push(&mut self, b: Batch) -> Option<trawl_io::storage::Lost> {
        self.overflow.push(b, SinkQueue::try_send(&self.tx))
    }

    /// Moves what the queue has room for out of the overflow.
    fn flush(&mut self) {
        self.overflow.flush(SinkQueue::try_send(&self.tx));
    }
}

impl Agent {
    /// Starts building an agent on a validated configuration.
    pub fn builder(config: Config) -> Builder {
        Builder {
            config,
            options: AgentOptions::default(),
            http: HttpOptions::default(),
            sink: runner(Discard),
            max_pending: 64,
            restore: None,
            wall: WallClock::System,
            timer_slack: trawl_io::drive::TIMER_SLACK,
            remote: None,
        }
    }

    /// A handle to talk to the agent once it runs.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Runs the agent until `shutdown` resolves and the shutdown completes: discovery
    /// stops, scrapes in flight finish and are handed to the sink, and the sink is
    /// closed (the WAL written and synced). Call from within a tokio runtime with the
    /// time and IO drivers enabled.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Report {
        let Agent {
            builder: b,
            mut commands,
            handle,
        } = self;
        // The agent's own handle must not keep the command channel open forever once
        // every other handle is gone; it is only used to hand out clones.
        drop(handle);
        let clock = Clock {
            start: tokio::time::Instant::now(),
            wall: b.wall,
        };
        let (io_tx, mut io_rx) = mpsc::unbounded_channel::<Done>();
        let (sink_tx, sink_rx) = mpsc::channel(b.max_pending);
        let mut sink_task = tokio::spawn((b.sink)(sink_rx, io_tx.clone()));
        let mut sink = SinkQueue {
            tx: sink_tx,
            overflow: trawl_io::storage::Overflow::default(),
        };
        let client = http::Client::new(
            b.http.clone(),
            trawl_io::resolve::ResolverOptions {
                resolv_conf: b.options.resolv_conf.clone(),
                hosts: b.http.hosts_file.clone(),
                port: b.options.dns_port,
                seed: b.options.seed,
            },
        );
        let mut remote = b.remote;
        for w in b.config.warnings() {
            tracing::warn!("{w}");
        }
        let mut agent = trawl_core::Agent::new(b.config, b.options, clock.now());
        if let Some(r) = b.restore {
            agent.handle_input(clock.now(), Input::Restore(Box::new(r)));
        }
        let mut tasks: BTreeMap<Caller, AbortHandle> = BTreeMap::new();
        let mut writers: BTreeMap<RequestId, mpsc::UnboundedSender<Vec<u8>>> = BTreeMap::new();
        let mut held: Vec<(RequestId, http::Credit)> = Vec::new();
        let mut shutting_down = false;
        let mut commands_open = true;
        tokio::pin!(shutdown);
        loop {
            // 1. Carry out what the agent asks.
            while let Some(o) = agent.poll_output() {
                let mut io = TokioIo {
                    client: &client,
                    tx: &io_tx,
                    tasks: &mut tasks,
                    writers: &mut writers,
                    sink: &mut sink,
                };
                if let Some(lost) = carry_out(o, &mut io) {
                    agent.handle_input(clock.now(), Input::Stored(lost.as_input(FULL)));
                }
            }
            if let Some(rw) = remote.as_mut() {
                let mut t = TokioTransport {
                    client: &client,
                    tx: &io_tx,
                    tasks: &mut tasks,
                };
                rw.follow(&agent, &mut t, clock.now());
                if let Some(r) = rw.remote.as_mut() {
                    let meta = || agent.metadata();
                    r.pump(clock.now(), &mut t, &meta);
                }
            }
            if shutting_down && agent.is_shut_down() {
                break;
            }
            // 2. Wait for IO, a command, the deadline or the shutdown signal.
            let now = clock.now();
            let rw_deadline = remote
                .as_ref()
                .and_then(|rw| rw.remote.as_ref())
                .and_then(|r| r.poll_timeout());
            let deadline = match (agent.poll_timeout(), rw_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
            .map(|d| clock.at(now.mono) + trawl_io::wait_for(d, now.mono, b.timer_slack));
            let far = clock.at(now.mono) + Duration::from_secs(3600);
            tokio::select! {
                biased;
                d = io_rx.recv() => {
                    // The agent holds a sender: never closed while it runs.
                    if let Some(d) = d {
                        feed(&mut agent, &mut remote, &clock, &mut tasks, &mut held, d);
                        // What else is waiting, up to a bound: connections that stream
                        // without pause must not keep the agent from its timers.
                        for _ in 0..MAX_FED_PER_TURN {
                            let Ok(d) = io_rx.try_recv() else { break };
                            feed(&mut agent, &mut remote, &clock, &mut tasks, &mut held, d);
                        }
                        // Streams that ended need no writer.
                        if !writers.is_empty() {
                            writers.retain(|id, _| tasks.contains_key(&Caller::Agent(*id)));
                        }
                    }
                    sink.flush();
                }
                c = commands.recv(), if commands_open => match c {
                    Some(c) => command(&mut agent, &remote, &clock, c),
                    None => commands_open = false,
                },
                () = &mut shutdown, if !shutting_down => {
                    shutting_down = true;
                    tracing::info!("shutting down: finishing scrapes in flight");
                    agent.handle_input(clock.now(), Input::Shutdown);
                }
                () = tokio::time::sleep_until(deadline.unwrap_or(far)) => {}
            }
            let now = clock.now();
            if agent.poll_timeout().is_some_and(|d| d <= now.mono) {
                agent.handle_input(now, Input::Timeout);
            }
            held.retain(|(id, _)| !agent.accepts_body(*id));
        }
        // Discovery and scrapes are over (watches may still run: they go); remote
        // write's requests in flight stay, their answers are needed for the flush.
        tasks.retain(|caller, t| {
            let keep = matches!(caller, Caller::Remote(_));
            if !keep {
                t.abort();
            }
            keep
        });
        // The sink takes the rest, then closes; its last reports are fed as they come.
        let SinkQueue { tx, mut overflow } = sink;
        for b in overflow.drain() {
            if tx.send(b).await.is_err() {
                break;
            }
        }
        drop(tx);
        loop {
            tokio::select! {
                Some(d) = io_rx.recv() => feed(&mut agent, &mut remote, &clock, &mut tasks, &mut held, d),
                _ = &mut sink_task => {
                    while let Ok(d) = io_rx.try_recv() {
                        feed(&mut agent, &mut remote, &clock, &mut tasks, &mut held, d);
                    }
                    break;
                }
            }
        }
        // Remote write sends what the WAL holds, for up to the daemon's flush deadline
        // (the rest goes after the next start: progress is on disk).
        let end = clock.now().mono + trawl_io::drive::FLUSH_DEADLINE;
        if let Some(r) = remote.as_mut().and_then(|rw| rw.remote.as_mut()) {
            r.close(clock.now());
        }
        while let Some(r) = remote.as_mut().and_then(|rw| rw.remote.as_mut()) {
            let now = clock.now();
            let mut t = TokioTransport {
                client: &client,
                tx: &io_tx,
                tasks: &mut tasks,
            };
            r.pump(now, &mut t, &Vec::new);
            if r.is_idle() || now.mono >= end {
                r.abandon(&mut t);
                break;
            }
            let until = r.poll_timeout().map_or(end, |x| x.min(end));
            let sleep = clock.at(now.mono) + trawl_io::wait_for(until, now.mono, Duration::ZERO);
            tokio::select! {
                d = io_rx.recv() => {
                    if let Some(d) = d {
                        feed(&mut agent, &mut remote, &clock, &mut tasks, &mut held, d);
                    }
                }
                () = tokio::time::sleep_until(sleep) => {}
            }
        }
        for (_, t) in std::mem::take(&mut tasks) {
            t.abort();
        }
        while let Some(o) = agent.poll_output() {
            if let Output::Event(e) = o {
                trawl_io::log_event(&e);
            }
        }
        Report {
            stats: agent.stats(),
        }
    }
}

fn command(agent: &mut trawl_core::Agent, remote: &Option<RemoteWrite>, clock: &Clock, c: Command) {
    match c {
        Command::Reload(config, done) => {
            for w in config.warnings() {
                tracing::warn!("{w}");
            }
            agent.handle_input(clock.now(), Input::Config(config));
            let _ = done.send(());
        }
        Command::Targets(tx) => {
            let _ = tx.send(agent.targets());
        }
        Command::TargetsJson(tx) => {
            let _ = tx.send(trawl_core::api::targets_json(
                agent,
                trawl_core::api::TargetState::Any,
                None,
            ));
        }
        Command::Metrics(tx) => {
            let mut m = agent.metrics();
            if let Some(r) = remote.as_ref().and_then(|rw| rw.remote.as_ref()) {
                r.metrics(&mut m);
            }
            let _ = tx.send(m.render());
        }
    }
}

fn feed(
    agent: &mut trawl_core::Agent,
    remote: &mut Option<RemoteWrite>,
    clock: &Clock,
    tasks: &mut BTreeMap<Caller, AbortHandle>,
    held: &mut Vec<(RequestId, http::Credit)>,
    d: Done,
) {
    let now = clock.now();
    let rw = remote.as_mut().and_then(|rw| rw.remote.as_mut());
    match d {
        Done::Stored(a) => {
            agent.handle_input(now, Input::Stored(a.as_input()));
            // The WAL grew: the queues read on.
            if let Some(r) = rw {
                r.wal_written(now, &a.written);
            }
        }
        Done::Read(caller, e, credit) => {
            feed(agent, remote, clock, tasks, held, Done::Io(caller, e));
            // Bytes the agent left to parse later keep their credit until it has.
            if let (Caller::Agent(id), Some(c)) = (caller, credit)
                && !agent.accepts_body(id)
            {
                held.push((id, c));
            }
        }
        Done::Io(caller, e) => {
            if e.is_final() {
                tasks.remove(&caller);
            }
            match caller {
                Caller::Remote(id) => {
                    if let Some(r) = rw {
                        r.on_net(now, id, e);
                    }
                }
                Caller::Agent(id) => {
                    e.with_event(|event| agent.handle_input(now, Input::Io { id, event }))
                }
            }
        }
    }
}
