//! `linode_sd_configs`: Linode instances of an account, listed every `refresh_interval`.
//! Validation follows 3.x's `discovery/linode` `SDConfig.UnmarshalYAML` (only the HTTP
//! client options are checked). trawl validates the block but does not run it yet.

use serde::Deserialize;

use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, text, whole};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Linode;

with_http_client! {
    /// `linode_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawLinodeSd {
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        port: Nullable<i64>,
        #[serde(default)]
        tag_separator: Nullable<LenientString>,
        #[serde(default)]
        region: LenientString,
    }
}

/// Linode discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinodeSdConfig {
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// Joins the tags in `__meta_linode_tags` (default `,`).
    pub tag_separator: String,
    /// Only instances of this region, if set.
    pub region: String,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Linode {
    const KEY: &'static str = "linode_sd_configs";
    const NAME: &'static str = "linode";
    const GO_TYPE: &'static str = "linode.plain";
    const RUNS: bool = false;
    type Raw = RawLinodeSd;
    type Config = LinodeSdConfig;

    fn validate(mut raw: RawLinodeSd, cx: &SdContext<'_>) -> Result<LinodeSdConfig, Invalid> {
        let http_client = raw.take_http_client().validate(&cx.paths).map_err(whole)?;
        Ok(LinodeSdConfig {
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            port: raw.port.onto(80),
            tag_separator: text(raw.tag_separator, ","),
            region: raw.region.0,
            http_client,
        })
    }

    fn machine(_: &LinodeSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "linode_sd_configs";

    #[test]
    fn defaults_are_applied() {
        let c: LinodeSdConfig = block(KEY, "{}");
        assert_eq!(
            (c.port, c.tag_separator.as_str(), c.region.as_str()),
            (80, ",", "")
        );
        assert_eq!(c.refresh_interval, PromDuration::from_secs(60));
        assert_eq!(c.http_client, HttpClientConfig::default());
        let c: LinodeSdConfig = block(KEY, "region: us-east\ntag_separator: ';'");
        assert_eq!(
            (c.region.as_str(), c.tag_separator.as_str()),
            ("us-east", ";")
        );
    }

    #[test]
    fn only_the_client_is_checked() {
        assert_eq!(
            error(KEY, "authorization: {type: basic}"),
            r#"authorization type cannot be set to "basic", use "basic_auth" instead"#
        );
        let c: LinodeSdConfig = block(KEY, "authorization: {credentials_file: tok}");
        let a = c.http_client.authorization.expect("authorization");
        assert_eq!(a.credentials_file, "/etc/prometheus/tok");
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "port: 1", "linode.plain");
    }
}
