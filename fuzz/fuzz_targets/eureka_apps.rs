//! Arbitrary bytes as a Eureka registry (XML), through the agent: one job
//! whose every refresh is answered 200 with the input as the body (the first
//! byte, if 0xFF, makes the next answer a 503 instead). Discovery may fail; it never
//! panics, and every target it makes has an address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::agent::{Agent, AgentOptions, Input, Output};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::io::{IoEvent, IoOp};
use trawl_core::time::{Instant, Now, UnixNanos};

const CONFIG: &str = "scrape_configs:\n- {job_name: e, eureka_sd_configs: [{server: 'http://e:8761/eureka', refresh_interval: 5s}], relabel_configs: [{source_labels: [__meta_eureka_app_instance_status], regex: 'UP|', action: keep}]}\n";

fuzz_target!(|data: &[u8]| {
    let Ok(config) = Config::parse(CONFIG, &ParseOptions::for_path("/p.yml")) else {
        panic!("the configuration validates");
    };
    let (fail_first, body) = match data.split_first() {
        Some((0xFF, rest)) => (true, rest),
        _ => (false, data),
    };
    let mut now = Now::new(Instant(0), UnixNanos(1_700_000_000_000_000_000));
    let mut agent = Agent::new(config, AgentOptions::default(), now);
    let mut answered = 0;
    for _ in 0..4 {
        while let Some(o) = agent.poll_output() {
            let Output::Start { id, op } = o else { continue };
            let IoOp::Http(r) = op else { continue };
            if !r.url.ends_with("/eureka/apps") {
                continue;
            }
            answered += 1;
            let status = if fail_first && answered == 1 { 503 } else { 200 };
            let headers = [("Content-Type", "application/xml")];
            for event in [
                IoEvent::HttpHead { status, reason: "", headers: &headers },
                IoEvent::HttpBody(body),
                IoEvent::HttpEnd,
            ] {
                agent.handle_input(now, Input::Io { id, event });
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
