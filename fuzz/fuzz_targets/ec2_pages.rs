//! Arbitrary bytes as EC2's answers (XML), through the agent: one job whose every
//! request — `DescribeAvailabilityZones`, then each page of `DescribeInstances` — is
//! answered with the input (the first byte, if 0xFF, makes the first answer a 401
//! instead). A body with a `nextToken` is asked for again with it, so token handling
//! (repeats, endless pages) is in play; at most 32 answers a refresh. Discovery may
//! fail; it never panics, and every target it makes has an address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::agent::{Agent, AgentOptions, Input, Output};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::io::{IoEvent, IoOp};
use trawl_core::time::{Instant, Now, UnixNanos};

const CONFIG: &str = "scrape_configs:\n- {job_name: e, ec2_sd_configs: [{region: us-east-1, endpoint: 'http://ec2.fuzz', access_key: AK, secret_key: SK, refresh_interval: 5s, filters: [{name: 'tag:env', values: [prod]}]}], relabel_configs: [{source_labels: [__meta_ec2_tag_addr], target_label: __address__}]}\n";

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
        let mut this_round = 0;
        while let Some(o) = agent.poll_output() {
            let Output::Start { id, op } = o else { continue };
            let IoOp::Http(r) = op else { continue };
            if !r.url.starts_with("http://ec2.fuzz/?") || this_round == 32 {
                continue;
            }
            answered += 1;
            this_round += 1;
            let status = if fail_first && answered == 1 { 401 } else { 200 };
            let headers = [("Content-Type", "text/xml;charset=UTF-8")];
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
