//! HTTP/1.1 over mio sockets, with the core's codec: one connection per request in
//! flight, idle keep-alive connections kept per host and port for the next request,
//! redirects followed in the shell (the core sees only the final response), and names
//! resolved on a worker thread so the loop never blocks.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use trawl_core::http::{ResponseEvent, ResponseHead, ResponseReader, Scheme, Url, write_get};
use trawl_core::io::{CredentialsFile, HttpRequest, RequestId};

/// Tokens at and above this are connections.
pub(crate) const CONN_BASE: usize = 1 << 20;
/// Idle connections kept per host and port.
const MAX_IDLE_PER_HOST: usize = 2;
/// Redirects followed before giving up (as Go's client).
const MAX_REDIRECTS: u8 = 10;

/// What a connection reports, owned, for the loop to hand to the core.
#[derive(Debug)]
pub(crate) enum NetEvent {
    Head(ResponseHead),
    Body(Vec<u8>),
    End,
    Failed(String),
}

#[derive(Debug)]
struct Request {
    id: RequestId,
    url: Url,
    headers: Vec<(String, String)>,
    follow: bool,
    redirects: u8,
    /// For `https`: the TLS settings and the name to verify (`server_name` or the host).
    tls: Option<(Arc<rustls::ClientConfig>, String)>,
    tls_config: Arc<trawl_core::config::HttpClientConfig>,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Writing,
    Reading,
}

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// TLS over the stream, for `https`.
    tls: Option<rustls::ClientConnection>,
    key: PoolKey,
    addr: SocketAddr,
    phase: Phase,
    out: Vec<u8>,
    written: usize,
    reader: ResponseReader,
    /// A kept-alive connection used again: if it fails before any byte of the
    /// response, the request is retried once on a new connection.
    reused: bool,
    got_bytes: bool,
    req: Option<Request>,
    /// Redirect target found in the head: the rest of this response is skipped.
    redirect: Option<Url>,
}

/// What makes a kept-alive connection reusable for a request: host, port and, for TLS,
/// the very client configuration and server name it was verified with (a connection a
/// job's CA verified must not serve a job that trusts other roots).
type PoolKey = (String, u16, Option<(usize, String)>);

fn pool_key(req: &Request) -> PoolKey {
    let tls = req
        .tls
        .as_ref()
        .map(|(c, name)| (Arc::as_ptr(c) as usize, name.clone()));
    (req.url.host.clone(), req.url.port, tls)
}

/// A name to resolve on the worker thread.
#[derive(Debug)]
pub(crate) struct Lookup {
    pub(crate) id: RequestId,
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// The resolver's answer.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) id: RequestId,
    pub(crate) addrs: io::Result<Vec<SocketAddr>>,
}

/// Resolves names with the system resolver (`/etc/hosts`, DNS) on its own thread.
pub(crate) fn spawn_resolver(
    wake: impl Fn() + Send + 'static,
) -> io::Result<(
    crossbeam_channel::Sender<Lookup>,
    crossbeam_channel::Receiver<Resolved>,
)> {
    let (tx, rx) = crossbeam_channel::unbounded::<Lookup>();
    let (atx, arx) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("trawl-dns".into())
        .spawn(move || {
            for l in rx {
                let addrs = (l.host.as_str(), l.port)
                    .to_socket_addrs()
                    .map(|a| a.collect::<Vec<_>>());
                if atx.send(Resolved { id: l.id, addrs }).is_err() {
                    return;
                }
                wake();
            }
        })?;
    Ok((tx, arx))
}

/// Sends what TLS has to send (handshake or records); `WouldBlock` waits for the next
/// writable event.
fn flush_tls(c: &mut Conn) -> io::Result<()> {
    if let Some(tls) = c.tls.as_mut() {
        while tls.wants_write() {
            match tls.write_tls(&mut c.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Reads response bytes: from the socket, or decrypted from TLS records. `Ok(0)` is
/// the end of the stream.
fn recv(c: &mut Conn, buf: &mut [u8]) -> io::Result<usize> {
    let Some(tls) = c.tls.as_mut() else {
        return c.stream.read(buf);
    };
    loop {
        match tls.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        match tls.read_tls(&mut c.stream) {
            Ok(0) => return Ok(0),
            Ok(_) => {
                if let Err(e) = tls.process_new_packets() {
                    // Tell the server why, then fail.
                    let _ = tls.write_tls(&mut c.stream);
                    return Err(io::Error::other(format!("tls: {e}")));
                }
                while tls.wants_write() {
                    match tls.write_tls(&mut c.stream) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Every HTTP request in flight and every idle connection.
#[derive(Debug)]
pub(crate) struct Net {
    /// Boxed: a connection is about a kilobyte, and a map node holds eleven slots.
    conns: BTreeMap<usize, Box<Conn>>,
    next_token: usize,
    by_id: BTreeMap<RequestId, usize>,
    idle: BTreeMap<PoolKey, Vec<usize>>,
    tls: crate::tls::TlsConfigs,
    /// Requests waiting for their name.
    resolving: BTreeMap<RequestId, Request>,
    lookups: crossbeam_channel::Sender<Lookup>,
    buf: Vec<u8>,
    /// Events for the core, in order.
    pub(crate) events: VecDeque<(RequestId, NetEvent)>,
}

fn dial_error(addr: &str, e: &io::Error) -> String {
    let what = match e.kind() {
        io::ErrorKind::ConnectionRefused => "connect: connection refused".to_owned(),
        io::ErrorKind::TimedOut => "i/o timeout".to_owned(),
        _ => e.to_string(),
    };
    format!("dial tcp {addr}: {what}")
}

pub(crate) fn credentials(f: &CredentialsFile) -> Result<(String, String), String> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .map_err(|e| format!("unable to read credentials file {p}: {e}"))
    };
    Ok(match f {
        CredentialsFile::BasicPassword { username, path } => {
            let pw = read(path)?;
            (
                "Authorization".into(),
                format!("Basic {}", base64(format!("{username}:{pw}").as_bytes())),
            )
        }
        CredentialsFile::Credentials { kind, path } => {
            ("Authorization".into(), format!("{kind} {}", read(path)?))
        }
    })
}

/// Standard base64 with padding.
pub(crate) fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (k, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if k <= c.len() {
                s.push(T[(n >> shift) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

impl Net {
    pub(crate) fn new(lookups: crossbeam_channel::Sender<Lookup>) -> Net {
        Net {
            conns: BTreeMap::new(),
            next_token: CONN_BASE,
            by_id: BTreeMap::new(),
            idle: BTreeMap::new(),
            tls: Default::default(),
            resolving: BTreeMap::new(),
            lookups,
            buf: vec![0; 64 * 1024],
            events: VecDeque::new(),
        }
    }

    fn fail(&mut self, id: RequestId, msg: String) {
        self.events.push_back((id, NetEvent::Failed(msg)));
    }

    /// Starts a GET.
    pub(crate) fn start(&mut self, reg: &Registry, id: RequestId, r: &HttpRequest) {
        let url = match Url::parse(&r.url) {
            Ok(u) => u,
            Err(e) => return self.fail(id, e),
        };
        let mut headers = r.headers.clone();
        if let Some(f) = &r.credentials_file {
            match credentials(f) {
                Ok(h) => headers.push(h),
                Err(e) => return self.fail(id, e),
            }
        }
        let req = Request {
            id,
            url,
            headers,
            follow: r.client.follow_redirects,
            redirects: 0,
            tls: None,
            tls_config: r.client.clone(),
        };
        self.send(reg, req);
    }

    fn send(&mut self, reg: &Registry, mut req: Request) {
        if !req.tls_config.proxy_url.is_empty() || req.tls_config.proxy_from_environment {
            // Never bypass a configured proxy silently.
            return self.fail(
                req.id,
                "proxy_url and proxy_from_environment are not supported by this build yet".into(),
            );
        }
        let https = req.url.scheme == Scheme::Https;
        req.tls = None;
        if https {
            let t = &req.tls_config.tls_config;
            match self.tls.get(t) {
                Ok(c) => {
                    let name = if t.server_name.is_empty() {
                        req.url.host.clone()
                    } else {
                        t.server_name.clone()
                    };
                    req.tls = Some((c, name));
                }
                Err(e) => return self.fail(req.id, e),
            }
        }
        let key = pool_key(&req);
        // A kept-alive connection first.
        while let Some(t) = self.idle.get_mut(&key).and_then(Vec::pop) {
            if let Some(c) = self.conns.get_mut(&t) {
                c.reused = true;
                self.begin(reg, t, req);
                return;
            }
        }
        match req.url.host.parse::<IpAddr>() {
            Ok(ip) => {
                let addr = SocketAddr::new(ip, req.url.port);
                self.connect(reg, addr, req);
            }
            Err(_) => {
                let l = Lookup {
                    id: req.id,
                    host: req.url.host.clone(),
                    port: req.url.port,
                };
                let id = req.id;
                self.resolving.insert(id, req);
                if self.lookups.send(l).is_err() {
                    self.resolving.remove(&id);
                    self.fail(id, "the resolver thread is gone".into());
                }
            }
        }
    }

    /// A name resolved (or not).
    pub(crate) fn resolved(&mut self, reg: &Registry, r: Resolved) {
        let Some(req) = self.resolving.remove(&r.id) else {
            return; // cancelled meanwhile
        };
        match r.addrs {
            Ok(a) if !a.is_empty() => {
                // Prefer IPv4, as Go's dialer effectively does on most hosts.
                let addr = a.iter().find(|a| a.is_ipv4()).copied().unwrap_or(a[0]);
                self.connect(reg, addr, req);
            }
            Ok(_) => {
                let msg = format!("dial tcp: lookup {}: no such host", req.url.host);
                self.fail(req.id, msg);
            }
            Err(e) => {
                let msg = format!("dial tcp: lookup {}: {e}", req.url.host);
                self.fail(req.id, msg);
            }
        }
    }

    fn connect(&mut self, reg: &Registry, addr: SocketAddr, req: Request) {
        let mut stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => return self.fail(req.id, dial_error(&addr.to_string(), &e)),
        };
        let t = self.next_token;
        self.next_token += 1;
        if let Err(e) = reg.register(
            &mut stream,
            Token(t),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            return self.fail(req.id, format!("register socket: {e}"));
        }
        let key = pool_key(&req);
        let tls = match &req.tls {
            Some((config, name)) => {
                let server = match rustls::pki_types::ServerName::try_from(name.clone()) {
                    Ok(s) => s,
                    Err(e) => {
                        return self
                            .fail(req.id, format!("tls: invalid server name {name:?}: {e}"));
                    }
                };
                match rustls::ClientConnection::new(config.clone(), server) {
                    Ok(c) => Some(c),
                    Err(e) => return self.fail(req.id, format!("tls: {e}")),
                }
            }
            None => None,
        };
        self.conns.insert(
            t,
            Box::new(Conn {
                stream,
                tls,
                key,
                addr,
                phase: Phase::Connecting,
                out: Vec::new(),
                written: 0,
                reader: ResponseReader::new(false),
                reused: false,
                got_bytes: false,
                req: None,
                redirect: None,
            }),
        );
        self.begin(reg, t, req);
    }

    /// Puts `req` on connection `t`.
    fn begin(&mut self, reg: &Registry, t: usize, req: Request) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        c.out.clear();
        c.written = 0;
        if let Err(e) = write_get(&mut c.out, &req.url, &req.headers, false) {
            let id = req.id;
            self.close(reg, t);
            return self.fail(id, e);
        }
        c.reader = ResponseReader::new(false);
        c.got_bytes = false;
        c.redirect = None;
        if c.phase != Phase::Connecting {
            c.phase = Phase::Writing;
        }
        self.by_id.insert(req.id, t);
        c.req = Some(req);
        // An idle connection's socket is already writable: write at once.
        if c.phase == Phase::Writing {
            self.ready(reg, t, false, true);
        }
    }

    /// Abandons a request.
    pub(crate) fn cancel(&mut self, reg: &Registry, id: RequestId) {
        self.resolving.remove(&id);
        if let Some(t) = self.by_id.remove(&id) {
            self.close(reg, t);
        }
    }

    fn close(&mut self, reg: &Registry, t: usize) {
        if let Some(mut c) = self.conns.remove(&t) {
            let _ = reg.deregister(&mut c.stream);
            if let Some(r) = c.req.take() {
                self.by_id.remove(&r.id);
            }
            if let Some(v) = self.idle.get_mut(&c.key) {
                v.retain(|&x| x != t);
            }
        }
    }

    /// A connection is readable and/or writable.
    pub(crate) fn ready(&mut self, reg: &Registry, t: usize, readable: bool, writable: bool) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        if c.req.is_none() {
            // Idle: any event is the peer closing (or garbage): drop it.
            if readable {
                self.close(reg, t);
            }
            return;
        }
        if c.phase == Phase::Connecting && writable {
            match c.stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => {
                    let msg = dial_error(&c.addr.to_string(), &e);
                    return self.broken(reg, t, msg);
                }
            }
            match c.stream.peer_addr() {
                Ok(_) => c.phase = Phase::Writing,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => {
                    let msg = dial_error(&c.addr.to_string(), &e);
                    return self.broken(reg, t, msg);
                }
            }
        }
        if c.phase == Phase::Writing
            && let Some(tls) = c.tls.as_mut()
        {
            // Plaintext into rustls (buffered); the records go out below.
            if let Err(e) = tls.writer().write_all(&c.out[c.written..]) {
                return self.broken(reg, t, format!("tls: {e}"));
            }
            c.written = c.out.len();
            c.phase = Phase::Reading;
        }
        if let Err(e) = flush_tls(c) {
            return self.broken(reg, t, format!("write: {e}"));
        }
        if c.phase == Phase::Writing {
            while c.written < c.out.len() {
                match c.stream.write(&c.out[c.written..]) {
                    Ok(0) => return self.broken(reg, t, "write: connection closed".into()),
                    Ok(n) => c.written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return self.broken(reg, t, format!("write: {e}")),
                }
            }
            c.phase = Phase::Reading;
        }
        if c.phase == Phase::Reading && (readable || writable) {
            self.read(reg, t);
        }
    }

    fn read(&mut self, reg: &Registry, t: usize) {
        loop {
            let Some(c) = self.conns.get_mut(&t) else {
                return;
            };
            let n = match recv(c, &mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let msg = if e.to_string().starts_with("tls: ") {
                        e.to_string()
                    } else {
                        format!("read tcp {}: {e}", c.addr)
                    };
                    return self.broken(reg, t, msg);
                }
            };
            if n > 0 {
                c.got_bytes = true;
            }
            let Some(id) = c.req.as_ref().map(|r| r.id) else {
                return;
            };
            let mut evs: Vec<NetEvent> = Vec::new();
            let follow = c.req.as_ref().is_some_and(|r| r.follow);
            // Borrowed, not cloned: only a redirect's head needs it.
            let base = c.req.as_ref().map(|r| &r.url);
            let redirect = &mut c.redirect;
            let mut sink = |e: ResponseEvent<'_>| match e {
                ResponseEvent::Head(h) => {
                    let to = h
                        .header("Location")
                        .filter(|_| follow && matches!(h.status, 301 | 302 | 303 | 307 | 308));
                    match (to, base) {
                        (Some(loc), Some(b)) => match b.join(loc) {
                            Ok(u) => *redirect = Some(u),
                            Err(e) => evs.push(NetEvent::Failed(e)),
                        },
                        _ => evs.push(NetEvent::Head(h)),
                    }
                }
                ResponseEvent::Body(b) => {
                    if redirect.is_none() {
                        evs.push(NetEvent::Body(b.to_vec()));
                    }
                }
                ResponseEvent::End => evs.push(NetEvent::End),
            };
            let r = if n == 0 {
                c.reader.eof(&mut sink)
            } else {
                c.reader.feed(&self.buf[..n], &mut sink).map(drop)
            };
            let done = c.reader.is_done();
            let reusable = c.reader.reusable();
            let redirect = c.redirect.take();
            if let Err(e) = r {
                if c.reused && !c.got_bytes {
                    // A kept-alive connection the server had closed: once more, fresh.
                    return self.retry(reg, t);
                }
                return self.broken(reg, t, e.0);
            }
            if let Some(to) = redirect {
                if done {
                    return self.follow(reg, t, to);
                }
                // Keep skipping the redirect's body.
                if let Some(c) = self.conns.get_mut(&t) {
                    c.redirect = Some(to);
                }
            }
            for e in evs {
                let end = matches!(e, NetEvent::End | NetEvent::Failed(_));
                self.events.push_back((id, e));
                if end {
                    self.by_id.remove(&id);
                    if let Some(c) = self.conns.get_mut(&t) {
                        c.req = None;
                    }
                }
            }
            if done {
                if reusable {
                    self.park(t);
                } else {
                    self.close(reg, t);
                }
                return;
            }
            if n == 0 {
                return self.close(reg, t);
            }
        }
    }

    /// An idle keep-alive connection.
    fn park(&mut self, t: usize) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        c.req = None;
        c.phase = Phase::Reading;
        let v = self.idle.entry(c.key.clone()).or_default();
        v.push(t);
        if v.len() > MAX_IDLE_PER_HOST {
            let old = v.remove(0);
            self.conns.remove(&old);
        }
    }

    fn follow(&mut self, reg: &Registry, t: usize, to: Url) {
        let Some(mut req) = self.conns.get_mut(&t).and_then(|c| c.req.take()) else {
            return;
        };
        self.by_id.remove(&req.id);
        let reusable = self.conns.get(&t).is_some_and(|c| c.reader.reusable());
        if reusable {
            self.park(t);
        } else {
            self.close(reg, t);
        }
        req.redirects += 1;
        if req.redirects > MAX_REDIRECTS {
            return self.fail(req.id, format!("stopped after {MAX_REDIRECTS} redirects"));
        }
        req.url = to;
        self.send(reg, req);
    }

    fn retry(&mut self, reg: &Registry, t: usize) {
        let Some(req) = self.conns.get_mut(&t).and_then(|c| c.req.take()) else {
            return;
        };
        self.by_id.remove(&req.id);
        self.close(reg, t);
        match req.url.host.parse::<IpAddr>() {
            Ok(ip) => {
                let addr = SocketAddr::new(ip, req.url.port);
                self.connect(reg, addr, req);
            }
            Err(_) => self.send(reg, req),
        }
    }

    /// The connection failed: its request fails (or is retried) and it goes.
    fn broken(&mut self, reg: &Registry, t: usize, msg: String) {
        let (reused, got) = self
            .conns
            .get(&t)
            .map_or((false, true), |c| (c.reused, c.got_bytes));
        if reused && !got {
            return self.retry(reg, t);
        }
        let id = self
            .conns
            .get_mut(&t)
            .and_then(|c| c.req.take())
            .map(|r| r.id);
        self.close(reg, t);
        if let Some(id) = id {
            self.by_id.remove(&id);
            self.fail(id, msg);
        }
    }
}
