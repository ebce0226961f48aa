//! Docker discovery: `docker_sd_configs` lists the containers of a Docker Engine, and
//! `dockerswarm_sd_configs` the services, tasks or nodes of a Swarm, through the Engine
//! API every `refresh_interval`. Validation follows 3.x's `discovery/moby`
//! (`DockerSDConfig.UnmarshalYAML`, `DockerSwarmSDConfig.UnmarshalYAML`). trawl validates
//! these blocks but does not run them yet.

use serde::Deserialize;

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
    const RUNS: bool = false;
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

    fn machine(_: &DockerSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
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
    const RUNS: bool = false;
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

    fn machine(_: &DockerSwarmSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
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
