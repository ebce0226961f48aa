//! DNS discovery's core cost (issue 17): one refresh of a job with 1 000 SRV names, each
//! answered with two records, through the real Agent — resolv.conf interpreted, 1 000
//! queries encoded, 1 000 answers decoded, 2 000 targets built, the batch diffed and
//! delivered.
//!
//! * `refresh_1000_srv_names_unchanged` — the same answers every time: discovery's own
//!   work (nothing reaches the pools);
//! * `refresh_1000_srv_names_moving` — every target moves to another port at each
//!   refresh: 2 000 loops stopped and 2 000 started on top.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use trawl_core::agent::{Agent, AgentOptions, Event, Input, Output};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::io::{IoEvent, IoOp};
use trawl_core::resolver::wire;
use trawl_core::time::{Instant, Now, UnixNanos};

const NAMES: usize = 1000;

struct Run {
    agent: Agent,
    now: Now,
    round: u16,
    /// Answers move their targets to another port at each refresh.
    moving: bool,
}

impl Run {
    fn new(moving: bool) -> Run {
        let names: Vec<String> = (0..NAMES)
            .map(|i| format!("_s{i}._tcp.example.com"))
            .collect();
        let yaml = format!(
            "scrape_configs:\n- job_name: dns\n  scrape_interval: 1h\n  dns_sd_configs: [{{names: [{}], refresh_interval: 30s}}]\n",
            names.join(", ")
        );
        let config = Config::parse(&yaml, &ParseOptions::for_path("/p.yml")).expect("config");
        let now = Now::new(Instant(0), UnixNanos(1_700_000_000_000_000_000));
        let agent = Agent::new(config, AgentOptions::default(), now);
        let mut r = Run {
            agent,
            now,
            round: 0,
            moving,
        };
        r.answer(true);
        r
    }

    /// Answers every operation of one refresh, until the agent delivers it (if
    /// `delivery`; an unchanged refresh delivers nothing).
    fn answer(&mut self, delivery: bool) {
        self.round = self.round.wrapping_add(1);
        let mut delivered = false;
        let mut answered = 0;
        // Unchanged answers change nothing downstream: no delivery to wait for.
        while !(delivered || !delivery && answered == NAMES) {
            let mut any = false;
            while let Some(o) = self.agent.poll_output() {
                any = true;
                match o {
                    Output::Start { id, op } => match op {
                        IoOp::ReadFile { .. } => self.agent.handle_input(
                            self.now,
                            Input::Io {
                                id,
                                event: IoEvent::FileData(b"nameserver 127.0.0.1\n"),
                            },
                        ),
                        IoOp::Dns(q) => {
                            let port = if self.moving {
                                9000 + self.round % 100
                            } else {
                                9000
                            };
                            let (name, _) = wire::question(&q.message).expect("question");
                            let srv = |host: &str| {
                                let target = format!("{host}.{name}");
                                (
                                    wire::TYPE_SRV,
                                    wire::srv_rdata(0, 0, port, &target).expect("name"),
                                )
                            };
                            let rr = [srv("a"), srv("b")];
                            let reply = wire::response(&q.message, 0, false, &rr).expect("query");
                            answered += 1;
                            self.agent.handle_input(
                                self.now,
                                Input::Io {
                                    id,
                                    event: IoEvent::DnsReply(&reply),
                                },
                            );
                        }
                        _ => {}
                    },
                    // The delivery of this refresh's answers (not the one of the
                    // configuration, at the start).
                    Output::Event(Event::Delivered { .. }) => delivered = answered == NAMES,
                    _ => {}
                }
            }
            if delivered {
                // Work the agent spreads over turns (a large sync) runs at once.
                while let Some(t) = self.agent.poll_timeout().filter(|t| *t <= self.now.mono) {
                    let _ = t;
                    self.agent.handle_input(self.now, Input::Timeout);
                    while self.agent.poll_output().is_some() {}
                }
            }
            if answered == NAMES && !delivery {
                break;
            }
            if !any || !delivered {
                match self.agent.poll_timeout() {
                    Some(t) => {
                        self.now = self.now.after(t.saturating_since(self.now.mono));
                        self.agent.handle_input(self.now, Input::Timeout);
                    }
                    None => return,
                }
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("dns_sd");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));
    let mut r = Run::new(true);
    assert_eq!(
        r.agent.targets().len(),
        2 * NAMES,
        "two targets per name: {:?} {:?} {:?}",
        r.agent.stats().sd,
        r.agent
            .metrics()
            .names()
            .filter(|n| n.contains("discovered") || n.contains("pool"))
            .collect::<Vec<_>>(),
        r.agent.dropped_targets().len()
    );
    // One refresh: the next deadline (the refresh), resolv.conf, 1 000 lookups, the
    // delivery after the coalescing window.
    g.bench_function("refresh_1000_srv_names_moving", |b| {
        b.iter(|| r.answer(true))
    });
    // The same answers again: DNS discovery's own cost (the pools see no change).
    let mut r = Run::new(false);
    g.bench_function("refresh_1000_srv_names_unchanged", |b| {
        b.iter(|| r.answer(false))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
