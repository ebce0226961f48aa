//! A fake Linode API (v4) for the discovery tests, after Linode's API reference
//! (`https://techdocs.akamai.com/linode-api/reference/api`): `GET /v4/linode/instances`,
//! `/v4/networking/ips`, `/v4/networking/ipv6/ranges` and `/v4/account/events`, each
//! paged with `page` and `page_size` and answered `{"data", "page", "pages",
//! "results"}` as `application/json`, with a `Date` header. `X-Filter` is read for what
//! discovery sends: `{"region": "<id>"}` on the listings and `{"created": {"+gte":
//! "<time>"}}` on events (another field is refused 400, as the API refuses a field it
//! cannot filter on). Addresses in the IP listing are derived from the instances (public
//! ones with a reverse name, private ones — in 192.168.128.0/17 — without), with the
//! SLAAC IPv6 address of each. Every change to an instance is an event at the fake's
//! clock: the wall clock, or a manual one a test or the simulator moves.
//!
//! A request without `Authorization: Bearer <the account's token>` is answered 401
//! `{"errors": [{"reason": "Invalid Token"}]}`; a token without the events scope gets
//! 401 on `/account/events` only.
//!
//! What it does not emulate: every other endpoint and filter operator, `page_size`'s
//! range (25–500 in the API; any positive size here, so that tests page with few
//! instances), rate limits (429), the events' other fields' meaning (`seen`,
//! `percent_complete`…) and events of other entities.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::cloud::{Api, Reply, Request, datetime, http_date, unix_now};

/// One instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Its id.
    pub id: i64,
    /// Its label.
    pub label: String,
    /// Its region (`us-east`).
    pub region: String,
    /// `running`, `offline`, …
    pub status: String,
    /// IPv4 addresses, public and private.
    pub ipv4: Vec<String>,
    /// The SLAAC address with its prefix (`2001:db8::1/128`), if any.
    pub ipv6: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
}

impl Instance {
    /// A running instance in `us-east` with a public IPv4 address.
    pub fn new(id: i64, label: &str, public: &str) -> Instance {
        Instance {
            id,
            label: label.into(),
            region: "us-east".into(),
            status: "running".into(),
            ipv4: vec![public.into()],
            ipv6: None,
            tags: Vec::new(),
        }
    }

    /// With a tag.
    pub fn tag(mut self, t: &str) -> Instance {
        self.tags.push(t.into());
        self
    }

    /// In a region.
    pub fn region(mut self, r: &str) -> Instance {
        self.region = r.into();
        self
    }

    fn json(&self) -> Value {
        json!({
            "id": self.id, "label": self.label, "group": "", "status": self.status,
            "created": "2024-01-01T00:01:01", "updated": "2024-01-01T00:01:01",
            "type": "g6-standard-1", "ipv4": self.ipv4, "ipv6": self.ipv6,
            "image": "linode/debian12", "region": self.region,
            "specs": {"disk": 51200, "memory": 2048, "vcpus": 1, "gpus": 0, "transfer": 2000},
            "alerts": {"cpu": 180, "network_in": 10, "network_out": 10, "transfer_quota": 80, "io": 10000},
            "backups": {"enabled": false, "available": false, "schedule": {"day": null, "window": null}, "last_successful": null},
            "hypervisor": "kvm", "watchdog_enabled": true, "tags": self.tags,
            "host_uuid": "3a3ddd59d9a78bb8de041391075df44de62bfec8", "has_user_data": false,
            "placement_group": null, "lke_cluster_id": null, "capabilities": []
        })
    }
}

/// Linode's private IPv4 range (192.168.128.0/17).
fn private(ip: &str) -> bool {
    ip.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|a| a.octets()[0] == 192 && a.octets()[1] == 168 && a.octets()[2] >= 128)
}

/// An account: its instances, routed IPv6 ranges, events and token.
#[derive(Clone, Debug)]
pub struct Account {
    instances: BTreeMap<i64, Instance>,
    /// Routed IPv6 ranges: (range, prefix, the SLAAC address it routes to).
    pub ranges: Vec<(String, u8, String)>,
    /// (id, created, action, instance id, label).
    events: Vec<(i64, i64, &'static str, i64, String)>,
    /// The token requests must carry.
    pub token: String,
    /// The token may read events (`events:read_only`).
    pub events_scope: bool,
    /// The largest page the API grants (500; a test lowers it to make clients page).
    pub max_page_size: usize,
    /// The fake's clock in Unix seconds; `None`: the wall clock.
    pub clock: Option<i64>,
    /// What the simulator's world tracks of the agent's refreshes.
    pub(crate) sim: SimTrack,
}

/// The simulator's view of the agent's refreshes: when the one in progress started
/// (its first answer's `Date`), and when the last one that completed did.
#[derive(Clone, Debug, Default)]
pub(crate) struct SimTrack {
    pub(crate) start: Option<i64>,
    pub(crate) completed: Option<i64>,
    /// The last answer was a poll that found events (the listing that follows belongs
    /// to the same refresh).
    pub(crate) events_found: bool,
}

impl Default for Account {
    fn default() -> Self {
        Account::new("LINODETESTTOKEN")
    }
}

impl Account {
    /// No instances; requests must carry `token`.
    pub fn new(token: &str) -> Account {
        Account {
            instances: BTreeMap::new(),
            ranges: Vec::new(),
            events: Vec::new(),
            token: token.into(),
            events_scope: true,
            max_page_size: 500,
            clock: None,
            sim: SimTrack::default(),
        }
    }

    /// The fake's time (Unix seconds).
    pub fn now(&self) -> i64 {
        self.clock.unwrap_or_else(unix_now)
    }

    fn event(&mut self, action: &'static str, i: &Instance) {
        if let Some(c) = &mut self.clock {
            // A manual clock moves a second with every change.
            *c += 1;
        }
        let id = self.events.len() as i64 + 1;
        let now = self.now();
        self.events.push((id, now, action, i.id, i.label.clone()));
    }

    /// Adds or replaces an instance (by id), with its event.
    pub fn put(&mut self, i: Instance) {
        let action = match self.instances.get(&i.id) {
            None => "linode_create",
            Some(old) if old.status != i.status && i.status == "running" => "linode_boot",
            Some(old) if old.status != i.status => "linode_shutdown",
            Some(_) => "linode_update",
        };
        self.event(action, &i);
        self.instances.insert(i.id, i);
    }

    /// Deletes an instance, with its event.
    pub fn remove(&mut self, id: i64) -> bool {
        match self.instances.remove(&id) {
            Some(i) => {
                self.event("linode_delete", &i);
                true
            }
            None => false,
        }
    }

    /// Every instance, by id.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.instances.values()
    }

    fn ips(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for i in self.instances.values() {
            for a in &i.ipv4 {
                let public = !private(a);
                out.push(json!({
                    "address": a, "gateway": if public { json!("192.0.2.1") } else { Value::Null },
                    "subnet_mask": if public { "255.255.255.0" } else { "255.255.128.0" },
                    "prefix": if public { 24 } else { 17 }, "type": "ipv4", "public": public,
                    "rdns": if public { json!(format!("li{}.members.linode.com", i.id)) } else { Value::Null },
                    "linode_id": i.id, "region": i.region, "vpc_nat_1_1": null, "reserved": false
                }));
            }
            if let Some(v6) = &i.ipv6 {
                let slaac = v6.split('/').next().unwrap_or_default();
                out.push(json!({
                    "address": slaac, "gateway": "fe80::1", "subnet_mask": "ffff:ffff:ffff:ffff::",
                    "prefix": 64, "type": "ipv6", "public": true, "rdns": null,
                    "linode_id": i.id, "region": i.region, "vpc_nat_1_1": null, "reserved": false
                }));
            }
        }
        out
    }

    fn region_of(&self, slaac: &str) -> String {
        self.instances
            .values()
            .find(|i| {
                i.ipv6
                    .as_deref()
                    .is_some_and(|v| v.split('/').next() == Some(slaac))
            })
            .map_or_else(|| "us-east".to_owned(), |i| i.region.clone())
    }
}

fn error(status: u16, reason: &str) -> Reply {
    Reply {
        status,
        content_type: "application/json".into(),
        headers: Vec::new(),
        body: json!({"errors": [{"reason": reason}]}).to_string(),
    }
}

/// What an `X-Filter` asks for: a region, and events created at or after a time.
#[derive(Default)]
struct Filter {
    region: Option<String>,
    created_from: Option<String>,
}

fn filter(req: &Request) -> Result<Filter, Reply> {
    let Some(text) = req.header("x-filter") else {
        return Ok(Filter::default());
    };
    let v: Value =
        serde_json::from_str(text).map_err(|_| error(400, "Invalid JSON in X-Filter"))?;
    let Some(obj) = v.as_object() else {
        return Err(error(400, "Invalid filter"));
    };
    let mut f = Filter::default();
    for (k, v) in obj {
        match (k.as_str(), v) {
            ("region", Value::String(r)) => f.region = Some(r.clone()),
            ("created", Value::Object(o)) => match o.get("+gte") {
                Some(Value::String(t)) if o.len() == 1 => f.created_from = Some(t.clone()),
                _ => return Err(error(400, "Invalid filter operator")),
            },
            _ => return Err(error(400, &format!("Cannot filter on {k}"))),
        }
    }
    Ok(f)
}

impl Api for Account {
    fn answer(&self, req: &Request, _base: &str) -> Reply {
        let reply = self.answer_undated(req);
        reply.header("Date", http_date(self.now()))
    }
}

impl Account {
    fn answer_undated(&self, req: &Request) -> Reply {
        let want = format!("Bearer {}", self.token);
        if req.header("authorization") != Some(want.as_str()) {
            return error(401, "Invalid Token");
        }
        let f = match filter(req) {
            Ok(f) => f,
            Err(r) => return r,
        };
        let in_region = |r: &str| f.region.as_deref().is_none_or(|want| want == r);
        let data: Vec<Value> = match (req.method.as_str(), req.path.trim_end_matches('/')) {
            ("GET", "/v4/linode/instances") => self
                .instances
                .values()
                .filter(|i| in_region(&i.region))
                .map(Instance::json)
                .collect(),
            ("GET", "/v4/networking/ips") => self
                .ips()
                .into_iter()
                .filter(|ip| in_region(ip["region"].as_str().unwrap_or_default()))
                .collect(),
            ("GET", "/v4/networking/ipv6/ranges") => self
                .ranges
                .iter()
                .filter(|(_, _, to)| in_region(&self.region_of(to)))
                .map(|(r, p, to)| {
                    json!({"range": r, "prefix": p, "region": self.region_of(to), "route_target": to})
                })
                .collect(),
            ("GET", "/v4/account/events") => {
                if !self.events_scope {
                    return error(401, "Your OAuth token is not authorized to use this endpoint.");
                }
                let from = f.created_from.unwrap_or_default();
                // Newest first, as the API lists them.
                self.events
                    .iter()
                    .rev()
                    .filter(|(_, created, ..)| datetime(*created) >= from)
                    .map(|(id, created, action, entity, label)| {
                        json!({
                            "id": id, "action": action, "created": datetime(*created),
                            "entity": {"id": entity, "label": label, "type": "linode", "url": format!("/v4/linode/instances/{entity}")},
                            "secondary_entity": null, "status": "finished", "username": "trawl",
                            "seen": false, "read": false, "percent_complete": 100, "rate": null,
                            "time_remaining": null, "duration": 1.0, "message": ""
                        })
                    })
                    .collect()
            }
            _ => return error(404, "Not found"),
        };
        let size = match req.param("page_size").map(str::parse::<usize>) {
            None => 100,
            Some(Ok(n)) if n > 0 => n,
            Some(_) => return error(400, "Must be a positive integer"),
        }
        .min(self.max_page_size.max(1));
        let page = match req.param("page").map(str::parse::<usize>) {
            None => 1,
            Some(Ok(n)) if n > 0 => n,
            Some(_) => return error(400, "Must be a positive integer"),
        };
        let pages = data.len().div_ceil(size).max(1);
        let results = data.len();
        let from = ((page - 1) * size).min(results);
        let to = (from + size).min(results);
        Reply {
            status: 200,
            content_type: "application/json".into(),
            headers: Vec::new(),
            body:
                json!({"data": &data[from..to], "page": page, "pages": pages, "results": results})
                    .to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(a: &Account, target: &str, filter: Option<&str>) -> (u16, Value) {
        let mut r =
            Request::new("GET", target).header_set("Authorization", "Bearer LINODETESTTOKEN");
        if let Some(f) = filter {
            r = r.header_set("X-Filter", f);
        }
        let reply = a.answer(&r, "http://x");
        assert_eq!(reply.content_type, "application/json");
        assert!(reply.headers.iter().any(|(k, _)| k == "Date"));
        (
            reply.status,
            serde_json::from_str(&reply.body).expect("JSON"),
        )
    }

    #[test]
    fn listings_page_filter_and_events_follow_changes() {
        let mut a = Account {
            clock: Some(1_700_000_000),
            max_page_size: 2,
            ..Account::default()
        };
        for n in 1..=3 {
            a.put(Instance::new(n, &format!("l{n}"), &format!("192.0.2.{n}")));
        }
        let mut eu = Instance::new(4, "eu", "198.51.100.4").region("eu-west");
        eu.ipv4.push("192.168.130.4".into());
        eu.ipv6 = Some("2001:db8::4/128".into());
        a.put(eu);
        a.ranges
            .push(("2001:db8:4::".into(), 64, "2001:db8::4".into()));
        let (s, v) = get(&a, "/v4/linode/instances?page=2&page_size=500", None);
        assert_eq!(s, 200);
        assert_eq!(
            (
                v["page"].as_i64(),
                v["pages"].as_i64(),
                v["results"].as_i64()
            ),
            (Some(2), Some(2), Some(4))
        );
        assert_eq!(v["data"][0]["id"], 3);
        let (_, v) = get(
            &a,
            "/v4/networking/ips?page=1",
            Some(r#"{"region": "eu-west"}"#),
        );
        assert_eq!(v["results"], 3);
        assert_eq!(v["data"][1]["public"], false);
        let (_, v) = get(
            &a,
            "/v4/networking/ips?page=2",
            Some(r#"{"region": "eu-west"}"#),
        );
        assert_eq!(v["data"][0]["address"], "2001:db8::4");
        let (_, v) = get(
            &a,
            "/v4/networking/ipv6/ranges",
            Some(r#"{"region": "eu-west"}"#),
        );
        assert_eq!(v["data"][0]["route_target"], "2001:db8::4");
        // Four creations at 1..=4 s past the start; the newest first.
        let (_, v) = get(
            &a,
            "/v4/account/events?page=1&page_size=25",
            Some(&format!(
                r#"{{"created": {{"+gte": "{}"}}}}"#,
                datetime(1_700_000_003)
            )),
        );
        assert_eq!(v["results"], 2);
        assert_eq!(v["data"][0]["entity"]["id"], 4);
        a.remove(1);
        let (_, v) = get(
            &a,
            "/v4/account/events?page=1&page_size=25",
            Some(&format!(
                r#"{{"created": {{"+gte": "{}"}}}}"#,
                datetime(1_700_000_005)
            )),
        );
        assert_eq!(v["data"][0]["action"], "linode_delete");
        let (s, v) = get(&a, "/v4/linode/instances", Some(r#"{"label": "x"}"#));
        assert_eq!(
            (s, v["errors"][0]["reason"].as_str()),
            (400, Some("Cannot filter on label"))
        );
        a.events_scope = false;
        let (s, _) = get(&a, "/v4/account/events", None);
        assert_eq!(s, 401);
        let r = a.answer(&Request::new("GET", "/v4/linode/instances"), "http://x");
        assert_eq!(
            (r.status, r.body.as_str()),
            (401, r#"{"errors":[{"reason":"Invalid Token"}]}"#)
        );
    }
}
