//! `hetzner_sd_configs`: servers of the Hetzner Cloud API (`hcloud`) or the Robot API
//! (`robot`), listed every `refresh_interval`. Validation follows 3.x's
//! `discovery/hetzner` (`Role.UnmarshalYAML`, `SDConfig.UnmarshalYAML`). trawl validates
//! the block but does not run it yet.

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
pub(crate) struct Hetzner;

go_enum! {
    /// `role` of `hetzner_sd_configs`.
    pub struct HetznerRole: ["robot", "hcloud"] else "unknown role {}";
}

with_http_client! {
    /// `hetzner_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawHetznerSd {
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        port: Nullable<i64>,
        #[serde(default)]
        role: Option<HetznerRole>,
        #[serde(default)]
        label_selector: LenientString,
    }
}

/// Hetzner discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HetznerSdConfig {
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// `robot` or `hcloud`.
    pub role: HetznerRole,
    /// Label selector of the hcloud API.
    pub label_selector: String,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Hetzner {
    const KEY: &'static str = "hetzner_sd_configs";
    const NAME: &'static str = "hetzner";
    const GO_TYPE: &'static str = "hetzner.plain";
    const RUNS: bool = false;
    type Raw = RawHetznerSd;
    type Config = HetznerSdConfig;

    fn validate(mut raw: RawHetznerSd, cx: &SdContext<'_>) -> Result<HetznerSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let Some(role) = raw.role.take() else {
            return Err((at("role"), "role missing (one of: robot, hcloud)".into()));
        };
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(HetznerSdConfig {
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            port: raw.port.onto(80),
            role,
            label_selector: raw.label_selector.0,
            http_client,
        })
    }

    fn machine(_: &HetznerSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "hetzner_sd_configs";

    #[test]
    fn defaults_are_applied() {
        let c: HetznerSdConfig = block(KEY, "role: hcloud\nlabel_selector: env=prod");
        assert_eq!(
            (c.role.as_str(), c.label_selector.as_str()),
            ("hcloud", "env=prod")
        );
        assert_eq!(
            (c.port, c.refresh_interval),
            (80, PromDuration::from_secs(60))
        );
        assert_eq!(c.http_client, HttpClientConfig::default());
    }

    #[test]
    fn role_is_required_and_checked() {
        assert_eq!(
            error_at(KEY, "port: 1"),
            (4, 9, "role missing (one of: robot, hcloud)".into())
        );
        assert_eq!(error(KEY, "role:"), "role missing (one of: robot, hcloud)");
        assert_eq!(
            error_at(KEY, "role: cloud"),
            (4, 15, r#"unknown role "cloud""#.into())
        );
    }

    #[test]
    fn client_is_validated_with_resolved_paths() {
        assert_eq!(
            error(
                KEY,
                "role: robot\nbasic_auth: {username: u, username_file: f}"
            ),
            "at most one of basic_auth username, username_file & username_ref must be configured"
        );
        let c: HetznerSdConfig = block(
            KEY,
            "role: robot\nbasic_auth: {username_file: u, password_file: p}",
        );
        let b = c.http_client.basic_auth.expect("basic auth");
        assert_eq!(b.username_file, "/etc/prometheus/u");
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "role: robot", "hetzner.plain");
    }
}
