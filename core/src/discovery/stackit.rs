//! `stackit_sd_configs`: servers of a STACKIT project, listed through its IaaS API every
//! `refresh_interval`. Validation follows 3.x's `discovery/stackit`
//! `SDConfig.UnmarshalYAML`; `SetDirectory` resolves only the HTTP client's files, so the
//! key and credential paths are kept as written. trawl validates the block but does not
//! run it yet.

use serde::Deserialize;

use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, text, whole};
use crate::common::http::HttpClientConfig;
use crate::common::http::{Secret, with_http_client};
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;
use crate::goquote::quote;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Stackit;

with_http_client! {
    /// `stackit_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawStackitSd {
        #[serde(default)]
        project: LenientString,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        port: Nullable<i64>,
        #[serde(default)]
        region: Nullable<LenientString>,
        #[serde(default)]
        endpoint: LenientString,
        #[serde(default)]
        service_account_key: Secret,
        #[serde(default)]
        private_key: Secret,
        #[serde(default)]
        service_account_key_path: LenientString,
        #[serde(default)]
        private_key_path: LenientString,
        #[serde(default)]
        credentials_file_path: LenientString,
    }
}

/// STACKIT discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackitSdConfig {
    /// The project (not checked).
    pub project: String,
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// The region (default `eu01`).
    pub region: String,
    /// A custom API endpoint.
    pub endpoint: String,
    /// Service account key (JSON).
    pub service_account_key: Secret,
    /// Private key (PEM).
    pub private_key: Secret,
    /// File of the service account key, as written.
    pub service_account_key_path: String,
    /// File of the private key, as written.
    pub private_key_path: String,
    /// Credentials file, as written.
    pub credentials_file_path: String,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Stackit {
    const KEY: &'static str = "stackit_sd_configs";
    const NAME: &'static str = "stackit";
    const GO_TYPE: &'static str = "stackit.plain";
    const RUNS: bool = false;
    type Raw = RawStackitSd;
    type Config = StackitSdConfig;

    fn validate(mut raw: RawStackitSd, cx: &SdContext<'_>) -> Result<StackitSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let region = text(raw.region, "eu01");
        let endpoint = raw.endpoint.0;
        if endpoint.is_empty() && region.is_empty() {
            return Err(whole("stackit_sd: endpoint and region missing".into()));
        }
        if let Err(e) = crate::gourl::parse(&endpoint) {
            let shown = crate::gourl::redact_url(&endpoint, crate::gourl::REDACTED);
            return Err((
                at("endpoint"),
                format!("stackit_sd: invalid endpoint {}: {e}", quote(&shown)),
            ));
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(StackitSdConfig {
            project: raw.project.0,
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            port: raw.port.onto(80),
            region,
            endpoint,
            service_account_key: raw.service_account_key,
            private_key: raw.private_key,
            service_account_key_path: raw.service_account_key_path.0,
            private_key_path: raw.private_key_path.0,
            credentials_file_path: raw.credentials_file_path.0,
            http_client,
        })
    }

    fn machine(_: &StackitSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "stackit_sd_configs";

    #[test]
    fn defaults_are_applied_and_key_paths_kept() {
        let c: StackitSdConfig = block(KEY, "project: p\nprivate_key_path: keys/pk.pem");
        assert_eq!((c.region.as_str(), c.endpoint.as_str()), ("eu01", ""));
        assert_eq!(
            (c.port, c.refresh_interval),
            (80, PromDuration::from_secs(60))
        );
        assert_eq!(c.private_key_path, "keys/pk.pem");
        assert_eq!(c.http_client, HttpClientConfig::default());
        // The project is not checked.
        let c: StackitSdConfig = block(KEY, "region: eu02");
        assert_eq!(c.project, "");
    }

    #[test]
    fn endpoint_or_region_and_a_valid_endpoint() {
        assert_eq!(
            error_at(KEY, "region: ''"),
            (4, 9, "stackit_sd: endpoint and region missing".into())
        );
        let c: StackitSdConfig = block(KEY, "region: ~\nendpoint: https://iaas.example");
        assert_eq!(c.region, "");
        assert_eq!(
            error_at(KEY, "endpoint: 'https://x:y'"),
            (
                4,
                19,
                r#"stackit_sd: invalid endpoint "https://x:y": parse "https://x:y": invalid port ":y" after host"#
                    .into()
            )
        );
    }

    #[test]
    fn client_is_validated_with_resolved_paths() {
        assert_eq!(
            error(
                KEY,
                "oauth2: {client_id: c, token_url: t, client_secret: s, client_secret_file: f}"
            ),
            "at most one of oauth2 client_secret, client_secret_file & client_secret_ref must be configured using grant-type=client_credentials"
        );
        let c: StackitSdConfig = block(KEY, "tls_config: {ca_file: ca.pem}");
        assert_eq!(c.http_client.tls_config.ca_file, "/etc/prometheus/ca.pem");
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "project: p", "stackit.plain");
    }
}
