//! `nomad_sd_configs`: services registered in HashiCorp Nomad, listed every
//! `refresh_interval`. Validation follows 3.x's `discovery/nomad`
//! `SDConfig.UnmarshalYAML`. trawl validates the block but does not run it yet.

use serde::Deserialize;

use super::mechanism::{
    Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, flag, text, whole,
};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::{Bool11, LenientString, Nullable};
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Nomad;

with_http_client! {
    /// `nomad_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawNomadSd {
        #[serde(default)]
        allow_stale: Nullable<Bool11>,
        #[serde(default)]
        namespace: Nullable<LenientString>,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        region: Nullable<LenientString>,
        #[serde(default)]
        server: Nullable<LenientString>,
        #[serde(default)]
        tag_separator: Nullable<LenientString>,
    }
}

/// Nomad discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NomadSdConfig {
    /// Allow stale answers (default true).
    pub allow_stale: bool,
    /// Namespace (default `default`).
    pub namespace: String,
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Region (default `global`).
    pub region: String,
    /// Nomad address (default `http://localhost:4646`).
    pub server: String,
    /// Joins the tags in `__meta_nomad_tags` (default `,`).
    pub tag_separator: String,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Nomad {
    const KEY: &'static str = "nomad_sd_configs";
    const NAME: &'static str = "nomad";
    const GO_TYPE: &'static str = "nomad.plain";
    const RUNS: bool = false;
    type Raw = RawNomadSd;
    type Config = NomadSdConfig;

    fn validate(mut raw: RawNomadSd, cx: &SdContext<'_>) -> Result<NomadSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let server = text(raw.server, "http://localhost:4646");
        if server.trim().is_empty() {
            return Err((
                at("server"),
                "nomad SD configuration requires a server address".into(),
            ));
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(NomadSdConfig {
            allow_stale: flag(raw.allow_stale, true),
            namespace: text(raw.namespace, "default"),
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            region: text(raw.region, "global"),
            server,
            tag_separator: text(raw.tag_separator, ","),
            http_client,
        })
    }

    fn machine(_: &NomadSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "nomad_sd_configs";

    #[test]
    fn defaults_are_applied() {
        let c: NomadSdConfig = block(KEY, "{}");
        assert!(c.allow_stale);
        assert_eq!(c.namespace, "default");
        assert_eq!(c.region, "global");
        assert_eq!(c.server, "http://localhost:4646");
        assert_eq!(c.tag_separator, ",");
        assert_eq!(c.refresh_interval, PromDuration::from_secs(60));
        assert_eq!(c.http_client, HttpClientConfig::default());
        let c: NomadSdConfig = block(KEY, "allow_stale: no\nnamespace: ~\nregion: eu");
        assert!(!c.allow_stale);
        assert_eq!((c.namespace.as_str(), c.region.as_str()), ("", "eu"));
    }

    #[test]
    fn server_must_not_be_blank() {
        let want = "nomad SD configuration requires a server address";
        assert_eq!(error_at(KEY, "server: ' '"), (4, 17, want.into()));
        assert_eq!(error(KEY, "server:"), want);
    }

    #[test]
    fn client_is_validated_with_resolved_paths() {
        assert_eq!(
            error(KEY, "no_proxy: localhost"),
            "if no_proxy is configured, proxy_url must also be configured"
        );
        let c: NomadSdConfig = block(KEY, "tls_config: {cert_file: /c.pem, key_file: k.pem}");
        assert_eq!(c.http_client.tls_config.cert_file, "/c.pem");
        assert_eq!(c.http_client.tls_config.key_file, "/etc/prometheus/k.pem");
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "server: http://n:4646", "nomad.plain");
    }
}
