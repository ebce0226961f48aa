//! `outscale_sd_configs`: virtual machines of an Outscale account, listed through its API
//! every `refresh_interval`. Validation follows 3.x's `discovery/outscale`
//! `SDConfig.UnmarshalYAML` (which also derives the endpoint from the region), and
//! `SetDirectory` resolves `secret_key_file` as well as the client's files. trawl
//! validates the block but does not run it yet.

use serde::Deserialize;

use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, text, whole};
use crate::common::http::HttpClientConfig;
use crate::common::http::{Secret, with_http_client};
use crate::common::paths::join_dir;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Outscale;

with_http_client! {
    /// `outscale_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawOutscaleSd {
        #[serde(default)]
        endpoint: LenientString,
        #[serde(default)]
        region: Nullable<LenientString>,
        #[serde(default)]
        access_key: LenientString,
        #[serde(default)]
        secret_key: Secret,
        #[serde(default)]
        secret_key_file: LenientString,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        port: Nullable<i64>,
    }
}

/// Outscale discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutscaleSdConfig {
    /// API endpoint (default `https://api.<region>.outscale.com/api/v1`).
    pub endpoint: String,
    /// The region (default `eu-west-2`).
    pub region: String,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: Secret,
    /// File holding the secret key, resolved against the configuration's directory.
    pub secret_key_file: String,
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Outscale {
    const KEY: &'static str = "outscale_sd_configs";
    const NAME: &'static str = "outscale";
    const GO_TYPE: &'static str = "outscale.plain";
    const RUNS: bool = false;
    type Raw = RawOutscaleSd;
    type Config = OutscaleSdConfig;

    fn validate(mut raw: RawOutscaleSd, cx: &SdContext<'_>) -> Result<OutscaleSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let region = text(raw.region, "eu-west-2");
        if region.is_empty() {
            return Err((
                at("region"),
                "outscale SD configuration requires a region".into(),
            ));
        }
        if raw.access_key.0.is_empty() {
            return Err((
                at("access_key"),
                "outscale SD configuration requires access_key".into(),
            ));
        }
        let key = !raw.secret_key.is_empty();
        let key_file = !raw.secret_key_file.0.is_empty();
        if !key && !key_file {
            return Err(whole(
                "one of secret_key & secret_key_file must be configured".into(),
            ));
        }
        if key && key_file {
            return Err(whole(
                "at most one of secret_key & secret_key_file must be configured".into(),
            ));
        }
        let mut endpoint = raw.endpoint.0;
        if endpoint.is_empty() {
            endpoint = format!("https://api.{region}.outscale.com/api/v1");
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(OutscaleSdConfig {
            endpoint,
            region,
            access_key: raw.access_key.0,
            secret_key: raw.secret_key,
            secret_key_file: join_dir(cx.paths.dir, &raw.secret_key_file.0),
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            port: raw.port.onto(80),
            http_client,
        })
    }

    fn machine(_: &OutscaleSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "outscale_sd_configs";

    #[test]
    fn defaults_are_applied() {
        let c: OutscaleSdConfig = block(KEY, "access_key: AK\nsecret_key: SK");
        assert_eq!(c.region, "eu-west-2");
        assert_eq!(c.endpoint, "https://api.eu-west-2.outscale.com/api/v1");
        assert_eq!(
            (c.port, c.refresh_interval),
            (80, PromDuration::from_secs(60))
        );
        assert_eq!(c.http_client, HttpClientConfig::default());
        let c: OutscaleSdConfig = block(
            KEY,
            "region: us-east-2\naccess_key: AK\nsecret_key_file: keys/sk\nendpoint: https://x",
        );
        assert_eq!(c.endpoint, "https://x");
        assert_eq!(c.secret_key_file, "/etc/prometheus/keys/sk");
    }

    #[test]
    fn checks_in_order() {
        assert_eq!(
            error_at(KEY, "region: ''"),
            (4, 17, "outscale SD configuration requires a region".into())
        );
        assert_eq!(
            error(KEY, "region: ~\naccess_key: AK"),
            "outscale SD configuration requires a region"
        );
        assert_eq!(
            error(KEY, "secret_key: s"),
            "outscale SD configuration requires access_key"
        );
        assert_eq!(
            error(KEY, "access_key: AK"),
            "one of secret_key & secret_key_file must be configured"
        );
        assert_eq!(
            error(KEY, "access_key: AK\nsecret_key: s\nsecret_key_file: f"),
            "at most one of secret_key & secret_key_file must be configured"
        );
        assert_eq!(
            error(
                KEY,
                "access_key: AK\nsecret_key: s\nbasic_auth: {}\noauth2: {}"
            ),
            "at most one of basic_auth, oauth2 & authorization must be configured"
        );
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "access_key: AK\nsecret_key: s", "outscale.plain");
    }
}
