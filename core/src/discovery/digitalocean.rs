//! `digitalocean_sd_configs`: droplets (or managed databases) of a DigitalOcean account,
//! listed through its API every `refresh_interval`. Validation follows 3.x's
//! `discovery/digitalocean` (`Role.UnmarshalYAML`, `SDConfig.UnmarshalYAML`). trawl
//! validates the block but does not run it yet.

use serde::Deserialize;

use super::mechanism::{
    Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, go_enum, whole,
};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct DigitalOcean;

go_enum! {
    /// `role` of `digitalocean_sd_configs`.
    pub struct DigitalOceanRole: ["droplets", "databases"]
        else "unknown DigitalOcean SD role {}";
}

/// The untagged `HTTPClient *http.Client` field of Prometheus's struct, which yaml.v2
/// exposes under the key `httpclient`; only its `timeout` can be written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGoHttpClient {
    #[serde(default)]
    #[allow(dead_code)]
    timeout: Option<LenientString>,
}

with_http_client! {
    /// `digitalocean_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawDigitalOceanSd {
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        port: Nullable<i64>,
        #[serde(default)]
        role: Nullable<DigitalOceanRole>,
        // Accepted and ignored, as the Go field is only set by tests.
        #[serde(default)]
        #[allow(dead_code)]
        httpclient: Option<RawGoHttpClient>,
    }
}

/// DigitalOcean discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigitalOceanSdConfig {
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// `droplets` (default) or `databases`.
    pub role: DigitalOceanRole,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for DigitalOcean {
    const KEY: &'static str = "digitalocean_sd_configs";
    const NAME: &'static str = "digitalocean";
    const GO_TYPE: &'static str = "digitalocean.plain";
    const RUNS: bool = false;
    type Raw = RawDigitalOceanSd;
    type Config = DigitalOceanSdConfig;

    fn nested_go_type(key: &str) -> Option<&'static str> {
        (key == "httpclient").then_some("http.Client")
    }

    fn validate(
        mut raw: RawDigitalOceanSd,
        cx: &SdContext<'_>,
    ) -> Result<DigitalOceanSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let role = raw.role.onto(DigitalOceanRole("droplets".into()));
        if role.0.is_empty() {
            return Err((
                at("role"),
                "role missing (one of: droplets, databases)".into(),
            ));
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(DigitalOceanSdConfig {
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            port: raw.port.onto(80),
            role,
            http_client,
        })
    }

    fn machine(_: &DigitalOceanSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "digitalocean_sd_configs";

    #[test]
    fn defaults_are_applied() {
        let c: DigitalOceanSdConfig = block(KEY, "{}");
        assert_eq!(c.role.as_str(), "droplets");
        assert_eq!(
            (c.port, c.refresh_interval),
            (80, PromDuration::from_secs(60))
        );
        assert_eq!(c.http_client, HttpClientConfig::default());
        let c: DigitalOceanSdConfig = block(KEY, "role: databases\nport: 25060");
        assert_eq!((c.role.as_str(), c.port), ("databases", 25060));
        // The Go struct's untagged client field is a key too.
        let _: DigitalOceanSdConfig = block(KEY, "httpclient: {timeout: 5s}");
    }

    #[test]
    fn role_is_checked() {
        assert_eq!(
            error_at(KEY, "role: Droplets"),
            (4, 15, r#"unknown DigitalOcean SD role "Droplets""#.into())
        );
        assert_eq!(
            error_at(KEY, "port: 1\nrole: ~"),
            (5, 15, "role missing (one of: droplets, databases)".into())
        );
    }

    #[test]
    fn client_is_validated_with_resolved_paths() {
        assert_eq!(
            error(KEY, "oauth2: {client_id: x}"),
            "oauth2 token_url must be configured"
        );
        let c: DigitalOceanSdConfig = block(
            KEY,
            "bearer_token_file: /run/token\ntls_config: {cert_file: c.pem, key_file: k.pem}",
        );
        assert_eq!(c.http_client.tls_config.key_file, "/etc/prometheus/k.pem");
        let auth = c.http_client.authorization.expect("bearer token");
        assert_eq!(auth.credentials_file, "/run/token");
    }

    #[test]
    fn null_entry_and_unknown_fields() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "role: droplets", "digitalocean.plain");
        assert_eq!(
            error(KEY, "httpclient: {jar: x}"),
            "field jar not found in type http.Client"
        );
    }
}
