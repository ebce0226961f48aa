//! Test support for trawl: a scripted shell ([`Harness`]) for scenario tests, and the
//! deterministic simulator ([`sim`]).

pub mod cloud;
pub mod consul;
pub mod digitalocean;
pub mod docker;
pub mod eureka;
pub mod hetzner;
pub mod ionos;
pub mod kube;
pub mod lightsail;
pub mod linode;
pub mod load;
pub mod marathon;
pub mod nomad;
pub mod puppetdb;
pub mod pycheck;
pub mod scaleway;
pub mod sim;
pub mod vultr;
pub mod zookeeper;

use std::collections::BTreeMap;
use std::time::Duration;

use trawl_core::agent::{Agent, AgentOptions, Event, Input, Output};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::io::{IoEvent, IoOp, RequestId};
use trawl_core::time::{Instant, Now, UnixNanos};

/// The fake servers' accept loop: each connection served by `serve` on a thread of its
/// own, until `stopped` (checked at each connection; the server's `Drop` sets it and
/// connects once to wake the loop).
pub fn accept_loop<S: Send + Sync + 'static>(
    listener: std::net::TcpListener,
    shared: std::sync::Arc<S>,
    stopped: fn(&S) -> bool,
    serve: fn(std::net::TcpStream, &S),
) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stopped(&shared) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let s = shared.clone();
            std::thread::spawn(move || serve(conn, &s));
        }
    });
}

/// Reads one HTTP/1.1 request head for the fake servers: the request target and the
/// headers (names lower-cased); `None` at the end of the connection or for a head that
/// is not HTTP or is larger than 64 KiB.
pub fn read_request_head<R: std::io::Read>(
    r: &mut std::io::BufReader<R>,
) -> Option<(String, Vec<(String, String)>)> {
    read_request(r).map(|(_, target, headers)| (target, headers))
}

/// A request head: method, target, headers (names lower-cased).
pub type RequestHead = (String, String, Vec<(String, String)>);

/// [`read_request_head`] with the method.
pub fn read_request<R: std::io::Read>(r: &mut std::io::BufReader<R>) -> Option<RequestHead> {
    use std::io::{BufRead, Read};
    const HEAD_LIMIT: usize = 64 << 10;
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = r
            .by_ref()
            .take(HEAD_LIMIT as u64)
            .read_until(b'\n', &mut line)
            .ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if head.len() > HEAD_LIMIT {
            return None;
        }
    }
    let mut hs = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut hs);
    req.parse(&head).ok()?;
    let method = req.method?.to_owned();
    let target = req.path?.to_owned();
    let headers = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    Some((method, target, headers))
}

/// Parses a config as if read from `/etc/trawl/prometheus.yml`.
pub fn config(yaml: &str) -> Config {
    match Config::parse(yaml, &ParseOptions::for_path("/etc/trawl/prometheus.yml")) {
        Ok(c) => c,
        Err(e) => panic!("test config does not parse: {e}"),
    }
}

/// The start of simulated time: a round wall-clock second, so phases are easy to read.
pub const T0_WALL: i64 = 1_700_000_000_000_000_000;

/// A shell driven by a test: it keeps time, collects outputs and answers requests when
/// told to.
pub struct Harness {
    /// The agent under test.
    pub agent: Agent,
    /// Current time.
    pub now: Now,
    /// Every output so far, in order.
    pub log: Vec<(Now, Output)>,
    /// Operations started and not yet finished or cancelled.
    pub pending: BTreeMap<RequestId, IoOp>,
    /// Wall time at monotonic zero (ns).
    wall0: i64,
}

impl Harness {
    /// An agent on `yaml` at time zero.
    pub fn new(yaml: &str, options: AgentOptions) -> Harness {
        Harness::starting_at(yaml, options, T0_WALL)
    }

    /// An agent on `yaml` whose wall clock reads `wall` (ns since the epoch) at time zero.
    pub fn starting_at(yaml: &str, options: AgentOptions, wall: i64) -> Harness {
        let now = Now::new(Instant(0), UnixNanos(wall));
        let agent = Agent::new(config(yaml), options, now);
        let mut h = Harness {
            agent,
            now,
            log: Vec::new(),
            pending: BTreeMap::new(),
            wall0: wall,
        };
        h.drain();
        h
    }

    /// Collects the outputs, tracking pending operations; returns the new ones.
    pub fn drain(&mut self) -> Vec<Output> {
        let mut new = Vec::new();
        while let Some(o) = self.agent.poll_output() {
            match &o {
                Output::Start { id, op } => {
                    assert!(
                        self.pending.insert(*id, op.clone()).is_none(),
                        "id {id} reused"
                    );
                }
                Output::Cancel(id) => {
                    self.pending.remove(id);
                }
                Output::Event(_) | Output::Append(_) | Output::Send { .. } => {}
            }
            self.log.push((self.now, o.clone()));
            new.push(o);
        }
        new
    }

    /// Feeds an input at the current time and drains.
    pub fn input(&mut self, input: Input<'_>) -> Vec<Output> {
        self.agent.handle_input(self.now, input);
        self.drain()
    }

    /// Advances time to `t`, firing every deadline on the way.
    pub fn advance_to(&mut self, t: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        while let Some(d) = self.agent.poll_timeout() {
            if d > t {
                break;
            }
            self.set_time(d.max(self.now.mono));
            out.extend(self.input(Input::Timeout));
        }
        self.set_time(t.max(self.now.mono));
        out
    }

    /// Advances deadline by deadline until a scrape request is pending (at most `max`).
    pub fn advance_until_scrape(&mut self, max: Duration) -> Vec<(RequestId, String)> {
        let end = self.now.mono + max;
        while self.pending_scrapes().is_empty() {
            match self.agent.poll_timeout() {
                Some(d) if d <= end => {
                    self.set_time(d.max(self.now.mono));
                    self.input(Input::Timeout);
                }
                _ => {
                    self.set_time(end);
                    break;
                }
            }
        }
        self.pending_scrapes()
    }

    /// Advances time by `d`.
    pub fn advance(&mut self, d: Duration) -> Vec<Output> {
        self.advance_to(self.now.mono + d)
    }

    fn set_time(&mut self, mono: Instant) {
        let wall = self.wall0 + mono.0 as i64;
        self.now = Now::new(mono, UnixNanos(wall));
    }

    /// Answers an HTTP request in full.
    pub fn respond(&mut self, id: RequestId, status: u16, content_type: &str, body: &[u8]) {
        self.pending.remove(&id);
        let headers = [("Content-Type", content_type)];
        self.input(Input::Io {
            id,
            event: IoEvent::HttpHead {
                status,
                reason: reason(status),
                headers: &headers,
            },
        });
        if status == 200 {
            self.input(Input::Io {
                id,
                event: IoEvent::HttpBody(body),
            });
            self.input(Input::Io {
                id,
                event: IoEvent::HttpEnd,
            });
        }
    }

    /// Reports one event for an operation (removing it from pending when final).
    pub fn reply(&mut self, id: RequestId, event: IoEvent<'_>) -> Vec<Output> {
        if event.is_final() {
            self.pending.remove(&id);
        }
        self.input(Input::Io { id, event })
    }

    /// Answers every pending directory listing and file read, until none is left, from
    /// `files` (full path → content; a file absent from it does not exist).
    pub fn serve_files<'f>(&mut self, files: impl IntoIterator<Item = (&'f str, &'f str)>) {
        let files: BTreeMap<&str, &str> = files.into_iter().collect();
        loop {
            let ops =
                self.pending_where(|op| matches!(op, IoOp::ListDir { .. } | IoOp::ReadFile { .. }));
            if ops.is_empty() {
                return;
            }
            for (id, op) in ops {
                match op {
                    IoOp::ListDir { path } => {
                        let names: Vec<&str> = files
                            .keys()
                            .filter_map(|p| p.rsplit_once('/'))
                            .filter(|(dir, _)| *dir == path)
                            .map(|(_, name)| name)
                            .collect();
                        self.reply(id, IoEvent::DirEntries(&names));
                    }
                    IoOp::ReadFile { path, .. } => {
                        match files.get(path.as_str()) {
                            Some(c) => self.reply(id, IoEvent::FileData(c.as_bytes())),
                            None => self.reply(id, IoEvent::NotFound),
                        };
                    }
                    _ => {}
                }
            }
        }
    }

    /// Pending scrape requests `(id, url)`, by id.
    pub fn pending_scrapes(&self) -> Vec<(RequestId, String)> {
        self.pending
            .iter()
            .filter_map(|(id, op)| match op {
                IoOp::Http(r) if matches!(r.origin, trawl_core::io::Origin::Scrape { .. }) => {
                    Some((*id, r.url.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Pending operations matching `f`.
    pub fn pending_where(&self, f: impl Fn(&IoOp) -> bool) -> Vec<(RequestId, IoOp)> {
        self.pending
            .iter()
            .filter(|(_, op)| f(op))
            .map(|(id, op)| (*id, op.clone()))
            .collect()
    }

    /// URLs of the active targets of `job`, sorted.
    pub fn urls(&self, job: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .agent
            .targets()
            .into_iter()
            .filter(|t| &*t.job == job)
            .map(|t| t.target.url.to_string())
            .collect();
        v.sort();
        v
    }

    /// Events logged so far.
    pub fn events(&self) -> Vec<Event> {
        self.log
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The standard reason phrase of a status code (the few the tests use).
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}
