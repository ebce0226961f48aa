//! ZooKeeper discovery as a state machine, by property: any sequence of tree changes,
//! dropped connections and expired sessions, applied to the tests' server model while
//! the real agent holds a session to it (every byte answered inline), ends with the
//! agent discovering exactly the members the server holds — at once after each change
//! while the session is sound, and once the 10 s retry has read the tree again after a
//! failure. The same seeds give the same outputs.

use std::collections::BTreeSet;

use proptest::prelude::*;
use trawl_core::agent::{Agent, AgentOptions, Input, Output};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::io::{IoEvent, IoOp, RequestId};
use trawl_core::time::{Instant, Now, UnixNanos};
use trawl_tests::zookeeper::Server;

const PATH: &str = "/svc/web";

#[derive(Clone, Debug)]
enum Op {
    /// Creates member `i` (at port `p`), or sets its data if it exists.
    Put(u8, u16),
    /// Deletes member `i` (and its child, if any).
    Delete(u8),
    /// Gives member `i` a child member of its own (nested paths are watched too).
    Nest(u8, u16),
    /// Garbles member `i`'s data.
    Garble(u8),
    /// The connection drops (the session survives).
    Drop,
    /// The session expires.
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..12, 9000u16..9004).prop_map(|(i, p)| Op::Put(i, p)),
        2 => (0u8..12).prop_map(Op::Delete),
        1 => (0u8..12, 9000u16..9004).prop_map(|(i, p)| Op::Nest(i, p)),
        1 => (0u8..12).prop_map(Op::Garble),
        1 => Just(Op::Drop),
        1 => Just(Op::Expire),
    ]
}

fn member(i: u8, port: u16) -> Vec<u8> {
    format!(r#"{{"serviceEndpoint":{{"host":"127.0.1.{i}","port":{port}}}}}"#).into_bytes()
}

struct Harness {
    agent: Agent,
    now: Now,
    server: Server,
    /// The agent's open stream, if the server has it.
    stream: Option<RequestId>,
    log: Vec<String>,
}

impl Harness {
    fn new(seed: u64) -> Harness {
        let yaml = format!(
            "scrape_configs:\n- job_name: zk\n  scrape_interval: 1h\n  serverset_sd_configs: [{{servers: ['zk1:2181', 'zk2:2181'], paths: ['{PATH}'], timeout: 6s}}]\n"
        );
        let config = Config::parse(&yaml, &ParseOptions::for_path("/p.yml")).expect("config");
        let now = Now::new(Instant(1), UnixNanos(1_700_000_000_000_000_000));
        let options = AgentOptions {
            coalesce_window: std::time::Duration::ZERO,
            updatert: std::time::Duration::ZERO,
            seed,
            ..AgentOptions::default()
        };
        let mut server = Server::new();
        server.create_all(PATH, b"");
        let mut h = Harness {
            agent: Agent::new(config, options, now),
            now,
            server,
            stream: None,
            log: Vec::new(),
        };
        h.settle();
        h
    }

    fn feed(&mut self, id: RequestId, event: IoEvent<'_>) {
        self.agent.handle_input(self.now, Input::Io { id, event });
    }

    /// Answers everything now; runs due timers.
    fn settle(&mut self) {
        loop {
            let mut any = false;
            while let Some(o) = self.agent.poll_output() {
                any = true;
                self.log.push(format!("{} {o:?}", self.now.mono.0));
                match o {
                    Output::Start {
                        id,
                        op: IoOp::Stream(_),
                    } => {
                        self.server.connect(id.0);
                        self.stream = Some(id);
                        self.feed(id, IoEvent::StreamOpened);
                    }
                    Output::Send { id, data } if Some(id) == self.stream => {
                        match self.server.input(id.0, &data) {
                            Ok(b) if b.is_empty() => {}
                            Ok(b) => self.feed(id, IoEvent::StreamData(&b)),
                            Err(b) => {
                                self.stream = None;
                                if !b.is_empty() {
                                    self.feed(id, IoEvent::StreamData(&b));
                                }
                                self.feed(id, IoEvent::StreamClosed);
                            }
                        }
                    }
                    Output::Cancel(id) if Some(id) == self.stream => {
                        self.server.disconnect(id.0);
                        self.stream = None;
                    }
                    _ => {}
                }
            }
            match self.agent.poll_timeout() {
                Some(t) if t <= self.now.mono => self.agent.handle_input(self.now, Input::Timeout),
                _ if any => {}
                _ => return,
            }
        }
    }

    fn notify(&mut self, notes: Vec<(u64, Vec<u8>)>) {
        for (conn, b) in notes {
            if self.stream.map(|s| s.0) == Some(conn) {
                self.feed(RequestId(conn), IoEvent::StreamData(&b));
            }
        }
        self.settle();
    }

    /// Moves the clock `secs` on, a second at a time (pings are answered).
    fn wait(&mut self, secs: u64) {
        for _ in 0..secs {
            let step = 1_000_000_000;
            self.now = Now::new(
                Instant(self.now.mono.0 + step),
                UnixNanos(self.now.wall.0 + step as i64),
            );
            self.agent.handle_input(self.now, Input::Timeout);
            self.settle();
        }
    }

    fn apply(&mut self, op: &Op) {
        let path = |i: u8| format!("{PATH}/m{i:02}");
        match op {
            Op::Put(i, p) => {
                let n = if self.server.get(&path(*i)).is_some() {
                    self.server.set(&path(*i), &member(*i, *p)).1
                } else {
                    self.server.create(&path(*i), &member(*i, *p)).1
                };
                self.notify(n);
            }
            Op::Delete(i) => {
                let mut n = self.server.delete(&format!("{}/child", path(*i))).1;
                n.extend(self.server.delete(&path(*i)).1);
                self.notify(n);
            }
            Op::Nest(i, p) => {
                let n = self
                    .server
                    .create(&format!("{}/child", path(*i)), &member(100 + i, *p))
                    .1;
                self.notify(n);
            }
            Op::Garble(i) => {
                let n = self.server.set(&path(*i), b"{\"serviceEndpoint\":").1;
                self.notify(n);
            }
            Op::Drop => {
                if let Some(s) = self.stream.take() {
                    self.server.disconnect(s.0);
                    self.feed(s, IoEvent::StreamClosed);
                    self.settle();
                }
            }
            Op::Expire => {
                if let Some(s) = self.stream
                    && let Some(session) = self.server.session_of(s.0)
                {
                    self.server.expire(session);
                    self.stream = None;
                    self.feed(s, IoEvent::StreamClosed);
                    self.settle();
                }
            }
        }
    }

    /// The members the server holds, as addresses.
    fn expected(&self) -> BTreeSet<String> {
        self.server
            .subtree(PATH)
            .into_iter()
            .filter_map(|(_, d)| {
                let v: serde_json::Value = serde_json::from_slice(&d).ok()?;
                let e = &v["serviceEndpoint"];
                Some(format!("{}:{}", e["host"].as_str()?, e["port"].as_u64()?))
            })
            .collect()
    }

    fn discovered(&self) -> BTreeSet<String> {
        self.agent
            .targets()
            .iter()
            .filter_map(|t| t.target.public_labels().get("instance").map(str::to_owned))
            .collect()
    }

    fn failures(&self) -> f64 {
        self.agent
            .metrics()
            .sum("prometheus_treecache_zookeeper_failures_total")
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_agent_ends_with_the_servers_members(ops in prop::collection::vec(op(), 1..40), seed in 0u64..4) {
        let mut h = Harness::new(seed);
        let mut sound = true;
        for op in &ops {
            h.apply(op);
            let before = h.failures();
            if matches!(op, Op::Expire) {
                sound = false;
            }
            // While nothing failed, every change is followed at once.
            if sound && before == 0.0 {
                prop_assert_eq!(h.discovered(), h.expected(), "after {:?}", op);
            }
        }
        // A failure is read again 10 s later; whatever happened, the end is the server's.
        h.wait(12);
        prop_assert_eq!(h.discovered(), h.expected());
        // Bounded: one connection, whatever happened.
        prop_assert!(h.agent.in_flight() <= 1);
    }
}

#[test]
fn same_seed_same_outputs() {
    let run = |seed| {
        let mut h = Harness::new(seed);
        for op in [
            Op::Put(1, 9000),
            Op::Put(2, 9001),
            Op::Drop,
            Op::Nest(1, 9002),
            Op::Expire,
            Op::Delete(2),
        ] {
            h.apply(&op);
        }
        h.wait(12);
        assert_eq!(h.discovered(), h.expected());
        h.log
    };
    assert_eq!(run(3), run(3));
}
