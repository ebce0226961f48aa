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
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

use mio::net::{TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};
use trawl_core::io::{DnsQuery, RequestId};

/// First token of DNS sockets (below the web server's).
pub(crate) const DNS_BASE: usize = 1 << 18;
/// One past the last.
pub(crate) const DNS_END: usize = crate::web::WEB_BASE;

/// How an exchange ended.
pub(crate) enum DnsDone {
    /// The answer message (without the TCP length prefix).
    Reply(Vec<u8>),
    /// What went wrong.
    Failed(String),
}

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

struct Exchange {
    id: RequestId,
    qid: [u8; 2],
    sock: Sock,
}

/// The DNS exchanges in flight.
#[derive(Default)]
pub(crate) struct Dns {
    by_token: BTreeMap<usize, Exchange>,
    by_id: BTreeMap<RequestId, usize>,
    next: usize,
}

/// The server's socket address: an IP literal, an IPv6 one possibly with a numeric
/// `%zone` or an interface name.
pub fn server_addr(server: &str, port: u16) -> Result<SocketAddr, String> {
    let (ip, zone) = match server.split_once('%') {
        Some((ip, zone)) => (ip, Some(zone)),
        None => (server, None),
    };
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("invalid name server address {server:?}"))?;
    match (ip, zone) {
        (ip, None) => Ok(SocketAddr::new(ip, port)),
        (IpAddr::V6(v6), Some(zone)) => {
            let scope = match zone.parse::<u32>() {
                Ok(n) => n,
                Err(_) => if_index(zone)
                    .ok_or_else(|| format!("unknown interface in name server {server:?}"))?,
            };
            Ok(SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)))
        }
        (IpAddr::V4(_), Some(_)) => Err(format!("invalid name server address {server:?}")),
    }
}

/// An interface's index, from sysfs (no libc call needed).
fn if_index(name: &str) -> Option<u32> {
    if name.contains('/') || name.starts_with('.') {
        return None;
    }
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl Dns {
    fn token(&mut self) -> usize {
        loop {
            if !(DNS_BASE..DNS_END).contains(&self.next) {
                self.next = DNS_BASE;
            }
            let t = self.next;
            self.next += 1;
            if !self.by_token.contains_key(&t) {
                return t;
            }
        }
    }

    /// Starts an exchange; `Err` if it failed at once.
    pub(crate) fn start(
        &mut self,
        reg: &Registry,
        id: RequestId,
        q: &DnsQuery,
    ) -> Result<(), String> {
        if q.message.len() < 2 || q.message.len() > usize::from(u16::MAX) {
            return Err("query of an invalid length".into());
        }
        if self.by_token.len() >= DNS_END - DNS_BASE {
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
    pub(crate) fn cancel(&mut self, reg: &Registry, id: RequestId) {
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
    pub(crate) fn ready(&mut self, reg: &Registry, t: usize) -> Option<(RequestId, DnsDone)> {
        let ex = self.by_token.get_mut(&t)?;
        let id = ex.id;
        let done = match step(ex) {
            Ok(None) => return None,
            Ok(Some(reply)) => DnsDone::Reply(reply),
            Err(e) => DnsDone::Failed(e),
        };
        self.close(reg, t);
        Some((id, done))
    }
}

/// Moves the bytes that can move now; the answer once it is whole.
fn step(ex: &mut Exchange) -> Result<Option<Vec<u8>>, String> {
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

/// One exchange, blocking, for `trawl sd`: waits at most the query's timeout.
pub fn exchange_blocking(q: &DnsQuery) -> Result<Vec<u8>, String> {
    use std::time::Instant;
    if q.message.len() < 2 || q.message.len() > usize::from(u16::MAX) {
        return Err("query of an invalid length".into());
    }
    let addr = server_addr(&q.server, q.port)?;
    let qid = [q.message[0], q.message[1]];
    let deadline = Instant::now() + q.timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| "i/o timeout".to_owned())
    };
    let io = |e: std::io::Error| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => "i/o timeout".to_owned(),
        ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        _ => e.to_string(),
    };
    if q.tcp {
        let mut s = std::net::TcpStream::connect_timeout(&addr, left()?).map_err(io)?;
        let mut out = Vec::with_capacity(q.message.len() + 2);
        out.extend_from_slice(&(q.message.len() as u16).to_be_bytes());
        out.extend_from_slice(&q.message);
        s.set_write_timeout(Some(left()?)).map_err(io)?;
        s.write_all(&out).map_err(io)?;
        s.set_read_timeout(Some(left()?)).map_err(io)?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).map_err(io)?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.set_read_timeout(Some(left()?)).map_err(io)?;
        s.read_exact(&mut reply).map_err(io)?;
        if reply.len() < 2 || reply[..2] != qid {
            return Err("answer does not match the query".into());
        }
        Ok(reply)
    } else {
        let local: SocketAddr = match addr {
            SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        };
        let s = std::net::UdpSocket::bind(local).map_err(io)?;
        s.connect(addr).map_err(io)?;
        s.send(&q.message).map_err(io)?;
        let mut buf = vec![0u8; 65536];
        loop {
            s.set_read_timeout(Some(left()?)).map_err(io)?;
            let n = s.recv(&mut buf).map_err(io)?;
            if n >= 2 && buf[..2] == qid {
                buf.truncate(n);
                return Ok(buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        assert_eq!(
            server_addr("127.0.0.1", 53).unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 53))
        );
        assert_eq!(server_addr("::1", 5353).unwrap().port(), 5353);
        match server_addr("fe80::1%7", 53).unwrap() {
            SocketAddr::V6(a) => assert_eq!(a.scope_id(), 7),
            other => panic!("{other}"),
        }
        assert!(server_addr("fe80::1%lo", 53).is_ok());
        assert!(server_addr("localhost", 53).is_err());
        assert!(server_addr("1.2.3.4%x", 53).is_err());
    }
}
