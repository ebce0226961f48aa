//! The configuration model: an unmodified `prometheus.yml`, parsed and validated as
//! Prometheus 3.x does, with every error placed at a line and column.
//!
//! [`Config::parse`] is the one entry point. It reads no files and no environment: the
//! caller passes the text, the file's name (for messages), its directory (relative paths
//! resolve against it) and the environment used to expand `external_labels`.
//!
//! Sections Prometheus has but an agent does not use (`rule_files`, `alerting`,
//! `remote_read`, `storage`, `tracing`, `otlp`, `runtime`) are validated as a 3.x server
//! validates them, then only listed in [`Config::ignored_sections`], so any
//! `prometheus.yml` the server loads, trawl loads too.

mod files;
pub(crate) use crate::common::http;
pub use crate::common::{paths, yaml};
pub mod remote_write;
mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

use self::http::with_http_client;
pub use self::http::{Authorization, BasicAuth, HttpClientConfig, OAuth2, Secret, TlsConfig};
pub(crate) use self::paths::PathResolver;
pub use self::paths::{clean_path, join_dir};
use self::remote_write::RawRemoteWrite;
pub use self::remote_write::RemoteWriteConfig;
pub use self::server::SigV4Config;
use self::yaml::{Bool11, LenientString, Nullable, Path, Seg};
pub use crate::discovery::dns::{DnsRecordType, DnsSdConfig};
pub use crate::discovery::file::FileSdConfig;
pub use crate::discovery::groups::TargetGroup;
pub use crate::discovery::http::HttpSdConfig;
pub use crate::discovery::mechanism::SdConfig;
use crate::discovery::mechanism::SdContext;
use crate::discovery::registry::{sd_blocks_struct, with_mechanisms};
pub use crate::discovery::statics::StaticConfigs;
use crate::duration::PromDuration;
use crate::goquote::quote;
use crate::labels::{Labels, NameValidation};
use crate::relabel::{RawRelabelConfig, RegexCache, RelabelConfig};
use crate::units::ByteSize;

/// Where the configuration text came from, and what it may refer to.
#[derive(Clone, Debug, Default)]
pub struct ParseOptions {
    /// The file name, used in error messages.
    pub file_name: String,
    /// The directory relative paths resolve against (normally the file's directory).
    pub base_dir: String,
    /// Environment variables for `$VAR` / `${VAR}` in `external_labels` values.
    pub env: BTreeMap<String, String>,
}

impl ParseOptions {
    /// Options for a file at `path` (its directory is taken from the path string; no
    /// file system access) and an empty environment.
    pub fn for_path(path: &str) -> ParseOptions {
        let base_dir = match path.rfind('/') {
            Some(0) => "/".to_owned(),
            Some(i) => path[..i].to_owned(),
            None => ".".to_owned(),
        };
        ParseOptions {
            file_name: path.to_owned(),
            base_dir,
            env: BTreeMap::new(),
        }
    }
}

/// A configuration that was rejected: Prometheus's message, the file, and where in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name given in [`ParseOptions`].
    pub file_name: String,
    /// 1-based line, if known.
    pub line: Option<usize>,
    /// 1-based column, if known.
    pub column: Option<usize>,
    /// The path of the offending node (e.g. `scrape_configs[1].scrape_timeout`).
    pub path: String,
    /// What is wrong, in Prometheus's words.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file_name)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        f.write_str(": ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A scrape protocol (`scrape_protocols`, `fallback_scrape_protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScrapeProtocol {
    /// `PrometheusProto`.
    PrometheusProto,
    /// `OpenMetricsText0.0.1`.
    OpenMetricsText0_0_1,
    /// `OpenMetricsText1.0.0`.
    OpenMetricsText1_0_0,
    /// `PrometheusText0.0.4`.
    PrometheusText0_0_4,
    /// `PrometheusText1.0.0`.
    PrometheusText1_0_0,
}

const SUPPORTED_PROTOCOLS: &str = "[OpenMetricsText0.0.1 OpenMetricsText1.0.0 PrometheusProto PrometheusText0.0.4 PrometheusText1.0.0]";

impl ScrapeProtocol {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => "PrometheusProto",
            ScrapeProtocol::OpenMetricsText0_0_1 => "OpenMetricsText0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "OpenMetricsText1.0.0",
            ScrapeProtocol::PrometheusText0_0_4 => "PrometheusText0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "PrometheusText1.0.0",
        }
    }

    /// Parses a configuration name (case-sensitive, as Prometheus).
    pub fn parse(s: &str) -> Option<ScrapeProtocol> {
        Some(match s {
            "PrometheusProto" => ScrapeProtocol::PrometheusProto,
            "OpenMetricsText0.0.1" => ScrapeProtocol::OpenMetricsText0_0_1,
            "OpenMetricsText1.0.0" => ScrapeProtocol::OpenMetricsText1_0_0,
            "PrometheusText0.0.4" => ScrapeProtocol::PrometheusText0_0_4,
            "PrometheusText1.0.0" => ScrapeProtocol::PrometheusText1_0_0,
            _ => return None,
        })
    }

    /// Prometheus's default list.
    pub const DEFAULT: [ScrapeProtocol; 4] = [
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    /// The default list when native histograms are scraped (protobuf first).
    pub const PROTO_FIRST: [ScrapeProtocol; 5] = [
        ScrapeProtocol::PrometheusProto,
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];
}

impl fmt::Display for ScrapeProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-scrape and per-pool limits; 0 means unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest accepted (uncompressed) body.
    pub body_size_limit: ByteSize,
    /// Most samples per scrape after metric relabeling.
    pub sample_limit: u64,
    /// Most targets per pool after relabeling.
    pub target_limit: u64,
    /// Most labels per series.
    pub label_limit: u64,
    /// Longest label name.
    pub label_name_length_limit: u64,
    /// Longest label value.
    pub label_value_length_limit: u64,
    /// Most dropped targets remembered per pool (for the API).
    pub keep_dropped_targets: u64,
}

impl Limits {
    fn inherit(self, global: &Limits) -> Limits {
        let pick = |own: u64, g: u64| if own == 0 { g } else { own };
        Limits {
            body_size_limit: if self.body_size_limit.0 == 0 {
                global.body_size_limit
            } else {
                self.body_size_limit
            },
            sample_limit: pick(self.sample_limit, global.sample_limit),
            target_limit: pick(self.target_limit, global.target_limit),
            label_limit: pick(self.label_limit, global.label_limit),
            label_name_length_limit: pick(
                self.label_name_length_limit,
                global.label_name_length_limit,
            ),
            label_value_length_limit: pick(
                self.label_value_length_limit,
                global.label_value_length_limit,
            ),
            keep_dropped_targets: pick(self.keep_dropped_targets, global.keep_dropped_targets),
        }
    }
}

/// The `global:` section, with defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalConfig {
    /// Default scrape interval (1m).
    pub scrape_interval: PromDuration,
    /// Default scrape timeout (10s, at most the interval).
    pub scrape_timeout: PromDuration,
    /// Rule evaluation interval (accepted; unused by an agent).
    pub evaluation_interval: PromDuration,
    /// Labels identifying this agent, added to remote-write series; part of the scrape
    /// offset seed.
    pub external_labels: Labels,
    /// Default limits for every job.
    pub limits: Limits,
    /// Default scrape protocols.
    pub scrape_protocols: Vec<ScrapeProtocol>,
    /// `scrape_protocols` is the built-in default (the section did not list them).
    pub scrape_protocols_defaulted: bool,
    /// Default for scraping native histograms.
    pub scrape_native_histograms: bool,
    /// Default for always scraping classic histograms.
    pub always_scrape_classic_histograms: bool,
    /// Default for converting classic histograms to NHCB.
    pub convert_classic_histograms_to_nhcb: bool,
    /// Default for the extra report series.
    pub extra_scrape_metrics: bool,
    /// Name validation scheme.
    pub metric_name_validation_scheme: NameValidation,
    /// Name escaping scheme (`underscores`, `dots`, `values`, `allow-utf-8`).
    pub metric_name_escaping_scheme: String,
    /// Log file for scrape failures.
    pub scrape_failure_log_file: String,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: PromDuration::from_secs(60),
            scrape_timeout: PromDuration::from_secs(10),
            evaluation_interval: PromDuration::from_secs(60),
            external_labels: Labels::empty(),
            limits: Limits::default(),
            scrape_protocols: ScrapeProtocol::DEFAULT.to_vec(),
            scrape_protocols_defaulted: true,
            scrape_native_histograms: false,
            always_scrape_classic_histograms: false,
            convert_classic_histograms_to_nhcb: false,
            extra_scrape_metrics: false,
            metric_name_validation_scheme: NameValidation::Utf8,
            metric_name_escaping_scheme: "allow-utf-8".into(),
            scrape_failure_log_file: String::new(),
        }
    }
}

/// One `scrape_configs` entry, validated, with inherited values filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeConfig {
    /// The job name (unique).
    pub job_name: String,
    /// Keep scraped labels that clash with target labels.
    pub honor_labels: bool,
    /// Use timestamps from the exposition (default true).
    pub honor_timestamps: bool,
    /// Stale-mark series with explicit timestamps when they vanish.
    pub track_timestamps_staleness: bool,
    /// URL parameters.
    pub params: BTreeMap<String, Vec<String>>,
    /// Scrape interval.
    pub scrape_interval: PromDuration,
    /// Scrape timeout.
    pub scrape_timeout: PromDuration,
    /// Accepted protocols, in preference order.
    pub scrape_protocols: Vec<ScrapeProtocol>,
    /// `scrape_protocols` is the built-in default: neither the job nor the global
    /// section listed them, and native histograms did not put protobuf first.
    /// `--enable-feature=created-timestamp-zero-ingestion` makes that default protobuf
    /// first, as 3.x does (the agent applies it: [`crate::agent::AgentOptions`]).
    pub scrape_protocols_defaulted: bool,
    /// Protocol assumed for a missing or unknown Content-Type.
    pub fallback_scrape_protocol: Option<ScrapeProtocol>,
    /// Scrape native histograms.
    pub scrape_native_histograms: bool,
    /// Always scrape classic histograms.
    pub always_scrape_classic_histograms: bool,
    /// Convert classic histograms to NHCB.
    pub convert_classic_histograms_to_nhcb: bool,
    /// Extra report series.
    pub extra_scrape_metrics: bool,
    /// Ask for gzip (default true).
    pub enable_compression: bool,
    /// Path (default `/metrics`).
    pub metrics_path: String,
    /// Scheme (default `http`).
    pub scheme: String,
    /// Limits, inherited from `global` where 0.
    pub limits: Limits,
    /// Native histogram bucket limit.
    pub native_histogram_bucket_limit: u64,
    /// Native histogram minimum bucket growth factor.
    pub native_histogram_min_bucket_factor: f64,
    /// Name validation scheme.
    pub metric_name_validation_scheme: NameValidation,
    /// Name escaping scheme.
    pub metric_name_escaping_scheme: String,
    /// Log file for scrape failures.
    pub scrape_failure_log_file: String,
    /// Target relabeling.
    pub relabel_configs: Vec<RelabelConfig>,
    /// Metric relabeling.
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// HTTP client options for scrapes.
    pub http_client: HttpClientConfig,
    /// Service discovery, in Prometheus's order: YAML keys alphabetically, each list in
    /// file order, all `static_configs` coalesced and last.
    pub sd_configs: Vec<SdConfig>,
    /// SD mechanisms present in the job that trawl does not implement yet (their targets
    /// are not discovered).
    pub unsupported_sd: Vec<String>,
    /// The `scrape_config_files` file the job came from (`None`: the main file).
    pub file: Option<String>,
    /// The default labels every discovered target gets when absent (job, interval,
    /// timeout, path, scheme, histogram flags, `__param_*`), rendered once, sorted by name.
    pub target_defaults: Vec<(String, String)>,
}

impl ScrapeConfig {
    /// Renders [`ScrapeConfig::target_defaults`] from the other fields.
    pub fn compute_target_defaults(&self) -> Vec<(String, String)> {
        use crate::labels as l;
        let mut d = vec![
            (l::JOB.to_owned(), self.job_name.clone()),
            (
                l::SCRAPE_INTERVAL.to_owned(),
                self.scrape_interval.to_string(),
            ),
            (
                l::SCRAPE_TIMEOUT.to_owned(),
                self.scrape_timeout.to_string(),
            ),
            (l::METRICS_PATH.to_owned(), self.metrics_path.clone()),
            (l::SCHEME.to_owned(), self.scheme.clone()),
        ];
        for (name, on) in self.histogram_flags() {
            d.push((
                name.to_owned(),
                if on { "true" } else { "false" }.to_owned(),
            ));
        }
        for (k, values) in &self.params {
            if let Some(first) = values.first() {
                d.push((format!("{}{k}", l::PARAM_PREFIX), first.clone()));
            }
        }
        d.sort();
        d
    }

    /// The 3.x histogram flag labels and their configured values.
    pub fn histogram_flags(&self) -> [(&'static str, bool); 3] {
        [
            (
                crate::labels::SCRAPE_NATIVE_HISTOGRAMS,
                self.scrape_native_histograms,
            ),
            (
                crate::labels::ALWAYS_SCRAPE_CLASSIC_HISTOGRAMS,
                self.always_scrape_classic_histograms,
            ),
            (
                crate::labels::CONVERT_CLASSIC_HISTOGRAMS_TO_NHCB,
                self.convert_classic_histograms_to_nhcb,
            ),
        ]
    }
}

/// A whole configuration.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Config {
    /// `global:`.
    pub global: GlobalConfig,
    /// `scrape_configs:`, in file order.
    pub scrape_configs: Vec<ScrapeConfig>,
    /// `scrape_config_files:` patterns, resolved against the file's directory. The shell
    /// expands them and hands each file to [`Config::add_scrape_config_file`].
    pub scrape_config_files: Vec<String>,
    /// `remote_write:`.
    pub remote_write: Vec<RemoteWriteConfig>,
    /// Top-level sections present but not used by an agent.
    pub ignored_sections: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    global: Nullable<RawGlobal>,
    #[serde(default)]
    scrape_configs: Option<Vec<Option<RawScrapeConfig>>>,
    #[serde(default)]
    scrape_config_files: Option<Vec<String>>,
    #[serde(default)]
    remote_write: Option<Vec<Option<RawRemoteWrite>>>,
    #[serde(default)]
    rule_files: Option<Vec<LenientString>>,
    #[serde(default)]
    alerting: Nullable<server::RawAlerting>,
    #[serde(default)]
    remote_read: Option<Vec<Option<server::RawRemoteRead>>>,
    #[serde(default)]
    storage: Nullable<server::RawStorage>,
    #[serde(default)]
    tracing: Nullable<server::RawTracing>,
    #[serde(default)]
    otlp: Nullable<server::RawOtlp>,
    #[serde(default)]
    runtime: Nullable<server::RawRuntime>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    #[serde(default)]
    scrape_interval: Nullable<PromDuration>,
    #[serde(default)]
    scrape_timeout: Nullable<PromDuration>,
    #[serde(default)]
    evaluation_interval: Nullable<PromDuration>,
    #[serde(default, rename = "rule_query_offset")]
    _rule_query_offset: Option<PromDuration>,
    #[serde(default)]
    external_labels: Option<BTreeMap<String, LenientString>>,
    #[serde(default, rename = "query_log_file")]
    _query_log_file: Option<String>,
    #[serde(default)]
    scrape_failure_log_file: String,
    #[serde(default)]
    body_size_limit: ByteSize,
    #[serde(default)]
    sample_limit: u64,
    #[serde(default)]
    target_limit: u64,
    #[serde(default)]
    label_limit: u64,
    #[serde(default)]
    label_name_length_limit: u64,
    #[serde(default)]
    label_value_length_limit: u64,
    #[serde(default)]
    keep_dropped_targets: u64,
    #[serde(default)]
    scrape_protocols: Option<Vec<String>>,
    #[serde(default)]
    scrape_native_histograms: Option<Bool11>,
    #[serde(default)]
    always_scrape_classic_histograms: Option<Bool11>,
    #[serde(default)]
    convert_classic_histograms_to_nhcb: Option<Bool11>,
    #[serde(default)]
    extra_scrape_metrics: Option<Bool11>,
    #[serde(default)]
    metric_name_validation_scheme: String,
    #[serde(default)]
    metric_name_escaping_scheme: String,
}

// The scrape config as written: its own fields, one per registered SD mechanism, and the
// HTTP client options.
with_mechanisms! { sd_blocks_struct { with_http_client {
    #[derive(Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawScrapeConfig {
        #[serde(default)]
        job_name: String,
        #[serde(default)]
        honor_labels: Bool11,
        #[serde(default)]
        honor_timestamps: Option<Bool11>,
        #[serde(default)]
        track_timestamps_staleness: Bool11,
        #[serde(default)]
        params: BTreeMap<String, Vec<String>>,
        #[serde(default)]
        scrape_interval: Nullable<PromDuration>,
        #[serde(default)]
        scrape_timeout: Nullable<PromDuration>,
        #[serde(default)]
        scrape_protocols: Option<Vec<String>>,
        #[serde(default)]
        fallback_scrape_protocol: String,
        #[serde(default)]
        scrape_native_histograms: Option<Bool11>,
        #[serde(default)]
        always_scrape_classic_histograms: Option<Bool11>,
        #[serde(default)]
        convert_classic_histograms_to_nhcb: Option<Bool11>,
        #[serde(default)]
        extra_scrape_metrics: Option<Bool11>,
        #[serde(default)]
        enable_compression: Option<Bool11>,
        #[serde(default)]
        metrics_path: Option<String>,
        #[serde(default)]
        scheme: Option<String>,
        #[serde(default)]
        body_size_limit: ByteSize,
        #[serde(default)]
        sample_limit: u64,
        #[serde(default)]
        target_limit: u64,
        #[serde(default)]
        label_limit: u64,
        #[serde(default)]
        label_name_length_limit: u64,
        #[serde(default)]
        label_value_length_limit: u64,
        #[serde(default)]
        keep_dropped_targets: u64,
        #[serde(default)]
        native_histogram_bucket_limit: u64,
        #[serde(default)]
        native_histogram_min_bucket_factor: f64,
        #[serde(default)]
        metric_name_validation_scheme: String,
        #[serde(default)]
        metric_name_escaping_scheme: String,
        #[serde(default)]
        scrape_failure_log_file: String,
        #[serde(default)]
        relabel_configs: Vec<Option<RawRelabelConfig>>,
        #[serde(default)]
        metric_relabel_configs: Vec<Option<RawRelabelConfig>>,
    }
}}}

/// The Go type yaml.v2 names in "field X not found in type T" for a node at `path`.
fn go_type_name(path: &Path) -> &'static str {
    let keys: Vec<&str> = path
        .0
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    if let Some(t) = crate::discovery::registry::go_type(&keys) {
        return t;
    }
    if let Some(t) = server::go_type(&keys) {
        return t;
    }
    match keys.last().copied() {
        Some("relabel_configs" | "metric_relabel_configs" | "write_relabel_configs") => {
            "relabel.plain"
        }
        Some("basic_auth") => "config.BasicAuth",
        Some("authorization") => "config.Authorization",
        Some("queue_config") => "config.QueueConfig",
        Some("metadata_config") => "config.MetadataConfig",
        _ => "config.plain",
    }
}

/// An error during validation: the path of the offending node and the message.
type Invalid = (Path, String);

fn parse_scheme(s: &str, what: &str) -> Result<Option<NameValidation>, String> {
    match s {
        "" => Ok(None),
        "utf8" => Ok(Some(NameValidation::Utf8)),
        "legacy" => Ok(Some(NameValidation::Legacy)),
        other => Err(format!(
            "unknown {what} name validation method specified, must be either '', 'legacy' or 'utf8', got {other}"
        )),
    }
}

fn check_escaping(s: &str, scheme: NameValidation) -> Result<(), String> {
    match s {
        "" | "underscores" | "dots" | "values" => Ok(()),
        "allow-utf-8" if scheme == NameValidation::Legacy => {
            Err("utf8 metric names requested but validation scheme is not set to UTF8".into())
        }
        "allow-utf-8" => Ok(()),
        other => Err(format!(
            "unknown name escaping method specified, must be one of 'allow-utf-8', 'underscores', 'dots', or 'values', got {other}"
        )),
    }
}

fn protocols(list: &[String], job: Option<&str>) -> Result<Vec<ScrapeProtocol>, String> {
    let suffix = job
        .map(|j| format!(" for scrape config with job name {}", quote(j)))
        .unwrap_or_default();
    if list.is_empty() {
        return Err("scrape_protocols cannot be empty".into());
    }
    let mut out = Vec::with_capacity(list.len());
    let mut seen = BTreeSet::new();
    for p in list {
        let Some(proto) = ScrapeProtocol::parse(p) else {
            return Err(format!(
                "scrape_protocols: unknown scrape protocol {p}, supported: {SUPPORTED_PROTOCOLS}{suffix}"
            ));
        };
        if !seen.insert(p.to_ascii_lowercase()) {
            return Err(format!(
                "duplicated protocol in scrape_protocols, got [{}]{suffix}",
                list.join(" ")
            ));
        }
        out.push(proto);
    }
    Ok(out)
}

/// Go's `os.Expand` as Prometheus applies it to external label values: `$VAR`, `${VAR}`,
/// `$$` for a literal `$`; unset variables expand to nothing.
fn expand_env(s: &str, env: &BTreeMap<String, String>) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut lit_start = 0;
    while i < b.len() {
        if b[i] != b'$' || i + 1 >= b.len() {
            i += 1;
            continue;
        }
        out.push_str(&s[lit_start..i]);
        let rest = &s[i + 1..];
        let (name, used) = if let Some(r) = rest.strip_prefix('{') {
            match r.find('}') {
                Some(0) => ("", 2), // "${}": invalid syntax, eaten
                Some(end) => (&r[..end], end + 2),
                None => ("", 1), // "${" unterminated: eat the brace
            }
        } else if rest.starts_with(|c: char| "*#$@!?-".contains(c) || c.is_ascii_digit()) {
            (&rest[..1], 1)
        } else {
            let end = rest
                .bytes()
                .position(|c| !(c.is_ascii_alphanumeric() || c == b'_'))
                .unwrap_or(rest.len());
            if end == 0 {
                // "$" not followed by a name: kept.
                out.push('$');
                i += 1;
                lit_start = i;
                continue;
            }
            (&rest[..end], end)
        };
        if name == "$" {
            out.push('$');
        } else if let Some(v) = env.get(name) {
            out.push_str(v);
        }
        i += 1 + used;
        lit_start = i;
    }
    out.push_str(&s[lit_start..]);
    out
}

struct Ctx<'a> {
    options: &'a ParseOptions,
    cache: RegexCache,
}

impl Config {
    /// Everything the configuration asks for that trawl loads but does not act on, or
    /// that will fail at run time as it does in Prometheus, one line each with its
    /// place: remote-write URLs no request can go to, HTTP client settings trawl does
    /// not carry out (`oauth2`, secret references). `trawl check config` prints them; the
    /// daemon logs them at every load. (Validate-only discovery blocks are reported per
    /// job by the agent, and ignored server sections in [`Config::ignored_sections`].)
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for job in &self.scrape_configs {
            for w in job.http_client.not_acted_on() {
                out.push(format!("job {}: {w}", quote(&job.job_name)));
            }
            // Native histograms go to the WAL; a remote write that does not send them
            // leaves them there (3.x drops them without a word).
            if job.scrape_native_histograms || job.convert_classic_histograms_to_nhcb {
                for rw in self
                    .remote_write
                    .iter()
                    .filter(|rw| !rw.send_native_histograms)
                {
                    out.push(format!(
                        "job {}: native histograms are scraped, but remote_write {} has send_native_histograms: false and will not send them",
                        quote(&job.job_name),
                        quote(if rw.name.is_empty() { &rw.url } else { &rw.name })
                    ));
                }
            }
            for sd in &job.sd_configs {
                if let Some(h) = sd.get::<HttpSdConfig>() {
                    for w in h.http_client.not_acted_on() {
                        out.push(format!(
                            "job {}: http_sd_configs: {w}",
                            quote(&job.job_name)
                        ));
                    }
                }
                let docker = sd
                    .get::<crate::discovery::moby::DockerSdConfig>()
                    .map(|d| ("docker_sd_configs", &d.host, &d.http_client))
                    .or_else(|| {
                        sd.get::<crate::discovery::moby::DockerSwarmSdConfig>()
                            .map(|d| ("dockerswarm_sd_configs", &d.host, &d.http_client))
                    });
                if let Some((key, host, client)) = docker {
                    let job = quote(&job.job_name);
                    match crate::discovery::moby::unused_client_options(host, client) {
                        Some(w) => out.push(format!("job {job}: {key}: {w}")),
                        None => {
                            for w in client.not_acted_on() {
                                out.push(format!("job {job}: {key}: {w}"));
                            }
                        }
                    }
                }
            }
        }
        for (i, rw) in self.remote_write.iter().enumerate() {
            if let Some(w) = rw.warning() {
                out.push(format!("remote_write[{i}]: {w}"));
            }
            for w in rw.http_client.not_acted_on() {
                out.push(format!("remote_write[{i}]: {w}"));
            }
        }
        out
    }

    /// Parses and validates a configuration. Never reads files or the environment.
    pub fn parse(text: &str, options: &ParseOptions) -> Result<Config, ConfigError> {
        let raw: RawConfig = yaml::from_yaml(text, &go_type_name).map_err(|e| ConfigError {
            file_name: options.file_name.clone(),
            line: e.position.map(|p| p.0),
            column: e.position.map(|p| p.1),
            path: e.path.to_string(),
            message: e.message,
        })?;
        let mut ctx = Ctx {
            options,
            cache: RegexCache::default(),
        };
        Config::from_raw(raw, &mut ctx).map_err(|(path, message)| {
            let pos = yaml::locate(text, &path);
            ConfigError {
                file_name: options.file_name.clone(),
                line: pos.map(|p| p.0),
                column: pos.map(|p| p.1),
                path: path.to_string(),
                message,
            }
        })
    }

    fn from_raw(raw: RawConfig, ctx: &mut Ctx<'_>) -> Result<Config, Invalid> {
        let root = Path::default();
        let global = match raw.global {
            Nullable::Value(g) => global_config(g, &root.key("global"), ctx)?,
            _ => GlobalConfig::default(),
        };
        // The sections only a server uses: what 3.x checks while decoding them now,
        // the rest (`server::Pending::finish`) once everything else is validated.
        let server = server::RawSections {
            rule_files: raw.rule_files,
            alerting: raw.alerting,
            remote_read: raw.remote_read,
            storage: raw.storage,
            tracing: raw.tracing,
            otlp: raw.otlp,
            runtime: raw.runtime,
        }
        .decode(&global, ctx)?;
        let paths = PathResolver {
            dir: &ctx.options.base_dir,
        };
        let mut scrape_configs = Vec::new();
        let mut jobs: BTreeSet<String> = BTreeSet::new();
        let sc_path = root.key("scrape_configs");
        for (i, sc) in raw
            .scrape_configs
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let p = sc_path.index(i);
            let Some(sc) = sc else {
                return Err((p, "empty or null scrape config section".into()));
            };
            let sc = scrape_config(sc, &p, &global, ctx)?;
            if !jobs.insert(sc.job_name.clone()) {
                return Err((
                    p.key("job_name"),
                    format!(
                        "found multiple scrape configs with job name {}",
                        quote(&sc.job_name)
                    ),
                ));
            }
            scrape_configs.push(sc);
        }
        let mut scrape_config_files = Vec::new();
        for (i, f) in raw
            .scrape_config_files
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if !files::valid_file_pattern(f) {
                return Err((
                    root.key("scrape_config_files").index(i),
                    format!("invalid scrape config file path {}", quote(f)),
                ));
            }
            scrape_config_files.push(join_dir(paths.dir, f));
        }
        let mut remote_write = Vec::new();
        let rw_path = root.key("remote_write");
        let mut rw_names = BTreeSet::new();
        for (i, rw) in raw.remote_write.unwrap_or_default().into_iter().enumerate() {
            let p = rw_path.index(i);
            let Some(rw) = rw else {
                return Err((p, "empty or null remote write config section".into()));
            };
            let scheme = global.metric_name_validation_scheme;
            let cache = &mut ctx.cache;
            let rw = rw
                .validate(&paths, |_, r| RelabelConfig::from_raw(r, scheme, cache))
                .map_err(|(idx, msg)| match idx {
                    Some(j) => (p.key("write_relabel_configs").index(j), msg),
                    None => (p.clone(), msg),
                })?;
            if !rw.name.is_empty() && !rw_names.insert(rw.name.clone()) {
                return Err((
                    p.key("name"),
                    format!(
                        "found multiple remote write configs with job name {}",
                        quote(&rw.name)
                    ),
                ));
            }
            remote_write.push(rw);
        }
        let ignored = server.finish(&global)?;
        Ok(Config {
            global,
            scrape_configs,
            scrape_config_files,
            remote_write,
            ignored_sections: ignored,
        })
    }

    /// The scrape config of `job`.
    pub fn job(&self, job: &str) -> Option<&ScrapeConfig> {
        self.scrape_configs.iter().find(|s| s.job_name == job)
    }
}

fn global_config(g: RawGlobal, p: &Path, ctx: &mut Ctx<'_>) -> Result<GlobalConfig, Invalid> {
    let d = GlobalConfig::default();
    let scheme = parse_scheme(&g.metric_name_validation_scheme, "global")
        .map_err(|e| (p.key("metric_name_validation_scheme"), e))?
        .unwrap_or(NameValidation::Utf8);
    check_escaping(&g.metric_name_escaping_scheme, scheme)
        .map_err(|e| (p.key("metric_name_escaping_scheme"), e))?;
    let interval = g
        .scrape_interval
        .value()
        .filter(|d| !d.is_zero())
        .unwrap_or(d.scrape_interval);
    let timeout = match g.scrape_timeout.value().filter(|d| !d.is_zero()) {
        Some(t) => {
            if t > interval {
                return Err((
                    p.key("scrape_timeout"),
                    "global scrape timeout greater than scrape interval".into(),
                ));
            }
            t
        }
        None => d.scrape_timeout.min(interval),
    };
    let mut external = Vec::new();
    for (name, value) in g.external_labels.unwrap_or_default() {
        let lp = p.key("external_labels").key(&name);
        if !scheme.is_valid_label_name(&name) {
            return Err((lp, format!("{} is not a valid label name", quote(&name))));
        }
        if name == crate::labels::METRIC_NAME {
            return Err((lp, format!("{} is not a valid label name", quote(&name))));
        }
        let v = expand_env(&value.0, &ctx.options.env);
        external.push((name, v));
    }
    let scrape_protocols_defaulted =
        g.scrape_protocols.is_none() && !g.scrape_native_histograms.is_some_and(|b| b.0);
    let scrape_protocols = match &g.scrape_protocols {
        Some(list) => protocols(list, None).map_err(|e| (p.key("scrape_protocols"), e))?,
        None if g.scrape_native_histograms.is_some_and(|b| b.0) => {
            ScrapeProtocol::PROTO_FIRST.to_vec()
        }
        None => d.scrape_protocols.clone(),
    };
    Ok(GlobalConfig {
        scrape_protocols_defaulted,
        scrape_interval: interval,
        scrape_timeout: timeout,
        evaluation_interval: g
            .evaluation_interval
            .value()
            .filter(|d| !d.is_zero())
            .unwrap_or(d.evaluation_interval),
        external_labels: Labels::from_pairs(external),
        limits: Limits {
            body_size_limit: g.body_size_limit,
            sample_limit: g.sample_limit,
            target_limit: g.target_limit,
            label_limit: g.label_limit,
            label_name_length_limit: g.label_name_length_limit,
            label_value_length_limit: g.label_value_length_limit,
            keep_dropped_targets: g.keep_dropped_targets,
        },
        scrape_protocols,
        scrape_native_histograms: g.scrape_native_histograms.is_some_and(|b| b.0),
        always_scrape_classic_histograms: g.always_scrape_classic_histograms.is_some_and(|b| b.0),
        convert_classic_histograms_to_nhcb: g
            .convert_classic_histograms_to_nhcb
            .is_some_and(|b| b.0),
        extra_scrape_metrics: g.extra_scrape_metrics.is_some_and(|b| b.0),
        metric_name_validation_scheme: scheme,
        metric_name_escaping_scheme: if g.metric_name_escaping_scheme.is_empty() {
            if scheme == NameValidation::Legacy {
                "underscores".into()
            } else {
                d.metric_name_escaping_scheme
            }
        } else {
            g.metric_name_escaping_scheme
        },
        scrape_failure_log_file: join_dir(&ctx.options.base_dir, &g.scrape_failure_log_file),
    })
}

fn relabel_list(
    list: Vec<Option<RawRelabelConfig>>,
    p: &Path,
    null_msg: &str,
    scheme: NameValidation,
    ctx: &mut Ctx<'_>,
) -> Result<Vec<RelabelConfig>, Invalid> {
    let mut out = Vec::with_capacity(list.len());
    for (i, r) in list.into_iter().enumerate() {
        let Some(r) = r else {
            return Err((p.index(i), null_msg.to_owned()));
        };
        out.push(RelabelConfig::from_raw(r, scheme, &mut ctx.cache).map_err(|e| (p.index(i), e))?);
    }
    Ok(out)
}

fn scrape_config(
    mut sc: RawScrapeConfig,
    p: &Path,
    global: &GlobalConfig,
    ctx: &mut Ctx<'_>,
) -> Result<ScrapeConfig, Invalid> {
    if sc.job_name.is_empty() {
        return Err((p.clone(), "job_name is empty".into()));
    }
    let job = sc.job_name.clone();
    let paths = PathResolver {
        dir: &ctx.options.base_dir,
    };
    let http_client = sc
        .take_http_client()
        .validate(&paths)
        .map_err(|e| (p.clone(), e))?;
    let scheme = parse_scheme(&sc.metric_name_validation_scheme, "scrape config")
        .map_err(|e| (p.key("metric_name_validation_scheme"), e))?
        .unwrap_or(global.metric_name_validation_scheme);
    check_escaping(&sc.metric_name_escaping_scheme, scheme)
        .map_err(|e| (p.key("metric_name_escaping_scheme"), e))?;
    let interval = std::mem::take(&mut sc.scrape_interval)
        .value()
        .filter(|d| !d.is_zero())
        .unwrap_or(global.scrape_interval);
    let timeout = match std::mem::take(&mut sc.scrape_timeout)
        .value()
        .filter(|d| !d.is_zero())
    {
        Some(t) if t > interval => {
            return Err((
                p.key("scrape_timeout"),
                format!(
                    "scrape timeout greater than scrape interval for scrape config with job name {}",
                    quote(&job)
                ),
            ));
        }
        Some(t) => t,
        None => global.scrape_timeout.min(interval),
    };
    let native = sc
        .scrape_native_histograms
        .map_or(global.scrape_native_histograms, |b| b.0);
    let scrape_protocols_defaulted = sc.scrape_protocols.is_none()
        && !(native && sc.scrape_native_histograms.is_some())
        && global.scrape_protocols_defaulted;
    let scrape_protocols = match &sc.scrape_protocols {
        Some(list) => protocols(list, Some(&job)).map_err(|e| (p.key("scrape_protocols"), e))?,
        None if native && sc.scrape_native_histograms.is_some() => {
            ScrapeProtocol::PROTO_FIRST.to_vec()
        }
        None => global.scrape_protocols.clone(),
    };
    let fallback_scrape_protocol = if sc.fallback_scrape_protocol.is_empty() {
        None
    } else {
        match ScrapeProtocol::parse(&sc.fallback_scrape_protocol) {
            Some(proto) => Some(proto),
            None => {
                return Err((
                    p.key("fallback_scrape_protocol"),
                    format!(
                        "invalid fallback_scrape_protocol for scrape config with job name {}: unknown scrape protocol {}, supported: {SUPPORTED_PROTOCOLS}",
                        quote(&job),
                        sc.fallback_scrape_protocol
                    ),
                ));
            }
        }
    };
    let relabel_configs = relabel_list(
        std::mem::take(&mut sc.relabel_configs),
        &p.key("relabel_configs"),
        "empty or null target relabeling rule in scrape config",
        scheme,
        ctx,
    )?;
    let metric_relabel_configs = relabel_list(
        std::mem::take(&mut sc.metric_relabel_configs),
        &p.key("metric_relabel_configs"),
        "empty or null metric relabeling rule in scrape config",
        scheme,
        ctx,
    )?;

    // Service discovery, in Prometheus's order: keys alphabetically, static last.
    let sd_cx = SdContext {
        paths,
        no_relabeling: relabel_configs.is_empty(),
    };
    let sd_configs = sc.take_sd_configs(&sd_cx, p)?;
    let unsupported_sd = sd_configs
        .iter()
        .filter_map(|c| c.unsupported())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut config = ScrapeConfig {
        job_name: job,
        honor_labels: sc.honor_labels.0,
        honor_timestamps: sc.honor_timestamps.is_none_or(|b| b.0),
        track_timestamps_staleness: sc.track_timestamps_staleness.0,
        params: sc.params,
        scrape_interval: interval,
        scrape_timeout: timeout,
        scrape_protocols,
        scrape_protocols_defaulted,
        fallback_scrape_protocol,
        scrape_native_histograms: native,
        always_scrape_classic_histograms: sc
            .always_scrape_classic_histograms
            .map_or(global.always_scrape_classic_histograms, |b| b.0),
        convert_classic_histograms_to_nhcb: sc
            .convert_classic_histograms_to_nhcb
            .map_or(global.convert_classic_histograms_to_nhcb, |b| b.0),
        extra_scrape_metrics: sc
            .extra_scrape_metrics
            .map_or(global.extra_scrape_metrics, |b| b.0),
        enable_compression: sc.enable_compression.is_none_or(|b| b.0),
        metrics_path: sc.metrics_path.unwrap_or_else(|| "/metrics".into()),
        scheme: sc.scheme.unwrap_or_else(|| "http".into()),
        limits: Limits {
            body_size_limit: sc.body_size_limit,
            sample_limit: sc.sample_limit,
            target_limit: sc.target_limit,
            label_limit: sc.label_limit,
            label_name_length_limit: sc.label_name_length_limit,
            label_value_length_limit: sc.label_value_length_limit,
            keep_dropped_targets: sc.keep_dropped_targets,
        }
        .inherit(&global.limits),
        native_histogram_bucket_limit: sc.native_histogram_bucket_limit,
        native_histogram_min_bucket_factor: sc.native_histogram_min_bucket_factor,
        metric_name_validation_scheme: scheme,
        // 3.x `ScrapeConfig.Validate`: a blank escaping scheme follows the job's own
        // validation scheme if it set one (legacy → underscores, utf8 → allow-utf-8),
        // else the global escaping scheme.
        metric_name_escaping_scheme: match (
            sc.metric_name_escaping_scheme.is_empty(),
            sc.metric_name_validation_scheme.is_empty(),
        ) {
            (false, _) => sc.metric_name_escaping_scheme,
            (true, true) => global.metric_name_escaping_scheme.clone(),
            (true, false) if scheme == NameValidation::Legacy => "underscores".into(),
            (true, false) => "allow-utf-8".into(),
        },
        scrape_failure_log_file: if sc.scrape_failure_log_file.is_empty() {
            global.scrape_failure_log_file.clone()
        } else {
            join_dir(&ctx.options.base_dir, &sc.scrape_failure_log_file)
        },
        relabel_configs,
        metric_relabel_configs,
        http_client,
        sd_configs,
        unsupported_sd,
        file: None,
        target_defaults: Vec::new(),
    };
    config.target_defaults = config.compute_target_defaults();
    Ok(config)
}

#[cfg(test)]
mod tests;
