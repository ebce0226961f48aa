//! A ZooKeeper client session, sans IO: the connection to one server of the list at a
//! time (over [`IoOp::Stream`]), the session handshake, reads with watches, pings,
//! reconnects across the servers, and a session that expired replaced by a new one.
//!
//! It behaves as the Go client 3.x uses (`github.com/go-zookeeper/zk`, `Conn`): the
//! servers are shuffled once (here by the agent's seed); a lost connection moves to the
//! next one; after every server failed in a row the client pauses a second and fails
//! the requests waiting for a connection; requests in flight when a connection drops
//! fail; the negotiated timeout sets the receive timeout (two thirds of it) and the ping
//! interval (half of that); a resumed session re-arms its watches with `setWatches` from
//! the last zxid seen; an expired session drops every watch (the Go client's
//! `EventNotWatching`) and a new session is opened.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::jute::{
    self, ConnectRequest, ConnectResponse, Framer, Reader, ReplyHeader, Request, WatcherEvent, err,
    event,
};
use crate::io::{IoEvent, IoOp, IoQueue, Origin, RequestId, StreamOpen};
use crate::time::Instant;

/// How long a TCP connect may take (the Go client's `connectTimeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the handshake's answer may take (ten connect timeouts, as the Go client).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause after every server failed in a row.
const CYCLE_PAUSE: Duration = Duration::from_secs(1);
/// Bytes of paths in one `setWatches` request.
const SET_WATCHES_MAX: usize = 128 * 1024;
/// A data watch, in [`Session`]'s watch map.
const DATA_WATCH: u8 = 1;
/// A child watch.
const CHILD_WATCH: u8 = 2;
/// The port of a server written without one.
pub(crate) const DEFAULT_PORT: u16 = 2181;

/// A server of the list: host and port as written (`port` is `Err` with the text if it
/// is not a port number, which fails like a refused connection).
pub(crate) type Server = (String, Result<u16, String>);

/// Splits `host:port`, `[v6]:port`, a bare host or a bare IPv6 address, as the Go
/// client's `FormatServers` (which adds the default port where `SplitHostPort` fails).
pub(crate) fn parse_server(s: &str) -> Server {
    let s = s.trim();
    let split = if let Some(rest) = s.strip_prefix('[') {
        rest.split_once("]:")
    } else if s.matches(':').count() == 1 {
        s.split_once(':')
    } else {
        None
    };
    match split {
        Some((h, p)) => (
            h.to_owned(),
            p.parse::<u16>().map_err(|_| format!("invalid port {p:?}")),
        ),
        None => (
            s.trim_start_matches('[').trim_end_matches(']').to_owned(),
            Ok(DEFAULT_PORT),
        ),
    }
}

/// Why a read failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// The node does not exist.
    NoNode,
    /// Anything else (connection lost, no server, an error code).
    Failed(String),
}

/// What a read returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `getData`: the node's data (null reads as empty).
    Data(Vec<u8>),
    /// `getChildren2`: the children's names.
    Children(Vec<String>),
}

/// What the session reports to its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SessionEvent {
    /// A read finished. `tag` is what the caller passed.
    Read {
        /// The caller's tag.
        tag: u64,
        /// The node.
        path: String,
        /// A data read (else children).
        data: bool,
        /// The answer.
        result: Result<Reply, ReadError>,
    },
    /// A watch the session held fired for `path` (node deleted, data or children
    /// changed).
    Watch {
        /// The node.
        path: String,
    },
    /// The session expired: every watch is gone (the Go client's `EventNotWatching`).
    Expired,
}

#[derive(Debug)]
enum Phase {
    /// TCP connecting.
    Connecting,
    /// Handshake sent, answer awaited.
    Handshake,
    /// Session established.
    Ready,
}

#[derive(Debug)]
struct Conn {
    id: RequestId,
    phase: Phase,
    framer: Framer,
    /// The phase's deadline (connect, handshake) or the receive timeout (ready).
    deadline: Instant,
    /// When the next ping is due (ready).
    ping_at: Instant,
}

#[derive(Debug)]
struct Pending {
    tag: u64,
    path: String,
    data: bool,
}

/// One client session over a list of servers.
#[derive(Debug)]
pub(crate) struct Session {
    servers: Vec<Server>,
    /// Index of the server of the current (or next) connection.
    at: usize,
    /// Servers failed in a row since the last session established.
    failed_in_row: usize,
    timeout_ms: i32,
    origin: Origin,
    conn: Option<Conn>,
    /// When to connect again after a pause (no connection meanwhile).
    reconnect_at: Option<Instant>,
    session_id: i64,
    passwd: Vec<u8>,
    last_zxid: i64,
    negotiated: Duration,
    next_xid: i32,
    /// Requests sent on the current connection, by xid.
    pending: BTreeMap<i32, Pending>,
    /// Requests waiting for a session, in order.
    waiting: Vec<Pending>,
    /// Watches the session holds, by node: data (bit 0), children (bit 1). One map
    /// for both: every node trawl reads has both.
    watches: BTreeMap<String, u8>,
    /// Bytes for the current connection not handed to the shell yet: everything one
    /// call into the provider writes goes out as one [`IoQueue::send`] ([`Session::flush`]).
    out: Vec<u8>,
    /// Reports for the user, in order.
    pub(crate) events: Vec<SessionEvent>,
    /// Why the last connection failed or ended (named when requests fail for want of
    /// a server).
    last_error: String,
    stopped: bool,
}

impl Session {
    /// A session over `servers` (already shuffled), asking for `timeout`.
    pub(crate) fn new(servers: Vec<Server>, timeout: Duration, provider: Arc<str>) -> Session {
        Session {
            servers,
            at: 0,
            failed_in_row: 0,
            timeout_ms: timeout.as_millis().min(i32::MAX as u128) as i32,
            origin: Origin::Discovery { provider },
            conn: None,
            reconnect_at: None,
            session_id: 0,
            passwd: vec![0; 16],
            last_zxid: 0,
            negotiated: timeout,
            next_xid: 0,
            pending: BTreeMap::new(),
            waiting: Vec::new(),
            watches: BTreeMap::new(),
            out: Vec::new(),
            events: Vec::new(),
            last_error: String::new(),
            stopped: false,
        }
    }

    /// Opens the first connection.
    pub(crate) fn start(&mut self, now: Instant, io: &mut IoQueue) {
        self.connect(now, io);
    }

    /// True while a session is established.
    pub(crate) fn is_ready(&self) -> bool {
        matches!(
            self.conn,
            Some(Conn {
                phase: Phase::Ready,
                ..
            })
        )
    }

    /// Reads a node's data (`data`) or children, leaving a watch; the answer comes as a
    /// [`SessionEvent::Read`] with `tag`.
    pub(crate) fn read(&mut self, now: Instant, tag: u64, path: &str, data: bool) {
        let p = Pending {
            tag,
            path: path.to_owned(),
            data,
        };
        if self.is_ready() {
            self.send(now, p);
        } else {
            self.waiting.push(p);
        }
    }

    fn send(&mut self, now: Instant, p: Pending) {
        let ping = self.ping_interval();
        let Some(c) = &mut self.conn else { return };
        self.next_xid = if self.next_xid >= i32::MAX - 1 {
            1
        } else {
            self.next_xid + 1
        };
        let xid = self.next_xid;
        let req = if p.data {
            Request::GetData {
                path: p.path.clone(),
                watch: true,
            }
        } else {
            Request::GetChildren {
                path: p.path.clone(),
                watch: true,
            }
        };
        self.out.extend_from_slice(&req.encode(xid));
        c.ping_at = now + ping;
        self.pending.insert(xid, p);
    }

    fn recv_timeout(&self) -> Duration {
        self.negotiated * 2 / 3
    }

    fn ping_interval(&self) -> Duration {
        (self.recv_timeout() / 2).max(Duration::from_millis(1))
    }

    fn connect(&mut self, now: Instant, io: &mut IoQueue) {
        if self.stopped || self.servers.is_empty() {
            return;
        }
        let (host, port) = self.servers[self.at % self.servers.len()].clone();
        match port {
            Ok(port) => {
                let id = io.start(IoOp::Stream(StreamOpen {
                    host,
                    port,
                    unix_path: None,
                    connect_timeout: CONNECT_TIMEOUT,
                    origin: self.origin.clone(),
                }));
                self.conn = Some(Conn {
                    id,
                    phase: Phase::Connecting,
                    framer: Framer::new(),
                    deadline: now + CONNECT_TIMEOUT,
                    ping_at: now,
                });
            }
            Err(e) => {
                self.last_error = format!("dial tcp {host}: {e}");
                self.next_server(now, io);
            }
        }
    }

    /// The current server failed (or never answered): the next one, after a pause once
    /// all failed in a row.
    fn next_server(&mut self, now: Instant, io: &mut IoQueue) {
        self.at = (self.at + 1) % self.servers.len().max(1);
        self.failed_in_row += 1;
        if self.failed_in_row >= self.servers.len() {
            self.failed_in_row = 0;
            for p in std::mem::take(&mut self.waiting) {
                self.events.push(SessionEvent::Read {
                    tag: p.tag,
                    path: p.path,
                    data: p.data,
                    result: Err(ReadError::Failed(format!(
                        "could not connect to a server (last: {})",
                        self.last_error
                    ))),
                });
            }
            self.reconnect_at = Some(now + CYCLE_PAUSE);
        } else {
            self.connect(now, io);
        }
    }

    /// The connection ended: requests in flight fail, the next server is tried.
    fn lost(&mut self, now: Instant, io: &mut IoQueue, why: String, cancel: bool) {
        let Some(c) = self.conn.take() else { return };
        // What was not handed over yet was for this connection.
        self.out.clear();
        if cancel {
            io.cancel(c.id);
        }
        let established = matches!(c.phase, Phase::Ready);
        self.last_error.clone_from(&why);
        for (_, p) in std::mem::take(&mut self.pending) {
            self.events.push(SessionEvent::Read {
                tag: p.tag,
                path: p.path,
                data: p.data,
                result: Err(ReadError::Failed(format!("connection closed: {why}"))),
            });
        }
        if established {
            // A session that worked: try the next server at once, a fresh cycle.
            self.failed_in_row = 0;
            self.at = (self.at + 1) % self.servers.len().max(1);
            self.connect(now, io);
        } else {
            self.next_server(now, io);
        }
    }

    /// An event of one of the session's operations; false if `id` is not the session's.
    pub(crate) fn handle_io(
        &mut self,
        now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
    ) -> bool {
        if self.conn.as_ref().is_none_or(|c| c.id != id) {
            return false;
        }
        match ev {
            IoEvent::StreamOpened => {
                let req = ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: self.last_zxid,
                    timeout_ms: self.timeout_ms,
                    session_id: self.session_id,
                    passwd: self.passwd.clone(),
                };
                if let Some(c) = &mut self.conn {
                    self.out.extend_from_slice(&req.encode());
                    c.phase = Phase::Handshake;
                    c.deadline = now + HANDSHAKE_TIMEOUT;
                }
            }
            IoEvent::StreamData(b) => {
                if let Some(c) = &mut self.conn {
                    c.framer.push(b);
                }
                if let Err(e) = self.frames(now, io) {
                    self.lost(now, io, e, true);
                }
            }
            IoEvent::StreamClosed => self.lost(now, io, "EOF".into(), false),
            IoEvent::Failed(e) => self.lost(now, io, e.to_owned(), false),
            _ => self.lost(now, io, "unexpected event on a stream".into(), true),
        }
        true
    }

    /// Handles every whole frame received.
    fn frames(&mut self, now: Instant, io: &mut IoQueue) -> Result<(), String> {
        loop {
            let Some(c) = &mut self.conn else {
                return Ok(());
            };
            let frame = match c.framer.next_frame() {
                Ok(Some(f)) => f.to_vec(),
                Ok(None) => return Ok(()),
                Err(e) => return Err(e.0),
            };
            c.deadline = now + self.negotiated * 2 / 3;
            if matches!(c.phase, Phase::Handshake) {
                self.handshake(now, io, &frame)?;
            } else {
                self.reply(&frame)?;
            }
        }
    }

    fn handshake(&mut self, now: Instant, io: &mut IoQueue, frame: &[u8]) -> Result<(), String> {
        let r = ConnectResponse::decode(frame).map_err(|e| format!("handshake: {e}"))?;
        if r.timeout_ms <= 0 {
            // The session asked for is gone: every watch with it; a new session next.
            self.session_id = 0;
            self.passwd = vec![0; 16];
            self.last_zxid = 0;
            self.watches.clear();
            self.events.push(SessionEvent::Expired);
            self.out.clear();
            if let Some(c) = self.conn.take() {
                io.cancel(c.id);
            }
            self.connect(now, io);
            return Ok(());
        }
        self.session_id = r.session_id;
        self.passwd = r.passwd;
        self.negotiated = Duration::from_millis(r.timeout_ms as u64);
        self.failed_in_row = 0;
        let recv = self.recv_timeout();
        let ping = self.ping_interval();
        let Some(c) = &mut self.conn else {
            return Ok(());
        };
        c.phase = Phase::Ready;
        c.deadline = now + recv;
        c.ping_at = now + ping;
        // The watches again, in requests of at most 128 KiB of paths each (the Java
        // client's `SET_WATCHES_MAX_LENGTH`): one request for a large tree would pass
        // the server's `jute.maxbuffer` and be refused with the connection.
        let (mut data, mut child, mut bytes) = (Vec::new(), Vec::new(), 0usize);
        let mut batches = Vec::new();
        for (path, w) in &self.watches {
            if w & DATA_WATCH != 0 {
                data.push(path.clone());
                bytes += path.len() + 4;
            }
            if w & CHILD_WATCH != 0 {
                child.push(path.clone());
                bytes += path.len() + 4;
            }
            if bytes >= SET_WATCHES_MAX {
                batches.push((std::mem::take(&mut data), std::mem::take(&mut child)));
                bytes = 0;
            }
        }
        if !data.is_empty() || !child.is_empty() {
            batches.push((data, child));
        }
        for (data, child) in batches {
            let set = Request::SetWatches {
                relative_zxid: self.last_zxid,
                data,
                exist: Vec::new(),
                child,
            };
            self.out
                .extend_from_slice(&set.encode(jute::XID_SET_WATCHES));
        }
        for p in std::mem::take(&mut self.waiting) {
            self.send(now, p);
        }
        Ok(())
    }

    fn reply(&mut self, frame: &[u8]) -> Result<(), String> {
        let mut r = Reader::new(frame);
        let h = ReplyHeader::read(&mut r).map_err(|e| e.0)?;
        if h.zxid > 0 {
            self.last_zxid = h.zxid;
        }
        match h.xid {
            jute::XID_WATCH => {
                let w = WatcherEvent::read(&mut r).map_err(|e| e.0)?;
                let (data, child) = match w.kind {
                    event::DELETED | event::DATA_CHANGED => (true, true),
                    event::CHILDREN_CHANGED => (false, true),
                    // Created (exist watches, which trawl never sets) and state events.
                    _ => (false, false),
                };
                let mask = if data { DATA_WATCH } else { 0 } | if child { CHILD_WATCH } else { 0 };
                let mut fired = false;
                if let Some(held) = self.watches.get_mut(&w.path) {
                    fired = *held & mask != 0;
                    *held &= !mask;
                    if *held == 0 {
                        self.watches.remove(&w.path);
                    }
                }
                if fired {
                    self.events.push(SessionEvent::Watch { path: w.path });
                }
            }
            jute::XID_PING | jute::XID_SET_WATCHES => {}
            xid => {
                // An answer to nothing asked (the Go client logs and drops it).
                let Some(p) = self.pending.remove(&xid) else {
                    return Ok(());
                };
                let result = if h.err == err::NO_NODE {
                    Err(ReadError::NoNode)
                } else if h.err != err::OK {
                    Err(ReadError::Failed(jute::error_name(h.err)))
                } else if p.data {
                    let d = r.buffer().map_err(|e| e.0)?.unwrap_or_default().to_vec();
                    r.stat().map_err(|e| e.0)?;
                    Ok(Reply::Data(d))
                } else {
                    let names = r.strings().map_err(|e| e.0)?;
                    let names = names.into_iter().map(str::to_owned).collect();
                    r.stat().map_err(|e| e.0)?;
                    Ok(Reply::Children(names))
                };
                if result.is_ok() {
                    let bit = if p.data { DATA_WATCH } else { CHILD_WATCH };
                    match self.watches.get_mut(&p.path) {
                        Some(w) => *w |= bit,
                        None => {
                            self.watches.insert(p.path.clone(), bit);
                        }
                    }
                }
                self.events.push(SessionEvent::Read {
                    tag: p.tag,
                    path: p.path,
                    data: p.data,
                    result,
                });
            }
        }
        Ok(())
    }

    /// Acts on a deadline that passed.
    pub(crate) fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue) {
        if let Some(t) = self.reconnect_at
            && t <= now
        {
            self.reconnect_at = None;
            self.connect(now, io);
            return;
        }
        let ping = self.ping_interval();
        let Some(c) = &mut self.conn else { return };
        if c.deadline <= now {
            let why = match c.phase {
                Phase::Connecting => "connect timed out",
                Phase::Handshake => "no answer to the session handshake",
                Phase::Ready => "nothing received within the receive timeout",
            };
            self.lost(now, io, why.into(), true);
            return;
        }
        if matches!(c.phase, Phase::Ready) && c.ping_at <= now {
            self.out
                .extend_from_slice(&Request::Ping.encode(jute::XID_PING));
            c.ping_at = now + ping;
        }
    }

    /// Hands what was written since the last flush to the shell, in one piece.
    pub(crate) fn flush(&mut self, io: &mut IoQueue) {
        if self.out.is_empty() {
            return;
        }
        match &self.conn {
            Some(c) => io.send(c.id, std::mem::take(&mut self.out)),
            None => self.out.clear(),
        }
    }

    /// The next deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if let Some(t) = self.reconnect_at {
            return Some(t);
        }
        let c = self.conn.as_ref()?;
        Some(match c.phase {
            Phase::Ready => c.deadline.min(c.ping_at),
            _ => c.deadline,
        })
    }

    /// Ends the session: closes it on the server (so its watches go at once) and the
    /// connection.
    pub(crate) fn stop(&mut self, io: &mut IoQueue) {
        self.stopped = true;
        self.reconnect_at = None;
        if let Some(c) = self.conn.take() {
            let mut last = std::mem::take(&mut self.out);
            if matches!(c.phase, Phase::Ready) {
                last.extend_from_slice(&Request::Close.encode(i32::MAX));
            }
            if !last.is_empty() {
                io.send(c.id, last);
            }
            io.cancel(c.id);
        }
        self.pending.clear();
        self.waiting.clear();
    }

    /// Operations in flight (the connection).
    pub(crate) fn in_flight(&self) -> usize {
        usize::from(self.conn.is_some())
    }

    /// True if `id` is the session's connection.
    pub(crate) fn owns(&self, id: RequestId) -> bool {
        self.conn.as_ref().is_some_and(|c| c.id == id)
    }
}
