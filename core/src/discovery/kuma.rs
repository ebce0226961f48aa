//! `kuma_sd_configs`: data-plane proxies of a Kuma control plane, fetched from its
//! monitoring assignment discovery service (xDS over REST) every `refresh_interval`.
//! Validation follows 3.x's `discovery/xds` `KumaSDConfig.UnmarshalYAML`. trawl
//! validates the block but does not run it yet.

use serde::Deserialize;

use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, whole};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Kuma;

with_http_client! {
    /// `kuma_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawKumaSd {
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        fetch_timeout: Nullable<PromDuration>,
        #[serde(default)]
        server: LenientString,
        #[serde(default)]
        client_id: LenientString,
    }
}

/// Kuma discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KumaSdConfig {
    /// Delay between fetches (default 15s).
    pub refresh_interval: PromDuration,
    /// Long-poll timeout of a fetch (default 2m).
    pub fetch_timeout: PromDuration,
    /// The control plane's URL.
    pub server: String,
    /// Client id sent to the control plane (default: the host name, at run time).
    pub client_id: String,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Kuma {
    const KEY: &'static str = "kuma_sd_configs";
    const NAME: &'static str = "kuma";
    const GO_TYPE: &'static str = "xds.plainKumaConf";
    const RUNS: bool = false;
    type Raw = RawKumaSd;
    type Config = KumaSdConfig;

    fn validate(mut raw: RawKumaSd, cx: &SdContext<'_>) -> Result<KumaSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let server = raw.server.0;
        if server.is_empty() {
            return Err((at("server"), "kuma SD server must not be empty: ".into()));
        }
        let url = crate::gourl::parse(&server).map_err(|e| (at("server"), e))?;
        if url.scheme.is_empty() || url.host.is_empty() {
            return Err((
                at("server"),
                format!("kuma SD server must not be empty and have a scheme: {server}"),
            ));
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(KumaSdConfig {
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(15)),
            fetch_timeout: raw.fetch_timeout.onto(PromDuration::from_secs(120)),
            server,
            client_id: raw.client_id.0,
            http_client,
        })
    }

    fn machine(_: &KumaSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "kuma_sd_configs";

    #[test]
    fn defaults_are_applied() {
        let c: KumaSdConfig = block(KEY, "server: http://kuma-cp:5676");
        assert_eq!(c.refresh_interval, PromDuration::from_secs(15));
        assert_eq!(c.fetch_timeout, PromDuration::from_secs(120));
        assert_eq!(c.client_id, "");
        assert_eq!(c.http_client, HttpClientConfig::default());
    }

    #[test]
    fn server_is_checked() {
        assert_eq!(
            error_at(KEY, "client_id: x"),
            (4, 9, "kuma SD server must not be empty: ".into())
        );
        assert_eq!(
            error(KEY, "server: 'http://[::1'"),
            r#"parse "http://[::1": missing ']' in host"#
        );
        assert_eq!(
            error_at(KEY, "server: kuma-cp:5676"),
            (
                4,
                17,
                "kuma SD server must not be empty and have a scheme: kuma-cp:5676".into()
            )
        );
    }

    #[test]
    fn client_is_validated_with_resolved_paths() {
        assert_eq!(
            error(KEY, "server: http://k\nproxy_connect_header: {X: [y]}"),
            "if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured"
        );
        // Connect headers need a proxy, which may come from the environment.
        let c: KumaSdConfig = block(
            KEY,
            "server: http://k\nproxy_from_environment: true\nproxy_connect_header: {X: [y]}",
        );
        assert!(c.http_client.proxy_from_environment);
        let c: KumaSdConfig = block(KEY, "server: http://k\ntls_config: {ca_file: ../ca.pem}");
        assert_eq!(c.http_client.tls_config.ca_file, "/etc/ca.pem");
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "server: http://k", "xds.plainKumaConf");
    }
}
