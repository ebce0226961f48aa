//! `vultr_sd_configs`: Vultr instances of an account, listed every `refresh_interval`.
//! Validation follows 3.x's `discovery/vultr` `SDConfig.UnmarshalYAML` (only the HTTP
//! client options are checked). trawl validates the block but does not run it yet.

use serde::Deserialize;

use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, whole};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::Nullable;
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Vultr;

with_http_client! {
    /// `vultr_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawVultrSd {
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        port: Nullable<i64>,
    }
}

/// Vultr discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VultrSdConfig {
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Vultr {
    const KEY: &'static str = "vultr_sd_configs";
    const NAME: &'static str = "vultr";
    const GO_TYPE: &'static str = "vultr.plain";
    const RUNS: bool = false;
    type Raw = RawVultrSd;
    type Config = VultrSdConfig;

    fn validate(mut raw: RawVultrSd, cx: &SdContext<'_>) -> Result<VultrSdConfig, Invalid> {
        let http_client = raw.take_http_client().validate(&cx.paths).map_err(whole)?;
        Ok(VultrSdConfig {
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            port: raw.port.onto(80),
            http_client,
        })
    }

    fn machine(_: &VultrSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "vultr_sd_configs";

    #[test]
    fn defaults_are_applied() {
        let c: VultrSdConfig = block(KEY, "{}");
        assert_eq!(
            (c.port, c.refresh_interval),
            (80, PromDuration::from_secs(60))
        );
        assert_eq!(c.http_client, HttpClientConfig::default());
        let c: VultrSdConfig = block(KEY, "port: -1\nrefresh_interval: 0s\nenable_http2: false");
        assert_eq!((c.port, c.refresh_interval), (-1, PromDuration::ZERO));
        assert!(!c.http_client.enable_http2);
    }

    #[test]
    fn only_the_client_is_checked() {
        assert_eq!(
            error(KEY, "oauth2: {token_url: 'http://t'}"),
            "oauth2 client_id must be configured"
        );
        let c: VultrSdConfig = block(
            KEY,
            "oauth2: {client_id: i, token_url: 'http://t', client_secret_file: s}",
        );
        let o = c.http_client.oauth2.expect("oauth2");
        assert_eq!(o.client_secret_file, "/etc/prometheus/s");
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "port: 1", "vultr.plain");
    }
}
