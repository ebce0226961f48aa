//! HTTP/1.1 over mio sockets, with the core's codec: one connection per request in
//! flight, idle keep-alive connections kept per host and port for the next request,
//! redirects followed in the shell (the core sees only the final response), and names
//! resolved by the core's stub resolver on the loop's own DNS sockets
//! ([`trawl_io::resolve`]: `/etc/hosts`, then A and AAAA; every address tried in order
//! until one connects), so a slow lookup holds up only its own connection. Plain-HTTP proxies: requests
//! for `http://` targets go to the proxy with the absolute URL (one kept-alive
//! connection serves every target), `https://` targets through a `CONNECT` tunnel; which
//! proxy, if any, is the core's decision ([`trawl_core::http::proxy`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use trawl_core::http::proxy::{self, ProxyEnv, Route};
use trawl_core::http::{
    ResponseEvent, ResponseHead, ResponseReader, Scheme, Url, write_get, write_post,
};
use trawl_core::io::{HttpRequest, OwnedIoEvent};
use trawl_io::client::{Caller, Post, RemoteId, authorize, dial_error};
use trawl_io::resolve::ResolverOptions;

use crate::lookups::{Lookups, Resolved};

/// Tokens at and above this are connections.
pub(crate) const CONN_BASE: usize = 1 << 20;
/// Idle connections kept per host and port.
const MAX_IDLE_PER_HOST: usize = 2;
/// Redirects followed before giving up (as Go's client).
const MAX_REDIRECTS: u8 = 10;
/// Bytes one connection may read in one turn of the loop. A target that streams without
/// pause must not keep the loop reading: past this the connection waits in the backlog
/// for the next turn, after the agent has seen what was read (and may have cancelled the
/// request on a limit) and after due timers fired (a scrape timeout).
pub(crate) const READ_PER_CONN: usize = 128 * 1024;
/// Bytes all connections together may read in one turn: what the loop holds before the
/// agent sees it. Connections past it wait in the backlog, in turn order.
pub(crate) const READ_PER_TURN: usize = 4 << 20;

#[derive(Debug)]
struct Request {
    id: Caller,
    url: Url,
    headers: Vec<(String, String)>,
    follow: bool,
    redirects: u8,
    /// For `https`: the TLS settings and the name to verify (`server_name` or the host).
    tls: Option<(Arc<rustls::ClientConfig>, String)>,
    tls_config: Arc<trawl_core::config::HttpClientConfig>,
    /// Through a proxy, or `None` to connect directly.
    route: Option<Route>,
    /// A POST's body (`None`: a GET).
    body: Option<Arc<[u8]>>,
    /// The addresses left to try if the connection being opened fails, in order.
    next_addrs: Vec<SocketAddr>,
    /// The first address's failure (what the request fails with if none connects, as
    /// Go's serial dialer reports).
    dial_error: Option<String>,
}

impl Request {
    /// Where to connect: the proxy, or the target.
    fn dial(&self) -> (&str, u16) {
        match &self.route {
            Some(r) => (&r.host, r.port),
            None => (&self.url.host, self.url.port),
        }
    }

    /// True if the request goes to a forwarding proxy with the absolute URL.
    fn forwarded(&self) -> bool {
        self.route.as_ref().is_some_and(|r| !r.tunnel)
    }

    /// The request's bytes (head, then any body) into `out`; `extra` headers after the
    /// request's own.
    fn write(&self, out: &mut Vec<u8>, extra: &[(String, String)]) -> Result<(), String> {
        let absolute = self.forwarded();
        let owned;
        let headers: &[(String, String)] = if extra.is_empty() {
            &self.headers
        } else {
            owned = [self.headers.as_slice(), extra].concat();
            &owned
        };
        match &self.body {
            Some(b) => {
                write_post(out, &self.url, headers, b.len(), absolute)?;
                out.extend_from_slice(b);
                Ok(())
            }
            None => write_get(out, &self.url, headers, absolute),
        }
    }
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
    /// TLS over the stream, for `https` (boxed: a connection's state is about a
    /// kilobyte, which plain-HTTP connections, most of a fleet, should not carry).
    tls: Option<Box<rustls::ClientConnection>>,
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
    /// A `CONNECT` tunnel being opened: TLS starts once the proxy agrees.
    opening: Option<Box<rustls::ClientConnection>>,
    /// Through a proxy (for error messages).
    proxied: bool,
    /// In the backlog: readable data may be left unread.
    queued: bool,
}

/// What makes a kept-alive connection reusable for a request: host, port and, for TLS,
/// the very client configuration and server name it was verified with (a connection a
/// job's CA verified must not serve a job that trusts other roots); and the proxy it
/// goes through. A forwarding proxy's connection serves any `http://` target (the key
/// has no host), a tunnel only its own.
type PoolKey = (
    String,
    u16,
    Option<(usize, String)>,
    Option<(String, u16, bool)>,
);

fn pool_key(req: &Request) -> PoolKey {
    let tls = req
        .tls
        .as_ref()
        .map(|(c, name)| (Arc::as_ptr(c) as usize, name.clone()));
    let via = req
        .route
        .as_ref()
        .map(|r| (r.host.clone(), r.port, r.tunnel));
    if req.forwarded() {
        return (String::new(), 0, None, via);
    }
    (req.url.host.clone(), req.url.port, tls, via)
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
    /// Boxed: a connection is about a kilobyte, moved whenever the table grows. Hash
    /// maps (here and below): with 10 000 targets a B-tree's string and token
    /// comparisons on every request and park were 3 % of the daemon's CPU, and nothing
    /// iterates these maps, so their order reaches no output.
    conns: HashMap<usize, Box<Conn>>,
    next_token: usize,
    by_id: HashMap<Caller, usize>,
    idle: HashMap<PoolKey, Vec<usize>>,
    tls: trawl_io::tls::TlsConfigs,
    /// Requests waiting for their name.
    lookups: Lookups<Caller, Request>,
    buf: Vec<u8>,
    /// Connections that stopped reading on a budget, oldest first.
    backlog: VecDeque<usize>,
    /// Requests whose bodies the agent is not ready for (it has bytes of theirs left
    /// to parse): their connections wait in the backlog.
    held: HashSet<Caller>,
    /// What the connections may still read this turn.
    turn_left: usize,
    /// The proxy environment, read once (for `proxy_from_environment`).
    proxy_env: ProxyEnv,
    /// Events for the core, in order.
    pub(crate) events: VecDeque<(Caller, OwnedIoEvent)>,
    /// A GET's body, shared.
    empty: Arc<[u8]>,
}

/// Go's prefix for a failed dial: `proxyconnect tcp: dial tcp …` through a proxy.
fn dial_op(req: &Request) -> &'static str {
    if req.route.is_some() {
        "proxyconnect tcp: dial tcp: "
    } else {
        "dial tcp: "
    }
}

impl Net {
    pub(crate) fn new(resolver: ResolverOptions) -> Net {
        Net {
            conns: HashMap::new(),
            next_token: CONN_BASE,
            by_id: HashMap::new(),
            idle: HashMap::new(),
            tls: Default::default(),
            lookups: Lookups::new(resolver, crate::dns::DNS_MID..crate::dns::DNS_END),
            buf: vec![0; 64 * 1024],
            backlog: VecDeque::new(),
            held: HashSet::new(),
            turn_left: READ_PER_TURN,
            proxy_env: ProxyEnv::from_lookup(|k| std::env::var(k).ok()),
            events: VecDeque::new(),
            empty: Arc::from(&[][..]),
        }
    }

    fn fail(&mut self, id: Caller, msg: String) {
        self.events.push_back((id, OwnedIoEvent::Failed(msg)));
    }

    /// Starts a GET, or a POST when the request has a body (the request's headers move
    /// into it: a scrape allocates them once).
    pub(crate) fn start(&mut self, reg: &Registry, id: Caller, r: HttpRequest) {
        let follow = r.client.follow_redirects;
        let p = Post {
            url: &r.url,
            headers: r.headers,
            credentials_file: r.credentials_file.as_ref(),
            body: r.body.clone().unwrap_or_else(|| self.empty.clone()),
            client: r.client,
        };
        self.begin_request(reg, id, p, r.body, follow);
    }

    /// Starts a POST (remote write). Redirects are not followed.
    pub(crate) fn post(&mut self, reg: &Registry, id: Caller, p: Post<'_>) {
        let body = p.body.clone();
        self.begin_request(reg, id, p, Some(body), false);
    }

    fn begin_request(
        &mut self,
        reg: &Registry,
        id: Caller,
        p: Post<'_>,
        body: Option<Arc<[u8]>>,
        follow: bool,
    ) {
        let mut headers = p.headers;
        let mut signed_url = None;
        if let Some(f) = p.credentials_file {
            let method = if body.is_some() { "POST" } else { "GET" };
            match authorize(
                f,
                method,
                p.url,
                &headers,
                body.as_deref().unwrap_or_default(),
            ) {
                Ok((u, h)) => {
                    signed_url = u;
                    headers.extend(h);
                }
                Err(e) => return self.fail(id, e),
            }
        }
        let url = match Url::parse(signed_url.as_deref().unwrap_or(p.url)) {
            Ok(u) => u,
            Err(e) => return self.fail(id, e),
        };
        let req = Request {
            id,
            url,
            headers,
            follow,
            redirects: 0,
            tls: None,
            tls_config: p.client,
            route: None,
            body,
            next_addrs: Vec::new(),
            dial_error: None,
        };
        self.send(reg, req);
    }

    fn send(&mut self, reg: &Registry, mut req: Request) {
        // Per hop: a redirect may lead to a host the proxy settings treat otherwise.
        match proxy::route(&req.tls_config, &self.proxy_env, &req.url) {
            Ok(r) => req.route = r,
            // Never bypass a configured proxy silently.
            Err(e) => return self.fail(req.id, e),
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
        self.dial(reg, req);
    }

    /// Connects afresh to the target or its proxy, resolving the name first if needed.
    fn dial(&mut self, reg: &Registry, mut req: Request) {
        req.next_addrs.clear();
        req.dial_error = None;
        let (host, port) = req.dial();
        if let Ok(ip) = host.parse::<IpAddr>() {
            let addr = SocketAddr::new(ip, port);
            return self.connect(reg, addr, req);
        }
        let (id, host) = (req.id, host.to_owned());
        if let Some(r) = self.lookups.start(reg, id, &host, req) {
            self.resolved(reg, r);
        }
    }

    /// A lookup finished: connect to its first address, or fail the request.
    fn resolved(&mut self, reg: &Registry, (id, mut req, result): Resolved<Caller, Request>) {
        match result {
            Ok(addrs) => {
                let port = req.dial().1;
                let mut addrs: Vec<SocketAddr> = addrs
                    .iter()
                    .filter_map(|a| a.parse::<IpAddr>().ok())
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect();
                if addrs.is_empty() {
                    let msg = format!(
                        "{}lookup {}: no usable address",
                        dial_op(&req),
                        req.dial().0
                    );
                    return self.fail(id, msg);
                }
                let first = addrs.remove(0);
                req.next_addrs = addrs;
                self.connect(reg, first, req);
            }
            Err(e) => {
                let msg = format!("{}{e}", dial_op(&req));
                self.fail(id, msg);
            }
        }
    }

    /// A lookup's DNS socket is ready.
    pub(crate) fn dns_ready(&mut self, reg: &Registry, t: usize) {
        if let Some(r) = self.lookups.dns_ready(reg, t) {
            self.resolved(reg, r);
        }
    }

    /// True if `t` is one of the lookups' DNS sockets.
    pub(crate) fn owns_dns_token(&self, t: usize) -> bool {
        self.lookups.owns_token(t)
    }

    /// When the next lookup exchange times out.
    pub(crate) fn poll_timeout(&self) -> Option<std::time::Instant> {
        self.lookups.poll_timeout()
    }

    /// Moves the lookups whose exchanges timed out on.
    pub(crate) fn timeouts(&mut self, reg: &Registry) {
        for r in self.lookups.timeouts(reg) {
            self.resolved(reg, r);
        }
    }

    /// The connection being opened for `req` failed with `err`: the next address, or
    /// the request fails with the first address's error.
    fn connect_next(&mut self, reg: &Registry, mut req: Request, err: String) {
        let first = req.dial_error.get_or_insert(err).clone();
        if req.next_addrs.is_empty() {
            return self.fail(req.id, first);
        }
        let addr = req.next_addrs.remove(0);
        self.connect(reg, addr, req);
    }

    fn connect(&mut self, reg: &Registry, addr: SocketAddr, req: Request) {
        let proxied = req.route.is_some();
        let mut stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                let msg = dial_error(proxied, &addr.to_string(), &e);
                return self.connect_next(reg, req, msg);
            }
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
        // Through a tunnel, TLS waits for the proxy's answer to `CONNECT`.
        let (tls, opening) = match (tls, req.route.as_ref().is_some_and(|r| r.tunnel)) {
            (Some(c), true) => (None, Some(Box::new(c))),
            (tls, _) => (tls.map(Box::new), None),
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
                opening,
                proxied,
                queued: false,
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
        let head = match (&c.opening, &req.route) {
            (Some(_), Some(route)) => {
                // The tunnel first; the request follows once it is open.
                c.reader = ResponseReader::new(true);
                route.connect_request(&req.url, &mut c.out)
            }
            (_, Some(route)) if !route.tunnel => {
                c.reader = ResponseReader::new(false);
                let auth: Vec<(String, String)> = route
                    .authorization
                    .iter()
                    .map(|a| ("Proxy-Authorization".to_owned(), a.clone()))
                    .collect();
                req.write(&mut c.out, &auth)
            }
            _ => {
                c.reader = ResponseReader::new(false);
                req.write(&mut c.out, &[])
            }
        };
        if let Err(e) = head {
            let id = req.id;
            self.close(reg, t);
            return self.fail(id, e);
        }
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
    pub(crate) fn cancel(&mut self, reg: &Registry, id: Caller) {
        self.lookups.cancel(reg, id);
        if let Some(t) = self.by_id.remove(&id) {
            self.close(reg, t);
        }
    }

    fn close(&mut self, reg: &Registry, t: usize) {
        if let Some(mut c) = self.conns.remove(&t) {
            let _ = reg.deregister(&mut c.stream);
            if let Some(r) = c.req.take() {
                self.by_id.remove(&r.id);
                self.held.remove(&r.id);
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
            let failed = match c.stream.take_error() {
                Ok(None) => match c.stream.peer_addr() {
                    Ok(_) => {
                        c.phase = Phase::Writing;
                        None
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                    Err(e) => Some(e),
                },
                Ok(Some(e)) | Err(e) => Some(e),
            };
            if let Some(e) = failed {
                // This address refused: the next one, if the name had more.
                let msg = dial_error(c.proxied, &c.addr.to_string(), &e);
                let req = c.req.take();
                if let Some(r) = &req {
                    self.by_id.remove(&r.id);
                }
                self.close(reg, t);
                if let Some(r) = req {
                    self.connect_next(reg, r, msg);
                }
                return;
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
        // A connection in the backlog is read there, in its turn: a stream of new
        // events must not let it overtake the ones waiting before it.
        if c.phase == Phase::Reading && (readable || writable) && !c.queued {
            self.read(reg, t);
        }
    }

    /// A new turn of the loop: the read budget is full again.
    pub(crate) fn new_turn(&mut self) {
        self.turn_left = READ_PER_TURN;
    }

    /// True if some connection stopped reading on a budget: the loop must not sleep.
    pub(crate) fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Reads on for the connections in the backlog, each once, oldest first (those that
    /// stop on a budget again go to its end).
    pub(crate) fn drain_backlog(&mut self, reg: &Registry) {
        for _ in 0..self.backlog.len() {
            if self.turn_left == 0 {
                return;
            }
            let Some(t) = self.backlog.pop_front() else {
                return;
            };
            let Some(c) = self.conns.get_mut(&t) else {
                continue;
            };
            c.queued = false;
            if c.req.is_some() && c.phase == Phase::Reading {
                self.read(reg, t);
            }
        }
    }

    /// Reads no more of request `id`'s response until [`Net::release`] lets it go.
    pub(crate) fn hold(&mut self, id: Caller) {
        self.held.insert(id);
    }

    /// Lets go of the held requests for which `ready` holds.
    pub(crate) fn release(&mut self, ready: impl Fn(Caller) -> bool) {
        self.held.retain(|id| !ready(*id));
    }

    /// Puts a connection that still has data to read in the backlog.
    fn defer(&mut self, t: usize) {
        if let Some(c) = self.conns.get_mut(&t)
            && !c.queued
        {
            c.queued = true;
            self.backlog.push_back(t);
        }
    }

    fn read(&mut self, reg: &Registry, t: usize) {
        let mut left = READ_PER_CONN;
        loop {
            if left == 0 || self.turn_left == 0 {
                return self.defer(t);
            }
            let Some(c) = self.conns.get_mut(&t) else {
                return;
            };
            if c.req.as_ref().is_some_and(|r| self.held.contains(&r.id)) {
                return self.defer(t);
            }
            let want = self.buf.len().min(left).min(self.turn_left);
            let n = match recv(c, &mut self.buf[..want]) {
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
                left -= n;
                self.turn_left -= n;
            }
            if c.opening.is_some() {
                match self.tunnel_answer(reg, t, n) {
                    Some(true) => continue,
                    _ => return,
                }
            }
            let Some(id) = c.req.as_ref().map(|r| r.id) else {
                return;
            };
            let mut evs: Vec<OwnedIoEvent> = Vec::new();
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
                            Err(e) => evs.push(OwnedIoEvent::Failed(e)),
                        },
                        _ => evs.push(OwnedIoEvent::HttpHead(h)),
                    }
                }
                ResponseEvent::Body(b) => {
                    if redirect.is_none() {
                        evs.push(OwnedIoEvent::HttpBody(b.to_vec()));
                    }
                }
                ResponseEvent::End => evs.push(OwnedIoEvent::HttpEnd),
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
                let end = matches!(e, OwnedIoEvent::HttpEnd | OwnedIoEvent::Failed(_));
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

    /// The proxy's answer to `CONNECT`, from the `n` bytes read into the buffer: on 200,
    /// TLS starts and the request is sent through the tunnel. `Some(true)` to read on
    /// (the head is incomplete), `Some(false)` once the request is under way, `None` if
    /// the connection failed.
    fn tunnel_answer(&mut self, reg: &Registry, t: usize, n: usize) -> Option<bool> {
        let c = self.conns.get_mut(&t)?;
        let mut head: Option<ResponseHead> = None;
        let r = if n == 0 {
            c.reader.eof(&mut |_| {})
        } else {
            c.reader
                .feed(&self.buf[..n], &mut |e| {
                    if let ResponseEvent::Head(h) = e {
                        head = Some(h);
                    }
                })
                .map(drop)
        };
        let target = c
            .req
            .as_ref()
            .map(|r| r.url.authority())
            .unwrap_or_default();
        if let Err(e) = r {
            self.broken(reg, t, format!("proxy CONNECT {target}: {}", e.0));
            return None;
        }
        let Some(h) = head else {
            if n == 0 {
                let msg = format!("proxy CONNECT {target}: connection closed");
                self.broken(reg, t, msg);
                return None;
            }
            return Some(true);
        };
        if h.status != 200 {
            let msg = format!("proxy CONNECT {target}: {} {}", h.status, h.reason);
            self.broken(reg, t, msg);
            return None;
        }
        let req = c.req.as_ref()?;
        c.tls = c.opening.take();
        c.out.clear();
        c.written = 0;
        if let Err(e) = req.write(&mut c.out, &[]) {
            self.broken(reg, t, e);
            return None;
        }
        c.reader = ResponseReader::new(false);
        c.phase = Phase::Writing;
        self.ready(reg, t, false, true);
        Some(false)
    }

    /// An idle keep-alive connection.
    fn park(&mut self, t: usize) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        c.req = None;
        c.phase = Phase::Reading;
        // The key is cloned only for a host's first idle connection.
        let old = if let Some(v) = self.idle.get_mut(&c.key) {
            v.push(t);
            (v.len() > MAX_IDLE_PER_HOST).then(|| v.remove(0))
        } else {
            self.idle.insert(c.key.clone(), vec![t]);
            None
        };
        if let Some(old) = old {
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
        self.dial(reg, req);
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

/// The mio client as remote write's transport.
pub(crate) struct MioTransport<'a> {
    pub(crate) net: &'a mut Net,
    pub(crate) reg: &'a Registry,
}

impl trawl_io::remote::Transport for MioTransport<'_> {
    fn post(&mut self, id: RemoteId, p: Post<'_>) {
        self.net.post(self.reg, Caller::Remote(id), p);
    }
    fn cancel(&mut self, id: RemoteId) {
        self.net.cancel(self.reg, Caller::Remote(id));
    }
}
