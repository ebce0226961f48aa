//! `azure_sd_configs`: virtual machines and scale-set instances of an Azure subscription,
//! listed through the Resource Manager API every `refresh_interval`. Validation follows
//! 3.x's `discovery/azure` `SDConfig.UnmarshalYAML`; the block has no `SetDirectory`,
//! so its file paths are kept as written. trawl validates it but does not run it yet.

use serde::Deserialize;

use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, text, whole};
use crate::common::http::HttpClientConfig;
use crate::common::http::{Secret, with_http_client};
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;
use crate::goquote::quote;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Azure;

with_http_client! {
    /// `azure_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawAzureSd {
        #[serde(default)]
        environment: Nullable<LenientString>,
        #[serde(default)]
        port: Nullable<i64>,
        #[serde(default)]
        subscription_id: LenientString,
        #[serde(default)]
        tenant_id: LenientString,
        #[serde(default)]
        client_id: LenientString,
        #[serde(default)]
        client_secret: Secret,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        authentication_method: Nullable<LenientString>,
        #[serde(default)]
        resource_group: LenientString,
    }
}

/// Azure virtual machines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzureSdConfig {
    /// Azure cloud (default `AzurePublicCloud`; checked only at run time).
    pub environment: String,
    /// Port of the targets (default 80).
    pub port: i64,
    /// The subscription to list.
    pub subscription_id: String,
    /// Tenant of the OAuth client.
    pub tenant_id: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: Secret,
    /// Refresh period (default 5m).
    pub refresh_interval: PromDuration,
    /// `OAuth` (default), `ManagedIdentity`, `SDK` or `WorkloadIdentity`.
    pub authentication_method: String,
    /// Only this resource group, if set.
    pub resource_group: String,
    /// Client options (file paths as written).
    pub http_client: HttpClientConfig,
}

const METHODS: [&str; 4] = ["OAuth", "ManagedIdentity", "SDK", "WorkloadIdentity"];

impl Mechanism for Azure {
    const KEY: &'static str = "azure_sd_configs";
    const NAME: &'static str = "azure";
    const GO_TYPE: &'static str = "azure.plain";
    const RUNS: bool = false;
    type Raw = RawAzureSd;
    type Config = AzureSdConfig;

    fn validate(mut raw: RawAzureSd, _: &SdContext<'_>) -> Result<AzureSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let required = |value: &str, name: &str| {
            if value.is_empty() {
                Err((
                    at(name),
                    format!("azure SD configuration requires a {name}"),
                ))
            } else {
                Ok(())
            }
        };
        let method = text(raw.authentication_method, "OAuth");
        required(&raw.subscription_id.0, "subscription_id")?;
        if method == "OAuth" {
            required(&raw.tenant_id.0, "tenant_id")?;
            required(&raw.client_id.0, "client_id")?;
            required(raw.client_secret.expose(), "client_secret")?;
        }
        if !METHODS.contains(&method.as_str()) {
            return Err((
                at("authentication_method"),
                format!(
                    "unknown authentication_type {}. Supported types are {}, {}, {} or {}",
                    quote(&method),
                    quote(METHODS[0]),
                    quote(METHODS[1]),
                    quote(METHODS[2]),
                    quote(METHODS[3])
                ),
            ));
        }
        let http_client = client.check().map_err(whole)?;
        Ok(AzureSdConfig {
            environment: text(raw.environment, "AzurePublicCloud"),
            port: raw.port.onto(80),
            subscription_id: raw.subscription_id.0,
            tenant_id: raw.tenant_id.0,
            client_id: raw.client_id.0,
            client_secret: raw.client_secret,
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(300)),
            authentication_method: method,
            resource_group: raw.resource_group.0,
            http_client,
        })
    }

    fn machine(_: &AzureSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "azure_sd_configs";
    const OAUTH: &str = "subscription_id: s\ntenant_id: t\nclient_id: c\nclient_secret: x";

    #[test]
    fn defaults_are_applied() {
        let c: AzureSdConfig = block(KEY, OAUTH);
        assert_eq!(c.environment, "AzurePublicCloud");
        assert_eq!(c.authentication_method, "OAuth");
        assert_eq!(c.port, 80);
        assert_eq!(c.refresh_interval, PromDuration::from_secs(300));
        assert_eq!(c.client_secret.expose(), "x");
        assert_eq!(c.http_client, HttpClientConfig::default());
        // The environment is only looked up at run time.
        let c: AzureSdConfig = block(KEY, &format!("{OAUTH}\nenvironment: Mars"));
        assert_eq!(c.environment, "Mars");
    }

    #[test]
    fn required_fields_in_order() {
        assert_eq!(
            error_at(KEY, "tenant_id: t"),
            (
                4,
                9,
                "azure SD configuration requires a subscription_id".into()
            )
        );
        assert_eq!(
            error(KEY, "subscription_id: s"),
            "azure SD configuration requires a tenant_id"
        );
        assert_eq!(
            error(KEY, "subscription_id: s\ntenant_id: t"),
            "azure SD configuration requires a client_id"
        );
        assert_eq!(
            error_at(
                KEY,
                "subscription_id: s\ntenant_id: t\nclient_id: c\nclient_secret: ''"
            ),
            (
                7,
                24,
                "azure SD configuration requires a client_secret".into()
            )
        );
        // Other methods need none of the OAuth fields.
        for m in ["ManagedIdentity", "SDK", "WorkloadIdentity"] {
            let c: AzureSdConfig = block(
                KEY,
                &format!("subscription_id: s\nauthentication_method: {m}"),
            );
            assert_eq!(c.authentication_method, m);
        }
    }

    #[test]
    fn unknown_method_is_refused() {
        let want = r#"unknown authentication_type "oauth". Supported types are "OAuth", "ManagedIdentity", "SDK" or "WorkloadIdentity""#;
        assert_eq!(
            error_at(KEY, "subscription_id: s\nauthentication_method: oauth"),
            (5, 32, want.into())
        );
        // Null leaves the empty method, which is no known one either.
        assert!(
            error(KEY, "subscription_id: s\nauthentication_method:")
                .starts_with(r#"unknown authentication_type "". "#)
        );
    }

    #[test]
    fn client_is_validated_and_paths_kept() {
        assert_eq!(
            error(
                KEY,
                &format!("{OAUTH}\nbearer_token: a\nbearer_token_file: b")
            ),
            "at most one of bearer_token & bearer_token_file must be configured"
        );
        // The TLS block is checked while decoding, before the block's own checks.
        assert_eq!(
            error(KEY, "tls_config: {key_file: k.pem}"),
            "exactly one of cert or cert_file must be configured when a client key is configured"
        );
        let c: AzureSdConfig = block(KEY, &format!("{OAUTH}\ntls_config: {{ca_file: ca.pem}}"));
        assert_eq!(c.http_client.tls_config.ca_file, "ca.pem");
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, OAUTH, "azure.plain");
    }
}
