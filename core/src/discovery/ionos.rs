//! `ionos_sd_configs`: servers of one IONOS Cloud datacenter, listed every
//! `refresh_interval`. Validation follows 3.x's `discovery/ionos`
//! `SDConfig.UnmarshalYAML`. trawl validates the block but does not run it yet.

use serde::Deserialize;

use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, whole};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Ionos;

with_http_client! {
    /// `ionos_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawIonosSd {
        #[serde(default)]
        datacenter_id: LenientString,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        port: Nullable<i64>,
    }
}

/// IONOS Cloud discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IonosSdConfig {
    /// The datacenter whose servers are listed.
    pub datacenter_id: String,
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Ionos {
    const KEY: &'static str = "ionos_sd_configs";
    const NAME: &'static str = "ionos";
    const GO_TYPE: &'static str = "ionos.plain";
    const RUNS: bool = false;
    type Raw = RawIonosSd;
    type Config = IonosSdConfig;

    fn validate(mut raw: RawIonosSd, cx: &SdContext<'_>) -> Result<IonosSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        if raw.datacenter_id.0.is_empty() {
            return Err((at("datacenter_id"), "datacenter id can't be empty".into()));
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(IonosSdConfig {
            datacenter_id: raw.datacenter_id.0,
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            port: raw.port.onto(80),
            http_client,
        })
    }

    fn machine(_: &IonosSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "ionos_sd_configs";

    #[test]
    fn defaults_are_applied() {
        let c: IonosSdConfig = block(KEY, "datacenter_id: dc-1");
        assert_eq!(c.datacenter_id, "dc-1");
        assert_eq!(
            (c.port, c.refresh_interval),
            (80, PromDuration::from_secs(60))
        );
        assert_eq!(c.http_client, HttpClientConfig::default());
    }

    #[test]
    fn datacenter_is_required() {
        assert_eq!(
            error_at(KEY, "port: 8080"),
            (4, 9, "datacenter id can't be empty".into())
        );
        assert_eq!(
            error(KEY, "datacenter_id: ~"),
            "datacenter id can't be empty"
        );
    }

    #[test]
    fn client_is_validated_with_resolved_paths() {
        assert_eq!(
            error(
                KEY,
                "datacenter_id: d\nproxy_url: http://p\nproxy_from_environment: true"
            ),
            "if proxy_from_environment is configured, proxy_url must not be configured"
        );
        let c: IonosSdConfig = block(
            KEY,
            "datacenter_id: d\nauthorization: {credentials_file: t}",
        );
        let a = c.http_client.authorization.expect("authorization");
        assert_eq!(
            (a.kind.as_str(), a.credentials_file.as_str()),
            ("Bearer", "/etc/prometheus/t")
        );
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "datacenter_id: d", "ionos.plain");
    }
}
