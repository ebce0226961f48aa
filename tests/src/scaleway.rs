//! A fake Scaleway API for the discovery tests, after Scaleway's API reference
//! (`https://www.scaleway.com/en/developers/api/`): Instance's
//! `GET /instance/v1/zones/{zone}/servers` (paged with `page` and `per_page`, default
//! 50, the total in `X-Total-Count` as the Instance API gives it, filtered by `name`
//! — a substring, as the API matches — and `tags`, comma-separated, all required),
//! IPAM's `GET /ipam/v1/regions/{region}/ips` (filtered by `resource_ids` and
//! `resource_types`, `total_count` in the body), and Elastic Metal's
//! `GET /baremetal/v1/zones/{zone}/{servers,offers,os}` (`tags` repeated). Requests must
//! carry `X-Auth-Token: <the project's secret key>`; others are answered 401 with the
//! API's `denied_authentication` error.
//!
//! What it does not emulate: every other endpoint and filter (`project`,
//! `organization`, `state`, `private_network`…), the `order` and `order_by` sorts (it
//! lists in creation order), IAM permissions (`permissions_denied`), rate limits, and
//! the servers' volumes, bootscripts, placement groups and maintenance fields.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::cloud::{Api, Reply, Request};

/// One Instance server.
#[derive(Clone, Debug, PartialEq)]
pub struct Server {
    /// Its id (a UUID).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its zone (`fr-par-1`).
    pub zone: String,
    /// `running`, `stopped`, …
    pub state: String,
    /// Tags.
    pub tags: Vec<String>,
    /// The legacy private address, if any.
    pub private_ip: Option<String>,
    /// Public addresses (routed IPs): (address, `inet` or `inet6`).
    pub public_ips: Vec<(String, String)>,
    /// Private NICs: (NIC id, its private address in IPAM).
    pub private_nics: Vec<(String, String)>,
}

impl Server {
    /// A running server in `fr-par-1` with a public IPv4 address.
    pub fn new(n: u32, name: &str, public: &str) -> Server {
        Server {
            id: format!("93c18a61-b681-49d0-a1cc-{n:012x}"),
            name: name.into(),
            zone: "fr-par-1".into(),
            state: "running".into(),
            tags: Vec::new(),
            private_ip: None,
            public_ips: vec![(public.into(), "inet".into())],
            private_nics: Vec::new(),
        }
    }

    /// With a tag.
    pub fn tag(mut self, t: &str) -> Server {
        self.tags.push(t.into());
        self
    }

    fn json(&self) -> Value {
        let first_v4 = self.public_ips.iter().find(|(_, f)| f == "inet");
        json!({
            "id": self.id, "name": self.name, "organization": "cb334986-b054-4725-9d3a-40850fdc6015",
            "project": "cb334986-b054-4725-9d5a-30850fdc6015", "allowed_actions": ["poweroff"],
            "tags": self.tags, "commercial_type": "DEV1-S", "creation_date": "2024-01-01T00:00:00.000000+00:00",
            "dynamic_ip_required": false, "routed_ip_enabled": true, "enable_ipv6": false,
            "hostname": self.name, "image": {"id": "45a86b35-eca6-4055-9b34-ca69845da146",
                "name": "Ubuntu 24.04 Noble Numbat", "arch": "x86_64"},
            "protected": false, "private_ip": self.private_ip,
            "public_ip": first_v4.map(|(a, f)| json!({"id": "ip-1", "address": a, "family": f, "dynamic": false})),
            "public_ips": self.public_ips.iter().map(|(a, f)| json!({"id": format!("ip-{a}"), "address": a, "family": f, "provisioning_mode": "dhcp"})).collect::<Vec<_>>(),
            "mac_address": "de:00:00:00:00:01", "modification_date": "2024-01-01T00:00:00.000000+00:00",
            "state": self.state, "location": {"cluster_id": "40", "hypervisor_id": "1601", "node_id": "29", "platform_id": "14", "zone_id": "par1"},
            "ipv6": null, "boot_type": "local", "volumes": {},
            "security_group": {"id": "a6a794b7-c05b-4b20-b9fe-e17a9bb85cf0", "name": "Default security group"},
            "maintenances": [], "state_detail": "booted", "arch": "x86_64", "placement_group": null,
            "private_nics": self.private_nics.iter().map(|(id, _)| json!({"id": id, "server_id": self.id,
                "private_network_id": "18ba4ed4-d194-4b5d-9083-447325234a71", "mac_address": "02:00:00:00:31:90",
                "state": "available", "zone": self.zone})).collect::<Vec<_>>(),
            "zone": self.zone
        })
    }
}

/// One Elastic Metal server.
#[derive(Clone, Debug, PartialEq)]
pub struct Metal {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `ready`, `stopped`, …
    pub status: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Its IPv4 address.
    pub ipv4: String,
}

/// A project's servers and its secret key.
#[derive(Clone, Debug)]
pub struct Project {
    servers: BTreeMap<String, Server>,
    metal: BTreeMap<String, Metal>,
    /// The secret key requests must carry.
    pub secret_key: String,
    /// The largest page the API grants (100; a test lowers it to make clients page).
    pub max_per_page: usize,
}

impl Default for Project {
    fn default() -> Self {
        Project::new("6d6579e5-a5b9-49fc-a35f-b4feb9b87301")
    }
}

impl Project {
    /// No servers; requests must carry `secret_key`.
    pub fn new(secret_key: &str) -> Project {
        Project {
            servers: BTreeMap::new(),
            metal: BTreeMap::new(),
            secret_key: secret_key.into(),
            max_per_page: 100,
        }
    }

    /// Adds or replaces an Instance server (by id).
    pub fn put(&mut self, s: Server) {
        self.servers.insert(s.id.clone(), s);
    }

    /// Deletes an Instance server.
    pub fn remove(&mut self, id: &str) -> bool {
        self.servers.remove(id).is_some()
    }

    /// Every Instance server, by id.
    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        self.servers.values()
    }

    /// Adds or replaces an Elastic Metal server (by id).
    pub fn put_metal(&mut self, m: Metal) {
        self.metal.insert(m.id.clone(), m);
    }

    fn page(&self, req: &Request, items: Vec<Value>) -> Result<(Vec<Value>, usize), Reply> {
        let per_page = match req.param("per_page").map(str::parse::<usize>) {
            None => 50,
            Some(Ok(n)) if (1..=100).contains(&n) => n,
            Some(_) => return Err(invalid("per_page")),
        }
        .min(self.max_per_page.max(1));
        let page = match req.param("page").map(str::parse::<usize>) {
            None => 1,
            Some(Ok(n)) if n > 0 => n,
            Some(_) => return Err(invalid("page")),
        };
        let total = items.len();
        let from = ((page - 1) * per_page).min(total);
        let to = (from + per_page).min(total);
        Ok((items[from..to].to_vec(), total))
    }
}

fn json_reply(status: u16, v: Value) -> Reply {
    Reply {
        status,
        content_type: "application/json".into(),
        headers: Vec::new(),
        body: v.to_string(),
    }
}

fn invalid(arg: &str) -> Reply {
    json_reply(
        400,
        json!({"type": "invalid_arguments", "message": "invalid argument(s)",
            "details": [{"argument_name": arg, "reason": "constraint", "help_message": "must be a positive integer"}]}),
    )
}

/// The region of a zone (`fr-par-1` → `fr-par`).
fn region(zone: &str) -> &str {
    zone.rsplit_once('-').map_or(zone, |(r, _)| r)
}

impl Api for Project {
    fn answer(&self, req: &Request, _base: &str) -> Reply {
        if req.header("x-auth-token") != Some(self.secret_key.as_str()) {
            return json_reply(
                401,
                json!({"message": "authentication is denied", "method": "api_key", "reason": "not_found", "type": "denied_authentication"}),
            );
        }
        if req.method != "GET" {
            return json_reply(405, json!({"message": "method not allowed"}));
        }
        let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
        let all = |k: &str| -> Vec<&str> {
            req.query
                .iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let name = req.param("name").unwrap_or_default();
        match parts.as_slice() {
            ["instance", "v1", "zones", zone, "servers"] => {
                let tags: Vec<&str> = req
                    .param("tags")
                    .map(|t| t.split(',').collect())
                    .unwrap_or_default();
                let items: Vec<Value> = self
                    .servers
                    .values()
                    .filter(|s| s.zone == *zone && s.name.contains(name))
                    .filter(|s| tags.iter().all(|t| s.tags.iter().any(|x| x == t)))
                    .map(Server::json)
                    .collect();
                match self.page(req, items) {
                    Ok((page, total)) => json_reply(200, json!({"servers": page}))
                        .header("X-Total-Count", total.to_string()),
                    Err(r) => r,
                }
            }
            ["ipam", "v1", "regions", reg, "ips"] => {
                let ids = all("resource_ids");
                let types = all("resource_types");
                let items: Vec<Value> = self
                    .servers
                    .values()
                    .filter(|s| region(&s.zone) == *reg)
                    .flat_map(|s| s.private_nics.iter())
                    .filter(|(id, _)| ids.is_empty() || ids.contains(&id.as_str()))
                    .filter(|_| types.is_empty() || types.contains(&"instance_private_nic"))
                    .map(|(id, addr)| {
                        json!({"id": format!("ip-{id}"), "address": format!("{addr}/32"),
                            "project_id": "cb334986-b054-4725-9d5a-30850fdc6015", "is_ipv6": false,
                            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
                            "source": {"private_network_id": "18ba4ed4-d194-4b5d-9083-447325234a71"},
                            "resource": {"type": "instance_private_nic", "id": id, "mac_address": "02:00:00:00:31:90", "name": null},
                            "tags": [], "reverses": [], "region": reg, "zone": null})
                    })
                    .collect();
                match self.page(req, items) {
                    Ok((page, total)) => {
                        json_reply(200, json!({"ips": page, "total_count": total}))
                    }
                    Err(r) => r,
                }
            }
            ["baremetal", "v1", "zones", zone, what] => {
                let items: Vec<Value> = match *what {
                    "servers" => {
                        let tags = all("tags");
                        self.metal
                            .values()
                            .filter(|m| m.name.contains(name))
                            .filter(|m| tags.iter().all(|t| m.tags.iter().any(|x| x == t)))
                            .map(|m| {
                                json!({"id": m.id, "organization_id": "o", "project_id": "p", "name": m.name,
                                    "description": "", "updated_at": null, "created_at": null, "status": m.status,
                                    "offer_id": "bd757b6a-0d5f-4b39-ac4b-7b2b5bd9e7c1", "offer_name": "EM-A115X-SSD",
                                    "tags": m.tags, "ips": [{"id": "i4", "address": m.ipv4, "reverse": "", "version": "IPv4",
                                        "reverse_status": "active", "reverse_status_message": null}],
                                    "domain": "", "boot_type": "normal", "zone": zone,
                                    "install": {"os_id": "7d1914e1-f4ab-4f1f-8ed8-8dbd7e5c4a3c", "hostname": m.name, "ssh_key_ids": [], "status": "completed"},
                                    "ping_status": "ping_status_up", "options": [], "rescue_server": null})
                            })
                            .collect()
                    }
                    "offers" => vec![
                        json!({"id": "bd757b6a-0d5f-4b39-ac4b-7b2b5bd9e7c1", "name": "EM-A115X-SSD", "stock": "available"}),
                    ],
                    "os" => vec![
                        json!({"id": "7d1914e1-f4ab-4f1f-8ed8-8dbd7e5c4a3c", "name": "Ubuntu", "version": "24.04 LTS (Noble Numbat)"}),
                    ],
                    _ => return json_reply(404, json!({"message": "not found"})),
                };
                match self.page(req, items) {
                    Ok((page, total)) => {
                        let mut m = serde_json::Map::new();
                        m.insert((*what).to_owned(), Value::Array(page));
                        m.insert("total_count".into(), json!(total));
                        json_reply(200, Value::Object(m))
                    }
                    Err(r) => r,
                }
            }
            _ => json_reply(404, json!({"message": "not found"})),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(p: &Project, target: &str) -> Reply {
        p.answer(
            &Request::new("GET", target).header_set("X-Auth-Token", &p.secret_key.clone()),
            "http://x",
        )
    }

    #[test]
    fn servers_page_and_filter_as_the_api_does() {
        let mut p = Project::default();
        for n in 1..=3 {
            p.put(Server::new(n, &format!("web-{n}"), &format!("192.0.2.{n}")).tag("web"));
        }
        let mut nic = Server::new(4, "db", "192.0.2.4");
        nic.public_ips.clear();
        nic.private_nics.push(("nic-4".into(), "10.0.0.4".into()));
        p.put(nic);
        let r = get(
            &p,
            "/instance/v1/zones/fr-par-1/servers?page=2&per_page=2&tags=web",
        );
        assert_eq!(r.headers, [("X-Total-Count".to_owned(), "3".to_owned())]);
        let v: Value = serde_json::from_str(&r.body).expect("JSON");
        assert_eq!(v["servers"][0]["name"], "web-3");
        let r = get(
            &p,
            "/ipam/v1/regions/fr-par/ips?resource_ids=nic-4&resource_types=instance_private_nic",
        );
        let v: Value = serde_json::from_str(&r.body).expect("JSON");
        assert_eq!(
            (v["total_count"].as_u64(), v["ips"][0]["address"].as_str()),
            (Some(1), Some("10.0.0.4/32"))
        );
        let r = p.answer(
            &Request::new("GET", "/instance/v1/zones/fr-par-1/servers"),
            "http://x",
        );
        assert_eq!(r.status, 401);
        assert!(r.body.contains("denied_authentication"));
    }
}
