//! `uyuni_sd_configs`: systems with the monitoring entitlement in an Uyuni (SUSE Manager)
//! server, read through its XML-RPC API every `refresh_interval`. Validation follows
//! 3.x's `discovery/uyuni` `SDConfig.UnmarshalYAML`. trawl validates the block but does
//! not run it yet.

use serde::Deserialize;

use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, text, whole};
use crate::common::http::HttpClientConfig;
use crate::common::http::{Secret, with_http_client};
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Uyuni;

with_http_client! {
    /// `uyuni_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawUyuniSd {
        #[serde(default)]
        server: LenientString,
        #[serde(default)]
        username: LenientString,
        #[serde(default)]
        password: Secret,
        #[serde(default)]
        entitlement: Nullable<LenientString>,
        #[serde(default)]
        separator: Nullable<LenientString>,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
    }
}

/// Uyuni discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UyuniSdConfig {
    /// The server's URL.
    pub server: String,
    /// API user.
    pub username: String,
    /// API password.
    pub password: Secret,
    /// Entitlement a system must have (default `monitoring_entitled`).
    pub entitlement: String,
    /// Joins the system groups in labels (default `,`).
    pub separator: String,
    /// Refresh period (default 1m).
    pub refresh_interval: PromDuration,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Uyuni {
    const KEY: &'static str = "uyuni_sd_configs";
    const NAME: &'static str = "uyuni";
    const GO_TYPE: &'static str = "uyuni.plain";
    const RUNS: bool = false;
    type Raw = RawUyuniSd;
    type Config = UyuniSdConfig;

    fn validate(mut raw: RawUyuniSd, cx: &SdContext<'_>) -> Result<UyuniSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        if raw.server.0.is_empty() {
            return Err((
                at("server"),
                "Uyuni SD configuration requires server host".into(),
            ));
        }
        crate::gourl::parse(&raw.server.0)
            .map_err(|e| (at("server"), format!("Uyuni Server URL is not valid: {e}")))?;
        if raw.username.0.is_empty() {
            return Err((
                at("username"),
                "Uyuni SD configuration requires a username".into(),
            ));
        }
        if raw.password.is_empty() {
            return Err((
                at("password"),
                "Uyuni SD configuration requires a password".into(),
            ));
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(UyuniSdConfig {
            server: raw.server.0,
            username: raw.username.0,
            password: raw.password,
            entitlement: text(raw.entitlement, "monitoring_entitled"),
            separator: text(raw.separator, ","),
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            http_client,
        })
    }

    fn machine(_: &UyuniSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "uyuni_sd_configs";
    const VALID: &str = "server: https://uyuni.example\nusername: u\npassword: p";

    #[test]
    fn defaults_are_applied() {
        let c: UyuniSdConfig = block(KEY, VALID);
        assert_eq!(c.entitlement, "monitoring_entitled");
        assert_eq!(c.separator, ",");
        assert_eq!(c.refresh_interval, PromDuration::from_secs(60));
        assert_eq!(c.http_client, HttpClientConfig::default());
    }

    #[test]
    fn checks_in_order() {
        assert_eq!(
            error_at(KEY, "username: u"),
            (4, 9, "Uyuni SD configuration requires server host".into())
        );
        assert_eq!(
            error_at(KEY, "server: ':8080'"),
            (
                4,
                17,
                r#"Uyuni Server URL is not valid: parse ":8080": missing protocol scheme"#.into()
            )
        );
        // Any URL Go parses will do, even one without a scheme.
        let _: UyuniSdConfig = block(KEY, "server: uyuni.example\nusername: u\npassword: p");
        assert_eq!(
            error(KEY, "server: https://u"),
            "Uyuni SD configuration requires a username"
        );
        assert_eq!(
            error(KEY, "server: https://u\nusername: u\npassword: ~"),
            "Uyuni SD configuration requires a password"
        );
    }

    #[test]
    fn client_is_validated_with_resolved_paths() {
        assert_eq!(
            error(KEY, &format!("{VALID}\nauthorization: {{type: ' BASIC '}}")),
            r#"authorization type cannot be set to "basic", use "basic_auth" instead"#
        );
        let c: UyuniSdConfig = block(KEY, &format!("{VALID}\ntls_config: {{ca_file: ./ca.pem}}"));
        assert_eq!(c.http_client.tls_config.ca_file, "/etc/prometheus/ca.pem");
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, VALID, "uyuni.plain");
    }
}
