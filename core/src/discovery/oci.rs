//! `oci_sd_configs`: compute instances of Oracle Cloud Infrastructure compartments,
//! listed every `refresh_interval`. Validation follows 3.x's `discovery/oci`
//! (`SDConfig.UnmarshalYAML` and its `validate`), and `SetDirectory` resolves `key_file`
//! and `key_passphrase_file` as well as the client's files. trawl validates the block but
//! does not run it yet.

use serde::Deserialize;

use super::mechanism::{
    Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, text, texts, whole,
};
use crate::common::http::HttpClientConfig;
use crate::common::http::{Secret, with_http_client};
use crate::common::paths::join_dir;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;
use crate::goquote::quote;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Oci;

with_http_client! {
    /// `oci_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawOciSd {
        #[serde(default)]
        auth: Nullable<LenientString>,
        #[serde(default)]
        tenancy: LenientString,
        #[serde(default)]
        user: LenientString,
        #[serde(default)]
        fingerprint: LenientString,
        #[serde(default)]
        key_file: LenientString,
        #[serde(default)]
        key_passphrase: Secret,
        #[serde(default)]
        key_passphrase_file: LenientString,
        #[serde(default)]
        region: LenientString,
        #[serde(default)]
        compartments: Option<Vec<LenientString>>,
        #[serde(default)]
        port: Nullable<i64>,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
    }
}

/// Oracle Cloud Infrastructure discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciSdConfig {
    /// `api_key` (default) or `instance_principal`.
    pub auth: String,
    /// Tenancy OCID (API key authentication).
    pub tenancy: String,
    /// User OCID (API key authentication).
    pub user: String,
    /// Fingerprint of the API key.
    pub fingerprint: String,
    /// The API key's private key file, resolved against the configuration's directory.
    pub key_file: String,
    /// Passphrase of the key.
    pub key_passphrase: Secret,
    /// File holding the passphrase, resolved against the configuration's directory.
    pub key_passphrase_file: String,
    /// The region.
    pub region: String,
    /// Compartments to list (the tenancy's when empty).
    pub compartments: Vec<String>,
    /// Port of the targets (default 80).
    pub port: i64,
    /// Refresh period (default 60s; must be positive).
    pub refresh_interval: PromDuration,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for Oci {
    const KEY: &'static str = "oci_sd_configs";
    const NAME: &'static str = "oci";
    const GO_TYPE: &'static str = "oci.plain";
    const RUNS: bool = false;
    type Raw = RawOciSd;
    type Config = OciSdConfig;

    fn validate(mut raw: RawOciSd, cx: &SdContext<'_>) -> Result<OciSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        if raw.region.0.is_empty() {
            return Err((at("region"), "oci_sd: region is required".into()));
        }
        let auth = text(raw.auth, "api_key");
        let set = |s: &str| !s.is_empty();
        match auth.as_str() {
            "api_key" => {
                for (value, name) in [
                    (&raw.tenancy.0, "tenancy"),
                    (&raw.user.0, "user"),
                    (&raw.fingerprint.0, "fingerprint"),
                    (&raw.key_file.0, "key_file"),
                ] {
                    if !set(value) {
                        return Err((at(name), format!("oci_sd: api_key auth requires {name}")));
                    }
                }
                if !raw.key_passphrase.is_empty() && set(&raw.key_passphrase_file.0) {
                    return Err(whole(
                        "oci_sd: at most one of key_passphrase and key_passphrase_file must be configured"
                            .into(),
                    ));
                }
            }
            "instance_principal" => {
                if set(&raw.tenancy.0)
                    || set(&raw.user.0)
                    || set(&raw.fingerprint.0)
                    || set(&raw.key_file.0)
                    || !raw.key_passphrase.is_empty()
                    || set(&raw.key_passphrase_file.0)
                {
                    return Err(whole(
                        "oci_sd: instance_principal auth must not have tenancy, user, fingerprint, key_file, key_passphrase, or key_passphrase_file set"
                            .into(),
                    ));
                }
            }
            other => {
                return Err((
                    at("auth"),
                    format!(
                        "oci_sd: unknown auth method {}, expected {} or {}",
                        quote(other),
                        quote("api_key"),
                        quote("instance_principal")
                    ),
                ));
            }
        }
        let compartments = texts(raw.compartments);
        if let Some(i) = compartments.iter().position(String::is_empty) {
            return Err((
                at("compartments").index(i),
                format!("oci_sd: compartments[{i}] must not be empty"),
            ));
        }
        let refresh_interval = raw.refresh_interval.onto(PromDuration::from_secs(60));
        if refresh_interval.is_zero() {
            return Err((
                at("refresh_interval"),
                format!("oci_sd: refresh_interval must be positive, got {refresh_interval}"),
            ));
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(OciSdConfig {
            auth,
            tenancy: raw.tenancy.0,
            user: raw.user.0,
            fingerprint: raw.fingerprint.0,
            key_file: join_dir(cx.paths.dir, &raw.key_file.0),
            key_passphrase: raw.key_passphrase,
            key_passphrase_file: join_dir(cx.paths.dir, &raw.key_passphrase_file.0),
            region: raw.region.0,
            compartments,
            port: raw.port.onto(80),
            refresh_interval,
            http_client,
        })
    }

    fn machine(_: &OciSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "oci_sd_configs";
    const API_KEY: &str =
        "region: us-ashburn-1\ntenancy: t\nuser: u\nfingerprint: f\nkey_file: oci/key.pem";

    #[test]
    fn defaults_are_applied_and_key_files_resolved() {
        let c: OciSdConfig = block(KEY, API_KEY);
        assert_eq!(c.auth, "api_key");
        assert_eq!(
            (c.port, c.refresh_interval),
            (80, PromDuration::from_secs(60))
        );
        assert_eq!(c.key_file, "/etc/prometheus/oci/key.pem");
        assert_eq!(c.key_passphrase_file, "");
        assert_eq!(c.http_client, HttpClientConfig::default());
        let c: OciSdConfig = block(KEY, &format!("{API_KEY}\nkey_passphrase_file: pass"));
        assert_eq!(c.key_passphrase_file, "/etc/prometheus/pass");
        let c: OciSdConfig = block(
            KEY,
            "region: r\nauth: instance_principal\ncompartments: [a, b]",
        );
        assert_eq!(c.compartments, ["a", "b"]);
    }

    #[test]
    fn region_and_api_key_fields() {
        assert_eq!(
            error_at(KEY, "tenancy: t"),
            (4, 9, "oci_sd: region is required".into())
        );
        assert_eq!(
            error(KEY, "region: r"),
            "oci_sd: api_key auth requires tenancy"
        );
        assert_eq!(
            error(KEY, "region: r\ntenancy: t"),
            "oci_sd: api_key auth requires user"
        );
        assert_eq!(
            error(KEY, "region: r\ntenancy: t\nuser: u"),
            "oci_sd: api_key auth requires fingerprint"
        );
        assert_eq!(
            error(KEY, "region: r\ntenancy: t\nuser: u\nfingerprint: f"),
            "oci_sd: api_key auth requires key_file"
        );
        assert_eq!(
            error(
                KEY,
                &format!("{API_KEY}\nkey_passphrase: p\nkey_passphrase_file: f")
            ),
            "oci_sd: at most one of key_passphrase and key_passphrase_file must be configured"
        );
    }

    #[test]
    fn auth_methods() {
        assert_eq!(
            error(
                KEY,
                "region: r\nauth: instance_principal\nkey_passphrase: p"
            ),
            "oci_sd: instance_principal auth must not have tenancy, user, fingerprint, key_file, key_passphrase, or key_passphrase_file set"
        );
        assert_eq!(
            error_at(KEY, "region: r\nauth: API_KEY"),
            (5, 15, r#"oci_sd: unknown auth method "API_KEY", expected "api_key" or "instance_principal""#.into())
        );
        assert_eq!(
            error(KEY, "region: r\nauth: ~"),
            r#"oci_sd: unknown auth method "", expected "api_key" or "instance_principal""#
        );
    }

    #[test]
    fn compartments_and_refresh_interval() {
        assert_eq!(
            error_at(KEY, &format!("{API_KEY}\ncompartments: [a, '']")),
            (9, 27, "oci_sd: compartments[1] must not be empty".into())
        );
        assert_eq!(
            error(KEY, &format!("{API_KEY}\nrefresh_interval: 0s")),
            "oci_sd: refresh_interval must be positive, got 0s"
        );
        assert_eq!(
            error(KEY, &format!("{API_KEY}\nrefresh_interval:")),
            "oci_sd: refresh_interval must be positive, got 0s"
        );
    }

    #[test]
    fn client_is_validated_last() {
        assert_eq!(
            error(
                KEY,
                &format!("{API_KEY}\nbearer_token: a\nbearer_token_file: b")
            ),
            "at most one of bearer_token & bearer_token_file must be configured"
        );
        // The TLS block is checked while decoding, before everything else.
        assert_eq!(
            error(KEY, "tls_config: {min_version: TLS9}"),
            "unknown TLS version: TLS9"
        );
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, API_KEY, "oci.plain");
    }
}
