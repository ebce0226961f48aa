//! `vultr_sd_configs`: Vultr instances of an account, listed every `refresh_interval`.
//! Validation follows 3.x's `discovery/vultr` `SDConfig.UnmarshalYAML` (only the HTTP
//! client options are checked); the refresh follows its `Discovery.refresh` and
//! `listInstances` over govultr: `GET https://api.vultr.com/v2/instances?per_page=100`,
//! then with `cursor=<meta.links.next>` while the answer names a next cursor. A target
//! per instance at its main IP and `port`, with 3.x's `__meta_vultr_instance_*` labels;
//! one group, source `Vultr`. The API key is the block's HTTP client authorization
//! (`authorization`, `bearer_token(_file)`), as in 3.x. An answer that is not 2xx fails
//! the refresh with its body as the message (govultr's error), the last group kept; a
//! refresh makes at most [`super::paged::MAX_CALLS`] calls (a cursor that never ends
//! would keep 3.x paging until its deadline).

use serde::Deserialize;

use super::groups::{TargetGroup, go_port, join_host_port, label_set, nul, surrounded_list};
use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, whole};
use super::paged::{self, Call, Pages, Step};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::Nullable;
use crate::duration::PromDuration;
use crate::labels::Labels;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Vultr;

with_http_client! {
    /// `vultr_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawVultrSd {
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        port: Nullable<i64>,
    }
}

/// Vultr discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VultrSdConfig {
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Vultr {
    const KEY: &'static str = "vultr_sd_configs";
    const NAME: &'static str = "vultr";
    const GO_TYPE: &'static str = "vultr.plain";
    const RUNS: bool = true;
    const EXAMPLE: Option<&'static str> = Some("{port: 9100}");
    type Raw = RawVultrSd;
    type Config = VultrSdConfig;

    fn validate(mut raw: RawVultrSd, cx: &SdContext<'_>) -> Result<VultrSdConfig, Invalid> {
        let http_client = raw.take_http_client().validate(&cx.paths).map_err(whole)?;
        Ok(VultrSdConfig {
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            port: raw.port.onto(80),
            http_client,
        })
    }

    fn machine(cfg: &VultrSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        let pages = Listing {
            base: cx.env.api_base(Vultr::NAME, API),
            port: cfg.port,
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

/// govultr's `defaultBase`.
const API: &str = "https://api.vultr.com";
/// How much of an error answer is kept (it is the failure's message).
const ERROR_BODY: usize = 1024;

const P: &str = "__meta_vultr_instance_";

/// govultr's `Instance` (the fields discovery reads).
#[derive(Debug, Default, Deserialize)]
struct Instance {
    #[serde(default, deserialize_with = "nul")]
    id: String,
    #[serde(default, deserialize_with = "nul")]
    label: String,
    #[serde(default, deserialize_with = "nul")]
    os: String,
    #[serde(default, deserialize_with = "nul")]
    os_id: i64,
    #[serde(default, deserialize_with = "nul")]
    region: String,
    #[serde(default, deserialize_with = "nul")]
    plan: String,
    #[serde(default, deserialize_with = "nul")]
    vcpu_count: i64,
    #[serde(default, deserialize_with = "nul")]
    ram: i64,
    #[serde(default, deserialize_with = "nul")]
    allowed_bandwidth: i64,
    #[serde(default, deserialize_with = "nul")]
    disk: i64,
    #[serde(default, deserialize_with = "nul")]
    main_ip: String,
    #[serde(default)]
    v6_main_ip: String,
    #[serde(default, deserialize_with = "nul")]
    internal_ip: String,
    #[serde(default, deserialize_with = "nul")]
    hostname: String,
    #[serde(default, deserialize_with = "nul")]
    server_status: String,
    #[serde(default)]
    features: Option<Vec<String>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
struct Links {
    #[serde(default, deserialize_with = "nul")]
    next: String,
}

#[derive(Debug, Default, Deserialize)]
struct Meta {
    #[serde(default)]
    links: Option<Links>,
}

#[derive(Debug, Default, Deserialize)]
struct Page {
    #[serde(default)]
    instances: Option<Vec<Instance>>,
    #[serde(default)]
    meta: Option<Meta>,
}

/// One page of instances: their targets added to `out`, and the next cursor.
pub(crate) fn targets_of(
    body: &[u8],
    port: i64,
    out: &mut Vec<Labels>,
) -> Result<Option<String>, String> {
    let page: Page = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    for i in page.instances.into_iter().flatten() {
        let mut l = vec![
            (format!("{P}id"), i.id),
            (format!("{P}label"), i.label),
            (format!("{P}os"), i.os),
            (format!("{P}os_id"), i.os_id.to_string()),
            (format!("{P}region"), i.region),
            (format!("{P}plan"), i.plan),
            (format!("{P}vcpu_count"), i.vcpu_count.to_string()),
            (format!("{P}ram_mb"), i.ram.to_string()),
            (
                format!("{P}allowed_bandwidth_gb"),
                i.allowed_bandwidth.to_string(),
            ),
            (format!("{P}disk_gb"), i.disk.to_string()),
            (format!("{P}main_ip"), i.main_ip.clone()),
            (format!("{P}main_ipv6"), i.v6_main_ip),
            (format!("{P}internal_ip"), i.internal_ip),
            (format!("{P}hostname"), i.hostname),
            (format!("{P}server_status"), i.server_status),
            (
                "__address__".to_owned(),
                join_host_port(&i.main_ip, &go_port(port)),
            ),
        ];
        if let Some(f) = surrounded_list(&i.features) {
            l.push((format!("{P}features"), f));
        }
        if let Some(t) = surrounded_list(&i.tags) {
            l.push((format!("{P}tags"), t));
        }
        out.push(label_set(l));
    }
    Ok(page
        .meta
        .and_then(|m| m.links)
        .map(|l| l.next)
        .filter(|n| !n.is_empty()))
}

/// A refresh.
#[derive(Debug)]
struct Listing {
    base: String,
    port: i64,
    targets: Vec<Labels>,
}

impl Listing {
    /// govultr's `ListOptions` encoded as `url.Values` encodes them (keys sorted).
    fn url(&self, cursor: Option<&str>) -> String {
        match cursor {
            None => format!("{}/v2/instances?per_page=100", self.base),
            Some(c) => format!(
                "{}/v2/instances?cursor={}&per_page=100",
                self.base,
                crate::gourl::query_escape(c)
            ),
        }
    }
}

impl Pages for Listing {
    fn first(&mut self) -> Result<Call, String> {
        self.targets.clear();
        Ok(Call::get(self.url(None)))
    }

    fn answer(&mut self, status: u16, body: &[u8], _url: &str) -> Result<Step, String> {
        if status / 100 != 2 {
            // govultr: the body is the error.
            return Err(String::from_utf8_lossy(body).into_owned());
        }
        match targets_of(body, self.port, &mut self.targets)? {
            Some(next) => Ok(Step::Next(Call::get(self.url(Some(&next))))),
            None => Ok(Step::Done(vec![TargetGroup {
                targets: std::mem::take(&mut self.targets),
                labels: Labels::empty(),
                source: "Vultr".into(),
            }])),
        }
    }

    fn failed(&self, e: String) -> String {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        Drive, block, drive_block, error, null_entry_is_refused, unknown_field_names,
    };
    use crate::io::IoEvent;

    const KEY: &str = "vultr_sd_configs";

    fn drive(yaml: &str, base: Option<&str>) -> Drive<Box<dyn SdMachine>> {
        drive_block::<Vultr>(yaml, base)
    }

    /// An instance as Vultr's API reference shows one (`GET /v2/instances`).
    fn instance(id: &str, ip: &str) -> serde_json::Value {
        serde_json::json!({
            "id": id, "os": "Ubuntu 24.04 LTS x64", "ram": 2048, "disk": 55,
            "main_ip": ip, "vcpu_count": 1, "region": "ewr", "plan": "vc2-1c-2gb",
            "date_created": "2024-06-01T12:00:00+00:00", "status": "active",
            "allowed_bandwidth": 2, "netmask_v4": "255.255.254.0", "gateway_v4": "192.0.2.1",
            "power_status": "running", "server_status": "ok", "v6_network": "2001:db8:5::",
            "v6_main_ip": "2001:db8:5:0:5400:4ff:fe6f:b0e9", "v6_network_size": 64,
            "label": "web", "internal_ip": "10.1.96.3", "kvm": "https://my.vultr.com/subs/vps/novnc/api.php?data=x",
            "hostname": "web-host", "tag": "", "tags": ["web", "prod"], "os_id": 2284,
            "app_id": 0, "image_id": "", "firewall_group_id": "", "features": ["ipv6", "auto_backups"],
            "user_scheme": "root"
        })
    }

    #[test]
    fn instances_are_listed_cursor_by_cursor_with_3x_labels() {
        let mut d = drive("bearer_token: K\nport: 9100", Some("http://v"));
        let s = d.started();
        assert_eq!(s[0].1, "http://v/v2/instances?per_page=100");
        assert!(
            s[0].2
                .contains(&("Authorization".into(), "Bearer K".into()))
        );
        let page = serde_json::json!({
            "instances": [instance("cb676a46-66fd-4dfb-b839-443f2e6c0b60", "192.0.2.123")],
            "meta": {"total": 2, "links": {"next": "bmV4dF9fQU1T+/=", "prev": ""}}
        });
        d.respond(s[0].0, 200, &[], &page.to_string());
        let (id, url) = d.one();
        assert_eq!(
            url,
            "http://v/v2/instances?cursor=bmV4dF9fQU1T%2B%2F%3D&per_page=100"
        );
        let mut bare = instance("2", "192.0.2.124");
        bare["tags"] = serde_json::json!([]);
        bare["features"] = serde_json::Value::Null;
        bare["internal_ip"] = serde_json::Value::Null;
        bare["os_id"] = serde_json::Value::Null;
        let page = serde_json::json!({"instances": [bare], "meta": {"total": 2, "links": {"next": "", "prev": "x"}}});
        d.respond(id, 200, &[], &page.to_string());
        let g = &d.out.updates[0][0];
        assert_eq!(g.source, "Vultr");
        assert_eq!(
            g.targets[0].to_string(),
            r#"{__address__="192.0.2.123:9100", __meta_vultr_instance_allowed_bandwidth_gb="2", __meta_vultr_instance_disk_gb="55", __meta_vultr_instance_features=",ipv6,auto_backups,", __meta_vultr_instance_hostname="web-host", __meta_vultr_instance_id="cb676a46-66fd-4dfb-b839-443f2e6c0b60", __meta_vultr_instance_internal_ip="10.1.96.3", __meta_vultr_instance_label="web", __meta_vultr_instance_main_ip="192.0.2.123", __meta_vultr_instance_main_ipv6="2001:db8:5:0:5400:4ff:fe6f:b0e9", __meta_vultr_instance_os="Ubuntu 24.04 LTS x64", __meta_vultr_instance_os_id="2284", __meta_vultr_instance_plan="vc2-1c-2gb", __meta_vultr_instance_ram_mb="2048", __meta_vultr_instance_region="ewr", __meta_vultr_instance_server_status="ok", __meta_vultr_instance_tags=",web,prod,", __meta_vultr_instance_vcpu_count="1"}"#
        );
        assert_eq!(g.targets[1].get("__meta_vultr_instance_tags"), None);
        assert_eq!(g.targets[1].get("__meta_vultr_instance_features"), None);
        assert_eq!(g.targets[1].get("__meta_vultr_instance_internal_ip"), None);
        assert_eq!(g.targets[1].get("__meta_vultr_instance_os_id"), Some("0"));
    }

    #[test]
    fn failures_carry_the_answer_and_keep_the_targets() {
        let mut d = drive("{}", None);
        let (id, url) = d.one();
        assert_eq!(url, "https://api.vultr.com/v2/instances?per_page=100");
        d.respond(
            id,
            401,
            &[],
            r#"{"error":"Invalid API token.","status":401}"#,
        );
        assert_eq!(
            d.out.failures,
            [r#"{"error":"Invalid API token.","status":401}"#]
        );
        d.advance();
        let (id, _) = d.one();
        d.respond(id, 200, &[], r#"{"instances": [{"id": 5}]}"#);
        assert_eq!(
            d.out.failures[1],
            "invalid type: integer `5`, expected a string at line 1 column 23"
        );
        d.advance();
        let (id, _) = d.one();
        d.feed(id, IoEvent::Failed("connection refused"));
        assert_eq!(
            d.out.failures[2],
            r#"Get "https://api.vultr.com/v2/instances?per_page=100": connection refused"#
        );
        assert!(d.out.updates.is_empty());
    }

    #[test]
    fn defaults_are_applied() {
        let c: VultrSdConfig = block(KEY, "{}");
        assert_eq!(
            (c.port, c.refresh_interval),
            (80, PromDuration::from_secs(60))
        );
        assert_eq!(c.http_client, HttpClientConfig::default());
        let c: VultrSdConfig = block(KEY, "port: -1\nrefresh_interval: 0s\nenable_http2: false");
        assert_eq!((c.port, c.refresh_interval), (-1, PromDuration::ZERO));
        assert!(!c.http_client.enable_http2);
    }

    #[test]
    fn only_the_client_is_checked() {
        assert_eq!(
            error(KEY, "oauth2: {token_url: 'http://t'}"),
            "oauth2 client_id must be configured"
        );
        let c: VultrSdConfig = block(
            KEY,
            "oauth2: {client_id: i, token_url: 'http://t', client_secret_file: s}",
        );
        let o = c.http_client.oauth2.expect("oauth2");
        assert_eq!(o.client_secret_file, "/etc/prometheus/s");
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "port: 1", "vultr.plain");
    }
}
