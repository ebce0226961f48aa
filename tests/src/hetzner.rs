//! A fake Hetzner API for the discovery tests: the Cloud API after its reference
//! (`https://docs.hetzner.cloud/`) — `GET /v1/servers` and `GET /v1/networks`, paged
//! with `page` and `per_page` (default 25, at most 50) and answered with
//! `meta.pagination` (`page`, `per_page`, `previous_page`, `next_page`, `last_page`,
//! `total_entries`); `label_selector` with `k=v`, `k!=v`, `k` and `!k` terms joined by
//! commas; a bearer token, or 401 `{"error": {"code": "unauthorized", …}}` — and the
//! Robot API after its reference (`https://robot.hetzner.com/doc/webservice/en.html`):
//! `GET /server` with basic auth, the list of `{"server": {…}}` objects, 404
//! `SERVER_NOT_FOUND` when the account has none, 401 `UNAUTHORIZED` without the right
//! credentials. The Cloud API is served with and without its `/v1` prefix (the agent's
//! test-only API base replaces the whole `https://api.hetzner.cloud/v1`).
//!
//! What it does not emulate: every other endpoint, sorting, `name` and `status`
//! filters, rate limits (`RateLimit-*` headers, 429), actions, the servers' volumes,
//! load balancers, placement groups and protection fields, Robot's other resources.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::cloud::{Api, Reply, Request};

/// A Cloud server.
#[derive(Clone, Debug, PartialEq)]
pub struct CloudServer {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// `running`, `off`, `starting`…
    pub status: String,
    /// Public IPv4 address (`None`: none).
    pub ipv4: Option<String>,
    /// (network id, address) of its private networks.
    pub private: Vec<(i64, String)>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

impl CloudServer {
    /// A running server with a public address.
    pub fn new(id: i64, name: &str, ipv4: &str) -> CloudServer {
        CloudServer {
            id,
            name: name.into(),
            status: "running".into(),
            ipv4: Some(ipv4.into()),
            private: Vec::new(),
            labels: BTreeMap::new(),
        }
    }

    /// With a label.
    pub fn label(mut self, k: &str, v: &str) -> CloudServer {
        self.labels.insert(k.into(), v.into());
        self
    }

    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "created": "2024-06-01T12:00:00+00:00",
            "public_net": {
                "ipv4": self.ipv4.as_ref().map(|ip| json!({"id": self.id, "ip": ip, "blocked": false,
                                                            "dns_ptr": format!("static.{ip}.clients.your-server.de")})),
                "ipv6": {"id": self.id, "ip": format!("2a01:4f8:c0c:{:x}::/64", self.id), "blocked": false, "dns_ptr": []},
                "floating_ips": [],
                "firewalls": []
            },
            "private_net": self.private.iter().map(|(n, ip)| json!({"network": n, "ip": ip, "alias_ips": [],
                                                                  "mac_address": "86:00:00:00:00:01"})).collect::<Vec<_>>(),
            "server_type": {"id": 22, "name": "cx22", "description": "CX22", "cores": 2, "memory": 4.0,
                            "disk": 40, "deprecated": false, "prices": [], "storage_type": "local",
                            "cpu_type": "shared", "architecture": "x86"},
            "datacenter": {"id": 4, "name": "fsn1-dc14", "description": "Falkenstein 1 virtual DC 14",
                           "location": {"id": 1, "name": "fsn1", "description": "Falkenstein DC Park 1",
                                        "country": "DE", "city": "Falkenstein", "latitude": 50.47612,
                                        "longitude": 12.370071, "network_zone": "eu-central"},
                           "server_types": {"supported": [22], "available": [22], "available_for_migration": [22]}},
            "location": {"id": 1, "name": "fsn1", "description": "Falkenstein DC Park 1",
                         "country": "DE", "city": "Falkenstein", "latitude": 50.47612,
                         "longitude": 12.370071, "network_zone": "eu-central"},
            "image": {"id": 161547269, "type": "system", "status": "available", "name": "ubuntu-24.04",
                      "description": "Ubuntu 24.04", "image_size": null, "disk_size": 5,
                      "created": "2024-04-25T00:00:00+00:00", "os_flavor": "ubuntu", "os_version": "24.04",
                      "rapid_deploy": true, "deprecated": null, "labels": {}, "architecture": "x86"},
            "iso": null,
            "rescue_enabled": false,
            "locked": false,
            "backup_window": null,
            "outgoing_traffic": 0,
            "ingoing_traffic": 0,
            "included_traffic": 21990232555520u64,
            "protection": {"delete": false, "rebuild": false},
            "labels": self.labels,
            "volumes": [],
            "load_balancers": [],
            "primary_disk_size": 40,
            "placement_group": null
        })
    }

    /// True if the labels match a selector (`k=v`, `k!=v`, `k`, `!k`, joined by commas).
    fn selected(&self, selector: &str) -> bool {
        selector
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .all(|t| {
                if let Some((k, v)) = t.split_once("!=") {
                    self.labels.get(k.trim()).map(String::as_str) != Some(v.trim())
                } else if let Some((k, v)) = t.split_once('=') {
                    self.labels.get(k.trim()).map(String::as_str) == Some(v.trim())
                } else if let Some(k) = t.strip_prefix('!') {
                    !self.labels.contains_key(k.trim())
                } else {
                    self.labels.contains_key(t)
                }
            })
    }
}

/// A dedicated server of the Robot API.
#[derive(Clone, Debug, PartialEq)]
pub struct RobotServer {
    /// `server_number`.
    pub number: i64,
    /// `server_name`.
    pub name: String,
    /// `server_ip`.
    pub ip: String,
    /// `dc` (`FSN1-DC10`).
    pub dc: String,
    /// `cancelled`.
    pub cancelled: bool,
}

impl RobotServer {
    fn json(&self) -> Value {
        json!({"server": {
            "server_ip": self.ip,
            "server_ipv6_net": format!("2a01:4f8:111:{:x}::", self.number),
            "server_number": self.number,
            "server_name": self.name,
            "product": "AX41-NVMe",
            "dc": self.dc,
            "traffic": "unlimited",
            "status": "ready",
            "cancelled": self.cancelled,
            "paid_until": "2027-01-01",
            "ip": [self.ip],
            "subnet": [{"ip": format!("2a01:4f8:111:{:x}::", self.number), "mask": "64"}]
        }})
    }
}

/// A Hetzner account: its Cloud project and its Robot servers.
#[derive(Clone, Debug)]
pub struct Project {
    servers: BTreeMap<i64, CloudServer>,
    /// The Cloud project's networks (id → name).
    pub networks: BTreeMap<i64, String>,
    robot: BTreeMap<i64, RobotServer>,
    /// The Cloud API token.
    pub token: String,
    /// The Robot web service user and password.
    pub robot_user: (String, String),
    /// The Cloud API's page size when a request names none (the API's is 25).
    pub per_page: usize,
    /// The largest page size the Cloud API grants (the API's is 50; a test lowers it
    /// to make clients page).
    pub max_per_page: usize,
}

impl Default for Project {
    fn default() -> Self {
        Project::new("hcloud-test-token")
    }
}

fn cloud_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": {"code": code, "message": message, "details": {}}}),
    )
}

fn robot_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": {"status": status, "code": code, "message": message}}),
    )
}

impl Project {
    /// An empty project whose Cloud API token is `token` (Robot: `robot-user`/`secret`).
    pub fn new(token: &str) -> Project {
        Project {
            servers: BTreeMap::new(),
            networks: BTreeMap::new(),
            robot: BTreeMap::new(),
            token: token.into(),
            robot_user: ("robot-user".into(), "secret".into()),
            per_page: 25,
            max_per_page: 50,
        }
    }

    /// Adds or replaces a Cloud server (by id).
    pub fn put(&mut self, s: CloudServer) {
        self.servers.insert(s.id, s);
    }

    /// Deletes a Cloud server.
    pub fn remove(&mut self, id: i64) -> bool {
        self.servers.remove(&id).is_some()
    }

    /// Every Cloud server, by id.
    pub fn servers(&self) -> impl Iterator<Item = &CloudServer> {
        self.servers.values()
    }

    /// Adds or replaces a Robot server (by number).
    pub fn put_robot(&mut self, s: RobotServer) {
        self.robot.insert(s.number, s);
    }

    fn page(&self, req: &Request, key: &str, items: Vec<Value>) -> Reply {
        let num = |k: &str, d: usize| -> Result<usize, Reply> {
            match req.param(k) {
                None | Some("") => Ok(d),
                Some(v) => v.parse::<usize>().map_err(|_| {
                    cloud_error(
                        400,
                        "invalid_input",
                        &format!("invalid input in field '{k}'"),
                    )
                }),
            }
        };
        let (page, per_page) = match (num("page", 1), num("per_page", self.per_page)) {
            (Ok(p), Ok(n)) => (p.max(1), n.clamp(1, self.max_per_page.max(1))),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        let total = items.len();
        let last = total.div_ceil(per_page).max(1);
        let from = (page - 1).saturating_mul(per_page).min(total);
        let to = (from + per_page).min(total);
        Reply::json(
            200,
            &json!({
                key: items[from..to].to_vec(),
                "meta": {"pagination": {
                    "page": page, "per_page": per_page,
                    "previous_page": if page > 1 { json!(page - 1) } else { Value::Null },
                    "next_page": if page < last { json!(page + 1) } else { Value::Null },
                    "last_page": last, "total_entries": total
                }}
            }),
        )
    }

    fn cloud(&self, req: &Request, path: &str) -> Reply {
        let want = format!("Bearer {}", self.token);
        if req.header("authorization") != Some(want.as_str()) {
            return cloud_error(401, "unauthorized", "unable to authenticate");
        }
        match path {
            "/servers" => {
                let sel = req.param("label_selector").unwrap_or("");
                let items = self
                    .servers
                    .values()
                    .filter(|s| s.selected(sel))
                    .map(CloudServer::json)
                    .collect();
                self.page(req, "servers", items)
            }
            "/networks" => {
                let items = self
                    .networks
                    .iter()
                    .map(|(id, name)| {
                        json!({"id": id, "name": name, "ip_range": "10.0.0.0/16", "subnets": [],
                               "routes": [], "servers": [], "load_balancers": [],
                               "protection": {"delete": false}, "labels": {},
                               "created": "2024-06-01T12:00:00+00:00", "expose_routes_to_vswitch": false})
                    })
                    .collect();
                self.page(req, "networks", items)
            }
            _ => cloud_error(404, "not_found", "not found"),
        }
    }

    fn robot(&self, req: &Request) -> Reply {
        let (u, p) = &self.robot_user;
        let want = format!(
            "Basic {}",
            trawl_core::bytes::base64_encode(format!("{u}:{p}").as_bytes())
        );
        if req.header("authorization") != Some(want.as_str()) {
            return robot_error(401, "UNAUTHORIZED", "Unauthorized");
        }
        if self.robot.is_empty() {
            return robot_error(404, "SERVER_NOT_FOUND", "No server found");
        }
        Reply::json(
            200,
            &Value::Array(self.robot.values().map(RobotServer::json).collect()),
        )
    }
}

impl Api for Project {
    fn answer(&self, req: &Request, _base: &str) -> Reply {
        if req.method != "GET" {
            return cloud_error(405, "method_not_allowed", "method not allowed");
        }
        let path = req.path.strip_prefix("/v1").unwrap_or(&req.path);
        if path == "/server" {
            return self.robot(req);
        }
        self.cloud(req, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(p: &Project, target: &str) -> (u16, Value) {
        let r = p.answer(
            &Request::new("GET", target).header_set("Authorization", "Bearer hcloud-test-token"),
            "http://h",
        );
        (r.status, serde_json::from_str(&r.body).expect("JSON"))
    }

    #[test]
    fn servers_are_paged_and_selected_by_label() {
        let mut p = Project::default();
        for n in 1..=5 {
            let env = if n % 2 == 0 { "dev" } else { "prod" };
            p.put(CloudServer::new(n, &format!("s{n}"), "192.0.2.1").label("env", env));
        }
        let (s, v) = get(&p, "/v1/servers?page=1&per_page=2");
        assert_eq!(s, 200);
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["meta"]["pagination"]["next_page"], 2);
        assert_eq!(v["meta"]["pagination"]["last_page"], 3);
        let (_, v) = get(&p, "/servers?page=3&per_page=2");
        assert_eq!(v["servers"][0]["name"], "s5");
        assert_eq!(v["meta"]["pagination"]["next_page"], Value::Null);
        let (_, v) = get(&p, "/v1/servers?label_selector=env%3Dprod");
        let names: Vec<&str> = v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["s1", "s3", "s5"]);
        let (_, v) = get(&p, "/v1/servers?label_selector=env!%3Dprod,env");
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(2));
        let (_, v) = get(&p, "/v1/servers?label_selector=!env");
        assert_eq!(v["servers"], json!([]));
        let r = p.answer(&Request::new("GET", "/v1/servers"), "http://h");
        assert_eq!(r.status, 401);
    }

    #[test]
    fn robot_answers_its_list_or_its_errors() {
        let mut p = Project::default();
        let auth = format!(
            "Basic {}",
            trawl_core::bytes::base64_encode(b"robot-user:secret")
        );
        let get = |p: &Project, auth: &str| {
            p.answer(
                &Request::new("GET", "/server").header_set("Authorization", auth),
                "http://h",
            )
        };
        assert_eq!(get(&p, &auth).status, 404);
        p.put_robot(RobotServer {
            number: 321,
            name: "server1".into(),
            ip: "203.0.113.1".into(),
            dc: "FSN1-DC10".into(),
            cancelled: false,
        });
        let r = get(&p, &auth);
        assert_eq!(r.status, 200);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v[0]["server"]["server_number"], 321);
        assert_eq!(get(&p, "Basic eDp5").status, 401);
    }
}
