//! DNS helpers both shells share: the name server's socket address, and a blocking
//! exchange for one-shot runs (`trawl sd`). The event loops' own exchanges live in
//! each shell (mio sockets, tokio tasks); the core encodes and decodes every message.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

use trawl_core::io::DnsQuery;

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
