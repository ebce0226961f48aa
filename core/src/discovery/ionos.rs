//! `ionos_sd_configs`: servers of one IONOS Cloud datacenter, listed every
//! `refresh_interval`. Validation follows 3.x's `discovery/ionos`
//! `SDConfig.UnmarshalYAML`; the refresh follows `serverDiscovery.refresh`
//! (`server.go`) over the IONOS SDK: one `GET
//! https://api.ionos.com/cloudapi/v6/datacenters/<id>/servers?depth=3`, a target per
//! server that has an IP on any NIC (at the first IP of the last NIC listed, as 3.x
//! prepends each NIC's addresses) and `port`, with 3.x's `__meta_ionos_server_*` labels
//! (a field the answer leaves out leaves its label out). Credentials are the block's
//! HTTP client's (basic auth or a token). One group, source `ionos`; a failure (the
//! SDK's `<status> <body>`, a body that does not decode) keeps the last group.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::groups::{TargetGroup, go_port, join_host_port, label_set, sanitize, surrounded};
use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, whole};
use super::paged::{self, Call, Pages, Step};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;
use crate::labels::Labels;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Ionos;

with_http_client! {
    /// `ionos_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawIonosSd {
        #[serde(default)]
        datacenter_id: LenientString,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        port: Nullable<i64>,
    }
}

/// IONOS Cloud discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IonosSdConfig {
    /// The datacenter whose servers are listed.
    pub datacenter_id: String,
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Ionos {
    const KEY: &'static str = "ionos_sd_configs";
    const NAME: &'static str = "ionos";
    const GO_TYPE: &'static str = "ionos.plain";
    const RUNS: bool = true;
    const EXAMPLE: Option<&'static str> = Some("{datacenter_id: dc-1, port: 9100}");
    type Raw = RawIonosSd;
    type Config = IonosSdConfig;

    fn validate(mut raw: RawIonosSd, cx: &SdContext<'_>) -> Result<IonosSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        if raw.datacenter_id.0.is_empty() {
            return Err((at("datacenter_id"), "datacenter id can't be empty".into()));
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(IonosSdConfig {
            datacenter_id: raw.datacenter_id.0,
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            port: raw.port.onto(80),
            http_client,
        })
    }

    fn machine(cfg: &IonosSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        let base = cx.env.api_base(Ionos::NAME, API);
        let pages = Listing {
            url: format!("{base}/cloudapi/v6/datacenters/{}/servers?depth=3", {
                let mut id = String::new();
                crate::gourl::path_escape(&cfg.datacenter_id, &mut id);
                id
            }),
            port: cfg.port,
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

/// 3.x's default `ionosEndpoint` (the SDK adds `/cloudapi/v6`).
const API: &str = "https://api.ionos.com";
/// How much of an error answer is kept (it is in the failure).
const ERROR_BODY: usize = 1024;

const P: &str = "__meta_ionos_server_";

#[derive(Debug, Default, Deserialize)]
struct Ref {
    id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerProps {
    name: Option<String>,
    availability_zone: Option<String>,
    vm_state: Option<String>,
    boot_cdrom: Option<Ref>,
    boot_volume: Option<Ref>,
    cpu_family: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct NicProps {
    name: Option<String>,
    ips: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
struct Nic {
    properties: Option<NicProps>,
}

#[derive(Debug, Default, Deserialize)]
struct VolumeProps {
    image: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Volume {
    properties: Option<VolumeProps>,
}

#[derive(Debug, Default, Deserialize)]
struct Collection<T> {
    items: Option<Vec<T>>,
}

#[derive(Debug, Default, Deserialize)]
struct Entities {
    nics: Option<Collection<Nic>>,
    volumes: Option<Collection<Volume>>,
}

#[derive(Debug, Default, Deserialize)]
struct Metadata {
    state: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Server {
    id: Option<String>,
    metadata: Option<Metadata>,
    properties: Option<ServerProps>,
    entities: Option<Entities>,
}

#[derive(Debug, Default, Deserialize)]
struct Servers {
    id: Option<String>,
    items: Option<Vec<Server>>,
}

/// The targets of a datacenter's servers at depth 3.
pub(crate) fn targets_of(body: &[u8], port: i64) -> Result<Vec<Labels>, String> {
    let servers: Servers = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for s in servers.items.into_iter().flatten() {
        let entities = s.entities.unwrap_or_default();
        // 3.x prepends each NIC's addresses (`ips = append(nicIPs, ips...)`, the same per
        // NIC name): the NICs' lists joined last NIC first, built in linear time.
        let mut nics: Vec<(String, Vec<String>)> = Vec::new();
        for nic in entities.nics.and_then(|n| n.items).into_iter().flatten() {
            let Some(p) = nic.properties else { continue };
            let name = p.name.unwrap_or_else(|| "unnamed".to_owned());
            nics.push((name, p.ips.unwrap_or_default()));
        }
        let mut ips: Vec<String> = Vec::new();
        let mut by_nic: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, nic_ips) in nics.into_iter().rev() {
            ips.extend(nic_ips.iter().cloned());
            by_nic.entry(name).or_default().extend(nic_ips);
        }
        let Some(first) = ips.first() else { continue };
        let mut l = vec![
            (
                "__address__".to_owned(),
                join_host_port(first, &go_port(port)),
            ),
            (format!("{P}ip"), surrounded(&ips)),
        ];
        let props = s.properties.unwrap_or_default();
        let mut add = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                l.push((format!("{P}{name}"), v));
            }
        };
        add("availability_zone", props.availability_zone);
        add("cpu_family", props.cpu_family);
        add("servers_id", servers.id.clone());
        add("id", s.id);
        add("lifecycle", s.metadata.and_then(|m| m.state));
        add("name", props.name);
        add("state", props.vm_state);
        add("type", props.kind);
        add("boot_cdrom_id", props.boot_cdrom.and_then(|r| r.id));
        add("boot_volume_id", props.boot_volume.and_then(|r| r.id));
        let image = entities
            .volumes
            .and_then(|v| v.items)
            .and_then(|v| v.into_iter().next())
            .and_then(|v| v.properties)
            .and_then(|p| p.image);
        add("boot_image_id", image);
        for (nic, nic_ips) in &by_nic {
            l.push((format!("{P}nic_ip_{}", sanitize(nic)), surrounded(nic_ips)));
        }
        out.push(label_set(l));
    }
    Ok(out)
}

/// A refresh: one call.
#[derive(Debug)]
struct Listing {
    url: String,
    port: i64,
}

impl Pages for Listing {
    fn first(&mut self) -> Result<Call, String> {
        Ok(Call::get(self.url.clone()))
    }

    fn answer(&mut self, status: u16, body: &[u8], _url: &str) -> Result<Step, String> {
        if status / 100 != 2 {
            // The SDK's `GenericOpenAPIError`: the status line and the body.
            return Err(format!(
                "{status} {} {}",
                super::refresh::status_text(status),
                String::from_utf8_lossy(body)
            ));
        }
        Ok(Step::Done(vec![TargetGroup {
            targets: targets_of(body, self.port)?,
            labels: Labels::empty(),
            source: "ionos".into(),
        }]))
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

    const KEY: &str = "ionos_sd_configs";

    fn drive(yaml: &str, base: Option<&str>) -> Drive<Box<dyn SdMachine>> {
        drive_block::<Ionos>(yaml, base)
    }

    #[test]
    fn servers_with_ips_become_targets_with_3x_labels() {
        let mut d = drive(
            "datacenter_id: 8feda53f-15f0-447f-badf-ebe32dad2fc0\nport: 9100\nbasic_auth: {username: u, password: p}",
            Some("http://i"),
        );
        let s = d.started();
        assert_eq!(
            s[0].1,
            "http://i/cloudapi/v6/datacenters/8feda53f-15f0-447f-badf-ebe32dad2fc0/servers?depth=3"
        );
        assert!(
            s[0].2
                .contains(&("Authorization".into(), "Basic dTpw".into()))
        );
        // Shaped as the Cloud API v6 reference shows a server collection at depth 3.
        let body = serde_json::json!({
            "id": "8feda53f-15f0-447f-badf-ebe32dad2fc0/servers", "type": "collection",
            "items": [
                {"id": "d6bf44ee-f7e8-4e19-8716-96fdd18cc697", "type": "server",
                 "metadata": {"state": "AVAILABLE"},
                 "properties": {"name": "prometheus-2", "cores": 2, "ram": 4096,
                                "availabilityZone": "AUTO", "vmState": "RUNNING",
                                "bootCdrom": {"id": "0e4d57f9-cd78-11e9-b88c-525400f64d8d", "type": "image"},
                                "bootVolume": null, "cpuFamily": "INTEL_SKYLAKE", "type": "ENTERPRISE"},
                 "entities": {
                   "nics": {"items": [
                     {"properties": {"name": null, "ips": ["85.215.243.177"]}},
                     {"properties": {"name": "metrics", "ips": ["185.56.150.9", "2001:db8::1"]}}
                   ]},
                   "volumes": {"items": [{"properties": {"image": "7f6d45f8-0000-4000-8000-000000000001"}}]}
                 }},
                {"id": "no-ips", "properties": {"name": "dark"},
                 "entities": {"nics": {"items": [{"properties": {"name": "x", "ips": []}}]}}}
            ]
        });
        d.respond(s[0].0, 200, &[], &body.to_string());
        assert!(d.out.failures.is_empty(), "{:?}", d.out.failures);
        let g = &d.out.updates[0][0];
        assert_eq!(g.source, "ionos");
        assert_eq!(g.targets.len(), 1, "a server without IPs is left out");
        assert_eq!(
            g.targets[0].to_string(),
            r#"{__address__="185.56.150.9:9100", __meta_ionos_server_availability_zone="AUTO", __meta_ionos_server_boot_cdrom_id="0e4d57f9-cd78-11e9-b88c-525400f64d8d", __meta_ionos_server_boot_image_id="7f6d45f8-0000-4000-8000-000000000001", __meta_ionos_server_cpu_family="INTEL_SKYLAKE", __meta_ionos_server_id="d6bf44ee-f7e8-4e19-8716-96fdd18cc697", __meta_ionos_server_ip=",185.56.150.9,2001:db8::1,85.215.243.177,", __meta_ionos_server_lifecycle="AVAILABLE", __meta_ionos_server_name="prometheus-2", __meta_ionos_server_nic_ip_metrics=",185.56.150.9,2001:db8::1,", __meta_ionos_server_nic_ip_unnamed=",85.215.243.177,", __meta_ionos_server_servers_id="8feda53f-15f0-447f-badf-ebe32dad2fc0/servers", __meta_ionos_server_state="RUNNING", __meta_ionos_server_type="ENTERPRISE"}"#
        );
    }

    #[test]
    fn failures_keep_the_targets() {
        let mut d = drive("datacenter_id: d", None);
        let (id, url) = d.one();
        assert_eq!(
            url,
            "https://api.ionos.com/cloudapi/v6/datacenters/d/servers?depth=3"
        );
        d.respond(
            id,
            401,
            &[],
            r#"{"httpStatus":401,"messages":[{"errorCode":"315","message":"Unauthorized"}]}"#,
        );
        assert_eq!(
            d.out.failures,
            [
                r#"401 Unauthorized {"httpStatus":401,"messages":[{"errorCode":"315","message":"Unauthorized"}]}"#
            ]
        );
        d.advance();
        let (id, _) = d.one();
        d.feed(id, IoEvent::Failed("connection refused"));
        assert_eq!(
            d.out.failures[1],
            r#"Get "https://api.ionos.com/cloudapi/v6/datacenters/d/servers?depth=3": connection refused"#
        );
        d.advance();
        let (id, _) = d.one();
        d.respond(id, 200, &[], r#"{"id": "d/servers", "type": "collection"}"#);
        assert_eq!(d.out.updates[0][0].targets.len(), 0, "no items: no servers");
    }

    #[test]
    fn defaults_are_applied() {
        let c: IonosSdConfig = block(KEY, "datacenter_id: dc-1");
        assert_eq!(c.datacenter_id, "dc-1");
        assert_eq!(
            (c.port, c.refresh_interval),
            (80, PromDuration::from_secs(60))
        );
        assert_eq!(c.http_client, HttpClientConfig::default());
    }

    #[test]
    fn datacenter_is_required() {
        assert_eq!(
            error_at(KEY, "port: 8080"),
            (4, 9, "datacenter id can't be empty".into())
        );
        assert_eq!(
            error(KEY, "datacenter_id: ~"),
            "datacenter id can't be empty"
        );
    }

    #[test]
    fn client_is_validated_with_resolved_paths() {
        assert_eq!(
            error(
                KEY,
                "datacenter_id: d\nproxy_url: http://p\nproxy_from_environment: true"
            ),
            "if proxy_from_environment is configured, proxy_url must not be configured"
        );
        let c: IonosSdConfig = block(
            KEY,
            "datacenter_id: d\nauthorization: {credentials_file: t}",
        );
        let a = c.http_client.authorization.expect("authorization");
        assert_eq!(
            (a.kind.as_str(), a.credentials_file.as_str()),
            ("Bearer", "/etc/prometheus/t")
        );
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "datacenter_id: d", "ionos.plain");
    }
}
