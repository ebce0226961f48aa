//! `marathon_sd_configs`: tasks of the applications of a Marathon (Mesos) cluster, read
//! from `<server>/v2/apps` every `refresh_interval`. Validation follows 3.x's
//! `discovery/marathon` `SDConfig.UnmarshalYAML`, and `SetDirectory` resolves
//! `auth_token_file` as well as the client's files. trawl validates the block but does
//! not run it yet.

use serde::Deserialize;

use super::mechanism::{
    Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, texts, whole,
};
use crate::common::http::HttpClientConfig;
use crate::common::http::{Secret, with_http_client};
use crate::common::paths::join_dir;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Marathon;

with_http_client! {
    /// `marathon_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawMarathonSd {
        #[serde(default)]
        servers: Option<Vec<LenientString>>,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        auth_token: Secret,
        #[serde(default)]
        auth_token_file: LenientString,
    }
}

/// Marathon discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarathonSdConfig {
    /// Marathon servers, tried in turn.
    pub servers: Vec<String>,
    /// Refresh period (default 30s).
    pub refresh_interval: PromDuration,
    /// DC/OS authentication token.
    pub auth_token: Secret,
    /// File holding the token, resolved against the configuration's directory.
    pub auth_token_file: String,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Marathon {
    const KEY: &'static str = "marathon_sd_configs";
    const NAME: &'static str = "marathon";
    const GO_TYPE: &'static str = "marathon.plain";
    const RUNS: bool = false;
    type Raw = RawMarathonSd;
    type Config = MarathonSdConfig;

    fn validate(mut raw: RawMarathonSd, cx: &SdContext<'_>) -> Result<MarathonSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let servers = texts(raw.servers);
        if servers.is_empty() {
            return Err((
                at("servers"),
                "marathon_sd: must contain at least one Marathon server".into(),
            ));
        }
        let token = !raw.auth_token.is_empty();
        let token_file = !raw.auth_token_file.0.is_empty();
        if token && token_file {
            return Err(whole(
                "marathon_sd: at most one of auth_token & auth_token_file must be configured"
                    .into(),
            ));
        }
        if token || token_file {
            let message = if client.basic_auth.is_some() {
                Some(
                    "marathon_sd: at most one of basic_auth, auth_token & auth_token_file must be configured",
                )
            } else if !client.bearer_token.is_empty() || !client.bearer_token_file.is_empty() {
                Some(
                    "marathon_sd: at most one of bearer_token, bearer_token_file, auth_token & auth_token_file must be configured",
                )
            } else if client.authorization.is_some() {
                Some(
                    "marathon_sd: at most one of auth_token, auth_token_file & authorization must be configured",
                )
            } else {
                None
            };
            if let Some(m) = message {
                return Err(whole(m.into()));
            }
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(MarathonSdConfig {
            servers,
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(30)),
            auth_token: raw.auth_token,
            auth_token_file: join_dir(cx.paths.dir, &raw.auth_token_file.0),
            http_client,
        })
    }

    fn machine(_: &MarathonSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "marathon_sd_configs";

    #[test]
    fn defaults_are_applied_and_token_file_resolved() {
        let c: MarathonSdConfig = block(KEY, "servers: ['http://m:8080']");
        assert_eq!(c.servers, ["http://m:8080"]);
        assert_eq!(c.refresh_interval, PromDuration::from_secs(30));
        assert_eq!(c.auth_token_file, "");
        assert_eq!(c.http_client, HttpClientConfig::default());
        let c: MarathonSdConfig = block(KEY, "servers: [m]\nauth_token_file: secrets/token");
        assert_eq!(c.auth_token_file, "/etc/prometheus/secrets/token");
    }

    #[test]
    fn servers_are_required() {
        let want = "marathon_sd: must contain at least one Marathon server";
        assert_eq!(error_at(KEY, "servers: []"), (4, 18, want.into()));
        assert_eq!(error(KEY, "auth_token: t"), want);
    }

    #[test]
    fn token_conflicts() {
        assert_eq!(
            error(KEY, "servers: [m]\nauth_token: t\nauth_token_file: f"),
            "marathon_sd: at most one of auth_token & auth_token_file must be configured"
        );
        assert_eq!(
            error(
                KEY,
                "servers: [m]\nauth_token: t\nbasic_auth: {username: u}\nbearer_token: b"
            ),
            "marathon_sd: at most one of basic_auth, auth_token & auth_token_file must be configured"
        );
        assert_eq!(
            error(
                KEY,
                "servers: [m]\nauth_token_file: t\nbearer_token_file: b"
            ),
            "marathon_sd: at most one of bearer_token, bearer_token_file, auth_token & auth_token_file must be configured"
        );
        assert_eq!(
            error(
                KEY,
                "servers: [m]\nauth_token: t\nauthorization: {credentials: c}"
            ),
            "marathon_sd: at most one of auth_token, auth_token_file & authorization must be configured"
        );
        // Without a token the client's own checks decide.
        assert_eq!(
            error(
                KEY,
                "servers: [m]\nbearer_token: b\nauthorization: {credentials: c}"
            ),
            "authorization is not compatible with bearer_token & bearer_token_file"
        );
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "servers: [m]", "marathon.plain");
    }
}
