//! `remote_write` (parsed now, used by the remote-write sender later).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::PathResolver;
use super::http::{HttpClientConfig, with_http_client};
use super::yaml::{Bool11, Nullable};
use crate::duration::PromDuration;
use crate::relabel::{RawRelabelConfig, RelabelConfig};

/// `queue_config`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Samples buffered per shard.
    pub capacity: u32,
    /// Maximum number of shards.
    pub max_shards: u32,
    /// Minimum number of shards.
    pub min_shards: u32,
    /// Samples per request.
    pub max_samples_per_send: u32,
    /// Longest wait before sending a partial batch.
    pub batch_send_deadline: PromDuration,
    /// First retry delay.
    pub min_backoff: PromDuration,
    /// Longest retry delay.
    pub max_backoff: PromDuration,
    /// Retry on HTTP 429.
    pub retry_on_http_429: Bool11,
    /// Samples older than this are dropped instead of sent (0 = never).
    pub sample_age_limit: PromDuration,
}

impl QueueConfig {
    /// Prometheus 3.x's `QueueConfig.Validate` (`config/config.go`), with its messages.
    /// (A negative number fails earlier, at parsing: the fields are unsigned.)
    pub(crate) fn validate(&self) -> Result<(), String> {
        let fail = |m: &str| Err(format!("remote write queue {m}"));
        if self.max_shards == 0 {
            return fail("max_shards must be positive");
        }
        if self.min_shards == 0 {
            return fail("min_shards must be positive");
        }
        if self.min_shards > self.max_shards {
            return fail("min_shards must not be greater than max_shards");
        }
        if self.max_samples_per_send == 0 {
            return fail("max_samples_per_send must be positive");
        }
        if self.capacity == 0 {
            return fail("capacity must be positive");
        }
        if self.max_backoff < self.min_backoff {
            return fail("max_backoff must not be less than min_backoff");
        }
        Ok(())
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2000,
            batch_send_deadline: PromDuration::from_secs(5),
            min_backoff: PromDuration::from_millis(30),
            max_backoff: PromDuration::from_secs(5),
            retry_on_http_429: Bool11(true),
            sample_age_limit: PromDuration::ZERO,
        }
    }
}

/// `metadata_config`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    /// Send metric metadata.
    pub send: Bool11,
    /// How often.
    pub send_interval: PromDuration,
    /// Entries per request.
    pub max_samples_per_send: u32,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            send: Bool11(true),
            send_interval: PromDuration::from_secs(60),
            max_samples_per_send: 2000,
        }
    }
}

with_http_client! {
    /// `remote_write` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawRemoteWrite {
        #[serde(default)]
        url: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        remote_timeout: Nullable<PromDuration>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        write_relabel_configs: Vec<Option<RawRelabelConfig>>,
        #[serde(default)]
        queue_config: Option<QueueConfig>,
        #[serde(default)]
        metadata_config: Option<MetadataConfig>,
        #[serde(default)]
        send_exemplars: Bool11,
        #[serde(default)]
        send_native_histograms: Bool11,
        #[serde(default, rename = "round_robin_dns")]
        _round_robin_dns: Bool11,
        #[serde(default)]
        protobuf_message: String,
        #[serde(default)]
        sigv4: Nullable<super::server::RawSigV4>,
        #[serde(default)]
        azuread: Option<serde_yaml::Value>,
        #[serde(default)]
        google_iam: Option<serde_yaml::Value>,
    }
}

/// A validated `remote_write` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteWriteConfig {
    /// Receiver URL.
    pub url: String,
    /// Queue name (unique); empty if not given.
    pub name: String,
    /// Request timeout (default 30s).
    pub remote_timeout: PromDuration,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// Relabeling applied to series before sending.
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// Queue tuning.
    pub queue_config: QueueConfig,
    /// Metadata sending.
    pub metadata_config: MetadataConfig,
    /// Send exemplars.
    pub send_exemplars: bool,
    /// Send native histograms.
    pub send_native_histograms: bool,
    /// Client options.
    pub http_client: HttpClientConfig,
    /// Requests are signed with AWS Signature Version 4 (Amazon Managed Service for
    /// Prometheus).
    pub sigv4: Option<super::server::SigV4Config>,
}

impl RemoteWriteConfig {
    /// Why every send will fail although the configuration loads (as in 3.x): a URL
    /// without an `http` or `https` scheme (`localhost:9090`).
    pub fn warning(&self) -> Option<String> {
        let scheme = crate::gourl::parse(&self.url)
            .map(|u| u.scheme)
            .unwrap_or_default();
        (scheme != "http" && scheme != "https").then(|| {
            format!(
                "url {} has no http or https scheme: every send fails (unsupported protocol scheme {}), as in Prometheus",
                crate::goquote::quote(&crate::gourl::redact_url(&self.url, crate::gourl::REDACTED)),
                crate::goquote::quote(&scheme)
            )
        })
    }
}

impl RawRemoteWrite {
    /// Validates; `relabel` validates one write relabel rule (errors with their index).
    pub(crate) fn validate(
        mut self,
        paths: &PathResolver<'_>,
        mut relabel: impl FnMut(usize, RawRelabelConfig) -> Result<RelabelConfig, String>,
    ) -> Result<RemoteWriteConfig, (Option<usize>, String)> {
        if self.url.is_empty() {
            return Err((None, "url for remote_write is empty".into()));
        }
        // 3.x decodes the block first (`SigV4Config.UnmarshalYAML` validates it).
        let sigv4 = match std::mem::take(&mut self.sigv4) {
            Nullable::Value(s) => Some(s.config().map_err(|e| (None, e))?),
            _ => None,
        };
        if sigv4.as_ref().is_some_and(|s| !s.role_arn.is_empty()) {
            return Err((
                None,
                "sigv4: role_arn (assuming a role through STS) is not supported by trawl yet; give the role's credentials through the environment, a profile or access_key and secret_key".into(),
            ));
        }
        for (name, present) in [
            ("azuread", self.azuread.is_some()),
            ("google_iam", self.google_iam.is_some()),
        ] {
            if present {
                return Err((
                    None,
                    format!("{name} authentication is not supported by trawl"),
                ));
            }
        }
        // 3.x (`config.URL.UnmarshalYAML`) only asks Go's `url.Parse`: a URL without an
        // http(s) scheme loads, and every send then fails with "unsupported protocol
        // scheme" (`trawl check config` and the daemon warn about it).
        crate::gourl::parse(&self.url).map_err(|e| (None, e))?;
        // 3.x's `validateHeaders` (Go walks the map in random order; trawl reports the
        // first offending header in name order).
        for h in self.headers.keys() {
            let lower = h.to_ascii_lowercase();
            if lower == "authorization" {
                return Err((None, "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter".into()));
            }
            if super::server::RESERVED_HEADERS.contains(&lower.as_str()) {
                return Err((
                    None,
                    format!("{h} is a reserved header. It must not be changed"),
                ));
            }
        }
        if !matches!(
            self.protobuf_message.as_str(),
            "" | "prometheus.WriteRequest" | "io.prometheus.write.v2.Request"
        ) {
            return Err((
                None,
                format!(
                    "invalid protobuf_message value: unknown type for remote write protobuf message {}, supported: prometheus.WriteRequest, io.prometheus.write.v2.Request",
                    self.protobuf_message
                ),
            ));
        }
        let mut rules = Vec::new();
        for (i, r) in std::mem::take(&mut self.write_relabel_configs)
            .into_iter()
            .enumerate()
        {
            let Some(r) = r else {
                return Err((
                    Some(i),
                    "empty or null relabeling rule in remote write config".into(),
                ));
            };
            rules.push(relabel(i, r).map_err(|e| (Some(i), e))?);
        }
        let http_client = self
            .take_http_client()
            .validate(paths)
            .map_err(|e| (None, e))?;
        // 3.x's `validateAuthConfigs`.
        let configured: Vec<&str> = [
            ("basic_auth", http_client.basic_auth.is_some()),
            ("authorization", http_client.authorization.is_some()),
            ("oauth2", http_client.oauth2.is_some()),
            ("sigv4", sigv4.is_some()),
        ]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect();
        if configured.len() > 1 {
            return Err((
                None,
                format!(
                    "at most one of basic_auth, authorization, oauth2, sigv4, azuread or google_iam must be configured. Currently configured: [{}]",
                    configured.join(" ")
                ),
            ));
        }
        let queue_config = self.queue_config.unwrap_or_default();
        queue_config.validate().map_err(|e| (None, e))?;
        Ok(RemoteWriteConfig {
            url: self.url,
            name: self.name,
            remote_timeout: self
                .remote_timeout
                .value()
                .unwrap_or(PromDuration::from_secs(30)),
            headers: self.headers,
            write_relabel_configs: rules,
            queue_config,
            metadata_config: self.metadata_config.unwrap_or_default(),
            send_exemplars: self.send_exemplars.0,
            send_native_histograms: self.send_native_histograms.0,
            http_client,
            sigv4,
        })
    }
}
