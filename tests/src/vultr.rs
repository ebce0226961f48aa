//! A fake Vultr API for the discovery tests, after Vultr's API reference
//! (`https://www.vultr.com/api/`): `GET /v2/instances`, paged with `per_page` (default
//! 100, at most 500) and `cursor`, answered with `meta.total` and `meta.links` (`next`
//! and `prev` cursors, empty at either end; a cursor is opaque base64, here of the
//! offset) and each instance's fields as the reference lists them. A request without
//! `Authorization: Bearer <the account's key>` is answered 401 `{"error": "Invalid API
//! token.", "status": 401}`, a cursor the API did not hand out 400.
//!
//! What it does not emulate: every other endpoint, the list filters (`tag`, `label`,
//! `main_ip`, `region`…), rate limits (429 past 30 requests a second), the instances'
//! backups, snapshots and VPC attachments.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::cloud::{Api, Reply, Request};

/// One instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Its id (a UUID).
    pub id: String,
    /// Its label.
    pub label: String,
    /// `main_ip`.
    pub main_ip: String,
    /// `server_status` (`ok`, `none`, `locked`, `installingbooting`).
    pub server_status: String,
    /// `power_status` (`running`, `stopped`).
    pub power_status: String,
    /// Tags.
    pub tags: Vec<String>,
}

impl Instance {
    /// A running instance.
    pub fn new(n: u32, label: &str, main_ip: &str) -> Instance {
        Instance {
            id: format!("cb676a46-66fd-4dfb-b839-{n:012x}"),
            label: label.into(),
            main_ip: main_ip.into(),
            server_status: "ok".into(),
            power_status: "running".into(),
            tags: Vec::new(),
        }
    }

    /// With a tag.
    pub fn tag(mut self, t: &str) -> Instance {
        self.tags.push(t.into());
        self
    }

    fn json(&self) -> Value {
        json!({
            "id": self.id, "os": "Ubuntu 24.04 LTS x64", "ram": 1024, "disk": 25,
            "main_ip": self.main_ip, "vcpu_count": 1, "region": "ewr", "plan": "vc2-1c-1gb",
            "date_created": "2024-06-01T12:00:00+00:00", "status": "active",
            "allowed_bandwidth": 1, "netmask_v4": "255.255.254.0", "gateway_v4": "192.0.2.1",
            "power_status": self.power_status, "server_status": self.server_status,
            "v6_network": "2001:db8:5::", "v6_main_ip": "2001:db8:5:0:5400:4ff:fe6f:1",
            "v6_network_size": 64, "label": self.label, "internal_ip": "",
            "kvm": "https://my.vultr.com/subs/vps/novnc/api.php?data=x",
            "hostname": self.label, "tag": "", "tags": self.tags, "os_id": 2284, "app_id": 0,
            "image_id": "", "firewall_group_id": "", "features": [], "user_scheme": "root"
        })
    }
}

/// An account's instances and its API key.
#[derive(Clone, Debug)]
pub struct Account {
    instances: BTreeMap<String, Instance>,
    /// The API key requests must carry.
    pub key: String,
    /// The largest page the API grants (500; a test lowers it to make clients page).
    pub max_per_page: usize,
}

impl Default for Account {
    fn default() -> Self {
        Account::new("VULTRTESTKEY")
    }
}

fn cursor_of(offset: usize) -> String {
    trawl_core::bytes::base64_encode(format!("next__{offset}").as_bytes())
}

fn offset_of(cursor: &str) -> Option<usize> {
    // The cursors this fake hands out are base64 of `next__<offset>`.
    (0..100_000).find(|&n| cursor_of(n) == cursor)
}

impl Account {
    /// No instances; requests must carry `key`.
    pub fn new(key: &str) -> Account {
        Account {
            instances: BTreeMap::new(),
            key: key.into(),
            max_per_page: 500,
        }
    }

    /// Adds or replaces an instance (by id).
    pub fn put(&mut self, i: Instance) {
        self.instances.insert(i.id.clone(), i);
    }

    /// Deletes an instance.
    pub fn remove(&mut self, id: &str) -> bool {
        self.instances.remove(id).is_some()
    }

    /// Every instance, by id.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.instances.values()
    }
}

impl Api for Account {
    fn answer(&self, req: &Request, _base: &str) -> Reply {
        let want = format!("Bearer {}", self.key);
        if req.header("authorization") != Some(want.as_str()) {
            return Reply::json(401, &json!({"error": "Invalid API token.", "status": 401}));
        }
        if req.method != "GET" || req.path.trim_end_matches('/') != "/v2/instances" {
            return Reply::json(404, &json!({"error": "Invalid API URL", "status": 404}));
        }
        let per_page = match req.param("per_page").map(str::parse::<usize>) {
            None => 100,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                return Reply::json(400, &json!({"error": "Invalid per_page", "status": 400}));
            }
        }
        .clamp(1, self.max_per_page.max(1));
        let from = match req.param("cursor").filter(|c| !c.is_empty()) {
            None => 0,
            Some(c) => match offset_of(c) {
                Some(n) => n,
                None => {
                    return Reply::json(400, &json!({"error": "Invalid cursor", "status": 400}));
                }
            },
        };
        let all: Vec<&Instance> = self.instances.values().collect();
        let from = from.min(all.len());
        let to = (from + per_page).min(all.len());
        let next = if to < all.len() {
            cursor_of(to)
        } else {
            String::new()
        };
        let prev = if from > 0 {
            cursor_of(from.saturating_sub(per_page))
        } else {
            String::new()
        };
        let page: Vec<Value> = all[from..to].iter().map(|i| i.json()).collect();
        Reply::json(
            200,
            &json!({"instances": page, "meta": {"total": all.len(), "links": {"next": next, "prev": prev}}}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_paged_by_cursor() {
        let mut a = Account::default();
        for n in 1..=5 {
            a.put(Instance::new(n, &format!("i{n}"), "192.0.2.1"));
        }
        let get = |t: &str| {
            let r = a.answer(
                &Request::new("GET", t).header_set("Authorization", "Bearer VULTRTESTKEY"),
                "http://v",
            );
            (
                r.status,
                serde_json::from_str::<Value>(&r.body).expect("JSON"),
            )
        };
        let (s, v) = get("/v2/instances?per_page=2");
        assert_eq!(s, 200);
        assert_eq!(v["instances"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["meta"]["total"], 5);
        let next = v["meta"]["links"]["next"].as_str().unwrap().to_owned();
        assert_eq!(v["meta"]["links"]["prev"], "");
        let (_, v) = get(&format!("/v2/instances?per_page=2&cursor={next}"));
        assert_eq!(v["instances"][0]["label"], "i3");
        let (_, v) = get("/v2/instances?per_page=100");
        assert_eq!(v["meta"]["links"]["next"], "");
        assert_eq!(get("/v2/instances?cursor=nope").0, 400);
        let r = a.answer(&Request::new("GET", "/v2/instances"), "http://v");
        assert_eq!(r.status, 401);
    }
}
