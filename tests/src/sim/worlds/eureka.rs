//! Eureka discovery's world: the fake Eureka's registry (`crate::eureka::Registry`, the
//! one the loopback fake serves) with instances registered, cancelled, moved and taken
//! down (the job keeps instances that are up); now and then a 500, a reset connection or
//! a cut XML answer. The job refreshes every 30 s; the addresses it should scrape are
//! those of the last answer that went through.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use trawl_core::io::{IoOp, Origin, OwnedIoEvent, RequestId};

use super::{Answer, Reply, SdWorld, WorldJob, pick_host_port, server_fault};
use crate::consul::Query;
use crate::eureka::{Instance, Registry};
use crate::sim::Rng;

/// The server in the job's block.
const SERVER: &str = "http://eureka.sim:8761/eureka";

/// The world.
#[derive(Debug, Default)]
pub(crate) struct EurekaWorld {
    registry: Registry,
    next: u64,
    /// The addresses of the last answer served.
    served: Vec<String>,
    failing: bool,
}

impl EurekaWorld {
    fn register(&mut self, rng: &mut Rng, pool: &[String]) {
        let Some((host, port)) = pick_host_port(rng, pool) else {
            return;
        };
        self.next += 1;
        let app = format!("app-{}", rng.below(4));
        let i = Instance::new(&app, &format!("{host}:{app}:{}", self.next), &host, port)
            .meta("team", "sim");
        self.registry.put(i);
    }

    fn addresses_of(r: &Registry) -> Vec<String> {
        let v: BTreeSet<String> = r
            .all()
            .filter(|i| i.status == "UP")
            .map(|i| format!("{}:{}", i.host, i.port.map_or(80, |p| p.0)))
            .collect();
        v.into_iter().collect()
    }
}

impl SdWorld for EurekaWorld {
    fn key(&self) -> &'static str {
        "eureka_sd_configs"
    }

    fn init(&mut self, rng: &mut Rng, pool: &[String]) {
        for _ in 0..4 {
            self.register(rng, pool);
        }
    }

    fn jobs(&mut self, _rng: &mut Rng) -> Vec<WorldJob> {
        // Only instances that are up (the rule replaces the variant's).
        vec![WorldJob {
            name: "eureka",
            sd: format!(
                "    eureka_sd_configs: [{{server: '{SERVER}', refresh_interval: 30s}}]\n    relabel_configs: [{{source_labels: [__meta_eureka_app_instance_status], regex: UP, action: keep}}]\n"
            ),
            follows_variant: false,
        }]
    }

    fn reloaded(&mut self, in_use: bool) {
        if !in_use {
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
        if rest != "/apps" {
            return Some(Err(format!("Eureka asked for {rest}")));
        }
        let latency = Duration::from_millis(1 + rng.below(100));
        if self.failing || rng.chance(3) {
            let events = if rng.chance(3) {
                let xml = self.registry.xml(None);
                let cut = xml.len() / 2;
                vec![
                    Reply::head(200, "OK", "application/xml", false),
                    Reply::body(xml.as_bytes()[..cut].to_vec()),
                    Reply::end(),
                ]
            } else {
                server_fault(rng, b"")
            };
            return Some(Ok(Answer::After(latency, events)));
        }
        let q = Query::parse("/eureka/apps", Vec::new());
        let (status, ctype, body) = self.registry.answer("GET", &q, b"", "/eureka");
        self.served = Self::addresses_of(&self.registry);
        let events = vec![
            Reply::head(status, "OK", ctype, false),
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
            let all: Vec<Instance> = self.registry.all().cloned().collect();
            let pick = |rng: &mut Rng| all[rng.below(all.len() as u64) as usize].clone();
            match rng.below(4) {
                0 => self.register(rng, pool),
                1 if !all.is_empty() => {
                    let i = pick(rng);
                    self.registry.remove(&i.app, &i.id);
                }
                2 if !all.is_empty() => {
                    // An instance moves, or goes down (or comes back up).
                    let mut i = pick(rng);
                    if rng.chance(2) {
                        i.status = if i.status == "UP" { "DOWN" } else { "UP" }.into();
                    } else if let Some((host, port)) = pick_host_port(rng, pool) {
                        i.host = host;
                        i.port = Some((port, true));
                    }
                    self.registry.put(i);
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
        Duration::from_millis(30_500)
    }

    fn describe(&self) -> String {
        format!("eureka served {:?}", self.served)
    }
}
