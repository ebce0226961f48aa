//! `triton_sd_configs`: containers (or compute nodes) of a Joyent Triton data center,
//! read from its discovery endpoint every `refresh_interval`. Validation follows 3.x's
//! `discovery/triton` `SDConfig.UnmarshalYAML`: the block has its own `tls_config` and no
//! other HTTP client option, and `SetDirectory` resolves only the TLS files. trawl
//! validates the block but does not run it yet.

use serde::Deserialize;

use super::mechanism::{
    Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, text, texts, whole,
};
use crate::common::http::TlsConfig;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Triton;

/// `triton_sd_configs` entry as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTritonSd {
    #[serde(default)]
    account: LenientString,
    #[serde(default)]
    role: Nullable<LenientString>,
    #[serde(default)]
    dns_suffix: LenientString,
    #[serde(default)]
    endpoint: LenientString,
    #[serde(default)]
    groups: Option<Vec<LenientString>>,
    #[serde(default)]
    port: Nullable<i64>,
    #[serde(default)]
    refresh_interval: Nullable<PromDuration>,
    #[serde(default)]
    tls_config: Option<TlsConfig>,
    #[serde(default)]
    version: Nullable<i64>,
}

/// Triton discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TritonSdConfig {
    /// The account.
    pub account: String,
    /// `container` (default) or `cn`.
    pub role: String,
    /// DNS suffix of the targets.
    pub dns_suffix: String,
    /// The discovery endpoint's host.
    pub endpoint: String,
    /// Only containers of these groups.
    pub groups: Vec<String>,
    /// Port of the discovery endpoint and the targets (default 9163).
    pub port: i64,
    /// Refresh period (default 60s; must be positive).
    pub refresh_interval: PromDuration,
    /// TLS settings, files resolved against the configuration's directory.
    pub tls_config: TlsConfig,
    /// Discovery API version (default 1).
    pub version: i64,
}

impl Mechanism for Triton {
    const KEY: &'static str = "triton_sd_configs";
    const NAME: &'static str = "triton";
    const GO_TYPE: &'static str = "triton.plain";
    const RUNS: bool = false;
    type Raw = RawTritonSd;
    type Config = TritonSdConfig;

    fn validate(raw: RawTritonSd, cx: &SdContext<'_>) -> Result<TritonSdConfig, Invalid> {
        let mut tls_config = raw.tls_config.unwrap_or_default();
        tls_config.validate().map_err(whole)?;
        let role = text(raw.role, "container");
        if role != "container" && role != "cn" {
            return Err((
                at("role"),
                "triton SD configuration requires role to be 'container' or 'cn'".into(),
            ));
        }
        for (value, field, what) in [
            (&raw.account.0, "account", "an account"),
            (&raw.dns_suffix.0, "dns_suffix", "a dns_suffix"),
            (&raw.endpoint.0, "endpoint", "an endpoint"),
        ] {
            if value.is_empty() {
                return Err((
                    at(field),
                    format!("triton SD configuration requires {what}"),
                ));
            }
        }
        let refresh_interval = raw.refresh_interval.onto(PromDuration::from_secs(60));
        if refresh_interval.is_zero() {
            return Err((
                at("refresh_interval"),
                "triton SD configuration requires RefreshInterval to be a positive integer".into(),
            ));
        }
        tls_config.resolve(cx.paths.dir);
        Ok(TritonSdConfig {
            account: raw.account.0,
            role,
            dns_suffix: raw.dns_suffix.0,
            endpoint: raw.endpoint.0,
            groups: texts(raw.groups),
            port: raw.port.onto(9163),
            refresh_interval,
            tls_config,
            version: raw.version.onto(1),
        })
    }

    fn machine(_: &TritonSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "triton_sd_configs";
    const VALID: &str = "account: a\ndns_suffix: triton.example\nendpoint: cmon.example";

    #[test]
    fn defaults_are_applied_and_tls_files_resolved() {
        let c: TritonSdConfig = block(KEY, &format!("{VALID}\ntls_config: {{ca_file: ca.pem}}"));
        assert_eq!((c.role.as_str(), c.port, c.version), ("container", 9163, 1));
        assert_eq!(c.refresh_interval, PromDuration::from_secs(60));
        assert_eq!(c.tls_config.ca_file, "/etc/prometheus/ca.pem");
        let c: TritonSdConfig = block(KEY, &format!("{VALID}\nrole: cn\ngroups: [g]"));
        assert_eq!((c.role.as_str(), c.groups.len()), ("cn", 1));
    }

    #[test]
    fn checks_in_order() {
        let role = "triton SD configuration requires role to be 'container' or 'cn'";
        assert_eq!(error_at(KEY, "role: vm"), (4, 15, role.into()));
        assert_eq!(error(KEY, "role: ~"), role);
        assert_eq!(
            error(KEY, "dns_suffix: d"),
            "triton SD configuration requires an account"
        );
        assert_eq!(
            error(KEY, "account: a"),
            "triton SD configuration requires a dns_suffix"
        );
        assert_eq!(
            error(KEY, "account: a\ndns_suffix: d"),
            "triton SD configuration requires an endpoint"
        );
        assert_eq!(
            error(KEY, &format!("{VALID}\nrefresh_interval: 0s")),
            "triton SD configuration requires RefreshInterval to be a positive integer"
        );
        assert_eq!(
            error(KEY, "tls_config: {ca: a, ca_file: b}"),
            "at most one of ca, ca_file & ca_ref must be configured"
        );
    }

    #[test]
    fn null_entry_and_unknown_fields() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, VALID, "triton.plain");
        assert_eq!(
            error(KEY, &format!("{VALID}\nbasic_auth: {{}}")),
            "field basic_auth not found in type triton.plain"
        );
    }
}
