//! Misbehaving peers for the hostile-input suite: scrape targets that stream without end,
//! trickle, or send decompression bombs. Each is a thread-per-connection server on a
//! loopback address in the test's process, stopped when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How a hostile target answers every request.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Misbehaviour {
    /// A head without a length, then metric lines as fast as the socket takes them,
    /// until the scraper closes (a close-delimited body without end).
    EndlessClose,
    /// The same, chunked.
    EndlessChunked,
    /// An HTTP SD answer (`application/json`) that never ends: `[` then target groups.
    EndlessJson,
    /// Reads the request and never answers (the scrape waits for its timeout).
    Silent,
    /// Answers with this gzip body (`Content-Encoding: gzip`, with its length).
    Gzip(&'static [u8]),
}

/// A decompression bomb: `mib` MiB of one metric line (whole lines), as a gzip body (best compression,
/// about 1,000:1). Built once per process.
pub(crate) fn gzip_bomb(mib: usize) -> &'static [u8] {
    use std::io::Write;
    static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BOMB.get_or_init(|| {
        let line = b"bomb_metric 1\n";
        let block: Vec<u8> = line
            .iter()
            .copied()
            .cycle()
            .take(line.len() * 4096)
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        // Whole lines only.
        let mut left = (mib << 20) / line.len() * line.len();
        while left > 0 {
            let n = left.min(block.len());
            gz.write_all(&block[..n]).expect("in memory");
            left -= n;
        }
        gz.finish().expect("in memory")
    })
}

/// A hostile target: its address, the requests it read and how many bytes it managed
/// to send.
pub(crate) struct Hostile {
    pub(crate) addr: String,
    pub(crate) requests: Arc<AtomicU64>,
    pub(crate) sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(&self.addr);
    }
}

/// Starts a hostile target on `ip` (a loopback address), on a free port.
pub(crate) fn hostile(ip: &str, how: Misbehaviour) -> Hostile {
    let listener = TcpListener::bind((ip, 0)).expect("bind a hostile target");
    let addr = listener.local_addr().expect("address").to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let (s, n, r) = (stop.clone(), sent.clone(), requests.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if s.load(Ordering::SeqCst) {
                return;
            }
            let Ok(conn) = conn else { continue };
            let (s, n, r) = (s.clone(), n.clone(), r.clone());
            std::thread::spawn(move || serve(conn, how, &s, &n, &r));
        }
    });
    Hostile {
        addr,
        requests,
        sent,
        stop,
    }
}

/// Reads the request head (up to the blank line, at most 64 KiB).
fn read_head(conn: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut b = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut b) {
            Ok(0) | Err(_) => return false,
            Ok(k) => head.extend_from_slice(&b[..k]),
        }
        if head.len() > 64 * 1024 {
            return false;
        }
    }
    true
}

fn serve(
    mut conn: TcpStream,
    how: Misbehaviour,
    stop: &AtomicBool,
    sent: &AtomicU64,
    requests: &AtomicU64,
) {
    let _ = conn.set_write_timeout(Some(Duration::from_secs(30)));
    if !read_head(&mut conn) {
        return;
    }
    requests.fetch_add(1, Ordering::SeqCst);
    // 64 KiB of valid exposition lines (or target groups), built once and sent again
    // and again: the stream is as fast as loopback carries it.
    let mut block = String::new();
    let mut i = 0u64;
    while block.len() < 64 * 1024 {
        if matches!(how, Misbehaviour::EndlessJson) {
            block.push_str("{\"targets\": [\"127.0.0.1:1\"]},");
        } else {
            block.push_str(&format!("endless_metric{{i=\"{i}\"}} 1\n"));
        }
        i += 1;
    }
    let chunk_head = format!("{:x}\r\n", block.len());
    if matches!(how, Misbehaviour::Silent) {
        // Hold the connection until the scraper gives up or the server stops.
        let mut b = [0u8; 1024];
        let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
        while !stop.load(Ordering::SeqCst) {
            match conn.read(&mut b) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
        }
        return;
    }
    if let Misbehaviour::Gzip(body) = how {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if conn.write_all(head.as_bytes()).is_ok() && conn.write_all(body).is_ok() {
            sent.fetch_add(body.len() as u64, Ordering::Relaxed);
            // Keep the connection open for the next scrape (the scraper closes it).
            let mut b = [0u8; 1024];
            let _ = conn.read(&mut b);
        }
        return;
    }
    let head: &[u8] = match how {
        Misbehaviour::EndlessClose => {
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nConnection: close\r\n\r\n"
        }
        Misbehaviour::EndlessChunked => {
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nTransfer-Encoding: chunked\r\n\r\n"
        }
        Misbehaviour::EndlessJson => {
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n["
        }
        Misbehaviour::Silent | Misbehaviour::Gzip(_) => return,
    };
    if conn.write_all(head).is_err() {
        return;
    }
    while !stop.load(Ordering::SeqCst) {
        let r = match how {
            Misbehaviour::EndlessClose | Misbehaviour::EndlessJson => {
                conn.write_all(block.as_bytes())
            }
            Misbehaviour::EndlessChunked => conn
                .write_all(chunk_head.as_bytes())
                .and_then(|()| conn.write_all(block.as_bytes()))
                .and_then(|()| conn.write_all(b"\r\n")),
            Misbehaviour::Silent | Misbehaviour::Gzip(_) => return,
        };
        if r.is_err() {
            return;
        }
        sent.fetch_add(block.len() as u64, Ordering::Relaxed);
    }
}
