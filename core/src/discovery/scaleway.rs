//! `scaleway_sd_configs`: Instance or Elastic Metal servers of a Scaleway project, listed
//! through its API every `refresh_interval`. Validation follows 3.x's
//! `discovery/scaleway` (`role.UnmarshalYAML`, `SDConfig.UnmarshalYAML`), including the
//! checks the Scaleway SDK's `scw.NewClient` makes on the profile it is given, and
//! `SetDirectory` resolves `secret_key_file` as well as the client's files. The refresh
//! follows 3.x's `instanceDiscovery.refresh` (with `privateNICIPs`) and
//! `baremetalDiscovery.refresh` over scaleway-sdk-go v1.0.0-beta.37: every listing is
//! the SDK's `doListAll` (pages from the first page's size and `total_count`, or the
//! Instance API's `X-Total-Count`; an empty page ends it), its query encoded as Go's
//! `url.Values` (keys sorted):
//!
//! * `instance`: `GET <api_url>/instance/v1/zones/<zone>/servers?[name=…&]order=creation_date_desc&page=N[&tags=a,b]`,
//!   then, for servers with no address at all, IPAM's addresses of their private NICs,
//!   one listing a region (`/ipam/v1/regions/<region>/ips`).
//! * `baremetal`: the zone's servers (`order_by=created_at_asc`, a `tags` per tag), then
//!   its offers and its images (`/offers`, `/os`), for the type and OS labels.
//!
//! The secret key goes as `X-Auth-Token` (read from `secret_key_file` before each
//! request, trimmed, as 3.x's round tripper reads it). One group, source `scaleway`, with
//! 3.x's `__meta_scaleway_*` labels; failures are the SDK's wording (`scaleway-sdk-go:
//! …`, by the error's `type`) and keep the last group.
//!
//! Where trawl differs: IPAM's regions are asked in name order (3.x's map order is
//! random); the SDK's `User-Agent` prefix (`scaleway-sdk-go/<version> (<go>; <os>;
//! <arch>)`) is not sent, the agent's is; the Instance API's `unknown_resource` and
//! `invalid_request_error` answers are worded as any other (the SDK rewrites them as
//! not-found and invalid-argument errors); a `resource_expired` error shows its
//! `expired_since` as sent.

use serde::Deserialize;

use super::groups::{
    TargetGroup, go_ip, go_port, go_status, header, join_host_port, label_set, nul, surrounded,
};
use super::mechanism::{
    Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, go_enum, text, texts, whole,
};
use super::paged::{self, Call, Pages, Step};
use crate::common::http::HttpClientConfig;
use crate::common::http::{Secret, with_http_client};
use crate::common::paths::join_dir;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;
use crate::labels::Labels;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Scaleway;

go_enum! {
    /// `role` of `scaleway_sd_configs`.
    pub struct ScalewayRole: ["instance", "baremetal"] else "unknown role {}";
}

with_http_client! {
    /// `scaleway_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawScalewaySd {
        #[serde(default)]
        project_id: LenientString,
        #[serde(default)]
        api_url: Nullable<LenientString>,
        #[serde(default)]
        zone: Nullable<LenientString>,
        #[serde(default)]
        access_key: LenientString,
        #[serde(default)]
        secret_key: Secret,
        #[serde(default)]
        secret_key_file: LenientString,
        #[serde(default)]
        name_filter: LenientString,
        #[serde(default)]
        tags_filter: Option<Vec<LenientString>>,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        port: Nullable<i64>,
        #[serde(default)]
        role: Option<ScalewayRole>,
    }
}

/// Scaleway discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalewaySdConfig {
    /// The project.
    pub project_id: String,
    /// API URL (default `https://api.scaleway.com`).
    pub api_url: String,
    /// Zone (default `fr-par-1`).
    pub zone: String,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: Secret,
    /// File holding the secret key, resolved against the configuration's directory.
    pub secret_key_file: String,
    /// Only servers with this name.
    pub name_filter: String,
    /// Only servers with these tags.
    pub tags_filter: Vec<String>,
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// `instance` or `baremetal`.
    pub role: ScalewayRole,
    /// Client options.
    pub http_client: HttpClientConfig,
}

const SDK: &str = "scaleway-sdk-go: ";
const ZONES: &str = "fr-par-1, fr-par-2, fr-par-3, nl-ams-1, nl-ams-2, nl-ams-3, pl-waw-1, pl-waw-2, pl-waw-3, it-mil-1";
const UUID_HINT: &str = "expected a UUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

/// `SCW` and 17 upper-case letters or digits.
fn is_access_key(s: &str) -> bool {
    s.len() == 20
        && s.starts_with("SCW")
        && s.bytes()
            .skip(3)
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hexadecimal digits of either case.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Two letters, three to seven letters and one or two digits (`fr-par-1`).
fn is_zone(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lower = |p: &str, min: usize, max: usize| {
        (min..=max).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase())
    };
    parts.len() == 3
        && lower(parts[0], 2, 2)
        && lower(parts[1], 3, 7)
        && (1..=2).contains(&parts[2].len())
        && parts[2].bytes().all(|b| b.is_ascii_digit())
}

/// The SDK's checks of the profile Prometheus builds (its region is never set). A
/// malformed secret key is not repeated in the message (Prometheus prints it).
fn check_profile(
    access_key: &str,
    secret_key: &str,
    project_id: &str,
    zone: &str,
    api_url: &str,
) -> Result<(), Invalid> {
    if !is_access_key(access_key) {
        return Err((
            at("access_key"),
            format!(
                "{SDK}invalid access key format '{access_key}', expected SCWXXXXXXXXXXXXXXXXX format"
            ),
        ));
    }
    if !is_uuid(secret_key) {
        return Err((
            at("secret_key"),
            format!("{SDK}invalid secret key format '<secret>', {UUID_HINT}"),
        ));
    }
    if !is_uuid(project_id) {
        return Err((
            at("project_id"),
            format!("{SDK}invalid project ID format '{project_id}', {UUID_HINT}"),
        ));
    }
    if zone.is_empty() {
        return Err((at("zone"), format!("{SDK}default zone cannot be empty")));
    }
    if !is_zone(zone) {
        return Err((
            at("zone"),
            format!("{SDK}invalid default zone format '{zone}', available zones are: {ZONES}"),
        ));
    }
    if api_url.is_empty() || crate::gourl::parse(api_url).is_err() {
        return Err((at("api_url"), format!("{SDK}invalid API url '{api_url}'")));
    }
    if api_url.ends_with('/') {
        return Err((
            at("api_url"),
            format!("{SDK}invalid API url '{api_url}' it should not have a trailing slash"),
        ));
    }
    Ok(())
}

impl Mechanism for Scaleway {
    const KEY: &'static str = "scaleway_sd_configs";
    const NAME: &'static str = "scaleway";
    const GO_TYPE: &'static str = "scaleway.plain";
    const RUNS: bool = true;
    const EXAMPLE: Option<&'static str> = Some(
        "{role: instance, project_id: 11111111-2222-3333-4444-555555555555, access_key: SCWABCDEFGHIJ0123456, secret_key_file: /etc/prometheus/scaleway-key, port: 9100}",
    );
    type Raw = RawScalewaySd;
    type Config = ScalewaySdConfig;

    fn validate(mut raw: RawScalewaySd, cx: &SdContext<'_>) -> Result<ScalewaySdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let Some(role) = raw.role.take() else {
            return Err((
                at("role"),
                "role missing (one of: instance, baremetal)".into(),
            ));
        };
        if raw.project_id.0.is_empty() {
            return Err((at("project_id"), "project_id is mandatory".into()));
        }
        let key = !raw.secret_key.is_empty();
        let key_file = !raw.secret_key_file.0.is_empty();
        if !key && !key_file {
            return Err(whole(
                "one of secret_key & secret_key_file must be configured".into(),
            ));
        }
        if key && key_file {
            return Err(whole(
                "at most one of secret_key & secret_key_file must be configured".into(),
            ));
        }
        if raw.access_key.0.is_empty() {
            return Err((at("access_key"), "access_key is mandatory".into()));
        }
        let zone = text(raw.zone, "fr-par-1");
        let api_url = text(raw.api_url, "https://api.scaleway.com");
        // With a key file, the SDK is handed a placeholder that passes its check.
        let secret = if key_file {
            "00000000-0000-0000-0000-000000000000"
        } else {
            raw.secret_key.expose()
        };
        check_profile(
            &raw.access_key.0,
            secret,
            &raw.project_id.0,
            &zone,
            &api_url,
        )?;
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(ScalewaySdConfig {
            project_id: raw.project_id.0,
            api_url,
            zone,
            access_key: raw.access_key.0,
            secret_key: raw.secret_key,
            secret_key_file: join_dir(cx.paths.dir, &raw.secret_key_file.0),
            name_filter: raw.name_filter.0,
            tags_filter: texts(raw.tags_filter),
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            port: raw.port.onto(80),
            role,
            http_client,
        })
    }

    fn machine(cfg: &ScalewaySdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        let pages = Listing {
            base: cfg.api_url.clone(),
            zone: cfg.zone.clone(),
            role: cfg.role.clone(),
            name: cfg.name_filter.clone(),
            tags: cfg.tags_filter.clone(),
            port: cfg.port,
            phase: Phase::Servers,
            page: 1,
            pages: None,
            head: Head::default(),
            instances: Vec::new(),
            regions: Vec::new(),
            nic_ips: Default::default(),
            metal: Vec::new(),
            offers: Vec::new(),
            os: Vec::new(),
        };
        // The secret key as the SDK sends it, or read from its file for each request
        // (3.x's `authTokenFileRoundTripper`), the client's own authorization too.
        let mut headers = vec![("User-Agent".to_owned(), cx.env.user_agent.to_string())];
        if cfg.secret_key_file.is_empty() {
            headers.push((
                "X-Auth-Token".to_owned(),
                cfg.secret_key.expose().to_owned(),
            ));
        }
        let client_file = crate::io::add_auth(&cfg.http_client, &mut headers);
        let file = if cfg.secret_key_file.is_empty() {
            client_file
        } else {
            Some(crate::io::CredentialsFile::Header {
                name: "X-Auth-Token".into(),
                path: cfg.secret_key_file.clone(),
                and: client_file.map(Box::new),
            })
        };
        let interval = cfg.refresh_interval.to_std();
        let req = super::refresh::OneRequest::new(&cfg.http_client, headers, file, interval, cx)
            .keep_error_body(ERROR_BODY);
        Some(Box::new(paged::PagedSd::new(pages, req, cx.env.body_limit)))
    }
}

/// scaleway-sdk-go's `ListServersRequestOrder` default (instance), `ListServersRequestOrderBy`
/// default (Elastic Metal), IPAM's `ListIPsRequestOrderBy` default.
const INSTANCE_ORDER: &str = "creation_date_desc";

/// How much of an error answer is kept (the SDK reads its JSON).
const ERROR_BODY: usize = 4096;

/// A zone as the SDK's `Zone.UnmarshalJSON` reads it: empty stays empty, the legacy
/// `par1` and `ams1` are renamed, anything else must look like a zone.
fn zone_of<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let z = Option::<String>::deserialize(d)?.unwrap_or_default();
    match z.as_str() {
        "" => Ok(z),
        "par1" => Ok("fr-par-1".into()),
        "ams1" => Ok("nl-ams-1".into()),
        z if is_zone(z) => Ok(z.to_owned()),
        _ => Err(serde::de::Error::custom(format!(
            "{SDK}bad zone format, available zones are: {ZONES}"
        ))),
    }
}

/// The region of a zone (`fr-par-1` → `fr-par`), as `Zone.Region` gives it.
fn region_of(zone: &str) -> Result<String, String> {
    if !is_zone(zone) {
        return Err(format!("invalid zone '{zone}'"));
    }
    Ok(zone.rsplit_once('-').map_or(zone, |(r, _)| r).to_owned())
}

/// An address as Go's `net.IP` decodes and prints it: `None` for `null` or `""`
/// (Go's `<nil>`), an error for anything else that is no address.
fn ip_of<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = Option::<String>::deserialize(d)?.unwrap_or_default();
    if s.is_empty() {
        return Ok(None);
    }
    go_ip(&s)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("invalid IP address: {s}")))
}

/// `<nil>` for an absent address, as Go prints a nil `net.IP`.
fn shown(ip: &Option<String>) -> String {
    ip.clone().unwrap_or_else(|| "<nil>".into())
}

#[derive(Debug, Default, Deserialize)]
struct Named {
    #[serde(default, deserialize_with = "nul")]
    id: String,
    #[serde(default, deserialize_with = "nul")]
    name: String,
}

#[derive(Debug, Default, Deserialize)]
struct Image {
    #[serde(default, deserialize_with = "nul")]
    id: String,
    #[serde(default, deserialize_with = "nul")]
    name: String,
    #[serde(default, deserialize_with = "nul")]
    arch: String,
}

#[derive(Debug, Default, Deserialize)]
struct Location {
    #[serde(default, deserialize_with = "nul")]
    cluster_id: String,
    #[serde(default, deserialize_with = "nul")]
    hypervisor_id: String,
    #[serde(default, deserialize_with = "nul")]
    node_id: String,
}

#[derive(Debug, Default, Deserialize)]
struct PublicIp {
    #[serde(default, deserialize_with = "ip_of")]
    address: Option<String>,
    #[serde(default, deserialize_with = "nul")]
    family: String,
}

#[derive(Debug, Default, Deserialize)]
struct Ipv6 {
    #[serde(default, deserialize_with = "ip_of")]
    address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Nic {
    #[serde(default, deserialize_with = "nul")]
    id: String,
}

/// scaleway-sdk-go's instance `Server` (the fields discovery reads).
#[derive(Debug, Default, Deserialize)]
struct InstanceServer {
    #[serde(default, deserialize_with = "nul")]
    id: String,
    #[serde(default, deserialize_with = "nul")]
    name: String,
    #[serde(default, deserialize_with = "nul")]
    organization: String,
    #[serde(default, deserialize_with = "nul")]
    project: String,
    #[serde(default, deserialize_with = "nul")]
    commercial_type: String,
    #[serde(default, deserialize_with = "nul")]
    hostname: String,
    #[serde(default, deserialize_with = "nul")]
    state: String,
    #[serde(default, deserialize_with = "nul")]
    boot_type: String,
    #[serde(default, deserialize_with = "zone_of")]
    zone: String,
    #[serde(default, deserialize_with = "nul")]
    tags: Vec<String>,
    #[serde(default)]
    image: Option<Image>,
    #[serde(default)]
    location: Option<Location>,
    #[serde(default)]
    security_group: Option<Named>,
    #[serde(default)]
    private_ip: Option<String>,
    #[serde(default)]
    public_ip: Option<PublicIp>,
    #[serde(default, deserialize_with = "nul")]
    public_ips: Vec<Option<PublicIp>>,
    #[serde(default)]
    ipv6: Option<Ipv6>,
    #[serde(default, deserialize_with = "nul")]
    private_nics: Vec<Option<Nic>>,
}

impl InstanceServer {
    /// The SDK's enum defaults for empty values.
    fn defaults(mut self) -> InstanceServer {
        if self.state.is_empty() {
            self.state = "running".into();
        }
        if self.boot_type.is_empty() {
            self.boot_type = "local".into();
        }
        if let Some(i) = &mut self.image
            && i.arch.is_empty()
        {
            i.arch = "unknown_arch".into();
        }
        for ip in self.public_ips.iter_mut().flatten() {
            if ip.family.is_empty() {
                ip.family = "inet".into();
            }
        }
        if let Some(ip) = &mut self.public_ip
            && ip.family.is_empty()
        {
            ip.family = "inet".into();
        }
        self
    }
}

#[derive(Debug, Default, Deserialize)]
struct Resource {
    #[serde(default, deserialize_with = "nul")]
    id: String,
}

/// IPAM's `IP` (the fields discovery reads): `address` is a CIDR (or a bare address).
#[derive(Debug, Default, Deserialize)]
struct IpamIp {
    #[serde(default, deserialize_with = "nul")]
    address: String,
    #[serde(default, deserialize_with = "nul")]
    is_ipv6: bool,
    #[serde(default)]
    resource: Option<Resource>,
}

#[derive(Debug, Default, Deserialize)]
struct BaremetalIp {
    #[serde(default, deserialize_with = "ip_of")]
    address: Option<String>,
    #[serde(default, deserialize_with = "nul")]
    version: String,
}

#[derive(Debug, Default, Deserialize)]
struct Install {
    #[serde(default, deserialize_with = "nul")]
    os_id: String,
}

/// scaleway-sdk-go's Elastic Metal `Server` (the fields discovery reads).
#[derive(Debug, Default, Deserialize)]
struct BaremetalServer {
    #[serde(default, deserialize_with = "nul")]
    id: String,
    #[serde(default, deserialize_with = "nul")]
    name: String,
    #[serde(default, deserialize_with = "nul")]
    project_id: String,
    #[serde(default, deserialize_with = "nul")]
    status: String,
    #[serde(default, deserialize_with = "zone_of")]
    zone: String,
    #[serde(default, deserialize_with = "nul")]
    offer_id: String,
    #[serde(default, deserialize_with = "nul")]
    tags: Vec<String>,
    #[serde(default)]
    install: Option<Install>,
    #[serde(default, deserialize_with = "nul")]
    ips: Vec<Option<BaremetalIp>>,
}

#[derive(Debug, Default, Deserialize)]
struct Os {
    #[serde(default, deserialize_with = "nul")]
    id: String,
    #[serde(default, deserialize_with = "nul")]
    name: String,
    #[serde(default, deserialize_with = "nul")]
    version: String,
}

/// A page of any listing: its total and its items under `key`.
#[derive(Debug, Default, Deserialize)]
struct Listed {
    #[serde(default, deserialize_with = "nul")]
    total_count: u64,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

/// What a refresh is listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Servers,
    /// IPAM, the `n`th region needing it.
    Ipam(usize),
    Offers,
    Os,
}

/// The head of the answer in progress.
#[derive(Debug, Default)]
struct Head {
    status_line: String,
    content_type: String,
    total: Option<String>,
    empty: bool,
}

/// The refresh of one role.
#[derive(Debug)]
struct Listing {
    base: String,
    zone: String,
    role: ScalewayRole,
    name: String,
    tags: Vec<String>,
    port: i64,
    phase: Phase,
    page: u64,
    /// The pages of the listing in progress, once its first answer told.
    pages: Option<u64>,
    head: Head,
    instances: Vec<InstanceServer>,
    /// Regions whose private NICs IPAM is asked for, with their NIC ids.
    regions: Vec<(String, Vec<String>)>,
    nic_ips: std::collections::BTreeMap<String, String>,
    metal: Vec<BaremetalServer>,
    offers: Vec<Named>,
    os: Vec<Os>,
}

/// Go's `url.Values.Encode`: keys sorted, each value query-escaped.
fn encode(mut pairs: Vec<(&str, String)>) -> String {
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::gourl::query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Listing {
    fn url(&self) -> String {
        let page = self.page.to_string();
        let zone = &self.zone;
        let (path, mut q) = match (self.role.as_str(), self.phase) {
            ("instance", Phase::Servers) => {
                let mut q = vec![("order", INSTANCE_ORDER.to_owned()), ("page", page)];
                if !self.tags.is_empty() {
                    q.push(("tags", self.tags.join(",")));
                }
                (format!("/instance/v1/zones/{zone}/servers"), q)
            }
            (_, Phase::Ipam(n)) => {
                let (region, ids) = &self.regions[n];
                let mut q = vec![
                    ("order_by", "created_at_desc".to_owned()),
                    ("page", page),
                    ("resource_type", "unknown_type".to_owned()),
                    ("resource_types", "instance_private_nic".to_owned()),
                ];
                q.extend(ids.iter().map(|i| ("resource_ids", i.clone())));
                (format!("/ipam/v1/regions/{region}/ips"), q)
            }
            (_, Phase::Servers) => {
                let mut q = vec![("order_by", "created_at_asc".to_owned()), ("page", page)];
                q.extend(self.tags.iter().map(|t| ("tags", t.clone())));
                (format!("/baremetal/v1/zones/{zone}/servers"), q)
            }
            (_, Phase::Offers) => (
                format!("/baremetal/v1/zones/{zone}/offers"),
                vec![
                    ("page", page),
                    (
                        "subscription_period",
                        "unknown_subscription_period".to_owned(),
                    ),
                ],
            ),
            (_, Phase::Os) => (
                format!("/baremetal/v1/zones/{zone}/os"),
                vec![("page", page)],
            ),
        };
        if !self.name.is_empty() && self.phase == Phase::Servers {
            q.push(("name", self.name.clone()));
        }
        format!("{}{path}?{}", self.base, encode(q))
    }
}

/// Go's `%v` of a `map[string][]string`: `map[a:[x y] b:[z]]`, keys sorted.
fn go_fields(fields: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut keys: Vec<&String> = fields.keys().collect();
    keys.sort();
    let parts: Vec<String> = keys
        .iter()
        .map(|k| {
            let vals: Vec<&str> = fields[*k]
                .as_array()
                .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
                .unwrap_or_default();
            format!("{k}:[{}]", vals.join(" "))
        })
        .collect();
    format!("map[{}]", parts.join(" "))
}

/// The SDK's error for an answer that is not 2xx (`hasResponseError` and the standard
/// errors it decodes by `type`).
fn api_error(status_line: &str, content_type: &str, body: &[u8]) -> String {
    if !content_type.starts_with("application/json") {
        return format!("{SDK}http error {status_line}: {status_line}");
    }
    let v: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return format!("{SDK}could not parse error response body: {e}"),
    };
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let details = || v["details"].as_array().cloned().unwrap_or_default();
    let d = |x: &serde_json::Value, k: &str| x[k].as_str().unwrap_or_default().to_owned();
    match s("type").as_str() {
        "invalid_arguments" => {
            let args: Vec<String> = details()
                .iter()
                .map(|x| {
                    let mut a = d(x, "argument_name");
                    a.push_str(match d(x, "reason").as_str() {
                        "unknown" => " is invalid for unexpected reason",
                        "required" => " is required",
                        "format" => " is wrongly formatted",
                        "constraint" => " does not respect constraint",
                        _ => "",
                    });
                    let help = d(x, "help_message");
                    if !help.is_empty() {
                        a.push_str(", ");
                        a.push_str(&help);
                    }
                    a
                })
                .collect();
            format!("{SDK}invalid argument(s): {}", args.join("; "))
        }
        "quotas_exceeded" => {
            let q: Vec<String> = details()
                .iter()
                .map(|x| {
                    format!(
                        "{} has reached its quota ({}/{})",
                        d(x, "resource"),
                        x["current"].as_u64().unwrap_or(0),
                        x["quota"].as_u64().unwrap_or(0)
                    )
                })
                .collect();
            format!("{SDK}quota exceeded(s): {}", q.join("; "))
        }
        "transient_state" => format!(
            "{SDK}resource {} with ID {} is in a transient state: {}",
            s("resource"),
            s("resource_id"),
            s("current_state")
        ),
        "not_found" => format!(
            "{SDK}resource {} with ID {} is not found",
            s("resource"),
            s("resource_id")
        ),
        "locked" => format!(
            "{SDK}resource {} with ID {} is locked",
            s("resource"),
            s("resource_id")
        ),
        "permissions_denied" => {
            let p: Vec<String> = details()
                .iter()
                .map(|x| format!("{} {}", d(x, "action"), d(x, "resource")))
                .collect();
            format!("{SDK}insufficient permissions: {}", p.join("; "))
        }
        "out_of_stock" => format!("{SDK}resource {} is out of stock", s("resource")),
        "resource_expired" => format!(
            "{SDK}resource {} with ID {} expired since {}",
            s("resource"),
            s("resource_id"),
            s("expired_since")
        ),
        "denied_authentication" => {
            let method = match s("method").as_str() {
                "unknown_method" => "unknown method",
                "jwt" => "JWT",
                "api_key" => "API key",
                _ => "",
            };
            let reason = match s("reason").as_str() {
                "unknown_reason" => "unknown reason".to_owned(),
                "invalid_argument" => format!("invalid {method} format or empty value"),
                "not_found" => format!("{method} does not exist"),
                "expired" => format!("{method} is expired"),
                _ => String::new(),
            };
            format!("{SDK}denied authentication: {reason}")
        }
        "precondition_failed" => {
            let mut m = match s("precondition").as_str() {
                "unknown_precondition" => "unknown precondition",
                "resource_still_in_use" => "resource is still in use",
                "attribute_must_be_set" => "attribute must be set",
                _ => "",
            }
            .to_owned();
            let help = s("help_message");
            if !help.is_empty() {
                m.push_str(", ");
                m.push_str(&help);
            }
            format!("{SDK}precondition failed: {m}")
        }
        _ => {
            let mut e = format!("{SDK}http error {status_line}");
            let (resource, message) = (s("resource"), s("message"));
            if !resource.is_empty() {
                e.push_str(&format!(": resource {resource}"));
            }
            if !message.is_empty() {
                e.push_str(&format!(": {message}"));
            }
            if let Some(f) = v["fields"].as_object().filter(|f| !f.is_empty()) {
                e.push_str(&format!(": {}", go_fields(f)));
            }
            e
        }
    }
}

/// An IPAM address (`10.0.0.7/32`, or bare) without its prefix, as Go prints it.
fn ipam_address(a: &str) -> Result<String, String> {
    let ip = a.split_once('/').map_or(a, |(ip, _)| ip);
    go_ip(ip).ok_or_else(|| format!("invalid CIDR address: {a}"))
}

impl Listing {
    /// One page read: the next call, or (the last listing done) the group.
    fn page_of(&mut self, status: u16, body: &[u8]) -> Result<Step, String> {
        let head = std::mem::take(&mut self.head);
        if status / 100 != 2 {
            return Err(api_error(&head.status_line, &head.content_type, body));
        }
        let listed = if head.empty {
            Listed::default()
        } else if head.content_type.starts_with("application/json") {
            serde_json::from_slice::<Listed>(body).map_err(|e| {
                format!(
                    "{SDK}could not parse {} response body: {e}",
                    head.content_type
                )
            })?
        } else {
            return Err(format!(
                "{SDK}could not handle {} response body with <nil> result type",
                head.content_type
            ));
        };
        let mut total = listed.total_count;
        let items = |key: &str| {
            listed
                .rest
                .get(key)
                .cloned()
                .unwrap_or(serde_json::Value::Null)
        };
        let decode = |v: serde_json::Value| {
            serde_json::from_value::<Option<Vec<serde_json::Value>>>(v)
                .map(Option::unwrap_or_default)
        };
        let parse_err = |e: serde_json::Error| {
            format!(
                "{SDK}could not parse {} response body: {e}",
                head.content_type
            )
        };
        let n = match (self.role.as_str(), self.phase) {
            ("instance", Phase::Servers) => {
                if let Some(t) = head.total.as_deref().filter(|t| !t.is_empty()) {
                    let parsed = t.parse::<i32>().map_err(|e| {
                        let why = match e.kind() {
                            std::num::IntErrorKind::PosOverflow
                            | std::num::IntErrorKind::NegOverflow => "value out of range",
                            _ => "invalid syntax",
                        };
                        format!(
                            "{SDK}could not parse X-Total-Count header: strconv.ParseInt: parsing {}: {why}",
                            crate::goquote::quote(t)
                        )
                    })?;
                    // The SDK stores it as a uint32.
                    total = u64::from(parsed as u32);
                }
                let all = decode(items("servers")).map_err(parse_err)?;
                let n = all.len();
                for s in all {
                    let s: InstanceServer = serde_json::from_value(s).map_err(parse_err)?;
                    self.instances.push(s.defaults());
                }
                n
            }
            (_, Phase::Ipam(_)) => {
                let all = decode(items("ips")).map_err(parse_err)?;
                let n = all.len();
                for ip in all {
                    let ip: IpamIp = serde_json::from_value(ip).map_err(parse_err)?;
                    let address = ipam_address(&ip.address).map_err(|e| {
                        format!(
                            "{SDK}could not parse {} response body: {e}",
                            head.content_type
                        )
                    })?;
                    if let Some(r) = ip.resource.filter(|_| !ip.is_ipv6) {
                        self.nic_ips.insert(r.id, address);
                    }
                }
                n
            }
            (_, Phase::Servers) => {
                let all = decode(items("servers")).map_err(parse_err)?;
                let n = all.len();
                for s in all {
                    self.metal
                        .push(serde_json::from_value(s).map_err(parse_err)?);
                }
                n
            }
            (_, Phase::Offers) => {
                let all = decode(items("offers")).map_err(parse_err)?;
                let n = all.len();
                for o in all {
                    self.offers
                        .push(serde_json::from_value(o).map_err(parse_err)?);
                }
                n
            }
            (_, Phase::Os) => {
                let all = decode(items("os")).map_err(parse_err)?;
                let n = all.len();
                for o in all {
                    self.os.push(serde_json::from_value(o).map_err(parse_err)?);
                }
                n
            }
        } as u64;
        // The SDK's `doListAll`: the page count from the first page's size, an empty
        // page ends the listing.
        if n > 0 {
            let pages = *self
                .pages
                .get_or_insert_with(|| total.wrapping_add(n - 1) / n);
            if self.page < pages {
                self.page += 1;
                return Ok(Step::Next(self.call()));
            }
        }
        self.next_listing()
    }

    fn call(&self) -> Call {
        Call::get(self.url())
    }

    /// The listing after the one just read, or the group.
    fn next_listing(&mut self) -> Result<Step, String> {
        self.page = 1;
        self.pages = None;
        let next = match (self.role.as_str(), self.phase) {
            ("instance", Phase::Servers) => {
                self.regions = self.private_nic_regions()?;
                (!self.regions.is_empty()).then_some(Phase::Ipam(0))
            }
            ("instance", Phase::Ipam(n)) => {
                (n + 1 < self.regions.len()).then_some(Phase::Ipam(n + 1))
            }
            (_, Phase::Servers) => Some(Phase::Offers),
            (_, Phase::Offers) => Some(Phase::Os),
            _ => None,
        };
        match next {
            Some(p) => {
                self.phase = p;
                Ok(Step::Next(self.call()))
            }
            None => {
                let targets = if self.role.as_str() == "instance" {
                    self.instance_targets()
                } else {
                    self.metal_targets()?
                };
                Ok(Step::Done(vec![TargetGroup {
                    targets,
                    labels: Labels::empty(),
                    source: "scaleway".into(),
                }]))
            }
        }
    }

    /// 3.x's `privateNICIPs`: the private NICs of servers with no address, by region
    /// (in region order: 3.x's map order is random).
    fn private_nic_regions(&self) -> Result<Vec<(String, Vec<String>)>, String> {
        let mut by: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for s in &self.instances {
            if s.private_ip.is_some() || s.public_ip.is_some() || s.ipv6.is_some() {
                continue;
            }
            let region = region_of(&s.zone)?;
            let ids = by.entry(region).or_default();
            ids.extend(
                s.private_nics
                    .iter()
                    .flatten()
                    .filter(|n| !n.id.is_empty())
                    .map(|n| n.id.clone()),
            );
        }
        Ok(by.into_iter().filter(|(_, ids)| !ids.is_empty()).collect())
    }

    /// 3.x's `instanceDiscovery.refresh` from the servers and the IPAM addresses.
    fn instance_targets(&mut self) -> Vec<Labels> {
        const I: &str = "__meta_scaleway_instance_";
        let mut targets = Vec::new();
        for s in std::mem::take(&mut self.instances) {
            let mut l = vec![
                (format!("{I}boot_type"), s.boot_type),
                (format!("{I}hostname"), s.hostname),
                (format!("{I}id"), s.id),
                (format!("{I}name"), s.name),
                (format!("{I}organization_id"), s.organization),
                (format!("{I}project_id"), s.project),
                (format!("{I}status"), s.state),
                (format!("{I}type"), s.commercial_type),
                (format!("{I}zone"), s.zone.clone()),
            ];
            if let Some(i) = s.image {
                l.push((format!("{I}image_arch"), i.arch));
                l.push((format!("{I}image_id"), i.id));
                l.push((format!("{I}image_name"), i.name));
            }
            if let Some(loc) = s.location {
                l.push((format!("{I}location_cluster_id"), loc.cluster_id));
                l.push((format!("{I}location_hypervisor_id"), loc.hypervisor_id));
                l.push((format!("{I}location_node_id"), loc.node_id));
            }
            if let Some(g) = s.security_group {
                l.push((format!("{I}security_group_id"), g.id));
                l.push((format!("{I}security_group_name"), g.name));
            }
            if let Ok(r) = region_of(&s.zone) {
                l.push((format!("{I}region"), r));
            }
            if !s.tags.is_empty() {
                l.push((format!("{I}tags"), surrounded(&s.tags)));
            }
            let family = |f: &str| -> Vec<String> {
                s.public_ips
                    .iter()
                    .flatten()
                    .filter(|ip| ip.family == f)
                    .map(|ip| shown(&ip.address))
                    .collect()
            };
            let (v4, v6) = (family("inet"), family("inet6"));
            if !v6.is_empty() {
                l.push((format!("{I}public_ipv6_addresses"), surrounded(&v6)));
            }
            if !v4.is_empty() {
                l.push((format!("{I}public_ipv4_addresses"), surrounded(&v4)));
            }
            let mut addr = String::new();
            if let Some(v6) = &s.ipv6 {
                addr = shown(&v6.address);
                l.push((format!("{I}public_ipv6"), addr.clone()));
            }
            if let Some(p) = &s.public_ip {
                addr = shown(&p.address);
                if p.family != "inet6" {
                    l.push((format!("{I}public_ipv4"), addr.clone()));
                }
            }
            if let Some(p) = &s.private_ip {
                addr = p.clone();
                l.push((format!("{I}private_ipv4"), addr.clone()));
            }
            if addr.is_empty()
                && let Some(ip) = s
                    .private_nics
                    .iter()
                    .flatten()
                    .find_map(|n| self.nic_ips.get(&n.id).filter(|ip| !ip.is_empty()))
            {
                addr = ip.clone();
                l.push((format!("{I}private_ipv4"), addr.clone()));
            }
            if !addr.is_empty() {
                l.push((
                    "__address__".into(),
                    join_host_port(&addr, &go_port(self.port)),
                ));
                targets.push(label_set(l));
            }
        }
        targets
    }

    /// 3.x's `baremetalDiscovery.refresh` from the servers, offers and images.
    fn metal_targets(&mut self) -> Result<Vec<Labels>, String> {
        const B: &str = "__meta_scaleway_baremetal_";
        let mut targets = Vec::new();
        for s in std::mem::take(&mut self.metal) {
            let status = if s.status.is_empty() {
                "unknown".into()
            } else {
                s.status
            };
            let mut l = vec![
                (format!("{B}id"), s.id),
                (format!("{B}name"), s.name),
                (format!("{B}zone"), s.zone),
                (format!("{B}status"), status),
                (format!("{B}project_id"), s.project_id),
            ];
            if let Some(o) = self.offers.iter().find(|o| o.id == s.offer_id) {
                l.push((format!("{B}type"), o.name.clone()));
            }
            if let Some(os) = s
                .install
                .as_ref()
                .and_then(|i| self.os.iter().find(|o| o.id == i.os_id))
            {
                l.push((format!("{B}os_name"), os.name.clone()));
                l.push((format!("{B}os_version"), os.version.clone()));
            }
            if !s.tags.is_empty() {
                l.push((format!("{B}tags"), surrounded(&s.tags)));
            }
            let (mut v4, mut v6, mut address) = (false, false, false);
            for ip in s.ips.iter().flatten() {
                let a = shown(&ip.address);
                let hostport = join_host_port(&a, &go_port(self.port));
                match ip.version.as_str() {
                    "IPv4" | "" if !v4 => {
                        v4 = true;
                        l.push((format!("{B}public_ipv4"), a));
                        l.push(("__address__".into(), hostport));
                        address = true;
                    }
                    "IPv4" | "" => {}
                    "IPv6" if !v6 => {
                        v6 = true;
                        l.push((format!("{B}public_ipv6"), a));
                        if !address {
                            l.push(("__address__".into(), hostport));
                            address = true;
                        }
                    }
                    "IPv6" => {}
                    other => return Err(format!("unknown IP version: {other}")),
                }
            }
            targets.push(label_set(l));
        }
        self.offers.clear();
        self.os.clear();
        Ok(targets)
    }
}

impl Pages for Listing {
    fn first(&mut self) -> Result<Call, String> {
        self.phase = Phase::Servers;
        self.page = 1;
        self.pages = None;
        self.instances.clear();
        self.regions.clear();
        self.nic_ips.clear();
        self.metal.clear();
        self.offers.clear();
        self.os.clear();
        Ok(self.call())
    }

    fn head(&mut self, status: u16, reason: &str, headers: &[(&str, &str)]) {
        let get = |name: &str| header(headers, name).map(str::to_owned);
        self.head = Head {
            status_line: go_status(status, reason),
            content_type: get("content-type").unwrap_or_default(),
            total: get("x-total-count"),
            empty: get("content-length").is_some_and(|l| l.trim() == "0"),
        };
    }

    fn answer(&mut self, status: u16, body: &[u8], _url: &str) -> Result<Step, String> {
        self.page_of(status, body)
    }

    fn failed(&self, e: String) -> String {
        format!("{SDK}error executing request: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        Drive, block, drive_block, error, error_at, null_entry_is_refused, unknown_field_names,
    };
    use crate::io::{IoCommand, IoEvent, IoOp};

    const JSON: (&str, &str) = ("Content-Type", "application/json");

    fn drive(extra: &str) -> Drive<Box<dyn SdMachine>> {
        drive_block::<Scaleway>(&format!("{}\napi_url: 'http://s'", valid(extra)), None)
    }

    fn drive_metal(extra: &str) -> Drive<Box<dyn SdMachine>> {
        let yaml = valid(extra).replace("role: instance", "role: baremetal");
        drive_block::<Scaleway>(&format!("{yaml}\napi_url: 'http://s'"), None)
    }

    fn ok(
        d: &mut Drive<Box<dyn SdMachine>>,
        id: crate::io::RequestId,
        extra: &[(&str, &str)],
        body: &serde_json::Value,
    ) {
        let mut h = vec![JSON];
        h.extend_from_slice(extra);
        let text = body.to_string();
        d.feed(
            id,
            IoEvent::HttpHead {
                status: 200,
                reason: "OK",
                headers: &h,
            },
        );
        d.feed(id, IoEvent::HttpBody(text.as_bytes()));
        d.feed(id, IoEvent::HttpEnd);
    }

    fn fail(
        d: &mut Drive<Box<dyn SdMachine>>,
        id: crate::io::RequestId,
        status: u16,
        reason: &str,
        ct: &str,
        body: &str,
    ) {
        let h = [("Content-Type", ct)];
        d.feed(
            id,
            IoEvent::HttpHead {
                status,
                reason,
                headers: &h,
            },
        );
        d.feed(id, IoEvent::HttpBody(body.as_bytes()));
        d.feed(id, IoEvent::HttpEnd);
    }

    /// A server as the Instance API reference shows one (the fields that matter here).
    fn server(id: &str, zone: &str) -> serde_json::Value {
        serde_json::json!({
            "id": id, "name": format!("srv-{id}"), "organization": "org-1", "project": "proj-1",
            "commercial_type": "DEV1-S", "hostname": format!("host-{id}"), "state": "running",
            "boot_type": "local", "zone": zone, "tags": [],
            "image": {"id": "img-1", "name": "Ubuntu 24.04 Noble Numbat", "arch": "x86_64"},
            "location": {"cluster_id": "7", "hypervisor_id": "801", "node_id": "95", "platform_id": "14", "zone_id": "par1"},
            "security_group": {"id": "sg-1", "name": "Default security group"},
            "private_ip": null, "public_ip": null, "public_ips": [], "ipv6": null, "private_nics": []
        })
    }

    #[test]
    fn instances_are_listed_with_3x_labels_and_addresses() {
        let mut d = drive("\nname_filter: web\ntags_filter: [a, 'b c']\nport: 9100");
        let s = d.started();
        assert_eq!(
            s[0].1,
            "http://s/instance/v1/zones/fr-par-1/servers?name=web&order=creation_date_desc&page=1&tags=a%2Cb+c"
        );
        assert!(s[0].2.contains(&("X-Auth-Token".into(), SECRET.into())));
        // Private address and IPv6: the private one is scraped.
        let mut a = server("a", "fr-par-1");
        a["private_ip"] = "10.70.60.57".into();
        a["ipv6"] = serde_json::json!({"address": "2001:bc8:630:1e1c::1", "gateway": "2001:bc8:630:1e1c::", "netmask": "64"});
        a["tags"] = serde_json::json!(["web", "prod"]);
        // Routed dual stack: the deprecated public_ip, and the list of public addresses.
        let mut b = server("b", "nl-ams-1");
        b["public_ip"] =
            serde_json::json!({"address": "51.158.183.115", "family": "inet", "dynamic": false});
        b["public_ips"] = serde_json::json!([
            {"address": "51.158.183.115", "family": "inet"},
            {"address": "2001:bc8:1640:1568:dc00:ff:fe21:91b", "family": "inet6"},
        ]);
        b["state"] = "".into();
        b["image"]["arch"] = serde_json::Value::Null;
        // No address at all, no NIC: dropped.
        let c = server("c", "par1");
        // The X-Total-Count of the Instance API says three: a page of two, then one.
        ok(
            &mut d,
            s[0].0,
            &[("X-Total-Count", "3")],
            &serde_json::json!({"servers": [a, b]}),
        );
        let (id, url) = d.one();
        assert!(url.contains("&page=2&"), "{url}");
        ok(
            &mut d,
            id,
            &[("X-Total-Count", "3")],
            &serde_json::json!({"servers": [c]}),
        );
        let g = &d.out.updates[0][0];
        assert_eq!((g.source.as_str(), g.targets.len()), ("scaleway", 2));
        assert_eq!(
            g.targets[0].to_string(),
            r#"{__address__="10.70.60.57:9100", __meta_scaleway_instance_boot_type="local", __meta_scaleway_instance_hostname="host-a", __meta_scaleway_instance_id="a", __meta_scaleway_instance_image_arch="x86_64", __meta_scaleway_instance_image_id="img-1", __meta_scaleway_instance_image_name="Ubuntu 24.04 Noble Numbat", __meta_scaleway_instance_location_cluster_id="7", __meta_scaleway_instance_location_hypervisor_id="801", __meta_scaleway_instance_location_node_id="95", __meta_scaleway_instance_name="srv-a", __meta_scaleway_instance_organization_id="org-1", __meta_scaleway_instance_private_ipv4="10.70.60.57", __meta_scaleway_instance_project_id="proj-1", __meta_scaleway_instance_public_ipv6="2001:bc8:630:1e1c::1", __meta_scaleway_instance_region="fr-par", __meta_scaleway_instance_security_group_id="sg-1", __meta_scaleway_instance_security_group_name="Default security group", __meta_scaleway_instance_status="running", __meta_scaleway_instance_tags=",web,prod,", __meta_scaleway_instance_type="DEV1-S", __meta_scaleway_instance_zone="fr-par-1"}"#
        );
        let t = &g.targets[1];
        for (k, v) in [
            ("__address__", "51.158.183.115:9100"),
            ("__meta_scaleway_instance_public_ipv4", "51.158.183.115"),
            (
                "__meta_scaleway_instance_public_ipv4_addresses",
                ",51.158.183.115,",
            ),
            (
                "__meta_scaleway_instance_public_ipv6_addresses",
                ",2001:bc8:1640:1568:dc00:ff:fe21:91b,",
            ),
            ("__meta_scaleway_instance_region", "nl-ams"),
            ("__meta_scaleway_instance_status", "running"),
            ("__meta_scaleway_instance_image_arch", "unknown_arch"),
        ] {
            assert_eq!(t.get(k), Some(v), "{k}");
        }
    }

    /// 3.x's `TestScalewayInstanceRefreshIPAMPrivateNIC`: a server with no address is
    /// scraped at its private NIC's address from IPAM.
    #[test]
    fn a_server_without_addresses_gets_its_private_nic_from_ipam() {
        let mut d = drive("");
        let (id, _) = d.one();
        let mut a = server("a", "fr-par-1");
        a["private_nics"] =
            serde_json::json!([{"id": "nic-2", "state": "available"}, null, {"id": "nic-1"}]);
        let mut b = server("b", "nl-ams-2");
        b["private_nics"] = serde_json::json!([{"id": "nic-9"}]);
        ok(
            &mut d,
            id,
            &[],
            &serde_json::json!({"servers": [a, b], "total_count": 2}),
        );
        let (id, url) = d.one();
        assert_eq!(
            url,
            "http://s/ipam/v1/regions/fr-par/ips?order_by=created_at_desc&page=1&resource_ids=nic-2&resource_ids=nic-1&resource_type=unknown_type&resource_types=instance_private_nic"
        );
        ok(
            &mut d,
            id,
            &[],
            &serde_json::json!({"ips": [
            {"id": "ip-1", "address": "10.0.0.7/32", "is_ipv6": false, "resource": {"type": "instance_private_nic", "id": "nic-1"}},
            {"id": "ip-2", "address": "fd00::7/128", "is_ipv6": true, "resource": {"type": "instance_private_nic", "id": "nic-2"}},
        ], "total_count": 2}),
        );
        let (id, url) = d.one();
        assert!(
            url.starts_with("http://s/ipam/v1/regions/nl-ams/ips?"),
            "{url}"
        );
        ok(
            &mut d,
            id,
            &[],
            &serde_json::json!({"ips": [], "total_count": 0}),
        );
        let g = &d.out.updates[0][0];
        assert_eq!(g.targets.len(), 1);
        assert_eq!(g.targets[0].get("__address__"), Some("10.0.0.7:80"));
        assert_eq!(
            g.targets[0].get("__meta_scaleway_instance_private_ipv4"),
            Some("10.0.0.7")
        );
    }

    #[test]
    fn elastic_metal_servers_get_their_offer_and_os() {
        let mut d = drive_metal("\ntags_filter: [a, b]");
        let (id, url) = d.one();
        assert_eq!(
            url,
            "http://s/baremetal/v1/zones/fr-par-1/servers?order_by=created_at_asc&page=1&tags=a&tags=b"
        );
        let servers = serde_json::json!({"total_count": 2, "servers": [
            {"id": "m1", "name": "metal-1", "project_id": "p", "status": "ready", "zone": "fr-par-2",
             "offer_id": "o1", "tags": ["db"], "install": {"os_id": "os1", "hostname": "m1"},
             "ips": [{"id": "i6", "address": "2001:db8::1", "version": "IPv6"}, {"id": "i4", "address": "192.0.2.1", "version": "IPv4"}, {"address": "192.0.2.2", "version": "IPv4"}]},
            {"id": "m2", "name": "metal-2", "project_id": "p", "status": "", "zone": "fr-par-2", "offer_id": "nope", "install": null,
             "ips": [{"address": "2001:db8::2", "version": "IPv6"}]}
        ]});
        ok(&mut d, id, &[], &servers);
        let (id, url) = d.one();
        assert_eq!(
            url,
            "http://s/baremetal/v1/zones/fr-par-1/offers?page=1&subscription_period=unknown_subscription_period"
        );
        ok(
            &mut d,
            id,
            &[],
            &serde_json::json!({"total_count": 1, "offers": [{"id": "o1", "name": "EM-A115X-SSD"}]}),
        );
        let (id, url) = d.one();
        assert_eq!(url, "http://s/baremetal/v1/zones/fr-par-1/os?page=1");
        ok(
            &mut d,
            id,
            &[],
            &serde_json::json!({"total_count": 1, "os": [{"id": "os1", "name": "Ubuntu", "version": "24.04"}]}),
        );
        let g = &d.out.updates[0][0];
        assert_eq!(
            g.targets[0].to_string(),
            r#"{__address__="192.0.2.1:80", __meta_scaleway_baremetal_id="m1", __meta_scaleway_baremetal_name="metal-1", __meta_scaleway_baremetal_os_name="Ubuntu", __meta_scaleway_baremetal_os_version="24.04", __meta_scaleway_baremetal_project_id="p", __meta_scaleway_baremetal_public_ipv4="192.0.2.1", __meta_scaleway_baremetal_public_ipv6="2001:db8::1", __meta_scaleway_baremetal_status="ready", __meta_scaleway_baremetal_tags=",db,", __meta_scaleway_baremetal_type="EM-A115X-SSD", __meta_scaleway_baremetal_zone="fr-par-2"}"#
        );
        assert_eq!(g.targets[1].get("__address__"), Some("[2001:db8::2]:80"));
        assert_eq!(
            g.targets[1].get("__meta_scaleway_baremetal_status"),
            Some("unknown")
        );
        assert_eq!(g.targets[1].get("__meta_scaleway_baremetal_type"), None);
    }

    #[test]
    fn failures_are_worded_as_the_sdk_words_them_and_keep_the_targets() {
        let mut d = drive("\nrefresh_interval: 10s");
        let (id, _) = d.one();
        fail(
            &mut d,
            id,
            401,
            "Unauthorized",
            "text/plain; charset=utf-8",
            "bad token id\n",
        );
        for (status, reason, body) in [
            (
                401,
                "Unauthorized",
                r#"{"type": "denied_authentication", "method": "api_key", "reason": "not_found", "message": "x"}"#,
            ),
            (
                403,
                "Forbidden",
                r#"{"type": "permissions_denied", "details": [{"resource": "instance_server", "action": "read"}, {"resource": "ipam", "action": "list"}]}"#,
            ),
            (
                400,
                "Bad Request",
                r#"{"type": "invalid_arguments", "details": [{"argument_name": "page", "reason": "constraint", "help_message": "must be > 0"}]}"#,
            ),
            (
                403,
                "Forbidden",
                r#"{"message": "forbidden", "type": "forbidden", "fields": {"b": ["y"], "a": ["x", "z"]}}"#,
            ),
            (500, "Internal Server Error", ""),
        ] {
            let (id, _) = d.one_after_advance();
            fail(&mut d, id, status, reason, "application/json", body);
        }
        let (id, _) = d.one_after_advance();
        ok(
            &mut d,
            id,
            &[("X-Total-Count", "many")],
            &serde_json::json!({"servers": []}),
        );
        let (id, _) = d.one_after_advance();
        ok(
            &mut d,
            id,
            &[],
            &serde_json::json!({"servers": [{"zone": "mars"}], "total_count": 1}),
        );
        let (id, _) = d.one_after_advance();
        d.feed(id, IoEvent::Failed("connection refused"));
        assert_eq!(
            d.out.failures,
            [
                "scaleway-sdk-go: http error 401 Unauthorized: 401 Unauthorized",
                "scaleway-sdk-go: denied authentication: API key does not exist",
                "scaleway-sdk-go: insufficient permissions: read instance_server; list ipam",
                "scaleway-sdk-go: invalid argument(s): page does not respect constraint, must be > 0",
                "scaleway-sdk-go: http error 403 Forbidden: forbidden: map[a:[x z] b:[y]]",
                "scaleway-sdk-go: could not parse error response body: EOF while parsing a value at line 1 column 0",
                r#"scaleway-sdk-go: could not parse X-Total-Count header: strconv.ParseInt: parsing "many": invalid syntax"#,
                "scaleway-sdk-go: could not parse application/json response body: scaleway-sdk-go: bad zone format, available zones are: fr-par-1, fr-par-2, fr-par-3, nl-ams-1, nl-ams-2, nl-ams-3, pl-waw-1, pl-waw-2, pl-waw-3, it-mil-1",
                r#"scaleway-sdk-go: error executing request: Get "http://s/instance/v1/zones/fr-par-1/servers?order=creation_date_desc&page=1": connection refused"#,
            ]
        );
        assert!(d.out.updates.is_empty());
    }

    #[test]
    fn a_secret_key_file_is_read_for_each_request() {
        let d = drive_block::<Scaleway>(
            &format!(
                "role: instance\nproject_id: {PROJECT}\naccess_key: SCWABCDEFGHIJ0123456\nsecret_key_file: key\napi_url: 'http://s'\nbearer_token_file: tok"
            ),
            None,
        );
        let req =
            d.io.queue
                .iter()
                .find_map(|c| match c {
                    IoCommand::Start(_, IoOp::Http(r)) => Some(r.clone()),
                    _ => None,
                })
                .expect("a request");
        assert!(req.headers.iter().all(|(k, _)| k != "X-Auth-Token"));
        assert_eq!(
            req.credentials_file,
            Some(crate::io::CredentialsFile::Header {
                name: "X-Auth-Token".into(),
                path: "/etc/prometheus/key".into(),
                and: Some(Box::new(crate::io::CredentialsFile::Credentials {
                    kind: "Bearer".into(),
                    path: "/etc/prometheus/tok".into()
                })),
            })
        );
    }

    const KEY: &str = "scaleway_sd_configs";
    const PROJECT: &str = "11111111-2222-3333-4444-555555555555";
    const SECRET: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

    fn valid(extra: &str) -> String {
        format!(
            "role: instance\nproject_id: {PROJECT}\naccess_key: SCWABCDEFGHIJ0123456\nsecret_key: {SECRET}{extra}"
        )
    }

    #[test]
    fn defaults_are_applied() {
        let c: ScalewaySdConfig = block(KEY, &valid(""));
        assert_eq!(c.role.as_str(), "instance");
        assert_eq!(c.api_url, "https://api.scaleway.com");
        assert_eq!(c.zone, "fr-par-1");
        assert_eq!(
            (c.port, c.refresh_interval),
            (80, PromDuration::from_secs(60))
        );
        assert_eq!(c.http_client, HttpClientConfig::default());
        let c: ScalewaySdConfig = block(
            KEY,
            &format!(
                "role: baremetal\nproject_id: {PROJECT}\naccess_key: SCWABCDEFGHIJ0123456\nsecret_key_file: keys/scw\ntags_filter: [a]"
            ),
        );
        assert_eq!(c.secret_key_file, "/etc/prometheus/keys/scw");
        assert_eq!(c.tags_filter, ["a"]);
    }

    #[test]
    fn own_checks_in_order() {
        assert_eq!(
            error_at(KEY, "project_id: p"),
            (4, 9, "role missing (one of: instance, baremetal)".into())
        );
        assert_eq!(
            error_at(KEY, "role: server"),
            (4, 15, r#"unknown role "server""#.into())
        );
        assert_eq!(error(KEY, "role: instance"), "project_id is mandatory");
        assert_eq!(
            error(KEY, "role: instance\nproject_id: p"),
            "one of secret_key & secret_key_file must be configured"
        );
        assert_eq!(
            error(
                KEY,
                "role: instance\nproject_id: p\nsecret_key: s\nsecret_key_file: f"
            ),
            "at most one of secret_key & secret_key_file must be configured"
        );
        assert_eq!(
            error(KEY, "role: instance\nproject_id: p\nsecret_key: s"),
            "access_key is mandatory"
        );
    }

    #[test]
    fn sdk_checks_in_order() {
        let sdk = |body: String| error(KEY, &body);
        assert_eq!(
            sdk(valid("").replace("SCWABCDEFGHIJ0123456", "SCWabc")),
            "scaleway-sdk-go: invalid access key format 'SCWabc', expected SCWXXXXXXXXXXXXXXXXX format"
        );
        assert_eq!(
            sdk(valid("").replace(SECRET, "not-a-uuid")),
            "scaleway-sdk-go: invalid secret key format '<secret>', expected a UUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
        );
        assert_eq!(
            sdk(valid("").replace(PROJECT, "p")),
            "scaleway-sdk-go: invalid project ID format 'p', expected a UUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
        );
        assert_eq!(
            sdk(valid("\nzone: ~")),
            "scaleway-sdk-go: default zone cannot be empty"
        );
        assert_eq!(
            sdk(valid("\nzone: paris")),
            "scaleway-sdk-go: invalid default zone format 'paris', available zones are: fr-par-1, fr-par-2, fr-par-3, nl-ams-1, nl-ams-2, nl-ams-3, pl-waw-1, pl-waw-2, pl-waw-3, it-mil-1"
        );
        // Any well-formed zone passes, listed or not.
        let _: ScalewaySdConfig = block(KEY, &valid("\nzone: xx-abcdefg-99"));
        assert_eq!(
            sdk(valid("\napi_url: ''")),
            "scaleway-sdk-go: invalid API url ''"
        );
        assert_eq!(
            sdk(valid("\napi_url: ':x'")),
            "scaleway-sdk-go: invalid API url ':x'"
        );
        assert_eq!(
            sdk(valid("\napi_url: 'https://api.example/'")),
            "scaleway-sdk-go: invalid API url 'https://api.example/' it should not have a trailing slash"
        );
        // The client comes last.
        assert_eq!(
            sdk(valid("\nbearer_token: a\nbearer_token_file: b")),
            "at most one of bearer_token & bearer_token_file must be configured"
        );
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, &valid(""), "scaleway.plain");
    }
}
