//! Byte streams the core speaks a protocol over ([`IoOp::Stream`](trawl_core::io::IoOp):
//! ZooKeeper sessions), on the event loop. Only bytes move here: the core frames,
//! times out and closes. Names are resolved by the core's stub resolver on the loop's own
//! DNS sockets, as for HTTP ([`trawl_io::resolve`]), every address tried in order.
//!
//! Reads are bounded: at most [`READ_PER_TURN`] bytes per stream per turn of the loop (a
//! stream with more waits for the next turn, so a flooding peer cannot hold the loop);
//! what the core sends waits in the stream's buffer until the socket takes it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use trawl_core::io::{OwnedIoEvent, RequestId, StreamOpen};
use trawl_core::resolver::host::{DnsIo, HostLookup};
use trawl_io::resolve::{ResolverFiles, ResolverOptions};

use crate::dns::Dns;

/// First token of the streams' sockets.
pub(crate) const STREAM_BASE: usize = 1 << 17;
/// First token of the streams' name lookups' DNS sockets.
const STREAM_DNS: usize = STREAM_BASE + (1 << 16);
/// One past the last (below the agent's DNS sockets).
pub(crate) const STREAM_END: usize = crate::dns::DNS_BASE;
/// Bytes one stream may read per turn of the loop.
pub(crate) const READ_PER_TURN: usize = 256 * 1024;
/// Bytes the core may queue on one stream before the stream fails (a peer that stops
/// reading must not make the shell hold the core's writes without bound).
const SEND_LIMIT: usize = 16 << 20;

struct Stream {
    port: u16,
    sock: Option<(usize, TcpStream)>,
    open: bool,
    out: Vec<u8>,
    /// Addresses left to try, and the first failure.
    next: Vec<SocketAddr>,
    first_error: Option<String>,
}

/// The streams in flight.
pub(crate) struct Streams {
    by_id: BTreeMap<RequestId, Stream>,
    by_token: BTreeMap<usize, RequestId>,
    next_token: usize,
    lookups: BTreeMap<RequestId, HostLookup>,
    dns: Dns<(RequestId, RequestId)>,
    files: ResolverFiles,
    start: std::time::Instant,
    buf: Vec<u8>,
    /// Streams with bytes left to read in the next turn.
    backlog: BTreeSet<RequestId>,
    /// Outcomes for the agent, in order.
    pub(crate) events: VecDeque<(RequestId, OwnedIoEvent)>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("open", &self.by_id.len())
            .finish()
    }
}

impl Streams {
    /// No streams; names resolve through `resolver`.
    pub(crate) fn new(resolver: ResolverOptions) -> Streams {
        Streams {
            by_id: BTreeMap::new(),
            by_token: BTreeMap::new(),
            next_token: STREAM_BASE,
            lookups: BTreeMap::new(),
            dns: Dns::new(STREAM_DNS..STREAM_END),
            files: ResolverFiles::new(resolver),
            start: std::time::Instant::now(),
            buf: vec![0; 64 * 1024],
            backlog: BTreeSet::new(),
            events: VecDeque::new(),
        }
    }

    /// True if `t` is a stream's socket.
    pub(crate) fn owns_token(&self, t: usize) -> bool {
        (STREAM_BASE..STREAM_DNS).contains(&t)
    }

    /// True if `t` is a lookup's DNS socket.
    pub(crate) fn owns_dns_token(&self, t: usize) -> bool {
        self.dns.owns_token(t)
    }

    fn now(&self) -> trawl_core::time::Instant {
        trawl_core::time::Instant(self.start.elapsed().as_nanos() as u64)
    }

    fn fail(&mut self, reg: &Registry, id: RequestId, msg: String) {
        self.close(reg, id);
        self.events.push_back((id, OwnedIoEvent::Failed(msg)));
    }

    /// Starts a stream: resolves its host if it is a name, then connects.
    pub(crate) fn open(&mut self, reg: &Registry, id: RequestId, s: StreamOpen) {
        self.by_id.insert(
            id,
            Stream {
                port: s.port,
                sock: None,
                open: false,
                out: Vec::new(),
                next: Vec::new(),
                first_error: None,
            },
        );
        let host = s.host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.connect(reg, id, SocketAddr::new(ip, s.port));
        }
        let now = self.now();
        let l = self.files.lookup(host, now);
        self.lookups.insert(id, l);
        self.pump(reg, id);
    }

    /// Carries out what lookup `id` asks, and connects once it has an answer.
    fn pump(&mut self, reg: &Registry, id: RequestId) {
        loop {
            let Some(l) = self.lookups.get_mut(&id) else {
                return;
            };
            let Some(io) = l.poll_io() else { break };
            match io {
                DnsIo::Start(x, q) => {
                    if let Err(e) = self.dns.start(reg, (id, x), &q) {
                        let now = self.now();
                        if let Some(l) = self.lookups.get_mut(&id) {
                            l.handle_reply(now, x, Err(&e));
                        }
                    }
                }
                DnsIo::Cancel(x) => self.dns.cancel(reg, (id, x)),
            }
        }
        let Some(result) = self.lookups.get(&id).and_then(|l| l.result().cloned()) else {
            return;
        };
        self.lookups.remove(&id);
        let Some(port) = self.by_id.get(&id).map(|s| s.port) else {
            return;
        };
        match result {
            Ok(addrs) => {
                let mut addrs: Vec<SocketAddr> = addrs
                    .iter()
                    .filter_map(|a| a.parse::<IpAddr>().ok())
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect();
                if addrs.is_empty() {
                    return self.fail(reg, id, "lookup: no usable address".into());
                }
                let first = addrs.remove(0);
                if let Some(s) = self.by_id.get_mut(&id) {
                    s.next = addrs;
                }
                self.connect(reg, id, first);
            }
            Err(e) => self.fail(reg, id, format!("dial tcp: {e}")),
        }
    }

    /// A lookup's DNS socket is ready.
    pub(crate) fn dns_ready(&mut self, reg: &Registry, t: usize) {
        if let Some(((id, x), ev)) = self.dns.ready(reg, t) {
            let now = self.now();
            if let Some(l) = self.lookups.get_mut(&id) {
                let reply = match &ev {
                    OwnedIoEvent::DnsReply(m) => Ok(m.as_slice()),
                    OwnedIoEvent::Failed(e) => Err(e.as_str()),
                    _ => Err("unexpected answer"),
                };
                l.handle_reply(now, x, reply);
            }
            self.pump(reg, id);
        }
    }

    /// When the next lookup exchange times out.
    pub(crate) fn poll_timeout(&self) -> Option<std::time::Instant> {
        let t = self
            .lookups
            .values()
            .filter_map(|l| l.poll_timeout())
            .min()?;
        Some(self.start + std::time::Duration::from_nanos(t.0))
    }

    /// Moves the lookups whose exchanges timed out on.
    pub(crate) fn timeouts(&mut self, reg: &Registry) {
        let now = self.now();
        let due: Vec<RequestId> = self
            .lookups
            .iter()
            .filter(|(_, l)| l.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(l) = self.lookups.get_mut(&id) {
                l.handle_timeout(now);
            }
            self.pump(reg, id);
        }
    }

    fn token(&mut self) -> Option<usize> {
        for _ in 0..(STREAM_DNS - STREAM_BASE) {
            if !(STREAM_BASE..STREAM_DNS).contains(&self.next_token) {
                self.next_token = STREAM_BASE;
            }
            let t = self.next_token;
            self.next_token += 1;
            if !self.by_token.contains_key(&t) {
                return Some(t);
            }
        }
        None
    }

    fn connect(&mut self, reg: &Registry, id: RequestId, addr: SocketAddr) {
        let Some(t) = self.token() else {
            return self.fail(reg, id, "too many streams".into());
        };
        let mut sock = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => return self.next_address(reg, id, format!("dial tcp {addr}: {e}")),
        };
        if let Err(e) = reg.register(&mut sock, Token(t), Interest::READABLE | Interest::WRITABLE) {
            return self.fail(reg, id, format!("register socket: {e}"));
        }
        self.by_token.insert(t, id);
        if let Some(s) = self.by_id.get_mut(&id) {
            s.sock = Some((t, sock));
        }
    }

    /// The address being tried failed: the next one, or the stream fails with the
    /// first failure.
    fn next_address(&mut self, reg: &Registry, id: RequestId, err: String) {
        let Some(s) = self.by_id.get_mut(&id) else {
            return;
        };
        if let Some((t, mut sock)) = s.sock.take() {
            let _ = reg.deregister(&mut sock);
            self.by_token.remove(&t);
        }
        let first = s.first_error.get_or_insert(err).clone();
        if s.next.is_empty() {
            return self.fail(reg, id, first);
        }
        let addr = s.next.remove(0);
        self.connect(reg, id, addr);
    }

    /// Queues bytes to write on stream `id` and writes what the socket takes now.
    pub(crate) fn send(&mut self, reg: &Registry, id: RequestId, data: &[u8]) {
        let Some(s) = self.by_id.get_mut(&id) else {
            return;
        };
        if s.out.len() + data.len() > SEND_LIMIT {
            return self.fail(reg, id, "peer does not read what is sent".into());
        }
        s.out.extend_from_slice(data);
        if s.open {
            self.flush(reg, id);
        }
    }

    fn flush(&mut self, reg: &Registry, id: RequestId) {
        let Some(s) = self.by_id.get_mut(&id) else {
            return;
        };
        let Some((_, sock)) = &mut s.sock else { return };
        let mut written = 0;
        let mut err = None;
        while written < s.out.len() {
            match sock.write(&s.out[written..]) {
                Ok(0) => {
                    err = Some("connection closed".to_owned());
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    err = Some(e.to_string());
                    break;
                }
            }
        }
        s.out.drain(..written);
        if let Some(e) = err {
            self.fail(reg, id, e);
        }
    }

    /// Drops stream `id` (the core cancelled it, or it ended).
    pub(crate) fn cancel(&mut self, reg: &Registry, id: RequestId) {
        self.close(reg, id);
        self.lookups.remove(&id);
    }

    fn close(&mut self, reg: &Registry, id: RequestId) {
        self.backlog.remove(&id);
        if let Some(mut s) = self.by_id.remove(&id)
            && let Some((t, mut sock)) = s.sock.take()
        {
            let _ = reg.deregister(&mut sock);
            self.by_token.remove(&t);
        }
    }

    /// A stream's socket is ready.
    pub(crate) fn ready(&mut self, reg: &Registry, t: usize, readable: bool, writable: bool) {
        let Some(&id) = self.by_token.get(&t) else {
            return;
        };
        let Some(s) = self.by_id.get_mut(&id) else {
            return;
        };
        if !s.open {
            let Some((_, sock)) = &mut s.sock else { return };
            match sock.take_error() {
                Ok(Some(e)) | Err(e) => {
                    let addr = sock.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                    return self.next_address(reg, id, format!("dial tcp {addr}: {e}"));
                }
                Ok(None) => {}
            }
            match sock.peer_addr() {
                Ok(_) => {
                    s.open = true;
                    self.events.push_back((id, OwnedIoEvent::StreamOpened));
                }
                Err(e) if e.kind() == ErrorKind::NotConnected => return,
                Err(e) => return self.next_address(reg, id, format!("dial tcp: {e}")),
            }
            self.flush(reg, id);
        } else if writable {
            self.flush(reg, id);
        }
        if readable {
            self.read(reg, id);
        }
    }

    /// Reads what the socket holds, up to the turn's bound.
    fn read(&mut self, reg: &Registry, id: RequestId) {
        let mut budget = READ_PER_TURN;
        loop {
            let Some(s) = self.by_id.get_mut(&id) else {
                return;
            };
            let Some((_, sock)) = &mut s.sock else { return };
            if budget == 0 {
                self.backlog.insert(id);
                return;
            }
            let room = budget.min(self.buf.len());
            match sock.read(&mut self.buf[..room]) {
                Ok(0) => {
                    self.close(reg, id);
                    self.events.push_back((id, OwnedIoEvent::StreamClosed));
                    return;
                }
                Ok(n) => {
                    budget -= n;
                    let data = self.buf[..n].to_vec();
                    self.events.push_back((id, OwnedIoEvent::StreamData(data)));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.fail(reg, id, e.to_string()),
            }
        }
    }

    /// True if a stream has bytes left over from the last turn.
    pub(crate) fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Reads on for the streams the last turn left with bytes.
    pub(crate) fn drain_backlog(&mut self, reg: &Registry) {
        let ids: Vec<RequestId> = std::mem::take(&mut self.backlog).into_iter().collect();
        for id in ids {
            self.read(reg, id);
        }
    }
}
