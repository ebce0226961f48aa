//! Arbitrary bytes as a Docker Engine's answers, through the agent: a `docker_sd_configs`
//! job over a Unix socket (HTTP spoken by the core on the stream) and a
//! `dockerswarm_sd_configs` job with role `tasks` over `http://`. The input is split at
//! 0xFF bytes into the containers answer (raw HTTP bytes if it starts with `HTTP/`, else
//! a 200 body, delivered in two pieces), the networks, tasks, services and nodes bodies;
//! pings answer `Api-Version: 1.41`. Discovery may fail; it never panics, and every
//! target it makes has an address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::agent::{Agent, AgentOptions, Input, Output};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::io::{IoEvent, IoOp, RequestId};
use trawl_core::time::{Instant, Now, UnixNanos};

const CONFIG: &str = "scrape_configs:\n- {job_name: d, docker_sd_configs: [{host: 'unix:///run/docker.sock', refresh_interval: 5s, match_first_network: false}]}\n- {job_name: s, dockerswarm_sd_configs: [{host: 'http://m:2375', role: tasks, refresh_interval: 5s}]}\n";

fn piece<'a>(pieces: &[&'a [u8]], i: usize) -> &'a [u8] {
    pieces.get(i).copied().unwrap_or(b"[]")
}

fn http_response(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(config) = Config::parse(CONFIG, &ParseOptions::for_path("/p.yml")) else {
        panic!("the configuration validates");
    };
    let pieces: Vec<&[u8]> = data.split(|b| *b == 0xFF).collect();
    let mut now = Now::new(Instant(0), UnixNanos(1_700_000_000_000_000_000));
    let mut agent = Agent::new(config, AgentOptions::default(), now);
    // Stream id -> what it answers, once the request is written.
    let mut streams: Vec<(RequestId, Vec<u8>)> = Vec::new();
    for _ in 0..4 {
        for _ in 0..16 {
            let Some(o) = agent.poll_output() else { break };
            match o {
                Output::Start { id, op: IoOp::Stream(_) } => {
                    agent.handle_input(now, Input::Io { id, event: IoEvent::StreamOpened });
                }
                Output::Send { id, data: request } => {
                    let text = String::from_utf8_lossy(&request);
                    let bytes = if text.starts_with("GET /_ping ") {
                        http_response(b"OK")
                    } else if text.contains("/containers/json") {
                        let p = piece(&pieces, 0);
                        if p.starts_with(b"HTTP/") { p.to_vec() } else { http_response(p) }
                    } else {
                        http_response(piece(&pieces, 1))
                    };
                    streams.push((id, bytes));
                }
                Output::Start { id, op: IoOp::Http(r) } => {
                    let body: &[u8] = if r.url.ends_with("/_ping") {
                        b"OK"
                    } else if r.url.contains("/tasks") {
                        piece(&pieces, 2)
                    } else if r.url.contains("/services") {
                        piece(&pieces, 3)
                    } else if r.url.contains("/nodes") {
                        piece(&pieces, 4)
                    } else if r.url.contains("/networks") {
                        piece(&pieces, 1)
                    } else {
                        continue;
                    };
                    let headers = [("Api-Version", "1.41")];
                    for event in [
                        IoEvent::HttpHead { status: 200, reason: "OK", headers: &headers },
                        IoEvent::HttpBody(body),
                        IoEvent::HttpEnd,
                    ] {
                        agent.handle_input(now, Input::Io { id, event });
                    }
                }
                _ => {}
            }
            for (id, bytes) in std::mem::take(&mut streams) {
                let (a, b) = bytes.split_at(bytes.len() / 2);
                agent.handle_input(now, Input::Io { id, event: IoEvent::StreamData(a) });
                agent.handle_input(now, Input::Io { id, event: IoEvent::StreamData(b) });
                agent.handle_input(now, Input::Io { id, event: IoEvent::StreamClosed });
            }
        }
        for t in agent.targets() {
            assert!(!t.target.url.is_empty());
        }
        let step = 6_000_000_000;
        now = Now::new(Instant(now.mono.0 + step), UnixNanos(now.wall.0 + step as i64));
        agent.handle_input(now, Input::Timeout);
    }
});
