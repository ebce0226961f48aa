//! The daemon: one mio thread owns the [`Agent`] and every socket; the WAL writer and the
//! resolver are threads that wake the loop through a [`mio::Waker`]. The loop is the
//! core's: drain the agent's outputs and carry them out, wait for IO or the agent's
//! deadline, feed what happened with a fresh clock reading.

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use trawl_core::agent::{Agent, AgentOptions, Event, Input, Output};
use trawl_core::config::{Config, RemoteWriteConfig};
use trawl_core::io::{IoEvent, IoOp, RequestId};
use trawl_core::recording::{self, ConfigSource, Digest};
use trawl_core::time::{Instant, Now, UnixNanos};

use crate::net::{self, CONN_BASE, Net, NetEvent};
use crate::remote::Remote;
use crate::storage::{Ack, Wal, WalOptions, Writer, WriterOptions};
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
    /// `--web.listen-address`.
    pub listen: std::net::SocketAddr,
    /// The HTTP API's lifecycle endpoints and bounds.
    pub web: web::WebOptions,
    /// `--debug.record`: record every input to this file.
    pub record: Option<PathBuf>,
    /// Timer slack: the loop wakes for the agent's deadlines on a grid of this step,
    /// so deadlines close together are handled in one wake-up. Scrapes are stamped with
    /// their scheduled time, so a scrape started up to one step late keeps its
    /// timestamp; zero wakes for every deadline exactly.
    pub timer_slack: Duration,
}

/// The default [`DaemonOptions::timer_slack`]: with a thousand targets a second, five
/// deadlines share each wake-up.
pub const TIMER_SLACK: Duration = Duration::from_millis(5);

/// How long to wait for `deadline` from `now`, rounded up to the `slack` grid (at least
/// 100 µs, so a deadline already passed still yields).
pub fn wait_for(deadline: Instant, now: Instant, slack: Duration) -> Duration {
    let step = slack.as_nanos() as u64;
    let at = if step == 0 {
        deadline.0
    } else {
        deadline.0.div_ceil(step).saturating_mul(step)
    };
    Duration::from_nanos(at.saturating_sub(now.0)).max(Duration::from_micros(100))
}

/// Loads and validates a configuration file.
pub fn load_config(path: &Path) -> Result<Config, String> {
    config_source(path)?.parse().map_err(|e| {
        format!(
            "couldn't load configuration (--config.file={}): {e}",
            path.display()
        )
    })
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
        };
        if core.rec.is_some() {
            recording::encode_start(&mut core.buf, &options, src, now);
            core.write();
        }
        core.collect(now);
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

    fn collect(&mut self, now: Now) {
        while let Some(o) = self.agent.poll_output() {
            if let Some((_, d)) = self.rec.as_mut() {
                d.add(now, &o);
            }
            self.queue.push_back(o);
        }
    }

    fn input(&mut self, now: Now, input: Input<'_>) {
        if self.rec.is_some() {
            recording::encode_input(&mut self.buf, now, &input);
            self.write();
        }
        self.agent.handle_input(now, input);
        self.collect(now);
    }

    fn reload(&mut self, now: Now, src: &ConfigSource) -> Result<(), String> {
        let c = src.parse()?;
        let remote = (c.global.external_labels.clone(), c.remote_write.clone());
        if remote != self.remote {
            self.remote = remote;
            self.remote_changed = true;
        }
        if self.rec.is_some() {
            recording::encode_config(&mut self.buf, now, src);
            self.write();
        }
        self.agent.handle_input(now, Input::Config(Box::new(c)));
        self.config_text = src.text.clone();
        self.collect(now);
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

/// Reads a configuration file as its source (text and environment), for the agent
/// and the recording.
pub fn config_source(path: &Path) -> Result<ConfigSource, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "couldn't load configuration (--config.file={}): {e}",
            path.display()
        )
    })?;
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.sort();
    let mut src = ConfigSource {
        path: path.to_string_lossy().into_owned(),
        text,
        env,
        files: Vec::new(),
    };
    // The patterns come from a first parse; a configuration that does not parse fails
    // with its own error later.
    if let Ok(c) = src.parse() {
        src.files = scrape_config_files(&c.scrape_config_files).map_err(|e| {
            format!(
                "couldn't load configuration (--config.file={}): error loading scrape configs: {e}",
                path.display()
            )
        })?;
    }
    Ok(src)
}

/// Expands `scrape_config_files` patterns (already resolved against the configuration's
/// directory) and reads the files, as 3.x's `Config.GetScrapeConfigs` does: patterns in
/// order, each one's matches sorted; a pattern that matches nothing, or a file that does
/// not exist, adds nothing; a match that cannot be read (a directory, no permission) is
/// an error naming it. Paths are made absolute (the files' own relative paths resolve
/// against their directories).
pub fn scrape_config_files(patterns: &[String]) -> Result<Vec<(String, String)>, String> {
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for p in patterns {
        let abs = if p.starts_with('/') {
            p.clone()
        } else {
            trawl_core::config::clean_path(&format!("{}/{p}", cwd.display()))
        };
        let (dir, base) = match abs.rfind('/') {
            Some(i) => (&abs[..i.max(1)], &abs[i + 1..]),
            None => (".", abs.as_str()),
        };
        let mut matches = Vec::new();
        if base.contains(['*', '?', '[']) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if trawl_core::discovery::groups::glob_match(base, &name) {
                        matches.push(format!("{}/{name}", dir.trim_end_matches('/')));
                    }
                }
            }
            matches.sort();
        } else if std::fs::symlink_metadata(&abs).is_ok() {
            matches.push(abs.clone());
        }
        for m in matches {
            // Bounded as discovery files are: a configuration is never this large.
            let text = crate::files::read_limited(&m, 64 << 20)
                .map_err(|e| format!("{m:?}: {e}"))?
                .ok_or_else(|| format!("{m:?}: larger than 64 MiB"))?;
            let text = String::from_utf8(text).map_err(|_| format!("{m:?}: not UTF-8"))?;
            out.push((m, text));
        }
    }
    Ok(out)
}

/// Completions the loop feeds after draining outputs (file work done inline).
type Done = (RequestId, crate::files::FileDone);

struct Clock {
    start: std::time::Instant,
}

impl Clock {
    fn now(&self) -> Now {
        let mono = Instant(self.start.elapsed().as_nanos() as u64);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        Now::new(mono, UnixNanos(wall))
    }
}

/// Runs the daemon until SIGTERM or SIGINT and a graceful shutdown.
pub fn run(opts: DaemonOptions) -> Result<(), String> {
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
    let mut poll = Poll::new().map_err(|e| format!("create poll: {e}"))?;
    let waker =
        Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| format!("create waker: {e}"))?);
    let mut signals = Signals::new([SIGHUP, SIGINT, SIGTERM])
        .map_err(|e| format!("install signal handlers: {e}"))?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(|e| format!("register signals: {e}"))?;

    let (wal, restored, report) =
        Wal::open(&opts.storage_path, opts.wal.clone()).map_err(|e| e.to_string())?;
    tracing::info!(
        dir = %opts.storage_path.display(),
        segments = report.segments.len(),
        series = restored.series.len(),
        samples = report.replay.samples,
        writing = report.writing,
        "WAL replayed"
    );
    if let Some(r) = &report.repair {
        tracing::warn!(segment = r.segment, reason = %r.reason, from = r.from, to = r.to, removed = ?r.removed, "WAL repaired");
    }
    let mut wal = wal;
    let now0 = clock.now();
    let config = source.parse().map_err(|e| {
        format!(
            "couldn't load configuration (--config.file={}): {e}",
            source.path
        )
    })?;
    let user_agent = opts.agent.user_agent.clone();
    let keep_from = Arc::new(std::sync::atomic::AtomicU32::new(u32::MAX));
    let mut remote = Remote::new(
        &config.remote_write,
        &config.global.external_labels,
        &opts.storage_path,
        opts.agent.seed,
        &user_agent,
        now0,
        keep_from.clone(),
    )?;
    wal.keep_segments_from(keep_from.clone());
    let w = waker.clone();
    let mut writer = Writer::spawn(wal, opts.writer.clone(), move || {
        let _ = w.wake();
    })
    .map_err(|e| format!("start the WAL writer: {e}"))?;
    let w = waker.clone();
    let (lookups, resolved) = net::spawn_resolver(move || {
        let _ = w.wake();
    })
    .map_err(|e| format!("start the resolver: {e}"))?;

    let w = waker.clone();
    let (file_work, files_done) = crate::files::spawn_worker(move || {
        let _ = w.wake();
    })
    .map_err(|e| format!("start the file worker: {e}"))?;

    let mut inotify = inotify::Inotify::init().map_err(|e| format!("inotify: {e}"))?;
    let ifd = inotify.as_raw_fd();
    poll.registry()
        .register(&mut SourceFd(&ifd), INOTIFY, Interest::READABLE)
        .map_err(|e| format!("register inotify: {e}"))?;

    let mut api = Web::bind(poll.registry(), opts.listen, opts.web.clone())
        .map_err(|e| format!("listen on {} (--web.listen-address): {e}", opts.listen))?;
    let bound = api
        .local_addr()
        .map_or_else(|_| opts.listen.to_string(), |a| a.to_string());
    tracing::info!(address = %bound, "listening");
    let mut agent = Core::new(
        &source,
        config,
        opts.agent.clone(),
        clock.now(),
        opts.record.as_deref(),
    )?;
    agent.input(clock.now(), Input::Restore(Box::new(restored)));
    let mut net = Net::new(lookups);
    let mut dns = crate::dns::Dns::default();
    let mut done: VecDeque<Done> = VecDeque::new();
    let mut watches: BTreeMap<inotify::WatchDescriptor, RequestId> = BTreeMap::new();
    let mut watch_ids: BTreeMap<RequestId, inotify::WatchDescriptor> = BTreeMap::new();
    let mut events = Events::with_capacity(1024);
    let mut ibuf = vec![0u8; 64 * 1024];
    let mut shutting_down = false;
    let mut forced = false;
    let mut lost_dir: Option<String> = None;
    let mut overflow = crate::storage::Overflow::default();
    tracing::info!(config = %opts.config_file.display(), "trawl started");

    loop {
        // 1. Carry out what the agent asks, and feed what that finished at once.
        loop {
            while let Some(o) = agent.poll_output() {
                match o {
                    Output::Start { id, op } => match op {
                        IoOp::Http(r) => net.start(poll.registry(), id, &r),
                        IoOp::Dns(q) => {
                            if let Err(e) = dns.start(poll.registry(), id, &q) {
                                done.push_back((id, crate::files::FileDone::Failed(e)));
                            }
                        }
                        op @ (IoOp::ReadFile { .. } | IoOp::ListDir { .. }) => {
                            if file_work.send((id, op)).is_err() {
                                let msg = "the file worker thread is gone".to_owned();
                                done.push_back((id, crate::files::FileDone::Failed(msg)));
                            }
                        }
                        IoOp::Watch { path } => {
                            match inotify.watches().add(&path, crate::files::watch_mask()) {
                                Ok(wd) => {
                                    watches.insert(wd.clone(), id);
                                    watch_ids.insert(id, wd);
                                }
                                Err(e) => {
                                    let msg = format!("watch {path}: {e}");
                                    agent.input(
                                        clock.now(),
                                        Input::Io {
                                            id,
                                            event: IoEvent::Failed(&msg),
                                        },
                                    );
                                }
                            }
                        }
                    },
                    Output::Cancel(id) => {
                        net.cancel(poll.registry(), id);
                        dns.cancel(poll.registry(), id);
                        if let Some(wd) = watch_ids.remove(&id) {
                            watches.remove(&wd);
                            let _ = inotify.watches().remove(wd);
                        }
                    }
                    Output::Append(b) => {
                        // A full queue costs the samples; the series still go (in order).
                        if let Some(lost) = overflow.push(b, |b| writer.try_append(b)) {
                            let msg = "the WAL writer's queue is full";
                            agent.input(
                                clock.now(),
                                Input::Stored(trawl_core::Stored {
                                    batches: lost.batches,
                                    samples: 0,
                                    lost_samples: lost.samples,
                                    error: Some(msg),
                                }),
                            );
                        }
                    }
                    Output::Event(e) => log_event(&e),
                }
            }
            // Feed finished work; it may produce more outputs.
            let now = clock.now();
            let mut fed = false;
            while let Some((id, e)) = net.events.pop_front() {
                if id.0 >= crate::remote::ID_BASE {
                    remote.on_net(now, id, e);
                } else {
                    let body = matches!(e, NetEvent::Body(_));
                    feed_net(&mut agent, now, id, e);
                    // A body that inflates far is parsed in slices: read no more of it
                    // until the agent has caught up.
                    if body && !agent.agent.accepts_body(id) {
                        net.hold(id);
                    }
                }
                fed = true;
            }
            while let Some((id, d)) = done.pop_front() {
                fed = true;
                d.with_event(|event| agent.input(now, Input::Io { id, event }));
            }
            if !fed {
                break;
            }
        }
        if agent.remote_changed {
            agent.remote_changed = false;
            remote.abandon(&mut net::MioTransport {
                net: &mut net,
                reg: poll.registry(),
            });
            let (ext, rws) = &agent.remote;
            match Remote::new(
                rws,
                ext,
                &opts.storage_path,
                opts.agent.seed,
                &user_agent,
                clock.now(),
                keep_from.clone(),
            ) {
                Ok(r) => remote = r,
                Err(e) => tracing::error!(err = %e, "remote write not restarted"),
            }
        }
        let meta = || agent.agent.metadata();
        remote.pump(
            clock.now(),
            &mut net::MioTransport {
                net: &mut net,
                reg: poll.registry(),
            },
            &meta,
        );
        if !net.events.is_empty() {
            continue;
        }
        if shutting_down && (forced || agent.agent.is_shut_down()) {
            break;
        }
        // 2. Wait for IO or the agent's deadline.
        let now = clock.now();
        let deadline = match (agent.agent.poll_timeout(), remote.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = if net.has_backlog() {
            // Connections have data left from the last turn: look for IO, never sleep.
            Some(Duration::ZERO)
        } else {
            let agent_wait = deadline.map(|d| wait_for(d, now.mono, opts.timer_slack));
            let web_wait = api.poll_timeout().map(|d| {
                d.saturating_duration_since(std::time::Instant::now())
                    .max(Duration::from_millis(1))
            });
            match (agent_wait, web_wait) {
                (Some(a), Some(w)) => Some(a.min(w)),
                (a, w) => a.or(w),
            }
        };
        if let Err(e) = poll.poll(&mut events, timeout)
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            return Err(format!("poll: {e}"));
        }
        // 3. Feed what happened. Reads are bounded per connection and per turn (see
        // `net::READ_PER_TURN`): what a connection leaves unread waits in the backlog.
        net.new_turn();
        for ev in events.iter() {
            match ev.token() {
                WAKER => {}
                SIGNALS => {
                    for s in signals.pending() {
                        if s == SIGHUP {
                            let _ = reload(&mut agent, &clock, &opts.config_file);
                        } else {
                            shutdown(&mut agent, &clock, &mut shutting_down, &mut forced);
                        }
                    }
                }
                web::LISTENER => api.accept(poll.registry()),
                Token(t) if (crate::dns::DNS_BASE..crate::dns::DNS_END).contains(&t) => {
                    if let Some((id, d)) = dns.ready(poll.registry(), t) {
                        let event = match &d {
                            crate::dns::DnsDone::Reply(b) => IoEvent::DnsReply(b),
                            crate::dns::DnsDone::Failed(m) => IoEvent::Failed(m),
                        };
                        agent.input(clock.now(), Input::Io { id, event });
                    }
                }
                Token(t) if (web::WEB_BASE..CONN_BASE).contains(&t) => {
                    let extra = || remote.metrics_text();
                    match api.ready(poll.registry(), t, &agent.agent, &agent.config_text, &extra) {
                        Action::Reload(t) => {
                            let r = reload(&mut agent, &clock, &opts.config_file);
                            api.reloaded(poll.registry(), t, &r);
                        }
                        Action::Quit => {
                            shutdown(&mut agent, &clock, &mut shutting_down, &mut forced)
                        }
                        Action::None => {}
                    }
                }
                INOTIFY => loop {
                    let evs = match inotify.read_events(&mut ibuf) {
                        Ok(evs) => evs
                            .map(|e| {
                                (
                                    e.wd.clone(),
                                    e.name.map(|n| n.to_string_lossy().into_owned()),
                                )
                            })
                            .collect::<Vec<_>>(),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            tracing::warn!(err = %e, "inotify read");
                            break;
                        }
                    };
                    if evs.is_empty() {
                        break;
                    }
                    let now = clock.now();
                    for (wd, name) in evs {
                        if let Some(&id) = watches.get(&wd) {
                            agent.input(
                                now,
                                Input::Io {
                                    id,
                                    event: IoEvent::Changed {
                                        name: name.as_deref(),
                                    },
                                },
                            );
                        }
                    }
                },
                Token(t) if t >= CONN_BASE => {
                    net.ready(
                        poll.registry(),
                        t,
                        ev.is_readable() || ev.is_read_closed(),
                        ev.is_writable(),
                    );
                }
                _ => {}
            }
        }
        net.release(|id| agent.agent.accepts_body(id));
        net.drain_backlog(poll.registry());
        api.timeouts(poll.registry(), std::time::Instant::now());
        while let Ok(r) = resolved.try_recv() {
            net.resolved(poll.registry(), r);
        }
        done.extend(files_done.try_iter());
        while let Some(a) = writer.try_ack() {
            feed_ack(&mut agent, clock.now(), &a);
            remote.wal_written(clock.now());
        }
        overflow.flush(|b| writer.try_append(b));
        if let Some(e) = writer.lost_dir()
            && lost_dir.is_none()
        {
            // Nothing written from now on would survive: say so and stop, for a
            // supervisor to restart the daemon on a fresh directory.
            tracing::error!(err = %e, "the data directory is gone; stopping so that nothing more is lost");
            lost_dir = Some(e.to_owned());
            if !shutting_down {
                shutting_down = true;
                agent.input(clock.now(), Input::Shutdown);
            }
            forced = true;
        }
        let now = clock.now();
        if agent.agent.poll_timeout().is_some_and(|d| d <= now.mono) {
            agent.input(now, Input::Timeout);
        }
        if forced {
            break;
        }
    }
    // Flush storage: the series still waiting for room, then everything queued is
    // written and synced.
    for b in overflow.drain() {
        if writer.append(b).is_err() {
            break;
        }
    }
    let stats = writer.close().map_err(|e| format!("close the WAL: {e}"))?;
    feed_ack(&mut agent, clock.now(), &writer.drain_acks());
    // Remote write sends what the WAL holds, for up to the flush deadline (not after a
    // second stop request: what is left goes after the next start).
    if !remote.is_empty() && !forced {
        flush_remote(
            &mut remote,
            &mut net,
            &mut poll,
            &mut events,
            &resolved,
            &clock,
        );
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
    match lost_dir {
        Some(e) => Err(format!("stopped: {e}")),
        None => Ok(()),
    }
}

/// How long a shutdown waits for remote write to send what the WAL holds (what is left
/// is sent after the next start: progress is on disk).
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// After the agent and the WAL writer stopped: remote write sends the rest.
fn flush_remote(
    remote: &mut Remote,
    net: &mut Net,
    poll: &mut Poll,
    events: &mut Events,
    resolved: &crossbeam_channel::Receiver<net::Resolved>,
    clock: &Clock,
) {
    let end = clock.now().mono + FLUSH_DEADLINE;
    remote.close(clock.now());
    loop {
        let now = clock.now();
        while let Some((id, e)) = net.events.pop_front() {
            if id.0 >= crate::remote::ID_BASE {
                remote.on_net(now, id, e);
            }
        }
        remote.pump(
            now,
            &mut net::MioTransport {
                net,
                reg: poll.registry(),
            },
            &Vec::new,
        );
        if remote.is_idle() || now.mono >= end {
            break;
        }
        if !net.events.is_empty() {
            continue;
        }
        let until = remote.poll_timeout().map_or(end, |t| t.min(end));
        let timeout = until
            .saturating_since(now.mono)
            .max(Duration::from_millis(1));
        let timeout = if net.has_backlog() {
            Duration::ZERO
        } else {
            timeout
        };
        if poll.poll(events, Some(timeout)).is_err() {
            break;
        }
        net.new_turn();
        for ev in events.iter() {
            if let Token(t) = ev.token()
                && t >= CONN_BASE
            {
                net.ready(
                    poll.registry(),
                    t,
                    ev.is_readable() || ev.is_read_closed(),
                    ev.is_writable(),
                );
            }
        }
        net.drain_backlog(poll.registry());
        while let Ok(r) = resolved.try_recv() {
            net.resolved(poll.registry(), r);
        }
    }
    remote.abandon(&mut net::MioTransport {
        net,
        reg: poll.registry(),
    });
}

fn reload(agent: &mut Core, clock: &Clock, path: &Path) -> Result<(), String> {
    let r = config_source(path).and_then(|src| agent.reload(clock.now(), &src));
    match &r {
        Ok(()) => tracing::info!("configuration reloaded"),
        Err(e) => tracing::error!(err = %e, "reload failed; the running configuration stays"),
    }
    r
}

/// The first request to stop: discovery stops, scrapes in flight finish (each within its
/// timeout), pending end-of-run stale markers are dropped as Prometheus drops them. A
/// second one (signal or `/-/quit`) stops waiting: `forced` is set and the loop ends at
/// once, storage still written and synced.
fn shutdown(agent: &mut Core, clock: &Clock, shutting_down: &mut bool, forced: &mut bool) {
    if !*shutting_down {
        tracing::info!(
            "shutting down: finishing scrapes in flight (a second signal stops without waiting)"
        );
        *shutting_down = true;
        agent.input(clock.now(), Input::Shutdown);
    } else if !*forced {
        let in_flight = agent.agent.in_flight();
        tracing::warn!(
            in_flight,
            "second stop request: scrapes in flight are abandoned, remote write is not flushed"
        );
        *forced = true;
    }
}

fn feed_ack(agent: &mut Core, now: Now, a: &Ack) {
    if a.batches > 0 {
        agent.input(now, Input::Stored(a.as_input()));
    }
}

fn feed_net(agent: &mut Core, now: Now, id: RequestId, e: NetEvent) {
    e.with_event(|event| agent.input(now, Input::Io { id, event }));
}

/// Logs an agent event (with `tracing`), as the daemon does.
pub fn log_event(e: &Event) {
    match e {
        Event::ConfigApplied { jobs } => tracing::info!(jobs, "configuration applied"),
        Event::SdFailure(f) => {
            tracing::warn!(provider = %f.provider, err = %f.message, "discovery failed; its last targets stay")
        }
        Event::TargetSyncFailed { job, message } => {
            tracing::warn!(%job, err = %message, "target dropped")
        }
        Event::Health(h) => {
            let url = trawl_core::http::redact_url(&h.url, trawl_core::http::REDACTED);
            if h.error.is_empty() {
                tracing::debug!(job = %h.job, %url, health = ?h.health, "target health")
            } else {
                tracing::debug!(job = %h.job, %url, health = ?h.health, err = %h.error, "target health")
            }
        }
        Event::StorageFailing(err) => {
            tracing::error!(%err, "storage failing; scraping goes on, unstored samples are counted")
        }
        Event::StorageRecovered => tracing::info!("storage writes again"),
        Event::RestoreRefused => tracing::warn!("WAL series restored too late; new refs are used"),
        Event::StaleMarkersDropped(targets) => tracing::info!(
            targets,
            "end-of-run stale markers of removed targets not written at shutdown (as Prometheus)"
        ),
        other => tracing::debug!(event = ?other, "agent"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn deadlines_are_rounded_up_to_the_slack_grid() {
        let slack = Duration::from_millis(5);
        // Deadlines at 11 and 14 ms share the wake-up at 15 ms; 15 ms itself is on it.
        assert_eq!(
            wait_for(Instant(11 * MS), Instant(10 * MS), slack),
            Duration::from_millis(5)
        );
        assert_eq!(
            wait_for(Instant(14 * MS), Instant(10 * MS), slack),
            Duration::from_millis(5)
        );
        assert_eq!(
            wait_for(Instant(15 * MS), Instant(10 * MS), slack),
            Duration::from_millis(5)
        );
        assert_eq!(
            wait_for(Instant(15 * MS + 1), Instant(10 * MS), slack),
            Duration::from_millis(10)
        );
        // No slack: exactly; a deadline already passed still yields a short wait.
        assert_eq!(
            wait_for(Instant(11 * MS + 7), Instant(10 * MS), Duration::ZERO),
            Duration::from_nanos(MS + 7)
        );
        assert_eq!(
            wait_for(Instant(MS), Instant(10 * MS), slack),
            Duration::from_micros(100)
        );
    }
}
