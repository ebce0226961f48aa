//! Arbitrary bytes as the document of every discovery mechanism that runs, taken from
//! the registry (`MECHANISMS`, each with its `example` block): each mechanism's job runs
//! in an agent whose every read, listing, HTTP response and DNS answer carries the
//! fuzzer's bytes (a DNS answer echoes the query's header and question first, so the
//! records are really read). Discovery may fail; it never panics, and every target it
//! makes has an address. A new mechanism is covered as soon as it registers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::agent::{Agent, AgentOptions, Input, Output};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::discovery::registry::MECHANISMS;
use trawl_core::io::{IoEvent, IoOp};
use trawl_core::resolver::wire;
use trawl_core::time::{Instant, Now, UnixNanos};

const RESOLV_CONF: &str = "/fuzz/resolv.conf";

fuzz_target!(|data: &[u8]| {
    for m in MECHANISMS {
        let (true, Some(example)) = (m.runs, m.example) else {
            continue;
        };
        let yaml = format!("scrape_configs:\n- {{job_name: j, {}: [{example}]}}\n", m.key);
        let Ok(config) = Config::parse(&yaml, &ParseOptions::for_path("/p.yml")) else {
            panic!("{}'s example does not validate", m.key);
        };
        run(config, data);
    }
});

fn run(config: Config, data: &[u8]) {
    let mut now = Now::new(Instant(0), UnixNanos(1_700_000_000_000_000_000));
    let options = AgentOptions {
        resolv_conf: RESOLV_CONF.into(),
        ..AgentOptions::default()
    };
    let mut agent = Agent::new(config, options, now);
    for _ in 0..16 {
        while let Some(o) = agent.poll_output() {
            let Output::Start { id, op } = o else { continue };
            let io = |agent: &mut Agent, now, event| agent.handle_input(now, Input::Io { id, event });
            match op {
                IoOp::ReadFile { path, .. } if path == RESOLV_CONF => io(
                    &mut agent,
                    now,
                    IoEvent::FileData(b"nameserver 127.0.0.1\nsearch example.com\n"),
                ),
                IoOp::ReadFile { .. } => io(&mut agent, now, IoEvent::FileData(data)),
                IoOp::ListDir { .. } => {
                    io(&mut agent, now, IoEvent::DirEntries(&["a.json", "b.yml"]))
                }
                IoOp::Watch { .. } => {}
                // A ZooKeeper session: the document is what the server sends.
                IoOp::Stream(_) => {
                    io(&mut agent, now, IoEvent::StreamOpened);
                    io(&mut agent, now, IoEvent::StreamData(data));
                }
                IoOp::Http(_) => {
                    let headers = [("Content-Type", "application/json")];
                    io(
                        &mut agent,
                        now,
                        IoEvent::HttpHead {
                            status: 200,
                            reason: "OK",
                            headers: &headers,
                        },
                    );
                    io(&mut agent, now, IoEvent::HttpBody(data));
                    io(&mut agent, now, IoEvent::HttpEnd);
                }
                IoOp::Dns(q) => {
                    let Some(mut reply) = wire::response(&q.message, 0, false, &[]) else {
                        continue;
                    };
                    // The fuzzer's first bytes are the answer count, then the records.
                    reply[6] = 0;
                    reply[7] = data.first().copied().unwrap_or(1);
                    reply.extend_from_slice(data.get(1..).unwrap_or_default());
                    io(&mut agent, now, IoEvent::DnsReply(&reply));
                }
            }
        }
        for t in agent.targets() {
            assert!(!t.target.url.is_empty());
        }
        now = Now::new(
            Instant(now.mono.0 + 6_000_000_000),
            UnixNanos(now.wall.0 + 6_000_000_000),
        );
        agent.handle_input(now, Input::Timeout);
    }
}
