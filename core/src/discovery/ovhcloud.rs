//! `ovhcloud_sd_configs`: dedicated servers or VPS of an OVHcloud account, listed through
//! its API every `refresh_interval`. Validation follows 3.x's `discovery/ovhcloud`
//! `SDConfig.UnmarshalYAML` (no HTTP client options). trawl validates the block but does
//! not run it yet.

use serde::Deserialize;

use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, text};
use crate::common::http::Secret;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct OvhCloud;

/// `ovhcloud_sd_configs` entry as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOvhCloudSd {
    #[serde(default)]
    endpoint: Nullable<LenientString>,
    #[serde(default)]
    application_key: LenientString,
    #[serde(default)]
    application_secret: Secret,
    #[serde(default)]
    consumer_key: Secret,
    #[serde(default)]
    refresh_interval: Nullable<PromDuration>,
    #[serde(default)]
    service: LenientString,
}

/// OVHcloud discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OvhCloudSdConfig {
    /// API endpoint name or URL (default `ovh-eu`).
    pub endpoint: String,
    /// Application key.
    pub application_key: String,
    /// Application secret.
    pub application_secret: Secret,
    /// Consumer key.
    pub consumer_key: Secret,
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// `dedicated_server` or `vps`.
    pub service: String,
}

impl Mechanism for OvhCloud {
    const KEY: &'static str = "ovhcloud_sd_configs";
    const NAME: &'static str = "ovhcloud";
    const GO_TYPE: &'static str = "ovhcloud.plain";
    const RUNS: bool = false;
    type Raw = RawOvhCloudSd;
    type Config = OvhCloudSdConfig;

    fn validate(raw: RawOvhCloudSd, _: &SdContext<'_>) -> Result<OvhCloudSdConfig, Invalid> {
        let endpoint = text(raw.endpoint, "ovh-eu");
        if endpoint.is_empty() {
            return Err((at("endpoint"), "endpoint can not be empty".into()));
        }
        if raw.application_key.0.is_empty() {
            return Err((
                at("application_key"),
                "application key can not be empty".into(),
            ));
        }
        if raw.application_secret.is_empty() {
            return Err((
                at("application_secret"),
                "application secret can not be empty".into(),
            ));
        }
        if raw.consumer_key.is_empty() {
            return Err((at("consumer_key"), "consumer key can not be empty".into()));
        }
        if !matches!(raw.service.0.as_str(), "dedicated_server" | "vps") {
            return Err((at("service"), format!("unknown service: {}", raw.service.0)));
        }
        Ok(OvhCloudSdConfig {
            endpoint,
            application_key: raw.application_key.0,
            application_secret: raw.application_secret,
            consumer_key: raw.consumer_key,
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            service: raw.service.0,
        })
    }

    fn machine(_: &OvhCloudSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "ovhcloud_sd_configs";
    const VALID: &str = "application_key: k\napplication_secret: s\nconsumer_key: c\nservice: vps";

    #[test]
    fn defaults_are_applied() {
        let c: OvhCloudSdConfig = block(KEY, VALID);
        assert_eq!(c.endpoint, "ovh-eu");
        assert_eq!(c.service, "vps");
        assert_eq!(c.refresh_interval, PromDuration::from_secs(60));
        assert_eq!(c.consumer_key.expose(), "c");
    }

    #[test]
    fn checks_in_order() {
        assert_eq!(
            error_at(KEY, &format!("{VALID}\nendpoint: ~")),
            (8, 19, "endpoint can not be empty".into())
        );
        assert_eq!(
            error(KEY, "service: vps"),
            "application key can not be empty"
        );
        assert_eq!(
            error(KEY, "application_key: k"),
            "application secret can not be empty"
        );
        assert_eq!(
            error(KEY, "application_key: k\napplication_secret: s"),
            "consumer key can not be empty"
        );
        assert_eq!(
            error(
                KEY,
                "application_key: k\napplication_secret: s\nconsumer_key: c"
            ),
            "unknown service: "
        );
        assert_eq!(
            error(
                KEY,
                "application_key: k\napplication_secret: s\nconsumer_key: c\nservice: VPS"
            ),
            "unknown service: VPS"
        );
    }

    #[test]
    fn null_entry_and_unknown_fields() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, VALID, "ovhcloud.plain");
        assert_eq!(
            error(KEY, &format!("{VALID}\ntls_config: {{}}")),
            "field tls_config not found in type ovhcloud.plain"
        );
    }
}
