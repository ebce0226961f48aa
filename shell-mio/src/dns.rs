//! DNS exchanges the core asks for ([`IoOp::Dns`](trawl_core::io::IoOp)): one UDP
//! datagram or one TCP exchange (two-byte length prefix) per query, on the event loop.
//! Only bytes move here: the core encodes the query, decodes the answer and keeps the
//! deadline (a cancel closes the socket).
//!
//! A UDP socket is connected to the server, so the kernel drops datagrams from anyone
//! else; a datagram whose id is not the query's is ignored too (a late answer to an
//! earlier query). Reads are bounded: one datagram of at most 64 KiB, one TCP message of
//! at most 64 KiB.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv6Addr, SocketAddr};

use mio::net::{TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};
use trawl_core::io::{DnsQuery, OwnedIoEvent, RequestId};
use trawl_io::dns::server_addr;

/// First token of the agent's DNS sockets (DNS discovery).
pub(crate) const DNS_BASE: usize = 1 << 18;
/// First token of the HTTP client's DNS sockets (names of targets, endpoints, proxies),
/// one past the agent's last.
pub(crate) const DNS_MID: usize = DNS_BASE + (DNS_END - DNS_BASE) / 2;
/// One past the last (below the web server's tokens).
pub(crate) const DNS_END: usize = crate::web::WEB_BASE;

enum Sock {
    Udp {
        sock: UdpSocket,
        query: Vec<u8>,
        sent: bool,
    },
    Tcp {
        stream: TcpStream,
        /// The length-prefixed query and how much of it went out.
        out: Vec<u8>,
        written: usize,
        /// What came back so far.
        inbuf: Vec<u8>,
    },
}

struct Exchange<K> {
    id: K,
    qid: [u8; 2],
    sock: Sock,
}

/// The DNS exchanges in flight, keyed by `K` (the agent's request ids, or the HTTP
/// client's lookups), on the tokens of one range.
pub(crate) struct Dns<K = RequestId> {
    by_token: BTreeMap<usize, Exchange<K>>,
    by_id: BTreeMap<K, usize>,
    next: usize,
    tokens: std::ops::Range<usize>,
}

impl<K> std::fmt::Debug for Dns<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("in_flight", &self.by_token.len())
            .field("tokens", &self.tokens)
            .finish()
    }
}

impl<K: Ord + Copy> Dns<K> {
    /// No exchanges; sockets get tokens from `tokens`.
    pub(crate) fn new(tokens: std::ops::Range<usize>) -> Dns<K> {
        Dns {
            by_token: BTreeMap::new(),
            by_id: BTreeMap::new(),
            next: tokens.start,
            tokens,
        }
    }

    /// True if `t` is one of this set's tokens.
    pub(crate) fn owns_token(&self, t: usize) -> bool {
        self.tokens.contains(&t)
    }

    fn token(&mut self) -> usize {
        loop {
            if !self.tokens.contains(&self.next) {
                self.next = self.tokens.start;
            }
            let t = self.next;
            self.next += 1;
            if !self.by_token.contains_key(&t) {
                return t;
            }
        }
    }

    /// Starts an exchange; `Err` if it failed at once.
    pub(crate) fn start(&mut self, reg: &Registry, id: K, q: &DnsQuery) -> Result<(), String> {
        if q.message.len() < 2 || q.message.len() > usize::from(u16::MAX) {
            return Err("query of an invalid length".into());
        }
        if self.by_token.len() >= self.tokens.len() {
            return Err("too many DNS exchanges in flight".into());
        }
        let addr = server_addr(&q.server, q.port)?;
        let t = self.token();
        let mut sock = if q.tcp {
            let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
            reg.register(
                &mut stream,
                Token(t),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
            let mut out = Vec::with_capacity(q.message.len() + 2);
            out.extend_from_slice(&(q.message.len() as u16).to_be_bytes());
            out.extend_from_slice(&q.message);
            Sock::Tcp {
                stream,
                out,
                written: 0,
                inbuf: Vec::new(),
            }
        } else {
            let local: SocketAddr = match addr {
                SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
                SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
            };
            let mut sock = UdpSocket::bind(local).map_err(|e| e.to_string())?;
            sock.connect(addr).map_err(|e| e.to_string())?;
            reg.register(&mut sock, Token(t), Interest::READABLE | Interest::WRITABLE)
                .map_err(|e| e.to_string())?;
            Sock::Udp {
                sock,
                query: q.message.clone(),
                sent: false,
            }
        };
        // A UDP send rarely waits: try it now.
        if let Sock::Udp { sock, query, sent } = &mut sock {
            match sock.send(query) {
                Ok(_) => *sent = true,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => {
                    let _ = reg.deregister(sock);
                    return Err(e.to_string());
                }
            }
        }
        self.by_id.insert(id, t);
        self.by_token.insert(
            t,
            Exchange {
                id,
                qid: [q.message[0], q.message[1]],
                sock,
            },
        );
        Ok(())
    }

    /// Drops an exchange (the core cancelled it or its answer was fed).
    pub(crate) fn cancel(&mut self, reg: &Registry, id: K) {
        if let Some(t) = self.by_id.remove(&id) {
            self.close(reg, t);
        }
    }

    fn close(&mut self, reg: &Registry, t: usize) {
        if let Some(mut ex) = self.by_token.remove(&t) {
            self.by_id.remove(&ex.id);
            let _ = match &mut ex.sock {
                Sock::Udp { sock, .. } => reg.deregister(sock),
                Sock::Tcp { stream, .. } => reg.deregister(stream),
            };
        }
    }

    /// A socket is ready: the exchange's end, if this was it.
    pub(crate) fn ready(&mut self, reg: &Registry, t: usize) -> Option<(K, OwnedIoEvent)> {
        let ex = self.by_token.get_mut(&t)?;
        let id = ex.id;
        let done = match step(ex) {
            Ok(None) => return None,
            Ok(Some(reply)) => OwnedIoEvent::DnsReply(reply),
            Err(e) => OwnedIoEvent::Failed(e),
        };
        self.close(reg, t);
        Some((id, done))
    }
}

/// Moves the bytes that can move now; the answer once it is whole.
fn step<K>(ex: &mut Exchange<K>) -> Result<Option<Vec<u8>>, String> {
    match &mut ex.sock {
        Sock::Udp { sock, query, sent } => {
            if !*sent {
                match sock.send(query) {
                    Ok(_) => *sent = true,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                    Err(e) => return Err(e.to_string()),
                }
            }
            let mut buf = vec![0u8; 65536];
            // Bounded: a peer flooding the socket is read a few datagrams per turn.
            for _ in 0..16 {
                match sock.recv(&mut buf) {
                    Ok(n) if n >= 2 && buf[..2] == ex.qid => {
                        buf.truncate(n);
                        return Ok(Some(buf));
                    }
                    // Someone else's id (a late answer): not ours.
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                        return Err("connection refused".into());
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(None)
        }
        Sock::Tcp {
            stream,
            out,
            written,
            inbuf,
        } => {
            while *written < out.len() {
                match stream.write(&out[*written..]) {
                    Ok(0) => return Err("connection closed".into()),
                    Ok(n) => *written += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                    Err(e) if e.kind() == ErrorKind::NotConnected => return Ok(None),
                    Err(e) => return Err(e.to_string()),
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            loop {
                let want = if inbuf.len() < 2 {
                    2
                } else {
                    2 + usize::from(u16::from_be_bytes([inbuf[0], inbuf[1]]))
                };
                if inbuf.len() >= 2 && inbuf.len() >= want {
                    let reply = inbuf[2..want].to_vec();
                    if reply.len() >= 2 && reply[..2] == ex.qid {
                        return Ok(Some(reply));
                    }
                    return Err("answer does not match the query".into());
                }
                let room = (want - inbuf.len()).min(chunk.len());
                match stream.read(&mut chunk[..room]) {
                    Ok(0) => return Err("connection closed before the answer was whole".into()),
                    Ok(n) => inbuf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
    }
}
