//! `consul_sd_configs`: services registered in a Consul catalog, watched with blocking
//! queries (`refresh_interval` apart). Validation follows 3.x's `discovery/consul`
//! `SDConfig.UnmarshalYAML`, including the `username`/`password` shorthand that becomes
//! `basic_auth`. trawl validates the block but does not run it yet.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::mechanism::{
    Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, flag, text, texts, whole,
};
use crate::common::http::HttpClientConfig;
use crate::common::http::{BasicAuth, Secret, with_http_client};
use crate::common::yaml::{Bool11, LenientString, Nullable};
use crate::duration::PromDuration;

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
    const RUNS: bool = false;
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

    fn machine(_: &ConsulSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
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
}
