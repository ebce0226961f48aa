//! Record and replay through the agent's contract: every input of a run with scrapes,
//! a reload, discovery files, storage reports and a restore, recorded; the replay gives
//! the same digest of outputs, and a torn recording replays up to its last whole entry.

use trawl_core::agent::{Agent, AgentOptions, Input, Output};
use trawl_core::io::{IoEvent, IoOp};
use trawl_core::labels::Labels;
use trawl_core::recording::{self, ConfigSource, Digest};
use trawl_core::resolver::wire;
use trawl_core::scrape::pipeline::SeriesRef;
use trawl_core::time::{Instant, Now, UnixNanos};
use trawl_core::wal::replay::{Restored, RestoredSeries};

struct Run {
    seen: Vec<String>,
    agent: Agent,
    log: Vec<u8>,
    digest: Digest,
    now: Now,
    /// Operations started and not answered yet.
    todo: std::collections::VecDeque<(trawl_core::io::RequestId, IoOp)>,
    /// Bytes sent on streams, not answered yet.
    sent: std::collections::VecDeque<(trawl_core::io::RequestId, Vec<u8>)>,
    /// The ZooKeeper server the serverset job's session talks to.
    zk: trawl_tests::zookeeper::Server,
}

impl Run {
    /// Records and feeds an input, then takes its outputs (as a shell drains after
    /// every input, and as the replay does).
    fn input(&mut self, input: Input<'_>) {
        recording::encode_input(&mut self.log, self.now, &input);
        self.agent.handle_input(self.now, input);
        self.collect();
    }

    fn collect(&mut self) {
        while let Some(o) = self.agent.poll_output() {
            self.digest.add(self.now, &o);
            self.seen.push(format!("{} {o:?}", self.now.mono.0));
            match o {
                Output::Start { id, op } => self.todo.push_back((id, op)),
                Output::Send { id, data } => self.sent.push_back((id, data)),
                _ => {}
            }
        }
    }

    /// Answers what was started: scrapes with a body that changes with time, files
    /// from `files`.
    fn answer(&mut self, files: &[(&str, &str)]) {
        while let Some((id, data)) = self.sent.pop_front() {
            match self.zk.input(id.0, &data) {
                Ok(b) if b.is_empty() => {}
                Ok(b) => self.input(Input::Io {
                    id,
                    event: IoEvent::StreamData(&b),
                }),
                Err(_) => self.input(Input::Io {
                    id,
                    event: IoEvent::StreamClosed,
                }),
            }
        }
        while let Some((id, op)) = self.todo.pop_front() {
            match op {
                IoOp::Http(_) => {
                    let body = format!(
                        "m{{k=\"{}\"}} 1\nn 2\n",
                        self.now.mono.0 / 30_000_000_000 % 3
                    );
                    self.input(Input::Io {
                        id,
                        event: IoEvent::HttpHead {
                            status: 200,
                            reason: "OK",
                            headers: &[("Content-Type", "text/plain; version=0.0.4")],
                        },
                    });
                    self.input(Input::Io {
                        id,
                        event: IoEvent::HttpBody(body.as_bytes()),
                    });
                    self.input(Input::Io {
                        id,
                        event: IoEvent::HttpEnd,
                    });
                }
                IoOp::ReadFile { path, .. } => match files.iter().find(|(p, _)| *p == path) {
                    Some((_, c)) => self.input(Input::Io {
                        id,
                        event: IoEvent::FileData(c.as_bytes()),
                    }),
                    None => self.input(Input::Io {
                        id,
                        event: IoEvent::NotFound,
                    }),
                },
                IoOp::ListDir { .. } => self.input(Input::Io {
                    id,
                    event: IoEvent::DirEntries(&["a.json"]),
                }),
                IoOp::Watch { .. } => {}
                // A ZooKeeper server whose member moves with time (see the loop).
                IoOp::Stream(_) => {
                    self.zk.connect(id.0);
                    self.input(Input::Io {
                        id,
                        event: IoEvent::StreamOpened,
                    });
                }
                // A name server that knows one SRV record, whose port moves with time.
                IoOp::Dns(q) => {
                    let port = 9000 + (self.now.mono.0 / 30_000_000_000 % 3) as u16;
                    let srv = wire::srv_rdata(0, 0, port, "d.rec.example.").expect("name");
                    let reply = wire::response(&q.message, 0, false, &[(wire::TYPE_SRV, srv)])
                        .expect("a query");
                    self.input(Input::Io {
                        id,
                        event: IoEvent::DnsReply(&reply),
                    });
                }
            }
        }
    }
}

#[test]
fn a_replayed_recording_gives_the_same_outputs() {
    let cfg = |targets: &str| ConfigSource {
        path: "/etc/trawl/prometheus.yml".into(),
        text: format!(
            "global: {{scrape_interval: 10s}}\nscrape_config_files: [jobs/*.yml]\nscrape_configs:\n  - job_name: s\n    static_configs: [{{targets: [{targets}]}}]\n  - job_name: f\n    file_sd_configs: [{{files: ['/sd/*.json']}}]\n  - job_name: d\n    dns_sd_configs: [{{names: [_x._tcp.rec.example], refresh_interval: 30s}}]\n  - job_name: z\n    serverset_sd_configs: [{{servers: ['zk.rec.example:2181'], paths: [/svc]}}]\n"
        ),
        env: vec![("HOME".into(), "/root".into())],
        files: vec![(
            "/etc/trawl/jobs/x.yml".into(),
            "scrape_configs: [{job_name: x, static_configs: [{targets: ['x:1']}]}]".into(),
        )],
    };
    let start = cfg("'a:1', 'b:1'");
    let now = Now::new(Instant(0), UnixNanos(1_700_000_000_000_000_000));
    let options = AgentOptions {
        seed: 7,
        ..AgentOptions::default()
    };
    let mut log = Vec::new();
    recording::encode_start(&mut log, &options, &start, now);
    let agent = Agent::new(start.parse().expect("config"), options, now);
    let mut run = Run {
        seen: Vec::new(),
        agent,
        log,
        digest: Digest::default(),
        now,
        todo: Default::default(),
        sent: Default::default(),
        zk: trawl_tests::zookeeper::Server::new(),
    };
    run.zk.create_all(
        "/svc/m1",
        br#"{"serviceEndpoint":{"host":"z.rec.example","port":9100}}"#,
    );
    run.collect();
    run.input(Input::Restore(Box::new(Restored {
        next_ref: 40,
        series: vec![RestoredSeries {
            series: SeriesRef(3),
            labels: Labels::from_pairs([("__name__", "n"), ("instance", "a:1"), ("job", "s")]),
            last_t: 5,
        }],
    })));
    let files = [
        ("/sd/a.json", "[{\"targets\": [\"f:1\"]}]"),
        ("/etc/resolv.conf", "nameserver 127.0.0.53\n"),
    ];
    for step in 0..200u64 {
        run.answer(&files);
        if step == 80 {
            let c = cfg("'a:1'");
            recording::encode_config(&mut run.log, run.now, &c);
            run.agent
                .handle_input(run.now, Input::Config(Box::new(c.parse().expect("config"))));
            run.collect();
            continue;
        }
        if step % 50 == 25 {
            // The member moves: its watch fires on the session's stream.
            let port = 9100 + step;
            let data = format!(r#"{{"serviceEndpoint":{{"host":"z.rec.example","port":{port}}}}}"#);
            for (conn, note) in run.zk.set("/svc/m1", data.as_bytes()).1 {
                run.input(Input::Io {
                    id: trawl_core::io::RequestId(conn),
                    event: IoEvent::StreamData(&note),
                });
            }
            continue;
        }
        if step % 7 == 0 {
            let err = (step % 21 == 0).then_some("disk full");
            run.input(Input::Stored(trawl_core::Stored {
                batches: 1,
                samples: 3,
                lost_samples: 0,
                error: err,
            }));
            continue;
        }
        let next = run.agent.poll_timeout().expect("a deadline");
        run.now = run.now.after(next.saturating_since(run.now.mono));
        run.input(Input::Timeout);
    }
    run.input(Input::Shutdown);
    run.answer(&files);
    recording::encode_digest(&mut run.log, run.digest);
    let mut again = Vec::new();
    let r = recording::replay_with(&run.log, |now, o| {
        again.push(format!("{} {o:?}", now.mono.0))
    })
    .expect("replays");
    if let Some(i) = (0..run.seen.len().max(again.len())).find(|&i| run.seen.get(i) != again.get(i))
    {
        panic!(
            "output {i} differs:\nrun:    {:?}\nreplay: {:?}",
            run.seen.get(i).map(|s| &s[..s.len().min(300)]),
            again.get(i).map(|s| &s[..s.len().min(300)])
        );
    }
    assert_eq!(r.recorded, Some(run.digest));
    assert_eq!(r.digest, run.digest, "the replay's outputs differ");
    assert!(r.inputs > 300, "{} inputs", r.inputs);
    // The job of the scrape config file ran (the recording holds the file).
    assert!(run.seen.iter().any(|o| o.contains("http://x:1/metrics")));
    // DNS discovery ran, and its answers are in the recording.
    assert!(
        run.seen.iter().any(|o| o.contains("d.rec.example:9001")),
        "the DNS job's target was never scraped"
    );
    // ZooKeeper discovery ran over its stream, and the member's move is in it.
    assert!(
        run.seen
            .iter()
            .any(|o| o.contains("http://z.rec.example:9175/metrics")),
        "the serverset job's moved member was never scraped"
    );
    // Cut anywhere: replays what is whole, never fails or panics.
    for cut in (0..run.log.len()).step_by(97) {
        let r = recording::replay(&run.log[..cut]).expect("a torn recording replays");
        assert_eq!(r.recorded, None);
    }
}
