//! The fake API server on a loopback socket: HTTP/1.1 with keep-alive for lists and
//! discovery, chunked streams flushed per event for watches, one thread per connection.
//! Tests change the cluster and inject faults through [`KubeServer`] while clients
//! (trawl, kubectl) are connected.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Cluster, Reply, status};

/// Fault knobs.
#[derive(Debug, Default)]
struct Faults {
    /// The next requests (count) answer this status.
    fail: Option<(u32, u16)>,
    /// Requests must carry `Authorization: Bearer <token>` (else 401).
    token: Option<String>,
    /// Requests are read and never answered.
    hang: bool,
    /// Open watches end abruptly when this changes.
    drops: u64,
    /// Open watches get a 410 `ERROR` and end when this changes.
    expiries: u64,
    /// Longest a watch lasts, whatever `timeoutSeconds` says.
    max_watch: Option<Duration>,
    /// Bookmarks this often on watches that asked for them.
    bookmark_every: Duration,
}

#[derive(Debug)]
struct Inner {
    cluster: Cluster,
    faults: Faults,
    /// Request lines and headers as received, in order.
    requests: Vec<Request>,
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    /// Path and query.
    pub target: String,
    /// Headers (names lower-cased).
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    changed: Condvar,
    stop: AtomicBool,
}

/// A running fake API server; stops when dropped.
#[derive(Debug)]
pub struct KubeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl KubeServer {
    /// Starts on `127.0.0.1` at a port the OS picks.
    pub fn start() -> KubeServer {
        KubeServer::start_at("127.0.0.1:0")
    }

    /// Starts on `addr` (a loopback address).
    pub fn start_at(addr: &str) -> KubeServer {
        let listener = TcpListener::bind(addr).expect("bind the fake API server");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                cluster: Cluster::new(),
                faults: Faults {
                    bookmark_every: Duration::from_secs(1),
                    ..Faults::default()
                },
                requests: Vec::new(),
            }),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        crate::accept_loop(listener, s, |s| s.stop.load(Ordering::SeqCst), serve);
        KubeServer { addr, shared }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its URL (`http://127.0.0.1:port`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock means a server thread panicked: the test fails anyway.
        self.shared.inner.lock().expect("fake API server lock")
    }

    fn changed(&self) {
        self.shared.changed.notify_all();
    }

    /// Creates or replaces an object; its new version.
    pub fn apply(&self, obj: Value) -> u64 {
        let rv = self.lock().cluster.apply(obj);
        self.changed();
        rv
    }

    /// Deletes an object.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) -> Option<u64> {
        let rv = self.lock().cluster.delete(kind, namespace, name);
        self.changed();
        rv
    }

    /// Runs `f` on the cluster (several changes at once), then wakes the watches.
    pub fn with<R>(&self, f: impl FnOnce(&mut Cluster) -> R) -> R {
        let r = f(&mut self.lock().cluster);
        self.changed();
        r
    }

    /// Forgets the change log: watches from older versions get 410.
    pub fn compact(&self) {
        self.lock().cluster.compact();
        self.changed();
    }

    /// The next `n` requests answer `code` with a `Status`.
    pub fn fail_next(&self, n: u32, code: u16) {
        self.lock().faults.fail = Some((n, code));
    }

    /// Requires `Authorization: Bearer <token>` from now on (`None`: no auth).
    pub fn require_token(&self, token: Option<&str>) {
        self.lock().faults.token = token.map(str::to_owned);
        // Watches authenticated with the old token go on, as on a real server.
    }

    /// Stops answering (requests are read and left hanging), or resumes.
    pub fn hang(&self, on: bool) {
        self.lock().faults.hang = on;
        self.changed();
    }

    /// Cuts every open watch without its final chunk.
    pub fn drop_watches(&self) {
        self.lock().faults.drops += 1;
        self.changed();
    }

    /// Sends every open watch a 410 `ERROR` event and compacts the log.
    pub fn expire_watches(&self) {
        {
            let mut i = self.lock();
            i.faults.expiries += 1;
            i.cluster.compact();
        }
        self.changed();
    }

    /// Ends watches after `d` whatever their `timeoutSeconds`.
    pub fn max_watch(&self, d: Option<Duration>) {
        self.lock().faults.max_watch = d;
    }

    /// Sends bookmarks this often (default 1 s).
    pub fn bookmark_every(&self, d: Duration) {
        self.lock().faults.bookmark_every = d;
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// The cluster's current version.
    pub fn resource_version(&self) -> u64 {
        self.lock().cluster.resource_version()
    }
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.changed();
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// Reads one request head; `None` at the end of the connection.
fn read_head(r: &mut BufReader<TcpStream>) -> Option<Request> {
    crate::read_request_head(r).map(|(target, headers)| Request { target, headers })
}

fn write_whole(w: &mut TcpStream, status: u16, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        crate::reason(status),
        body.len()
    );
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

fn chunk(w: &mut TcpStream, data: &str) -> std::io::Result<()> {
    write!(w, "{:x}\r\n{data}\r\n", data.len())?;
    w.flush()
}

fn serve(conn: TcpStream, s: &Shared) {
    let Ok(write) = conn.try_clone() else { return };
    let mut w = write;
    let mut r = BufReader::new(conn);
    while let Some(req) = read_head(&mut r) {
        if s.stop.load(Ordering::SeqCst) {
            return;
        }
        let reply = {
            let mut inner = s.inner.lock().expect("fake API server lock");
            inner.requests.push(req.clone());
            if inner.faults.hang {
                drop(inner);
                // Hold the connection without a byte until resumed or stopped.
                let inner = s.inner.lock().expect("fake API server lock");
                let mut inner = inner;
                while inner.faults.hang && !s.stop.load(Ordering::SeqCst) {
                    inner = s
                        .changed
                        .wait_timeout(inner, Duration::from_millis(100))
                        .expect("fake API server lock")
                        .0;
                }
                return;
            }
            if let Some((n, code)) = inner.faults.fail {
                inner.faults.fail = (n > 1).then_some((n - 1, code));
                let reason = match code {
                    401 => "Unauthorized",
                    403 => "Forbidden",
                    410 => "Expired",
                    429 => "TooManyRequests",
                    _ => "InternalError",
                };
                Reply::Whole {
                    status: code,
                    body: status(code, reason, &format!("injected {code}"))
                        .to_string()
                        .into_bytes(),
                }
            } else if let Some(t) = &inner.faults.token
                && req.header("authorization") != Some(&format!("Bearer {t}"))
            {
                Reply::Whole {
                    status: 401,
                    body: status(401, "Unauthorized", "Unauthorized")
                        .to_string()
                        .into_bytes(),
                }
            } else {
                inner.cluster.handle(&req.target)
            }
        };
        match reply {
            Reply::Whole { status, body } => {
                if write_whole(&mut w, status, &body).is_err() {
                    return;
                }
            }
            Reply::Watch {
                watch,
                initial,
                ends,
            } => {
                stream(&mut w, s, watch, initial, ends);
                return;
            }
        }
    }
}

fn stream(
    w: &mut TcpStream,
    s: &Shared,
    mut watch: super::Watch,
    initial: Vec<String>,
    ends: bool,
) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    if w.write_all(head.as_bytes()).is_err() {
        return;
    }
    for line in &initial {
        if chunk(w, line).is_err() {
            return;
        }
    }
    let finish = |w: &mut TcpStream| {
        let _ = w.write_all(b"0\r\n\r\n");
        let _ = w.flush();
    };
    if ends {
        return finish(w);
    }
    let start = Instant::now();
    let (drops, expiries, max) = {
        let i = s.inner.lock().expect("fake API server lock");
        (i.faults.drops, i.faults.expiries, i.faults.max_watch)
    };
    let mut life = Duration::from_secs(watch.timeout_secs.unwrap_or(1800));
    if let Some(m) = max {
        life = life.min(m);
    }
    let mut last_bookmark = Instant::now();
    loop {
        let inner = s.inner.lock().expect("fake API server lock");
        if s.stop.load(Ordering::SeqCst) || inner.faults.drops != drops {
            // Abruptly: no final chunk.
            let _ = w.shutdown(std::net::Shutdown::Both);
            return;
        }
        if inner.faults.expiries != expiries {
            drop(inner);
            let err = status(
                410,
                "Expired",
                "too old resource version: expired by the test",
            );
            let _ = chunk(w, &format!("{{\"type\":\"ERROR\",\"object\":{err}}}\n"));
            return finish(w);
        }
        let lines = inner.cluster.poll(&mut watch);
        let mark = if watch.bookmarks && last_bookmark.elapsed() >= inner.faults.bookmark_every {
            last_bookmark = Instant::now();
            Some(inner.cluster.bookmark(&mut watch))
        } else {
            None
        };
        let every = inner.faults.bookmark_every;
        drop(inner);
        match lines {
            Ok(lines) => {
                for l in lines.iter().chain(mark.iter()) {
                    if chunk(w, l).is_err() {
                        return;
                    }
                }
            }
            Err(error) => {
                let _ = chunk(w, &error);
                return finish(w);
            }
        }
        if start.elapsed() >= life {
            return finish(w);
        }
        let inner = s.inner.lock().expect("fake API server lock");
        let wait = every
            .min(life.saturating_sub(start.elapsed()))
            .min(Duration::from_millis(200));
        let _ = s
            .changed
            .wait_timeout(inner, wait.max(Duration::from_millis(1)));
    }
}
