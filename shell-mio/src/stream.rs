//! Byte streams the core speaks a protocol over ([`IoOp::Stream`](trawl_core::io::IoOp):
//! ZooKeeper sessions, HTTP to a Docker Engine's Unix socket), on the event loop. Only
//! bytes move here: the core frames, times out and closes. TCP streams' names are
//! resolved as for HTTP ([`crate::lookups`]), every address tried in order; a Unix
//! stream connects to its path.
//!
//! Reads are bounded: at most [`READ_PER_TURN`] bytes per stream per turn of the loop (a
//! stream with more waits for the next turn, so a flooding peer cannot hold the loop);
//! what the core sends waits in the stream's buffer until the socket takes it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use trawl_core::io::{OwnedIoEvent, RequestId, StreamOpen};
use trawl_io::resolve::ResolverOptions;

use crate::lookups::{Lookups, Resolved};

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

/// A stream's socket.
#[derive(Debug)]
enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Sock {
    fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
        match self {
            Sock::Tcp(s) => s.take_error(),
            Sock::Unix(s) => s.take_error(),
        }
    }

    /// `Ok` once connected; `NotConnected` while connecting.
    fn connected(&self) -> std::io::Result<()> {
        match self {
            Sock::Tcp(s) => s.peer_addr().map(drop),
            Sock::Unix(s) => s.peer_addr().map(drop),
        }
    }

    /// The peer, for messages.
    fn peer(&self) -> String {
        match self {
            Sock::Tcp(s) => s.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
            Sock::Unix(s) => s
                .peer_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                .unwrap_or_default(),
        }
    }

    fn net(&self) -> &'static str {
        match self {
            Sock::Tcp(_) => "tcp",
            Sock::Unix(_) => "unix",
        }
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sock::Tcp(s) => s.flush(),
            Sock::Unix(s) => s.flush(),
        }
    }
}

impl Source for Sock {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> std::io::Result<()> {
        match self {
            Sock::Tcp(s) => s.register(r, t, i),
            Sock::Unix(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> std::io::Result<()> {
        match self {
            Sock::Tcp(s) => s.reregister(r, t, i),
            Sock::Unix(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> std::io::Result<()> {
        match self {
            Sock::Tcp(s) => s.deregister(r),
            Sock::Unix(s) => s.deregister(r),
        }
    }
}

struct Stream {
    sock: Option<(usize, Sock)>,
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
    /// Streams waiting for their name, with their port.
    lookups: Lookups<RequestId, u16>,
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
            lookups: Lookups::new(resolver, STREAM_DNS..STREAM_END),
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
        self.lookups.owns_token(t)
    }

    fn fail(&mut self, reg: &Registry, id: RequestId, msg: String) {
        self.close(reg, id);
        self.events.push_back((id, OwnedIoEvent::Failed(msg)));
    }

    /// Starts a stream: connects to its Unix socket, or resolves its host if it is a
    /// name, then connects.
    pub(crate) fn open(&mut self, reg: &Registry, id: RequestId, s: StreamOpen) {
        self.by_id.insert(
            id,
            Stream {
                sock: None,
                open: false,
                out: Vec::new(),
                next: Vec::new(),
                first_error: None,
            },
        );
        if let Some(path) = s.unix_path {
            return match UnixStream::connect(&path) {
                Ok(sock) => self.register(reg, id, Sock::Unix(sock)),
                Err(e) => self.fail(reg, id, format!("dial unix {path}: {e}")),
            };
        }
        let host = s.host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.connect(reg, id, SocketAddr::new(ip, s.port));
        }
        if let Some(r) = self.lookups.start(reg, id, host, s.port) {
            self.resolved(reg, r);
        }
    }

    /// A lookup finished: connect to its first address, or fail the stream.
    fn resolved(&mut self, reg: &Registry, (id, port, result): Resolved<RequestId, u16>) {
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
        if let Some(r) = self.lookups.dns_ready(reg, t) {
            self.resolved(reg, r);
        }
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
        match TcpStream::connect(addr) {
            Ok(s) => self.register(reg, id, Sock::Tcp(s)),
            Err(e) => self.next_address(reg, id, format!("dial tcp {addr}: {e}")),
        }
    }

    fn register(&mut self, reg: &Registry, id: RequestId, mut sock: Sock) {
        let Some(t) = self.token() else {
            return self.fail(reg, id, "too many streams".into());
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
        self.lookups.cancel(reg, id);
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
                    let m = format!("dial {} {}: {e}", sock.net(), sock.peer());
                    return self.next_address(reg, id, m);
                }
                Ok(None) => {}
            }
            match sock.connected() {
                Ok(()) => {
                    s.open = true;
                    self.events.push_back((id, OwnedIoEvent::StreamOpened));
                }
                Err(e) if e.kind() == ErrorKind::NotConnected => return,
                Err(e) => {
                    let m = format!("dial {}: {e}", sock.net());
                    return self.next_address(reg, id, m);
                }
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
