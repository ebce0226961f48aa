//! Marathon discovery's world: the fake Marathon's app model (`crate::marathon::Apps`,
//! the one the loopback fake serves) with apps deployed, scaled, moved and destroyed; now
//! and then a 500 or a reset connection. The job refreshes every 30 s from one of two
//! servers; the addresses it should scrape are those of the last answer that went
//! through.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use trawl_core::io::{IoOp, Origin, OwnedIoEvent, RequestId};

use super::{Answer, Reply, SdWorld, WorldJob, pick_host_port, server_fault};
use crate::consul::Query;
use crate::marathon::{App, Apps, Ports};
use crate::sim::Rng;

/// The servers in the job's block.
const SERVERS: [&str; 2] = ["http://marathon-1.sim:8080", "http://marathon-2.sim:8080"];

/// The world.
#[derive(Debug, Default)]
pub(crate) struct MarathonWorld {
    apps: Apps,
    next_app: u64,
    /// The addresses of the last answer served.
    served: Vec<String>,
    failing: bool,
}

impl MarathonWorld {
    fn deploy(&mut self, rng: &mut Rng, pool: &[String]) {
        self.next_app += 1;
        let id = format!("/prod/app-{}", self.next_app);
        let mut app = App::new(
            &id,
            "registry.sim/app:1",
            Ports::Definitions(vec![BTreeMap::from([("metrics".into(), "true".into())])]),
        )
        .label("team", "sim");
        for t in 0..1 + rng.below(3) {
            if let Some((host, port)) = pick_host_port(rng, pool) {
                app = app.task(&format!("{id}.{t}"), &host, &[port]);
            }
        }
        self.apps.put(app);
    }

    fn addresses_of(apps: &Apps) -> Vec<String> {
        let mut v = BTreeSet::new();
        for a in apps.all() {
            for t in &a.tasks {
                for p in &t.ports {
                    v.insert(format!("{}:{p}", t.host));
                }
            }
        }
        v.into_iter().collect()
    }
}

impl SdWorld for MarathonWorld {
    fn key(&self) -> &'static str {
        "marathon_sd_configs"
    }

    fn init(&mut self, rng: &mut Rng, pool: &[String]) {
        for _ in 0..3 {
            self.deploy(rng, pool);
        }
    }

    fn jobs(&mut self, _rng: &mut Rng) -> Vec<WorldJob> {
        vec![WorldJob {
            name: "marathon",
            sd: format!(
                "    marathon_sd_configs: [{{servers: ['{}', '{}'], refresh_interval: 30s}}]\n",
                SERVERS[0], SERVERS[1]
            ),
            follows_variant: true,
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
        let rest = SERVERS.iter().find_map(|s| r.url.strip_prefix(s))?;
        if rest != "/v2/apps/?embed=apps.tasks" {
            return Some(Err(format!("Marathon asked for {rest}")));
        }
        let latency = Duration::from_millis(1 + rng.below(100));
        if self.failing || rng.chance(3) {
            return Some(Ok(Answer::After(latency, server_fault(rng, b""))));
        }
        let (status, body) = self.apps.answer(&Query::parse(rest, Vec::new()));
        self.served = Self::addresses_of(&self.apps);
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
            let ids: Vec<String> = self.apps.all().map(|a| a.id.clone()).collect();
            match rng.below(4) {
                0 => self.deploy(rng, pool),
                1 if !ids.is_empty() => {
                    self.apps.remove(&ids[rng.below(ids.len() as u64) as usize]);
                }
                2 if !ids.is_empty() => {
                    // A task moves (a new host and port).
                    let id = &ids[rng.below(ids.len() as u64) as usize];
                    let app = self.apps.all().find(|a| &a.id == id).cloned();
                    if let (Some(mut app), Some((host, port))) = (app, pick_host_port(rng, pool))
                        && !app.tasks.is_empty()
                    {
                        app.tasks[0].host = host;
                        app.tasks[0].ports = vec![port];
                        self.apps.put(app);
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
        // One refresh and its answer's latency.
        Duration::from_millis(30_500)
    }

    fn describe(&self) -> String {
        format!("marathon served {:?}", self.served)
    }
}
