//! Consul discovery through the real agent against the fake agent's catalog model
//! (`trawl_tests::consul::Catalog`), answered inline: requests without an index (or from
//! an index the resource has passed) are answered at once; blocking queries are held by
//! resource until [`Run::change`] wakes them, as the fake server does.

use std::collections::BTreeMap;

use trawl_core::agent::{Agent, AgentOptions, Input, Output};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::io::{IoEvent, IoOp, RequestId};
use trawl_core::time::{Instant, Now, UnixNanos};
use trawl_tests::consul::{Answer, Catalog, Instance, Node, Query, Resource};

/// The server in the job's block (never dialled: the answers are inline).
const SERVER: &str = "consul.bench:8500";

/// A catalog of `services` services with `per` instances each, spread over 100 nodes;
/// instance `j` of service `i` at 127.x.y.z:9100.
pub fn catalog(services: usize, per: usize) -> Catalog {
    let mut c = Catalog::new("dc1");
    for n in 0..100 {
        let mut node = Node {
            name: format!("node-{n}"),
            address: format!("10.1.0.{n}"),
            ..Node::default()
        };
        node.meta.insert("rack".into(), format!("r{}", n % 10));
        c.register_node(node);
    }
    for i in 0..services {
        for j in 0..per {
            let k = i * per + j;
            let ip = format!("127.{}.{}.{}", 1 + (k >> 16), (k >> 8) & 255, k & 255);
            c.register(
                Instance::new(
                    &format!("node-{}", k % 100),
                    &format!("svc-{i}"),
                    &format!("svc-{i}-{j}"),
                    &ip,
                    9100,
                )
                .tags(&["prod", "v1"])
                .meta("version", "1"),
            );
        }
    }
    c
}

/// An agent discovering the whole catalog, and the catalog answering it.
pub struct Run {
    /// The agent.
    pub agent: Agent,
    /// Its clock.
    pub now: Now,
    /// The catalog.
    pub catalog: Catalog,
    /// Blocking queries held: (query, index asked from, since when).
    held: BTreeMap<RequestId, (Query, u64, Instant)>,
}

impl Run {
    /// An agent with one job over the whole catalog, plus `extra` lines for the job
    /// (coalescing off: the core's work only).
    pub fn new(catalog: Catalog, extra: &str) -> Run {
        let yaml = format!(
            "scrape_configs:\n- job_name: consul\n  scrape_interval: 1h\n  consul_sd_configs: [{{server: '{SERVER}', datacenter: dc1, refresh_interval: 1s}}]\n{extra}"
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
            catalog,
            held: BTreeMap::new(),
        }
    }

    fn answer(&mut self, id: RequestId, q: &Query) {
        let a = self.catalog.answer(q);
        self.feed(id, &a);
    }

    fn feed(&mut self, id: RequestId, a: &Answer) {
        let index = a.index.unwrap_or(1).to_string();
        let headers = [("X-Consul-Index", index.as_str())];
        for event in [
            IoEvent::HttpHead {
                status: a.status,
                reason: "",
                headers: &headers,
            },
            IoEvent::HttpBody(a.body.as_bytes()),
            IoEvent::HttpEnd,
        ] {
            self.agent.handle_input(self.now, Input::Io { id, event });
        }
    }

    /// Answers and runs until nothing is left to do now; returns the active targets.
    pub fn settle(&mut self) -> usize {
        loop {
            let mut any = false;
            while let Some(o) = self.agent.poll_output() {
                any = true;
                if let Output::Start {
                    id,
                    op: IoOp::Http(r),
                } = o
                {
                    let Some(rest) = r.url.strip_prefix(&format!("http://{SERVER}")) else {
                        continue;
                    };
                    let q = Query::parse(rest, Vec::new());
                    let r = Catalog::resource(&q);
                    let index = q.index();
                    if index > 0 && r != Resource::None && self.catalog.resource_index(&r) <= index
                    {
                        self.held.insert(id, (q, index, self.now.mono));
                    } else {
                        self.answer(id, &q);
                    }
                }
            }
            match self.agent.poll_timeout() {
                Some(t) if t <= self.now.mono => self.agent.handle_input(self.now, Input::Timeout),
                _ if any => {}
                _ => return self.agent.pools().iter().map(|p| p.active).sum(),
            }
        }
    }

    /// Moves the clock on (the watches' refresh interval) and settles; queries held
    /// for Consul's wait (2 minutes) answer unchanged, as Consul does.
    pub fn tick(&mut self, secs: u64) -> usize {
        let ns = secs * 1_000_000_000;
        self.now = Now::new(
            Instant(self.now.mono.0 + ns),
            UnixNanos(self.now.wall.0 + ns as i64),
        );
        let expired: Vec<RequestId> = self
            .held
            .iter()
            .filter(|(_, (_, _, since))| self.now.mono.saturating_since(*since).as_secs() >= 120)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some((q, _, _)) = self.held.remove(&id) {
                self.answer(id, &q);
            }
        }
        self.agent.handle_input(self.now, Input::Timeout);
        self.settle()
    }

    /// Applies `f` to the catalog and renders the answers of the held queries whose
    /// resource moved (the fake's work, kept apart from the agent's).
    pub fn wake(&mut self, f: impl FnOnce(&mut Catalog)) -> Vec<(RequestId, Answer)> {
        f(&mut self.catalog);
        let held = std::mem::take(&mut self.held);
        let mut out = Vec::new();
        for (id, (q, index, since)) in held {
            if self.catalog.resource_index(&Catalog::resource(&q)) > index {
                out.push((id, self.catalog.answer(&q)));
            } else {
                self.held.insert(id, (q, index, since));
            }
        }
        out
    }

    /// Feeds the answers [`Run::wake`] rendered and settles: the change is in the
    /// pools when this returns; the active targets.
    pub fn deliver(&mut self, answers: &[(RequestId, Answer)]) -> usize {
        for (id, a) in answers {
            self.feed(*id, a);
        }
        self.settle()
    }

    /// [`Run::wake`] and [`Run::deliver`].
    pub fn change(&mut self, f: impl FnOnce(&mut Catalog)) -> usize {
        let a = self.wake(f);
        self.deliver(&a)
    }

    /// Blocking queries held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}
