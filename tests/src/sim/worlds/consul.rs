//! Consul discovery's world: the fake agent's catalog model (`crate::consul::Catalog`,
//! the one the loopback fake serves) with instances registered, moved, deregistered and
//! their checks flipped; blocking queries held until their resource's index passes the
//! one asked for, answered from `change`; now and then a 500 or a reset connection. (A
//! snapshot restore, where indexes go back, is left to the end-to-end test and the
//! provider's unit tests: a query from an index above the restored one waits for the
//! wait's end, which this world does not model.) The addresses the job should scrape are those of
//! the last answers served: the services of the last catalog answer, each with the
//! instances of its last health answer.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use trawl_core::http::ResponseHead;
use trawl_core::io::{IoOp, Origin, OwnedIoEvent, RequestId};

use super::{Answer, Reply, SdWorld, WorldJob, pick_host_port, server_fault};
use crate::consul::{Catalog, Instance, Node, Query, Resource};
use crate::sim::Rng;

/// The server in the job's block.
const SERVER: &str = "consul.sim:8500";
/// The services instances are registered under.
const SERVICES: [&str; 3] = ["web", "api", "db"];

/// The world.
#[derive(Debug)]
pub(crate) struct ConsulWorld {
    catalog: Catalog,
    next_id: u64,
    /// Blocking queries held: the query and the index it waits to pass.
    held: BTreeMap<RequestId, (Query, u64)>,
    /// The service names of the last catalog answer.
    served_services: Option<BTreeSet<String>>,
    /// Each service's addresses in its last health answer.
    served: BTreeMap<String, BTreeSet<String>>,
    /// The next answers fail (a Consul without a leader).
    failing: bool,
    /// The block of the configuration being applied, and of the running provider.
    pending: Option<String>,
    running: Option<String>,
}

impl Default for ConsulWorld {
    fn default() -> ConsulWorld {
        ConsulWorld {
            catalog: Catalog::new("sim"),
            next_id: 0,
            held: BTreeMap::new(),
            served_services: None,
            served: BTreeMap::new(),
            failing: false,
            pending: None,
            running: None,
        }
    }
}

impl ConsulWorld {
    fn register(&mut self, rng: &mut Rng, pool: &[String]) {
        let Some((host, port)) = pick_host_port(rng, pool) else {
            return;
        };
        let node = format!("node-{}", rng.below(3));
        self.catalog.register_node(Node {
            name: node.clone(),
            address: "10.255.0.1".into(),
            ..Node::default()
        });
        self.next_id += 1;
        let service = SERVICES[rng.below(SERVICES.len() as u64) as usize];
        let id = format!("{service}-{}", self.next_id);
        // Always the service's own address: the node's is not in the pool.
        self.catalog
            .register(Instance::new(&node, service, &id, &host, port));
    }

    /// The events of an answer to `q` now.
    fn events(&mut self, q: &Query) -> Vec<OwnedIoEvent> {
        let a = self.catalog.answer(q);
        if a.status == 200 {
            let v: serde_json::Value = serde_json::from_str(&a.body).unwrap_or_default();
            match Catalog::resource(q) {
                Resource::Services => {
                    let names: BTreeSet<String> = v
                        .as_object()
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    // A service that left the catalog has its watch stopped and its
                    // group emptied: if it comes back, only a new health answer counts.
                    self.served.retain(|s, _| names.contains(s));
                    self.served_services = Some(names);
                }
                Resource::Health(s) => {
                    let addrs = v
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|e| {
                                    format!(
                                        "{}:{}",
                                        e["Service"]["Address"].as_str().unwrap_or(""),
                                        e["Service"]["Port"]
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    self.served.insert(s, addrs);
                }
                Resource::None => {}
            }
        }
        let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        if let Some(i) = a.index {
            headers.push(("X-Consul-Index".to_owned(), i.to_string()));
        }
        vec![
            OwnedIoEvent::HttpHead(ResponseHead {
                minor: 1,
                status: a.status,
                reason: String::new(),
                headers,
            }),
            OwnedIoEvent::HttpBody(a.body.into_bytes()),
            OwnedIoEvent::HttpEnd,
        ]
    }
}

impl SdWorld for ConsulWorld {
    fn key(&self) -> &'static str {
        "consul_sd_configs"
    }

    fn init(&mut self, rng: &mut Rng, pool: &[String]) {
        for _ in 0..4 {
            self.register(rng, pool);
        }
    }

    fn jobs(&mut self, rng: &mut Rng) -> Vec<WorldJob> {
        // The whole catalog (with the agent asked for the datacenter), or two listed
        // services watched directly.
        let block = if rng.chance(50) {
            format!("{{server: '{SERVER}', refresh_interval: 5s}}")
        } else {
            format!(
                "{{server: '{SERVER}', datacenter: sim, services: [web, api], refresh_interval: 5s}}"
            )
        };
        self.pending = Some(block.clone());
        vec![WorldJob {
            name: "registry",
            sd: format!(
                "    consul_sd_configs: [{block}]\n    relabel_configs: [{{source_labels: [__meta_consul_service], regex: consul, action: drop}}]\n"
            ),
            follows_variant: false,
        }]
    }

    fn reloaded(&mut self, in_use: bool) {
        // A new provider (another block) asks everything again; a kept one keeps its
        // watches.
        let block = if in_use { self.pending.take() } else { None };
        if block != self.running {
            self.running = block;
            self.held.clear();
            self.served_services = None;
            self.served.clear();
        }
    }

    fn answer(
        &mut self,
        id: RequestId,
        op: &IoOp,
        rng: &mut Rng,
    ) -> Option<Result<Answer, String>> {
        let IoOp::Http(r) = op else { return None };
        if !matches!(r.origin, Origin::Discovery { .. }) {
            return None;
        }
        let rest = r.url.strip_prefix(&format!("http://{SERVER}"))?;
        let q = Query::parse(rest, Vec::new());
        let latency = Duration::from_millis(1 + rng.below(50));
        if self.failing || rng.chance(3) {
            let reply = server_fault(rng, b"No cluster leader");
            return Some(Ok(Answer::After(latency, reply)));
        }
        let resource = Catalog::resource(&q);
        let index = q.index();
        if index > 0
            && resource != Resource::None
            && self.catalog.resource_index(&resource) <= index
        {
            self.held.insert(id, (q, index));
            return Some(Ok(Answer::Hold));
        }
        let events = self.events(&q).into_iter().map(Reply::Io).collect();
        Some(Ok(Answer::After(latency, events)))
    }

    fn change(
        &mut self,
        rng: &mut Rng,
        pool: &[String],
        open: &BTreeMap<RequestId, IoOp>,
    ) -> Vec<(RequestId, OwnedIoEvent)> {
        self.held.retain(|id, _| open.contains_key(id));
        for _ in 0..1 + rng.below(4) {
            let ids: Vec<(String, String)> = self
                .catalog
                .instances()
                .filter(|i| i.service != "consul")
                .map(|i| (i.node.clone(), i.id.clone()))
                .collect();
            match rng.below(10) {
                0..=3 => self.register(rng, pool),
                4 | 5 if !ids.is_empty() => {
                    let (n, i) = &ids[rng.below(ids.len() as u64) as usize];
                    self.catalog.deregister(n, i);
                }
                6 if !ids.is_empty() => {
                    let (n, i) = &ids[rng.below(ids.len() as u64) as usize];
                    let st = if rng.chance(50) {
                        "critical"
                    } else {
                        "passing"
                    };
                    self.catalog.set_check(n, i, &format!("service:{i}"), st);
                }
                _ => {}
            }
        }
        self.failing = rng.chance(10);
        // Blocked queries whose resource moved answer now.
        let mut out = Vec::new();
        let held = std::mem::take(&mut self.held);
        for (id, (q, index)) in held {
            let moved = self.catalog.resource_index(&Catalog::resource(&q)) > index;
            if moved {
                for ev in self.events(&q) {
                    out.push((id, ev));
                }
            } else {
                self.held.insert(id, (q, index));
            }
        }
        out
    }

    fn addresses(&self) -> Vec<String> {
        let Some(services) = &self.served_services else {
            // Listed services: every one answered.
            return self.served.values().flatten().cloned().collect();
        };
        let mut v: BTreeSet<String> = BTreeSet::new();
        for (s, addrs) in &self.served {
            if services.contains(s) && s != "consul" {
                v.extend(addrs.iter().cloned());
            }
        }
        v.into_iter().collect()
    }

    fn settle(&self) -> Duration {
        // A failed watch waits 15 s, then the refresh interval's tick.
        Duration::from_secs(25)
    }

    fn describe(&self) -> String {
        format!(
            "consul index {} served catalog {:?} served {:?} held {:?}",
            self.catalog.index(),
            self.served_services,
            self.served,
            self.held.keys().collect::<Vec<_>>()
        )
    }
}
