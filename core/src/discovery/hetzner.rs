//! `hetzner_sd_configs`: servers of the Hetzner Cloud API (`hcloud`) or the Robot API
//! (`robot`), listed every `refresh_interval`. Validation follows 3.x's
//! `discovery/hetzner` (`Role.UnmarshalYAML`, `SDConfig.UnmarshalYAML`); the refresh
//! follows `hcloudDiscovery.refresh` (`hcloud.go`) and `robotDiscovery.refresh`
//! (`robot.go`):
//!
//! - `hcloud`: hcloud-go's `Server.AllWithOpts` — `GET /servers?[label_selector=…&]
//!   page=N&per_page=50` from page 1 while `meta.pagination.next_page` names another —
//!   then `Network.All` (`GET /networks?page=N&per_page=50` the same way), at
//!   `https://api.hetzner.cloud/v1`. A target per server at its public IPv4 address
//!   (`<nil>` when it has none, as Go prints a nil address) and `port`, with the names of
//!   its private networks from the network list.
//! - `robot`: `GET /server` at `https://robot-ws.your-server.de`, one answer, a target
//!   per dedicated server.
//!
//! Credentials are the block's HTTP client's (a bearer token for hcloud, basic auth for
//! robot), as in 3.x. One group, source `hetzner`; failures (hcloud's `message (code)`,
//! robot's `non 2xx status` wording) keep the last group. Both roles are reached at
//! one test-only API base when one is set.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::groups::{TargetGroup, go_port, join_host_port, label_set, nul, sanitize};
use super::mechanism::{
    Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, go_enum, whole,
};
use super::paged::{self, Call, Pages, Step};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;
use crate::labels::Labels;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Hetzner;

go_enum! {
    /// `role` of `hetzner_sd_configs`.
    pub struct HetznerRole: ["robot", "hcloud"] else "unknown role {}";
}

with_http_client! {
    /// `hetzner_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawHetznerSd {
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        port: Nullable<i64>,
        #[serde(default)]
        role: Option<HetznerRole>,
        #[serde(default)]
        label_selector: LenientString,
    }
}

/// Hetzner discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HetznerSdConfig {
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// `robot` or `hcloud`.
    pub role: HetznerRole,
    /// Label selector of the hcloud API.
    pub label_selector: String,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Hetzner {
    const KEY: &'static str = "hetzner_sd_configs";
    const NAME: &'static str = "hetzner";
    const GO_TYPE: &'static str = "hetzner.plain";
    const RUNS: bool = true;
    const EXAMPLE: Option<&'static str> = Some("{role: hcloud, port: 9100}");
    type Raw = RawHetznerSd;
    type Config = HetznerSdConfig;

    fn validate(mut raw: RawHetznerSd, cx: &SdContext<'_>) -> Result<HetznerSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let Some(role) = raw.role.take() else {
            return Err((at("role"), "role missing (one of: robot, hcloud)".into()));
        };
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(HetznerSdConfig {
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            port: raw.port.onto(80),
            role,
            label_selector: raw.label_selector.0,
            http_client,
        })
    }

    fn machine(cfg: &HetznerSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        let robot = cfg.role.as_str() == "robot";
        let default = if robot { ROBOT_API } else { HCLOUD_API };
        let pages = Listing {
            base: cx.env.api_base(Hetzner::NAME, default),
            port: cfg.port,
            robot,
            label_selector: cfg.label_selector.clone(),
            stage: Stage::Servers,
            page: 1,
            servers: Vec::new(),
            networks: BTreeMap::new(),
        };
        Some(paged::machine(
            pages,
            &cfg.http_client,
            &[],
            cfg.refresh_interval.to_std(),
            ERROR_BODY,
            cx,
        ))
    }
}

/// hcloud-go's `Endpoint`.
const HCLOUD_API: &str = "https://api.hetzner.cloud/v1";
/// 3.x's default `robotEndpoint`.
const ROBOT_API: &str = "https://robot-ws.your-server.de";
/// How much of an error answer is kept (hcloud's error object).
const ERROR_BODY: usize = 4096;

const P: &str = "__meta_hetzner_";

#[derive(Debug, Default, Deserialize)]
struct Pagination {
    #[serde(default)]
    next_page: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct Meta {
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Debug, Default, Deserialize)]
struct Ipv4 {
    #[serde(default)]
    ip: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Ipv6 {
    #[serde(default)]
    ip: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct PublicNet {
    #[serde(default)]
    ipv4: Option<Ipv4>,
    #[serde(default)]
    ipv6: Option<Ipv6>,
}

#[derive(Debug, Default, Deserialize)]
struct PrivateNet {
    #[serde(default, deserialize_with = "nul")]
    network: i64,
    #[serde(default)]
    ip: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ServerType {
    #[serde(default, deserialize_with = "nul")]
    name: String,
    #[serde(default, deserialize_with = "nul")]
    cores: i64,
    #[serde(default, deserialize_with = "nul")]
    memory: f64,
    #[serde(default, deserialize_with = "nul")]
    disk: i64,
    #[serde(default, deserialize_with = "nul")]
    cpu_type: String,
}

#[derive(Debug, Default, Deserialize)]
struct Location {
    #[serde(default, deserialize_with = "nul")]
    name: String,
    #[serde(default, deserialize_with = "nul")]
    network_zone: String,
}

#[derive(Debug, Default, Deserialize)]
struct Image {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "nul")]
    description: String,
    #[serde(default, deserialize_with = "nul")]
    os_flavor: String,
    #[serde(default)]
    os_version: Option<String>,
}

/// A server of the Cloud API (the fields discovery reads).
#[derive(Debug, Default, Deserialize)]
struct Server {
    #[serde(default, deserialize_with = "nul")]
    id: i64,
    #[serde(default, deserialize_with = "nul")]
    name: String,
    #[serde(default, deserialize_with = "nul")]
    status: String,
    #[serde(default)]
    public_net: Option<PublicNet>,
    #[serde(default)]
    private_net: Option<Vec<PrivateNet>>,
    #[serde(default)]
    server_type: Option<ServerType>,
    #[serde(default)]
    location: Option<Location>,
    #[serde(default)]
    image: Option<Image>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
struct ServersPage {
    #[serde(default)]
    servers: Option<Vec<Server>>,
    #[serde(default)]
    meta: Option<Meta>,
}

#[derive(Debug, Default, Deserialize)]
struct Network {
    #[serde(default, deserialize_with = "nul")]
    id: i64,
    #[serde(default, deserialize_with = "nul")]
    name: String,
}

#[derive(Debug, Default, Deserialize)]
struct NetworksPage {
    #[serde(default)]
    networks: Option<Vec<Network>>,
    #[serde(default)]
    meta: Option<Meta>,
}

/// The next page a listing's `meta.pagination` names (hcloud-go's `iterPages`).
fn next_page(meta: Option<Meta>) -> Option<i64> {
    meta?.pagination?.next_page.filter(|&n| n != 0)
}

/// An address as Go's `net.IP.String()` prints it: `<nil>` for none (or one that does
/// not parse, which hcloud-go leaves nil).
fn ip_text(ip: Option<&str>) -> String {
    match ip.map(str::parse::<core::net::IpAddr>) {
        Some(Ok(a)) => a.to_string(),
        _ => "<nil>".to_owned(),
    }
}

/// An IPv6 network as Go's `(*net.IPNet).String()` prints it (`<nil>` for none).
fn network_text(net: Option<&str>) -> String {
    let Some((ip, bits)) = net.and_then(|n| n.split_once('/')) else {
        return "<nil>".to_owned();
    };
    match (ip.parse::<core::net::Ipv6Addr>(), bits.parse::<u8>()) {
        (Ok(a), Ok(b)) if b <= 128 => {
            let mask = if b == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(b))
            };
            let masked = core::net::Ipv6Addr::from(u128::from(a) & mask);
            format!("{masked}/{b}")
        }
        _ => "<nil>".to_owned(),
    }
}

/// The targets of the servers, with their private networks named from `networks`.
fn hcloud_targets(
    servers: Vec<Server>,
    networks: &BTreeMap<i64, String>,
    port: i64,
) -> Vec<Labels> {
    let mut out = Vec::with_capacity(servers.len());
    for s in servers {
        let public = s.public_net.unwrap_or_default();
        let ipv4 = ip_text(public.ipv4.as_ref().and_then(|x| x.ip.as_deref()));
        let ipv6 = network_text(public.ipv6.as_ref().and_then(|x| x.ip.as_deref()));
        // hcloud-go reads the server's `location` (its `datacenter` no longer).
        let location = s.location.unwrap_or_default();
        let st = s.server_type.unwrap_or_default();
        let h = "hcloud_";
        let mut l = vec![
            (format!("{P}role"), "hcloud".to_owned()),
            (format!("{P}server_id"), s.id.to_string()),
            (format!("{P}server_name"), s.name),
            (format!("{P}public_ipv4"), ipv4.clone()),
            (format!("{P}public_ipv6_network"), ipv6),
            (format!("{P}server_status"), s.status),
            (format!("{P}{h}location"), location.name.clone()),
            (
                format!("{P}{h}location_network_zone"),
                location.network_zone.clone(),
            ),
            (format!("{P}{h}datacenter_location"), location.name),
            (
                format!("{P}{h}datacenter_location_network_zone"),
                location.network_zone,
            ),
            (format!("{P}{h}server_type"), st.name),
            (format!("{P}{h}cpu_cores"), st.cores.to_string()),
            (format!("{P}{h}cpu_type"), st.cpu_type),
            // Go's `int(float32)`: the fraction dropped.
            (
                format!("{P}{h}memory_size_gb"),
                (st.memory as f32 as i64).to_string(),
            ),
            (format!("{P}{h}disk_size_gb"), st.disk.to_string()),
            (
                "__address__".to_owned(),
                join_host_port(&ipv4, &go_port(port)),
            ),
        ];
        if let Some(img) = s.image {
            l.push((format!("{P}{h}image_name"), img.name.unwrap_or_default()));
            l.push((format!("{P}{h}image_description"), img.description));
            l.push((
                format!("{P}{h}image_os_version"),
                img.os_version.unwrap_or_default(),
            ));
            l.push((format!("{P}{h}image_os_flavor"), img.os_flavor));
        }
        for pn in s.private_net.into_iter().flatten() {
            if let Some(name) = networks.get(&pn.network) {
                l.push((
                    format!("{P}{h}private_ipv4_{}", sanitize(name)),
                    ip_text(pn.ip.as_deref()),
                ));
            }
        }
        for (k, v) in s.labels.into_iter().flatten() {
            let k = sanitize(&k);
            l.push((format!("{P}{h}labelpresent_{k}"), "true".to_owned()));
            l.push((format!("{P}{h}label_{k}"), v));
        }
        out.push(label_set(l));
    }
    out
}

/// A dedicated server of the Robot API (3.x's `serversList` entry).
#[derive(Debug, Default, Deserialize)]
struct RobotServer {
    #[serde(default, deserialize_with = "nul")]
    server_ip: String,
    #[serde(default, deserialize_with = "nul")]
    server_number: i64,
    #[serde(default, deserialize_with = "nul")]
    server_name: String,
    #[serde(default, deserialize_with = "nul")]
    dc: String,
    #[serde(default, deserialize_with = "nul")]
    status: String,
    #[serde(default, deserialize_with = "nul")]
    product: String,
    #[serde(default, deserialize_with = "nul")]
    cancelled: bool,
    #[serde(default)]
    subnet: Option<Vec<RobotSubnet>>,
}

#[derive(Debug, Default, Deserialize)]
struct RobotSubnet {
    #[serde(default, deserialize_with = "nul")]
    ip: String,
    #[serde(default, deserialize_with = "nul")]
    mask: String,
}

#[derive(Debug, Default, Deserialize)]
struct RobotEntry {
    #[serde(default, deserialize_with = "nul")]
    server: RobotServer,
}

/// The targets of the Robot API's `GET /server` answer.
pub(crate) fn robot_targets(body: &[u8], port: i64) -> Result<Vec<Labels>, String> {
    let list: Vec<RobotEntry> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(list
        .into_iter()
        .map(|e| {
            let s = e.server;
            let dc = s.dc.to_lowercase();
            let mut l = vec![
                (format!("{P}role"), "robot".to_owned()),
                (format!("{P}server_id"), s.server_number.to_string()),
                (format!("{P}server_name"), s.server_name),
                (format!("{P}datacenter"), dc.clone()),
                (format!("{P}public_ipv4"), s.server_ip.clone()),
                (format!("{P}server_status"), s.status),
                (format!("{P}robot_datacenter"), dc),
                (format!("{P}robot_product"), s.product),
                (format!("{P}robot_cancelled"), s.cancelled.to_string()),
                (
                    "__address__".to_owned(),
                    join_host_port(&s.server_ip, &go_port(port)),
                ),
            ];
            // The first subnet that is not IPv4 (one that does not parse counts, as
            // `net.ParseIP(…).To4() == nil` counts it).
            let v4 = |ip: &str| match ip.parse::<core::net::IpAddr>() {
                Ok(core::net::IpAddr::V4(_)) => true,
                Ok(core::net::IpAddr::V6(a)) => a.to_ipv4_mapped().is_some(),
                Err(_) => false,
            };
            if let Some(n) = s.subnet.iter().flatten().find(|n| !v4(&n.ip)) {
                l.push((
                    format!("{P}public_ipv6_network"),
                    format!("{}/{}", n.ip, n.mask),
                ));
            }
            label_set(l)
        })
        .collect())
}

/// hcloud-go's error for an answer that is not 2xx: `<message> (<code>)` from the
/// body's `error` object, else the status.
fn hcloud_error(status: u16, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct E {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<E>(body) {
        Ok(e) => format!("{} ({})", e.error.message, e.error.code),
        Err(_) => format!("hcloud: server responded with status code {status}"),
    }
}

/// Where an hcloud refresh is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Servers,
    Networks,
}

/// A refresh of either role.
#[derive(Debug)]
struct Listing {
    base: String,
    port: i64,
    robot: bool,
    label_selector: String,
    stage: Stage,
    page: i64,
    servers: Vec<Server>,
    networks: BTreeMap<i64, String>,
}

impl Listing {
    fn url(&self) -> String {
        match self.stage {
            Stage::Servers => {
                let mut q = String::new();
                if !self.label_selector.is_empty() {
                    q = format!(
                        "label_selector={}&",
                        crate::gourl::query_escape(&self.label_selector)
                    );
                }
                format!("{}/servers?{q}page={}&per_page=50", self.base, self.page)
            }
            Stage::Networks => format!("{}/networks?page={}&per_page=50", self.base, self.page),
        }
    }
}

impl Pages for Listing {
    fn first(&mut self) -> Result<Call, String> {
        self.stage = Stage::Servers;
        self.page = 1;
        self.servers.clear();
        self.networks.clear();
        if self.robot {
            return Ok(Call::get(format!("{}/server", self.base)));
        }
        Ok(Call::get(self.url()))
    }

    fn answer(&mut self, status: u16, body: &[u8], _url: &str) -> Result<Step, String> {
        if self.robot {
            if status / 100 != 2 {
                return Err(format!(
                    "non 2xx status '{status}' response during hetzner service discovery with role robot"
                ));
            }
            let targets = robot_targets(body, self.port)?;
            return Ok(Step::Done(vec![TargetGroup {
                targets,
                labels: Labels::empty(),
                source: "hetzner".into(),
            }]));
        }
        if status / 100 != 2 {
            return Err(hcloud_error(status, body));
        }
        let next = match self.stage {
            Stage::Servers => {
                let page: ServersPage = serde_json::from_slice(body).map_err(|e| e.to_string())?;
                self.servers.extend(page.servers.into_iter().flatten());
                next_page(page.meta)
            }
            Stage::Networks => {
                let page: NetworksPage = serde_json::from_slice(body).map_err(|e| e.to_string())?;
                for n in page.networks.into_iter().flatten() {
                    self.networks.insert(n.id, n.name);
                }
                next_page(page.meta)
            }
        };
        match (self.stage, next) {
            (_, Some(n)) => self.page = n,
            (Stage::Servers, None) => {
                self.stage = Stage::Networks;
                self.page = 1;
            }
            (Stage::Networks, None) => {
                let servers = std::mem::take(&mut self.servers);
                let targets = hcloud_targets(servers, &self.networks, self.port);
                return Ok(Step::Done(vec![TargetGroup {
                    targets,
                    labels: Labels::empty(),
                    source: "hetzner".into(),
                }]));
            }
        }
        Ok(Step::Next(Call::get(self.url())))
    }

    fn failed(&self, e: String) -> String {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        Drive, block, drive_block, error, error_at, null_entry_is_refused, unknown_field_names,
    };
    use crate::io::IoEvent;

    const KEY: &str = "hetzner_sd_configs";

    fn drive(yaml: &str, base: Option<&str>) -> Drive<Box<dyn SdMachine>> {
        drive_block::<Hetzner>(yaml, base)
    }

    /// A server as the Hetzner Cloud API reference shows one (`GET /servers`).
    fn server(id: i64) -> serde_json::Value {
        serde_json::json!({
            "id": id, "name": format!("my-server-{id}"), "status": "running",
            "created": "2016-01-30T23:50:00+00:00",
            "public_net": {
                "ipv4": {"id": 42, "ip": "1.2.3.4", "blocked": false, "dns_ptr": "server01.example.com"},
                "ipv6": {"id": 42, "ip": "2001:db8::/64", "blocked": false, "dns_ptr": []},
                "floating_ips": [478], "firewalls": []
            },
            "private_net": [{"network": 4711, "ip": "10.0.0.2", "alias_ips": [], "mac_address": "86:00:ff:2a:7d:e1"}],
            "server_type": {"id": 1, "name": "cx22", "description": "CX22", "cores": 2, "memory": 4.0,
                            "disk": 40, "deprecated": false, "storage_type": "local", "cpu_type": "shared",
                            "architecture": "x86"},
            "datacenter": {"id": 1, "name": "fsn1-dc8", "description": "Falkenstein 1 DC 8",
                           "location": {"id": 1, "name": "fsn1", "description": "Falkenstein DC Park 1",
                                        "country": "DE", "city": "Falkenstein", "latitude": 50.47612,
                                        "longitude": 12.370071, "network_zone": "eu-central"}},
            "location": {"id": 1, "name": "fsn1", "description": "Falkenstein DC Park 1",
                         "country": "DE", "city": "Falkenstein", "latitude": 50.47612,
                         "longitude": 12.370071, "network_zone": "eu-central"},
            "image": {"id": 4711, "type": "system", "status": "available", "name": "ubuntu-24.04",
                      "description": "Ubuntu 24.04", "os_flavor": "ubuntu", "os_version": "24.04"},
            "labels": {"env": "prod", "team.name": "edge"}
        })
    }

    fn pagination(page: i64, next: Option<i64>) -> serde_json::Value {
        serde_json::json!({"pagination": {"page": page, "per_page": 50, "previous_page": null,
                                          "next_page": next, "last_page": 2, "total_entries": 3}})
    }

    #[test]
    fn hcloud_servers_and_networks_are_listed_page_by_page() {
        let mut d = drive(
            "role: hcloud\nport: 9100\nlabel_selector: env=prod\nbearer_token: T",
            Some("http://h/v1"),
        );
        let s = d.started();
        assert_eq!(
            s[0].1,
            "http://h/v1/servers?label_selector=env%3Dprod&page=1&per_page=50"
        );
        assert!(
            s[0].2
                .contains(&("Authorization".into(), "Bearer T".into()))
        );
        d.respond(
            s[0].0,
            200,
            &[],
            &serde_json::json!({"servers": [server(1), server(2)], "meta": pagination(1, Some(2))})
                .to_string(),
        );
        let (id, url) = d.one();
        assert_eq!(
            url,
            "http://h/v1/servers?label_selector=env%3Dprod&page=2&per_page=50"
        );
        let mut bare = server(3);
        bare["public_net"]["ipv4"] = serde_json::Value::Null;
        bare["image"] = serde_json::Value::Null;
        bare["private_net"] = serde_json::json!([]);
        bare["location"] = serde_json::json!({"name": "hel1", "network_zone": "eu-central"});
        bare["server_type"]["cpu_type"] = serde_json::Value::Null;
        bare["name"] = serde_json::Value::Null;
        d.respond(
            id,
            200,
            &[],
            &serde_json::json!({"servers": [bare], "meta": pagination(2, None)}).to_string(),
        );
        let (id, url) = d.one();
        assert_eq!(url, "http://h/v1/networks?page=1&per_page=50");
        d.respond(
            id,
            200,
            &[],
            r#"{"networks": [{"id": 4711, "name": "my-net", "ip_range": "10.0.0.0/16"}], "meta": {"pagination": {"page": 1, "next_page": null}}}"#,
        );
        assert!(d.out.failures.is_empty(), "{:?}", d.out.failures);
        let g = &d.out.updates[0][0];
        assert_eq!(g.source, "hetzner");
        assert_eq!(
            g.targets[0].to_string(),
            r#"{__address__="1.2.3.4:9100", __meta_hetzner_hcloud_cpu_cores="2", __meta_hetzner_hcloud_cpu_type="shared", __meta_hetzner_hcloud_datacenter_location="fsn1", __meta_hetzner_hcloud_datacenter_location_network_zone="eu-central", __meta_hetzner_hcloud_disk_size_gb="40", __meta_hetzner_hcloud_image_description="Ubuntu 24.04", __meta_hetzner_hcloud_image_name="ubuntu-24.04", __meta_hetzner_hcloud_image_os_flavor="ubuntu", __meta_hetzner_hcloud_image_os_version="24.04", __meta_hetzner_hcloud_label_env="prod", __meta_hetzner_hcloud_label_team_name="edge", __meta_hetzner_hcloud_labelpresent_env="true", __meta_hetzner_hcloud_labelpresent_team_name="true", __meta_hetzner_hcloud_location="fsn1", __meta_hetzner_hcloud_location_network_zone="eu-central", __meta_hetzner_hcloud_memory_size_gb="4", __meta_hetzner_hcloud_private_ipv4_my_net="10.0.0.2", __meta_hetzner_hcloud_server_type="cx22", __meta_hetzner_public_ipv4="1.2.3.4", __meta_hetzner_public_ipv6_network="2001:db8::/64", __meta_hetzner_role="hcloud", __meta_hetzner_server_id="1", __meta_hetzner_server_name="my-server-1", __meta_hetzner_server_status="running"}"#
        );
        let t = &g.targets[2];
        assert_eq!(t.get("__address__"), Some("<nil>:9100"), "Go's nil address");
        assert_eq!(t.get("__meta_hetzner_hcloud_image_name"), None);
        assert_eq!(t.get("__meta_hetzner_hcloud_location"), Some("hel1"));
        // `null` reads as Go's zero value, and an empty label is no label.
        assert_eq!(t.get("__meta_hetzner_hcloud_cpu_type"), None);
        assert_eq!(t.get("__meta_hetzner_server_name"), None);
        assert_eq!(t.get("__meta_hetzner_hcloud_cpu_cores"), Some("2"));
    }

    #[test]
    fn hcloud_failures_are_worded_as_hcloud_go() {
        let mut d = drive("role: hcloud", None);
        let (id, url) = d.one();
        assert_eq!(
            url,
            "https://api.hetzner.cloud/v1/servers?page=1&per_page=50"
        );
        d.respond(
            id,
            401,
            &[],
            r#"{"error": {"code": "unauthorized", "message": "unable to authenticate", "details": {}}}"#,
        );
        assert_eq!(d.out.failures, ["unable to authenticate (unauthorized)"]);
        d.advance();
        let (id, _) = d.one();
        d.respond(id, 502, &[], "<html>bad gateway</html>");
        assert_eq!(
            d.out.failures[1],
            "hcloud: server responded with status code 502"
        );
        d.advance();
        let (id, _) = d.one();
        d.feed(id, IoEvent::Failed("connection refused"));
        assert_eq!(
            d.out.failures[2],
            r#"Get "https://api.hetzner.cloud/v1/servers?page=1&per_page=50": connection refused"#
        );
        assert!(d.out.updates.is_empty());
    }

    #[test]
    fn robot_servers_are_read_from_one_answer() {
        let mut d = drive(
            "role: robot\nbasic_auth: {username: u, password: p}",
            Some("http://r"),
        );
        let s = d.started();
        assert_eq!(s[0].1, "http://r/server");
        assert!(
            s[0].2
                .contains(&("Authorization".into(), "Basic dTpw".into()))
        );
        // The Robot API reference's `GET /server` answer.
        let body = r#"[
          {"server": {"server_ip": "123.123.123.123", "server_ipv6_net": "2a01:f48:111:4221::",
            "server_number": 321, "server_name": "server1", "product": "DS 3000", "dc": "NBG1-DC1",
            "traffic": "5 TB", "status": "ready", "cancelled": false, "paid_until": "2010-09-02",
            "ip": ["123.123.123.123"],
            "subnet": [{"ip": "123.123.123.0", "mask": "29"}, {"ip": "2a01:4f8:111:4221::", "mask": "64"}]}},
          {"server": {"server_ip": "123.123.123.124", "server_number": 421, "server_name": "server2",
            "product": null, "dc": "FSN1-DC10", "status": "in process", "cancelled": true, "subnet": null}}
        ]"#;
        d.respond(s[0].0, 200, &[], body);
        let t = &d.out.updates[0][0].targets;
        assert_eq!(
            t[0].to_string(),
            r#"{__address__="123.123.123.123:80", __meta_hetzner_datacenter="nbg1-dc1", __meta_hetzner_public_ipv4="123.123.123.123", __meta_hetzner_public_ipv6_network="2a01:4f8:111:4221::/64", __meta_hetzner_robot_cancelled="false", __meta_hetzner_robot_datacenter="nbg1-dc1", __meta_hetzner_robot_product="DS 3000", __meta_hetzner_role="robot", __meta_hetzner_server_id="321", __meta_hetzner_server_name="server1", __meta_hetzner_server_status="ready"}"#
        );
        assert_eq!(t[1].get("__meta_hetzner_robot_cancelled"), Some("true"));
        assert_eq!(t[1].get("__meta_hetzner_public_ipv6_network"), None);
        d.advance();
        let (id, _) = d.one();
        d.respond(
            id,
            401,
            &[],
            r#"{"error": {"status": 401, "code": "UNAUTHORIZED"}}"#,
        );
        assert_eq!(
            d.out.failures,
            ["non 2xx status '401' response during hetzner service discovery with role robot"]
        );
    }

    #[test]
    fn go_address_texts() {
        assert_eq!(ip_text(Some("1.2.3.4")), "1.2.3.4");
        assert_eq!(ip_text(Some("x")), "<nil>");
        assert_eq!(ip_text(None), "<nil>");
        assert_eq!(network_text(Some("2001:db8::1/64")), "2001:db8::/64");
        assert_eq!(network_text(Some("2001:db8::/129")), "<nil>");
        assert_eq!(network_text(None), "<nil>");
    }

    #[test]
    fn defaults_are_applied() {
        let c: HetznerSdConfig = block(KEY, "role: hcloud\nlabel_selector: env=prod");
        assert_eq!(
            (c.role.as_str(), c.label_selector.as_str()),
            ("hcloud", "env=prod")
        );
        assert_eq!(
            (c.port, c.refresh_interval),
            (80, PromDuration::from_secs(60))
        );
        assert_eq!(c.http_client, HttpClientConfig::default());
    }

    #[test]
    fn role_is_required_and_checked() {
        assert_eq!(
            error_at(KEY, "port: 1"),
            (4, 9, "role missing (one of: robot, hcloud)".into())
        );
        assert_eq!(error(KEY, "role:"), "role missing (one of: robot, hcloud)");
        assert_eq!(
            error_at(KEY, "role: cloud"),
            (4, 15, r#"unknown role "cloud""#.into())
        );
    }

    #[test]
    fn client_is_validated_with_resolved_paths() {
        assert_eq!(
            error(
                KEY,
                "role: robot\nbasic_auth: {username: u, username_file: f}"
            ),
            "at most one of basic_auth username, username_file & username_ref must be configured"
        );
        let c: HetznerSdConfig = block(
            KEY,
            "role: robot\nbasic_auth: {username_file: u, password_file: p}",
        );
        let b = c.http_client.basic_auth.expect("basic auth");
        assert_eq!(b.username_file, "/etc/prometheus/u");
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "role: robot", "hetzner.plain");
    }
}
