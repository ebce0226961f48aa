//! `consul_sd_configs`: services registered in a Consul catalog, watched with blocking
//! queries. Validation follows 3.x's `discovery/consul` `SDConfig.UnmarshalYAML`,
//! including the `username`/`password` shorthand that becomes `basic_auth`.
//!
//! The provider follows 3.x's `Discovery.Run`, `watchServices`, `watchService` and
//! `consulService.watch`, with the requests the Go client (`hashicorp/consul/api`) makes:
//!
//! - without a `datacenter`, `GET /v1/agent/self` first, for `__meta_consul_dc`, retried
//!   every 15 s until it answers (3.x's `initialize`);
//! - with no `services`, or with `tags` or a `filter`, the catalog is watched
//!   (`/v1/catalog/services`, a blocking query: `index` from the last `X-Consul-Index`,
//!   `wait=120000ms`), and one watch per service that passes the `services` and `tags`
//!   checks is started as it appears and stopped (its group emptied) as it goes; an empty
//!   catalog sends one empty group. Otherwise each listed service is watched directly;
//! - each service watch is a blocking query on `/v1/health/service/<name>` with the
//!   `tag`s, `node_meta`, `health_filter` and `stale`; an answer with a new index replaces
//!   the service's group (source: the service name);
//! - a watch starts again at most once per `refresh_interval` (3.x's ticker), and 15 s
//!   after a failure; a failure keeps the service's last group and counts in
//!   `prometheus_sd_consul_rpc_failures_total`.
//!
//! Where trawl differs: a 200 answer without `X-Consul-Index` is a failure (3.x's client
//! leaves the index at 0 and the watch never reports anything); an index that goes
//! backwards (a Consul server restored from a snapshot) is taken as a new state and the
//! next query blocks from it, as Consul's documentation asks; watches are started in
//! service-name order, so the requests are the same on every run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::groups::{TargetGroup, empty_group, join_host_port, sanitize};
use super::mechanism::{
    Counter, CounterKey, Invalid, MachineContext, Mechanism, SdContext, SdMachine, SdOut, at, flag,
    text, texts, whole,
};
use crate::common::http::HttpClientConfig;
use crate::common::http::{BasicAuth, Secret, with_http_client};
use crate::common::yaml::{Bool11, LenientString, Nullable};
use crate::duration::PromDuration;
use crate::io::{self, CredentialsFile, HttpRequest, IoEvent, IoOp, IoQueue, Origin, RequestId};
use crate::labels::Labels;
use crate::time::Instant;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Consul;

with_http_client! {
    /// `consul_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawConsulSd {
        #[serde(default)]
        server: Nullable<LenientString>,
        #[serde(default)]
        path_prefix: LenientString,
        #[serde(default)]
        token: Secret,
        #[serde(default)]
        datacenter: LenientString,
        #[serde(default)]
        namespace: LenientString,
        #[serde(default)]
        partition: LenientString,
        #[serde(default)]
        tag_separator: Nullable<LenientString>,
        #[serde(default)]
        scheme: Nullable<LenientString>,
        #[serde(default)]
        username: LenientString,
        #[serde(default)]
        password: Secret,
        #[serde(default)]
        allow_stale: Nullable<Bool11>,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        services: Option<Vec<LenientString>>,
        #[serde(default)]
        tags: Option<Vec<LenientString>>,
        #[serde(default)]
        node_meta: Option<BTreeMap<String, LenientString>>,
        #[serde(default)]
        filter: LenientString,
        #[serde(default)]
        health_filter: LenientString,
    }
}

/// Consul catalog discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsulSdConfig {
    /// Consul address (default `localhost:8500`).
    pub server: String,
    /// Prefix of the API paths.
    pub path_prefix: String,
    /// ACL token.
    pub token: Secret,
    /// Datacenter to query.
    pub datacenter: String,
    /// Namespace (Consul Enterprise).
    pub namespace: String,
    /// Admin partition (Consul Enterprise).
    pub partition: String,
    /// Joins the tags in `__meta_consul_tags` (default `,`).
    pub tag_separator: String,
    /// `http` (default) or `https`; not checked.
    pub scheme: String,
    /// Allow stale answers from any server (default true).
    pub allow_stale: bool,
    /// Delay between watches (default 30s).
    pub refresh_interval: PromDuration,
    /// Services to watch (all when empty).
    pub services: Vec<String>,
    /// Tags a service must have.
    pub tags: Vec<String>,
    /// Node metadata a node must have.
    pub node_meta: BTreeMap<String, String>,
    /// Catalog filter expression.
    pub filter: String,
    /// Health filter expression.
    pub health_filter: String,
    /// Client options; `username`/`password` end up in its `basic_auth`.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Consul {
    const KEY: &'static str = "consul_sd_configs";
    const NAME: &'static str = "consul";
    const GO_TYPE: &'static str = "consul.plain";
    const RUNS: bool = true;
    const COUNTERS: &'static [Counter] = &[Counter {
        name: RPC_FAILURES,
        labels: &[],
        help: "The number of Consul RPC call failures.",
    }];
    const SUMMARIES: &'static [Counter] = &[
        Counter {
            name: RPC_DURATION,
            labels: SERVICES_RPC.1,
            help: "The duration of a Consul RPC call in seconds.",
        },
        Counter {
            name: RPC_DURATION,
            labels: SERVICE_RPC.1,
            help: "The duration of a Consul RPC call in seconds.",
        },
    ];
    const EXAMPLE: Option<&'static str> = Some("{server: '127.0.0.1:8500', services: [web]}");
    type Raw = RawConsulSd;
    type Config = ConsulSdConfig;

    fn validate(mut raw: RawConsulSd, cx: &SdContext<'_>) -> Result<ConsulSdConfig, Invalid> {
        let mut client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let server = text(raw.server, "localhost:8500");
        if server.trim().is_empty() {
            return Err((
                at("server"),
                "consul SD configuration requires a server address".into(),
            ));
        }
        if !raw.username.0.is_empty() || !raw.password.is_empty() {
            if client.basic_auth.is_some() {
                return Err(whole(
                    "at most one of consul SD configuration username and password and basic auth can be configured"
                        .into(),
                ));
            }
            client.basic_auth = Some(BasicAuth {
                username: raw.username.0,
                password: raw.password,
                ..BasicAuth::default()
            });
        }
        if !raw.token.is_empty() && (client.authorization.is_some() || client.oauth2.is_some()) {
            return Err(whole(
                "at most one of consul SD token, authorization, or oauth2 can be configured".into(),
            ));
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(ConsulSdConfig {
            server,
            path_prefix: raw.path_prefix.0,
            token: raw.token,
            datacenter: raw.datacenter.0,
            namespace: raw.namespace.0,
            partition: raw.partition.0,
            tag_separator: text(raw.tag_separator, ","),
            scheme: text(raw.scheme, "http"),
            allow_stale: flag(raw.allow_stale, true),
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(30)),
            services: texts(raw.services),
            tags: texts(raw.tags),
            node_meta: raw
                .node_meta
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
            filter: raw.filter.0,
            health_filter: raw.health_filter.0,
            http_client,
        })
    }

    fn machine(cfg: &ConsulSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        Some(Box::new(ConsulSd::new(cfg, cx)))
    }
}

// ---------------------------------------------------------------------------------------
// The running provider.

/// `prometheus_sd_consul_rpc_failures_total`.
const RPC_FAILURES: &str = "prometheus_sd_consul_rpc_failures_total";
/// `prometheus_sd_consul_rpc_duration_seconds`: the catalog's list of services.
const SERVICES_RPC: CounterKey = (
    RPC_DURATION,
    &[("call", "services"), ("endpoint", "catalog")],
);
/// `prometheus_sd_consul_rpc_duration_seconds`: one service's instances.
const SERVICE_RPC: CounterKey = (
    RPC_DURATION,
    &[("call", "service"), ("endpoint", "catalog")],
);
/// The summary's name.
const RPC_DURATION: &str = "prometheus_sd_consul_rpc_duration_seconds";
/// How long Consul holds a blocking query (3.x's `watchTimeout`).
const WATCH_WAIT: Duration = Duration::from_secs(120);
/// The client's timeout for one request (3.x: `watchTimeout + 15s`).
const QUERY_TIMEOUT: Duration = Duration::from_secs(135);
/// The pause after a failed request (3.x's `retryInterval`).
const RETRY: Duration = Duration::from_secs(15);
/// How much of an error answer's body is kept for its message.
const ERROR_BODY: usize = 512;

/// What a request is for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    /// `/v1/agent/self`, for the datacenter's name.
    Agent,
    /// `/v1/catalog/services`.
    Catalog,
    /// `/v1/health/service/<name>`.
    Service(Arc<str>),
}

/// A request in flight.
#[derive(Debug)]
struct Query {
    id: RequestId,
    url: String,
    status: u16,
    /// `X-Consul-Index` as sent.
    index: Option<String>,
    body: Vec<u8>,
}

/// One repeating query (the agent's, the catalog's or a service's).
#[derive(Debug)]
struct Watch {
    /// The last index answered (0: none yet, the query does not block).
    index: u64,
    query: Option<Query>,
    /// When the query in flight times out, or when the next one starts.
    at: Instant,
    /// When the last query started: the next starts `refresh_interval` after it at the
    /// earliest (3.x's ticker).
    started: Instant,
}

impl Watch {
    fn new(now: Instant) -> Watch {
        Watch {
            index: 0,
            query: None,
            at: now,
            started: now,
        }
    }
}

/// The node and service of one `/v1/health/service` entry, as 3.x reads them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ServiceEntry {
    #[serde(rename = "Node")]
    node: EntryNode,
    #[serde(rename = "Service")]
    service: EntryService,
    #[serde(rename = "Checks")]
    checks: Option<Vec<EntryCheck>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EntryNode {
    #[serde(rename = "Node")]
    node: Option<String>,
    #[serde(rename = "Address")]
    address: Option<String>,
    #[serde(rename = "Meta")]
    meta: Option<BTreeMap<String, Option<String>>>,
    #[serde(rename = "TaggedAddresses")]
    tagged_addresses: Option<BTreeMap<String, Option<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EntryService {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "Tags")]
    tags: Option<Vec<Option<String>>>,
    #[serde(rename = "Address")]
    address: Option<String>,
    #[serde(rename = "Port")]
    port: i64,
    #[serde(rename = "Meta")]
    meta: Option<BTreeMap<String, Option<String>>>,
    #[serde(rename = "Namespace")]
    namespace: Option<String>,
    #[serde(rename = "Partition")]
    partition: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EntryCheck {
    #[serde(rename = "CheckID")]
    check_id: Option<String>,
    #[serde(rename = "Status")]
    status: Option<String>,
}

/// The consul API client's `HealthChecks.AggregatedStatus`: maintenance, then critical,
/// then warning, then passing (also for no checks); a status it does not know makes it
/// empty.
fn aggregated_status(checks: &[EntryCheck]) -> &'static str {
    let (mut warning, mut critical, mut maintenance) = (false, false, false);
    for c in checks {
        let id = c.check_id.as_deref().unwrap_or("");
        if id == "_node_maintenance" || id.starts_with("_service_maintenance:") {
            maintenance = true;
            continue;
        }
        match c.status.as_deref().unwrap_or("") {
            "passing" => {}
            "warning" => warning = true,
            "critical" => critical = true,
            _ => return "",
        }
    }
    if maintenance {
        "maintenance"
    } else if critical {
        "critical"
    } else if warning {
        "warning"
    } else {
        "passing"
    }
}

/// The group of one service from its `/v1/health/service` answer (3.x's
/// `consulService.watch`).
fn service_group(
    name: &str,
    datacenter: &str,
    separator: &str,
    body: &[u8],
) -> Result<TargetGroup, String> {
    let entries: Option<Vec<Option<ServiceEntry>>> =
        serde_json::from_slice(body).map_err(|e| format!("decoding the answer: {e}"))?;
    let mut targets = Vec::new();
    for e in entries.unwrap_or_default().into_iter().flatten() {
        let (node, svc) = (&e.node, &e.service);
        let tags: Vec<&str> = svc
            .tags
            .iter()
            .flatten()
            .map(|t| t.as_deref().unwrap_or(""))
            .collect();
        let tags = format!("{separator}{}{separator}", tags.join(separator));
        let service_address = svc.address.as_deref().unwrap_or("");
        let node_address = node.address.as_deref().unwrap_or("");
        // Go's `strconv.Itoa` of the decoded int.
        let port = svc.port.to_string();
        let host = if service_address.is_empty() {
            node_address
        } else {
            service_address
        };
        let mut pairs: Vec<(String, String)> = vec![
            ("__address__".into(), join_host_port(host, &port)),
            ("__meta_consul_address".into(), node_address.into()),
            (
                "__meta_consul_node".into(),
                node.node.clone().unwrap_or_default(),
            ),
            (
                "__meta_consul_namespace".into(),
                svc.namespace.clone().unwrap_or_default(),
            ),
            (
                "__meta_consul_partition".into(),
                svc.partition.clone().unwrap_or_default(),
            ),
            ("__meta_consul_tags".into(), tags),
            (
                "__meta_consul_service_address".into(),
                service_address.into(),
            ),
            ("__meta_consul_service_port".into(), port),
            (
                "__meta_consul_service_id".into(),
                svc.id.clone().unwrap_or_default(),
            ),
            (
                "__meta_consul_health".into(),
                aggregated_status(e.checks.as_deref().unwrap_or(&[])).into(),
            ),
        ];
        let maps = [
            ("__meta_consul_metadata_", &node.meta),
            ("__meta_consul_service_metadata_", &svc.meta),
            ("__meta_consul_tagged_address_", &node.tagged_addresses),
        ];
        for (prefix, map) in maps {
            for (k, v) in map.iter().flatten() {
                pairs.push((
                    format!("{prefix}{}", sanitize(k)),
                    v.clone().unwrap_or_default(),
                ));
            }
        }
        targets.push(Labels::from_pairs(pairs));
    }
    Ok(TargetGroup {
        targets,
        labels: Labels::from_pairs([
            ("__meta_consul_service", name),
            ("__meta_consul_dc", datacenter),
        ]),
        source: name.to_owned(),
    })
}

/// The datacenter's name in a `/v1/agent/self` answer (`Config.Datacenter`).
fn agent_datacenter(body: &[u8]) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("decoding the answer: {e}"))?;
    match v.get("Config").and_then(|c| c.get("Datacenter")) {
        Some(serde_json::Value::String(dc)) => Ok(dc.clone()),
        Some(other) => Err(format!("invalid value '{other}' for Config.Datacenter")),
        None => Err("invalid value '<nil>' for Config.Datacenter".into()),
    }
}

/// The services in a `/v1/catalog/services` answer, with their tags.
fn catalog_services(body: &[u8]) -> Result<BTreeMap<String, Vec<String>>, String> {
    let m: Option<BTreeMap<String, Option<Vec<Option<String>>>>> =
        serde_json::from_slice(body).map_err(|e| format!("decoding the answer: {e}"))?;
    Ok(m.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().flatten().flatten().collect()))
        .collect())
}

/// The running provider.
#[derive(Debug)]
struct ConsulSd {
    cfg: Arc<ConsulSdConfig>,
    /// `scheme://server` and the path prefix; `None` if the server names a protocol the
    /// client does not know (the provider cannot be created).
    base: Result<String, String>,
    headers: Vec<(String, String)>,
    credentials_file: Option<CredentialsFile>,
    client: Arc<HttpClientConfig>,
    limit: u64,
    name: Arc<str>,
    /// The datacenter's name, once known.
    datacenter: Option<String>,
    agent: Option<Watch>,
    catalog: Option<Watch>,
    services: BTreeMap<Arc<str>, Watch>,
    /// Whose request each id is.
    ids: BTreeMap<RequestId, Who>,
    /// Every watch's `at`, in time order.
    timers: BTreeSet<(Instant, Who)>,
}

impl ConsulSd {
    fn new(cfg: &ConsulSdConfig, cx: &MachineContext<'_>) -> ConsulSd {
        // The consul API client's `NewClient`: a scheme in the address wins over `scheme`
        // when it is https; http, https and nothing else.
        let mut scheme = cfg.scheme.clone();
        let mut address = cfg.server.clone();
        let mut base = Ok(());
        if let Some((proto, rest)) = cfg.server.split_once("://") {
            match proto {
                "http" => {}
                "https" => scheme = "https".into(),
                other => base = Err(format!("Unknown protocol scheme: {other}")),
            }
            address = rest.to_owned();
        }
        let base = base.map(|()| format!("{scheme}://{address}{}", cfg.path_prefix));
        let mut headers = vec![("User-Agent".to_owned(), cx.env.user_agent.to_string())];
        if !cfg.token.is_empty() {
            headers.push(("X-Consul-Token".into(), cfg.token.expose().to_owned()));
        }
        let credentials_file = io::add_auth(&cfg.http_client, &mut headers);
        ConsulSd {
            cfg: Arc::new(cfg.clone()),
            base,
            headers,
            credentials_file,
            client: Arc::new(cfg.http_client.clone()),
            limit: cx.env.body_limit,
            name: cx.name.clone(),
            datacenter: (!cfg.datacenter.is_empty()).then(|| cfg.datacenter.clone()),
            agent: None,
            catalog: None,
            services: BTreeMap::new(),
            ids: BTreeMap::new(),
            timers: BTreeSet::new(),
        }
    }

    /// 3.x's `Run`: the catalog is watched unless the services are listed and neither
    /// tags nor a filter narrow them.
    fn watches_catalog(&self) -> bool {
        self.cfg.services.is_empty() || !self.cfg.tags.is_empty() || !self.cfg.filter.is_empty()
    }

    /// 3.x's `shouldWatch`: a listed service (or any, if none is listed) with every tag.
    fn should_watch(&self, name: &str, tags: &[String]) -> bool {
        (self.cfg.services.is_empty() || self.cfg.services.iter().any(|s| s == name))
            && self.cfg.tags.iter().all(|t| tags.contains(t))
    }

    fn watch_mut(&mut self, who: &Who) -> Option<&mut Watch> {
        match who {
            Who::Agent => self.agent.as_mut(),
            Who::Catalog => self.catalog.as_mut(),
            Who::Service(n) => self.services.get_mut(n),
        }
    }

    /// Moves `who`'s timer to `at`.
    fn set_at(&mut self, who: &Who, at: Instant) {
        let Some(w) = self.watch_mut(who) else { return };
        let old = std::mem::replace(&mut w.at, at);
        self.timers.remove(&(old, who.clone()));
        self.timers.insert((at, who.clone()));
    }

    /// The query string the consul API client sends (`url.Values.Encode`: keys sorted,
    /// values escaped).
    fn query_string(&self, who: &Who, index: u64) -> String {
        let c = &self.cfg;
        let mut q: Vec<(&str, String)> = Vec::new();
        if !c.datacenter.is_empty() {
            q.push(("dc", c.datacenter.clone()));
        }
        if !c.namespace.is_empty() {
            q.push(("ns", c.namespace.clone()));
        }
        if !c.partition.is_empty() {
            q.push(("partition", c.partition.clone()));
        }
        if *who != Who::Agent {
            if c.allow_stale {
                q.push(("stale", String::new()));
            }
            if index != 0 {
                q.push(("index", index.to_string()));
            }
            q.push(("wait", format!("{}ms", WATCH_WAIT.as_millis())));
            for (k, v) in &c.node_meta {
                q.push(("node-meta", format!("{k}:{v}")));
            }
            let filter = if *who == Who::Catalog {
                &c.filter
            } else {
                &c.health_filter
            };
            if !filter.is_empty() {
                q.push(("filter", filter.clone()));
            }
            if let Who::Service(_) = who {
                for t in &c.tags {
                    q.push(("tag", t.clone()));
                }
            }
        }
        // A stable sort keeps repeated keys (`tag`, `node-meta`) in their order.
        q.sort_by(|a, b| a.0.cmp(b.0));
        let parts: Vec<String> = q
            .into_iter()
            .map(|(k, v)| format!("{k}={}", crate::gourl::query_escape(&v)))
            .collect();
        parts.join("&")
    }

    /// Starts `who`'s query.
    fn query(&mut self, now: Instant, who: Who, io: &mut IoQueue) {
        let Ok(mut url) = self.base.clone() else {
            return;
        };
        let Some(index) = self.watch_mut(&who).map(|w| w.index) else {
            return;
        };
        match &who {
            Who::Agent => url.push_str("/v1/agent/self"),
            Who::Catalog => url.push_str("/v1/catalog/services"),
            Who::Service(n) => {
                url.push_str("/v1/health/service/");
                crate::gourl::path_escape(n, &mut url);
            }
        }
        let q = self.query_string(&who, index);
        if !q.is_empty() {
            url.push('?');
            url.push_str(&q);
        }
        let id = io.start(IoOp::Http(HttpRequest {
            url: url.clone(),
            headers: self.headers.clone(),
            credentials_file: self.credentials_file.clone(),
            client: self.client.clone(),
            body_limit: self.limit,
            timeout: QUERY_TIMEOUT,
            origin: Origin::Discovery {
                provider: self.name.clone(),
            },
            body: None,
        }));
        self.ids.insert(id, who.clone());
        if let Some(w) = self.watch_mut(&who) {
            w.started = now;
            w.query = Some(Query {
                id,
                url,
                status: 0,
                index: None,
                body: Vec::new(),
            });
        }
        self.set_at(&who, now + QUERY_TIMEOUT);
    }

    /// After a query ends: the next one starts `refresh_interval` after this one
    /// started, and not before `not_before` (the agent's has no interval: 3.x's
    /// `initialize` only waits out the pause).
    fn schedule(&mut self, who: &Who, not_before: Instant) {
        let interval = match who {
            Who::Agent => Duration::ZERO,
            _ => self.cfg.refresh_interval.to_std(),
        };
        let Some(w) = self.watch_mut(who) else { return };
        let at = (w.started + interval).max(not_before);
        self.set_at(who, at);
    }

    /// Takes `who`'s finished query out of its watch, observing how long it took in
    /// `prometheus_sd_consul_rpc_duration_seconds` (3.x observes every catalog call,
    /// whatever its outcome; the agent's is not observed).
    fn take_query(&mut self, now: Instant, who: &Who, out: &mut SdOut) -> Option<Query> {
        let w = self.watch_mut(who)?;
        let q = w.query.take()?;
        let took = now.saturating_since(w.started);
        self.ids.remove(&q.id);
        match who {
            Who::Agent => {}
            Who::Catalog => out.observe(SERVICES_RPC, took),
            Who::Service(_) => out.observe(SERVICE_RPC, took),
        }
        Some(q)
    }

    /// A query failed: counted, reported, and tried again after the pause.
    fn fail(&mut self, now: Instant, who: &Who, e: String, counted: bool, out: &mut SdOut) {
        if counted {
            out.count(RPC_FAILURES, 1);
        }
        out.failures.push(match who {
            Who::Agent => format!("Error retrieving datacenter name: {e}"),
            Who::Catalog => format!("Error refreshing service list: {e}"),
            Who::Service(n) if self.cfg.tags.is_empty() => {
                format!("Error refreshing service {n}: {e}")
            }
            Who::Service(n) => format!(
                "Error refreshing service {n} (tags {}): {e}",
                self.cfg.tags.join(",")
            ),
        });
        self.schedule(who, now + RETRY);
    }

    /// The datacenter is known: start the catalog's watch or the listed services'.
    fn begin(&mut self, now: Instant, io: &mut IoQueue) {
        if self.watches_catalog() {
            self.catalog = Some(Watch::new(now));
            self.query(now, Who::Catalog, io);
        } else {
            let names: BTreeSet<String> = self.cfg.services.iter().cloned().collect();
            for n in names {
                self.start_service(now, Arc::from(n), io);
            }
        }
    }

    fn start_service(&mut self, now: Instant, name: Arc<str>, io: &mut IoQueue) {
        self.services.insert(name.clone(), Watch::new(now));
        self.query(now, Who::Service(name), io);
    }

    fn stop_service(&mut self, name: &Arc<str>, io: &mut IoQueue) {
        if let Some(w) = self.services.remove(name) {
            self.timers.remove(&(w.at, Who::Service(name.clone())));
            if let Some(q) = w.query {
                self.ids.remove(&q.id);
                io.cancel(q.id);
            }
        }
    }

    /// A whole answer arrived.
    fn finish(&mut self, now: Instant, who: Who, io: &mut IoQueue, out: &mut SdOut) {
        let Some(q) = self.take_query(now, &who, out) else {
            return;
        };
        if q.status != 200 {
            let body = String::from_utf8_lossy(&q.body);
            let e = format!("Unexpected response code: {} ({})", q.status, body.trim());
            return self.fail(now, &who, e, true, out);
        }
        if who == Who::Agent {
            return match agent_datacenter(&q.body) {
                Ok(dc) => {
                    self.datacenter = Some(dc);
                    if let Some(w) = self.agent.take() {
                        self.timers.remove(&(w.at, Who::Agent));
                    }
                    self.begin(now, io);
                }
                // 3.x does not count this one as an RPC failure.
                Err(e) => self.fail(now, &who, e, false, out),
            };
        }
        let index = match q.index.as_deref().map(str::trim) {
            None | Some("") => {
                let e = "the answer has no X-Consul-Index header".to_owned();
                return self.fail(now, &who, e, true, out);
            }
            Some(t) => match t.parse::<u64>() {
                Ok(i) => i,
                Err(_) => {
                    let e = format!(
                        "Failed to parse X-Consul-Index: strconv.ParseUint: parsing {}: invalid syntax",
                        crate::goquote::quote(t)
                    );
                    return self.fail(now, &who, e, true, out);
                }
            },
        };
        let last = self.watch_mut(&who).map_or(0, |w| w.index);
        if index == last {
            // The wait ended with nothing new.
            self.schedule(&who, now);
            return;
        }
        match who.clone() {
            Who::Catalog => match catalog_services(&q.body) {
                Ok(services) => {
                    if let Some(w) = self.catalog.as_mut() {
                        w.index = index;
                    }
                    self.apply_catalog(now, &services, io, out);
                    self.schedule(&who, now);
                }
                Err(e) => self.fail(now, &who, e, true, out),
            },
            Who::Service(name) => {
                let dc = self.datacenter.clone().unwrap_or_default();
                match service_group(&name, &dc, &self.cfg.tag_separator, &q.body) {
                    Ok(g) => {
                        if let Some(w) = self.services.get_mut(&name) {
                            w.index = index;
                        }
                        out.updates.push(vec![g]);
                        self.schedule(&who, now);
                    }
                    Err(e) => self.fail(now, &who, e, true, out),
                }
            }
            Who::Agent => {}
        }
    }

    /// 3.x's `watchServices` after an answer with a new index.
    fn apply_catalog(
        &mut self,
        now: Instant,
        services: &BTreeMap<String, Vec<String>>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        for (name, tags) in services {
            if self.should_watch(name, tags) && !self.services.contains_key(name.as_str()) {
                self.start_service(now, Arc::from(name.as_str()), io);
            }
        }
        let gone: Vec<Arc<str>> = self
            .services
            .keys()
            .filter(|n| !services.contains_key(&***n))
            .cloned()
            .collect();
        let mut batch = Vec::new();
        for name in gone {
            self.stop_service(&name, io);
            batch.push(empty_group(name.to_string()));
        }
        if self.services.is_empty() {
            batch.push(empty_group(String::new()));
        }
        if !batch.is_empty() {
            out.updates.push(batch);
        }
    }
}

impl SdMachine for ConsulSd {
    fn start(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        if let Err(e) = &self.base {
            out.creation_failed = true;
            out.failures
                .push(format!("Cannot create service discovery: {e}"));
            return;
        }
        if self.datacenter.is_none() {
            self.agent = Some(Watch::new(now));
            self.query(now, Who::Agent, io);
        } else {
            self.begin(now, io);
        }
    }

    fn owns(&self, id: RequestId) -> bool {
        self.ids.contains_key(&id)
    }

    fn handle_io(
        &mut self,
        now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        let Some(who) = self.ids.get(&id).cloned() else {
            return;
        };
        let limit = self.limit;
        match ev {
            IoEvent::HttpHead {
                status, headers, ..
            } => {
                if let Some(q) = self.watch_mut(&who).and_then(|w| w.query.as_mut()) {
                    q.status = status;
                    q.index = io::header(headers, "x-consul-index").map(str::to_owned);
                }
            }
            IoEvent::HttpBody(chunk) => {
                let Some(q) = self.watch_mut(&who).and_then(|w| w.query.as_mut()) else {
                    return;
                };
                if q.status != 200 {
                    let room = ERROR_BODY.saturating_sub(q.body.len());
                    q.body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                } else if limit > 0 && (q.body.len() + chunk.len()) as u64 > limit {
                    io.cancel(id);
                    self.take_query(now, &who, out);
                    let e = format!("response body exceeds {limit} bytes");
                    self.fail(now, &who, e, true, out);
                } else {
                    q.body.extend_from_slice(chunk);
                }
            }
            IoEvent::HttpEnd => self.finish(now, who, io, out),
            IoEvent::Failed(e) => {
                if let Some(q) = self.take_query(now, &who, out) {
                    let url = crate::gourl::redact_url(&q.url, crate::gourl::STRIPPED);
                    self.fail(now, &who, format!("Get {url:?}: {e}"), true, out);
                }
            }
            _ => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        while let Some((at, who)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, who.clone()));
            match self.take_query(now, &who, out) {
                Some(q) => {
                    io.cancel(q.id);
                    let url = crate::gourl::redact_url(&q.url, crate::gourl::STRIPPED);
                    let e = format!(
                        "Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                    );
                    self.fail(now, &who, e, true, out);
                }
                None => self.query(now, who, io),
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    fn stop(&mut self, io: &mut IoQueue) {
        for id in self.ids.keys() {
            io.cancel(*id);
        }
        self.ids.clear();
    }

    fn in_flight(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "consul_sd_configs";

    #[test]
    fn defaults_are_applied() {
        let c: ConsulSdConfig = block(KEY, "{}");
        assert_eq!(c.server, "localhost:8500");
        assert_eq!(c.tag_separator, ",");
        assert_eq!(c.scheme, "http");
        assert!(c.allow_stale);
        assert_eq!(c.refresh_interval, PromDuration::from_secs(30));
        assert_eq!(c.http_client, HttpClientConfig::default());
        let c: ConsulSdConfig = block(
            KEY,
            "allow_stale: ~\nscheme: gopher\nservices: [a]\ntags: [t]\nnode_meta: {rack: '1'}",
        );
        assert!(!c.allow_stale);
        assert_eq!(c.scheme, "gopher");
        assert_eq!((c.services, c.tags), (vec!["a".into()], vec!["t".into()]));
        assert_eq!(c.node_meta.get("rack").map(String::as_str), Some("1"));
    }

    #[test]
    fn server_must_not_be_blank() {
        let want = "consul SD configuration requires a server address";
        assert_eq!(error_at(KEY, "server: '  '"), (4, 17, want.into()));
        assert_eq!(error(KEY, "server:"), want);
    }

    #[test]
    fn username_and_password_become_basic_auth() {
        let c: ConsulSdConfig = block(KEY, "username: u\npassword: p");
        let b = c.http_client.basic_auth.expect("basic auth");
        assert_eq!((b.username.as_str(), b.password.expose()), ("u", "p"));
        assert_eq!(
            error(KEY, "password: p\nbasic_auth: {username: x}"),
            "at most one of consul SD configuration username and password and basic auth can be configured"
        );
        // The basic auth made from them meets the client's own checks.
        assert_eq!(
            error(KEY, "username: u\nbearer_token: t"),
            "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"
        );
    }

    #[test]
    fn token_excludes_authorization_and_oauth2() {
        let want = "at most one of consul SD token, authorization, or oauth2 can be configured";
        assert_eq!(
            error(KEY, "token: t\nauthorization: {credentials: c}"),
            want
        );
        assert_eq!(
            error(
                KEY,
                "token: t\noauth2: {client_id: i, token_url: 'http://t'}"
            ),
            want
        );
        let c: ConsulSdConfig = block(KEY, "token: t\nbearer_token: b");
        assert_eq!(c.token.expose(), "t");
    }

    #[test]
    fn client_paths_are_resolved() {
        let c: ConsulSdConfig = block(KEY, "tls_config: {ca_file: ca.pem}");
        assert_eq!(c.http_client.tls_config.ca_file, "/etc/prometheus/ca.pem");
        assert_eq!(
            error(KEY, "authorization: {credentials: a, credentials_file: b}"),
            "at most one of authorization credentials & credentials_file must be configured"
        );
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "server: c:8500", "consul.plain");
    }

    // ---- the running provider ----

    use crate::discovery::mechanism::test_support::Drive;

    fn drive(yaml: &str) -> Drive<ConsulSd> {
        Drive::start("consul/0", 3, |cx| ConsulSd::new(&block(KEY, yaml), cx))
    }

    /// What these tests need on top of the generic driver.
    trait ConsulDrive {
        /// A whole answer, with `X-Consul-Index` when `index` is given.
        fn answer(&mut self, id: RequestId, status: u16, index: Option<&str>, body: &str);
        fn batches(&mut self) -> Vec<Vec<TargetGroup>>;
        fn failures(&mut self) -> Vec<String>;
        fn rpc_failures(&self) -> u64;
    }

    impl ConsulDrive for Drive<ConsulSd> {
        fn answer(&mut self, id: RequestId, status: u16, index: Option<&str>, body: &str) {
            let h: Vec<(&str, &str)> = index.map(|i| ("X-Consul-Index", i)).into_iter().collect();
            self.respond(id, status, &h, body);
        }

        fn batches(&mut self) -> Vec<Vec<TargetGroup>> {
            std::mem::take(&mut self.out.updates)
        }

        fn failures(&mut self) -> Vec<String> {
            std::mem::take(&mut self.out.failures)
        }

        fn rpc_failures(&self) -> u64 {
            self.count(RPC_FAILURES)
        }
    }

    fn secs(s: u64) -> Instant {
        Instant(0) + Duration::from_secs(s)
    }

    const WEB: &str = r#"[{"Node":{"Node":"n1","Address":"10.0.0.1","Meta":{"rack-id":"r1"},
        "TaggedAddresses":{"lan":"10.0.0.1","wan":"1.2.3.4"}},
      "Service":{"ID":"web-1","Service":"web","Tags":["prod","v2"],"Address":"","Port":8080,
        "Meta":{"version":"2.1"},"Namespace":"","Partition":""},
      "Checks":[{"CheckID":"serfHealth","Status":"passing"},{"CheckID":"c2","Status":"warning"}]},
     {"Node":{"Node":"n2","Address":"10.0.0.2"},
      "Service":{"ID":"web-2","Service":"web","Tags":null,"Address":"fd00::2","Port":9090},
      "Checks":[]}]"#;

    fn labels(l: &Labels) -> Vec<(String, String)> {
        l.iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn the_catalog_is_watched_and_each_service_gets_its_group_with_3x_labels() {
        let mut d = drive("server: 'c:8500'\ntags: [prod]\nrefresh_interval: 10s");
        // No datacenter: the agent is asked first.
        let (id, url) = d.one();
        assert_eq!(url, "http://c:8500/v1/agent/self");
        d.answer(
            id,
            200,
            None,
            r#"{"Config":{"Datacenter":"dc1","NodeName":"x"}}"#,
        );
        let (id, url) = d.one();
        assert_eq!(
            url,
            "http://c:8500/v1/catalog/services?stale=&wait=120000ms"
        );
        d.answer(
            id,
            200,
            Some("7"),
            r#"{"web":["prod","v2"],"db":[],"consul":null}"#,
        );
        // Only web has the tag.
        let (id, url) = d.one();
        assert_eq!(
            url,
            "http://c:8500/v1/health/service/web?stale=&tag=prod&wait=120000ms"
        );
        assert!(d.batches().is_empty());
        d.answer(id, 200, Some("9"), WEB);
        let b = d.batches();
        assert_eq!(b.len(), 1);
        let g = &b[0][0];
        assert_eq!(g.source, "web");
        assert_eq!(
            labels(&g.labels),
            [
                ("__meta_consul_dc".into(), "dc1".into()),
                ("__meta_consul_service".into(), "web".into())
            ]
        );
        let t: Vec<Vec<(String, String)>> = g.targets.iter().map(labels).collect();
        let want1: Vec<(String, String)> = [
            ("__address__", "10.0.0.1:8080"),
            ("__meta_consul_address", "10.0.0.1"),
            ("__meta_consul_health", "warning"),
            ("__meta_consul_metadata_rack_id", "r1"),
            ("__meta_consul_node", "n1"),
            ("__meta_consul_service_id", "web-1"),
            ("__meta_consul_service_metadata_version", "2.1"),
            ("__meta_consul_service_port", "8080"),
            ("__meta_consul_tagged_address_lan", "10.0.0.1"),
            ("__meta_consul_tagged_address_wan", "1.2.3.4"),
            ("__meta_consul_tags", ",prod,v2,"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(t[0], want1);
        // The service address wins over the node's, in brackets for IPv6; no tags, no
        // checks: `,,` and passing.
        let want2: Vec<(String, String)> = [
            ("__address__", "[fd00::2]:9090"),
            ("__meta_consul_address", "10.0.0.2"),
            ("__meta_consul_health", "passing"),
            ("__meta_consul_node", "n2"),
            ("__meta_consul_service_address", "fd00::2"),
            ("__meta_consul_service_id", "web-2"),
            ("__meta_consul_service_port", "9090"),
            ("__meta_consul_tags", ",,"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(t[1], want2);
        assert_eq!(d.m.in_flight(), 0);

        // The next watches start one refresh interval after the last ones started,
        // from the index they got, and an unchanged index changes nothing.
        assert_eq!(d.advance(), secs(10));
        let s = d.started();
        assert_eq!(s.len(), 2);
        assert!(
            s[0].1
                .ends_with("/v1/catalog/services?index=7&stale=&wait=120000ms")
        );
        assert!(
            s[1].1
                .ends_with("/v1/health/service/web?index=9&stale=&tag=prod&wait=120000ms")
        );
        d.answer(s[1].0, 200, Some("9"), WEB);
        assert!(d.batches().is_empty());
        // web goes from the catalog: its watch is cancelled and its group emptied; with
        // nothing left, the empty group of 3.x's `watchServices` follows.
        d.answer(s[0].0, 200, Some("12"), r#"{"db":[]}"#);
        let b = d.batches();
        assert_eq!(b.len(), 1);
        let sources: Vec<&str> = b[0].iter().map(|g| g.source.as_str()).collect();
        assert_eq!(sources, ["web", ""]);
        assert!(b[0].iter().all(|g| g.targets.is_empty()));
        assert!(d.m.services.is_empty());
        assert_eq!(d.rpc_failures(), 0);
        // Every catalog call is timed, the agent's is not: two catalog answers, two
        // watches of web.
        let calls: Vec<&str> = d
            .out
            .observations
            .iter()
            .map(|((_, l), _)| l[0].1)
            .collect();
        assert_eq!(calls, ["services", "service", "service", "services"]);
    }

    #[test]
    fn listed_services_are_watched_directly_with_the_query_options() {
        let mut d = drive(
            "server: 'https://c:8501'\npath_prefix: /consul\ndatacenter: east\nnamespace: ns1\n\
             partition: p1\ntoken: sekrit\nallow_stale: false\nservices: [web, 'a b', web]\n\
             node_meta: {rack: 'r 1', az: a}\nfilter: 'x'\nhealth_filter: 'Service.Port == 80'",
        );
        let s = d.started();
        let urls: Vec<&str> = s.iter().map(|(_, u, _)| u.as_str()).collect();
        // No agent request (the datacenter is set), no catalog (services are listed and
        // nothing else narrows them... except the filter: the catalog is watched).
        assert_eq!(
            urls,
            [
                "https://c:8501/consul/v1/catalog/services?dc=east&filter=x&node-meta=az%3Aa&node-meta=rack%3Ar+1&ns=ns1&partition=p1&wait=120000ms"
            ]
        );
        assert!(s[0].2.contains(&("X-Consul-Token".into(), "sekrit".into())));

        let mut d = drive(
            "server: c\ndatacenter: east\nservices: [web, 'a b/c', web]\nhealth_filter: 'Service.Port == 80'",
        );
        let s = d.started();
        let urls: Vec<&str> = s.iter().map(|(_, u, _)| u.as_str()).collect();
        assert_eq!(
            urls,
            [
                "http://c/v1/health/service/a%20b/c?dc=east&filter=Service.Port+%3D%3D+80&stale=&wait=120000ms",
                "http://c/v1/health/service/web?dc=east&filter=Service.Port+%3D%3D+80&stale=&wait=120000ms",
            ]
        );
        d.answer(s[1].0, 200, Some("3"), "[]");
        let b = d.batches();
        assert_eq!(b[0][0].source, "web");
        assert!(b[0][0].targets.is_empty());
        assert_eq!(b[0][0].labels.get("__meta_consul_dc"), Some("east"));
    }

    #[test]
    fn failures_are_counted_and_retried_and_keep_the_last_groups() {
        let mut d = drive("server: c\ndatacenter: dc\nservices: [web]\nrefresh_interval: 1s");
        let (id, _) = d.one();
        d.answer(id, 200, Some("5"), WEB);
        assert_eq!(d.batches().len(), 1);
        // A 500: counted, reported with Consul's body, no update, retried 15 s later.
        assert_eq!(d.advance(), secs(1));
        let (id, _) = d.one();
        d.answer(id, 500, Some("5"), "rpc error: No cluster leader\n");
        assert!(d.batches().is_empty());
        assert_eq!(
            d.failures(),
            [
                "Error refreshing service web: Unexpected response code: 500 (rpc error: No cluster leader)"
            ]
        );
        assert_eq!(d.rpc_failures(), 1);
        assert_eq!(d.advance(), secs(16));
        // A reset connection, an answer without an index, one with a bad index, a body
        // that is not JSON: each one a failure, and the groups stay.
        let (id, _) = d.one();
        d.m.handle_io(
            d.now,
            id,
            IoEvent::Failed("connection reset by peer"),
            &mut d.io,
            &mut d.out,
        );
        assert!(d.failures()[0].ends_with(": Get \"http://c/v1/health/service/web?dc=dc&index=5&stale=&wait=120000ms\": connection reset by peer"));
        d.advance();
        let (id, _) = d.one();
        d.answer(id, 200, None, "[]");
        assert!(d.failures()[0].ends_with("the answer has no X-Consul-Index header"));
        d.advance();
        let (id, _) = d.one();
        d.answer(id, 200, Some("x1"), "[]");
        assert!(d.failures()[0].ends_with(
            "Failed to parse X-Consul-Index: strconv.ParseUint: parsing \"x1\": invalid syntax"
        ));
        d.advance();
        let (id, _) = d.one();
        d.answer(id, 200, Some("6"), "[{\"Node\":");
        assert!(d.failures()[0].contains("decoding the answer"));
        assert!(d.batches().is_empty());
        assert_eq!(d.rpc_failures(), 5);
        // A server that never answers: cancelled after 135 s, a failure.
        let t = d.advance();
        let (id, _) = d.one();
        assert_eq!(d.advance(), t + QUERY_TIMEOUT);
        assert!(d.cancelled().contains(&id));
        assert!(d.failures()[0].contains("context deadline exceeded"));
        assert_eq!(d.rpc_failures(), 6);
        // It recovers, from index 5 (the last good one).
        d.advance();
        let (id, url) = d.one();
        assert!(url.contains("index=5&"), "{url}");
        d.answer(id, 200, Some("8"), "[]");
        assert!(d.batches()[0][0].targets.is_empty());
    }

    #[test]
    fn an_index_that_goes_backwards_is_a_new_state() {
        let mut d = drive("server: c\ndatacenter: dc\nservices: [web]\nrefresh_interval: 1s");
        let (id, _) = d.one();
        d.answer(id, 200, Some("100"), WEB);
        assert_eq!(d.batches()[0][0].targets.len(), 2);
        d.advance();
        let (id, _) = d.one();
        // A server restored from an older snapshot.
        d.answer(id, 200, Some("4"), "[]");
        assert!(d.batches()[0][0].targets.is_empty());
        d.advance();
        let (_, url) = d.one();
        assert!(url.contains("index=4&"), "{url}");
    }

    #[test]
    fn the_agent_is_asked_again_until_it_names_the_datacenter() {
        let mut d = drive("server: c\nservices: [web]");
        let (id, _) = d.one();
        d.answer(id, 403, None, "ACL not found");
        assert_eq!(d.rpc_failures(), 1);
        assert_eq!(d.advance(), secs(15));
        let (id, url) = d.one();
        assert_eq!(url, "http://c/v1/agent/self");
        d.answer(id, 200, None, r#"{"Config":{"Datacenter":7}}"#);
        // Not an RPC failure in 3.x, but reported.
        assert_eq!(d.rpc_failures(), 1);
        assert_eq!(
            d.failures().last().map(String::as_str),
            Some("Error retrieving datacenter name: invalid value '7' for Config.Datacenter")
        );
        d.advance();
        let (id, _) = d.one();
        d.answer(id, 200, None, r#"{"Config":{"Datacenter":"dc9"}}"#);
        let (id, url) = d.one();
        assert!(url.starts_with("http://c/v1/health/service/web?"), "{url}");
        d.answer(id, 200, Some("1"), "[]");
        assert_eq!(
            d.batches()[0][0].labels.get("__meta_consul_dc"),
            Some("dc9")
        );
    }

    #[test]
    fn an_unknown_protocol_cannot_be_created_and_stop_cancels_everything() {
        let d = drive("server: 'unix:///run/consul.sock'");
        assert!(d.out.creation_failed);
        assert_eq!(
            d.out.failures,
            ["Cannot create service discovery: Unknown protocol scheme: unix"]
        );
        assert_eq!(d.m.in_flight(), 0);
        assert_eq!(d.m.poll_timeout(), None);

        let mut d = drive("server: c\ndatacenter: dc\nservices: [a, b]");
        let ids: Vec<RequestId> = d.started().iter().map(|s| s.0).collect();
        d.m.stop(&mut d.io);
        assert_eq!(d.cancelled(), ids);
        assert_eq!(d.m.in_flight(), 0);
    }

    #[test]
    fn aggregated_health_as_the_consul_client_computes_it() {
        let c = |id: &str, st: &str| EntryCheck {
            check_id: Some(id.into()),
            status: Some(st.into()),
        };
        assert_eq!(aggregated_status(&[]), "passing");
        assert_eq!(
            aggregated_status(&[c("a", "passing"), c("b", "critical")]),
            "critical"
        );
        assert_eq!(
            aggregated_status(&[c("_node_maintenance", "critical"), c("b", "critical")]),
            "maintenance"
        );
        assert_eq!(
            aggregated_status(&[c("_service_maintenance:web", "x"), c("b", "warning")]),
            "maintenance"
        );
        assert_eq!(
            aggregated_status(&[c("a", "passing"), c("b", "unknown")]),
            ""
        );
    }
}
