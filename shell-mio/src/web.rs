//! The daemon's HTTP API, served from the event loop: `/api/v1/targets` (Prometheus's
//! JSON shape, `state` and `scrapePool` parameters), `/metrics` (trawl's counters under
//! Prometheus's names and process metrics), `/api/v1/status/config` (secrets hidden),
//! `/-/healthy`, `/-/ready` and, with
//! `--web.enable-lifecycle`, `POST /-/reload` and `POST /-/quit`. One request per
//! connection; the response closes it.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpListener;
use mio::{Interest, Registry, Token};
use trawl_core::agent::{Agent, MetricSample};
use trawl_core::api::{TargetState, metrics_text, targets_json};

/// The listener's token.
pub(crate) const LISTENER: Token = Token(3);
/// Tokens of API connections: from here up to the HTTP client's.
pub(crate) const WEB_BASE: usize = 1 << 19;
const MAX_REQUEST: usize = 16 * 1024;

/// What a request asks of the daemon beyond an answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    None,
    Reload,
    Quit,
}

#[derive(Debug)]
struct Conn {
    stream: mio::net::TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    written: usize,
}

/// The API server.
#[derive(Debug)]
pub(crate) struct Web {
    listener: TcpListener,
    conns: BTreeMap<usize, Conn>,
    next: usize,
    lifecycle: bool,
    started: f64,
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

/// The process's own metrics, from `/proc/self` (Linux).
fn process_metrics(started: f64) -> Vec<MetricSample> {
    let mut m = Vec::new();
    let mut push = |name: &'static str, value: f64| {
        m.push(MetricSample {
            name,
            labels: Vec::new(),
            value,
        })
    };
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name (which may hold spaces) in parentheses.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
        let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
        push("process_cpu_seconds_total", (ticks(11) + ticks(12)) / 100.0);
    }
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        let pages = statm
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap_or(0.0);
        push("process_resident_memory_bytes", pages * 4096.0);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        push("process_open_fds", fds.count() as f64);
    }
    push("process_start_time_seconds", started);
    m
}

impl Web {
    pub(crate) fn bind(reg: &Registry, addr: SocketAddr, lifecycle: bool) -> io::Result<Web> {
        let mut listener = TcpListener::bind(addr)?;
        reg.register(&mut listener, LISTENER, Interest::READABLE)?;
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Ok(Web {
            listener,
            conns: BTreeMap::new(),
            next: WEB_BASE,
            lifecycle,
            started,
        })
    }

    /// The address bound (the port when 0 was asked for).
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub(crate) fn accept(&mut self, reg: &Registry) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let t = self.next;
                    self.next += 1;
                    if self.next >= crate::net::CONN_BASE {
                        self.next = WEB_BASE;
                    }
                    if reg
                        .register(
                            &mut stream,
                            Token(t),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .is_ok()
                    {
                        self.conns.insert(
                            t,
                            Conn {
                                stream,
                                inbuf: Vec::new(),
                                out: Vec::new(),
                                written: 0,
                            },
                        );
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return,
            }
        }
    }

    pub(crate) fn ready(
        &mut self,
        reg: &Registry,
        t: usize,
        agent: &Agent,
        config: &str,
        extra_metrics: &dyn Fn() -> String,
    ) -> Action {
        let mut action = Action::None;
        let Some(c) = self.conns.get_mut(&t) else {
            return action;
        };
        if c.out.is_empty() {
            let mut buf = [0u8; 4096];
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        self.close(reg, t);
                        return action;
                    }
                    Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.close(reg, t);
                        return action;
                    }
                }
                if c.inbuf.len() > MAX_REQUEST {
                    break;
                }
            }
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            let (status, ctype, body) = match req.parse(&c.inbuf) {
                Ok(httparse::Status::Partial) if c.inbuf.len() <= MAX_REQUEST => return action,
                Ok(httparse::Status::Complete(_)) => {
                    let method = req.method.unwrap_or("GET");
                    let target = req.path.unwrap_or("/");
                    let (path, q) = target.split_once('?').unwrap_or((target, ""));
                    let ctx = Ctx {
                        agent,
                        config,
                        lifecycle: self.lifecycle,
                        started: self.started,
                        extra_metrics,
                    };
                    let (s, ct, b, a) = route(method, path, &query(q), &ctx);
                    action = a;
                    (s, ct, b)
                }
                _ => (400, "text/plain", "bad request\n".to_owned()),
            };
            let reason = match status {
                200 => "OK",
                400 => "Bad Request",
                403 => "Forbidden",
                404 => "Not Found",
                405 => "Method Not Allowed",
                _ => "",
            };
            c.out = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes();
        }
        while c.written < c.out.len() {
            match c.stream.write(&c.out[c.written..]) {
                Ok(n) => c.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return action,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.close(reg, t);
        action
    }

    fn close(&mut self, reg: &Registry, t: usize) {
        if let Some(mut c) = self.conns.remove(&t) {
            let _ = reg.deregister(&mut c.stream);
        }
    }
}

/// What a request may look at.
struct Ctx<'a> {
    agent: &'a Agent,
    config: &'a str,
    lifecycle: bool,
    started: f64,
    /// More `/metrics` text (remote write's queues).
    extra_metrics: &'a dyn Fn() -> String,
}

fn route(
    method: &str,
    path: &str,
    q: &BTreeMap<String, String>,
    ctx: &Ctx<'_>,
) -> (u16, &'static str, String, Action) {
    let (agent, lifecycle, started) = (ctx.agent, ctx.lifecycle, ctx.started);
    let json = "application/json";
    let text = "text/plain; charset=utf-8";
    match (method, path) {
        ("GET" | "HEAD", "/-/healthy") => (200, text, "trawl is Healthy.\n".into(), Action::None),
        ("GET" | "HEAD", "/-/ready") => (200, text, "trawl is Ready.\n".into(), Action::None),
        ("POST" | "PUT", "/-/reload") | ("POST" | "PUT", "/-/quit") if !lifecycle => (
            403,
            text,
            "Lifecycle API is not enabled.\n".into(),
            Action::None,
        ),
        ("POST" | "PUT", "/-/reload") => (200, text, String::new(), Action::Reload),
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
            let state = TargetState::parse(q.get("state").map_or("any", String::as_str));
            let pool = q
                .get("scrapePool")
                .map(String::as_str)
                .filter(|p| !p.is_empty());
            (200, json, targets_json(agent, state, pool), Action::None)
        }
        ("GET", "/api/v1/status/config") => (
            200,
            json,
            trawl_core::api::config_json(ctx.config),
            Action::None,
        ),
        ("GET", "/metrics") => {
            let mut m = agent.metrics();
            m.extend(process_metrics(started));
            let mut body = metrics_text(&m);
            body.push_str(&(ctx.extra_metrics)());
            (
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                body,
                Action::None,
            )
        }
        _ => (404, text, "404 page not found\n".into(), Action::None),
    }
}
