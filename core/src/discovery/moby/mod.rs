//! Docker discovery: `docker_sd_configs` lists the containers of a Docker Engine, and
//! `dockerswarm_sd_configs` the services, tasks or nodes of a Swarm, through the Engine
//! API every `refresh_interval`. Validation follows 3.x's `discovery/moby`
//! (`DockerSDConfig.UnmarshalYAML`, `DockerSwarmSDConfig.UnmarshalYAML`).
//!
//! The providers follow 3.x's `refresh.Discovery` around `DockerDiscovery.refresh` and
//! the Swarm `Discovery.refresh`: every interval, the listings a role needs — containers
//! and networks; services and networks; tasks, services, nodes and networks; nodes —
//! through [`engine`]'s client (which negotiates the API version first), turned into
//! one group (source `Docker`, `DockerSwarm`) by [`api`]. A refresh sends its requests
//! at once where 3.x sends them one after the other. Any failed call, non-2xx answer,
//! undecodable body or bad address fails the refresh: it is counted in
//! `prometheus_sd_refresh_failures_total`, and the last group stays. A refresh still
//! running when the next is due is given up (3.x's client timeout is the interval).
//!
//! Differences from 3.x, beyond the order of requests: after a failed call the API
//! version is negotiated again (3.x's client negotiates once per process, so a daemon
//! downgraded under it fails until a restart); a host scheme other than `unix`, `tcp`,
//! `http` and `https` fails the provider at creation (3.x fails each refresh, or, for
//! `ssh://`, dials nothing); the rest is in [`api`]'s docs (map order, label collisions,
//! container network loops).

use std::time::Duration;

use serde::Deserialize;

pub(crate) mod api;
pub(crate) mod engine;

use self::api::{DockerOptions, NetworkLabels};
use self::engine::{Call, Engine, Outcome};
use super::groups::TargetGroup;
use super::mechanism::SdOut;
use crate::io::{IoEvent, IoQueue, Origin, RequestId};
use crate::labels::Labels;
use crate::time::Instant;

use super::mechanism::{
    Invalid, MachineContext, Mechanism, RawFilter, SdContext, SdFilter, SdMachine, at, filters,
    flag, text, whole,
};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::{Bool11, LenientString, Nullable};
use crate::duration::PromDuration;

/// `host missing`, or the host as Go's `url.Parse` refuses it.
fn check_host(host: &str) -> Result<(), Invalid> {
    if host.is_empty() {
        return Err((at("host"), "host missing".into()));
    }
    crate::gourl::parse(host).map_err(|e| (at("host"), e))?;
    Ok(())
}

with_http_client! {
    /// `docker_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawDockerSd {
        #[serde(default)]
        host: LenientString,
        #[serde(default)]
        port: Nullable<i64>,
        #[serde(default)]
        filters: Option<Vec<Option<RawFilter>>>,
        #[serde(default)]
        host_networking_host: Nullable<LenientString>,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        match_first_network: Nullable<Bool11>,
    }
}

/// Docker Engine discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerSdConfig {
    /// The Engine's address (`unix:///var/run/docker.sock`, `tcp://host:2375`).
    pub host: String,
    /// Port of containers without published ports (default 80).
    pub port: i64,
    /// Container list filters.
    pub filters: Vec<SdFilter>,
    /// Address of containers in host networking mode (default `localhost`).
    pub host_networking_host: String,
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Only the first network of a container (default true).
    pub match_first_network: bool,
    /// Client options.
    pub http_client: HttpClientConfig,
}

/// `docker_sd_configs`.
#[derive(Debug)]
pub(crate) struct Docker;

impl Mechanism for Docker {
    const KEY: &'static str = "docker_sd_configs";
    const NAME: &'static str = "docker";
    const GO_TYPE: &'static str = "moby.plain";
    const RUNS: bool = true;
    const EXAMPLE: Option<&'static str> = Some("{host: 'unix:///var/run/docker.sock'}");
    type Raw = RawDockerSd;
    type Config = DockerSdConfig;

    fn nested_go_type(key: &str) -> Option<&'static str> {
        (key == "filters").then_some("moby.Filter")
    }

    fn validate(mut raw: RawDockerSd, cx: &SdContext<'_>) -> Result<DockerSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        check_host(&raw.host.0)?;
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(DockerSdConfig {
            host: raw.host.0,
            port: raw.port.onto(80),
            filters: filters(raw.filters),
            host_networking_host: text(raw.host_networking_host, "localhost"),
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            match_first_network: flag(raw.match_first_network, true),
            http_client,
        })
    }

    fn machine(cfg: &DockerSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        let role = Role::Containers(DockerOptions {
            port: cfg.port,
            host_networking_host: cfg.host_networking_host.clone(),
            match_first_network: cfg.match_first_network,
        });
        Some(Box::new(MobySd::new(
            role,
            &cfg.host,
            &cfg.filters,
            &cfg.http_client,
            cfg.refresh_interval.to_std(),
            cx,
        )))
    }
}

with_http_client! {
    /// `dockerswarm_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawDockerSwarmSd {
        #[serde(default)]
        host: LenientString,
        #[serde(default)]
        role: LenientString,
        #[serde(default)]
        port: Nullable<i64>,
        #[serde(default)]
        filters: Option<Vec<Option<RawFilter>>>,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
    }
}

/// Docker Swarm discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerSwarmSdConfig {
    /// The Engine's address.
    pub host: String,
    /// `services`, `tasks` or `nodes`.
    pub role: String,
    /// Port of targets without published ports (default 80).
    pub port: i64,
    /// List filters.
    pub filters: Vec<SdFilter>,
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Client options.
    pub http_client: HttpClientConfig,
}

/// `dockerswarm_sd_configs`.
#[derive(Debug)]
pub(crate) struct DockerSwarm;

impl Mechanism for DockerSwarm {
    const KEY: &'static str = "dockerswarm_sd_configs";
    const NAME: &'static str = "dockerswarm";
    const GO_TYPE: &'static str = "moby.plain";
    const RUNS: bool = true;
    const EXAMPLE: Option<&'static str> =
        Some("{host: 'unix:///var/run/docker.sock', role: tasks}");
    type Raw = RawDockerSwarmSd;
    type Config = DockerSwarmSdConfig;

    fn nested_go_type(key: &str) -> Option<&'static str> {
        (key == "filters").then_some("moby.Filter")
    }

    fn validate(
        mut raw: RawDockerSwarmSd,
        cx: &SdContext<'_>,
    ) -> Result<DockerSwarmSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        check_host(&raw.host.0)?;
        match raw.role.0.as_str() {
            "services" | "nodes" | "tasks" => {}
            "" => {
                return Err((
                    at("role"),
                    "role missing (one of: tasks, services, nodes)".into(),
                ));
            }
            other => {
                return Err((
                    at("role"),
                    format!("invalid role {other}, expected tasks, services, or nodes"),
                ));
            }
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(DockerSwarmSdConfig {
            host: raw.host.0,
            role: raw.role.0,
            port: raw.port.onto(80),
            filters: filters(raw.filters),
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            http_client,
        })
    }

    fn machine(cfg: &DockerSwarmSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        let role = match cfg.role.as_str() {
            "services" => Role::Services(cfg.port),
            "tasks" => Role::Tasks(cfg.port),
            _ => Role::Nodes(cfg.port),
        };
        Some(Box::new(MobySd::new(
            role,
            &cfg.host,
            &cfg.filters,
            &cfg.http_client,
            cfg.refresh_interval.to_std(),
            cx,
        )))
    }
}

/// The HTTP client options a block sets that 3.x does not use for its host: for a
/// `unix://` or `tcp://` Engine, 3.x gives the Docker client none of them. One sentence,
/// for `trawl check config` and the daemon's load log, or `None`.
pub fn unused_client_options(host: &str, client: &HttpClientConfig) -> Option<String> {
    let scheme = host.split_once("://").map_or("", |(s, _)| s);
    if matches!(scheme, "http" | "https") || *client == HttpClientConfig::default() {
        return None;
    }
    Some(format!(
        "host {host:?} is not an http(s) URL: its HTTP client options (authorization, TLS, proxy, headers) are not used, as in Prometheus"
    ))
}

/// What a provider lists.
#[derive(Clone, Debug)]
enum Role {
    /// `docker_sd_configs`.
    Containers(DockerOptions),
    /// `dockerswarm_sd_configs` with `role: services`, and its port.
    Services(i64),
    /// `role: tasks`.
    Tasks(i64),
    /// `role: nodes`.
    Nodes(i64),
}

/// What a call lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Ping,
    Containers,
    Networks,
    /// Services, filtered (`role: services`) or not (`role: tasks`).
    Services,
    Tasks,
    Nodes,
}

/// A running Docker or Swarm provider.
#[derive(Debug)]
struct MobySd {
    role: Role,
    engine: Result<Engine, String>,
    /// The `filters=` query, if any value is set.
    filters: Option<String>,
    interval: Duration,
    next: Instant,
    /// The calls of the refresh in flight.
    calls: Vec<(Which, Call)>,
}

impl MobySd {
    fn new(
        role: Role,
        host: &str,
        filters: &[SdFilter],
        client: &HttpClientConfig,
        interval: Duration,
        cx: &MachineContext<'_>,
    ) -> MobySd {
        let origin = Origin::Discovery {
            provider: cx.name.clone(),
        };
        MobySd {
            role,
            engine: Engine::new(host, client, &cx.env.user_agent, cx.env.body_limit, origin),
            filters: engine::filters_query(filters),
            interval,
            next: cx.now,
            calls: Vec::new(),
        }
    }

    fn source(&self) -> &'static str {
        match self.role {
            Role::Containers(_) => "Docker",
            _ => "DockerSwarm",
        }
    }

    /// Starts a refresh: the ping if the version is not known, else the listings.
    fn start_refresh(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        self.next = now + self.interval;
        let Ok(engine) = &self.engine else { return };
        if !self.calls.is_empty() {
            return;
        }
        if !engine.negotiated() {
            self.calls
                .push((Which::Ping, engine.ping(self.interval, io)));
            return self.fail_unsent(io, out);
        }
        self.list(io, out);
    }

    /// A call whose request could not even be written fails the refresh at once.
    fn fail_unsent(&mut self, io: &mut IoQueue, out: &mut SdOut) {
        let unsent = self.calls.iter().find_map(|(w, c)| match c.outcome() {
            Some(Outcome::Error(e)) => Some(format!("{}: {e}", context(&self.role, *w))),
            _ => None,
        });
        if let Some(message) = unsent {
            self.abandon(io);
            out.failures.push(message);
        }
    }

    fn list(&mut self, io: &mut IoQueue, out: &mut SdOut) {
        let Ok(engine) = &self.engine else { return };
        let filtered = |path: &str| match &self.filters {
            Some(f) => format!("{path}?{f}"),
            None => path.to_owned(),
        };
        let wanted: Vec<(Which, String)> = match self.role {
            Role::Containers(_) => vec![
                (Which::Containers, filtered("/containers/json")),
                (Which::Networks, "/networks".into()),
            ],
            Role::Services(_) => vec![
                (Which::Services, filtered("/services")),
                (Which::Networks, "/networks".into()),
            ],
            Role::Tasks(_) => vec![
                (Which::Tasks, filtered("/tasks")),
                (Which::Services, "/services".into()),
                (Which::Nodes, "/nodes".into()),
                (Which::Networks, "/networks".into()),
            ],
            Role::Nodes(_) => vec![(Which::Nodes, filtered("/nodes"))],
        };
        for (which, path) in wanted {
            let call = engine.get(&path, self.interval, io);
            self.calls.push((which, call));
        }
        self.fail_unsent(io, out);
    }
}

/// 3.x's message prefix for a failed call of `which`.
fn context(role: &Role, which: Which) -> &'static str {
    match (which, role) {
        (Which::Ping, _) => "error negotiating the API version",
        (Which::Containers, _) => "error while listing containers",
        (Which::Networks, Role::Containers(_)) => "error while computing network labels",
        (Which::Networks, _) => "error while computing swarm network labels",
        (Which::Services, Role::Tasks(_)) => "error while computing services labels and ports",
        // 3.x names the task list "swarm services" too.
        (Which::Services | Which::Tasks, _) => "error while listing swarm services",
        (Which::Nodes, Role::Tasks(_)) => {
            "error while computing nodes labels and ports: error while listing swarm nodes"
        }
        (Which::Nodes, _) => "error while listing swarm nodes",
    }
}

impl MobySd {
    /// Every call of the refresh has ended well: the group, or why not.
    fn build(&mut self) -> Result<TargetGroup, String> {
        let mut bodies: Vec<(Which, Vec<u8>)> = Vec::new();
        for (which, call) in &mut self.calls {
            if let Some(Outcome::Body(b)) = call.take_outcome() {
                bodies.push((*which, b));
            }
        }
        self.calls.clear();
        let body = |w: Which| -> &[u8] {
            bodies
                .iter()
                .find(|(x, _)| *x == w)
                .map_or(&[][..], |(_, b)| b.as_slice())
        };
        let networks = |prefix: &str| -> Result<NetworkLabels, String> {
            api::network_labels(body(Which::Networks), prefix)
        };
        let targets: Vec<Labels> = match &self.role {
            Role::Containers(opts) => {
                let nets = networks("__meta_docker_")
                    .map_err(|e| format!("error while computing network labels: {e}"))?;
                api::container_targets(body(Which::Containers), &nets, opts)?
            }
            Role::Services(port) => {
                let nets = networks("__meta_dockerswarm_")
                    .map_err(|e| format!("error while computing swarm network labels: {e}"))?;
                api::service_targets(body(Which::Services), &nets, *port)?
            }
            Role::Tasks(port) => {
                let nets = networks("__meta_dockerswarm_")
                    .map_err(|e| format!("error while computing swarm network labels: {e}"))?;
                api::task_targets(
                    body(Which::Tasks),
                    body(Which::Services),
                    body(Which::Nodes),
                    &nets,
                    *port,
                )?
            }
            Role::Nodes(port) => api::node_targets(body(Which::Nodes), *port)?,
        };
        Ok(TargetGroup {
            targets,
            labels: Labels::default(),
            source: self.source().to_owned(),
        })
    }

    /// Gives up the calls in flight.
    fn abandon(&mut self, io: &mut IoQueue) {
        for (_, c) in self.calls.drain(..) {
            if c.outcome().is_none() {
                io.cancel(c.id);
            }
        }
    }
}

impl SdMachine for MobySd {
    fn start(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        if let Err(e) = &self.engine {
            out.creation_failed = true;
            out.failures
                .push(format!("Cannot create service discovery: {e}"));
            self.next = Instant(u64::MAX);
            return;
        }
        self.start_refresh(now, io, out);
    }

    fn owns(&self, id: RequestId) -> bool {
        self.calls.iter().any(|(_, c)| c.id == id)
    }

    fn handle_io(
        &mut self,
        _now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        let Ok(engine) = &mut self.engine else { return };
        let Some(i) = self.calls.iter().position(|(_, c)| c.id == id) else {
            return;
        };
        let (which, call) = &mut self.calls[i];
        let which = *which;
        if !engine.handle(call, ev, io) {
            return;
        }
        if let Some(Outcome::Error(e)) = call.outcome() {
            let message = format!("{}: {e}", context(&self.role, which));
            // Negotiate again next time: the daemon may have changed.
            engine.forget_version();
            self.abandon(io);
            out.failures.push(message);
            return;
        }
        if self.calls.iter().any(|(_, c)| c.outcome().is_none()) {
            return;
        }
        if which == Which::Ping {
            self.calls.clear();
            return self.list(io, out);
        }
        match self.build() {
            Ok(group) => out.updates.push(vec![group]),
            Err(e) => out.failures.push(e),
        }
    }

    fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        if now < self.next {
            return;
        }
        if let Some((which, c)) = self.calls.iter().find(|(_, c)| c.outcome().is_none()) {
            // A refresh that outlived its interval is given up.
            let message = format!(
                "{}: Get {:?}: context deadline exceeded",
                context(&self.role, *which),
                c.url()
            );
            self.abandon(io);
            if let Ok(e) = &mut self.engine {
                e.forget_version();
            }
            out.failures.push(message);
        }
        self.start_refresh(now, io, out);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next)
    }

    fn stop(&mut self, io: &mut IoQueue) {
        self.abandon(io);
    }

    fn in_flight(&self) -> usize {
        self.calls
            .iter()
            .filter(|(_, c)| c.outcome().is_none())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const DOCKER: &str = "docker_sd_configs";
    const SWARM: &str = "dockerswarm_sd_configs";

    #[test]
    fn docker_defaults_are_applied() {
        let c: DockerSdConfig = block(DOCKER, "host: unix:///var/run/docker.sock");
        assert_eq!(c.host, "unix:///var/run/docker.sock");
        assert_eq!((c.port, c.host_networking_host.as_str()), (80, "localhost"));
        assert!(c.match_first_network);
        assert!(c.filters.is_empty());
        assert_eq!(c.refresh_interval, PromDuration::from_secs(60));
        assert_eq!(c.http_client, HttpClientConfig::default());
        let c: DockerSdConfig = block(
            DOCKER,
            "host: tcp://d:2375\nmatch_first_network: ~\nfilters: [{name: label, values: [a]}, ~]",
        );
        assert!(!c.match_first_network);
        assert_eq!(c.filters.len(), 2);
        assert_eq!(c.filters[1], SdFilter::default());
    }

    #[test]
    fn swarm_defaults_are_applied() {
        let c: DockerSwarmSdConfig = block(SWARM, "host: tcp://m:2375\nrole: tasks");
        assert_eq!(c.role, "tasks");
        assert_eq!(
            (c.port, c.refresh_interval),
            (80, PromDuration::from_secs(60))
        );
        assert_eq!(c.http_client, HttpClientConfig::default());
    }

    #[test]
    fn host_is_checked() {
        for key in [DOCKER, SWARM] {
            assert_eq!(error_at(key, "port: 1"), (4, 9, "host missing".into()));
            assert_eq!(
                error_at(key, "host: 'tcp://d:x'"),
                (
                    4,
                    15,
                    r#"parse "tcp://d:x": invalid port ":x" after host"#.into()
                )
            );
            assert_eq!(
                error(key, "host: '10.0.0.1:2375'"),
                r#"parse "10.0.0.1:2375": first path segment in URL cannot contain colon"#
            );
        }
    }

    #[test]
    fn swarm_role_is_checked() {
        assert_eq!(
            error_at(SWARM, "host: tcp://m"),
            (4, 9, "role missing (one of: tasks, services, nodes)".into())
        );
        assert_eq!(
            error_at(SWARM, "host: tcp://m\nrole: Tasks"),
            (
                5,
                15,
                "invalid role Tasks, expected tasks, services, or nodes".into()
            )
        );
        // The host is checked first.
        assert_eq!(error(SWARM, "role: x"), "host missing");
    }

    #[test]
    fn client_is_validated_with_resolved_paths() {
        for (key, body) in [
            (DOCKER, "host: tcp://d"),
            (SWARM, "host: tcp://d\nrole: nodes"),
        ] {
            assert_eq!(
                error(
                    key,
                    &format!("{body}\nbearer_token: a\noauth2: {{client_id: c}}")
                ),
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"
            );
        }
        let c: DockerSdConfig = block(DOCKER, "host: tcp://d\ntls_config: {ca_file: ca.pem}");
        assert_eq!(c.http_client.tls_config.ca_file, "/etc/prometheus/ca.pem");
    }

    #[test]
    fn null_entries_and_unknown_fields() {
        null_entry_is_refused(DOCKER);
        null_entry_is_refused(SWARM);
        unknown_field_names(DOCKER, "host: tcp://d", "moby.plain");
        unknown_field_names(SWARM, "host: tcp://d\nrole: nodes", "moby.plain");
        assert_eq!(
            error(DOCKER, "host: tcp://d\nfilters: [{name: a, value: b}]"),
            "field value not found in type moby.Filter"
        );
        assert_eq!(
            error(
                SWARM,
                "host: tcp://d\nrole: nodes\nmatch_first_network: true"
            ),
            "field match_first_network not found in type moby.plain"
        );
    }
}

#[cfg(test)]
mod machine_tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{Drive, block};
    use crate::io::{IoCommand, IoOp};

    const CONTAINERS: &str = r#"[
      {"Id":"shared1","Names":["/shared"],"Image":"bb:1","ImageID":"sha256:6e",
       "Ports":[],"Labels":{},
       "HostConfig":{"NetworkMode":"container:multi1"},"NetworkSettings":{"Networks":{}}},
      {"Id":"multi1","Names":["/multi"],"Image":"bb:1","ImageID":"sha256:6e",
       "Ports":[{"IP":"127.0.0.1","PrivatePort":8080,"PublicPort":18080,"Type":"tcp"},
                {"PrivatePort":9100,"Type":"tcp"},{"PrivatePort":53,"Type":"udp"}],
       "Labels":{"com.example.role":"web"},"HostConfig":{"NetworkMode":"default"},
       "NetworkSettings":{"Networks":{
         "bridge":{"NetworkID":"n-bridge","IPAddress":"172.17.0.5","GlobalIPv6Address":""},
         "backnet":{"NetworkID":"n-back","IPAddress":"172.19.0.2","GlobalIPv6Address":""}}}},
      {"Id":"host1","Names":["/hostnet"],"Image":"bb:1","ImageID":"sha256:6e","Ports":[],
       "Labels":{"scrape":"yes"},"HostConfig":{"NetworkMode":"host"},
       "NetworkSettings":{"Networks":{"host":{"NetworkID":"n-host","IPAddress":""}}}},
      {"Id":"v6","Names":["/v6"],"Ports":null,"Labels":null,"HostConfig":{"NetworkMode":"v6net"},
       "NetworkSettings":{"Networks":{"v6net":{"NetworkID":"n-v6","IPAddress":"",
         "GlobalIPv6Address":"2001:db8:0:0::7"}}}},
      {"Id":"nameless","Names":[]}
    ]"#;

    const NETWORKS: &str = r#"[
      {"Name":"bridge","Id":"n-bridge","Scope":"local","Internal":false,"Ingress":false,
       "Labels":{}},
      {"Name":"backnet","Id":"n-back","Scope":"local","Labels":{"team":"x"}},
      {"Name":"host","Id":"n-host","Scope":"local","Labels":{}}
    ]"#;

    /// A stream opened since the last look: (id, unix path).
    fn streams(d: &mut Drive<MobySd>, from: &mut usize) -> Vec<(RequestId, Option<String>)> {
        let out = d.io.queue[*from..]
            .iter()
            .filter_map(|c| match c {
                IoCommand::Start(id, IoOp::Stream(s)) => Some((*id, s.unix_path.clone())),
                _ => None,
            })
            .collect();
        *from = d.io.queue.len();
        out
    }

    /// What the core wrote on stream `id`.
    fn sent(d: &Drive<MobySd>, id: RequestId) -> String {
        d.io.queue
            .iter()
            .filter_map(|c| match c {
                IoCommand::Send(i, data) if *i == id => Some(String::from_utf8_lossy(data)),
                _ => None,
            })
            .collect()
    }

    /// Opens stream `id`, and answers its request with `response` (raw HTTP), in two
    /// pieces.
    fn answer_stream(d: &mut Drive<MobySd>, id: RequestId, response: &str) -> String {
        d.feed(id, IoEvent::StreamOpened);
        let request = sent(d, id);
        let (a, b) = response.as_bytes().split_at(response.len() / 2);
        d.feed(id, IoEvent::StreamData(a));
        d.feed(id, IoEvent::StreamData(b));
        request
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    const PING: &str = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK";

    fn docker(extra: &str) -> Drive<MobySd> {
        let c: DockerSdConfig = block(
            "docker_sd_configs",
            &format!("host: unix:///run/docker.sock{extra}"),
        );
        Drive::start("docker/0", 1, |cx| {
            MobySd::new(
                Role::Containers(DockerOptions {
                    port: c.port,
                    host_networking_host: c.host_networking_host.clone(),
                    match_first_network: c.match_first_network,
                }),
                &c.host,
                &c.filters,
                &c.http_client,
                c.refresh_interval.to_std(),
                cx,
            )
        })
    }

    fn addrs(g: &TargetGroup) -> Vec<String> {
        g.targets
            .iter()
            .map(|t| t.get("__address__").unwrap_or("").to_owned())
            .collect()
    }

    /// Pings and lists through the Unix socket; returns the listing requests.
    fn refresh_docker(d: &mut Drive<MobySd>, seen: &mut usize, containers: &str) -> Vec<String> {
        let mut s = streams(d, seen);
        let mut requests = Vec::new();
        if s.len() == 1 {
            // Not negotiated yet: the ping first.
            assert_eq!(s[0].1.as_deref(), Some("/run/docker.sock"));
            let req = answer_stream(d, s[0].0, PING);
            assert!(req.starts_with("GET /_ping HTTP/1.1\r\nHost: api.moby.localhost\r\n"));
            assert!(d.cancelled().contains(&s[0].0), "the stream is closed");
            s = streams(d, seen);
        }
        assert_eq!(s.len(), 2, "{s:?}");
        requests.push(answer_stream(d, s[0].0, &ok(containers)));
        // Networks answered chunked.
        let chunked = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{NETWORKS}\r\n0\r\n\r\n",
            NETWORKS.len()
        );
        requests.push(answer_stream(d, s[1].0, &chunked));
        requests
    }

    #[test]
    fn containers_are_listed_over_the_unix_socket() {
        let mut d = docker("\nfilters: [{name: label, values: ['a=b']}]");
        let mut seen = 0;
        let requests = refresh_docker(&mut d, &mut seen, CONTAINERS);
        assert!(
            requests[0].starts_with(
                "GET /v1.41/containers/json?filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D HTTP/1.1\r\nHost: api.moby.localhost\r\n"
            ),
            "{}",
            requests[0]
        );
        assert!(requests[1].starts_with("GET /v1.41/networks HTTP/1.1\r\n"));
        assert!(requests[1].contains("User-Agent: trawl/test\r\n"));
        assert_eq!(d.out.failures, Vec::<String>::new());
        let g = &d.out.updates[0][0];
        assert_eq!(g.source, "Docker");
        assert_eq!(
            addrs(g),
            [
                // `shared` takes `multi`'s first network (backnet), and has no ports.
                "172.19.0.2:80",
                "172.19.0.2:8080",
                "172.19.0.2:9100",
                "localhost",
                "[2001:db8::7]:80",
            ]
        );
        let multi = &g.targets[1];
        for (k, v) in [
            ("__meta_docker_container_id", "multi1"),
            ("__meta_docker_container_name", "/multi"),
            ("__meta_docker_container_network_mode", "default"),
            ("__meta_docker_container_image", "bb:1"),
            ("__meta_docker_container_image_id", "sha256:6e"),
            ("__meta_docker_container_label_com_example_role", "web"),
            ("__meta_docker_network_ip", "172.19.0.2"),
            ("__meta_docker_port_private", "8080"),
            ("__meta_docker_port_public", "18080"),
            ("__meta_docker_port_public_ip", "127.0.0.1"),
            ("__meta_docker_network_id", "n-back"),
            ("__meta_docker_network_name", "backnet"),
            ("__meta_docker_network_scope", "local"),
            ("__meta_docker_network_internal", "false"),
            ("__meta_docker_network_ingress", "false"),
            ("__meta_docker_network_label_team", "x"),
        ] {
            assert_eq!(multi.get(k), Some(v), "{k} in {multi:?}");
        }
        assert_eq!(g.targets[2].get("__meta_docker_port_public"), None);
        let shared = &g.targets[0];
        assert_eq!(shared.get("__meta_docker_container_name"), Some("/shared"));
        assert_eq!(shared.get("__meta_docker_port_private"), None);
        let host = &g.targets[3];
        assert_eq!(
            host.get("__meta_docker_container_label_scrape"),
            Some("yes")
        );
        assert_eq!(host.get("__meta_docker_network_name"), Some("host"));
        assert_eq!(host.get("__meta_docker_network_ip"), None, "empty");

        // The next refresh lists without pinging again.
        d.advance();
        let s = streams(&mut d, &mut seen);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn every_network_when_not_matching_the_first() {
        let mut d = docker("\nmatch_first_network: false\nhost_networking_host: 127.0.0.1");
        let mut seen = 0;
        refresh_docker(&mut d, &mut seen, CONTAINERS);
        let g = &d.out.updates[0][0];
        assert_eq!(
            addrs(g),
            [
                "172.19.0.2:80",
                "172.17.0.5:80",
                "172.19.0.2:8080",
                "172.19.0.2:9100",
                "172.17.0.5:8080",
                "172.17.0.5:9100",
                "127.0.0.1",
                "[2001:db8::7]:80",
            ]
        );
    }

    #[test]
    fn failures_keep_the_group_and_negotiate_again() {
        let mut d = docker("\nrefresh_interval: 5s");
        let mut seen = 0;
        refresh_docker(&mut d, &mut seen, CONTAINERS);
        assert_eq!(d.out.updates.len(), 1);
        d.advance();
        let s = streams(&mut d, &mut seen);
        let body = r#"{"message":"client version 1.41 is too new"}"#;
        answer_stream(
            &mut d,
            s[0].0,
            &format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        );
        assert_eq!(
            d.out.failures,
            [
                "error while listing containers: Error response from daemon: client version 1.41 is too new"
            ]
        );
        assert!(
            d.cancelled().contains(&s[1].0),
            "the other call is given up"
        );
        assert_eq!(d.out.updates.len(), 1, "the last group stays");
        // Bad JSON, an unreadable address, a cut answer, a refused socket.
        for (containers, want) in [
            ("[", "error while listing containers: EOF while parsing"),
            (
                r#"[{"Id":"x","Names":["/x"],"NetworkSettings":{"Networks":{"b":{"IPAddress":"1.2.3"}}}}]"#,
                "error while listing containers: ParseAddr(\"1.2.3\"): unable to parse IP",
            ),
        ] {
            d.advance();
            refresh_docker(&mut d, &mut seen, containers);
            assert!(
                d.out.failures.last().unwrap().starts_with(want),
                "{:?}",
                d.out.failures
            );
        }
        // An undecodable answer keeps the version; a failed call forgets it.
        d.advance();
        let s = streams(&mut d, &mut seen);
        assert_eq!(s.len(), 2, "lists at once");
        d.feed(s[1].0, IoEvent::Failed("connection reset by peer"));
        assert_eq!(
            d.out.failures.last().unwrap(),
            "error while computing network labels: Get \"http://%2Frun%2Fdocker.sock/v1.41/networks\": connection reset by peer"
        );
        d.advance();
        let s = streams(&mut d, &mut seen);
        assert_eq!(s.len(), 1, "pings again after a failed call");
        d.feed(s[0].0, IoEvent::StreamOpened);
        d.feed(
            s[0].0,
            IoEvent::StreamData(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nOK"),
        );
        d.feed(s[0].0, IoEvent::StreamClosed);
        assert_eq!(
            d.out.failures.last().unwrap(),
            "error negotiating the API version: Get \"http://%2Frun%2Fdocker.sock/_ping\": unexpected EOF"
        );
        d.advance();
        let s = streams(&mut d, &mut seen);
        d.feed(
            s[0].0,
            IoEvent::Failed("dial unix /run/docker.sock: connection refused"),
        );
        assert!(
            d.out
                .failures
                .last()
                .unwrap()
                .ends_with("connection refused")
        );
        assert_eq!(d.out.updates.len(), 1);
    }

    #[test]
    fn a_refresh_outliving_its_interval_is_given_up() {
        let mut d = docker("\nrefresh_interval: 5s");
        let mut seen = 0;
        let s = streams(&mut d, &mut seen);
        d.advance();
        assert!(d.cancelled().contains(&s[0].0));
        assert_eq!(
            d.out.failures,
            [
                "error negotiating the API version: Get \"http://%2Frun%2Fdocker.sock/_ping\": context deadline exceeded"
            ]
        );
        assert_eq!(
            streams(&mut d, &mut seen).len(),
            1,
            "the next refresh pings"
        );
        assert_eq!(d.m.in_flight(), 1);
    }

    #[test]
    fn big_bodies_fail() {
        let mut d = docker("");
        let mut seen = 0;
        let big = format!("[{}]", vec!["{}"; 600_000].join(","));
        refresh_docker(&mut d, &mut seen, &big);
        assert!(
            d.out.failures[0].contains("body exceeds the limit of 1048576 bytes"),
            "{:?}",
            d.out.failures
        );
    }

    #[test]
    fn unreachable_hosts_fail_creation() {
        let c: DockerSdConfig = block("docker_sd_configs", "host: localhost");
        let d = Drive::start("docker/0", 1, |cx| {
            MobySd::new(
                Role::Containers(DockerOptions {
                    port: 80,
                    host_networking_host: "localhost".into(),
                    match_first_network: true,
                }),
                &c.host,
                &c.filters,
                &c.http_client,
                c.refresh_interval.to_std(),
                cx,
            )
        });
        assert!(d.out.creation_failed);
        assert_eq!(
            d.out.failures,
            ["Cannot create service discovery: unable to parse docker host `localhost`"]
        );
        assert_eq!(d.m.poll_timeout(), Some(Instant(u64::MAX)));
    }

    const SERVICES: &str = r#"[
      {"ID":"svc-api","Spec":{"Name":"api","Labels":{"tier":"back"},
        "TaskTemplate":{"ContainerSpec":{"Image":"bb:1","Hostname":"h","Labels":{"c":"1"}}},
        "Mode":{"Replicated":{"Replicas":1}}},
       "Endpoint":{"Ports":[
          {"Protocol":"tcp","TargetPort":9090,"PublishedPort":19090,"PublishMode":"ingress"},
          {"Protocol":"tcp","TargetPort":9091,"PublishedPort":19091,"PublishMode":"host"},
          {"Protocol":"udp","TargetPort":53,"PublishedPort":53,"PublishMode":"ingress"}],
        "VirtualIPs":[{"NetworkID":"n-ingress","Addr":"10.0.0.3/24"}]},
       "UpdateStatus":{"State":"completed"}},
      {"ID":"svc-mon","Spec":{"Name":"mon","Mode":{"Global":{}}},
       "Endpoint":{"VirtualIPs":[{"NetworkID":"n-ov","Addr":"fd00::5/64"}]}}
    ]"#;

    const SWARM_NETWORKS: &str = r#"[
      {"Name":"ingress","Id":"n-ingress","Scope":"swarm","Ingress":true,"Labels":{}},
      {"Name":"ov","Id":"n-ov","Scope":"swarm","Labels":{"l.x":"y"}}
    ]"#;

    const NODES: &str = r#"[
      {"ID":"node1","Spec":{"Labels":{"zone":"a"},"Role":"manager","Availability":"active"},
       "Description":{"Hostname":"vm","Platform":{"Architecture":"x86_64","OS":"linux"},
         "Engine":{"EngineVersion":"20.10.24"}},
       "Status":{"State":"ready","Addr":"127.0.0.1"},
       "ManagerStatus":{"Leader":true,"Reachability":"reachable","Addr":"127.0.0.1:2377"}},
      {"ID":"node2","Spec":{"Role":"worker","Availability":"drain"},
       "Status":{"State":"down","Addr":"::1"}}
    ]"#;

    const TASKS: &str = r#"[
      {"ID":"task1","ServiceID":"svc-api","NodeID":"node1","Slot":1,"DesiredState":"running",
       "Spec":{"ContainerSpec":{"Labels":{"c":"1"}}},
       "Status":{"State":"running","ContainerStatus":{"ContainerID":"ctr1"},
         "PortStatus":{"Ports":[{"Protocol":"tcp","TargetPort":9091,"PublishedPort":19091,
           "PublishMode":"host"}]}},
       "NetworksAttachments":[{"Network":{"ID":"n-ingress"},"Addresses":["10.0.0.4/24"]}]},
      {"ID":"task2","ServiceID":"svc-mon","NodeID":"node2","Slot":0,"DesiredState":"shutdown",
       "Status":{"State":"failed"},
       "NetworksAttachments":[{"Network":{"ID":"n-ov"},"Addresses":["fd00::9/64"]}]}
    ]"#;

    fn swarm(role: &str) -> Drive<MobySd> {
        let c: DockerSwarmSdConfig = block(
            "dockerswarm_sd_configs",
            &format!(
                "host: http://m:2375/\nrole: {role}\nport: 9323\nbasic_auth: {{username: u, password: p}}\nfilters: [{{name: desired-state, values: [running]}}]"
            ),
        );
        Drive::start("dockerswarm/0", 1, |cx| {
            let role = match c.role.as_str() {
                "services" => Role::Services(c.port),
                "tasks" => Role::Tasks(c.port),
                _ => Role::Nodes(c.port),
            };
            MobySd::new(
                role,
                &c.host,
                &c.filters,
                &c.http_client,
                c.refresh_interval.to_std(),
                cx,
            )
        })
    }

    /// Answers the ping and then each listing by its path.
    fn refresh_swarm(d: &mut Drive<MobySd>) -> Vec<String> {
        let (id, url) = d.one();
        assert_eq!(url, "http://m:2375/_ping");
        d.respond(id, 200, &[("Api-Version", "1.41")], "OK");
        let mut urls = Vec::new();
        for (id, url, headers) in d.started() {
            assert!(
                headers
                    .iter()
                    .any(|(k, v)| k == "Authorization" && v == "Basic dTpw")
            );
            let path = url.split('?').next().unwrap_or("").to_owned();
            let body = match path.as_str() {
                "http://m:2375/v1.41/services" => SERVICES,
                "http://m:2375/v1.41/tasks" => TASKS,
                "http://m:2375/v1.41/nodes" => NODES,
                "http://m:2375/v1.41/networks" => SWARM_NETWORKS,
                other => panic!("{other}"),
            };
            d.respond(id, 200, &[], body);
            urls.push(url);
        }
        urls
    }

    #[test]
    fn swarm_services() {
        let mut d = swarm("services");
        let urls = refresh_swarm(&mut d);
        assert_eq!(
            urls,
            [
                "http://m:2375/v1.41/services?filters=%7B%22desired-state%22%3A%7B%22running%22%3Atrue%7D%7D",
                "http://m:2375/v1.41/networks"
            ]
        );
        let g = &d.out.updates[0][0];
        assert_eq!(g.source, "DockerSwarm");
        assert_eq!(
            addrs(g),
            ["10.0.0.3:19090", "10.0.0.3:19091", "[fd00::5]:9323"]
        );
        let t = &g.targets[1];
        for (k, v) in [
            ("__meta_dockerswarm_service_id", "svc-api"),
            ("__meta_dockerswarm_service_name", "api"),
            ("__meta_dockerswarm_service_mode", "replicated"),
            ("__meta_dockerswarm_service_label_tier", "back"),
            ("__meta_dockerswarm_service_task_container_image", "bb:1"),
            ("__meta_dockerswarm_service_task_container_hostname", "h"),
            ("__meta_dockerswarm_service_updating_status", "completed"),
            (
                "__meta_dockerswarm_service_endpoint_port_publish_mode",
                "host",
            ),
            ("__meta_dockerswarm_network_name", "ingress"),
            ("__meta_dockerswarm_network_ingress", "true"),
        ] {
            assert_eq!(t.get(k), Some(v), "{k} in {t:?}");
        }
        let mon = &g.targets[2];
        assert_eq!(mon.get("__meta_dockerswarm_service_mode"), Some("global"));
        assert_eq!(mon.get("__meta_dockerswarm_network_label_l_x"), Some("y"));
    }

    #[test]
    fn swarm_tasks() {
        let mut d = swarm("tasks");
        let urls = refresh_swarm(&mut d);
        assert_eq!(urls.len(), 4);
        assert!(urls[0].starts_with("http://m:2375/v1.41/tasks?filters="));
        assert_eq!(urls[1], "http://m:2375/v1.41/services", "unfiltered");
        let g = &d.out.updates[0][0];
        assert_eq!(
            addrs(g),
            [
                // The host-mode port, on the node's address.
                "127.0.0.1:19091",
                // The service's TCP ports on the task's network address.
                "10.0.0.4:19090",
                "10.0.0.4:19091",
                "[fd00::9]:9323",
            ]
        );
        let t = &g.targets[0];
        for (k, v) in [
            ("__meta_dockerswarm_task_id", "task1"),
            ("__meta_dockerswarm_task_desired_state", "running"),
            ("__meta_dockerswarm_task_state", "running"),
            ("__meta_dockerswarm_task_slot", "1"),
            ("__meta_dockerswarm_task_container_id", "ctr1"),
            ("__meta_dockerswarm_task_port_publish_mode", "host"),
            ("__meta_dockerswarm_container_label_c", "1"),
            ("__meta_dockerswarm_service_name", "api"),
            ("__meta_dockerswarm_node_id", "node1"),
            ("__meta_dockerswarm_node_hostname", "vm"),
            ("__meta_dockerswarm_node_address", "127.0.0.1"),
            ("__meta_dockerswarm_node_label_zone", "a"),
        ] {
            assert_eq!(t.get(k), Some(v), "{k} in {t:?}");
        }
        // The service set of tasks has no task template or update state, and the node
        // set no engine version or manager status.
        for k in [
            "__meta_dockerswarm_service_task_container_image",
            "__meta_dockerswarm_service_updating_status",
            "__meta_dockerswarm_node_engine_version",
            "__meta_dockerswarm_node_manager_leader",
            "__meta_dockerswarm_network_name",
        ] {
            assert_eq!(t.get(k), None, "{k}");
        }
        assert_eq!(
            g.targets[1].get("__meta_dockerswarm_network_name"),
            Some("ingress")
        );
        assert_eq!(
            g.targets[3].get("__meta_dockerswarm_task_container_id"),
            None
        );
    }

    #[test]
    fn swarm_nodes() {
        let mut d = swarm("nodes");
        let urls = refresh_swarm(&mut d);
        assert_eq!(urls.len(), 1);
        let g = &d.out.updates[0][0];
        assert_eq!(addrs(g), ["127.0.0.1:9323", "[::1]:9323"]);
        let t = &g.targets[0];
        for (k, v) in [
            ("__meta_dockerswarm_node_engine_version", "20.10.24"),
            ("__meta_dockerswarm_node_manager_leader", "true"),
            ("__meta_dockerswarm_node_manager_reachability", "reachable"),
            ("__meta_dockerswarm_node_manager_address", "127.0.0.1:2377"),
            ("__meta_dockerswarm_node_platform_architecture", "x86_64"),
            ("__meta_dockerswarm_node_platform_os", "linux"),
            ("__meta_dockerswarm_node_role", "manager"),
            ("__meta_dockerswarm_node_availability", "active"),
            ("__meta_dockerswarm_node_status", "ready"),
        ] {
            assert_eq!(t.get(k), Some(v), "{k} in {t:?}");
        }
        assert_eq!(
            g.targets[1].get("__meta_dockerswarm_node_manager_leader"),
            None
        );
    }

    #[test]
    fn swarm_bad_addresses_fail_the_refresh() {
        let mut d = swarm("services");
        let (id, _) = d.one();
        d.respond(id, 200, &[], "OK");
        let started = d.started();
        assert!(
            started[0].1.starts_with("http://m:2375/v1.24/services"),
            "no version: 1.24"
        );
        d.respond(
            started[0].0,
            200,
            &[],
            r#"[{"ID":"s","Endpoint":{"VirtualIPs":[{"Addr":"10.0.0.3"}]}}]"#,
        );
        d.respond(started[1].0, 200, &[], "[]");
        assert_eq!(
            d.out.failures,
            ["error while parsing address 10.0.0.3: invalid CIDR address: 10.0.0.3"]
        );
        assert!(d.out.updates.is_empty());
    }

    #[test]
    fn newer_daemons_are_asked_at_the_clients_version() {
        let mut d = swarm("nodes");
        let (id, _) = d.one();
        d.respond(id, 200, &[("Api-Version", "1.99")], "OK");
        assert!(d.started()[0].1.starts_with("http://m:2375/v1.52/nodes"));
    }

    #[test]
    fn client_options_on_other_schemes_are_reported() {
        let client: HttpClientConfig =
            block::<DockerSdConfig>("docker_sd_configs", "host: unix:///s\nbearer_token: t")
                .http_client;
        assert!(
            unused_client_options("unix:///s", &client)
                .unwrap()
                .contains("not used, as in Prometheus")
        );
        assert_eq!(unused_client_options("https://d", &client), None);
        assert_eq!(
            unused_client_options("tcp://d:2375", &HttpClientConfig::default()),
            None
        );
    }
}
