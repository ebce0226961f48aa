//! The core in a custom event loop: a blocking loop over `std::net`, in one thread, no
//! runtime. It is the drive loop of `trawl-core`'s docs with real sockets: carry out
//! what the agent asks (here each scrape is done at once, blocking), sleep until the
//! agent's deadline, feed what happened.
//!
//! ```sh
//! cargo run -p trawl-tests --example blocking_loop
//! ```
//!
//! It serves a tiny exporter on 127.0.0.1 (a port the system picks), scrapes it three
//! times and prints each committed batch.

// An example prints.
#![allow(clippy::print_stdout)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use trawl_core::agent::{Agent, AgentOptions, Input, Output};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::http::{ResponseEvent, ResponseReader, Url, write_get};
use trawl_core::io::{HttpRequest, IoEvent, IoOp, RequestId};
use trawl_core::scrape::pipeline::Batch;
use trawl_core::time::{Instant, Now, UnixNanos};

/// An exporter on 127.0.0.1 answering every request with the same body.
fn exporter() -> std::io::Result<String> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?.to_string();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let body = "# TYPE requests_total counter\nrequests_total 7\n";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(addr)
}

/// One scrape, blocking: every response event goes straight to the agent.
fn scrape(agent: &mut Agent, now: Now, id: RequestId, req: &HttpRequest) {
    let fail = |agent: &mut Agent, msg: &str| {
        agent.handle_input(
            now,
            Input::Io {
                id,
                event: IoEvent::Failed(msg),
            },
        );
    };
    let url = match Url::parse(&req.url) {
        Ok(u) => u,
        Err(e) => return fail(agent, &e),
    };
    let mut head = Vec::new();
    if let Err(e) = write_get(&mut head, &url, &req.headers, false) {
        return fail(agent, &e);
    }
    let mut s = match TcpStream::connect((url.host.as_str(), url.port)) {
        Ok(s) => s,
        Err(e) => return fail(agent, &format!("dial tcp {}: {e}", url.authority())),
    };
    let _ = s.set_read_timeout(Some(req.timeout));
    if let Err(e) = s.write_all(&head) {
        return fail(agent, &e.to_string());
    }
    let mut reader = ResponseReader::new(false);
    let mut buf = vec![0u8; 16 << 10];
    while !reader.is_done() {
        let n = match s.read(&mut buf) {
            Ok(n) => n,
            Err(e) => return fail(agent, &e.to_string()),
        };
        let mut feed = |e: ResponseEvent<'_>| {
            let event = match &e {
                ResponseEvent::Head(h) => {
                    let headers = h.header_refs();
                    let ev = IoEvent::HttpHead {
                        status: h.status,
                        reason: &h.reason,
                        headers: &headers,
                    };
                    agent.handle_input(now, Input::Io { id, event: ev });
                    return;
                }
                ResponseEvent::Body(b) => IoEvent::HttpBody(b),
                ResponseEvent::End => IoEvent::HttpEnd,
            };
            agent.handle_input(now, Input::Io { id, event });
        };
        let r = if n == 0 {
            reader.eof(&mut feed)
        } else {
            reader.feed(&buf[..n], &mut feed).map(drop)
        };
        if let Err(e) = r {
            return fail(agent, &e.0);
        }
        if n == 0 {
            break;
        }
    }
}

/// Runs the loop until `batches` batches were committed; returns them.
pub fn run(batches: usize) -> Result<Vec<Batch>, String> {
    let addr = exporter().map_err(|e| e.to_string())?;
    let yaml = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs: [{{job_name: blocking, static_configs: [{{targets: ['{addr}']}}]}}]"
    );
    let config = Config::parse(&yaml, &ParseOptions::default()).map_err(|e| e.to_string())?;
    let start = std::time::Instant::now();
    let clock = || {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        Now::new(Instant(start.elapsed().as_nanos() as u64), UnixNanos(wall))
    };
    let mut agent = Agent::new(config, AgentOptions::default(), clock());
    let mut stored = Vec::new();
    while stored.len() < batches {
        // 1. Carry out what the agent asks.
        while let Some(out) = agent.poll_output() {
            match out {
                Output::Start {
                    id,
                    op: IoOp::Http(req),
                } => scrape(&mut agent, clock(), id, &req),
                Output::Start { id, .. } => {
                    let event = IoEvent::Failed("not supported by this loop");
                    agent.handle_input(clock(), Input::Io { id, event });
                }
                Output::Append(b) => {
                    println!(
                        "batch: {} new series, {} samples",
                        b.series.len(),
                        b.samples.len()
                    );
                    let n = b.samples.len() as u64;
                    stored.push(b);
                    // Storage's report: here everything is "stored" in memory.
                    let st = trawl_core::Stored {
                        batches: 1,
                        samples: n,
                        lost_samples: 0,
                        error: None,
                    };
                    agent.handle_input(clock(), Input::Stored(st));
                }
                // Streams were refused above: nothing is ever sent on one.
                Output::Cancel(_) | Output::Send { .. } | Output::Event(_) => {}
            }
        }
        // 2. Sleep until the agent's deadline; 3. feed it.
        let Some(deadline) = agent.poll_timeout() else {
            break;
        };
        let now = clock();
        if deadline > now.mono {
            std::thread::sleep(Duration::from_nanos(deadline.0 - now.mono.0));
        }
        agent.handle_input(clock(), Input::Timeout);
    }
    Ok(stored)
}

fn main() {
    match run(3) {
        Ok(b) => println!("{} batches", b.len()),
        Err(e) => println!("blocking_loop: {e}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_blocking_loop_scrapes_its_exporter() {
        let batches = super::run(2).expect("the loop runs");
        // The first batch declares requests_total and the five report series.
        assert_eq!(batches[0].series.len(), 6);
        let value = |b: &trawl_core::scrape::pipeline::Batch| b.samples[0].value();
        assert_eq!(value(&batches[0]), 7.0);
        assert!(
            batches[1].series.is_empty(),
            "the second scrape declares nothing new"
        );
        assert_eq!(batches[1].samples[0].t - batches[0].samples[0].t, 1000);
    }
}
