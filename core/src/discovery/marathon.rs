//! `marathon_sd_configs`: tasks of the applications of a Marathon (Mesos) cluster, read
//! from `<server>/v2/apps` every `refresh_interval`. Validation follows 3.x's
//! `discovery/marathon` `SDConfig.UnmarshalYAML`, and `SetDirectory` resolves
//! `auth_token_file` as well as the client's files.
//!
//! The provider follows 3.x's `Discovery.refresh` under `refresh.Discovery`: every
//! interval one `GET <server>/v2/apps/?embed=apps.tasks` to a server picked at random (by
//! the agent's seed here), with `Authorization: token=<auth_token>` (the file read again
//! for every request) or the client's own authorization. Each app is a group (source: its
//! id) with `__meta_marathon_app`, `__meta_marathon_image` and its labels; each task's
//! port a target, its port found as `targetsForApp` finds it (port mappings of the
//! container or of its Docker part, then port definitions, then the task's own ports; a
//! container network's task reached at its first IP address); apps gone since the last
//! refresh are sent as empty groups. A failure is counted in
//! `prometheus_sd_refresh_failures_total` and the last groups stay.
//!
//! Differences from 3.x: an `auth_token_file` that cannot be read fails each refresh (3.x
//! refuses to create the provider), and the answer's keys must be spelt as Marathon spells
//! them (Go's decoder also accepts other cases).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::groups::{TargetGroup, join_host_port, sanitize};
use super::mechanism::{
    Invalid, MachineContext, Mechanism, SdContext, SdMachine, SdOut, at, texts, whole,
};
use super::refresh::{Done, OneRequest};
use crate::common::http::HttpClientConfig;
use crate::common::http::{Secret, with_http_client};
use crate::common::paths::join_dir;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;
use crate::io::{self, CredentialsFile, IoEvent, IoQueue, RequestId};
use crate::labels::Labels;
use crate::time::Instant;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Marathon;

with_http_client! {
    /// `marathon_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawMarathonSd {
        #[serde(default)]
        servers: Option<Vec<LenientString>>,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        auth_token: Secret,
        #[serde(default)]
        auth_token_file: LenientString,
    }
}

/// Marathon discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarathonSdConfig {
    /// Marathon servers, tried in turn.
    pub servers: Vec<String>,
    /// Refresh period (default 30s).
    pub refresh_interval: PromDuration,
    /// DC/OS authentication token.
    pub auth_token: Secret,
    /// File holding the token, resolved against the configuration's directory.
    pub auth_token_file: String,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Marathon {
    const KEY: &'static str = "marathon_sd_configs";
    const NAME: &'static str = "marathon";
    const GO_TYPE: &'static str = "marathon.plain";
    const RUNS: bool = true;
    const EXAMPLE: Option<&'static str> = Some("{servers: ['http://127.0.0.1:8080']}");
    type Raw = RawMarathonSd;
    type Config = MarathonSdConfig;

    fn validate(mut raw: RawMarathonSd, cx: &SdContext<'_>) -> Result<MarathonSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let servers = texts(raw.servers);
        if servers.is_empty() {
            return Err((
                at("servers"),
                "marathon_sd: must contain at least one Marathon server".into(),
            ));
        }
        let token = !raw.auth_token.is_empty();
        let token_file = !raw.auth_token_file.0.is_empty();
        if token && token_file {
            return Err(whole(
                "marathon_sd: at most one of auth_token & auth_token_file must be configured"
                    .into(),
            ));
        }
        if token || token_file {
            let message = if client.basic_auth.is_some() {
                Some(
                    "marathon_sd: at most one of basic_auth, auth_token & auth_token_file must be configured",
                )
            } else if !client.bearer_token.is_empty() || !client.bearer_token_file.is_empty() {
                Some(
                    "marathon_sd: at most one of bearer_token, bearer_token_file, auth_token & auth_token_file must be configured",
                )
            } else if client.authorization.is_some() {
                Some(
                    "marathon_sd: at most one of auth_token, auth_token_file & authorization must be configured",
                )
            } else {
                None
            };
            if let Some(m) = message {
                return Err(whole(m.into()));
            }
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(MarathonSdConfig {
            servers,
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(30)),
            auth_token: raw.auth_token,
            auth_token_file: join_dir(cx.paths.dir, &raw.auth_token_file.0),
            http_client,
        })
    }

    fn machine(cfg: &MarathonSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        Some(Box::new(MarathonSd::new(cfg, cx)))
    }
}

// ---------------------------------------------------------------------------------------
// The answer, as 3.x's types read it (`null` anywhere reads as the zero value).

/// `appList`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AppList {
    apps: Option<Vec<Option<App>>>,
}

/// `app`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct App {
    id: Option<String>,
    tasks: Option<Vec<Option<Task>>>,
    labels: Option<BTreeMap<String, Option<String>>>,
    container: Option<Container>,
    #[serde(rename = "portDefinitions")]
    port_definitions: Option<Vec<Option<PortDefinition>>>,
    networks: Option<Vec<Option<Network>>>,
    #[serde(rename = "requirePorts")]
    require_ports: Option<bool>,
}

/// `task`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Task {
    id: Option<String>,
    host: Option<String>,
    ports: Option<Vec<Option<u32>>>,
    #[serde(rename = "ipAddresses")]
    ip_addresses: Option<Vec<Option<IpAddress>>>,
}

/// `ipAddress`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IpAddress {
    #[serde(rename = "ipAddress")]
    address: Option<String>,
}

/// `portMapping`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PortMapping {
    labels: Option<BTreeMap<String, Option<String>>>,
    #[serde(rename = "containerPort")]
    container_port: Option<u32>,
    #[serde(rename = "hostPort")]
    host_port: Option<u32>,
}

/// `container` (its `docker` part has the older place of the port mappings).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Container {
    docker: Option<Docker>,
    #[serde(rename = "portMappings")]
    port_mappings: Option<Vec<Option<PortMapping>>>,
}

/// `dockerContainer`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Docker {
    image: Option<String>,
    #[serde(rename = "portMappings")]
    port_mappings: Option<Vec<Option<PortMapping>>>,
}

/// `portDefinition`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PortDefinition {
    labels: Option<BTreeMap<String, Option<String>>>,
    port: Option<u32>,
}

/// `network`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Network {
    mode: Option<String>,
}

type LabelMap = BTreeMap<String, Option<String>>;

/// 3.x's `extractPortMapping`.
fn port_mappings(m: &[Option<PortMapping>], container_net: bool) -> (Vec<u32>, Vec<LabelMap>) {
    m.iter()
        .map(|p| {
            let p = p.as_ref();
            let port = if container_net {
                p.and_then(|p| p.container_port)
            } else {
                p.and_then(|p| p.host_port)
            };
            (
                port.unwrap_or(0),
                p.and_then(|p| p.labels.clone()).unwrap_or_default(),
            )
        })
        .unzip()
}

/// 3.x's `createTargetGroup` and `targetsForApp` for one app.
fn app_group(app: App) -> TargetGroup {
    let id = app.id.clone().unwrap_or_default();
    let container = app.container.unwrap_or_default();
    let docker = container.docker.unwrap_or_default();
    let container_net = app
        .networks
        .as_ref()
        .and_then(|n| n.first())
        .is_some_and(|n| {
            n.as_ref()
                .and_then(|n| n.mode.as_deref())
                .is_some_and(|m| m == "container")
        });
    let mut ports: Vec<u32> = Vec::new();
    let mut labels: Vec<LabelMap> = Vec::new();
    let mut prefix = "";
    let container_maps = container.port_mappings.unwrap_or_default();
    let docker_maps = docker.port_mappings.unwrap_or_default();
    let definitions = app.port_definitions.unwrap_or_default();
    if !container_maps.is_empty() {
        (ports, labels) = port_mappings(&container_maps, container_net);
        prefix = "__meta_marathon_port_mapping_label_";
    } else if !docker_maps.is_empty() {
        (ports, labels) = port_mappings(&docker_maps, container_net);
        prefix = "__meta_marathon_port_mapping_label_";
    } else if !definitions.is_empty() {
        let require = app.require_ports.unwrap_or(false);
        for d in &definitions {
            let d = d.as_ref();
            labels.push(d.and_then(|d| d.labels.clone()).unwrap_or_default());
            // Without requirePorts the port is the service port: the task's is used.
            ports.push(if require {
                d.and_then(|d| d.port).unwrap_or(0)
            } else {
                0
            });
        }
        prefix = "__meta_marathon_port_definition_label_";
    }
    let mut targets = Vec::new();
    for t in app.tasks.unwrap_or_default().into_iter().flatten() {
        let task_ports: Vec<u32> = t
            .ports
            .unwrap_or_default()
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        if ports.is_empty() && !task_ports.is_empty() {
            ports.clone_from(&task_ports);
        }
        let host = match (
            container_net,
            t.ip_addresses.as_ref().and_then(|a| a.first()),
        ) {
            (true, Some(ip)) => ip
                .as_ref()
                .and_then(|i| i.address.clone())
                .unwrap_or_default(),
            _ => t.host.clone().unwrap_or_default(),
        };
        for (i, &port) in ports.iter().enumerate() {
            let port = if port == 0 && task_ports.len() == ports.len() {
                task_ports[i]
            } else {
                port
            };
            let mut pairs: Vec<(String, String)> = vec![
                (
                    "__address__".into(),
                    join_host_port(&host, &port.to_string()),
                ),
                (
                    "__meta_marathon_task".into(),
                    t.id.clone().unwrap_or_default(),
                ),
                ("__meta_marathon_port_index".into(), i.to_string()),
            ];
            if let Some(l) = labels.get(i) {
                for (k, v) in l {
                    pairs.push((
                        format!("{prefix}{}", sanitize(k)),
                        v.clone().unwrap_or_default(),
                    ));
                }
            }
            targets.push(Labels::from_pairs(pairs));
        }
    }
    let mut group_labels: Vec<(String, String)> = vec![
        ("__meta_marathon_app".into(), id.clone()),
        (
            "__meta_marathon_image".into(),
            docker.image.unwrap_or_default(),
        ),
    ];
    for (k, v) in app.labels.unwrap_or_default() {
        group_labels.push((
            format!("__meta_marathon_app_label_{}", sanitize(&k)),
            v.unwrap_or_default(),
        ));
    }
    TargetGroup {
        targets,
        labels: Labels::from_pairs(group_labels),
        source: id,
    }
}

/// The groups of an answer, by source (a later app with the same id replaces an earlier
/// one, as 3.x's map does).
fn groups(body: &[u8], url: &str) -> Result<BTreeMap<String, TargetGroup>, String> {
    let list: Option<AppList> =
        serde_json::from_slice(body).map_err(|e| format!("{url:?}: {e}"))?;
    let mut out = BTreeMap::new();
    for app in list
        .unwrap_or_default()
        .apps
        .unwrap_or_default()
        .into_iter()
    {
        let g = app_group(app.unwrap_or_default());
        out.insert(g.source.clone(), g);
    }
    Ok(out)
}

/// The running provider: 3.x's `refresh.Discovery` around `Discovery.refresh`.
#[derive(Debug)]
struct MarathonSd {
    servers: Vec<String>,
    rng: u64,
    req: OneRequest,
    /// The sources of the last refresh.
    last: BTreeSet<String>,
}

impl MarathonSd {
    fn new(cfg: &MarathonSdConfig, cx: &MachineContext<'_>) -> MarathonSd {
        let mut headers = vec![("User-Agent".to_owned(), cx.env.user_agent.to_string())];
        let mut credentials_file = io::add_auth(&cfg.http_client, &mut headers);
        if !cfg.auth_token.is_empty() {
            headers.push((
                "Authorization".into(),
                format!("token={}", cfg.auth_token.expose()),
            ));
        } else if !cfg.auth_token_file.is_empty() {
            credentials_file = Some(CredentialsFile::Prefixed {
                prefix: "token=".into(),
                path: cfg.auth_token_file.clone(),
            });
        }
        MarathonSd {
            servers: cfg.servers.clone(),
            rng: cx.env.seed ^ crate::hash::fnv1a64(cx.name.as_bytes()),
            req: OneRequest::new(
                &cfg.http_client,
                headers,
                credentials_file,
                cfg.refresh_interval.to_std(),
                cx,
            ),
            last: BTreeSet::new(),
        }
    }

    fn start_refresh(&mut self, now: Instant, io: &mut IoQueue) {
        // 3.x's `randomAppsURL`.
        let pick = crate::hash::splitmix64(&mut self.rng) % self.servers.len().max(1) as u64;
        let server = self.servers.get(pick as usize).cloned().unwrap_or_default();
        self.req
            .start(now, format!("{server}/v2/apps/?embed=apps.tasks"), io);
    }

    fn finish(&mut self, status: u16, body: &[u8], url: &str, out: &mut SdOut) {
        if !(200..300).contains(&status) {
            out.failures.push(format!(
                "non 2xx status '{status}' response during marathon service discovery"
            ));
            return;
        }
        let now = match groups(body, url) {
            Ok(g) => g,
            Err(e) => return out.failures.push(e),
        };
        let sources: BTreeSet<String> = now.keys().cloned().collect();
        let mut batch: Vec<TargetGroup> = now.into_values().collect();
        for gone in self.last.difference(&sources) {
            batch.push(super::groups::empty_group(gone.clone()));
        }
        self.last = sources;
        out.updates.push(batch);
    }
}

impl SdMachine for MarathonSd {
    fn start(&mut self, now: Instant, io: &mut IoQueue, _out: &mut SdOut) {
        self.start_refresh(now, io);
    }

    fn owns(&self, id: RequestId) -> bool {
        self.req.owns(id)
    }

    fn handle_io(
        &mut self,
        _now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        _io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        match self.req.handle(id, ev) {
            Some(Done::Answer { status, body, url }) => self.finish(status, &body, &url, out),
            Some(Done::Failed(e)) => out.failures.push(e),
            None => {}
        }
    }

    fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        let (due, gave_up) = self.req.due(now, io);
        out.failures.extend(gave_up);
        if due {
            self.start_refresh(now, io);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.req.poll_timeout()
    }

    fn stop(&mut self, io: &mut IoQueue) {
        self.req.stop(io);
    }

    fn in_flight(&self) -> usize {
        self.req.in_flight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "marathon_sd_configs";

    #[test]
    fn defaults_are_applied_and_token_file_resolved() {
        let c: MarathonSdConfig = block(KEY, "servers: ['http://m:8080']");
        assert_eq!(c.servers, ["http://m:8080"]);
        assert_eq!(c.refresh_interval, PromDuration::from_secs(30));
        assert_eq!(c.auth_token_file, "");
        assert_eq!(c.http_client, HttpClientConfig::default());
        let c: MarathonSdConfig = block(KEY, "servers: [m]\nauth_token_file: secrets/token");
        assert_eq!(c.auth_token_file, "/etc/prometheus/secrets/token");
    }

    #[test]
    fn servers_are_required() {
        let want = "marathon_sd: must contain at least one Marathon server";
        assert_eq!(error_at(KEY, "servers: []"), (4, 18, want.into()));
        assert_eq!(error(KEY, "auth_token: t"), want);
    }

    #[test]
    fn token_conflicts() {
        assert_eq!(
            error(KEY, "servers: [m]\nauth_token: t\nauth_token_file: f"),
            "marathon_sd: at most one of auth_token & auth_token_file must be configured"
        );
        assert_eq!(
            error(
                KEY,
                "servers: [m]\nauth_token: t\nbasic_auth: {username: u}\nbearer_token: b"
            ),
            "marathon_sd: at most one of basic_auth, auth_token & auth_token_file must be configured"
        );
        assert_eq!(
            error(
                KEY,
                "servers: [m]\nauth_token_file: t\nbearer_token_file: b"
            ),
            "marathon_sd: at most one of bearer_token, bearer_token_file, auth_token & auth_token_file must be configured"
        );
        assert_eq!(
            error(
                KEY,
                "servers: [m]\nauth_token: t\nauthorization: {credentials: c}"
            ),
            "marathon_sd: at most one of auth_token, auth_token_file & authorization must be configured"
        );
        // Without a token the client's own checks decide.
        assert_eq!(
            error(
                KEY,
                "servers: [m]\nbearer_token: b\nauthorization: {credentials: c}"
            ),
            "authorization is not compatible with bearer_token & bearer_token_file"
        );
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "servers: [m]", "marathon.plain");
    }
}

/// The provider driven by hand, with 3.x's `marathon_test.go` shapes.
#[cfg(test)]
mod machine_tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{Drive, block};

    fn drive(extra: &str) -> Drive<MarathonSd> {
        let c: MarathonSdConfig = block(
            "marathon_sd_configs",
            &format!("servers: ['http://m1:8080', 'http://m2:8080']{extra}"),
        );
        Drive::start("marathon/0", 3, |cx| MarathonSd::new(&c, cx))
    }

    fn answer(d: &mut Drive<MarathonSd>, body: &str) -> Vec<TargetGroup> {
        let (id, url) = d.one();
        assert!(url.ends_with("/v2/apps/?embed=apps.tasks"), "{url}");
        d.respond(id, 200, &[], body);
        d.out.updates.last().cloned().unwrap_or_default()
    }

    fn addrs(g: &TargetGroup) -> Vec<String> {
        g.targets
            .iter()
            .map(|t| t.get("__address__").unwrap_or("").to_owned())
            .collect()
    }

    #[test]
    fn host_ports_come_from_the_tasks() {
        let mut d = drive("");
        let body = r#"{"apps":[{"id":"/web","labels":{"team-name":"a"},
            "container":{"docker":{"image":"repo/web:1"}},
            "portDefinitions":[{"port":10000,"labels":{"metrics":"yes"}},{"port":10001}],
            "tasks":[{"id":"web.1","host":"mesos-1","ports":[31000,32000]}]}]}"#;
        let g = answer(&mut d, body);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].source, "/web");
        assert_eq!(addrs(&g[0]), ["mesos-1:31000", "mesos-1:32000"]);
        assert_eq!(g[0].labels.get("__meta_marathon_app"), Some("/web"));
        assert_eq!(g[0].labels.get("__meta_marathon_image"), Some("repo/web:1"));
        assert_eq!(
            g[0].labels.get("__meta_marathon_app_label_team_name"),
            Some("a")
        );
        let t = &g[0].targets[0];
        assert_eq!(t.get("__meta_marathon_task"), Some("web.1"));
        assert_eq!(t.get("__meta_marathon_port_index"), Some("0"));
        assert_eq!(
            t.get("__meta_marathon_port_definition_label_metrics"),
            Some("yes")
        );
        assert_eq!(g[0].targets[1].get("__meta_marathon_port_index"), Some("1"));
    }

    #[test]
    fn port_mappings_bridged_container_network_and_required_ports() {
        let mut d = drive("");
        let body = r#"{"apps":[
            {"id":"/bridged","container":{"portMappings":[{"containerPort":8080,"hostPort":0,"labels":{"prometheus":"yes"}}]},
             "tasks":[{"id":"b.1","host":"mesos-2","ports":[31001]}]},
            {"id":"/old","container":{"docker":{"image":"i","portMappings":[{"containerPort":80,"hostPort":31005}]}},
             "tasks":[{"id":"o.1","host":"mesos-3","ports":[31005]}]},
            {"id":"/cni","networks":[{"mode":"container","name":"dcos"}],
             "container":{"portMappings":[{"containerPort":9100,"hostPort":0}]},
             "tasks":[{"id":"c.1","host":"mesos-4","ports":[],"ipAddresses":[{"ipAddress":"10.0.9.7","protocol":"IPv4"}]}]},
            {"id":"/required","requirePorts":true,"portDefinitions":[{"port":9000}],
             "tasks":[{"id":"r.1","host":"mesos-5","ports":[31999]}]},
            {"id":"/idle","tasks":[]}]}"#;
        let g = answer(&mut d, body);
        let by: BTreeMap<&str, &TargetGroup> = g.iter().map(|g| (g.source.as_str(), g)).collect();
        assert_eq!(addrs(by["/bridged"]), ["mesos-2:31001"]);
        assert_eq!(
            by["/bridged"].targets[0].get("__meta_marathon_port_mapping_label_prometheus"),
            Some("yes")
        );
        assert_eq!(addrs(by["/old"]), ["mesos-3:31005"]);
        assert_eq!(addrs(by["/cni"]), ["10.0.9.7:9100"]);
        assert_eq!(addrs(by["/required"]), ["mesos-5:9000"]);
        assert!(by["/idle"].targets.is_empty());
    }

    #[test]
    fn apps_that_go_are_sent_empty_and_failures_keep_the_groups() {
        let mut d = drive("\nrefresh_interval: 10s");
        answer(
            &mut d,
            r#"{"apps":[{"id":"/a","tasks":[{"id":"a.1","host":"h","ports":[1]}]},{"id":"/b","tasks":[]}]}"#,
        );
        d.advance();
        let g = answer(&mut d, r#"{"apps":[{"id":"/b","tasks":[]}]}"#);
        let gone: Vec<_> = g.iter().filter(|g| g.source == "/a").collect();
        assert_eq!(gone.len(), 1);
        assert!(gone[0].targets.is_empty());
        let updates = d.out.updates.len();
        d.advance();
        let (id, _) = d.one();
        d.respond(id, 503, &[], "Service Unavailable");
        assert_eq!(
            d.out.failures.last().map(String::as_str),
            Some("non 2xx status '503' response during marathon service discovery")
        );
        d.advance();
        let (id, url) = d.one();
        d.respond(id, 200, &[], "{\"apps\": [");
        assert!(
            d.out
                .failures
                .last()
                .unwrap()
                .starts_with(&format!("{url:?}: "))
        );
        d.advance();
        let (id, _) = d.one();
        d.feed(id, IoEvent::Failed("connection refused"));
        assert_eq!(d.out.updates.len(), updates, "failures send nothing");
        assert_eq!(d.out.failures.len(), 3);
    }

    #[test]
    fn the_token_goes_as_marathon_wants_it_and_servers_are_picked_at_random() {
        let mut d = drive("\nauth_token: s3cret");
        let mut seen = BTreeSet::new();
        for _ in 0..16 {
            let s = d.started();
            assert_eq!(s.len(), 1);
            let (id, url, headers) = &s[0];
            assert!(headers.contains(&("Authorization".into(), "token=s3cret".into())));
            seen.insert(url.split("/v2").next().unwrap_or("").to_owned());
            d.respond(*id, 200, &[], r#"{"apps":[]}"#);
            d.advance();
        }
        assert_eq!(seen.len(), 2, "both servers asked: {seen:?}");
        let c: MarathonSdConfig = block(
            "marathon_sd_configs",
            "servers: ['http://m:8080']\nauth_token_file: /run/token",
        );
        let d = Drive::start("marathon/1", 3, |cx| MarathonSd::new(&c, cx));
        assert_eq!(
            d.m.req.credentials_file(),
            Some(&CredentialsFile::Prefixed {
                prefix: "token=".into(),
                path: "/run/token".into()
            })
        );
    }

    #[test]
    fn a_request_outliving_its_interval_is_given_up() {
        let mut d = drive("\nrefresh_interval: 5s");
        let (id, _) = d.one();
        d.advance();
        assert!(d.cancelled().contains(&id));
        assert!(d.out.failures[0].contains("context deadline exceeded"));
        assert_eq!(d.started().len(), 1, "the next refresh starts");
    }
}
