//! Arbitrary bytes as a ZooKeeper server's side of the agent's sessions: a serverset job
//! and a Nerve job, each with two servers. Every connection opens; each write the agent
//! makes is answered with the next piece of the input (each piece a big-endian u16 length,
//! then its bytes): an empty piece answers with a valid handshake (so the fuzzer reaches
//! the requests), the one-byte piece 0xFE closes the connection, anything else arrives as
//! is. The
//! clock moves a second per round (pings, receive timeouts, retries). Discovery may fail;
//! it never panics, never holds more than its bound, and every target it makes has an
//! address. The jute decoders the tests' server uses are fed the input too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::agent::{Agent, AgentOptions, Input, Output};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::discovery::zookeeper::jute::{ConnectRequest, ConnectResponse, Request};
use trawl_core::io::{IoEvent, IoOp, RequestId};
use trawl_core::time::{Instant, Now, UnixNanos};

const CONFIG: &str = "scrape_configs:\n- {job_name: s, serverset_sd_configs: [{servers: ['zk1:2181', 'zk2'], paths: [/a, /b], timeout: 6s}]}\n- {job_name: n, nerve_sd_configs: [{servers: ['zk1:2181'], paths: [/n], timeout: 6s}]}\n";

fuzz_target!(|data: &[u8]| {
    let _ = ConnectRequest::decode(data);
    let _ = ConnectResponse::decode(data);
    let _ = Request::decode(data);
    let Ok(config) = Config::parse(CONFIG, &ParseOptions::for_path("/p.yml")) else {
        panic!("the configuration validates");
    };
    let mut rest = data;
    let mut pieces = std::iter::from_fn(move || {
        if rest.len() < 2 {
            return None;
        }
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (piece, tail) = rest[2..].split_at(n);
        rest = tail;
        Some(piece)
    });
    let mut now = Now::new(Instant(0), UnixNanos(1_700_000_000_000_000_000));
    let mut agent = Agent::new(config, AgentOptions::default(), now);
    let mut open: Vec<RequestId> = Vec::new();
    for _ in 0..40 {
        let mut steps = 0;
        while let Some(o) = agent.poll_output() {
            steps += 1;
            assert!(steps < 100_000, "the agent keeps asking");
            match o {
                Output::Start { id, op: IoOp::Stream(_) } => {
                    open.push(id);
                    agent.handle_input(now, Input::Io { id, event: IoEvent::StreamOpened });
                }
                Output::Cancel(id) => open.retain(|x| *x != id),
                Output::Send { id, .. } if open.contains(&id) => {
                    let Some(piece) = pieces.next() else { continue };
                    if piece.is_empty() {
                        let hello = ConnectResponse {
                            protocol_version: 0,
                            timeout_ms: 6000,
                            session_id: 7,
                            passwd: vec![1; 16],
                        };
                        let b = hello.encode();
                        agent.handle_input(now, Input::Io { id, event: IoEvent::StreamData(&b) });
                    } else if piece == [0xFE] {
                        open.retain(|x| *x != id);
                        agent.handle_input(now, Input::Io { id, event: IoEvent::StreamClosed });
                    } else {
                        agent.handle_input(now, Input::Io { id, event: IoEvent::StreamData(piece) });
                    }
                }
                _ => {}
            }
        }
        assert!(agent.in_flight() < 64, "{} operations in flight", agent.in_flight());
        for t in agent.targets() {
            assert!(!t.target.url.is_empty());
        }
        let step = 1_000_000_000;
        now = Now::new(Instant(now.mono.0 + step), UnixNanos(now.wall.0 + step as i64));
        agent.handle_input(now, Input::Timeout);
    }
});
