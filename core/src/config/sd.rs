//! Service-discovery blocks of a scrape config: `static_configs`, `file_sd_configs`,
//! `http_sd_configs`, `dns_sd_configs`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::http::{HttpClientConfig, with_http_client};
use super::yaml::{LenientString, Nullable};
use super::{PathResolver, join_dir};
use crate::duration::PromDuration;
use crate::goquote::quote;
use crate::labels::{Labels, NameValidation};

/// A target group: targets (each a label set, usually just `__address__`), labels common
/// to all of them, and the source that identifies the group inside its provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetGroup {
    /// One label set per target.
    pub targets: Vec<Labels>,
    /// Labels shared by every target of the group.
    pub labels: Labels,
    /// Identifies the group within its provider (`"0"`, `"<file>:<i>"`, `"<url>:<i>"`).
    pub source: String,
}

/// `static_configs` entry as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStaticConfig {
    #[serde(default)]
    targets: Option<Vec<LenientString>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, LenientString>>,
}

impl RawStaticConfig {
    /// The group for this entry; `index` becomes its source.
    pub(crate) fn into_group(
        self,
        index: usize,
        scheme: NameValidation,
        check_hostnames: bool,
    ) -> Result<TargetGroup, String> {
        let labels = self.labels.unwrap_or_default();
        for name in labels.keys() {
            if !scheme.is_valid_label_name(name) {
                return Err(format!("{} is not a valid label name", quote(name)));
            }
        }
        let mut targets = Vec::new();
        for t in self.targets.unwrap_or_default() {
            if check_hostnames && t.0.contains('/') {
                return Err(format!("{} is not a valid hostname", quote(&t.0)));
            }
            targets.push(Labels::single(crate::labels::ADDRESS, &t.0));
        }
        Ok(TargetGroup {
            targets,
            labels: Labels::from_pairs(labels.into_iter().map(|(k, v)| (k, v.0))),
            source: index.to_string(),
        })
    }
}

/// `file_sd_configs` entry as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFileSd {
    #[serde(default)]
    files: Vec<String>,
    #[serde(default)]
    refresh_interval: Nullable<PromDuration>,
}

/// File-based discovery: files (globs allowed in the last path component) re-read on
/// change and every `refresh_interval`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileSdConfig {
    /// Patterns, resolved against the config file's directory.
    pub files: Vec<String>,
    /// Periodic re-read (default 5m).
    pub refresh_interval: PromDuration,
}

/// True for `^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$`.
fn valid_file_sd_pattern(p: &str) -> bool {
    let Some(dot) = p.rfind('.') else {
        return false;
    };
    if !matches!(
        &p[dot + 1..],
        "json" | "yml" | "yaml" | "JSON" | "YML" | "YAML"
    ) {
        return false;
    }
    let stem = &p[..dot];
    match stem.find('*') {
        None => true,
        Some(i) => !stem[i + 1..].contains('/'),
    }
}

impl RawFileSd {
    pub(crate) fn validate(self, paths: &PathResolver<'_>) -> Result<FileSdConfig, String> {
        if self.files.is_empty() {
            return Err("file service discovery config must contain at least one path name".into());
        }
        let mut files = Vec::with_capacity(self.files.len());
        for f in self.files {
            if !valid_file_sd_pattern(&f) {
                return Err(format!(
                    "path name {} is not valid for file discovery",
                    quote(&f)
                ));
            }
            files.push(join_dir(paths.dir, &f));
        }
        Ok(FileSdConfig {
            files,
            refresh_interval: self
                .refresh_interval
                .value()
                .unwrap_or(PromDuration::from_secs(300)),
        })
    }
}

with_http_client! {
    /// `http_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawHttpSd {
        #[serde(default)]
        url: String,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
    }
}

/// HTTP-based discovery: `GET url` every `refresh_interval`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSdConfig {
    /// The endpoint.
    pub url: String,
    /// Refresh period (default 60s); also the request timeout.
    pub refresh_interval: PromDuration,
    /// Client options.
    pub http_client: HttpClientConfig,
}

/// Checks a URL the way Prometheus's HTTP SD does (scheme http/https, a host).
pub(crate) fn check_http_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("URL is missing".into());
    }
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http") | Some("https") => {}
        _ => return Err("URL scheme must be 'http' or 'https'".into()),
    }
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() {
        return Err("host is missing in URL".into());
    }
    // Errors show the URL without its password.
    let shown = || quote(&crate::http::redact_url(url, crate::http::REDACTED));
    if url.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(format!("parse {}: invalid character in URL", shown()));
    }
    // Go's `validOptionalPort`: after the host (an IPv6 address in brackets), an optional
    // `:` and digits only.
    let after_host = match host.strip_prefix('[') {
        Some(r) => match r.find(']') {
            Some(i) => &r[i + 1..],
            None => return Err(format!("parse {}: missing ']' in host", shown())),
        },
        None => host.rfind(':').map_or("", |i| &host[i..]),
    };
    let valid_port = match after_host.strip_prefix(':') {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => after_host.is_empty(),
    };
    if !valid_port {
        return Err(format!(
            "parse {}: invalid port {} after host",
            shown(),
            quote(after_host)
        ));
    }
    Ok(())
}

impl RawHttpSd {
    pub(crate) fn validate(mut self, paths: &PathResolver<'_>) -> Result<HttpSdConfig, String> {
        check_http_url(&self.url)?;
        let http_client = self.take_http_client().validate(paths)?;
        Ok(HttpSdConfig {
            url: self.url,
            refresh_interval: self
                .refresh_interval
                .value()
                .unwrap_or(PromDuration::from_secs(60)),
            http_client,
        })
    }
}

/// DNS record type for DNS SD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DnsRecordType {
    /// SRV records (default): host and port from the record.
    Srv,
    /// IPv4 addresses, with the configured port.
    A,
    /// IPv6 addresses, with the configured port.
    Aaaa,
    /// Mail exchangers, with the configured port.
    Mx,
    /// Name servers, with the configured port.
    Ns,
}

/// `dns_sd_configs` entry as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDnsSd {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    refresh_interval: Nullable<PromDuration>,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    port: u16,
}

/// DNS-based discovery.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsSdConfig {
    /// Names to resolve.
    pub names: Vec<String>,
    /// Refresh period (default 30s).
    pub refresh_interval: PromDuration,
    /// Record type.
    pub kind: DnsRecordType,
    /// Port for A, AAAA, MX and NS records.
    pub port: u16,
}

impl RawDnsSd {
    pub(crate) fn validate(self) -> Result<DnsSdConfig, String> {
        if self.names.is_empty() {
            return Err("DNS-SD config must contain at least one SRV record name".into());
        }
        let kind = match self.kind.to_ascii_uppercase().as_str() {
            "" | "SRV" => DnsRecordType::Srv,
            "A" => DnsRecordType::A,
            "AAAA" => DnsRecordType::Aaaa,
            "MX" => DnsRecordType::Mx,
            "NS" => DnsRecordType::Ns,
            _ => return Err(format!("invalid DNS-SD records type {}", self.kind)),
        };
        if kind != DnsRecordType::Srv && self.port == 0 {
            return Err(
                "a port is required in DNS-SD configs for all record types except SRV".into(),
            );
        }
        Ok(DnsSdConfig {
            names: self.names,
            refresh_interval: self
                .refresh_interval
                .value()
                .unwrap_or(PromDuration::from_secs(30)),
            kind,
            port: self.port,
        })
    }
}

/// One service-discovery block of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SdConfig {
    /// All `static_configs` entries of a job, coalesced (sources `"0"`, `"1"`, …).
    Static(Vec<TargetGroup>),
    /// A `file_sd_configs` entry.
    File(FileSdConfig),
    /// An `http_sd_configs` entry.
    Http(Box<HttpSdConfig>),
    /// A `dns_sd_configs` entry.
    Dns(DnsSdConfig),
}

impl SdConfig {
    /// The mechanism name used in provider names and metrics (`static`, `file`, …).
    pub fn mechanism(&self) -> &'static str {
        match self {
            SdConfig::Static(_) => "static",
            SdConfig::File(_) => "file",
            SdConfig::Http(_) => "http",
            SdConfig::Dns(_) => "dns",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_sd_patterns() {
        // The regex allows further `*` after the first, but no `/`.
        for ok in [
            "a.json",
            "dir/*.yml",
            "/x/y/foo*.yaml",
            "*.JSON",
            "a*b.yml",
            "a**.json",
        ] {
            assert!(valid_file_sd_pattern(ok), "{ok}");
        }
        for bad in ["a.txt", "*/a.json", "a*/b.yml", "json", "a*.b.c"] {
            assert!(!valid_file_sd_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn http_urls() {
        assert_eq!(check_http_url(""), Err("URL is missing".into()));
        assert_eq!(
            check_http_url("ftp://x/y"),
            Err("URL scheme must be 'http' or 'https'".into())
        );
        assert_eq!(
            check_http_url("foo.com/sd"),
            Err("URL scheme must be 'http' or 'https'".into())
        );
        assert_eq!(
            check_http_url("http:///sd"),
            Err("host is missing in URL".into())
        );
        assert!(check_http_url("https://user@host:8080/sd?x=1").is_ok());
    }
}
