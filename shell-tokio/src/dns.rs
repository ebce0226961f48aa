//! DNS exchanges the core asks for, as tokio tasks: one UDP datagram, or one TCP
//! exchange with its two-byte length prefix. The core encodes, decodes and keeps the
//! deadline; a cancel aborts the task. Reads are bounded to one 64 KiB message.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use trawl_core::io::{DnsQuery, OwnedIoEvent, RequestId};
use trawl_io::client::Caller;

use crate::Done;

/// Runs one exchange; its end is reported as a `DnsReply` or a failure.
pub(crate) fn exchange(id: RequestId, q: DnsQuery, tx: mpsc::UnboundedSender<Done>) -> AbortHandle {
    tokio::spawn(async move {
        let e = match run(&q).await {
            Ok(m) => OwnedIoEvent::DnsReply(m),
            Err(e) => OwnedIoEvent::Failed(e),
        };
        let _ = tx.send(Done::Io(Caller::Agent(id), e));
    })
    .abort_handle()
}

/// One exchange, to its end (its timeout is the caller's).
pub(crate) async fn run(q: &DnsQuery) -> Result<Vec<u8>, String> {
    if q.message.len() < 2 || q.message.len() > usize::from(u16::MAX) {
        return Err("query of an invalid length".into());
    }
    let addr = trawl_io::dns::server_addr(&q.server, q.port)?;
    let qid = [q.message[0], q.message[1]];
    if q.tcp {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(q.message.len() + 2);
        out.extend_from_slice(&(q.message.len() as u16).to_be_bytes());
        out.extend_from_slice(&q.message);
        s.write_all(&out).await.map_err(|e| e.to_string())?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len)
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut reply)
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        if reply.len() < 2 || reply[..2] != qid {
            return Err("answer does not match the query".into());
        }
        Ok(reply)
    } else {
        let local: std::net::SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let s = UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
        s.connect(addr).await.map_err(|e| e.to_string())?;
        s.send(&q.message).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 65536];
        loop {
            let n = s.recv(&mut buf).await.map_err(|e| {
                if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    "connection refused".to_owned()
                } else {
                    e.to_string()
                }
            })?;
            // Someone else's id (a late answer to an earlier query) is not ours.
            if n >= 2 && buf[..2] == qid {
                buf.truncate(n);
                return Ok(buf);
            }
        }
    }
}
