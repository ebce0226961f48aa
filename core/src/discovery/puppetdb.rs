//! `puppetdb_sd_configs`: nodes or resources returned by a PQL query against PuppetDB,
//! run every `refresh_interval`. Validation follows 3.x's `discovery/puppetdb`
//! `SDConfig.UnmarshalYAML`. trawl validates the block but does not run it yet.

use serde::Deserialize;

use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, flag, whole};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::{Bool11, LenientString, Nullable};
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct PuppetDb;

with_http_client! {
    /// `puppetdb_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawPuppetDbSd {
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        url: LenientString,
        #[serde(default)]
        query: LenientString,
        #[serde(default)]
        include_parameters: Nullable<Bool11>,
        #[serde(default)]
        port: Nullable<i64>,
    }
}

/// PuppetDB discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PuppetDbSdConfig {
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// PuppetDB's URL.
    pub url: String,
    /// The PQL query.
    pub query: String,
    /// Expose the resources' parameters as labels.
    pub include_parameters: bool,
    /// Port of the targets (default 80).
    pub port: i64,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for PuppetDb {
    const KEY: &'static str = "puppetdb_sd_configs";
    const NAME: &'static str = "puppetdb";
    const GO_TYPE: &'static str = "puppetdb.plain";
    const RUNS: bool = false;
    type Raw = RawPuppetDbSd;
    type Config = PuppetDbSdConfig;

    fn validate(mut raw: RawPuppetDbSd, cx: &SdContext<'_>) -> Result<PuppetDbSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        super::http::check_url(&raw.url.0).map_err(|e| (at("url"), e))?;
        if raw.query.0.is_empty() {
            return Err((at("query"), "query missing".into()));
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(PuppetDbSdConfig {
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            url: raw.url.0,
            query: raw.query.0,
            include_parameters: flag(raw.include_parameters, false),
            port: raw.port.onto(80),
            http_client,
        })
    }

    fn machine(_: &PuppetDbSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "puppetdb_sd_configs";
    const VALID: &str = "url: https://puppetdb:8081\nquery: 'resources { type = \"Class\" }'";

    #[test]
    fn defaults_are_applied() {
        let c: PuppetDbSdConfig = block(KEY, VALID);
        assert_eq!(c.url, "https://puppetdb:8081");
        assert_eq!((c.port, c.include_parameters), (80, false));
        assert_eq!(c.refresh_interval, PromDuration::from_secs(60));
        assert_eq!(c.http_client, HttpClientConfig::default());
    }

    #[test]
    fn url_and_query_are_checked() {
        assert_eq!(error_at(KEY, "query: q"), (4, 9, "URL is missing".into()));
        assert_eq!(
            error_at(KEY, "url: 'http://p:8o81'\nquery: q"),
            (
                4,
                14,
                r#"parse "http://p:8o81": invalid port ":8o81" after host"#.into()
            )
        );
        assert_eq!(
            error(KEY, "url: puppetdb:8081\nquery: q"),
            "URL scheme must be 'http' or 'https'"
        );
        assert_eq!(
            error(KEY, "url: 'HTTPS:///pdb'\nquery: q"),
            "host is missing in URL"
        );
        assert_eq!(
            error_at(KEY, "url: http://p\nquery: ''"),
            (5, 16, "query missing".into())
        );
    }

    #[test]
    fn client_is_validated_with_resolved_paths() {
        assert_eq!(
            error(
                KEY,
                &format!("{VALID}\ntls_config: {{key: k, key_file: f}}")
            ),
            "at most one of key and key_file must be configured"
        );
        let c: PuppetDbSdConfig = block(
            KEY,
            &format!("{VALID}\ntls_config: {{cert_file: c.pem, key_file: k.pem}}"),
        );
        assert_eq!(c.http_client.tls_config.cert_file, "/etc/prometheus/c.pem");
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, VALID, "puppetdb.plain");
    }
}
