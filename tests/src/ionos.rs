//! A fake IONOS Cloud API for the discovery tests, after the Cloud API v6 reference
//! (`https://api.ionos.com/docs/cloud/v6/`): `GET
//! /cloudapi/v6/datacenters/{datacenterId}/servers` with `depth` (at depth 3 and more
//! each server carries its `entities.nics` and `entities.volumes` with their
//! properties; below, only references), answered as the reference shapes a collection
//! (`id`, `type: collection`, `href`, `items`; `items` left out when the datacenter has
//! no server). Basic auth or a bearer token, else 401 with the API's `httpStatus` and
//! `messages` error body; an unknown datacenter 404.
//!
//! What it does not emulate: every other endpoint, `offset`/`limit` paging, `pretty`,
//! filters, the servers' CD-ROMs and labels, contract numbers.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::cloud::{Api, Reply, Request};

/// One server.
#[derive(Clone, Debug, PartialEq)]
pub struct Server {
    /// Its id (a UUID).
    pub id: String,
    /// Its name.
    pub name: String,
    /// `vmState` (`RUNNING`, `SHUTOFF`, …).
    pub vm_state: String,
    /// (NIC name, its IPs) in order.
    pub nics: Vec<(Option<String>, Vec<String>)>,
}

impl Server {
    /// A running server with one NIC named `public` holding `ip`.
    pub fn new(n: u32, name: &str, ip: &str) -> Server {
        Server {
            id: format!("b0a5a2f1-0000-4000-8000-{n:012x}"),
            name: name.into(),
            vm_state: "RUNNING".into(),
            nics: vec![(Some("public".into()), vec![ip.into()])],
        }
    }

    fn json(&self, base: &str, dc: &str, depth: u32) -> Value {
        let href = format!("{base}/cloudapi/v6/datacenters/{dc}/servers/{}", self.id);
        let mut v = json!({"id": self.id, "type": "server", "href": href});
        if depth == 0 {
            return v;
        }
        v["metadata"] = json!({"etag": "45480eb3fbfc31f1d916c1eaa4abdcc3", "createdDate": "2024-06-01T12:00:00Z",
                               "createdBy": "user@example.com", "lastModifiedDate": "2024-06-01T12:00:00Z",
                               "state": "AVAILABLE"});
        v["properties"] = json!({"name": self.name, "cores": 2, "ram": 4096, "availabilityZone": "AUTO",
                                 "vmState": self.vm_state, "bootCdrom": null,
                                 "bootVolume": {"id": format!("{}-boot", self.id), "type": "volume"},
                                 "cpuFamily": "INTEL_SKYLAKE", "type": "ENTERPRISE"});
        let nics: Vec<Value> = self
            .nics
            .iter()
            .enumerate()
            .map(|(i, (name, ips))| {
                let mut p = json!({"mac": format!("02:01:00:00:00:{i:02x}"), "ips": ips, "dhcp": true,
                                   "lan": 1, "firewallActive": false});
                if let Some(n) = name {
                    p["name"] = json!(n);
                }
                json!({"id": format!("{}-nic{i}", self.id), "type": "nic", "properties": p})
            })
            .collect();
        if depth >= 3 {
            v["entities"] = json!({
                "nics": {"id": format!("{}/nics", self.id), "type": "collection", "items": nics},
                "volumes": {"id": format!("{}/volumes", self.id), "type": "collection", "items": [
                    {"id": format!("{}-boot", self.id), "type": "volume",
                     "properties": {"name": "boot", "size": 10, "type": "HDD",
                                    "image": "5a1d1b2c-0000-4000-8000-000000000001"}}
                ]}
            });
        }
        v
    }
}

/// The account's datacenters and credentials.
#[derive(Clone, Debug)]
pub struct Cloud {
    datacenters: BTreeMap<String, BTreeMap<String, Server>>,
    /// Basic-auth user and password.
    pub user: (String, String),
    /// The token accepted as `Bearer`.
    pub token: String,
}

impl Default for Cloud {
    fn default() -> Self {
        Cloud::new()
    }
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"httpStatus": status, "messages": [{"errorCode": code, "message": message}]}),
    )
}

impl Cloud {
    /// No datacenters; `user@example.com`/`secret` or the token `ionos-test-token`.
    pub fn new() -> Cloud {
        Cloud {
            datacenters: BTreeMap::new(),
            user: ("user@example.com".into(), "secret".into()),
            token: "ionos-test-token".into(),
        }
    }

    /// Adds an empty datacenter.
    pub fn datacenter(&mut self, dc: &str) {
        self.datacenters.entry(dc.into()).or_default();
    }

    /// Adds or replaces a server in `dc` (by id).
    pub fn put(&mut self, dc: &str, s: Server) {
        self.datacenters
            .entry(dc.into())
            .or_default()
            .insert(s.id.clone(), s);
    }

    /// Deletes a server.
    pub fn remove(&mut self, dc: &str, id: &str) -> bool {
        self.datacenters
            .get_mut(dc)
            .is_some_and(|d| d.remove(id).is_some())
    }

    /// The servers of `dc`, by id.
    pub fn servers(&self, dc: &str) -> Vec<Server> {
        self.datacenters
            .get(dc)
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default()
    }
}

impl Api for Cloud {
    fn answer(&self, req: &Request, base: &str) -> Reply {
        let (u, p) = &self.user;
        let basic = format!(
            "Basic {}",
            trawl_core::bytes::base64_encode(format!("{u}:{p}").as_bytes())
        );
        let bearer = format!("Bearer {}", self.token);
        let auth = req.header("authorization");
        if auth != Some(basic.as_str()) && auth != Some(bearer.as_str()) {
            return error(401, "315", "Unauthorized");
        }
        let parts: Vec<&str> = req.path.trim_end_matches('/').split('/').collect();
        let ["", "cloudapi", "v6", "datacenters", dc, "servers"] = parts[..] else {
            return error(404, "309", "Resource does not exist");
        };
        if req.method != "GET" {
            return error(405, "307", "Method not allowed");
        }
        let Some(servers) = self.datacenters.get(dc) else {
            return error(404, "309", "Resource does not exist");
        };
        let depth = match req.param("depth").map(str::parse::<u32>) {
            None => 0,
            Some(Ok(d)) => d,
            Some(Err(_)) => return error(422, "100", "depth must be a number"),
        };
        let mut v = json!({
            "id": format!("{dc}/servers"),
            "type": "collection",
            "href": format!("{base}/cloudapi/v6/datacenters/{dc}/servers"),
        });
        if !servers.is_empty() {
            v["items"] = Value::Array(servers.values().map(|s| s.json(base, dc, depth)).collect());
        }
        Reply::json(200, &v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_come_with_their_nics_at_depth_3() {
        let mut c = Cloud::new();
        c.datacenter("empty");
        c.put("dc1", Server::new(1, "web", "192.0.2.1"));
        let get = |t: &str| {
            let r = c.answer(
                &Request::new("GET", t).header_set("Authorization", "Bearer ionos-test-token"),
                "http://i",
            );
            (
                r.status,
                serde_json::from_str::<Value>(&r.body).expect("JSON"),
            )
        };
        let (s, v) = get("/cloudapi/v6/datacenters/dc1/servers?depth=3");
        assert_eq!(s, 200);
        let nic = &v["items"][0]["entities"]["nics"]["items"][0]["properties"];
        assert_eq!(nic["ips"], json!(["192.0.2.1"]));
        assert_eq!(nic["name"], "public");
        let (_, v) = get("/cloudapi/v6/datacenters/dc1/servers");
        assert!(v["items"][0].get("properties").is_none());
        let (_, v) = get("/cloudapi/v6/datacenters/empty/servers?depth=3");
        assert!(v.get("items").is_none(), "no items in an empty datacenter");
        assert_eq!(get("/cloudapi/v6/datacenters/nope/servers").0, 404);
        let r = c.answer(
            &Request::new("GET", "/cloudapi/v6/datacenters/dc1/servers"),
            "http://i",
        );
        assert_eq!(r.status, 401);
    }
}
