//! Arbitrary bytes as the answers of the cloud APIs listed page by page, through the
//! agent: the first byte picks a job (one per mechanism and role, every job pointed at
//! `http://cloud.fuzz` by the test-only API base) and, if its high bit is set, makes
//! the first answer a 401; every request of that job is answered with the rest. An
//! answer that asks for a next page is asked for again (paging without end, pages that
//! repeat), at most 32 answers a refresh. Discovery may fail; it never panics, and every
//! target it makes has an address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::agent::{Agent, AgentOptions, Input, Output};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::io::{IoEvent, IoOp};
use trawl_core::time::{Instant, Now, UnixNanos};

/// (mechanism, discovery block) of each job.
const JOBS: &[(&str, &str)] = &[
    ("digitalocean", "digitalocean_sd_configs: [{bearer_token: t, refresh_interval: 5s}]"),
    (
        "digitalocean",
        "digitalocean_sd_configs: [{role: databases, bearer_token: t, refresh_interval: 5s}]",
    ),
    ("hetzner", "hetzner_sd_configs: [{role: hcloud, bearer_token: t, refresh_interval: 5s}]"),
    (
        "hetzner",
        "hetzner_sd_configs: [{role: robot, basic_auth: {username: u, password: p}, refresh_interval: 5s}]",
    ),
    ("vultr", "vultr_sd_configs: [{bearer_token: t, refresh_interval: 5s}]"),
    ("ionos", "ionos_sd_configs: [{datacenter_id: d, bearer_token: t, refresh_interval: 5s}]"),
    (
        "linode",
        "linode_sd_configs: [{authorization: {credentials: t}, region: r, refresh_interval: 5s}]",
    ),
    (
        "puppetdb",
        "puppetdb_sd_configs: [{url: 'http://cloud.fuzz', query: q, include_parameters: true, refresh_interval: 5s}]",
    ),
    (
        "scaleway",
        "scaleway_sd_configs: [{role: instance, api_url: 'http://cloud.fuzz', project_id: 11111111-2222-3333-4444-555555555555, access_key: SCWABCDEFGHIJ0123456, secret_key: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, refresh_interval: 5s}]",
    ),
    (
        "scaleway",
        "scaleway_sd_configs: [{role: baremetal, api_url: 'http://cloud.fuzz', project_id: 11111111-2222-3333-4444-555555555555, access_key: SCWABCDEFGHIJ0123456, secret_key: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee, refresh_interval: 5s}]",
    ),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let (mechanism, block) = JOBS[usize::from(pick & 0x7F) % JOBS.len()];
    let fail_first = pick & 0x80 != 0;
    let yaml = format!("scrape_configs:\n- {{job_name: c, {block}}}\n");
    let Ok(config) = Config::parse(&yaml, &ParseOptions::for_path("/p.yml")) else {
        panic!("the configuration validates: {yaml}");
    };
    let options = AgentOptions {
        api_bases: [(mechanism.to_owned(), "http://cloud.fuzz".to_owned())].into(),
        ..AgentOptions::default()
    };
    let mut now = Now::new(Instant(0), UnixNanos(1_700_000_000_000_000_000));
    let mut agent = Agent::new(config, options, now);
    let mut answered = 0;
    for _ in 0..4 {
        let mut this_round = 0;
        while let Some(o) = agent.poll_output() {
            let Output::Start { id, op } = o else { continue };
            let IoOp::Http(r) = op else { continue };
            if !r.url.starts_with("http://cloud.fuzz/") || this_round == 32 {
                continue;
            }
            answered += 1;
            this_round += 1;
            let status = if fail_first && answered == 1 { 401 } else { 200 };
            // With a `Date`, Linode's event polls are answered too.
            let headers =
                [("Content-Type", "application/json"), ("Date", "Tue, 14 Nov 2023 22:13:20 GMT")];
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
