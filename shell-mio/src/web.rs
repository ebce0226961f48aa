//! The daemon's HTTP API, served from the event loop: `/api/v1/targets` (Prometheus's
//! JSON shape, `state` and `scrapePool` parameters), `/metrics` (trawl's counters under
//! Prometheus's names and process metrics), `/api/v1/status/config` (secrets hidden),
//! `/-/healthy`, `/-/ready` and, with
//! `--web.enable-lifecycle`, `POST /-/reload` and `POST /-/quit`. One request per
//! connection; the response closes it.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Interest, Registry, Token};
use trawl_core::agent::Agent;
use trawl_core::api::{TargetState, targets_json};
use trawl_core::metrics::Metrics;
use trawl_io::storage::ReplayProgress;

use crate::webconfig::{Verdict, WebConfig};

/// The first listener's token; listener `i` has `LISTENER_BASE + i`.
pub(crate) const LISTENER_BASE: usize = 3;
/// Most `--web.listen-address`es.
pub const MAX_LISTENERS: usize = 32;

/// True if `t` is a listener's token.
pub(crate) fn is_listener(t: Token) -> bool {
    (LISTENER_BASE..LISTENER_BASE + MAX_LISTENERS).contains(&t.0)
}
/// Tokens of API connections: from here up to the HTTP client's.
pub(crate) const WEB_BASE: usize = 1 << 19;
const MAX_REQUEST: usize = 16 * 1024;
/// Response bytes all connections together may hold for clients that read slowly; a
/// response that would pass it is answered 503 instead (100 clients that never read a
/// large `/api/v1/targets` must not pin its size 100 times).
pub const MAX_BUFFERED: usize = 64 << 20;
/// Answers this small are never refused for [`MAX_BUFFERED`].
const SMALL: usize = 64 << 10;
const BUSY: &str = "too many responses waiting for slow clients; try again\n";

/// How long a response may wait for its client to read any of it.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How the API server bounds its clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebOptions {
    /// `--web.enable-lifecycle`: `POST /-/reload` and `/-/quit`.
    pub lifecycle: bool,
    /// `--web.read-timeout`: the most a client may take to send its request (and so the
    /// longest an idle connection stays open).
    pub read_timeout: Duration,
    /// `--web.max-connections`: connections open at once. At the cap, the connection
    /// that has been sending its request longest is closed for the new one, so clients
    /// that trickle their requests cannot lock the API out.
    pub max_connections: usize,
    /// `--web.external-url` (or the one derived from the host name and port).
    pub external_url: String,
    /// `--web.route-prefix`: every endpoint is under it (`/` for none).
    pub route_prefix: String,
    /// `--web.config.file`: TLS and basic auth (`crate::webconfig`).
    pub config_file: Option<std::path::PathBuf>,
    /// Every command-line flag with its value (`/api/v1/status/flags`).
    pub flags: BTreeMap<String, String>,
    /// The storage retention as Prometheus words it (`15d or 10GiB`), empty for none.
    pub retention: String,
}

impl Default for WebOptions {
    /// Prometheus's defaults: lifecycle off, 5 m read timeout, 512 connections.
    fn default() -> Self {
        WebOptions {
            lifecycle: false,
            read_timeout: Duration::from_secs(300),
            max_connections: 512,
            external_url: String::new(),
            route_prefix: "/".into(),
            config_file: None,
            flags: BTreeMap::new(),
            retention: String::new(),
        }
    }
}

/// What a request asks of the daemon beyond an answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    None,
    /// Reload the configuration and answer connection `t` with the outcome
    /// ([`Web::reloaded`]).
    Reload(usize),
    Quit,
}

#[derive(Debug)]
struct Conn {
    stream: mio::net::TcpStream,
    inbuf: Vec<u8>,
    /// The answer's head, then its body (shared with the cache and other connections).
    head: Vec<u8>,
    body: Option<Arc<[u8]>>,
    /// Bytes of head and body written.
    written: usize,
    /// Until when the request may arrive, then until when the client must read on.
    deadline: Instant,
    /// Accepted at (the oldest request still arriving goes first at the cap).
    since: Instant,
    /// The answer is being written.
    answering: bool,
    /// TLS, with `--web.config.file`'s `tls_server_config`.
    tls: Option<Box<rustls::ServerConnection>>,
}

/// Sends what rustls has ready for the client (until the socket would block).
fn flush_tls(
    tls: &mut rustls::ServerConnection,
    stream: &mut mio::net::TcpStream,
) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads request bytes: plain, or decrypted (driving the handshake as bytes come).
fn conn_read(
    stream: &mut mio::net::TcpStream,
    tls: Option<&mut rustls::ServerConnection>,
    buf: &mut [u8],
) -> io::Result<usize> {
    let Some(tls) = tls else {
        return stream.read(buf);
    };
    loop {
        match tls.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        match tls.read_tls(stream) {
            Ok(0) => return Ok(0),
            Ok(_) => {
                let r = tls.process_new_packets();
                // The handshake's answers, or the alert saying why it failed.
                flush_tls(tls, stream)?;
                r.map_err(io::Error::other)?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Writes answer bytes: plain, or through rustls (at most 16 KiB of plaintext held
/// there at once).
fn conn_write(
    stream: &mut mio::net::TcpStream,
    tls: Option<&mut rustls::ServerConnection>,
    data: &[u8],
) -> io::Result<usize> {
    let Some(tls) = tls else {
        return stream.write(data);
    };
    flush_tls(tls, stream)?;
    if tls.wants_write() {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    let n = tls.writer().write(&data[..data.len().min(16 << 10)])?;
    flush_tls(tls, stream)?;
    Ok(n)
}

/// The API server.
#[derive(Debug)]
pub(crate) struct Web {
    listeners: Vec<TcpListener>,
    conns: BTreeMap<usize, Conn>,
    next: usize,
    options: WebOptions,
    started: f64,
    /// Response bytes held for clients (see [`MAX_BUFFERED`]): heads, and each body
    /// once however many connections and cache entries share it.
    buffered: usize,
    /// Bodies held, by address: (length, holders), the cache counting as one.
    held: BTreeMap<usize, (usize, u32)>,
    /// Recent answers of the expensive endpoints, shared by the requests that ask for
    /// the same thing within [`CACHE_FOR`].
    cache: Vec<Cached>,
    /// When the expensive answers of the last second were built, and how long each
    /// took.
    builds: std::collections::VecDeque<(Instant, Duration)>,
    /// Connections closed for the cap, on a timeout, or refused for buffering.
    pub(crate) stats: WebStats,
    /// The WAL replay's progress (`/api/v1/status/walreplay`).
    progress: Arc<ReplayProgress>,
    /// The daemon is shutting down: `/-/ready` answers 503.
    pub(crate) stopping: bool,
    /// WAL corruptions repaired at start (`prometheus_tsdb_wal_corruptions_total`).
    pub(crate) corruptions: u64,
    /// `--web.config.file` as last loaded, and when its files were last looked at.
    web_config: Option<WebConfig>,
    config_checked: Instant,
    auth: crate::webconfig::Auth,
}

/// An answer kept for requests asking the same within [`CACHE_FOR`].
#[derive(Debug)]
struct Cached {
    /// Path and query.
    key: String,
    /// The agent's [`Agent::targets_version`] it was built at.
    version: u64,
    at: Instant,
    status: u16,
    ctype: &'static str,
    body: Arc<[u8]>,
}

/// How long an expensive answer (`/api/v1/targets`: 100 ms for 20,000 targets) serves
/// the requests that ask for the same thing (a burst of dashboards, or clients that
/// never read, share one body).
pub const CACHE_FOR: Duration = Duration::from_millis(250);
/// The share of each second the event loop may spend building expensive answers; past
/// it requests for them are answered 503 with `Retry-After` (the loop builds them, and
/// scrapes wait meanwhile). At 1,000 targets an answer takes about 5 ms, so only
/// clients far beyond any dashboard's polling meet the bound.
pub const BUILD_TIME_PER_SECOND: Duration = Duration::from_millis(250);
const CACHE_ENTRIES: usize = 8;

/// Paths whose answers cost time to build (they grow with the number of targets).
fn expensive(path: &str) -> bool {
    matches!(
        path,
        "/api/v1/targets" | "/api/v1/targets/metadata" | "/targets" | "/service-discovery"
    )
}

/// The API server's counters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WebStats {
    /// Connections closed to make room at `--web.max-connections`.
    pub(crate) evicted: u64,
    /// Connections closed on a read or write timeout.
    pub(crate) timed_out: u64,
    /// Requests answered 503 because responses already held [`MAX_BUFFERED`].
    pub(crate) refused: u64,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or(""), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// The process's own metrics, as client_golang's process collector reports them, from
/// `/proc/self` (Linux).
pub(crate) fn process_metrics(started: f64, m: &mut Metrics) {
    // The kernel's clock ticks and page size: 100 and 4096 on the Linux platforms
    // trawl builds for (reading them needs `sysconf`, unsafe code the workspace denies).
    const TICKS: f64 = 100.0;
    const PAGE: f64 = 4096.0;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name (which may hold spaces) in parentheses.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
        // utime, stime, vsize and rss are fields 14, 15, 23 and 24 of the line: 11,
        // 12, 20 and 21 after the name.
        m.counter(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            vec![],
            (field(11) + field(12)) / TICKS,
        );
        m.gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            vec![],
            field(20),
        );
        m.gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            vec![],
            field(21) * PAGE,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        m.gauge(
            "process_open_fds",
            "Number of open file descriptors.",
            vec![],
            fds.count() as f64,
        );
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
        // `Max open files  1024  1048576  files`: the soft limit; "unlimited" is Go's
        // largest uint64 as client_golang reports it.
        let soft = |prefix: &str| {
            limits
                .lines()
                .find(|l| l.starts_with(prefix))
                .and_then(|l| {
                    let v = l[prefix.len()..].split_whitespace().next()?;
                    Some(if v == "unlimited" {
                        u64::MAX as f64
                    } else {
                        v.parse::<f64>().ok()?
                    })
                })
        };
        if let Some(v) = soft("Max open files") {
            m.gauge(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                vec![],
                v,
            );
        }
        if let Some(v) = soft("Max address space") {
            m.gauge(
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                vec![],
                v,
            );
        }
    }
    m.gauge(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        vec![],
        started,
    );
}

/// `prometheus_build_info` with Prometheus's labels (`goversion` holds the Rust
/// compiler's version).
pub(crate) fn build_metrics(m: &mut Metrics) {
    use crate::build_info as b;
    m.gauge(
        "prometheus_build_info",
        "A metric with a constant '1' value labeled by version, revision, branch, goversion from which prometheus was built, and the goos and goarch for the build.",
        vec![
            ("branch", b::BRANCH.into()),
            ("goarch", crate::build_info::GOARCH.into()),
            ("goos", std::env::consts::OS.into()),
            ("goversion", b::RUSTC.into()),
            ("revision", b::REVISION.into()),
            ("tags", b::TAGS.into()),
            ("version", b::VERSION.into()),
        ],
        1.0,
    );
}

impl Web {
    /// Listens on every address (the first failure is the error, naming its address).
    pub(crate) fn bind(
        reg: &Registry,
        addrs: &[SocketAddr],
        options: WebOptions,
        progress: Arc<ReplayProgress>,
    ) -> Result<Web, String> {
        let web_config = match &options.config_file {
            Some(p) => {
                let c = WebConfig::load(p).map_err(|e| format!("--web.config.file: {e}"))?;
                c.warn_not_applied(p);
                Some(c)
            }
            None => None,
        };
        if addrs.len() > MAX_LISTENERS {
            return Err(format!(
                "--web.listen-address: at most {MAX_LISTENERS} addresses"
            ));
        }
        let mut listeners = Vec::new();
        for (i, &addr) in addrs.iter().enumerate() {
            let bound = TcpListener::bind(addr).or_else(|e| {
                // `:port` means every interface: IPv4's if the host has no IPv6.
                match addr {
                    SocketAddr::V6(v6) if v6.ip().is_unspecified() => {
                        TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], addr.port())))
                    }
                    _ => Err(e),
                }
            });
            let mut listener =
                bound.map_err(|e| format!("listen on {addr} (--web.listen-address): {e}"))?;
            reg.register(&mut listener, Token(LISTENER_BASE + i), Interest::READABLE)
                .map_err(|e| format!("listen on {addr}: {e}"))?;
            listeners.push(listener);
        }
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Ok(Web {
            listeners,
            conns: BTreeMap::new(),
            next: WEB_BASE,
            options,
            started,
            buffered: 0,
            held: BTreeMap::new(),
            cache: Vec::new(),
            builds: std::collections::VecDeque::new(),
            stats: WebStats::default(),
            progress,
            stopping: false,
            corruptions: 0,
            web_config,
            config_checked: Instant::now(),
            auth: crate::webconfig::Auth::default(),
        })
    }

    /// Reads `--web.config.file` again if it or a file it names changed (looked at once
    /// a second at most; `force` on SIGHUP). A file that no longer loads leaves the last
    /// good settings in force.
    pub(crate) fn refresh_config(&mut self, force: bool) {
        let (Some(path), Some(current)) = (&self.options.config_file, &self.web_config) else {
            return;
        };
        let now = Instant::now();
        if !force && now.duration_since(self.config_checked) < Duration::from_secs(1) {
            return;
        }
        self.config_checked = now;
        if !force && !current.changed() {
            return;
        }
        match WebConfig::load(path) {
            Ok(c) => {
                c.warn_not_applied(path);
                tracing::info!(file = %path.display(), "web configuration loaded");
                self.web_config = Some(c);
            }
            Err(e) => {
                tracing::error!(err = %e, "web configuration not reloaded; the last good one stays")
            }
        }
    }

    /// The addresses bound (the ports when 0 was asked for).
    pub(crate) fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Accepts what is waiting. At the connection cap the connection that has been
    /// sending its request longest makes room; if every connection is being answered,
    /// the new one waits in the kernel's queue until one closes.
    pub(crate) fn accept(&mut self, reg: &Registry) {
        for i in 0..self.listeners.len() {
            self.accept_on(reg, i);
        }
    }

    fn accept_on(&mut self, reg: &Registry, i: usize) {
        self.refresh_config(false);
        let tls_config = self.web_config.as_ref().and_then(|w| w.tls.clone());
        // Connections accepted in this call are never the ones evicted for the next.
        let mut fresh: Vec<usize> = Vec::new();
        loop {
            let full = self.conns.len() >= self.options.max_connections.max(1);
            let oldest = || {
                self.conns
                    .iter()
                    .filter(|(t, c)| !c.answering && !fresh.contains(t))
                    .min_by_key(|(_, c)| c.since)
                    .map(|(t, _)| *t)
            };
            if full && oldest().is_none() {
                // Every connection is being answered: new ones wait in the kernel's
                // queue until one closes.
                return;
            }
            let Some(listener) = self.listeners.get(i) else {
                return;
            };
            match listener.accept() {
                Ok((mut stream, _)) => {
                    if full && let Some(old) = oldest() {
                        self.stats.evicted += 1;
                        self.close(reg, old);
                    }
                    // A token no live connection has (the counter wraps).
                    let after = |t: usize| {
                        if t + 1 >= crate::net::CONN_BASE {
                            WEB_BASE
                        } else {
                            t + 1
                        }
                    };
                    let mut t = self.next;
                    while self.conns.contains_key(&t) {
                        t = after(t);
                    }
                    self.next = after(t);
                    fresh.push(t);
                    if reg
                        .register(
                            &mut stream,
                            Token(t),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .is_ok()
                    {
                        let now = Instant::now();
                        self.conns.insert(
                            t,
                            Conn {
                                stream,
                                inbuf: Vec::new(),
                                head: Vec::new(),
                                body: None,
                                written: 0,
                                deadline: now + self.options.read_timeout,
                                since: now,
                                answering: false,
                                tls: tls_config
                                    .as_ref()
                                    .and_then(|c| rustls::ServerConnection::new(c.clone()).ok())
                                    .map(Box::new),
                            },
                        );
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return,
            }
        }
    }

    /// The earliest deadline of a connection.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.conns.values().map(|c| c.deadline).min()
    }

    /// Closes the connections past their deadline; accepts again if that made room.
    pub(crate) fn timeouts(&mut self, reg: &Registry, now: Instant) {
        self.purge(now, None);
        let late: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in &late {
            self.stats.timed_out += 1;
            self.close(reg, *t);
        }
        if !late.is_empty() {
            self.accept(reg);
        }
    }

    pub(crate) fn ready(
        &mut self,
        reg: &Registry,
        t: usize,
        agent: Option<&Agent>,
        config: &str,
        extra_metrics: &dyn Fn() -> Metrics,
    ) -> Action {
        let mut action = Action::None;
        let Some(c) = self.conns.get_mut(&t) else {
            return action;
        };
        if !c.answering {
            if let Some(tls) = c.tls.as_deref_mut()
                && flush_tls(tls, &mut c.stream).is_err()
            {
                self.close(reg, t);
                self.accept(reg);
                return action;
            }
            let mut buf = [0u8; 4096];
            loop {
                match conn_read(&mut c.stream, c.tls.as_deref_mut(), &mut buf) {
                    Ok(0) => {
                        self.close(reg, t);
                        self.accept(reg);
                        return action;
                    }
                    Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.close(reg, t);
                        self.accept(reg);
                        return action;
                    }
                }
                if c.inbuf.len() > MAX_REQUEST {
                    break;
                }
            }
            let inbuf = std::mem::take(&mut c.inbuf);
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            let (status, ctype, body, head_only) = match req.parse(&inbuf) {
                Ok(httparse::Status::Partial) if inbuf.len() <= MAX_REQUEST => {
                    c.inbuf = inbuf;
                    return action;
                }
                Ok(httparse::Status::Complete(_)) => {
                    // `basic_auth_users`: every path, as exporter-toolkit guards them.
                    if let Some(users) = self.web_config.as_ref().map(|w| &w.users)
                        && !users.is_empty()
                    {
                        let header = req
                            .headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case("authorization"))
                            .map(|h| h.value);
                        match self.auth.check(users, header) {
                            Verdict::Ok => {}
                            Verdict::Denied => {
                                let body: Arc<[u8]> = Arc::from(&b"Unauthorized\n"[..]);
                                self.answer_with(
                                    reg,
                                    t,
                                    401,
                                    "text/plain; charset=utf-8",
                                    body,
                                    false,
                                    "WWW-Authenticate: Basic\r\n",
                                );
                                return action;
                            }
                            Verdict::Busy => {
                                self.stats.refused += 1;
                                let body: Arc<[u8]> =
                                    Arc::from(&b"too many password checks; try again\n"[..]);
                                self.answer_with(
                                    reg,
                                    t,
                                    503,
                                    "text/plain; charset=utf-8",
                                    body,
                                    false,
                                    "",
                                );
                                return action;
                            }
                        }
                    }
                    let method = req.method.unwrap_or("GET");
                    let target = req.path.unwrap_or("/");
                    let (path, q) = target.split_once('?').unwrap_or((target, ""));
                    // `--web.route-prefix`: `/` leads to it, anything outside is not
                    // found, as 3.x's router with a prefix.
                    let prefix = self.options.route_prefix.clone();
                    let path = if prefix == "/" {
                        path
                    } else if path == "/" {
                        self.redirect(reg, t, &format!("{prefix}/"));
                        return action;
                    } else {
                        match path.strip_prefix(prefix.as_str()) {
                            Some("") => "/",
                            Some(rest) if rest.starts_with('/') => rest,
                            _ => "/404",
                        }
                    };
                    if path == "/" {
                        // The targets page is the home page.
                        let p = if prefix == "/" { "" } else { prefix.as_str() };
                        self.redirect(reg, t, &format!("{p}/targets"));
                        return action;
                    }
                    // HEAD is GET without the body (as Go's server answers it).
                    let get = if method == "HEAD" { "GET" } else { method };
                    let head_only = method == "HEAD";
                    let costly = get == "GET" && expensive(path) && agent.is_some();
                    let version = agent.map_or(0, Agent::targets_version);
                    let now = Instant::now();
                    if costly {
                        // Expired or outdated answers go before anything counts what
                        // they hold; what is left may serve this request.
                        self.purge(now, Some(version));
                        if let Some((status, ctype, body)) = self.cached(target) {
                            self.answer_shared(reg, t, status, ctype, body, head_only);
                            return action;
                        }
                    }
                    let busy = costly && (self.buffered >= MAX_BUFFERED || !self.may_build(now));
                    let (s, ct, b, a) = if busy {
                        // Not even built: slow clients already hold all there is, or the
                        // loop has built enough of these this second.
                        self.stats.refused += 1;
                        (
                            503,
                            "text/plain; charset=utf-8",
                            BUSY.to_owned(),
                            Action::None,
                        )
                    } else {
                        let ctx = Ctx {
                            agent,
                            config,
                            options: &self.options,
                            started: self.started,
                            extra_metrics,
                            web: self.stats,
                            progress: &self.progress,
                            stopping: self.stopping,
                            corruptions: self.corruptions,
                        };
                        let answer = route(get, path, &query(q), &ctx);
                        if costly {
                            self.builds.push_back((now, now.elapsed()));
                        }
                        answer
                    };
                    if a == Action::Reload(0) {
                        // Answered once the reload is done.
                        if let Some(c) = self.conns.get_mut(&t) {
                            c.answering = true;
                            c.deadline = now + WRITE_TIMEOUT;
                        }
                        return Action::Reload(t);
                    }
                    action = a;
                    if costly && !busy && s == 200 {
                        let body: Arc<[u8]> = Arc::from(b.into_bytes());
                        self.remember(target, version, now, s, ct, body.clone());
                        self.answer_shared(reg, t, s, ct, body, head_only);
                        return action;
                    }
                    (s, ct, b, head_only)
                }
                _ => (400, "text/plain", "bad request\n".to_owned(), false),
            };
            self.answer(reg, t, status, ctype, &body, head_only);
            return action;
        }
        self.write(reg, t);
        action
    }

    /// The cached answer for `key` (after [`Web::purge`], so fresh and of the current
    /// target set: a new or removed target shows at once; health and last scrapes may be
    /// up to [`CACHE_FOR`] old).
    fn cached(&self, key: &str) -> Option<(u16, &'static str, Arc<[u8]>)> {
        self.cache
            .iter()
            .find(|c| c.key == key)
            .map(|c| (c.status, c.ctype, c.body.clone()))
    }

    /// True if the builds of the last second left time for another one.
    fn may_build(&mut self, now: Instant) -> bool {
        while self
            .builds
            .front()
            .is_some_and(|b| now.duration_since(b.0) >= Duration::from_secs(1))
        {
            self.builds.pop_front();
        }
        self.builds.iter().map(|b| b.1).sum::<Duration>() < BUILD_TIME_PER_SECOND
    }

    /// Keeps an answer for [`CACHE_FOR`] (after [`Web::purge`]), in place of the oldest
    /// entry when the cache is full.
    fn remember(
        &mut self,
        key: &str,
        version: u64,
        at: Instant,
        status: u16,
        ctype: &'static str,
        body: Arc<[u8]>,
    ) {
        self.hold(&body);
        let entry = Cached {
            key: key.to_owned(),
            version,
            at,
            status,
            ctype,
            body,
        };
        if self.cache.len() < CACHE_ENTRIES {
            self.cache.push(entry);
            return;
        }
        let oldest = self
            .cache
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.at)
            .map_or(0, |(i, _)| i);
        let old = std::mem::replace(&mut self.cache[oldest], entry);
        self.release(&old.body);
    }

    /// Drops cached answers older than [`CACHE_FOR`] and, given the agent's targets
    /// version, those built for another target set.
    fn purge(&mut self, now: Instant, version: Option<u64>) {
        let (keep, gone): (Vec<Cached>, Vec<Cached>) =
            std::mem::take(&mut self.cache).into_iter().partition(|c| {
                now.duration_since(c.at) < CACHE_FOR && version.is_none_or(|v| v == c.version)
            });
        self.cache = keep;
        for c in gone {
            self.release(&c.body);
        }
    }

    /// One more holder of `body`: its bytes count once, with the first.
    fn hold(&mut self, body: &Arc<[u8]>) {
        let e = self
            .held
            .entry(Arc::as_ptr(body) as *const u8 as usize)
            .or_insert((body.len(), 0));
        if e.1 == 0 {
            self.buffered += body.len();
        }
        e.1 += 1;
    }

    /// One holder less: the bytes no longer count once nobody holds the body.
    fn release(&mut self, body: &Arc<[u8]>) {
        let key = Arc::as_ptr(body) as *const u8 as usize;
        if let Some(e) = self.held.get_mut(&key) {
            e.1 = e.1.saturating_sub(1);
            if e.1 == 0 {
                self.buffered = self.buffered.saturating_sub(e.0);
                self.held.remove(&key);
            }
        }
    }

    /// Answers a `POST /-/reload` on `t` with the reload's outcome: 200, or 500 with the
    /// error, as Prometheus answers.
    pub(crate) fn reloaded(&mut self, reg: &Registry, t: usize, result: &Result<(), String>) {
        let text = "text/plain; charset=utf-8";
        match result {
            Ok(()) => self.answer(reg, t, 200, text, "", false),
            Err(e) => self.answer(
                reg,
                t,
                500,
                text,
                &format!("failed to reload config: {e}\n"),
                false,
            ),
        }
    }

    /// Queues an answer on `t` and starts writing it; a 503 instead if responses
    /// already hold [`MAX_BUFFERED`].
    fn answer(
        &mut self,
        reg: &Registry,
        t: usize,
        mut status: u16,
        ctype: &'static str,
        body: &str,
        head_only: bool,
    ) {
        let mut body = body;
        // Small answers (health checks, errors, a reload's outcome) always go, and so
        // does a HEAD answer, which holds no body.
        if !head_only && body.len() > SMALL && self.buffered + body.len() > MAX_BUFFERED {
            self.stats.refused += 1;
            status = 503;
            body = BUSY;
        }
        let body: Arc<[u8]> = Arc::from(body.as_bytes());
        self.answer_shared(reg, t, status, ctype, body, head_only);
    }

    /// Queues `body` (perhaps shared) on `t` and starts writing.
    fn answer_shared(
        &mut self,
        reg: &Registry,
        t: usize,
        status: u16,
        ctype: &'static str,
        body: Arc<[u8]>,
        head_only: bool,
    ) {
        self.answer_with(reg, t, status, ctype, body, head_only, "");
    }

    /// A `302 Found` to `location` on `t`.
    fn redirect(&mut self, reg: &Registry, t: usize, location: &str) {
        let body: Arc<[u8]> = Arc::from(&b""[..]);
        let head = format!("Location: {location}\r\n");
        self.answer_with(reg, t, 302, "text/html; charset=utf-8", body, false, &head);
    }

    /// [`Web::answer_shared`] with more header lines (each ending in CRLF).
    #[allow(clippy::too_many_arguments)]
    fn answer_with(
        &mut self,
        reg: &Registry,
        t: usize,
        status: u16,
        ctype: &'static str,
        body: Arc<[u8]>,
        head_only: bool,
        extra: &str,
    ) {
        if !self.conns.contains_key(&t) {
            return;
        }
        let reason = match status {
            200 => "OK",
            302 => "Found",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "",
        };
        let retry = if status == 503 {
            "Retry-After: 1\r\n"
        } else {
            ""
        };
        let configured: String = self
            .web_config
            .as_ref()
            .map(|w| {
                w.headers
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}\r\n"))
                    .collect()
            })
            .unwrap_or_default();
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{retry}{extra}{configured}Connection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        self.buffered += head.len();
        let body = if head_only {
            None
        } else {
            self.hold(&body);
            Some(body)
        };
        if let Some(c) = self.conns.get_mut(&t) {
            c.head = head;
            c.body = body;
            c.written = 0;
            c.answering = true;
            c.deadline = Instant::now() + WRITE_TIMEOUT;
        }
        self.write(reg, t);
    }

    /// Writes what the client takes; closes the connection once all is written.
    fn write(&mut self, reg: &Registry, t: usize) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        if c.head.is_empty() {
            // A reload still under way.
            return;
        }
        let before = c.written;
        let total = c.head.len() + c.body.as_ref().map_or(0, |b| b.len());
        while c.written < total {
            let rest = match c.written.checked_sub(c.head.len()) {
                None => &c.head[c.written..],
                Some(at) => c.body.as_ref().map_or(&[][..], |b| &b[at..]),
            };
            match conn_write(&mut c.stream, c.tls.as_deref_mut(), rest) {
                Ok(0) => break,
                Ok(n) => c.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if c.written > before {
                        c.deadline = Instant::now() + WRITE_TIMEOUT;
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if let Some(tls) = c.tls.as_deref_mut() {
            // The end of the answer, then the closing alert, before the socket closes.
            tls.send_close_notify();
            if flush_tls(tls, &mut c.stream).is_ok() && tls.wants_write() {
                return;
            }
        }
        self.close(reg, t);
        self.accept(reg);
    }

    fn close(&mut self, reg: &Registry, t: usize) {
        if let Some(mut c) = self.conns.remove(&t) {
            self.buffered = self.buffered.saturating_sub(c.head.len());
            if let Some(b) = c.body.take() {
                self.release(&b);
            }
            let _ = reg.deregister(&mut c.stream);
        }
    }
}

/// What a request may look at.
struct Ctx<'a> {
    /// The agent, once the WAL is replayed and the configuration applied.
    agent: Option<&'a Agent>,
    config: &'a str,
    options: &'a WebOptions,
    started: f64,
    /// More `/metrics` families (WAL, remote write, sync times).
    extra_metrics: &'a dyn Fn() -> Metrics,
    /// The API server's own counters.
    web: WebStats,
    progress: &'a ReplayProgress,
    stopping: bool,
    corruptions: u64,
}

/// Seconds since the epoch as Go's JSON writes a `time.Time` (UTC, RFC 3339 with
/// nanoseconds trimmed).
fn go_time(secs: f64) -> String {
    trawl_core::time::UnixNanos((secs * 1e9) as i64).to_rfc3339()
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Every self-metric: the agent's, the process's, the build's, the API server's and the
/// shell's (WAL, remote write, sync times).
fn all_metrics(ctx: &Ctx<'_>) -> Metrics {
    let mut m = ctx.agent.map(Agent::metrics).unwrap_or_default();
    process_metrics(ctx.started, &mut m);
    build_metrics(&mut m);
    for (name, help, value) in [
        (
            "trawl_web_connections_evicted_total",
            "API connections closed to make room at --web.max-connections.",
            ctx.web.evicted,
        ),
        (
            "trawl_web_connections_timed_out_total",
            "API connections closed on a read or write timeout.",
            ctx.web.timed_out,
        ),
        (
            "trawl_web_responses_refused_total",
            "API requests answered 503 because responses held for slow clients reached their bound.",
            ctx.web.refused,
        ),
    ] {
        m.counter(name, help, vec![], value as f64);
    }
    m.counter(
        "prometheus_tsdb_wal_corruptions_total",
        "Total number of WAL corruptions.",
        vec![],
        ctx.corruptions as f64,
    );
    m.gauge(
        "prometheus_ready",
        "Whether Prometheus startup was fully completed and the server is ready for normal operation.",
        vec![],
        if ctx.agent.is_some() && !ctx.stopping { 1.0 } else { 0.0 },
    );
    if ctx.agent.is_some() {
        m.extend((ctx.extra_metrics)());
    }
    m
}

/// `/api/v1/status/buildinfo`'s data (3.x's `PrometheusVersion`).
fn build_info() -> serde_json::Value {
    use crate::build_info as b;
    serde_json::json!({
        "version": b::VERSION,
        "revision": b::REVISION,
        "branch": b::BRANCH,
        "buildUser": "",
        "buildDate": b::BUILD_DATE,
        "goVersion": b::RUSTC,
    })
}

/// `/api/v1/status/runtimeinfo`'s data (3.x's `RuntimeInfo`).
fn runtime_info(ctx: &Ctx<'_>, agent: &Agent) -> serde_json::Value {
    let (ok, at) = agent.config_status();
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    serde_json::json!({
        "startTime": go_time(ctx.started),
        "CWD": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
        "hostname": crate::daemon::hostname(),
        "serverTime": go_time(now_secs()),
        "reloadConfigSuccess": ok,
        // Whole seconds, as 3.x reads it back from its metric.
        "lastConfigTime": trawl_core::time::UnixNanos(at.0 - at.0.rem_euclid(1_000_000_000)).to_rfc3339(),
        "corruptionCount": ctx.corruptions,
        // Go's runtime figures, in trawl's terms: threads, CPUs to use, no memory
        // limit (Go's default is the largest int64), no GC settings.
        "goroutineCount": threads,
        "GOMAXPROCS": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "GOMEMLIMIT": i64::MAX,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": ctx.options.retention,
    })
}

/// A JSON object's fields as rows of text.
fn rows(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The answer to a request: status, content type, body, what the daemon must do.
type Answer = (u16, &'static str, String, Action);

fn route(method: &str, path: &str, q: &BTreeMap<String, String>, ctx: &Ctx<'_>) -> Answer {
    let json = "application/json";
    let text = "text/plain; charset=utf-8";
    let param = |k: &str| q.get(k).map(String::as_str);
    let api = |r: Result<String, trawl_core::api::ApiError>| match r {
        Ok(b) => (200, json, b, Action::None),
        Err(e) => (e.status, json, e.body, Action::None),
    };
    // Always served, also while starting and stopping (3.x serves these unwrapped by
    // its readiness check).
    match (method, path) {
        ("GET", "/-/healthy") => {
            return (200, text, "trawl is Healthy.\n".into(), Action::None);
        }
        ("GET", "/api/v1/status/walreplay") => {
            use std::sync::atomic::Ordering::Relaxed;
            let p = ctx.progress;
            let body = trawl_core::api::success(serde_json::json!({
                "min": p.min.load(Relaxed),
                "max": p.max.load(Relaxed),
                "current": p.current.load(Relaxed),
            }));
            return (200, json, body, Action::None);
        }
        ("GET", "/metrics") => {
            let m = all_metrics(ctx);
            return (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                m.render(),
                Action::None,
            );
        }
        _ => {}
    }
    // Everything else waits for readiness, as 3.x's `testReady`.
    let agent = match ctx.agent {
        Some(a) if !ctx.stopping || !matches!(path, "/-/ready") => a,
        _ => return (503, text, "Service Unavailable".into(), Action::None),
    };
    let lifecycle = ctx.options.lifecycle;
    let html = "text/html; charset=utf-8";
    let prefix = ctx.options.route_prefix.as_str();
    match (method, path) {
        ("GET", "/-/ready") => (200, text, "trawl is Ready.\n".into(), Action::None),
        ("POST" | "PUT", "/-/reload") | ("POST" | "PUT", "/-/quit") if !lifecycle => (
            403,
            text,
            "Lifecycle API is not enabled.\n".into(),
            Action::None,
        ),
        ("POST" | "PUT", "/-/reload") => (200, text, String::new(), Action::Reload(0)),
        ("POST" | "PUT", "/-/quit") => (
            200,
            text,
            "Requesting termination... Goodbye!\n".into(),
            Action::Quit,
        ),
        (_, "/-/reload" | "/-/quit") => (
            405,
            text,
            "Only POST or PUT requests allowed\n".into(),
            Action::None,
        ),
        ("GET", "/api/v1/targets") => {
            let state = TargetState::parse(param("state").unwrap_or("any"));
            let pool = param("scrapePool").filter(|p| !p.is_empty());
            (200, json, targets_json(agent, state, pool), Action::None)
        }
        ("GET", "/api/v1/targets/metadata") => api(trawl_core::api::target_metadata_json(
            agent,
            param("match_target"),
            param("metric"),
            param("limit"),
        )),
        ("GET", "/api/v1/targets/relabel_steps") => api(trawl_core::api::relabel_steps_json(
            agent,
            param("scrapePool"),
            param("labels"),
        )),
        ("GET", "/api/v1/scrape_pools") => (
            200,
            json,
            trawl_core::api::scrape_pools_json(agent),
            Action::None,
        ),
        ("GET", "/api/v1/status/config") => (
            200,
            json,
            trawl_core::api::config_json(ctx.config),
            Action::None,
        ),
        ("GET", "/api/v1/status/flags") => (
            200,
            json,
            trawl_core::api::success(serde_json::json!(ctx.options.flags)),
            Action::None,
        ),
        ("GET", "/api/v1/status/buildinfo") => (
            200,
            json,
            trawl_core::api::success(build_info()),
            Action::None,
        ),
        ("GET", "/api/v1/status/runtimeinfo") => (
            200,
            json,
            trawl_core::api::success(runtime_info(ctx, agent)),
            Action::None,
        ),
        ("GET", "/targets") => (
            200,
            html,
            crate::pages::targets(agent, q, prefix, (now_secs() * 1e9) as i64),
            Action::None,
        ),
        ("GET", "/service-discovery") => (
            200,
            html,
            crate::pages::service_discovery(agent, q, prefix),
            Action::None,
        ),
        ("GET", "/config") => (
            200,
            html,
            crate::pages::config(ctx.config, prefix),
            Action::None,
        ),
        ("GET", "/flags") => (
            200,
            html,
            crate::pages::flags(&ctx.options.flags, prefix),
            Action::None,
        ),
        ("GET", "/status") => {
            let m = all_metrics(ctx);
            let body = crate::pages::status(
                &rows(&build_info()),
                &rows(&runtime_info(ctx, agent)),
                &m,
                prefix,
            );
            (200, html, body, Action::None)
        }
        _ => (404, text, "404 page not found\n".into(), Action::None),
    }
}
