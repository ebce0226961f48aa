//! Arbitrary bytes as Consul's answers, through the agent: two jobs, one watching the
//! catalog (datacenter set, a tag), one watching listed services (the datacenter asked
//! from the agent). The bytes before the first 0xFF answer the agent and catalog
//! requests, the rest every service's health request; each answer carries a fresh
//! `X-Consul-Index`, so every answer is decoded. Discovery may fail; it never panics, and
//! every target it makes has an address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::agent::{Agent, AgentOptions, Input, Output};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::io::{IoEvent, IoOp};
use trawl_core::time::{Instant, Now, UnixNanos};

const CONFIG: &str = "scrape_configs:\n- {job_name: catalog, consul_sd_configs: [{server: 'c:8500', datacenter: dc, tags: [t], refresh_interval: 1s}]}\n- {job_name: listed, consul_sd_configs: [{server: 'c:8500', services: [web, api], refresh_interval: 1s}]}\n";

fuzz_target!(|data: &[u8]| {
    let (first, rest) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[..0]),
    };
    let Ok(config) = Config::parse(CONFIG, &ParseOptions::for_path("/p.yml")) else {
        panic!("the configuration validates");
    };
    let mut now = Now::new(Instant(0), UnixNanos(1_700_000_000_000_000_000));
    let mut agent = Agent::new(config, AgentOptions::default(), now);
    let mut index = 1u64;
    for _ in 0..8 {
        while let Some(o) = agent.poll_output() {
            let Output::Start { id, op } = o else { continue };
            let IoOp::Http(r) = op else { continue };
            if !r.url.starts_with("http://c:8500/") {
                continue;
            }
            let body = if r.url.contains("/v1/health/service/") { rest } else { first };
            index += 1;
            let i = index.to_string();
            let headers = [("Content-Type", "application/json"), ("X-Consul-Index", i.as_str())];
            for event in [
                IoEvent::HttpHead { status: 200, reason: "OK", headers: &headers },
                IoEvent::HttpBody(body),
                IoEvent::HttpEnd,
            ] {
                agent.handle_input(now, Input::Io { id, event });
            }
        }
        for t in agent.targets() {
            assert!(!t.target.url.is_empty());
        }
        let step = 20_000_000_000;
        now = Now::new(Instant(now.mono.0 + step), UnixNanos(now.wall.0 + step as i64));
        agent.handle_input(now, Input::Timeout);
    }
});
