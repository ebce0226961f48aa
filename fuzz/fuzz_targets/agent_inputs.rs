//! Arbitrary sequences of agent inputs: IO events of every kind for started, cancelled
//! and never-seen ids, time jumps, reloads among a few configs, shutdown. The agent must
//! never panic, never reuse a request id, and its deadline must move after a timeout.
#![no_main]

use std::collections::BTreeSet;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use trawl_core::agent::{Agent, AgentOptions, Input, Output};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::io::{IoEvent, RequestId};
use trawl_core::time::{Instant, Now, UnixNanos};

const CONFIGS: [&str; 3] = [
    "scrape_configs: [{job_name: a, scrape_interval: 1s, scrape_timeout: 1s, static_configs: [{targets: ['a:1', 'b:1']}]}]",
    "scrape_configs: [{job_name: a, scrape_interval: 2s, file_sd_configs: [{files: ['sd/*.json']}]}, {job_name: b, http_sd_configs: [{url: 'http://127.0.0.1:1/sd', refresh_interval: 5s}]}]",
    "scrape_configs: [{job_name: b, target_limit: 1, relabel_configs: [{source_labels: [__address__], regex: 'a.*', action: drop}], file_sd_configs: [{files: ['sd/*.json']}]}]",
];

#[derive(Arbitrary, Debug)]
enum Op {
    /// Answer the n-th started request (mod count) with an event.
    Reply { pick: u16, event: Ev },
    /// An event for an id the agent never issued.
    Stray { id: u64, event: Ev },
    /// Move time forward by this many milliseconds, then fire the deadline if due.
    Advance { ms: u32 },
    Reload { which: u8 },
    Shutdown,
}

#[derive(Arbitrary, Debug)]
enum Ev {
    Head { status: u16, ct: u8 },
    Body(Vec<u8>),
    End,
    Failed,
    File(Vec<u8>),
    NotFound,
    Dir(Vec<String>),
    Changed(Option<String>),
}

fn config(i: usize) -> Config {
    let text = CONFIGS[i % CONFIGS.len()];
    Config::parse(text, &ParseOptions::for_path("/etc/trawl/prometheus.yml")).expect("fixed configs parse")
}

fn feed(agent: &mut Agent, now: Now, id: RequestId, ev: &Ev) {
    let cts = ["application/json", "text/plain", "", "application/openmetrics-text"];
    let names: Vec<&str>;
    let ct_headers: [(&str, &str); 1];
    let event = match ev {
        Ev::Head { status, ct } => {
            ct_headers = [("Content-Type", cts[*ct as usize % cts.len()])];
            IoEvent::HttpHead { status: *status, reason: "", headers: &ct_headers }
        }
        Ev::Body(b) => IoEvent::HttpBody(b),
        Ev::End => IoEvent::HttpEnd,
        Ev::Failed => IoEvent::Failed("fuzz"),
        Ev::File(b) => IoEvent::FileData(b),
        Ev::NotFound => IoEvent::NotFound,
        Ev::Dir(d) => {
            names = d.iter().map(String::as_str).collect();
            IoEvent::DirEntries(&names)
        }
        Ev::Changed(n) => IoEvent::Changed { name: n.as_deref() },
    };
    agent.handle_input(now, Input::Io { id, event });
}

fuzz_target!(|ops: Vec<Op>| {
    let mut now = Now::new(Instant(0), UnixNanos(1_700_000_000_000_000_000));
    let mut agent = Agent::new(config(0), AgentOptions::default(), now);
    let mut started: Vec<RequestId> = Vec::new();
    let mut seen: BTreeSet<RequestId> = BTreeSet::new();
    let mut drain = |agent: &mut Agent, started: &mut Vec<RequestId>| {
        while let Some(o) = agent.poll_output() {
            if let Output::Start { id, .. } = o {
                assert!(seen.insert(id), "request id {id} reused");
                started.push(id);
            }
        }
    };
    drain(&mut agent, &mut started);
    for op in ops.iter().take(400) {
        match op {
            Op::Reply { pick, event } => {
                if !started.is_empty() {
                    let id = started[*pick as usize % started.len()];
                    feed(&mut agent, now, id, event);
                }
            }
            Op::Stray { id, event } => feed(&mut agent, now, RequestId(*id | (1 << 62)), event),
            Op::Advance { ms } => {
                now = now.after(std::time::Duration::from_millis(u64::from(*ms % 120_000)));
                if agent.poll_timeout().is_some_and(|t| t <= now.mono) {
                    agent.handle_input(now, Input::Timeout);
                    if let Some(t) = agent.poll_timeout() {
                        assert!(t > now.mono, "deadline {t} did not move past {}", now.mono);
                    }
                }
            }
            Op::Reload { which } => agent.handle_input(now, Input::Config(Box::new(config(*which as usize)))),
            Op::Shutdown => agent.handle_input(now, Input::Shutdown),
        }
        drain(&mut agent, &mut started);
    }
});
