//! Arbitrary bytes as DNS answers: decoded alone (may fail, never panic), as resolv.conf,
//! and through the agent — every query of a DNS SD job answered with a message that
//! echoes the query's id and question (so the answer section is really read) followed by
//! the fuzzer's flags, counts and records. Discovery may fail; it never panics, and
//! every target it makes has an address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::agent::{Agent, AgentOptions, Input, Output};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::io::{IoEvent, IoOp};
use trawl_core::resolver::conf::ResolvConf;
use trawl_core::resolver::wire;
use trawl_core::time::{Instant, Now, UnixNanos};

const CONFIG: &str = "scrape_configs:\n- {job_name: srv, dns_sd_configs: [{names: [_x._tcp.example.com, web], refresh_interval: 5s}]}\n- {job_name: a, dns_sd_configs: [{names: [a.example.com], type: AAAA, port: 80}]}\n";

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = wire::decode(data) {
        for a in &r.answers {
            assert!(a.name.ends_with('.'));
        }
    }
    let _ = ResolvConf::parse(data);
    let Ok(config) = Config::parse(CONFIG, &ParseOptions::for_path("/p.yml")) else {
        return;
    };
    let mut now = Now::new(Instant(0), UnixNanos(1_700_000_000_000_000_000));
    let mut agent = Agent::new(config, AgentOptions::default(), now);
    for _ in 0..64 {
        while let Some(o) = agent.poll_output() {
            let Output::Start { id, op } = o else { continue };
            match op {
                IoOp::ReadFile { .. } => agent.handle_input(
                    now,
                    Input::Io {
                        id,
                        event: IoEvent::FileData(b"nameserver 127.0.0.1\nsearch example.com\n"),
                    },
                ),
                IoOp::Dns(q) => {
                    // The query's header and question, then the fuzzer's bytes: its
                    // first four bytes are the flags and the answer count.
                    let Some((_, qend)) = question_end(&q.message) else { continue };
                    let mut reply = q.message[..qend].to_vec();
                    let flags = data.first().copied().unwrap_or(0) | 0x80;
                    reply[2] = flags;
                    reply[3] = data.get(1).copied().unwrap_or(0);
                    reply[6] = 0;
                    reply[7] = data.get(2).copied().unwrap_or(1);
                    reply[10] = 0;
                    reply[11] = 0;
                    reply.extend_from_slice(data.get(3..).unwrap_or_default());
                    agent.handle_input(
                        now,
                        Input::Io {
                            id,
                            event: IoEvent::DnsReply(&reply),
                        },
                    );
                }
                _ => {}
            }
        }
        let Some(t) = agent.poll_timeout() else { break };
        now = now.after(t.saturating_since(now.mono));
        agent.handle_input(now, Input::Timeout);
    }
    for t in agent.targets() {
        assert!(!t.target.url.is_empty());
    }
});

/// Where the question of a query ends (after its type and class).
fn question_end(q: &[u8]) -> Option<((), usize)> {
    let mut i = 12;
    loop {
        let l = *q.get(i)? as usize;
        i += 1 + l;
        if l == 0 {
            break;
        }
    }
    (i + 4 <= q.len()).then_some(((), i + 4))
}
