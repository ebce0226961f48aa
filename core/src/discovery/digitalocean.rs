//! `digitalocean_sd_configs`: droplets (or managed databases) of a DigitalOcean account,
//! listed through its API every `refresh_interval`. Validation follows 3.x's
//! `discovery/digitalocean` (`Role.UnmarshalYAML`, `SDConfig.UnmarshalYAML`); the
//! refresh follows its `dropletsDiscovery.refresh` and `databasesDiscovery.refresh`
//! (`digitalocean.go`, `digitalocean_db.go`) over godo's calls:
//!
//! - `droplets`: `GET /v2/droplets`, then `?page=N` while the answer's
//!   `links.pages.next` is set, the next page counted from `links.pages.prev` as godo's
//!   `Links.CurrentPage` counts it. A target per droplet with IPv4 networks, at its
//!   public IPv4 address and the block's `port`; one group, source `DigitalOcean`.
//! - `databases`: `GET /v2/databases?page=N&per_page=100` from page 1 until a page
//!   lists none (3.x's loop; godo gives it no links). A target per
//!   cluster at its private host (else its public one) and `port`; source
//!   `DigitalOcean Databases`.
//!
//! The token is the block's HTTP client authorization (`authorization`,
//! `bearer_token`, `bearer_token_file`), as in 3.x. An answer that is not 2xx fails the
//! refresh with godo's wording (`GET <url>: 401 (request "<id>") <message>`), the last
//! targets kept; a refresh makes at most [`super::paged::MAX_CALLS`] calls (3.x's
//! database loop has no end against an API that never answers an empty page).

use serde::Deserialize;

use super::groups::{TargetGroup, go_port, join_host_port, label_set, nul, surrounded_list};
use super::mechanism::{
    Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, go_enum, whole,
};
use super::paged::{self, Call, Pages, Step};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;
#[cfg(test)]
use crate::io::IoEvent;
use crate::labels::Labels;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct DigitalOcean;

go_enum! {
    /// `role` of `digitalocean_sd_configs`.
    pub struct DigitalOceanRole: ["droplets", "databases"]
        else "unknown DigitalOcean SD role {}";
}

/// The untagged `HTTPClient *http.Client` field of Prometheus's struct, which yaml.v2
/// exposes under the key `httpclient`; only its `timeout` can be written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGoHttpClient {
    #[serde(default)]
    #[allow(dead_code)]
    timeout: Option<LenientString>,
}

with_http_client! {
    /// `digitalocean_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawDigitalOceanSd {
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        port: Nullable<i64>,
        #[serde(default)]
        role: Nullable<DigitalOceanRole>,
        // Accepted and ignored, as the Go field is only set by tests.
        #[serde(default)]
        #[allow(dead_code)]
        httpclient: Option<RawGoHttpClient>,
    }
}

/// DigitalOcean discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigitalOceanSdConfig {
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// `droplets` (default) or `databases`.
    pub role: DigitalOceanRole,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for DigitalOcean {
    const KEY: &'static str = "digitalocean_sd_configs";
    const NAME: &'static str = "digitalocean";
    const GO_TYPE: &'static str = "digitalocean.plain";
    const RUNS: bool = true;
    const EXAMPLE: Option<&'static str> = Some("{port: 9100}");
    type Raw = RawDigitalOceanSd;
    type Config = DigitalOceanSdConfig;

    fn nested_go_type(key: &str) -> Option<&'static str> {
        (key == "httpclient").then_some("http.Client")
    }

    fn validate(
        mut raw: RawDigitalOceanSd,
        cx: &SdContext<'_>,
    ) -> Result<DigitalOceanSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let role = raw.role.onto(DigitalOceanRole("droplets".into()));
        if role.0.is_empty() {
            return Err((
                at("role"),
                "role missing (one of: droplets, databases)".into(),
            ));
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(DigitalOceanSdConfig {
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            port: raw.port.onto(80),
            role,
            http_client,
        })
    }

    fn machine(cfg: &DigitalOceanSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        let pages = Listing {
            base: cx.env.api_base(DigitalOcean::NAME, API),
            port: cfg.port,
            databases: cfg.role.as_str() == "databases",
            page: 0,
            targets: Vec::new(),
        };
        Some(paged::machine(
            pages,
            &cfg.http_client,
            &[("Accept", "application/json")],
            cfg.refresh_interval.to_std(),
            ERROR_BODY,
            cx,
        ))
    }
}

/// godo's `defaultBaseURL`.
const API: &str = "https://api.digitalocean.com";

/// How much of an error answer is kept (its message and request id).
const ERROR_BODY: usize = 4096;

const P: &str = "__meta_digitalocean_";

/// godo's `Pages`: links to other pages of a listing.
#[derive(Debug, Default, Deserialize)]
struct PageLinks {
    #[serde(default, deserialize_with = "nul")]
    prev: String,
    #[serde(default, deserialize_with = "nul")]
    next: String,
}

/// godo's `Links`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Links {
    pages: Option<PageLinks>,
}

/// The page of `url` (`?page=N`), as godo's `pageForURL` reads it.
fn page_of(url: &str) -> Result<i64, String> {
    if !(url.starts_with('/') || url.contains("://")) {
        return Err(format!("parse {url:?}: invalid URI for request"));
    }
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let query = query.split('#').next().unwrap_or_default();
    let page = query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == "page")
        .map_or("", |(_, v)| v);
    page.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {page:?}: invalid syntax"))
}

impl Links {
    /// godo's `Links.IsLastPage`: no `next` link (or no links).
    fn is_last(&self) -> bool {
        self.pages.as_ref().is_none_or(|p| p.next.is_empty())
    }

    /// godo's `Links.CurrentPage`: 1 on the first page, else the previous page's + 1.
    fn current(&self) -> Result<i64, String> {
        match &self.pages {
            None => Ok(1),
            Some(p) if p.prev.is_empty() && !p.next.is_empty() => Ok(1),
            Some(p) if !p.prev.is_empty() => Ok(page_of(&p.prev)?.wrapping_add(1)),
            Some(_) => Ok(0),
        }
    }
}

/// An IPv4 or IPv6 network of a droplet.
#[derive(Debug, Default, Deserialize)]
struct Network {
    #[serde(default, deserialize_with = "nul")]
    ip_address: String,
    #[serde(default, rename = "type", deserialize_with = "nul")]
    kind: String,
}

#[derive(Debug, Default, Deserialize)]
struct Networks {
    #[serde(default)]
    v4: Option<Vec<Network>>,
    #[serde(default)]
    v6: Option<Vec<Network>>,
}

#[derive(Debug, Default, Deserialize)]
struct Slug {
    #[serde(default, deserialize_with = "nul")]
    slug: String,
    #[serde(default, deserialize_with = "nul")]
    name: String,
}

/// godo's `Droplet` (the fields discovery reads).
#[derive(Debug, Default, Deserialize)]
struct Droplet {
    #[serde(default, deserialize_with = "nul")]
    id: i64,
    #[serde(default, deserialize_with = "nul")]
    name: String,
    #[serde(default)]
    image: Option<Slug>,
    #[serde(default, deserialize_with = "nul")]
    size_slug: String,
    #[serde(default)]
    region: Option<Slug>,
    #[serde(default, deserialize_with = "nul")]
    status: String,
    #[serde(default, deserialize_with = "nul")]
    vpc_uuid: String,
    #[serde(default)]
    features: Option<Vec<String>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    networks: Option<Networks>,
}

/// The first address of `kind` (`private`, `public`) among `nets`, or empty.
fn address(nets: &Option<Vec<Network>>, kind: &str) -> String {
    nets.iter()
        .flatten()
        .find(|n| n.kind == kind)
        .map(|n| n.ip_address.clone())
        .unwrap_or_default()
}

#[derive(Debug, Default, Deserialize)]
struct DropletsPage {
    #[serde(default)]
    droplets: Option<Vec<Droplet>>,
    #[serde(default)]
    links: Option<Links>,
}

#[derive(Debug, Default, Deserialize)]
struct Connection {
    #[serde(default, deserialize_with = "nul")]
    host: String,
}

/// godo's `Database` (the fields discovery reads).
#[derive(Debug, Default, Deserialize)]
struct Database {
    #[serde(default, deserialize_with = "nul")]
    id: String,
    #[serde(default, deserialize_with = "nul")]
    name: String,
    #[serde(default, deserialize_with = "nul")]
    engine: String,
    #[serde(default, deserialize_with = "nul")]
    version: String,
    #[serde(default, deserialize_with = "nul")]
    status: String,
    #[serde(default, deserialize_with = "nul")]
    region: String,
    #[serde(default, deserialize_with = "nul")]
    size: String,
    #[serde(default, deserialize_with = "nul")]
    num_nodes: i64,
    #[serde(default)]
    connection: Option<Connection>,
    #[serde(default)]
    private_connection: Option<Connection>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
struct DatabasesPage {
    #[serde(default)]
    databases: Option<Vec<Database>>,
}

/// The targets of one page of droplets, added to `out`.
pub(crate) fn droplet_targets(
    body: &[u8],
    port: i64,
    out: &mut Vec<Labels>,
) -> Result<Option<Links>, String> {
    let page: DropletsPage = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    for d in page.droplets.into_iter().flatten() {
        let Some(nets) = d
            .networks
            .filter(|n| n.v4.as_ref().is_some_and(|v| !v.is_empty()))
        else {
            continue;
        };
        let public = address(&nets.v4, "public");
        let image = d.image.unwrap_or_default();
        let mut l = vec![
            (format!("{P}droplet_id"), d.id.to_string()),
            (format!("{P}droplet_name"), d.name),
            (format!("{P}image"), image.slug),
            (format!("{P}image_name"), image.name),
            (format!("{P}private_ipv4"), address(&nets.v4, "private")),
            (format!("{P}public_ipv4"), public.clone()),
            (format!("{P}public_ipv6"), address(&nets.v6, "public")),
            (format!("{P}region"), d.region.unwrap_or_default().slug),
            (format!("{P}size"), d.size_slug),
            (format!("{P}status"), d.status),
            (format!("{P}vpc"), d.vpc_uuid),
            (
                "__address__".to_owned(),
                join_host_port(&public, &go_port(port)),
            ),
        ];
        if let Some(f) = surrounded_list(&d.features) {
            l.push((format!("{P}features"), f));
        }
        if let Some(t) = surrounded_list(&d.tags) {
            l.push((format!("{P}tags"), t));
        }
        out.push(label_set(l));
    }
    Ok(page.links)
}

/// The targets of one page of database clusters, added to `out`; false if the page
/// listed none.
pub(crate) fn database_targets(
    body: &[u8],
    port: i64,
    out: &mut Vec<Labels>,
) -> Result<bool, String> {
    let page: DatabasesPage = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let dbs = page.databases.unwrap_or_default();
    let any = !dbs.is_empty();
    for c in dbs {
        let mut l = vec![
            (format!("{P}db_id"), c.id),
            (format!("{P}db_name"), c.name),
            (format!("{P}db_engine"), c.engine),
            (format!("{P}db_version"), c.version),
            (format!("{P}db_status"), c.status),
            (format!("{P}db_region"), c.region),
            (format!("{P}db_size"), c.size),
            (format!("{P}db_num_nodes"), c.num_nodes.to_string()),
        ];
        let mut host = String::new();
        if let Some(p) = c.private_connection {
            host = p.host.clone();
            l.push((format!("{P}db_private_host"), p.host));
        }
        if let Some(p) = c.connection {
            if host.is_empty() {
                host = p.host.clone();
            }
            l.push((format!("{P}db_host"), p.host));
        }
        if !host.is_empty() {
            l.push((
                "__address__".to_owned(),
                join_host_port(&host, &go_port(port)),
            ));
        }
        for t in c.tags.into_iter().flatten() {
            l.push((format!("{P}db_tag_{t}"), "true".to_owned()));
        }
        out.push(label_set(l));
    }
    Ok(any)
}

/// godo's `ErrorResponse.Error()` for an answer that is not 2xx: method, URL, status,
/// the request id and message from the body (a body that is not JSON is the message).
fn api_error(status: u16, body: &[u8], url: &str) -> String {
    #[derive(Default, Deserialize)]
    struct E {
        #[serde(default)]
        message: String,
        #[serde(default)]
        request_id: String,
    }
    let e = match serde_json::from_slice::<E>(body) {
        Ok(e) => e,
        Err(_) if body.is_empty() => E::default(),
        Err(_) => E {
            message: String::from_utf8_lossy(body).into_owned(),
            request_id: String::new(),
        },
    };
    if e.request_id.is_empty() {
        format!("GET {url}: {status} {}", e.message)
    } else {
        format!(
            "GET {url}: {status} (request {:?}) {}",
            e.request_id, e.message
        )
    }
}

/// A refresh of either role.
#[derive(Debug)]
struct Listing {
    base: String,
    port: i64,
    databases: bool,
    /// The page asked for (godo's `opts.Page`: 0 for the first page of droplets).
    page: i64,
    targets: Vec<Labels>,
}

impl Listing {
    fn url(&self) -> String {
        if self.databases {
            format!("{}/v2/databases?page={}&per_page=100", self.base, self.page)
        } else if self.page == 0 {
            format!("{}/v2/droplets", self.base)
        } else {
            format!("{}/v2/droplets?page={}", self.base, self.page)
        }
    }

    fn group(&mut self) -> Step {
        Step::Done(vec![TargetGroup {
            targets: std::mem::take(&mut self.targets),
            labels: Labels::empty(),
            source: if self.databases {
                "DigitalOcean Databases"
            } else {
                "DigitalOcean"
            }
            .into(),
        }])
    }
}

impl Pages for Listing {
    fn first(&mut self) -> Result<Call, String> {
        self.targets.clear();
        self.page = i64::from(self.databases);
        Ok(Call::get(self.url()))
    }

    fn answer(&mut self, status: u16, body: &[u8], url: &str) -> Result<Step, String> {
        if status / 100 != 2 {
            return Err(self.failed(api_error(status, body, url)));
        }
        if self.databases {
            let any =
                database_targets(body, self.port, &mut self.targets).map_err(|e| self.failed(e))?;
            if !any {
                return Ok(self.group());
            }
            // 3.x reads the links, but godo's `Databases.List` never fills them: the
            // next page is always the next number.
            self.page = self.page.wrapping_add(1);
            return Ok(Step::Next(Call::get(self.url())));
        }
        let links =
            droplet_targets(body, self.port, &mut self.targets).map_err(|e| self.failed(e))?;
        match links {
            Some(l) if !l.is_last() => {
                // A `prev` link godo cannot read fails the refresh unwrapped, as in 3.x.
                self.page = l.current()?.wrapping_add(1);
                Ok(Step::Next(Call::get(self.url())))
            }
            _ => Ok(self.group()),
        }
    }

    fn failed(&self, e: String) -> String {
        let what = if self.databases {
            "database clusters"
        } else {
            "droplets"
        };
        format!("error while listing {what} page {}: {e}", self.page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        Drive, block, drive_block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    fn drive(yaml: &str, base: Option<&str>) -> Drive<Box<dyn SdMachine>> {
        drive_block::<DigitalOcean>(yaml, base)
    }

    /// A droplet as DigitalOcean's API reference shows one (`GET /v2/droplets`).
    fn droplet(id: i64, public: &str, private: &str) -> serde_json::Value {
        serde_json::json!({
            "id": id, "name": format!("web-{id}"), "memory": 1024, "vcpus": 1, "disk": 25,
            "locked": false, "status": "active", "created_at": "2020-07-21T18:37:44Z",
            "features": ["backups", "private_networking", "ipv6"],
            "image": {"id": 63663980, "name": "20.04 (LTS) x64", "slug": "ubuntu-20-04-x64",
                      "distribution": "Ubuntu", "public": true},
            "size_slug": "s-1vcpu-1gb",
            "networks": {
                "v4": [
                    {"ip_address": private, "netmask": "255.255.240.0", "gateway": "10.10.0.1", "type": "private"},
                    {"ip_address": public, "netmask": "255.255.240.0", "gateway": "104.236.0.1", "type": "public"}
                ],
                "v6": [{"ip_address": "2604:a880:0:1010::18a:a001", "netmask": 64,
                        "gateway": "2604:a880:0:1010::1", "type": "public"}]
            },
            "region": {"name": "New York 3", "slug": "nyc3", "available": true},
            "tags": ["web", "env:prod"],
            "vpc_uuid": "760e09ef-dc84-11e8-981e-3cfdfeaae000"
        })
    }

    #[test]
    fn droplets_are_listed_page_by_page_with_3x_labels() {
        let mut d = drive("bearer_token: T\nport: 9100", Some("http://127.0.0.1:9"));
        let (id, url) = d.one();
        assert_eq!(url, "http://127.0.0.1:9/v2/droplets");
        let mut bare = droplet(3, "192.0.2.3", "10.0.0.3");
        bare["networks"] = serde_json::json!({"v4": [], "v6": []});
        let mut untagged = droplet(2, "192.0.2.2", "10.0.0.2");
        untagged["tags"] = serde_json::json!([]);
        untagged["features"] = serde_json::Value::Null;
        // A droplet from a snapshot: its image has no slug (`null`, as Go reads "").
        untagged["image"]["slug"] = serde_json::Value::Null;
        untagged["vpc_uuid"] = serde_json::Value::Null;
        let first = serde_json::json!({
            "droplets": [droplet(1, "192.0.2.1", "10.0.0.1"), bare],
            "links": {"pages": {"next": "https://api.digitalocean.com/v2/droplets?page=2&per_page=2",
                                "last": "https://api.digitalocean.com/v2/droplets?page=2&per_page=2"}},
            "meta": {"total": 3}
        });
        d.respond(id, 200, &[], &first.to_string());
        let (id, url) = d.one();
        assert_eq!(url, "http://127.0.0.1:9/v2/droplets?page=2");
        let last = serde_json::json!({
            "droplets": [untagged],
            "links": {"pages": {"first": "https://api.digitalocean.com/v2/droplets?page=1&per_page=2",
                                "prev": "https://api.digitalocean.com/v2/droplets?page=1&per_page=2"}},
            "meta": {"total": 3}
        });
        d.respond(id, 200, &[], &last.to_string());
        assert!(d.out.failures.is_empty(), "{:?}", d.out.failures);
        let [groups] = &d.out.updates[..] else {
            panic!("{:?}", d.out.updates)
        };
        assert_eq!(groups[0].source, "DigitalOcean");
        let t = &groups[0].targets;
        assert_eq!(t.len(), 2, "the droplet without IPv4 networks is left out");
        assert_eq!(
            t[0].to_string(),
            r#"{__address__="192.0.2.1:9100", __meta_digitalocean_droplet_id="1", __meta_digitalocean_droplet_name="web-1", __meta_digitalocean_features=",backups,private_networking,ipv6,", __meta_digitalocean_image="ubuntu-20-04-x64", __meta_digitalocean_image_name="20.04 (LTS) x64", __meta_digitalocean_private_ipv4="10.0.0.1", __meta_digitalocean_public_ipv4="192.0.2.1", __meta_digitalocean_public_ipv6="2604:a880:0:1010::18a:a001", __meta_digitalocean_region="nyc3", __meta_digitalocean_size="s-1vcpu-1gb", __meta_digitalocean_status="active", __meta_digitalocean_tags=",web,env:prod,", __meta_digitalocean_vpc="760e09ef-dc84-11e8-981e-3cfdfeaae000"}"#
        );
        assert_eq!(t[1].get("__meta_digitalocean_tags"), None);
        assert_eq!(t[1].get("__meta_digitalocean_features"), None);
        // Empty, as Go reads `null`: an empty label is no label.
        assert_eq!(t[1].get("__meta_digitalocean_image"), None);
        assert_eq!(t[1].get("__meta_digitalocean_vpc"), None);
        assert_eq!(
            t[1].get("__meta_digitalocean_image_name"),
            Some("20.04 (LTS) x64")
        );
    }

    #[test]
    fn the_token_is_the_clients_and_the_api_is_digitaloceans() {
        let mut d = drive("bearer_token: T", None);
        let s = d.started();
        assert_eq!(s[0].1, "https://api.digitalocean.com/v2/droplets");
        assert!(
            s[0].2
                .contains(&("Accept".into(), "application/json".into()))
        );
        assert!(
            s[0].2
                .contains(&("Authorization".into(), "Bearer T".into()))
        );
        // A token in a file is read by the shell for each request.
        let mut d = drive("authorization: {credentials_file: /run/do-token}", None);
        d.started();
        let Some(crate::io::IoCommand::Start(_, crate::io::IoOp::Http(r))) = d.io.queue.first()
        else {
            panic!("an HTTP request")
        };
        assert_eq!(
            r.credentials_file,
            Some(crate::io::CredentialsFile::Credentials {
                kind: "Bearer".into(),
                path: "/run/do-token".into()
            })
        );
    }

    #[test]
    fn databases_are_listed_until_an_empty_page() {
        let mut d = drive("role: databases\nport: 25060", Some("http://do"));
        let (id, url) = d.one();
        assert_eq!(url, "http://do/v2/databases?page=1&per_page=100");
        let page = serde_json::json!({"databases": [
            {"id": "9cc10173-e9ea-4176-9dbc-a4cee4c4ff30", "name": "backend", "engine": "pg",
             "version": "14", "connection": {"host": "backend-do-user-19081923-0.db.ondigitalocean.com", "port": 25060},
             "private_connection": {"host": "private-backend-do-user-19081923-0.db.ondigitalocean.com", "port": 25060},
             "num_nodes": 2, "size": "db-s-2vcpu-4gb", "region": "nyc3", "status": "online",
             "tags": ["production", "team-a"]},
            {"id": "b", "name": "cache", "engine": "redis", "version": "7", "num_nodes": 1,
             "size": "db-s-1vcpu-1gb", "region": "ams3", "status": "creating", "tags": null},
            {"id": "c", "name": "public-only", "engine": "mysql", "version": "8",
             "connection": {"host": "public.example"}, "num_nodes": 1, "size": "s", "region": "fra1", "status": "online"}
        ]});
        d.respond(id, 200, &[], &page.to_string());
        let (id, url) = d.one();
        assert_eq!(url, "http://do/v2/databases?page=2&per_page=100");
        d.respond(id, 200, &[], r#"{"databases": []}"#);
        let t = &d.out.updates[0][0].targets;
        assert_eq!(d.out.updates[0][0].source, "DigitalOcean Databases");
        assert_eq!(
            t[0].to_string(),
            r#"{__address__="private-backend-do-user-19081923-0.db.ondigitalocean.com:25060", __meta_digitalocean_db_engine="pg", __meta_digitalocean_db_host="backend-do-user-19081923-0.db.ondigitalocean.com", __meta_digitalocean_db_id="9cc10173-e9ea-4176-9dbc-a4cee4c4ff30", __meta_digitalocean_db_name="backend", __meta_digitalocean_db_num_nodes="2", __meta_digitalocean_db_private_host="private-backend-do-user-19081923-0.db.ondigitalocean.com", __meta_digitalocean_db_region="nyc3", __meta_digitalocean_db_size="db-s-2vcpu-4gb", __meta_digitalocean_db_status="online", __meta_digitalocean_db_tag_production="true", "__meta_digitalocean_db_tag_team-a"="true", __meta_digitalocean_db_version="14"}"#
        );
        assert_eq!(t[1].get("__address__"), None, "no host, no address");
        assert_eq!(t[2].get("__address__"), Some("public.example:25060"));
    }

    #[test]
    fn failures_are_worded_as_godo_and_keep_the_targets() {
        let mut d = drive("{}", Some("http://do"));
        let (id, _) = d.one();
        d.respond(
            id,
            401,
            &[],
            r#"{"id":"unauthorized","message":"Unable to authenticate you","request_id":"4d9d8375-3c56-4925-a3e7-eb137fed17e9"}"#,
        );
        assert_eq!(
            d.out.failures,
            [
                r#"error while listing droplets page 0: GET http://do/v2/droplets: 401 (request "4d9d8375-3c56-4925-a3e7-eb137fed17e9") Unable to authenticate you"#
            ]
        );
        d.advance();
        let (id, _) = d.one();
        d.respond(
            id,
            200,
            &[],
            &serde_json::json!({"droplets": [droplet(1, "192.0.2.1", "10.0.0.1")],
                "links": {"pages": {"next": "/v2/droplets?page=2", "last": "/v2/droplets?page=2"}}})
            .to_string(),
        );
        let (id, _) = d.one();
        d.respond(id, 200, &[], r#"{"droplets": [{"id": "#);
        assert_eq!(
            d.out.failures[1],
            "error while listing droplets page 2: EOF while parsing a value at line 1 column 21"
        );
        d.advance();
        let (id, _) = d.one();
        d.respond(
            id,
            200,
            &[],
            r#"{"droplets": [], "links": {"pages": {"prev": "x?page=1", "next": "y", "last": "y"}}}"#,
        );
        assert_eq!(
            d.out.failures[2],
            r#"parse "x?page=1": invalid URI for request"#
        );
        assert!(
            d.out.updates.is_empty(),
            "every refresh failed: nothing sent"
        );
        d.advance();
        let (id, _) = d.one();
        d.feed(id, IoEvent::Failed("connection refused"));
        assert_eq!(
            d.out.failures[3],
            r#"error while listing droplets page 0: Get "http://do/v2/droplets": connection refused"#
        );
    }

    #[test]
    fn godo_pages() {
        let l = |prev: &str, next: &str| Links {
            pages: Some(PageLinks {
                prev: prev.into(),
                next: next.into(),
            }),
        };
        assert_eq!(Links { pages: None }.current(), Ok(1));
        assert_eq!(l("", "/n?page=2").current(), Ok(1));
        assert_eq!(
            l("https://a/v2/droplets?per_page=2&page=4", "").current(),
            Ok(5)
        );
        assert_eq!(
            l("/p?page=x", "").current(),
            Err(r#"strconv.Atoi: parsing "x": invalid syntax"#.into())
        );
        assert_eq!(l("", "").current(), Ok(0));
        assert!(l("/p?page=1", "").is_last());
        assert!(!l("", "/n").is_last());
        assert_eq!(go_port(-1), "18446744073709551615");
    }

    const KEY: &str = "digitalocean_sd_configs";

    #[test]
    fn defaults_are_applied() {
        let c: DigitalOceanSdConfig = block(KEY, "{}");
        assert_eq!(c.role.as_str(), "droplets");
        assert_eq!(
            (c.port, c.refresh_interval),
            (80, PromDuration::from_secs(60))
        );
        assert_eq!(c.http_client, HttpClientConfig::default());
        let c: DigitalOceanSdConfig = block(KEY, "role: databases\nport: 25060");
        assert_eq!((c.role.as_str(), c.port), ("databases", 25060));
        // The Go struct's untagged client field is a key too.
        let _: DigitalOceanSdConfig = block(KEY, "httpclient: {timeout: 5s}");
    }

    #[test]
    fn role_is_checked() {
        assert_eq!(
            error_at(KEY, "role: Droplets"),
            (4, 15, r#"unknown DigitalOcean SD role "Droplets""#.into())
        );
        assert_eq!(
            error_at(KEY, "port: 1\nrole: ~"),
            (5, 15, "role missing (one of: droplets, databases)".into())
        );
    }

    #[test]
    fn client_is_validated_with_resolved_paths() {
        assert_eq!(
            error(KEY, "oauth2: {client_id: x}"),
            "oauth2 token_url must be configured"
        );
        let c: DigitalOceanSdConfig = block(
            KEY,
            "bearer_token_file: /run/token\ntls_config: {cert_file: c.pem, key_file: k.pem}",
        );
        assert_eq!(c.http_client.tls_config.key_file, "/etc/prometheus/k.pem");
        let auth = c.http_client.authorization.expect("bearer token");
        assert_eq!(auth.credentials_file, "/run/token");
    }

    #[test]
    fn null_entry_and_unknown_fields() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "role: droplets", "digitalocean.plain");
        assert_eq!(
            error(KEY, "httpclient: {jar: x}"),
            "field jar not found in type http.Client"
        );
    }
}
