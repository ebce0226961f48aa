//! `eureka_sd_configs`: applications registered in a Netflix Eureka server, read from
//! `<server>/apps` every `refresh_interval`. Validation follows 3.x's `discovery/eureka`
//! `SDConfig.UnmarshalYAML`. trawl validates the block but does not run it yet.

use serde::Deserialize;

use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, whole};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Eureka;

with_http_client! {
    /// `eureka_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawEurekaSd {
        #[serde(default)]
        server: LenientString,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
    }
}

/// Eureka discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EurekaSdConfig {
    /// The Eureka server URL.
    pub server: String,
    /// Refresh period (default 30s).
    pub refresh_interval: PromDuration,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Eureka {
    const KEY: &'static str = "eureka_sd_configs";
    const NAME: &'static str = "eureka";
    const GO_TYPE: &'static str = "eureka.plain";
    const RUNS: bool = false;
    type Raw = RawEurekaSd;
    type Config = EurekaSdConfig;

    fn validate(mut raw: RawEurekaSd, cx: &SdContext<'_>) -> Result<EurekaSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let server = raw.server.0;
        if server.is_empty() {
            return Err((
                at("server"),
                "eureka_sd: empty or null eureka server".into(),
            ));
        }
        let url = crate::gourl::parse(&server).map_err(|e| (at("server"), e))?;
        if url.scheme.is_empty() || url.host.is_empty() {
            return Err((at("server"), "eureka_sd: invalid eureka server URL".into()));
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(EurekaSdConfig {
            server,
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(30)),
            http_client,
        })
    }

    fn machine(_: &EurekaSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "eureka_sd_configs";

    #[test]
    fn defaults_are_applied() {
        let c: EurekaSdConfig = block(KEY, "server: http://eureka:8761/eureka");
        assert_eq!(c.server, "http://eureka:8761/eureka");
        assert_eq!(c.refresh_interval, PromDuration::from_secs(30));
        assert_eq!(c.http_client, HttpClientConfig::default());
    }

    #[test]
    fn server_is_checked() {
        assert_eq!(
            error_at(KEY, "refresh_interval: 1m"),
            (4, 9, "eureka_sd: empty or null eureka server".into())
        );
        assert_eq!(
            error(KEY, "server: ~"),
            "eureka_sd: empty or null eureka server"
        );
        assert_eq!(
            error_at(KEY, "server: 'http://e:port/'"),
            (
                4,
                17,
                r#"parse "http://e:port/": invalid port ":port" after host"#.into()
            )
        );
        for bad in ["eureka:8761", "/eureka", "http:///eureka"] {
            assert_eq!(
                error(KEY, &format!("server: '{bad}'")),
                "eureka_sd: invalid eureka server URL",
                "{bad}"
            );
        }
    }

    #[test]
    fn client_is_validated_with_resolved_paths() {
        assert_eq!(
            error(
                KEY,
                "server: http://e\nbasic_auth: {password: p, password_file: f}"
            ),
            "at most one of basic_auth password, password_file & password_ref must be configured"
        );
        let c: EurekaSdConfig = block(
            KEY,
            "server: http://e\nbasic_auth: {username: u, password_file: pw}",
        );
        let b = c.http_client.basic_auth.expect("basic auth");
        assert_eq!(b.password_file, "/etc/prometheus/pw");
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "server: http://e", "eureka.plain");
    }
}
