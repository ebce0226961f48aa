//! EC2 discovery's world: instances run, stop, start, terminate and move, answered as
//! EC2's Query API answers `DescribeAvailabilityZones` and `DescribeInstances` (XML,
//! three instances a page with a `nextToken`); now and then a 500, a reset connection,
//! an `AuthFailure` or a cut answer. A listing is taken when its first page is asked for
//! and its later pages come from it, as EC2's tokens page through one listing. Every
//! request must be one the shell would sign for `ec2` in the block's region. The job
//! keeps running instances and scrapes the address in their `addr` tag (their private
//! addresses are the world's own and never dialled); the addresses it should scrape are
//! those of the last listing whose every page went through.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use trawl_core::io::{CredentialsFile, IoOp, Origin, OwnedIoEvent, RequestId};

use super::{Answer, Reply, SdWorld, WorldJob, pick_host_port, server_fault};
use crate::sim::Rng;

/// The endpoint in the job's block.
const ENDPOINT: &str = "http://ec2.sim";
const REGION: &str = "sim-west-1";
/// Instances a page.
const PAGE: usize = 3;

#[derive(Debug, Clone)]
struct Instance {
    id: String,
    addr: String,
    state: &'static str,
    zone: &'static str,
}

/// The world.
#[derive(Debug, Default)]
pub(crate) struct Ec2World {
    instances: BTreeMap<String, Instance>,
    next: u64,
    /// The listing being paged through: its number and its instances.
    listing: Option<(u64, Vec<Instance>)>,
    listings: u64,
    /// The addresses of the last listing served whole.
    served: Vec<String>,
    failing: bool,
}

fn running_addresses(v: &[Instance]) -> Vec<String> {
    let s: BTreeSet<String> = v
        .iter()
        .filter(|i| i.state == "running")
        .map(|i| i.addr.clone())
        .collect();
    s.into_iter().collect()
}

fn query(url: &str) -> Option<BTreeMap<String, String>> {
    let q = url.strip_prefix(ENDPOINT)?.strip_prefix("/?")?;
    Some(
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.replace("%2F", "/").replace("%3A", ":")))
            .collect(),
    )
}

fn zones_xml() -> String {
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeAvailabilityZonesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><availabilityZoneInfo><item><zoneName>sim-west-1a</zoneName><zoneId>simw1-az1</zoneId></item><item><zoneName>sim-west-1b</zoneName><zoneId>simw1-az2</zoneId></item></availabilityZoneInfo></DescribeAvailabilityZonesResponse>".into()
}

fn page_xml(page: &[Instance], token: Option<&str>) -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>sim</requestId><reservationSet>",
    );
    for (n, i) in page.iter().enumerate() {
        // A private address of the world's own (10.0.0.0/8): discovered, never dialled.
        let _ = write!(
            x,
            "<item><reservationId>r-{n}</reservationId><ownerId>111122223333</ownerId><instancesSet><item><instanceId>{}</instanceId><imageId>ami-sim</imageId><instanceState><name>{}</name></instanceState><instanceType>t3.micro</instanceType><placement><availabilityZone>{}</availabilityZone></placement><privateIpAddress>10.9.{}.{}</privateIpAddress><tagSet><item><key>addr</key><value>{}</value></item></tagSet></item></instancesSet></item>",
            i.id,
            i.state,
            i.zone,
            n / 250,
            1 + n % 250,
            i.addr
        );
    }
    x.push_str("</reservationSet>");
    if let Some(t) = token {
        let _ = write!(x, "<nextToken>{t}</nextToken>");
    }
    x.push_str("</DescribeInstancesResponse>");
    x
}

const AUTH_FAILURE: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate the provided access credentials</Message></Error></Errors><RequestID>sim</RequestID></Response>";

impl Ec2World {
    fn launch(&mut self, rng: &mut Rng, pool: &[String]) {
        let Some((host, port)) = pick_host_port(rng, pool) else {
            return;
        };
        self.next += 1;
        let id = format!("i-{:017x}", self.next);
        let zone = if rng.below(2) == 0 {
            "sim-west-1a"
        } else {
            "sim-west-1b"
        };
        self.instances.insert(
            id.clone(),
            Instance {
                id,
                addr: format!("{host}:{port}"),
                state: "running",
                zone,
            },
        );
    }

    fn xml(status: u16, body: String) -> Vec<Reply> {
        vec![
            Reply::head(status, "OK", "text/xml;charset=UTF-8", false),
            Reply::body(body.into_bytes()),
            Reply::end(),
        ]
    }

    fn instances_page(&mut self, token: Option<&str>) -> Result<Vec<Reply>, String> {
        let (listing, offset) = match token {
            None => {
                self.listings += 1;
                let all: Vec<Instance> = self.instances.values().cloned().collect();
                self.listing = Some((self.listings, all));
                (self.listings, 0)
            }
            Some(t) => {
                let (l, o) = t
                    .strip_prefix('p')
                    .and_then(|t| t.split_once('/'))
                    .ok_or_else(|| format!("EC2 got a token it never gave: {t}"))?;
                let l: u64 = l.parse().map_err(|_| format!("bad token {t}"))?;
                let o: usize = o.parse().map_err(|_| format!("bad token {t}"))?;
                (l, o)
            }
        };
        let Some((n, all)) = self.listing.as_ref().filter(|(n, _)| *n == listing) else {
            // A token of a listing given up on: EC2 would still page through it; the
            // world answers with an error the agent must survive.
            return Ok(Self::xml(
                400,
                AUTH_FAILURE.replace("AuthFailure", "InvalidParameterValue"),
            ));
        };
        let end = (offset + PAGE).min(all.len());
        let page = all.get(offset..end).unwrap_or_default().to_vec();
        let token = (end < all.len()).then(|| format!("p{n}/{end}"));
        if token.is_none() {
            self.served = running_addresses(all);
        }
        Ok(Self::xml(200, page_xml(&page, token.as_deref())))
    }
}

impl SdWorld for Ec2World {
    fn key(&self) -> &'static str {
        "ec2_sd_configs"
    }

    fn init(&mut self, rng: &mut Rng, pool: &[String]) {
        for _ in 0..5 {
            self.launch(rng, pool);
        }
    }

    fn jobs(&mut self, _rng: &mut Rng) -> Vec<WorldJob> {
        vec![WorldJob {
            name: "ec2",
            sd: format!(
                "    ec2_sd_configs: [{{region: {REGION}, endpoint: '{ENDPOINT}', access_key: AKIDSIM, secret_key: sim, refresh_interval: 30s}}]\n    relabel_configs:\n      - {{source_labels: [__meta_ec2_instance_state], regex: running, action: keep}}\n      - {{source_labels: [__meta_ec2_tag_addr], target_label: __address__}}\n"
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
        let q = query(&r.url)?;
        match &r.credentials_file {
            Some(CredentialsFile::SigV4(s))
                if s.region == REGION && s.service_name == "ec2" && s.access_key == "AKIDSIM" => {}
            other => return Some(Err(format!("an EC2 request not signed for ec2: {other:?}"))),
        }
        let latency = Duration::from_millis(1 + rng.below(100));
        if self.failing || rng.chance(4) {
            let events = match rng.below(3) {
                0 => Self::xml(401, AUTH_FAILURE.into()),
                1 => {
                    let x = page_xml(&self.instances.values().cloned().collect::<Vec<_>>(), None);
                    let cut = x.len() / 2;
                    Self::xml(200, x[..cut].to_owned())
                }
                _ => server_fault(rng, b"<Response/>"),
            };
            return Some(Ok(Answer::After(latency, events)));
        }
        let events = match q.get("Action").map(String::as_str) {
            Some("DescribeAvailabilityZones") => Self::xml(200, zones_xml()),
            Some("DescribeInstances") if q.get("Version").is_some_and(|v| v == "2016-11-15") => {
                match self.instances_page(q.get("NextToken").map(String::as_str)) {
                    Ok(e) => e,
                    Err(e) => return Some(Err(e)),
                }
            }
            other => return Some(Err(format!("EC2 asked for {other:?}: {}", r.url))),
        };
        Some(Ok(Answer::After(latency, events)))
    }

    fn change(
        &mut self,
        rng: &mut Rng,
        pool: &[String],
        _open: &BTreeMap<RequestId, trawl_core::io::IoOp>,
    ) -> Vec<(RequestId, OwnedIoEvent)> {
        for _ in 0..1 + rng.below(3) {
            let ids: Vec<String> = self.instances.keys().cloned().collect();
            let pick = |rng: &mut Rng| {
                ids.get(rng.below(ids.len().max(1) as u64) as usize)
                    .cloned()
            };
            match rng.below(5) {
                0 | 1 => self.launch(rng, pool),
                2 => {
                    if let Some(id) = pick(rng) {
                        self.instances.remove(&id);
                    }
                }
                3 => {
                    // Stopped, started again, or terminated (still listed a while).
                    if let Some(i) = pick(rng).and_then(|id| self.instances.get_mut(&id)) {
                        i.state = match (i.state, rng.below(3)) {
                            ("running", 0) => "terminated",
                            ("running", _) => "stopped",
                            ("stopped", _) => "running",
                            (s, _) => s,
                        };
                    }
                }
                _ => {
                    if let (Some(id), Some((host, port))) = (pick(rng), pick_host_port(rng, pool))
                        && let Some(i) = self.instances.get_mut(&id)
                    {
                        i.addr = format!("{host}:{port}");
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
        format!("ec2 served {:?}", self.served)
    }
}
