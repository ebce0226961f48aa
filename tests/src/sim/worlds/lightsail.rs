//! Lightsail discovery's world: the fake Lightsail's fleet (`crate::lightsail::Fleet`,
//! the one the loopback fake serves, two instances a page) with instances created,
//! deleted, stopped, started and moved; now and then a 500, a reset connection, an
//! `AccessDeniedException` or a cut answer. Every call must be a signed `POST` of
//! `GetInstances`. The job keeps running instances and scrapes the address in their
//! `addr` tag (their private addresses are the world's own and never dialled); the
//! addresses it should scrape are those of the last listing whose every page went
//! through (pages come from the listing taken at the first, as tokens page through one
//! listing).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use trawl_core::io::{CredentialsFile, IoOp, Origin, OwnedIoEvent, RequestId};

use super::{Answer, Reply, SdWorld, WorldJob, pick_host_port, server_fault};
use crate::lightsail::{Fleet, Instance};
use crate::sim::Rng;

const ENDPOINT: &str = "http://lightsail.sim/";

/// The world.
#[derive(Debug, Default)]
pub(crate) struct LightsailWorld {
    fleet: Fleet,
    next: u64,
    /// The listing being paged through.
    listing: Option<Fleet>,
    served: Vec<String>,
    failing: bool,
}

fn addresses_of(f: &Fleet) -> Vec<String> {
    let s: BTreeSet<String> = f
        .all()
        .filter(|i| i.state == "running")
        .filter_map(|i| i.tags.get("addr").cloned())
        .collect();
    s.into_iter().collect()
}

impl LightsailWorld {
    fn create(&mut self, rng: &mut Rng, pool: &[String]) {
        let Some((host, port)) = pick_host_port(rng, pool) else {
            return;
        };
        self.next += 1;
        let n = self.next;
        // A private address of the world's own: discovered, never dialled.
        let i = Instance::new(
            &format!("vm-{n}"),
            &format!("172.26.{}.{}", n / 250, 1 + n % 250),
        )
        .tag("addr", &format!("{host}:{port}"));
        self.fleet.put(i);
    }

    fn json(status: u16, body: String) -> Vec<Reply> {
        vec![
            Reply::head(status, "OK", "application/x-amz-json-1.1", false),
            Reply::body(body.into_bytes()),
            Reply::end(),
        ]
    }
}

impl SdWorld for LightsailWorld {
    fn key(&self) -> &'static str {
        "lightsail_sd_configs"
    }

    fn init(&mut self, rng: &mut Rng, pool: &[String]) {
        self.fleet.page_size = 2;
        for _ in 0..4 {
            self.create(rng, pool);
        }
    }

    fn jobs(&mut self, _rng: &mut Rng) -> Vec<WorldJob> {
        vec![WorldJob {
            name: "lightsail",
            sd: format!(
                "    lightsail_sd_configs: [{{region: us-east-1, endpoint: '{ENDPOINT}', access_key: AKIDSIM, secret_key: sim, refresh_interval: 30s}}]\n    relabel_configs:\n      - {{source_labels: [__meta_lightsail_instance_state], regex: running, action: keep}}\n      - {{source_labels: [__meta_lightsail_tag_addr], target_label: __address__}}\n"
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
        if !matches!(r.origin, Origin::Discovery { .. }) || r.url != ENDPOINT {
            return None;
        }
        match &r.credentials_file {
            Some(CredentialsFile::SigV4(s))
                if s.region == "us-east-1" && s.service_name == "lightsail" => {}
            other => {
                return Some(Err(format!(
                    "a Lightsail call not signed for it: {other:?}"
                )));
            }
        }
        let Some(body) = r.body.as_deref() else {
            return Some(Err("a Lightsail call that is not a POST".into()));
        };
        let target = r
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-target"))
            .map(|(_, v)| v.as_str());
        let latency = Duration::from_millis(1 + rng.below(100));
        if self.failing || rng.chance(4) {
            let events = match rng.below(3) {
                0 => Self::json(
                    400,
                    r#"{"__type":"AccessDeniedException","message":"denied"}"#.into(),
                ),
                1 => {
                    let (_, full) = self.fleet.answer(target, b"{}");
                    let cut = full.len() / 2;
                    Self::json(200, full[..cut].to_owned())
                }
                _ => server_fault(rng, br#"{"__type":"InternalFailure"}"#),
            };
            return Some(Ok(Answer::After(latency, events)));
        }
        let first = body == b"{}";
        if first {
            self.listing = Some(self.fleet.clone());
        }
        let Some(listing) = &self.listing else {
            return Some(Err("a page token before any listing".into()));
        };
        let (status, text) = listing.answer(target, body);
        if status != 200 {
            return Some(Err(format!("Lightsail refused the call: {text}")));
        }
        if !text.contains("nextPageToken") {
            self.served = addresses_of(listing);
        }
        Some(Ok(Answer::After(latency, Self::json(status, text))))
    }

    fn change(
        &mut self,
        rng: &mut Rng,
        pool: &[String],
        _open: &BTreeMap<RequestId, IoOp>,
    ) -> Vec<(RequestId, OwnedIoEvent)> {
        for _ in 0..1 + rng.below(3) {
            let all: Vec<Instance> = self.fleet.all().cloned().collect();
            let pick = |rng: &mut Rng| {
                all.get(rng.below(all.len().max(1) as u64) as usize)
                    .cloned()
            };
            match rng.below(4) {
                0 => self.create(rng, pool),
                1 => {
                    if let Some(i) = pick(rng) {
                        self.fleet.remove(&i.name);
                    }
                }
                2 => {
                    if let Some(mut i) = pick(rng) {
                        i.state = if i.state == "running" {
                            "stopped"
                        } else {
                            "running"
                        }
                        .into();
                        self.fleet.put(i);
                    }
                }
                _ => {
                    if let (Some(mut i), Some((host, port))) =
                        (pick(rng), pick_host_port(rng, pool))
                    {
                        i.tags.insert("addr".into(), format!("{host}:{port}"));
                        self.fleet.put(i);
                    }
                }
            }
        }
        self.failing = rng.chance(10);
        Vec::new()
    }

    fn addresses(&self) -> Vec<String> {
        self.served.clone()
    }

    fn settle(&self) -> Duration {
        Duration::from_millis(31_000)
    }

    fn describe(&self) -> String {
        format!("lightsail served {:?}", self.served)
    }
}
