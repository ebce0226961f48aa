//! ZooKeeper (serverset) discovery through the real agent against the tests' server
//! model (`trawl_tests::zookeeper::Server`), answered inline: every byte the agent sends
//! is answered at once on its stream; [`Run::change`] changes the tree and delivers the
//! notifications its watches set off.

use trawl_core::agent::{Agent, AgentOptions, Input, Output};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::io::{IoEvent, IoOp, RequestId};
use trawl_core::time::{Instant, Now, UnixNanos};
use trawl_tests::zookeeper::Server;

/// The path the members live under.
pub const PATH: &str = "/aurora/prod/web";

/// Member `i`'s node.
pub fn member_path(i: usize) -> String {
    format!("{PATH}/member_{i:010}")
}

/// Member `i`'s data (a serverset member at 127.x.y.z:9100, port `port`).
pub fn member(i: usize, port: u16) -> Vec<u8> {
    let ip = format!("127.{}.{}.{}", 1 + (i >> 16), (i >> 8) & 255, i & 255);
    format!(
        r#"{{"serviceEndpoint":{{"host":"{ip}","port":{port}}},"additionalEndpoints":{{"admin":{{"host":"{ip}","port":9990}}}},"status":"ALIVE","shard":{i}}}"#
    )
    .into_bytes()
}

/// A server holding `members` members under [`PATH`].
pub fn server(members: usize) -> Server {
    let mut s = Server::new();
    s.create_all(PATH, b"");
    for i in 0..members {
        s.create(&member_path(i), &member(i, 9100));
    }
    s
}

/// An agent discovering the members, and the server answering it.
pub struct Run {
    /// The agent.
    pub agent: Agent,
    /// Its clock.
    pub now: Now,
    /// The server.
    pub server: Server,
    stream: Option<RequestId>,
    /// Time spent in the server model answering (not the agent's work).
    pub server_time: std::time::Duration,
}

impl Run {
    /// An agent with one serverset job over `server`, plus `extra` lines for the job
    /// (coalescing off: the core's work only).
    pub fn new(server: Server, extra: &str) -> Run {
        let yaml = format!(
            "scrape_configs:\n- job_name: zk\n  scrape_interval: 1h\n  serverset_sd_configs: [{{servers: ['zk.bench:2181'], paths: ['{PATH}']}}]\n{extra}"
        );
        let config = Config::parse(&yaml, &ParseOptions::for_path("/p.yml")).expect("config");
        let now = Now::new(Instant(1), UnixNanos(1_700_000_000_000_000_000));
        let options = AgentOptions {
            coalesce_window: std::time::Duration::ZERO,
            updatert: std::time::Duration::ZERO,
            ..AgentOptions::default()
        };
        Run {
            agent: Agent::new(config, options, now),
            now,
            server,
            stream: None,
            server_time: std::time::Duration::ZERO,
        }
    }

    /// Answers and runs until nothing is left to do now; returns the active targets.
    pub fn settle(&mut self) -> usize {
        loop {
            let mut any = false;
            while let Some(o) = self.agent.poll_output() {
                any = true;
                match o {
                    Output::Start {
                        id,
                        op: IoOp::Stream(_),
                    } => {
                        self.server.connect(id.0);
                        self.stream = Some(id);
                        self.agent.handle_input(
                            self.now,
                            Input::Io {
                                id,
                                event: IoEvent::StreamOpened,
                            },
                        );
                    }
                    Output::Send { id, data } => {
                        let t = std::time::Instant::now();
                        let answer = self.server.input(id.0, &data);
                        self.server_time += t.elapsed();
                        let event = match answer {
                            Ok(b) if b.is_empty() => continue,
                            Ok(b) => b,
                            Err(_) => panic!("the server closed the stream"),
                        };
                        self.agent.handle_input(
                            self.now,
                            Input::Io {
                                id,
                                event: IoEvent::StreamData(&event),
                            },
                        );
                    }
                    _ => {}
                }
            }
            match self.agent.poll_timeout() {
                Some(t) if t <= self.now.mono => self.agent.handle_input(self.now, Input::Timeout),
                _ if any => {}
                _ => return self.agent.pools().iter().map(|p| p.active).sum(),
            }
        }
    }

    /// Changes the tree with `f`; the notifications for the agent's stream.
    pub fn change(&mut self, f: impl FnOnce(&mut Server) -> Vec<(u64, Vec<u8>)>) -> Vec<Vec<u8>> {
        let id = self.stream.map(|s| s.0);
        f(&mut self.server)
            .into_iter()
            .filter(|(c, _)| Some(*c) == id)
            .map(|(_, b)| b)
            .collect()
    }

    /// Drops the agent, keeping the server (to tell their heaps apart).
    pub fn into_server(self) -> Server {
        self.server
    }

    /// Feeds notifications and settles: the core's whole reaction (the reads they start
    /// answered inline); returns the active targets.
    pub fn deliver(&mut self, notes: &[Vec<u8>]) -> usize {
        if let Some(id) = self.stream {
            for n in notes {
                self.agent.handle_input(
                    self.now,
                    Input::Io {
                        id,
                        event: IoEvent::StreamData(n),
                    },
                );
            }
        }
        self.settle()
    }
}
