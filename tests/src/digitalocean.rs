//! A fake DigitalOcean API for the discovery tests, after DigitalOcean's API reference
//! (`https://docs.digitalocean.com/reference/api/`): `GET /v2/droplets` and `GET
//! /v2/databases`, each paged with `page` and `per_page` (default 20, at most 200) and
//! answered with `links.pages` (`first`, `prev`, `next`, `last` as absolute URLs, the
//! ones that apply) and `meta.total`, as the API pages every list. Droplets carry `id`,
//! `name`, `memory`, `vcpus`, `disk`, `locked`, `status`, `created_at`, `features`,
//! `image`, `size_slug`, `networks` (`v4` private and public, `v6` public), `region`,
//! `tags`, `vpc_uuid`; database clusters `id`, `name`, `engine`, `version`,
//! `connection`, `private_connection`, `num_nodes`, `size`, `region`, `status`,
//! `tags`. A request without `Authorization: Bearer <the account's token>` is answered
//! 401 `{"id": "Unauthorized", "message": "Unable to authenticate you", "request_id":
//! …}`, an unknown path 404 `not_found`, as the API answers.
//!
//! What it does not emulate: every other endpoint and method, `tag_name` filtering,
//! rate limits (`ratelimit-*` headers, 429), the droplets' kernel, snapshot, backup and
//! volume fields, database users, pools and maintenance windows.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::cloud::{Api, Reply, Request};

/// One droplet.
#[derive(Clone, Debug, PartialEq)]
pub struct Droplet {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Public IPv4 address (`None`: no public network).
    pub public_ip: Option<String>,
    /// Private IPv4 address.
    pub private_ip: Option<String>,
    /// `active`, `off`, `new`, `archive`.
    pub status: String,
    /// Region slug.
    pub region: String,
    /// Tags.
    pub tags: Vec<String>,
}

impl Droplet {
    /// An active droplet in `nyc3` with a public and a private address.
    pub fn new(id: i64, name: &str, public_ip: &str, private_ip: &str) -> Droplet {
        Droplet {
            id,
            name: name.into(),
            public_ip: Some(public_ip.into()),
            private_ip: Some(private_ip.into()),
            status: "active".into(),
            region: "nyc3".into(),
            tags: Vec::new(),
        }
    }

    /// With a tag.
    pub fn tag(mut self, t: &str) -> Droplet {
        self.tags.push(t.into());
        self
    }

    fn json(&self) -> Value {
        let mut v4 = Vec::new();
        if let Some(ip) = &self.private_ip {
            v4.push(json!({"ip_address": ip, "netmask": "255.255.240.0", "gateway": "10.108.0.1", "type": "private"}));
        }
        if let Some(ip) = &self.public_ip {
            v4.push(json!({"ip_address": ip, "netmask": "255.255.240.0", "gateway": "198.51.100.1", "type": "public"}));
        }
        json!({
            "id": self.id,
            "name": self.name,
            "memory": 1024,
            "vcpus": 1,
            "disk": 25,
            "locked": false,
            "status": self.status,
            "kernel": null,
            "created_at": "2024-06-01T12:00:00Z",
            "features": ["monitoring", "private_networking"],
            "backup_ids": [],
            "next_backup_window": null,
            "snapshot_ids": [],
            "image": {"id": 162_000_000 + 1, "name": "24.04 (LTS) x64", "distribution": "Ubuntu",
                      "slug": "ubuntu-24-04-x64", "public": true, "regions": [self.region],
                      "created_at": "2024-05-01T00:00:00Z", "type": "base", "min_disk_size": 7,
                      "size_gigabytes": 2.3, "status": "available"},
            "volume_ids": [],
            "size": {"slug": "s-1vcpu-1gb", "memory": 1024, "vcpus": 1, "disk": 25,
                     "transfer": 1.0, "price_monthly": 6.0, "price_hourly": 0.00893},
            "size_slug": "s-1vcpu-1gb",
            "networks": {
                "v4": v4,
                "v6": [{"ip_address": format!("2604:a880:400:d1::{:x}", self.id), "netmask": 64,
                        "gateway": "2604:a880:400:d1::1", "type": "public"}]
            },
            "region": {"name": "New York 3", "slug": self.region, "features": ["backups", "ipv6"],
                       "available": true, "sizes": ["s-1vcpu-1gb"]},
            "tags": self.tags,
            "vpc_uuid": "5a4981aa-9653-4bd1-bef5-d6bff52042e4"
        })
    }
}

/// One managed database cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Database {
    /// Its id (a UUID).
    pub id: String,
    /// Its name.
    pub name: String,
    /// `pg`, `mysql`, `redis`, …
    pub engine: String,
    /// The public host.
    pub host: Option<String>,
    /// The private host.
    pub private_host: Option<String>,
    /// `online`, `creating`, …
    pub status: String,
    /// Tags.
    pub tags: Vec<String>,
}

impl Database {
    /// An online PostgreSQL cluster with both hosts.
    pub fn new(id: &str, name: &str) -> Database {
        Database {
            id: id.into(),
            name: name.into(),
            engine: "pg".into(),
            host: Some(format!("{name}-do-user-1-0.db.ondigitalocean.com")),
            private_host: Some(format!("private-{name}-do-user-1-0.db.ondigitalocean.com")),
            status: "online".into(),
            tags: Vec::new(),
        }
    }

    fn json(&self) -> Value {
        let conn = |h: &Option<String>| {
            h.as_ref().map(|h| {
                json!({"uri": format!("postgresql://doadmin:secret@{h}:25060/defaultdb?sslmode=require"),
                       "database": "defaultdb", "host": h, "port": 25060, "user": "doadmin",
                       "password": "secret", "ssl": true})
            })
        };
        json!({
            "id": self.id,
            "name": self.name,
            "engine": self.engine,
            "version": "16",
            "connection": conn(&self.host),
            "private_connection": conn(&self.private_host),
            "users": null,
            "db_names": ["defaultdb"],
            "num_nodes": 1,
            "region": "nyc3",
            "status": self.status,
            "created_at": "2024-06-01T12:00:00Z",
            "maintenance_window": {"day": "sunday", "hour": "02:00:00", "pending": false},
            "size": "db-s-1vcpu-1gb",
            "tags": self.tags,
            "private_network_uuid": "5a4981aa-9653-4bd1-bef5-d6bff52042e4"
        })
    }
}

/// An account's droplets and databases, and its token.
#[derive(Clone, Debug)]
pub struct Account {
    droplets: BTreeMap<i64, Droplet>,
    databases: BTreeMap<String, Database>,
    /// The API token requests must carry.
    pub token: String,
    /// The page size when a request names none (the API's is 20).
    pub per_page: usize,
}

impl Default for Account {
    fn default() -> Self {
        Account::new("dop_v1_test")
    }
}

fn error(status: u16, id: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"id": id, "message": message, "request_id": "2c3e8d2a-5b7e-4c1f-9f1e-000000000001"}),
    )
}

impl Account {
    /// No droplets; requests must carry `token`.
    pub fn new(token: &str) -> Account {
        Account {
            droplets: BTreeMap::new(),
            databases: BTreeMap::new(),
            token: token.into(),
            per_page: 20,
        }
    }

    /// Adds or replaces a droplet (by id).
    pub fn put(&mut self, d: Droplet) {
        self.droplets.insert(d.id, d);
    }

    /// Deletes a droplet.
    pub fn remove(&mut self, id: i64) -> bool {
        self.droplets.remove(&id).is_some()
    }

    /// Every droplet, by id.
    pub fn droplets(&self) -> impl Iterator<Item = &Droplet> {
        self.droplets.values()
    }

    /// Adds or replaces a database cluster (by id).
    pub fn put_database(&mut self, d: Database) {
        self.databases.insert(d.id.clone(), d);
    }

    /// A page of `items` as the API pages a list under `key`.
    fn page(&self, req: &Request, base: &str, key: &str, items: Vec<Value>) -> Reply {
        let num = |k: &str, d: usize| -> Result<usize, Reply> {
            match req.param(k) {
                None | Some("") => Ok(d),
                Some(v) => v.parse::<usize>().map_err(|_| {
                    error(
                        400,
                        "bad_request",
                        &format!("{k} must be a positive integer"),
                    )
                }),
            }
        };
        let (page, per_page) = match (num("page", 1), num("per_page", self.per_page)) {
            (Ok(p), Ok(n)) => (p.max(1), n.clamp(1, 200)),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        let total = items.len();
        let last = total.div_ceil(per_page).max(1);
        let at = |n: usize| format!("{base}{}?page={n}&per_page={per_page}", req.path);
        let mut pages = serde_json::Map::new();
        if page > 1 {
            pages.insert("first".into(), json!(at(1)));
            pages.insert("prev".into(), json!(at(page - 1)));
        }
        if page < last {
            pages.insert("next".into(), json!(at(page + 1)));
            pages.insert("last".into(), json!(at(last)));
        }
        let from = (page - 1).saturating_mul(per_page).min(total);
        let to = (from + per_page).min(total);
        let list: Vec<Value> = items[from..to].to_vec();
        Reply::json(
            200,
            &json!({key: list, "links": {"pages": pages}, "meta": {"total": total}}),
        )
    }
}

impl Api for Account {
    fn answer(&self, req: &Request, base: &str) -> Reply {
        let want = format!("Bearer {}", self.token);
        if req.header("authorization") != Some(want.as_str()) {
            return error(401, "Unauthorized", "Unable to authenticate you");
        }
        match (req.method.as_str(), req.path.trim_end_matches('/')) {
            ("GET", "/v2/droplets") => {
                let items = self.droplets.values().map(Droplet::json).collect();
                self.page(req, base, "droplets", items)
            }
            ("GET", "/v2/databases") => {
                let items = self.databases.values().map(Database::json).collect();
                self.page(req, base, "databases", items)
            }
            _ => error(
                404,
                "not_found",
                "The resource you were accessing could not be found.",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(a: &Account, target: &str) -> (u16, Value) {
        let r = a.answer(
            &Request::new("GET", target).header_set("Authorization", "Bearer dop_v1_test"),
            "http://do",
        );
        (r.status, serde_json::from_str(&r.body).expect("JSON"))
    }

    #[test]
    fn lists_are_paged_with_links_as_the_api_pages_them() {
        let mut a = Account {
            per_page: 2,
            ..Account::default()
        };
        for n in 1..=5 {
            a.put(Droplet::new(n, &format!("d{n}"), "192.0.2.1", "10.0.0.1"));
        }
        let (s, v) = get(&a, "/v2/droplets");
        assert_eq!(s, 200);
        assert_eq!(v["droplets"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            v["links"]["pages"]["next"],
            "http://do/v2/droplets?page=2&per_page=2"
        );
        assert_eq!(
            v["links"]["pages"]["last"],
            "http://do/v2/droplets?page=3&per_page=2"
        );
        assert!(v["links"]["pages"].get("prev").is_none());
        assert_eq!(v["meta"]["total"], 5);
        let (_, v) = get(&a, "/v2/droplets?page=3&per_page=2");
        assert_eq!(v["droplets"][0]["name"], "d5");
        assert_eq!(
            v["links"]["pages"]["prev"],
            "http://do/v2/droplets?page=2&per_page=2"
        );
        assert!(v["links"]["pages"].get("next").is_none());
        let (_, v) = get(&a, "/v2/droplets?page=9");
        assert_eq!(v["droplets"], json!([]));
        assert_eq!(get(&a, "/v2/droplets?page=x").0, 400);
        assert_eq!(get(&a, "/v2/volumes").0, 404);
        let r = a.answer(&Request::new("GET", "/v2/droplets"), "http://do");
        assert_eq!(r.status, 401);
        assert!(r.body.contains("Unable to authenticate you"));
    }
}
