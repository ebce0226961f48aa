//! `linode_sd_configs`: Linode instances of an account, listed every `refresh_interval`.
//! Validation follows 3.x's `discovery/linode` `SDConfig.UnmarshalYAML` (only the HTTP
//! client options are checked); the refresh follows its `Discovery.refresh` and
//! `refreshData` over linodego (v1.69):
//!
//! * The first refresh, and every one after which event polling finds changes (or after
//!   ten polls without any), lists everything: `GET /v4/linode/instances`, then
//!   `/v4/networking/ips`, then `/v4/networking/ipv6/ranges`, each `?page=N&page_size=500`
//!   page by page up to the answer's `pages` (linodego's `handlePaginatedResults`), with
//!   `X-Filter: {"region": "<region>"}` when `region` is set.
//! * In between, one `GET /v4/account/events?page=1&page_size=25` with `X-Filter:
//!   {"created": {"+gte": "<last refresh>"}}`: no event, the last groups again; a `401`
//!   (a token without `events:read_only`) turns polling off for good, as in 3.x.
//!
//! A target per instance with an IPv4 address, at its first public IPv4 and `port`,
//! with 3.x's `__meta_linode_*` labels (addresses and reverse DNS from the IP listing,
//! routed IPv6 ranges); one group, source `Linode`. Failures are linodego's
//! `[<code>] <message>` (code 2 for a transport or decoding failure) and keep the last
//! group.
//!
//! Where trawl differs, deliberately: the time the event filter starts from is the
//! API's own clock — the `Date` of the last successful refresh's first answer, less a
//! second — where 3.x reads the agent's clock (a skewed clock misses events or polls
//! needlessly); a first answer without a `Date` makes the next refresh a full one. An
//! error status whose body names no error fails the refresh (linodego reads it as an
//! empty listing, and 3.x then drops every target — or, on the event poll, takes it
//! for a quiet one). linodego retries in the refresh what it takes for a passing
//! condition (429, 408, 503 but in maintenance, a 400 "Linode busy." or from nginx as
//! HTML, HTTP/2 GOAWAY; after `Retry-After`, up to 1000 times); trawl fails the refresh
//! and tries at the next interval. The `LINODE_URL`, `LINODE_API_VERSION` and
//! `LINODE_CA` environment variables linodego reads are not read. A body quoted in a
//! message is cut at 4 KiB, and a decoding failure is worded by serde, not Go.

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::groups::{TargetGroup, go_ip, go_port, header, join_host_port, label_set, nul};
use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, text, whole};
use super::paged::{self, Call, Pages, Step};
use super::refresh::status_text;
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;
use crate::labels::Labels;
use crate::time::UnixNanos;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Linode;

with_http_client! {
    /// `linode_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawLinodeSd {
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        port: Nullable<i64>,
        #[serde(default)]
        tag_separator: Nullable<LenientString>,
        #[serde(default)]
        region: LenientString,
    }
}

/// Linode discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinodeSdConfig {
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// Joins the tags in `__meta_linode_tags` (default `,`).
    pub tag_separator: String,
    /// Only instances of this region, if set.
    pub region: String,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Linode {
    const KEY: &'static str = "linode_sd_configs";
    const NAME: &'static str = "linode";
    const GO_TYPE: &'static str = "linode.plain";
    const RUNS: bool = true;
    const EXAMPLE: Option<&'static str> = Some("{port: 9100, region: us-east}");
    type Raw = RawLinodeSd;
    type Config = LinodeSdConfig;

    fn validate(mut raw: RawLinodeSd, cx: &SdContext<'_>) -> Result<LinodeSdConfig, Invalid> {
        let http_client = raw.take_http_client().validate(&cx.paths).map_err(whole)?;
        Ok(LinodeSdConfig {
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            port: raw.port.onto(80),
            tag_separator: text(raw.tag_separator, ","),
            region: raw.region.0,
            http_client,
        })
    }

    fn machine(cfg: &LinodeSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        let pages = Listing {
            base: format!("{}/v4", cx.env.api_base(Linode::NAME, API)),
            port: cfg.port,
            separator: cfg.tag_separator.clone(),
            // 3.x's `regionFilterTemplate`, the region put in as written.
            region: (!cfg.region.is_empty()).then(|| format!(r#"{{"region": "{}"}}"#, cfg.region)),
            last: None,
            polling: true,
            polls: 0,
            since: None,
            phase: Phase::Instances,
            page: 1,
            started: None,
            head: Head::default(),
            instances: Vec::new(),
            ips: Vec::new(),
            ranges: Vec::new(),
        };
        Some(paged::machine(
            pages,
            &cfg.http_client,
            &[
                ("Accept", "application/json"),
                ("Content-Type", "application/json"),
            ],
            cfg.refresh_interval.to_std(),
            ERROR_BODY,
            cx,
        ))
    }
}

/// linodego's `APIProto://APIHost`.
const API: &str = "https://api.linode.com";
/// How much of an error answer is kept (its errors, or the body a message quotes).
const ERROR_BODY: usize = 4096;
/// Polls without an event before a full refresh anyway (3.x: "~10 polling intervals").
const POLLS: u32 = 10;

const P: &str = "__meta_linode_";

/// linodego's `Instance` (the fields discovery reads).
#[derive(Debug, Default, Deserialize)]
struct Instance {
    #[serde(default, deserialize_with = "nul")]
    id: i64,
    #[serde(default, deserialize_with = "nul")]
    label: String,
    #[serde(default, deserialize_with = "nul")]
    image: String,
    #[serde(default, deserialize_with = "nul")]
    region: String,
    #[serde(default, rename = "type", deserialize_with = "nul")]
    kind: String,
    #[serde(default, deserialize_with = "nul")]
    status: String,
    #[serde(default, deserialize_with = "nul")]
    group: String,
    #[serde(default, deserialize_with = "nul")]
    hypervisor: String,
    #[serde(default, deserialize_with = "nul")]
    ipv4: Vec<Option<String>>,
    #[serde(default, deserialize_with = "nul")]
    ipv6: String,
    #[serde(default, deserialize_with = "nul")]
    tags: Vec<String>,
    #[serde(default, deserialize_with = "nul")]
    specs: Specs,
    #[serde(default, deserialize_with = "nul")]
    backups: Backups,
}

#[derive(Debug, Default, Deserialize)]
struct Specs {
    #[serde(default, deserialize_with = "nul")]
    disk: i64,
    #[serde(default, deserialize_with = "nul")]
    memory: i64,
    #[serde(default, deserialize_with = "nul")]
    vcpus: i64,
    #[serde(default, deserialize_with = "nul")]
    transfer: i64,
    #[serde(default, deserialize_with = "nul")]
    gpus: i64,
}

#[derive(Debug, Default, Deserialize)]
struct Backups {
    #[serde(default, deserialize_with = "nul")]
    enabled: bool,
}

/// linodego's `InstanceIP` (the fields discovery reads).
#[derive(Debug, Default, Deserialize)]
struct Ip {
    #[serde(default, deserialize_with = "nul")]
    address: String,
    #[serde(default, deserialize_with = "nul")]
    public: bool,
    #[serde(default, deserialize_with = "nul")]
    rdns: String,
}

/// linodego's `IPv6Range` (the fields discovery reads).
#[derive(Debug, Default, Deserialize)]
struct Range {
    #[serde(default, deserialize_with = "nul")]
    range: String,
    #[serde(default, deserialize_with = "nul")]
    prefix: i64,
    #[serde(default, deserialize_with = "nul")]
    route_target: String,
}

/// linodego's `paginatedResponse`.
#[derive(Debug, Deserialize)]
#[serde(bound = "T: Deserialize<'de> + Default")]
struct Page<T> {
    #[serde(default, deserialize_with = "nul")]
    pages: i64,
    #[serde(default, deserialize_with = "nul")]
    data: Vec<T>,
}

/// linodego's `APIError`.
#[derive(Debug, Default, Deserialize)]
struct ApiError {
    #[serde(default, deserialize_with = "nul")]
    errors: Vec<Reason>,
}

#[derive(Debug, Default, Deserialize)]
struct Reason {
    #[serde(default, deserialize_with = "nul")]
    reason: String,
    #[serde(default, deserialize_with = "nul")]
    field: String,
}

/// What a refresh is listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Events,
    Instances,
    Ips,
    Ranges,
}

impl Phase {
    fn path(self) -> &'static str {
        match self {
            Phase::Events => "account/events",
            Phase::Instances => "linode/instances",
            Phase::Ips => "networking/ips",
            Phase::Ranges => "networking/ipv6/ranges",
        }
    }
}

/// What the answer in progress said in its head.
#[derive(Debug, Default)]
struct Head {
    content_type: String,
    date: Option<UnixNanos>,
}

/// linodego's `Error`: its code (the status, or 2 for a failure of its own) and message.
#[derive(Debug)]
struct ApiFailure {
    code: u16,
    message: String,
    /// The API's own errors (linodego's `*Error` from `NewError(r)`): the one failure
    /// 3.x's `errors.As` recognises, and so the one whose 401 turns polling off.
    api: bool,
}

impl ApiFailure {
    fn own(message: impl Into<String>) -> ApiFailure {
        // linodego's `ErrorFromError`.
        ApiFailure {
            code: 2,
            message: message.into(),
            api: false,
        }
    }

    fn status(code: u16, message: String) -> ApiFailure {
        ApiFailure {
            code,
            message,
            api: false,
        }
    }

    fn text(&self) -> String {
        format!("[{:03}] {}", self.code, self.message)
    }
}

/// resty's `IsJSONType`, its unanchored `(?i:(application|text)/(.*json.*)(;|$))`: some
/// `application/` or `text/` followed, anywhere after, by `json`.
fn is_json_type(ct: &str) -> bool {
    let lower = ct.to_ascii_lowercase();
    ["application/", "text/"].iter().any(|t| {
        lower
            .match_indices(t)
            .any(|(i, _)| lower[i + t.len()..].contains("json"))
    })
}

/// A refresh, and what the next one needs of the last.
#[derive(Debug)]
struct Listing {
    base: String,
    port: i64,
    separator: String,
    /// The `X-Filter` of the full listing's calls.
    region: Option<String>,
    /// The groups of the last full listing (3.x's `lastResults`).
    last: Option<Vec<TargetGroup>>,
    /// Event polling is on (3.x's `eventPollingEnabled`).
    polling: bool,
    /// Polls since the last full listing (3.x's `pollCount`).
    polls: u32,
    /// Where the next event poll starts, in the API's clock.
    since: Option<UnixNanos>,
    phase: Phase,
    page: i64,
    /// The `Date` of this refresh's first answer (`Some(None)`: it had none).
    started: Option<Option<UnixNanos>>,
    head: Head,
    instances: Vec<Instance>,
    ips: Vec<Ip>,
    ranges: Vec<Range>,
}

impl Listing {
    fn call(&self) -> Call {
        let (size, filter) = match self.phase {
            Phase::Events => (
                25,
                self.since
                    .map(|t| format!(r#"{{"created": {{"+gte": "{}"}}}}"#, t.to_datetime_secs())),
            ),
            _ => (500, self.region.clone()),
        };
        let c = Call::get(format!(
            "{}/{}?page={}&page_size={size}",
            self.base,
            self.phase.path(),
            self.page
        ));
        match filter {
            Some(f) => c.header("X-Filter", f),
            None => c,
        }
    }

    fn list_all(&mut self) -> Call {
        self.phase = Phase::Instances;
        self.page = 1;
        self.call()
    }

    /// An answer's body as linodego's `coupleAPIErrors` over resty reads it.
    fn check<'b>(&self, status: u16, body: &'b [u8]) -> Result<&'b [u8], ApiFailure> {
        let ct = self.head.content_type.as_str();
        if status / 100 == 2 {
            // resty decodes a 2xx as the result when it is JSON (or says nothing).
            if ct.is_empty() || is_json_type(ct) {
                return Ok(body);
            }
        } else if status == 502 && ct == "text/html" {
            return Err(ApiFailure::status(502, status_text(502)));
        }
        if ct != "application/json" {
            // The body quoted as linodego quotes it, cut as error bodies are (a 2xx
            // body is whole here).
            let quoted = &body[..body.len().min(ERROR_BODY)];
            return Err(ApiFailure::status(
                status,
                format!(
                    "Unexpected Content-Type: Expected: application/json, Received: {ct}\nResponse body: {}",
                    String::from_utf8_lossy(quoted)
                ),
            ));
        }
        let reasons = serde_json::from_slice::<ApiError>(body)
            .map(|e| e.errors)
            .unwrap_or_default();
        if reasons.is_empty() {
            // linodego reads this as an empty listing; trawl keeps the last targets.
            return Err(ApiFailure::status(status, status_text(status)));
        }
        let message = reasons
            .iter()
            .map(|r| match r.field.as_str() {
                "" => r.reason.clone(),
                f => format!("[{f}] {}", r.reason),
            })
            .collect::<Vec<_>>()
            .join("; ");
        Err(ApiFailure {
            code: status,
            message,
            api: true,
        })
    }

    /// One page of the full listing read; the next call, or the groups.
    fn page_of(&mut self, body: &[u8]) -> Result<Step, ApiFailure> {
        let de = |e: serde_json::Error| ApiFailure::own(e.to_string());
        let pages = match self.phase {
            Phase::Instances => {
                let p: Page<Instance> = serde_json::from_slice(body).map_err(de)?;
                self.instances.extend(p.data);
                p.pages
            }
            Phase::Ips => {
                let p: Page<Ip> = serde_json::from_slice(body).map_err(de)?;
                self.ips.extend(p.data);
                p.pages
            }
            Phase::Ranges => {
                let p: Page<Range> = serde_json::from_slice(body).map_err(de)?;
                self.ranges.extend(p.data);
                p.pages
            }
            // `step` reads event pages itself.
            Phase::Events => return Err(ApiFailure::own("an event page read as a listing")),
        };
        if self.page < pages {
            self.page = self.page.wrapping_add(1);
            return Ok(Step::Next(self.call()));
        }
        self.page = 1;
        match self.phase {
            Phase::Instances => self.phase = Phase::Ips,
            Phase::Ips => self.phase = Phase::Ranges,
            Phase::Ranges | Phase::Events => {
                let groups = vec![self.group()?];
                self.last = Some(groups.clone());
                self.polls = 0;
                return Ok(self.done(groups));
            }
        }
        Ok(Step::Next(self.call()))
    }

    /// The refresh ends with `groups`; the next event poll starts from its first answer.
    fn done(&mut self, groups: Vec<TargetGroup>) -> Step {
        self.since = self
            .started
            .flatten()
            .map(|t| UnixNanos(t.0.saturating_sub(1_000_000_000)));
        Step::Done(groups)
    }

    /// 3.x's `refreshData` from the three listings.
    fn group(&mut self) -> Result<TargetGroup, ApiFailure> {
        let ips = std::mem::take(&mut self.ips);
        let ranges = std::mem::take(&mut self.ranges);
        let rdns = |r: &str| match r {
            "null" => String::new(),
            r => r.to_owned(),
        };
        let mut targets = Vec::new();
        for i in std::mem::take(&mut self.instances) {
            if i.ipv4.is_empty() {
                continue;
            }
            let (mut private, mut public, mut public6) =
                (String::new(), String::new(), String::new());
            let (mut private_rdns, mut public_rdns, mut public6_rdns) =
                (String::new(), String::new(), String::new());
            let mut extra = Vec::new();
            let mut routed = Vec::new();
            // Each address as Go's `net.IP` prints it (decoded from the JSON string).
            for ip in i.ipv4.iter().flatten() {
                // Go decodes `""` as a nil address, printed `<nil>` (it matches none).
                let ip = match ip.as_str() {
                    "" => "<nil>".to_owned(),
                    ip => go_ip(ip)
                        .ok_or_else(|| ApiFailure::own(format!("invalid IP address: {ip}")))?,
                };
                for d in ips.iter().filter(|d| d.address == ip) {
                    if d.public && public.is_empty() {
                        public = d.address.clone();
                        public_rdns = rdns(&d.rdns);
                    } else if !d.public && private.is_empty() {
                        private = d.address.clone();
                        private_rdns = rdns(&d.rdns);
                    } else {
                        extra.push(d.address.clone());
                    }
                }
            }
            if !i.ipv6.is_empty() {
                let slaac = i.ipv6.split('/').next().unwrap_or_default();
                for d in ips.iter().filter(|d| d.address == slaac) {
                    public6 = d.address.clone();
                    public6_rdns = rdns(&d.rdns);
                }
                routed.extend(
                    ranges
                        .iter()
                        .filter(|r| r.route_target == slaac)
                        .map(|r| format!("{}/{}", r.range, r.prefix)),
                );
            }
            let mib = |n: i64| n.wrapping_mul(1 << 20).to_string();
            let backups = if i.backups.enabled {
                "enabled"
            } else {
                "disabled"
            };
            let mut l = vec![
                (format!("{P}instance_id"), i.id.to_string()),
                (format!("{P}instance_label"), i.label),
                (format!("{P}image"), i.image),
                (format!("{P}private_ipv4"), private),
                (format!("{P}public_ipv4"), public.clone()),
                (format!("{P}public_ipv6"), public6),
                (format!("{P}private_ipv4_rdns"), private_rdns),
                (format!("{P}public_ipv4_rdns"), public_rdns),
                (format!("{P}public_ipv6_rdns"), public6_rdns),
                (format!("{P}region"), i.region),
                (format!("{P}type"), i.kind),
                (format!("{P}status"), i.status),
                (format!("{P}group"), i.group),
                (format!("{P}gpus"), i.specs.gpus.to_string()),
                (format!("{P}hypervisor"), i.hypervisor),
                (format!("{P}backups"), backups.to_owned()),
                (format!("{P}specs_disk_bytes"), mib(i.specs.disk)),
                (format!("{P}specs_memory_bytes"), mib(i.specs.memory)),
                (format!("{P}specs_vcpus"), i.specs.vcpus.to_string()),
                (format!("{P}specs_transfer_bytes"), mib(i.specs.transfer)),
                (
                    "__address__".to_owned(),
                    join_host_port(&public, &go_port(self.port)),
                ),
            ];
            let sep = &self.separator;
            let joined = |v: &[String]| format!("{sep}{}{sep}", v.join(sep));
            if !i.tags.is_empty() {
                l.push((format!("{P}tags"), joined(&i.tags)));
            }
            if !extra.is_empty() {
                l.push((format!("{P}extra_ips"), joined(&extra)));
            }
            if !routed.is_empty() {
                l.push((format!("{P}ipv6_ranges"), joined(&routed)));
            }
            targets.push(label_set(l));
        }
        Ok(TargetGroup {
            targets,
            labels: Labels::empty(),
            source: "Linode".into(),
        })
    }

    fn step(&mut self, status: u16, body: &[u8]) -> Result<Step, ApiFailure> {
        // The first answer's `Date` (none if it had none).
        self.started.get_or_insert(self.head.date);
        let checked = self.check(status, body);
        if self.phase != Phase::Events {
            return self.page_of(checked?);
        }
        match checked {
            // A token without `events:read_only`: a full listing every interval from now.
            Err(e) if e.code == 401 && e.api => {
                self.polling = false;
                Ok(Step::Next(self.list_all()))
            }
            Err(e) => Err(e),
            Ok(body) => {
                let events: Page<IgnoredAny> =
                    serde_json::from_slice(body).map_err(|e| ApiFailure::own(e.to_string()))?;
                self.polls = self.polls.saturating_add(1);
                if events.data.is_empty()
                    && self.polls < POLLS
                    && let Some(last) = &self.last
                {
                    let last = last.clone();
                    return Ok(self.done(last));
                }
                Ok(Step::Next(self.list_all()))
            }
        }
    }
}

impl Pages for Listing {
    fn first(&mut self) -> Result<Call, String> {
        self.instances.clear();
        self.ips.clear();
        self.ranges.clear();
        self.started = None;
        self.page = 1;
        self.phase = match (&self.last, self.since) {
            (Some(_), Some(_)) if self.polling => Phase::Events,
            _ => Phase::Instances,
        };
        Ok(self.call())
    }

    fn head(&mut self, _status: u16, _reason: &str, headers: &[(&str, &str)]) {
        self.head = Head {
            content_type: header(headers, "content-type")
                .unwrap_or_default()
                .to_owned(),
            date: header(headers, "date").and_then(UnixNanos::from_http_date),
        };
    }

    fn answer(&mut self, status: u16, body: &[u8], _url: &str) -> Result<Step, String> {
        let step = self.step(status, body).map_err(|e| e.text());
        self.head = Head::default();
        step
    }

    fn failed(&self, e: String) -> String {
        ApiFailure::own(e).text()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        Drive, block, drive_block, error, null_entry_is_refused, unknown_field_names,
    };
    use crate::io::IoEvent;

    const KEY: &str = "linode_sd_configs";
    const JSON: (&str, &str) = ("Content-Type", "application/json");

    fn drive(yaml: &str) -> Drive<Box<dyn SdMachine>> {
        drive_block::<Linode>(yaml, Some("http://l"))
    }

    fn at(date: &str) -> [(&'static str, &str); 2] {
        [JSON, ("Date", date)]
    }

    /// A page of `data` as the API reference shows one.
    fn page(data: serde_json::Value, page: i64, pages: i64) -> String {
        let results = data.as_array().map_or(0, Vec::len);
        serde_json::json!({"data": data, "page": page, "pages": pages, "results": results})
            .to_string()
    }

    /// An instance as Linode's API reference shows one (`GET /linode/instances`).
    fn instance(id: i64, ipv4: &[&str], ipv6: Option<&str>) -> serde_json::Value {
        serde_json::json!({
            "id": id, "label": format!("linode{id}"), "group": "", "status": "running",
            "created": "2024-01-01T00:01:01", "updated": "2024-01-01T00:01:01",
            "type": "g6-standard-1", "ipv4": ipv4, "ipv6": ipv6, "image": "linode/debian12",
            "region": "us-east", "specs": {"disk": 51200, "memory": 2048, "vcpus": 1,
            "gpus": 0, "transfer": 2000}, "alerts": {"cpu": 180},
            "backups": {"enabled": true, "available": true, "schedule": {"day": "Saturday", "window": "W22"}},
            "hypervisor": "kvm", "watchdog_enabled": true, "tags": ["monitoring", "web"],
            "host_uuid": "3a3ddd59d9a78bb8de041391075df44de62bfec8", "has_user_data": false
        })
    }

    fn ip(address: &str, public: bool, rdns: Option<&str>) -> serde_json::Value {
        serde_json::json!({
            "address": address, "gateway": null, "subnet_mask": "255.255.255.0", "prefix": 24,
            "type": if address.contains(':') { "ipv6" } else { "ipv4" }, "public": public,
            "rdns": rdns, "linode_id": 1, "region": "us-east"
        })
    }

    /// One full listing: instances, addresses, ranges, each one page.
    fn list_all(d: &mut Drive<Box<dyn SdMachine>>, date: &str, instances: serde_json::Value) {
        let (id, url) = d.one();
        assert_eq!(url, "http://l/v4/linode/instances?page=1&page_size=500");
        d.respond(id, 200, &at(date), &page(instances, 1, 1));
        let (id, url) = d.one();
        assert_eq!(url, "http://l/v4/networking/ips?page=1&page_size=500");
        d.respond(id, 200, &[JSON], &page(serde_json::json!([]), 1, 1));
        let (id, url) = d.one();
        assert_eq!(
            url,
            "http://l/v4/networking/ipv6/ranges?page=1&page_size=500"
        );
        d.respond(id, 200, &[JSON], &page(serde_json::json!([]), 1, 1));
    }

    fn ids(d: &Drive<Box<dyn SdMachine>>) -> Vec<Vec<String>> {
        d.out
            .updates
            .iter()
            .map(|u| {
                u[0].targets
                    .iter()
                    .map(|t| {
                        t.get("__meta_linode_instance_id")
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_three_listings_page_by_page_make_3x_labels() {
        let mut d = drive(
            "authorization: {credentials: T}\nport: 9100\nregion: us-east\ntag_separator: ';'",
        );
        let s = d.started();
        assert_eq!(s[0].1, "http://l/v4/linode/instances?page=1&page_size=500");
        for h in [
            ("Authorization", "Bearer T"),
            ("Accept", "application/json"),
            ("X-Filter", r#"{"region": "us-east"}"#),
        ] {
            assert!(
                s[0].2.contains(&(h.0.into(), h.1.into())),
                "{h:?} in {:?}",
                s[0].2
            );
        }
        let first = instance(
            1,
            &["192.0.2.10", "10.0.0.5", "192.0.2.11"],
            Some("2001:db8::f03c:91ff:fe24:3a2f/128"),
        );
        d.respond(
            s[0].0,
            200,
            &[JSON],
            &page(serde_json::json!([first]), 1, 2),
        );
        let (id, url) = d.one();
        assert_eq!(url, "http://l/v4/linode/instances?page=2&page_size=500");
        let mut bare = instance(2, &["::ffff:192.0.2.20"], None);
        bare["tags"] = serde_json::json!([]);
        bare["backups"] = serde_json::Value::Null;
        bare["specs"] = serde_json::Value::Null;
        let no_ipv4 = instance(3, &[], None);
        d.respond(
            id,
            200,
            &[JSON],
            &page(serde_json::json!([bare, no_ipv4]), 2, 2),
        );
        let (id, url) = d.one();
        assert_eq!(url, "http://l/v4/networking/ips?page=1&page_size=500");
        let ips = serde_json::json!([
            ip("192.0.2.10", true, Some("li1.members.linode.com")),
            ip("10.0.0.5", false, Some("null")),
            ip("192.0.2.11", true, None),
            ip("2001:db8::f03c:91ff:fe24:3a2f", true, Some("v6.example")),
            ip("192.0.2.20", true, None),
        ]);
        d.respond(id, 200, &[JSON], &page(ips, 1, 1));
        let (id, url) = d.one();
        assert_eq!(
            url,
            "http://l/v4/networking/ipv6/ranges?page=1&page_size=500"
        );
        let ranges = serde_json::json!([
            {"range": "2001:db8:1::", "prefix": 64, "region": "us-east", "route_target": "2001:db8::f03c:91ff:fe24:3a2f"},
            {"range": "2001:db8:2::", "prefix": 56, "region": "us-east", "route_target": "2001:db8::f03c:91ff:fe24:3a2f"},
            {"range": "2001:db8:3::", "prefix": 64, "region": "us-east", "route_target": "2001:db8::1"},
        ]);
        d.respond(id, 200, &[JSON], &page(ranges, 1, 1));
        assert!(d.started().is_empty());
        let g = &d.out.updates[0][0];
        assert_eq!((g.source.as_str(), g.targets.len()), ("Linode", 2));
        assert_eq!(
            g.targets[0].to_string(),
            r#"{__address__="192.0.2.10:9100", __meta_linode_backups="enabled", __meta_linode_extra_ips=";192.0.2.11;", __meta_linode_gpus="0", __meta_linode_hypervisor="kvm", __meta_linode_image="linode/debian12", __meta_linode_instance_id="1", __meta_linode_instance_label="linode1", __meta_linode_ipv6_ranges=";2001:db8:1::/64;2001:db8:2::/56;", __meta_linode_private_ipv4="10.0.0.5", __meta_linode_public_ipv4="192.0.2.10", __meta_linode_public_ipv4_rdns="li1.members.linode.com", __meta_linode_public_ipv6="2001:db8::f03c:91ff:fe24:3a2f", __meta_linode_public_ipv6_rdns="v6.example", __meta_linode_region="us-east", __meta_linode_specs_disk_bytes="53687091200", __meta_linode_specs_memory_bytes="2147483648", __meta_linode_specs_transfer_bytes="2097152000", __meta_linode_specs_vcpus="1", __meta_linode_status="running", __meta_linode_tags=";monitoring;web;", __meta_linode_type="g6-standard-1"}"#
        );
        let t = &g.targets[1];
        assert_eq!(t.get("__address__"), Some("192.0.2.20:9100"));
        assert_eq!(t.get("__meta_linode_backups"), Some("disabled"));
        assert_eq!(t.get("__meta_linode_specs_disk_bytes"), Some("0"));
        assert_eq!(t.get("__meta_linode_tags"), None);
        // Empty values are no labels (3.x's empty values drop out in relabelling).
        assert_eq!(t.get("__meta_linode_public_ipv6"), None);
    }

    #[test]
    fn events_decide_whether_a_refresh_lists_everything() {
        let mut d = drive("{}");
        list_all(
            &mut d,
            "Mon, 07 Dec 2026 18:00:30 GMT",
            serde_json::json!([instance(1, &["192.0.2.1"], None)]),
        );
        assert_eq!(ids(&d), [["1"]]);
        // No event since the last refresh (the API's clock, a second early): the last
        // group again, after one call.
        d.advance();
        let s = d.started();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].1, "http://l/v4/account/events?page=1&page_size=25");
        assert!(s[0].2.contains(&(
            "X-Filter".into(),
            r#"{"created": {"+gte": "2026-12-07T18:00:29"}}"#.into()
        )));
        d.respond(
            s[0].0,
            200,
            &at("Mon, 07 Dec 2026 18:01:30 GMT"),
            &page(serde_json::json!([]), 1, 0),
        );
        assert!(d.started().is_empty());
        assert_eq!(ids(&d), [["1"], ["1"]]);
        // An event: everything is listed again; the filter moved on.
        d.advance();
        let s = d.started();
        assert!(s[0].2.contains(&(
            "X-Filter".into(),
            r#"{"created": {"+gte": "2026-12-07T18:01:29"}}"#.into()
        )));
        let event = serde_json::json!([{"id": 123, "action": "linode_boot", "created": "2026-12-07T18:02:00", "entity": {"id": 2, "type": "linode"}}]);
        d.respond(
            s[0].0,
            200,
            &at("Mon, 07 Dec 2026 18:02:30 GMT"),
            &page(event, 1, 1),
        );
        let (id, url) = d.one();
        assert_eq!(url, "http://l/v4/linode/instances?page=1&page_size=500");
        d.respond(
            id,
            200,
            &[JSON],
            &page(
                serde_json::json!([
                    instance(1, &["192.0.2.1"], None),
                    instance(2, &["192.0.2.2"], None)
                ]),
                1,
                1,
            ),
        );
        for _ in 0..2 {
            let (id, _) = d.one();
            d.respond(id, 200, &[JSON], &page(serde_json::json!([]), 1, 1));
        }
        assert_eq!(ids(&d)[2], ["1", "2"]);
        // Nine quiet polls reuse the group; the tenth lists everything anyway.
        for n in 0..10 {
            d.advance();
            let (id, url) = d.one();
            assert!(url.contains("account/events"), "{url}");
            d.respond(
                id,
                200,
                &at("Mon, 07 Dec 2026 18:05:00 GMT"),
                &page(serde_json::json!([]), 1, 0),
            );
            let next = d.started();
            assert_eq!(next.len(), usize::from(n == 9), "poll {n}");
            if n == 9 {
                assert!(next[0].1.contains("linode/instances"));
            }
        }
    }

    #[test]
    fn a_token_without_events_scope_lists_everything_from_then_on() {
        let mut d = drive("{}");
        list_all(
            &mut d,
            "Mon, 07 Dec 2026 18:00:30 GMT",
            serde_json::json!([instance(1, &["192.0.2.1"], None)]),
        );
        d.advance();
        let (id, url) = d.one();
        assert!(url.contains("account/events"));
        d.respond(
            id,
            401,
            &[JSON],
            r#"{"errors": [{"reason": "Unauthorized"}]}"#,
        );
        let (id, url) = d.one();
        assert!(url.contains("linode/instances"), "{url}");
        d.respond(
            id,
            200,
            &at("Mon, 07 Dec 2026 18:01:30 GMT"),
            &page(serde_json::json!([]), 1, 1),
        );
        for _ in 0..2 {
            let (id, _) = d.one();
            d.respond(id, 200, &[JSON], &page(serde_json::json!([]), 1, 1));
        }
        assert!(d.out.failures.is_empty());
        assert_eq!(ids(&d), [vec!["1".to_owned()], vec![]]);
        let (_, url) = d.one_after_advance();
        assert!(url.contains("linode/instances"), "{url}");
    }

    /// 3.x's `errors.As(err, &*linodego.Error)` holds for the API's own errors only: a
    /// 401 page from a proxy, or one naming no error, fails the poll and polling stays.
    #[test]
    fn only_the_apis_own_401_turns_polling_off() {
        let mut d = drive("{}");
        list_all(
            &mut d,
            "Mon, 07 Dec 2026 18:00:30 GMT",
            serde_json::json!([instance(1, &["192.0.2.1", ""], None)]),
        );
        assert_eq!(
            ids(&d),
            [["1"]],
            "an empty address is Go's nil one: the instance stays"
        );
        let (id, _) = d.one_after_advance();
        d.respond(
            id,
            401,
            &[("Content-Type", "text/html")],
            &"x".repeat(10_000),
        );
        let (id, url) = d.one_after_advance();
        assert!(url.contains("account/events"), "{url}");
        d.respond(id, 401, &[JSON], r#"{"errors": []}"#);
        let (id, url) = d.one_after_advance();
        assert!(url.contains("account/events"), "polling still on: {url}");
        assert!(d.started().is_empty());
        assert_eq!(d.out.failures.len(), 2);
        assert!(
            d.out.failures[0].starts_with("[401] Unexpected Content-Type: Expected: application/json, Received: text/html\nResponse body: xxx")
                && d.out.failures[0].len() < 4200,
            "the body quoted, cut: {} bytes",
            d.out.failures[0].len()
        );
        assert_eq!(d.out.failures[1], "[401] Unauthorized");
        // A 2xx body of another type is quoted cut too.
        d.respond(
            id,
            200,
            &[("Content-Type", "text/plain")],
            &"y".repeat(10_000),
        );
        assert!(d.out.failures[2].len() < 4200);
    }

    #[test]
    fn json_types_are_resty_s() {
        for (ct, json) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Text/JSON", true),
            ("application/vnd.linode+json", true),
            ("application/x; charset=json", true),
            ("application/xml", false),
            ("image/json", false),
            ("", false),
        ] {
            assert_eq!(is_json_type(ct), json, "{ct}");
        }
    }

    #[test]
    fn an_answer_without_a_date_makes_the_next_refresh_a_full_one() {
        let mut d = drive("{}");
        let (id, _) = d.one();
        d.respond(id, 200, &[JSON], &page(serde_json::json!([]), 1, 1));
        for _ in 0..2 {
            let (id, _) = d.one();
            d.respond(id, 200, &[JSON], &page(serde_json::json!([]), 1, 1));
        }
        assert_eq!(d.out.updates.len(), 1);
        d.advance();
        let (id, url) = d.one();
        assert_eq!(url, "http://l/v4/linode/instances?page=1&page_size=500");
        // Only the first answer's Date counts: a later one does not start the next poll.
        d.respond(id, 200, &[JSON], &page(serde_json::json!([]), 1, 1));
        for _ in 0..2 {
            let (id, _) = d.one();
            d.respond(
                id,
                200,
                &at("Mon, 07 Dec 2026 18:00:30 GMT"),
                &page(serde_json::json!([]), 1, 1),
            );
        }
        let (_, url) = d.one_after_advance();
        assert_eq!(url, "http://l/v4/linode/instances?page=1&page_size=500");
    }

    #[test]
    fn failures_are_worded_as_linodego_and_keep_the_targets() {
        let mut d = drive("{}");
        let (id, _) = d.one();
        d.respond(
            id,
            401,
            &[JSON],
            r#"{"errors": [{"reason": "Invalid Token"}]}"#,
        );
        let (id, _) = d.one_after_advance();
        d.respond(id, 400, &[JSON], r#"{"errors": [{"reason": "Must be an integer", "field": "page"}, {"reason": "too big"}]}"#);
        let (id, _) = d.one_after_advance();
        d.respond(id, 403, &[("Content-Type", "text/plain")], "forbidden");
        let (id, _) = d.one_after_advance();
        d.respond(
            id,
            502,
            &[("Content-Type", "text/html")],
            "<html>bad</html>",
        );
        let (id, _) = d.one_after_advance();
        d.respond(id, 500, &[JSON], r#"{"errors": []}"#);
        let (id, _) = d.one_after_advance();
        d.respond(id, 200, &[("Content-Type", "text/plain")], "hello");
        let (id, _) = d.one_after_advance();
        d.respond(id, 200, &[JSON], r#"{"data": [{"id": "x"}]}"#);
        let (id, _) = d.one_after_advance();
        d.respond(
            id,
            200,
            &[JSON],
            &page(
                serde_json::json!([instance(1, &["192.0.2.300"], None)]),
                1,
                1,
            ),
        );
        for _ in 0..2 {
            let (id, _) = d.one();
            d.respond(id, 200, &[JSON], &page(serde_json::json!([]), 1, 1));
        }
        let (id, _) = d.one_after_advance();
        d.feed(id, IoEvent::Failed("connection refused"));
        assert_eq!(
            d.out.failures,
            [
                "[401] Invalid Token",
                "[400] [page] Must be an integer; too big",
                "[403] Unexpected Content-Type: Expected: application/json, Received: text/plain\nResponse body: forbidden",
                "[502] Bad Gateway",
                "[500] Internal Server Error",
                "[200] Unexpected Content-Type: Expected: application/json, Received: text/plain\nResponse body: hello",
                "[002] invalid type: string \"x\", expected i64 at line 1 column 20",
                "[002] invalid IP address: 192.0.2.300",
                r#"[002] Get "http://l/v4/linode/instances?page=1&page_size=500": connection refused"#,
            ]
        );
        assert!(d.out.updates.is_empty());
        // A JSON type with parameters is JSON to resty; no Content-Type at all, too.
        let (id, _) = d.one_after_advance();
        d.respond(
            id,
            200,
            &[("Content-Type", "application/json; charset=utf-8")],
            &page(serde_json::json!([]), 1, 1),
        );
        let (id, _) = d.one();
        d.respond(id, 200, &[], &page(serde_json::json!([]), 1, 1));
        let (id, _) = d.one();
        d.respond(id, 200, &[JSON], &page(serde_json::json!([]), 1, 1));
        assert_eq!(d.out.updates.len(), 1);
    }

    #[test]
    fn defaults_are_applied() {
        let c: LinodeSdConfig = block(KEY, "{}");
        assert_eq!(
            (c.port, c.tag_separator.as_str(), c.region.as_str()),
            (80, ",", "")
        );
        assert_eq!(c.refresh_interval, PromDuration::from_secs(60));
        assert_eq!(c.http_client, HttpClientConfig::default());
        let c: LinodeSdConfig = block(KEY, "region: us-east\ntag_separator: ';'");
        assert_eq!(
            (c.region.as_str(), c.tag_separator.as_str()),
            ("us-east", ";")
        );
    }

    #[test]
    fn only_the_client_is_checked() {
        assert_eq!(
            error(KEY, "authorization: {type: basic}"),
            r#"authorization type cannot be set to "basic", use "basic_auth" instead"#
        );
        let c: LinodeSdConfig = block(KEY, "authorization: {credentials_file: tok}");
        let a = c.http_client.authorization.expect("authorization");
        assert_eq!(a.credentials_file, "/etc/prometheus/tok");
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "port: 1", "linode.plain");
    }
}
