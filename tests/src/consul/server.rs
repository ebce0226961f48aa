//! The fake Consul agent on a loopback socket: HTTP/1.1 with keep-alive, one thread per
//! connection, blocking queries held on a condition variable until the resource's index
//! passes the one asked for or the wait ends. Tests change the catalog and inject faults
//! through [`ConsulServer`] while clients (trawl, a Python Consul client) are connected.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{Answer, Catalog, Query};

/// Fault knobs.
#[derive(Debug, Default)]
struct Faults {
    /// The next requests (count) answer this status and body.
    fail: Option<(u32, u16, String)>,
    /// The ACL token requests must carry.
    token: Option<String>,
    /// Requests are read and never answered.
    hang: bool,
    /// The next requests (count) have their connection closed without an answer.
    reset: u32,
    /// Answers leave out `X-Consul-Index`.
    no_index: bool,
    /// Bumped by a snapshot restore: blocked queries answer at once.
    restores: u64,
}

#[derive(Debug)]
struct Inner {
    catalog: Catalog,
    faults: Faults,
    /// Every request as received.
    requests: Vec<Query>,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    changed: Condvar,
    stop: AtomicBool,
}

/// A running fake Consul agent; stops when dropped.
#[derive(Debug)]
pub struct ConsulServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl ConsulServer {
    /// Starts on `127.0.0.1` at a port the OS picks, serving `catalog`.
    pub fn start(catalog: Catalog) -> ConsulServer {
        ConsulServer::start_at("127.0.0.1:0", catalog)
    }

    /// Starts on `addr` (a loopback address).
    pub fn start_at(addr: &str, catalog: Catalog) -> ConsulServer {
        let listener = TcpListener::bind(addr).expect("bind the fake Consul");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                catalog,
                faults: Faults::default(),
                requests: Vec::new(),
            }),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        crate::accept_loop(listener, s, |s| s.stop.load(Ordering::SeqCst), serve);
        ConsulServer { addr, shared }
    }

    /// Its address (`127.0.0.1:port`), as `server:` takes it.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock means a server thread panicked: the test fails anyway.
        self.shared.inner.lock().expect("fake Consul lock")
    }

    /// Runs `f` on the catalog (several changes at once), then wakes blocked queries.
    pub fn with<R>(&self, f: impl FnOnce(&mut Catalog) -> R) -> R {
        let r = f(&mut self.lock().catalog);
        self.shared.changed.notify_all();
        r
    }

    /// Restores an older snapshot: indexes go back to `index` and blocked queries
    /// answer at once.
    pub fn restore(&self, index: u64) {
        {
            let mut i = self.lock();
            i.catalog.restore(index);
            i.faults.restores += 1;
        }
        self.shared.changed.notify_all();
    }

    /// The next `n` requests answer `status` with `body` (a 200 with a fresh
    /// `X-Consul-Index`, unless index headers are dropped).
    pub fn fail_next(&self, n: u32, status: u16, body: &str) {
        self.lock().faults.fail = Some((n, status, body.to_owned()));
    }

    /// The next `n` requests get their connection closed without an answer.
    pub fn reset_next(&self, n: u32) {
        self.lock().faults.reset = n;
    }

    /// Requires an ACL token from now on (`None`: none).
    pub fn require_token(&self, token: Option<&str>) {
        self.lock().faults.token = token.map(str::to_owned);
    }

    /// Stops answering (requests are read and left hanging), or resumes.
    pub fn hang(&self, on: bool) {
        self.lock().faults.hang = on;
        self.shared.changed.notify_all();
    }

    /// Leaves `X-Consul-Index` out of answers (a broken proxy in front of Consul).
    pub fn drop_index_header(&self, on: bool) {
        self.lock().faults.no_index = on;
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Query> {
        self.lock().requests.clone()
    }
}

impl Drop for ConsulServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn write_answer(w: &mut TcpStream, a: &Answer, with_index: bool) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nVary: Accept-Encoding\r\n",
        a.status,
        reason(a.status),
        if a.status == 200 {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        },
    );
    if let Some(i) = a.index.filter(|_| with_index) {
        head.push_str(&format!(
            "X-Consul-Default-Acl-Policy: allow\r\nX-Consul-Effective-Consistency: leader\r\n\
             X-Consul-Index: {i}\r\nX-Consul-Knownleader: true\r\nX-Consul-Lastcontact: 0\r\n"
        ));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", a.body.len()));
    w.write_all(head.as_bytes())?;
    w.write_all(a.body.as_bytes())?;
    w.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// The token a request carries, as Consul reads it.
fn token(q: &Query) -> Option<String> {
    if let Some(t) = q.header("x-consul-token") {
        return Some(t.to_owned());
    }
    if let Some(t) = q
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
    {
        return Some(t.to_owned());
    }
    q.param("token").map(str::to_owned)
}

fn serve(conn: TcpStream, s: &Shared) {
    let Ok(write) = conn.try_clone() else { return };
    let mut w = write;
    let mut r = BufReader::new(conn);
    while let Some((target, headers)) = crate::read_request_head(&mut r) {
        if s.stop.load(Ordering::SeqCst) {
            return;
        }
        let q = Query::parse(&target, headers);
        let mut inner = s.inner.lock().expect("fake Consul lock");
        inner.requests.push(q.clone());
        if inner.faults.reset > 0 {
            inner.faults.reset -= 1;
            drop(inner);
            let _ = w.shutdown(std::net::Shutdown::Both);
            return;
        }
        while inner.faults.hang && !s.stop.load(Ordering::SeqCst) {
            inner = s
                .changed
                .wait_timeout(inner, Duration::from_millis(100))
                .expect("fake Consul lock")
                .0;
        }
        if let Some((n, status, body)) = inner.faults.fail.clone() {
            inner.faults.fail = (n > 1).then(|| (n - 1, status, body.clone()));
            // A 200 passes a fresh index on (a proxy in front of Consul mangling the
            // body); errors have none.
            let index = (status == 200).then(|| inner.catalog.index() + 1);
            let with_index = !inner.faults.no_index;
            drop(inner);
            let a = Answer {
                status,
                index,
                body,
            };
            if write_answer(&mut w, &a, with_index).is_err() {
                return;
            }
            continue;
        }
        if let Some(want) = inner.faults.token.clone()
            && token(&q).as_deref() != Some(want.as_str())
        {
            drop(inner);
            let a = Answer {
                status: 403,
                index: None,
                body: "ACL not found".into(),
            };
            if write_answer(&mut w, &a, false).is_err() {
                return;
            }
            continue;
        }
        // A blocking query waits while the resource's index has not passed the one
        // asked for (and nothing was restored), up to its wait.
        let resource = Catalog::resource(&q);
        let (index, wait) = (q.index(), q.wait().unwrap_or_default());
        if index > 0 && resource != super::Resource::None {
            let end = Instant::now() + wait;
            let restores = inner.faults.restores;
            while inner.catalog.resource_index(&resource) <= index
                && inner.faults.restores == restores
                && !s.stop.load(Ordering::SeqCst)
            {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                inner = s
                    .changed
                    .wait_timeout(inner, left.min(Duration::from_millis(500)))
                    .expect("fake Consul lock")
                    .0;
            }
        }
        let a = inner.catalog.answer(&q);
        let with_index = !inner.faults.no_index;
        drop(inner);
        if write_answer(&mut w, &a, with_index).is_err() {
            return;
        }
    }
}
