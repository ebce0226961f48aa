//! Nomad discovery's world: the fake agent's registry model (`crate::nomad::Registry`,
//! the one the loopback fake serves) with registrations added, moved and removed; now and
//! then a 500 or a reset connection. The job refreshes every 30 s; the addresses it
//! should scrape are those of the last refresh that went through: a list and every
//! service asked after it, all answered.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use trawl_core::io::{IoOp, Origin, OwnedIoEvent, RequestId};

use super::{Answer, Reply, SdWorld, WorldJob, pick_host_port, server_fault};
use crate::consul::Query;
use crate::nomad::{Registration, Registry};
use crate::sim::Rng;

/// The server in the job's block.
const SERVER: &str = "http://nomad.sim:4646";

/// The world.
#[derive(Debug)]
pub(crate) struct NomadWorld {
    registry: Registry,
    next_id: u64,
    /// The refresh being answered: the services listed, and the addresses served so
    /// far; complete once every listed service was answered.
    current: Option<(BTreeSet<String>, BTreeSet<String>)>,
    /// The addresses of the last complete refresh.
    served: Vec<String>,
    /// The next answers fail.
    failing: bool,
}

impl Default for NomadWorld {
    fn default() -> NomadWorld {
        NomadWorld {
            registry: Registry::new("global"),
            next_id: 0,
            current: None,
            served: Vec::new(),
            failing: false,
        }
    }
}

impl NomadWorld {
    fn register(&mut self, rng: &mut Rng, pool: &[String]) {
        let Some((host, port)) = pick_host_port(rng, pool) else {
            return;
        };
        self.next_id += 1;
        let service = ["web", "api", "db"][rng.below(3) as usize];
        let id = format!("{service}-{}", self.next_id);
        self.registry
            .register(Registration::new(service, &id, &host, port));
    }
}

impl SdWorld for NomadWorld {
    fn key(&self) -> &'static str {
        "nomad_sd_configs"
    }

    fn init(&mut self, rng: &mut Rng, pool: &[String]) {
        for _ in 0..4 {
            self.register(rng, pool);
        }
    }

    fn jobs(&mut self, _rng: &mut Rng) -> Vec<WorldJob> {
        vec![WorldJob {
            name: "nomad",
            sd: format!("    nomad_sd_configs: [{{server: '{SERVER}', refresh_interval: 30s}}]\n"),
            follows_variant: true,
        }]
    }

    fn reloaded(&mut self, in_use: bool) {
        if !in_use {
            self.current = None;
            self.served.clear();
        }
    }

    fn answer(
        &mut self,
        _id: RequestId,
        op: &IoOp,
        rng: &mut Rng,
    ) -> Option<Result<Answer, String>> {
        let IoOp::Http(r) = op else { return None };
        if !matches!(r.origin, Origin::Discovery { .. }) {
            return None;
        }
        let rest = r.url.strip_prefix(SERVER)?;
        let q = Query::parse(rest, Vec::new());
        let latency = Duration::from_millis(1 + rng.below(100));
        if self.failing || rng.chance(3) {
            // The refresh is abandoned: nothing it served counts.
            self.current = None;
            let reply = server_fault(rng, b"");
            return Some(Ok(Answer::After(latency, reply)));
        }
        let (status, body) = self.registry.answer(&q);
        if q.path == "/v1/services" {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let names = v
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|ns| ns["Services"].as_array().cloned().unwrap_or_default())
                .filter_map(|s| s["ServiceName"].as_str().map(str::to_owned))
                .collect();
            self.current = Some((names, BTreeSet::new()));
        } else if let Some(name) = q.path.strip_prefix("/v1/service/")
            && let Some((left, addrs)) = self.current.as_mut()
        {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            for r in v.as_array().into_iter().flatten() {
                addrs.insert(format!(
                    "{}:{}",
                    r["Address"].as_str().unwrap_or(""),
                    r["Port"]
                ));
            }
            left.remove(name);
        }
        if let Some((left, addrs)) = &self.current
            && left.is_empty()
        {
            self.served = addrs.iter().cloned().collect();
            self.current = None;
        }
        let events = vec![
            Reply::head(status, "", "application/json", false),
            Reply::body(body.into_bytes()),
            Reply::end(),
        ];
        Some(Ok(Answer::After(latency, events)))
    }

    fn change(
        &mut self,
        rng: &mut Rng,
        pool: &[String],
        _open: &BTreeMap<RequestId, IoOp>,
    ) -> Vec<(RequestId, OwnedIoEvent)> {
        for _ in 0..1 + rng.below(3) {
            match rng.below(3) {
                0 => self.register(rng, pool),
                1 if self.next_id > 0 => {
                    let id = 1 + rng.below(self.next_id);
                    for s in ["web", "api", "db"] {
                        self.registry.deregister(&format!("{s}-{id}"));
                    }
                }
                _ => {}
            }
        }
        self.failing = rng.chance(10);
        Vec::new()
    }

    fn addresses(&self) -> Vec<String> {
        self.served.clone()
    }

    fn settle(&self) -> Duration {
        // One refresh and its answers' latency (a list and three services).
        Duration::from_millis(30_500)
    }

    fn describe(&self) -> String {
        format!("nomad served {:?} current {:?}", self.served, self.current)
    }
}
