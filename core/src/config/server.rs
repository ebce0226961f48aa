//! The top-level sections a Prometheus server reads and an agent has no use for:
//! `rule_files`, `alerting`, `remote_read`, `storage`, `tracing`, `otlp` and `runtime`.
//!
//! trawl is pointed at the configuration its server uses, so these sections must load —
//! but only when the server itself would load them. Each is checked as Prometheus 3.14
//! checks it (`config/config.go`, with the `sigv4`, `units` and `prometheus/common` types
//! it uses): the same fields, defaults, verdicts and messages. Nothing of them is kept
//! beyond the names of the sections present, which [`super::Config::ignored_sections`]
//! lists for the one-line note the shells print.
//!
//! Unlike Prometheus in agent mode, `alerting`, `rule_files` and `remote_read` are
//! accepted, and validated as a server validates them.
//!
//! 3.x checks in two rounds, and so does this module: what 3.x refuses while it decodes
//! the file ([`RawSections::decode`], run once `global` is known) and what it refuses
//! once the whole file is decoded (alerting's relabel rules, null or duplicate
//! `remote_read` entries, the OTLP translation strategy: [`Pending::finish`], run after
//! the rest of the configuration).

use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};

use super::http::{TlsConfig, with_http_client};
use super::paths::PathResolver;
use super::yaml::{Bool11, LenientString, Nullable, Path, lenient_string};
use super::{Ctx, GlobalConfig, Invalid, SdConfig};
use crate::discovery::mechanism::SdContext;
use crate::discovery::registry::{sd_blocks_struct, with_mechanisms};
use crate::duration::PromDuration;
use crate::goquote::quote;
use crate::labels::NameValidation;
use crate::relabel::{RawRelabelConfig, RelabelConfig};

/// The message for a null `alertmanagers` entry. Prometheus 3.14 accepts one while it
/// decodes the file and then dereferences it (`AlertingConfig.Validate`): the server
/// crashes. trawl refuses it instead, where 3.x would crash.
const NULL_ALERTMANAGER: &str = "empty or null Alertmanager config section";

/// The sections as written, moved out of the raw configuration.
#[derive(Default)]
pub(super) struct RawSections {
    /// `rule_files:` (null: not written).
    pub(super) rule_files: Option<Vec<LenientString>>,
    /// `alerting:`.
    pub(super) alerting: Nullable<RawAlerting>,
    /// `remote_read:` (null: not written).
    pub(super) remote_read: Option<Vec<Option<RawRemoteRead>>>,
    /// `storage:`.
    pub(super) storage: Nullable<RawStorage>,
    /// `tracing:`.
    pub(super) tracing: Nullable<RawTracing>,
    /// `otlp:`.
    pub(super) otlp: Nullable<RawOtlp>,
    /// `runtime:`.
    pub(super) runtime: Nullable<RawRuntime>,
}

/// What is left to check once the rest of the configuration is validated.
#[derive(Debug)]
pub(super) struct Pending {
    /// The sections written (with a non-null value), in a fixed order.
    present: Vec<String>,
    /// The first failure of `AlertingConfig.Validate`, in its order.
    alerting: Option<Invalid>,
    /// One element per `remote_read` entry: `None` for a null entry, else its name.
    remote_read: Vec<Option<String>>,
    /// `otlp.translation_strategy`, with its default applied.
    translation_strategy: String,
}

impl RawSections {
    /// The checks 3.x makes while it decodes these sections, then the `rule_files`
    /// patterns. The sections are taken in the order of 3.x's `Config` struct (the order
    /// Prometheus writes them out in); `global` gives the relabel rules their scheme.
    pub(super) fn decode(
        self,
        global: &GlobalConfig,
        ctx: &mut Ctx<'_>,
    ) -> Result<Pending, Invalid> {
        let root = Path::default();
        let present = [
            ("rule_files", self.rule_files.is_some()),
            ("alerting", matches!(self.alerting, Nullable::Value(_))),
            ("remote_read", self.remote_read.is_some()),
            ("storage", matches!(self.storage, Nullable::Value(_))),
            ("tracing", matches!(self.tracing, Nullable::Value(_))),
            ("otlp", matches!(self.otlp, Nullable::Value(_))),
            ("runtime", matches!(self.runtime, Nullable::Value(_))),
        ]
        .into_iter()
        .filter(|(_, written)| *written)
        .map(|(name, _)| name.to_owned())
        .collect();
        // `runtime` has nothing to check beyond its field types (decoded already).
        let alerting = match self.alerting {
            Nullable::Value(a) => a.decode(
                &root.key("alerting"),
                global.metric_name_validation_scheme,
                ctx,
            )?,
            _ => None,
        };
        if let Nullable::Value(s) = self.storage {
            s.check(&root.key("storage"))?;
        }
        if let Nullable::Value(t) = self.tracing {
            t.check(&root.key("tracing"))?;
        }
        let mut remote_read = Vec::new();
        let rr_path = root.key("remote_read");
        for (i, rr) in self.remote_read.unwrap_or_default().into_iter().enumerate() {
            remote_read.push(match rr {
                Some(rr) => Some(rr.check(&rr_path.index(i))?),
                None => None,
            });
        }
        let translation_strategy = match self.otlp {
            Nullable::Absent => DEFAULT_TRANSLATION_STRATEGY.to_owned(),
            // `otlp:` with a null value leaves the zero config: no strategy.
            Nullable::Null => String::new(),
            Nullable::Value(o) => o.check(&root.key("otlp"))?,
        };
        for (i, f) in self.rule_files.unwrap_or_default().iter().enumerate() {
            if !super::files::valid_file_pattern(&f.0) {
                return Err((
                    root.key("rule_files").index(i),
                    format!("invalid rule file path {}", quote(&f.0)),
                ));
            }
        }
        Ok(Pending {
            present,
            alerting,
            remote_read,
            translation_strategy,
        })
    }
}

impl Pending {
    /// The checks 3.x makes after decoding: `AlertingConfig.Validate`, null and
    /// duplicate `remote_read` entries, then (in `config.Load`) the OTLP translation
    /// strategy against the global name validation scheme. Returns the sections present.
    pub(super) fn finish(self, global: &GlobalConfig) -> Result<Vec<String>, Invalid> {
        if let Some(e) = self.alerting {
            return Err(e);
        }
        let root = Path::default();
        let mut names = BTreeSet::new();
        for (i, rr) in self.remote_read.into_iter().enumerate() {
            let p = root.key("remote_read").index(i);
            let Some(name) = rr else {
                return Err((p, "empty or null remote read config section".into()));
            };
            if !name.is_empty() && !names.insert(name.clone()) {
                return Err((
                    p.key("name"),
                    format!(
                        "found multiple remote read configs with job name {}",
                        quote(&name)
                    ),
                ));
            }
        }
        let strategy = self.translation_strategy;
        let at = || root.key("otlp").key("translation_strategy");
        match strategy.as_str() {
            "" | "UnderscoreEscapingWithSuffixes" | "UnderscoreEscapingWithoutSuffixes" => {}
            "NoTranslation" | "NoUTF8EscapingWithSuffixes" => {
                if global.metric_name_validation_scheme == NameValidation::Legacy {
                    return Err((
                        at(),
                        format!(
                            "OTLP translation strategy {} is not allowed when UTF8 is disabled",
                            quote(&strategy)
                        ),
                    ));
                }
            }
            _ => {
                return Err((
                    at(),
                    format!("unsupported OTLP translation strategy {}", quote(&strategy)),
                ));
            }
        }
        Ok(self.present)
    }
}

/// The Go type yaml.v2 names in "field X not found in type T" for a mapping inside one
/// of these sections, by the mapping keys of its path (`None`: the general rules apply —
/// `config.plain` for the types decoded through a `plain` alias, `relabel.plain`,
/// `config.BasicAuth`, …).
pub(super) fn go_type(keys: &[&str]) -> Option<&'static str> {
    Some(match keys {
        ["alerting", "alertmanagers"] => "config.AlertmanagerConfig",
        ["alerting", "alertmanagers", "sigv4"] | ["remote_write", "sigv4"] => "sigv4.plain",
        ["alerting", .., "alert_relabel_configs"] => "relabel.plain",
        ["storage"] => "config.StorageConfig",
        ["storage", "tsdb", "chunk_encoding"] => "config.ChunkEncodingConfig",
        ["storage", "exemplars"] => "config.ExemplarsConfig",
        ["runtime"] => "config.RuntimeConfig",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// alerting

/// `alerting:` as written (`config.AlertingConfig`).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerting {
    #[serde(default)]
    alert_relabel_configs: Option<Vec<Option<RawRelabelConfig>>>,
    #[serde(default)]
    alertmanagers: Option<Vec<Option<RawAlertmanager>>>,
}

// One `alertmanagers` entry as written (`config.AlertmanagerConfig`): its own fields,
// every service-discovery key a scrape config has, and the HTTP client options.
with_mechanisms! { sd_blocks_struct { with_http_client {
    #[derive(Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // Some fields are decoded for their type checks only.
    pub(super) struct RawAlertmanager {
        #[serde(default)]
        sigv4: Nullable<RawSigV4>,
        #[serde(default)]
        scheme: Nullable<LenientString>,
        #[serde(default)]
        path_prefix: LenientString,
        #[serde(default)]
        timeout: Nullable<PromDuration>,
        #[serde(default)]
        api_version: Nullable<ApiVersion>,
        #[serde(default)]
        relabel_configs: Option<Vec<Option<RawRelabelConfig>>>,
        #[serde(default)]
        alert_relabel_configs: Option<Vec<Option<RawRelabelConfig>>>,
    }
}}}

/// `sigv4:` as written (`sigv4.SigV4Config`, v0.4.1).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSigV4 {
    #[serde(default)]
    region: LenientString,
    #[serde(default)]
    access_key: LenientString,
    #[serde(default)]
    secret_key: LenientString,
    #[serde(default)]
    profile: LenientString,
    #[serde(default)]
    role_arn: LenientString,
    #[serde(default)]
    external_id: LenientString,
    #[serde(default)]
    use_fips_sts_endpoint: Bool11,
    #[serde(default)]
    service_name: LenientString,
}

impl RawSigV4 {
    /// The block, validated (`SigV4Config.Validate`).
    pub(crate) fn config(self) -> Result<SigV4Config, String> {
        self.check()?;
        Ok(SigV4Config {
            region: self.region.0,
            access_key: self.access_key.0,
            secret_key: crate::common::http::Secret::new(self.secret_key.0),
            profile: self.profile.0,
            role_arn: self.role_arn.0,
            external_id: self.external_id.0,
            use_fips_sts_endpoint: self.use_fips_sts_endpoint.0,
            service_name: self.service_name.0,
        })
    }

    /// `SigV4Config.Validate`, run as the block is decoded.
    fn check(&self) -> Result<(), String> {
        if self.access_key.0.is_empty() != self.secret_key.0.is_empty() {
            return Err("must provide a AWS SigV4 Access key and Secret Key if credentials are specified in the SigV4 config".into());
        }
        if !self.external_id.0.is_empty() && self.role_arn.0.is_empty() {
            return Err("external_id can only be used with role_arn".into());
        }
        Ok(())
    }
}

pub use crate::auth::SigV4Config;

/// `api_version`: only `v2` decodes (a null value skips the check, as in Go).
#[derive(Default)]
struct ApiVersion;

impl<'de> Deserialize<'de> for ApiVersion {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = lenient_string(d)?;
        if v == "v2" {
            Ok(ApiVersion)
        } else {
            Err(de::Error::custom(format!(
                "expected Alertmanager api version to be one of [v2] but got {v}"
            )))
        }
    }
}

/// The relabel rules of one list, decoded. 3.x refuses an unknown action or a regex that
/// does not compile while it decodes the file, a null rule in the block around the list,
/// and everything else (`relabel.Config.Validate`) only once the file is decoded.
struct Rules {
    /// The first null rule.
    null_at: Option<usize>,
    /// The first rule `relabel.Config.Validate` refuses.
    invalid: Option<Invalid>,
}

/// Decodes the rules of `list` (at `at`) under `scheme`: an error 3.x makes while
/// decoding is returned at once; the others are kept for later.
fn decode_rules(
    list: Option<Vec<Option<RawRelabelConfig>>>,
    at: &Path,
    scheme: NameValidation,
    ctx: &mut Ctx<'_>,
) -> Result<Rules, Invalid> {
    let mut rules = Rules {
        null_at: None,
        invalid: None,
    };
    for (i, r) in list.unwrap_or_default().into_iter().enumerate() {
        let Some(r) = r else {
            rules.null_at.get_or_insert(i);
            continue;
        };
        if let Err(e) = RelabelConfig::from_raw(r, scheme, &mut ctx.cache) {
            // `relabel.Action` and `relabel.Regexp` refuse these in their own decoding.
            if e.starts_with("unknown relabel action ") || e.starts_with("error parsing regexp: ") {
                return Err((at.index(i), e));
            }
            rules.invalid.get_or_insert((at.index(i), e));
        }
    }
    Ok(rules)
}

impl RawAlerting {
    /// `AlertingConfig.UnmarshalYAML` (with each `AlertmanagerConfig.UnmarshalYAML`);
    /// returns the first error `AlertingConfig.Validate` will report, if any.
    fn decode(
        self,
        p: &Path,
        scheme: NameValidation,
        ctx: &mut Ctx<'_>,
    ) -> Result<Option<Invalid>, Invalid> {
        let top = decode_rules(
            self.alert_relabel_configs,
            &p.key("alert_relabel_configs"),
            scheme,
            ctx,
        )?;
        // `Validate`'s order: the global rules, then per Alertmanager its alert rules,
        // then its target rules.
        let mut invalid = top.invalid;
        let am_path = p.key("alertmanagers");
        for (i, am) in self
            .alertmanagers
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let at = am_path.index(i);
            match am {
                Some(am) => {
                    let (alert_rules, target_rules) = am.decode(&at, scheme, ctx)?;
                    invalid = invalid.or(alert_rules).or(target_rules);
                }
                // Where 3.x crashes (see NULL_ALERTMANAGER).
                None => {
                    invalid = invalid.or(Some((at, NULL_ALERTMANAGER.to_owned())));
                }
            }
        }
        if let Some(i) = top.null_at {
            return Err((
                p.key("alert_relabel_configs").index(i),
                "empty or null alert relabeling rule".into(),
            ));
        }
        Ok(invalid)
    }
}

impl RawAlertmanager {
    /// `AlertmanagerConfig.UnmarshalYAML`, in its order; returns the first error
    /// `Validate` will report for the alert rules and for the target rules.
    fn decode(
        mut self,
        p: &Path,
        scheme: NameValidation,
        ctx: &mut Ctx<'_>,
    ) -> Result<(Option<Invalid>, Option<Invalid>), Invalid> {
        // Decoding: the sigv4 block checks itself, then the service-discovery blocks
        // and the relabel rules.
        let sigv4 = match &self.sigv4 {
            Nullable::Value(s) => {
                s.check().map_err(|e| (p.key("sigv4"), e))?;
                true
            }
            _ => false,
        };
        let cx = SdContext {
            paths: PathResolver {
                dir: &ctx.options.base_dir,
            },
            // Static targets are checked below, in 3.x's place for that check.
            no_relabeling: false,
        };
        let sd_configs = self.take_sd_configs(&cx, p)?;
        let has_target_rules = self.relabel_configs.as_ref().is_some_and(|l| !l.is_empty());
        let target_rules = decode_rules(
            self.relabel_configs.take(),
            &p.key("relabel_configs"),
            scheme,
            ctx,
        )?;
        let alert_rules = decode_rules(
            self.alert_relabel_configs.take(),
            &p.key("alert_relabel_configs"),
            scheme,
            ctx,
        )?;
        // Then the block as a whole.
        let http = self
            .take_http_client()
            .check()
            .map_err(|e| (p.clone(), e))?;
        if sigv4
            && (http.basic_auth.is_some() || http.authorization.is_some() || http.oauth2.is_some())
        {
            return Err((
                p.key("sigv4"),
                "at most one of basic_auth, authorization, oauth2, & sigv4 must be configured"
                    .into(),
            ));
        }
        if !has_target_rules {
            check_static_targets(&sd_configs, p)?;
        }
        if let Some(i) = target_rules.null_at {
            return Err((
                p.key("relabel_configs").index(i),
                "empty or null Alertmanager target relabeling rule".into(),
            ));
        }
        if let Some(i) = alert_rules.null_at {
            return Err((
                p.key("alert_relabel_configs").index(i),
                "empty or null Alertmanager alert relabeling rule".into(),
            ));
        }
        Ok((alert_rules.invalid, target_rules.invalid))
    }
}

/// 3.x's `checkStaticTargets`: without target relabeling, a static target is used as
/// written and must not look like a URL.
fn check_static_targets(sd_configs: &[SdConfig], p: &Path) -> Result<(), Invalid> {
    for groups in sd_configs.iter().filter_map(SdConfig::static_groups) {
        // One group per `static_configs` entry, in file order.
        for (g, group) in groups.iter().enumerate() {
            for (t, target) in group.targets.iter().enumerate() {
                let address = target.get(crate::labels::ADDRESS).unwrap_or_default();
                if address.contains('/') {
                    return Err((
                        p.key("static_configs").index(g).key("targets").index(t),
                        format!("{} is not a valid hostname", quote(address)),
                    ));
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// remote_read

with_http_client! {
    /// One `remote_read` entry as written (`config.RemoteReadConfig`).
    #[derive(Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // Some fields are decoded for their type checks only.
    pub(super) struct RawRemoteRead {
        #[serde(default)]
        url: Nullable<GoUrlText>,
        #[serde(default)]
        remote_timeout: Nullable<PromDuration>,
        #[serde(default)]
        chunked_read_limit: Nullable<GoInt<Uint64>>,
        #[serde(default)]
        headers: Nullable<StringMap<false>>,
        #[serde(default)]
        read_recent: Bool11,
        #[serde(default)]
        name: LenientString,
        #[serde(default)]
        required_matchers: Nullable<StringMap<true>>,
        #[serde(default)]
        filter_external_labels: Nullable<Bool11>,
    }
}

/// A `config.URL`: any string Go's `url.Parse` accepts (the empty string included).
#[derive(Default)]
struct GoUrlText;

impl<'de> Deserialize<'de> for GoUrlText {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = lenient_string(d)?;
        crate::gourl::parse(&s).map_err(de::Error::custom)?;
        Ok(GoUrlText)
    }
}

/// The header names 3.x reserves (`reservedHeaders`), lower-cased; `authorization` is
/// refused separately, with its own message.
pub(crate) const RESERVED_HEADERS: [&str; 16] = [
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// 3.x's `validateHeaders` / `validateHeadersForTracing` (which differ in the message
/// for `Authorization`). Go walks the map in random order; trawl reports the first
/// offending header in file order.
fn check_headers(
    headers: &StringMap<false>,
    at: &Path,
    authorization: &str,
) -> Result<(), Invalid> {
    for (name, _) in &headers.0 {
        let lower = name.to_lowercase();
        if lower == "authorization" {
            return Err((at.key(name), authorization.to_owned()));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err((
                at.key(name),
                format!("{name} is a reserved header. It must not be changed"),
            ));
        }
    }
    Ok(())
}

impl RawRemoteRead {
    /// `RemoteReadConfig.UnmarshalYAML`; returns the entry's name.
    fn check(mut self, p: &Path) -> Result<String, Invalid> {
        match self.url {
            Nullable::Value(_) => {}
            Nullable::Null => return Err((p.key("url"), "url for remote_read is empty".into())),
            Nullable::Absent => return Err((p.clone(), "url for remote_read is empty".into())),
        }
        if let Nullable::Value(h) = &self.headers {
            check_headers(
                h,
                &p.key("headers"),
                "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter",
            )?;
        }
        self.take_http_client()
            .check()
            .map_err(|e| (p.clone(), e))?;
        Ok(self.name.0)
    }
}

// ---------------------------------------------------------------------------------------
// storage

/// `storage:` as written (`config.StorageConfig`).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `exemplars` is decoded for its type checks only.
pub(super) struct RawStorage {
    #[serde(default)]
    tsdb: Nullable<RawTsdb>,
    #[serde(default)]
    exemplars: Nullable<RawExemplars>,
}

/// `storage.tsdb:` as written (`config.TSDBConfig`).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Some fields are decoded for their type checks only.
struct RawTsdb {
    #[serde(default)]
    out_of_order_time_window: Nullable<PromDuration>,
    /// 3.x's untagged `OutOfOrderTimeWindow int64` field, which yaml.v2 exposes under
    /// its lower-cased Go name (and 3.x then overwrites).
    #[serde(default)]
    outofordertimewindow: Nullable<GoInt<Int64>>,
    #[serde(default)]
    stale_series_compaction_threshold: Nullable<f64>,
    #[serde(default)]
    chunk_encoding: Nullable<RawChunkEncoding>,
    #[serde(default)]
    retention: Nullable<RawRetention>,
}

/// `storage.tsdb.chunk_encoding:` as written (`config.ChunkEncodingConfig`).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChunkEncoding {
    #[serde(default)]
    floats: LenientString,
}

/// `storage.tsdb.retention:` as written (`config.TSDBRetentionConfig`).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Some fields are decoded for their type checks only.
struct RawRetention {
    #[serde(default)]
    time: Nullable<PromDuration>,
    #[serde(default)]
    size: Nullable<Base2Bytes>,
    #[serde(default)]
    percentage: Nullable<f64>,
}

/// `storage.exemplars:` as written (`config.ExemplarsConfig`; any value is accepted, 0
/// or less disables exemplar storage).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Some fields are decoded for their type checks only.
struct RawExemplars {
    #[serde(default)]
    max_exemplars: Nullable<GoInt<Int64>>,
}

impl RawStorage {
    /// `TSDBConfig.UnmarshalYAML`: the retention block checks itself while it is
    /// decoded, then the float chunk encoding is checked.
    fn check(self, p: &Path) -> Result<(), Invalid> {
        let Nullable::Value(tsdb) = self.tsdb else {
            return Ok(());
        };
        let p = p.key("tsdb");
        if let Nullable::Value(r) = tsdb.retention {
            let at = p.key("retention");
            if let Nullable::Value(size) = r.size
                && size.0 < 0
            {
                return Err((
                    at.key("size"),
                    format!(
                        "'storage.tsdb.retention.size' must be greater than or equal to 0, got {size}"
                    ),
                ));
            }
            // (NaN compares false both ways in Go: it passes.)
            if let Nullable::Value(pct) = r.percentage
                && !pct.is_nan()
                && !(0.0..=100.0).contains(&pct)
            {
                return Err((
                    at.key("percentage"),
                    format!(
                        "'storage.tsdb.retention.percentage' must be in the range [0, 100], got {}",
                        go_float(pct)
                    ),
                ));
            }
        }
        if let Nullable::Value(c) = tsdb.chunk_encoding
            && !matches!(c.floats.0.as_str(), "" | "xor" | "xor2")
        {
            return Err((
                p.key("chunk_encoding").key("floats"),
                format!(
                    "'storage.tsdb.chunk_encoding.floats' must be 'xor' or 'xor2', or the field must be omitted entirely, got {}",
                    quote(&c.floats.0)
                ),
            ));
        }
        Ok(())
    }
}

/// `units.Base2Bytes`: a signed byte count, parsed and printed as
/// `github.com/alecthomas/units` does (so `-1GiB` is read, and refused later by the check
/// on its value rather than by the parser).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Base2Bytes(i64);

/// The unit tables `ParseBase2Bytes` tries in turn: `KiB`-style, then `KB`-style.
const IEC_UNITS: [(&str, f64); 7] = [
    ("B", 1.0),
    ("KiB", 1024.0),
    ("MiB", 1_048_576.0),
    ("GiB", 1_073_741_824.0),
    ("TiB", 1_099_511_627_776.0),
    ("PiB", 1_125_899_906_842_624.0),
    ("EiB", 1_152_921_504_606_846_976.0),
];
const OLD_UNITS: [(&str, f64); 7] = [
    ("B", 1.0),
    ("KB", 1024.0),
    ("MB", 1_048_576.0),
    ("GB", 1_073_741_824.0),
    ("TB", 1_099_511_627_776.0),
    ("PB", 1_125_899_906_842_624.0),
    ("EB", 1_152_921_504_606_846_976.0),
];

impl Base2Bytes {
    /// `units.ParseBase2Bytes`: the `KiB` table first; if that fails, the `KB` table,
    /// whose result (or error) stands. A unit from each table in one value fails both.
    fn parse(s: &str) -> Result<Base2Bytes, String> {
        parse_units(s, &IEC_UNITS)
            .or_else(|_| parse_units(s, &OLD_UNITS))
            .map(Base2Bytes)
    }
}

/// `units.ParseUnit`: `[-+]?([0-9]*(\.[0-9]*)?<unit>)+`, or `0` alone; the parts are
/// summed as floats and converted to an integer at the end.
fn parse_units(orig: &str, units: &[(&str, f64)]) -> Result<i64, String> {
    let invalid = || format!("units: invalid {orig}");
    let (neg, mut s) = match orig.as_bytes().first() {
        Some(b'-') => (true, &orig[1..]),
        Some(b'+') => (false, &orig[1..]),
        _ => (false, orig),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !s.is_empty() {
        if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let (whole, rest) = leading_int(s).ok_or_else(invalid)?;
        let mut part = whole as f64;
        let pre = rest.len() != s.len();
        s = rest;
        let mut post = false;
        if let Some(frac) = s.strip_prefix('.') {
            let (digits, rest) = leading_int(frac).ok_or_else(invalid)?;
            let n = frac.len() - rest.len();
            let mut scale = 1.0;
            for _ in 0..n {
                scale *= 10.0;
            }
            part += digits as f64 / scale;
            post = n > 0;
            s = rest;
        }
        if !pre && !post {
            return Err(invalid());
        }
        let end = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        let (unit, rest) = s.split_at(end);
        let Some((_, mult)) = units.iter().find(|(u, _)| *u == unit) else {
            return Err(format!("units: unknown unit {unit} in {orig}"));
        };
        total += part * mult;
        s = rest;
    }
    if neg {
        total = -total;
    }
    // float64(1<<63 - 1) is 2^63: Go lets exactly 2^63 through, and its conversion to
    // int64 on amd64 then gives the most negative value.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if !(-TWO_63..=TWO_63).contains(&total) {
        return Err("units: overflow parsing unit".into());
    }
    Ok(if total >= TWO_63 {
        i64::MIN
    } else {
        total as i64
    })
}

/// Go's `leadingInt` (from `time`): the leading digits of `s` and the rest; `None` when
/// the number would pass `(1<<63-10)/10` before its last digit.
fn leading_int(s: &str) -> Option<(i64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let mut x: i64 = 0;
    for b in s[..end].bytes() {
        if x >= (i64::MAX - 9) / 10 {
            return None;
        }
        x = x * 10 + i64::from(b - b'0');
    }
    Some((x, &s[end..]))
}

impl fmt::Display for Base2Bytes {
    /// `Base2Bytes.String`: one `<n><unit>` term per non-zero base-1024 digit, largest
    /// first (`1GiB512MiB`, `-1KiB-512B`, `0B`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const PREFIXES: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];
        let mut n = self.0;
        let mut terms = Vec::new();
        for (i, prefix) in PREFIXES.iter().enumerate() {
            let digit = n % 1024;
            if digit != 0 || (i == 0 && n == 0) {
                let suffix = if i == 0 { "B" } else { "iB" };
                terms.push(format!("{digit}{prefix}{suffix}"));
            }
            n /= 1024;
            if n == 0 {
                break;
            }
        }
        terms.reverse();
        f.write_str(&terms.concat())
    }
}

impl<'de> Deserialize<'de> for Base2Bytes {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = lenient_string(d)?;
        Base2Bytes::parse(&s).map_err(de::Error::custom)
    }
}

/// Go's `%v` for a `float64`.
fn go_float(v: f64) -> String {
    crate::goquote::format_go_float(v)
}

// ---------------------------------------------------------------------------------------
// tracing

/// `tracing:` as written (`config.TracingConfig`).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Some fields are decoded for their type checks only.
pub(super) struct RawTracing {
    #[serde(default)]
    client_type: Nullable<TracingClientType>,
    #[serde(default)]
    endpoint: LenientString,
    #[serde(default)]
    sampling_fraction: Nullable<f64>,
    #[serde(default)]
    insecure: Bool11,
    #[serde(default)]
    tls_config: Nullable<TlsConfig>,
    #[serde(default)]
    headers: Nullable<StringMap<false>>,
    #[serde(default)]
    compression: LenientString,
    #[serde(default)]
    timeout: Nullable<PromDuration>,
}

/// `tracing.client_type`: `grpc` or `http` (case-sensitive; a null value skips the
/// check and leaves it empty, as in Go).
#[derive(Default)]
struct TracingClientType;

impl<'de> Deserialize<'de> for TracingClientType {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = lenient_string(d)?;
        if v == "http" || v == "grpc" {
            Ok(TracingClientType)
        } else {
            // (3.x's message says "to be" twice.)
            Err(de::Error::custom(format!(
                "expected tracing client type to be to be http or grpc, but got {v}"
            )))
        }
    }
}

impl RawTracing {
    /// `TracingConfig.UnmarshalYAML`: the TLS block checks itself while it is decoded,
    /// then headers, endpoint and compression, in that order.
    fn check(self, p: &Path) -> Result<(), Invalid> {
        if let Nullable::Value(tls) = &self.tls_config {
            tls.validate().map_err(|e| (p.key("tls_config"), e))?;
        }
        if let Nullable::Value(h) = &self.headers {
            check_headers(
                h,
                &p.key("headers"),
                "custom authorization header configuration is not yet supported",
            )?;
        }
        if self.endpoint.0.is_empty() {
            return Err((p.key("endpoint"), "tracing endpoint must be set".into()));
        }
        let compression = &self.compression.0;
        if !compression.is_empty() && compression != "gzip" {
            return Err((
                p.key("compression"),
                format!("invalid compression type {compression} provided, valid options: gzip"),
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// otlp

/// 3.x's default `otlp.translation_strategy` (when the block is absent or the key is).
const DEFAULT_TRANSLATION_STRATEGY: &str = "UnderscoreEscapingWithSuffixes";

/// `otlp:` as written (`config.OTLPConfig`).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Some fields are decoded for their type checks only.
pub(super) struct RawOtlp {
    #[serde(default)]
    promote_all_resource_attributes: Bool11,
    #[serde(default)]
    promote_resource_attributes: Option<Vec<LenientString>>,
    #[serde(default)]
    ignore_resource_attributes: Option<Vec<LenientString>>,
    #[serde(default)]
    translation_strategy: Nullable<LenientString>,
    #[serde(default)]
    keep_identifying_resource_attributes: Bool11,
    #[serde(default)]
    convert_histograms_to_nhcb: Bool11,
    #[serde(default)]
    promote_scope_metadata: Bool11,
    #[serde(default)]
    label_name_underscore_sanitization: Nullable<Bool11>,
    #[serde(default)]
    label_name_preserve_multiple_underscores: Nullable<Bool11>,
}

impl RawOtlp {
    /// `OTLPConfig.UnmarshalYAML`; returns the translation strategy (checked later,
    /// against the global scheme, as `config.Load` checks it).
    fn check(self, p: &Path) -> Result<String, Invalid> {
        let promote: Vec<String> = texts(self.promote_resource_attributes);
        let ignore: Vec<String> = texts(self.ignore_resource_attributes);
        if self.promote_all_resource_attributes.0 {
            if !promote.is_empty() {
                return Err((
                    p.key("promote_resource_attributes"),
                    "'promote_all_resource_attributes' and 'promote_resource_attributes' cannot be configured simultaneously".into(),
                ));
            }
            sanitize_attributes(&ignore, "ignored").map_err(|e| {
                (
                    p.key("ignore_resource_attributes"),
                    format!("invalid 'ignore_resource_attributes': {e}"),
                )
            })?;
        } else {
            if !ignore.is_empty() {
                return Err((
                    p.key("ignore_resource_attributes"),
                    "'ignore_resource_attributes' cannot be configured unless 'promote_all_resource_attributes' is true".into(),
                ));
            }
            sanitize_attributes(&promote, "promoted").map_err(|e| {
                (
                    p.key("promote_resource_attributes"),
                    format!("invalid 'promote_resource_attributes': {e}"),
                )
            })?;
        }
        Ok(match self.translation_strategy {
            Nullable::Absent => DEFAULT_TRANSLATION_STRATEGY.to_owned(),
            Nullable::Null => String::new(),
            Nullable::Value(s) => s.0,
        })
    }
}

/// A Go `[]string` (a null item is the empty string).
fn texts(v: Option<Vec<LenientString>>) -> Vec<String> {
    v.unwrap_or_default().into_iter().map(|s| s.0).collect()
}

/// 3.x's `sanitizeAttributes`: every empty (after trimming) and repeated attribute, one
/// error a line (`errors.Join`).
fn sanitize_attributes(attributes: &[String], adjective: &str) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    let mut errors = Vec::new();
    for a in attributes {
        let a = a.trim();
        if a.is_empty() {
            errors.push(format!("empty {adjective} OTel resource attribute"));
        } else if !seen.insert(a) {
            errors.push(format!(
                "duplicated {adjective} OTel resource attribute {}",
                quote(a)
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

// ---------------------------------------------------------------------------------------
// runtime

/// `runtime:` as written (`config.RuntimeConfig`; `gogc` 0 or absent means the
/// environment's `GOGC`, else 75).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Some fields are decoded for their type checks only.
pub(super) struct RawRuntime {
    #[serde(default)]
    gogc: Nullable<GoInt<Int>>,
}

// ---------------------------------------------------------------------------------------
// Go-typed scalars

/// A Go integer type, as yaml.v2 decodes into it.
trait GoIntKind {
    /// The Go type's name, for "cannot unmarshal … into T".
    const NAME: &'static str;
    /// `uint64` rather than a signed 64-bit type.
    const UNSIGNED: bool;
}

/// Go's `int` (64 bits).
enum Int {}
impl GoIntKind for Int {
    const NAME: &'static str = "int";
    const UNSIGNED: bool = false;
}

/// Go's `int64`.
enum Int64 {}
impl GoIntKind for Int64 {
    const NAME: &'static str = "int64";
    const UNSIGNED: bool = false;
}

/// Go's `uint64`.
enum Uint64 {}
impl GoIntKind for Uint64 {
    const NAME: &'static str = "uint64";
    const UNSIGNED: bool = true;
}

/// An integer field as yaml.v2 fills it: an integer in the type's range, or a float Go
/// converts (`gogc: 1.5` is accepted, as 1); strings, booleans, sequences and mappings
/// are refused with yaml.v2's message. Only the verdict matters here: the value is not
/// kept.
struct GoInt<K>(PhantomData<K>);

impl<'de, K: GoIntKind> Deserialize<'de> for GoInt<K> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(GoIntVisitor::<K>(PhantomData))
    }
}

struct GoIntVisitor<K>(PhantomData<K>);

/// yaml.v2's type error for a scalar (its text cut to 7 characters and `...` past 10).
fn cannot_unmarshal<E: de::Error>(tag: &str, text: &str, into: &str) -> E {
    let shown = if text.chars().count() > 10 {
        format!("{}...", text.chars().take(7).collect::<String>())
    } else {
        text.to_owned()
    };
    E::custom(format!("cannot unmarshal {tag} `{shown}` into {into}"))
}

impl<'de, K: GoIntKind> Visitor<'de> for GoIntVisitor<K> {
    type Value = GoInt<K>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a Go {}", K::NAME)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<GoInt<K>, E> {
        if K::UNSIGNED && v < 0 {
            return Err(cannot_unmarshal("!!int", &v.to_string(), K::NAME));
        }
        Ok(GoInt(PhantomData))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<GoInt<K>, E> {
        if !K::UNSIGNED && i64::try_from(v).is_err() {
            return Err(cannot_unmarshal("!!int", &v.to_string(), K::NAME));
        }
        Ok(GoInt(PhantomData))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<GoInt<K>, E> {
        // `resolved <= math.MaxInt64` (resp. MaxUint64), compared as floats: NaN and
        // values past 2^63 (2^64) fail, anything below passes.
        let max = if K::UNSIGNED {
            18_446_744_073_709_551_616.0
        } else {
            9_223_372_036_854_775_808.0
        };
        if v <= max {
            Ok(GoInt(PhantomData))
        } else {
            Err(cannot_unmarshal("!!float", &go_float(v), K::NAME))
        }
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<GoInt<K>, E> {
        Err(cannot_unmarshal("!!bool", &v.to_string(), K::NAME))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<GoInt<K>, E> {
        // YAML 1.1 booleans other than true/false reach here as strings.
        let tag = match v {
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "n" | "N" | "no" | "No"
            | "NO" | "off" | "Off" | "OFF" => "!!bool",
            _ => "!!str",
        };
        Err(cannot_unmarshal(tag, v, K::NAME))
    }
    fn visit_unit<E: de::Error>(self) -> Result<GoInt<K>, E> {
        Ok(GoInt(PhantomData))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<GoInt<K>, A::Error> {
        Err(de::Error::custom(format!(
            "cannot unmarshal !!seq into {}",
            K::NAME
        )))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<GoInt<K>, A::Error> {
        Err(de::Error::custom(format!(
            "cannot unmarshal !!map into {}",
            K::NAME
        )))
    }
}

/// A Go `map[string]string` (or, with `LABELS`, a `model.LabelSet`, whose names must be
/// valid UTF-8 label names — only the empty name is not) as yaml.v2 decodes it: scalar
/// keys and values read as strings, a repeated key refused; in file order.
#[derive(Default)]
struct StringMap<const LABELS: bool>(Vec<(String, String)>);

impl<'de, const LABELS: bool> Deserialize<'de> for StringMap<LABELS> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const L: bool>;
        impl<'de, const L: bool> Visitor<'de> for V<L> {
            type Value = StringMap<L>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_unit<E: de::Error>(self) -> Result<StringMap<L>, E> {
                Ok(StringMap(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringMap<L>, A::Error> {
                let mut seen = BTreeSet::new();
                let mut out = Vec::new();
                while let Some(LenientString(key)) = map.next_key()? {
                    if L && !NameValidation::Utf8.is_valid_label_name(&key) {
                        return Err(de::Error::custom(format!(
                            "{} is not a valid label name",
                            quote(&key)
                        )));
                    }
                    let LenientString(value) = map.next_value()?;
                    if !seen.insert(key.clone()) {
                        return Err(de::Error::custom(format!(
                            "key {} already set in map",
                            quote(&key)
                        )));
                    }
                    out.push((key, value));
                }
                Ok(StringMap(out))
            }
        }
        d.deserialize_map(V::<LABELS>)
    }
}

#[cfg(test)]
mod tests {
    use super::{Base2Bytes, go_float};
    use crate::config::{Config, ConfigError, ParseOptions};

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(
            text,
            &ParseOptions::for_path("/etc/prometheus/prometheus.yml"),
        )
    }

    /// The sections listed for a configuration that must load.
    fn listed(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(c) => c.ignored_sections,
            Err(e) => panic!("refused:\n{text}\n=> {e}"),
        }
    }

    /// The error of a configuration that must be refused: (line, column, message).
    fn refused_at(text: &str) -> (usize, usize, String) {
        match parse(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => (e.line.unwrap_or(0), e.column.unwrap_or(0), e.message),
        }
    }

    /// The message of a configuration that must be refused.
    fn refused(text: &str) -> String {
        refused_at(text).2
    }

    /// A configuration with one Alertmanager whose body is `lines` (each indented
    /// below `- `; the first lands on line 3, column 7).
    fn am(lines: &[&str]) -> String {
        let mut t = String::from("alerting:\n  alertmanagers:\n");
        for (i, l) in lines.iter().enumerate() {
            t.push_str(if i == 0 { "    - " } else { "      " });
            t.push_str(l);
            t.push('\n');
        }
        t
    }

    const ALL: &str = r#"
global:
  scrape_interval: 15s
runtime:
  gogc: 50
alerting:
  alert_relabel_configs:
    - source_labels: [dc]
      regex: (.+)\d+
      target_label: dc
  alertmanagers:
    - scheme: https
      path_prefix: /am
      timeout: 5s
      api_version: v2
      basic_auth: {username: u, password: p}
      tls_config: {insecure_skip_verify: true}
      static_configs:
        - targets: ["am-1:9093", "am-2:9093"]
          labels: {site: a}
      file_sd_configs:
        - files: [am/*.json]
      dns_sd_configs:
        - names: [_am._tcp.example.org]
      relabel_configs:
        - source_labels: [__meta_x]
          action: keep
      alert_relabel_configs:
        - action: labeldrop
          regex: tmp_.*
    - sigv4: {region: eu-west-1, access_key: a, secret_key: s, role_arn: r, external_id: e}
      static_configs:
        - targets: [am-3:9093]
    - static_configs:
        - targets: ["https://am-4:9093/x"]
      relabel_configs:
        - source_labels: [__address__]
          target_label: __param_target
rule_files:
  - rules/*.yml
  - /etc/prometheus/alerts.yml
scrape_configs:
  - job_name: self
    static_configs:
      - targets: [localhost:9090]
storage:
  tsdb:
    out_of_order_time_window: 30m
    outofordertimewindow: 5
    stale_series_compaction_threshold: 0.5
    chunk_encoding: {floats: xor2}
    retention: {time: 15d, size: 512MB, percentage: 80.5}
  exemplars:
    max_exemplars: 100000
tracing:
  client_type: http
  endpoint: otel:4318
  sampling_fraction: 0.1
  insecure: true
  tls_config: {server_name: otel}
  headers: {X-Tenant: a}
  compression: gzip
  timeout: 5s
remote_read:
  - url: http://thanos:10902/api/v1/read
    name: thanos
    remote_timeout: 30s
    chunked_read_limit: 1e6
    headers: {X-Scope-OrgID: t1}
    read_recent: true
    required_matchers: {env: prod}
    filter_external_labels: false
    authorization: {credentials: c}
  - url: http://other/read
otlp:
  promote_resource_attributes: [service.name, " service.namespace "]
  translation_strategy: NoTranslation
  keep_identifying_resource_attributes: true
  convert_histograms_to_nhcb: true
  promote_scope_metadata: true
  label_name_underscore_sanitization: false
  label_name_preserve_multiple_underscores: false
"#;

    #[test]
    fn a_full_server_configuration_loads_and_its_sections_are_listed() {
        let c = parse(ALL).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.ignored_sections,
            [
                "rule_files",
                "alerting",
                "remote_read",
                "storage",
                "tracing",
                "otlp",
                "runtime"
            ]
        );
        // The rest of the file is unaffected.
        assert_eq!(c.scrape_configs.len(), 1);
    }

    #[test]
    fn null_and_empty_sections() {
        // Written as null: accepted (Go leaves the zero value) and not listed.
        let text = "rule_files:\nalerting:\nremote_read:\nstorage:\ntracing:\notlp:\nruntime:\n";
        assert!(listed(text).is_empty());
        // Empty blocks: listed; each is as valid as its zero value (tracing is not: it
        // needs an endpoint, see below).
        let text =
            "rule_files: []\nalerting: {}\nremote_read: []\nstorage: {}\notlp: {}\nruntime: {}\n";
        assert_eq!(
            listed(text),
            [
                "rule_files",
                "alerting",
                "remote_read",
                "storage",
                "otlp",
                "runtime"
            ]
        );
        // Null fields inside the blocks.
        listed(
            "alerting:\n  alertmanagers:\n    - relabel_configs:\n      static_configs:\n      api_version:\n      sigv4:\n",
        );
        listed("storage:\n  tsdb:\n  exemplars:\n");
        listed("storage:\n  tsdb:\n    retention:\n    chunk_encoding:\n");
        listed("tracing:\n  endpoint: x\n  client_type:\n  tls_config:\n  headers:\n");
        listed("runtime:\n  gogc:\n");
    }

    #[test]
    fn unknown_fields_name_prometheus_go_types() {
        for (text, ty) in [
            ("alerting: {bogus: 1}\n", "config.plain"),
            (
                "alerting: {alertmanagers: [{bogus: 1}]}\n",
                "config.AlertmanagerConfig",
            ),
            (
                "alerting: {alertmanagers: [{sigv4: {bogus: 1}}]}\n",
                "sigv4.plain",
            ),
            (
                "alerting: {alert_relabel_configs: [{bogus: 1}]}\n",
                "relabel.plain",
            ),
            (
                "alerting: {alertmanagers: [{alert_relabel_configs: [{bogus: 1}]}]}\n",
                "relabel.plain",
            ),
            (
                "alerting: {alertmanagers: [{relabel_configs: [{bogus: 1}]}]}\n",
                "relabel.plain",
            ),
            (
                "alerting: {alertmanagers: [{basic_auth: {bogus: 1}}]}\n",
                "config.BasicAuth",
            ),
            (
                "alerting: {alertmanagers: [{file_sd_configs: [{bogus: 1}]}]}\n",
                "file.plain",
            ),
            ("remote_read: [{url: x, bogus: 1}]\n", "config.plain"),
            ("storage: {bogus: 1}\n", "config.StorageConfig"),
            ("storage: {tsdb: {bogus: 1}}\n", "config.plain"),
            ("storage: {tsdb: {retention: {bogus: 1}}}\n", "config.plain"),
            (
                "storage: {tsdb: {chunk_encoding: {bogus: 1}}}\n",
                "config.ChunkEncodingConfig",
            ),
            (
                "storage: {exemplars: {bogus: 1}}\n",
                "config.ExemplarsConfig",
            ),
            ("tracing: {endpoint: x, bogus: 1}\n", "config.plain"),
            ("otlp: {bogus: 1}\n", "config.plain"),
            ("runtime: {bogus: 1}\n", "config.RuntimeConfig"),
        ] {
            assert_eq!(
                refused(text),
                format!("field bogus not found in type {ty}"),
                "{text}"
            );
        }
        // Duplicate keys name the type too.
        assert_eq!(
            refused("runtime:\n  gogc: 1\n  gogc: 2\n"),
            "field gogc already set in type config.RuntimeConfig"
        );
    }

    #[test]
    fn rule_files() {
        assert_eq!(
            listed("rule_files: [a.yml, 'rules/*.yml', 'r/x*.yml?', 5, ~]\n"),
            ["rule_files"]
        );
        assert_eq!(
            refused_at("rule_files:\n  - ok.yml\n  - rules/*/x.yml\n"),
            (3, 5, r#"invalid rule file path "rules/*/x.yml""#.into())
        );
        assert_eq!(
            refused("rule_files: ['a*b*/c']\n"),
            r#"invalid rule file path "a*b*/c""#
        );
    }

    #[test]
    fn alertmanager_errors_and_their_positions() {
        let cases: &[(&[&str], (usize, usize), &str)] = &[
            (
                &["api_version: v1"],
                (3, 20),
                "expected Alertmanager api version to be one of [v2] but got v1",
            ),
            (
                &["sigv4: {access_key: a}"],
                (3, 14),
                "must provide a AWS SigV4 Access key and Secret Key if credentials are specified in the SigV4 config",
            ),
            (
                &["sigv4: {secret_key: s}"],
                (3, 14),
                "must provide a AWS SigV4 Access key and Secret Key if credentials are specified in the SigV4 config",
            ),
            (
                &["sigv4: {external_id: e}"],
                (3, 14),
                "external_id can only be used with role_arn",
            ),
            (
                &["dns_sd_configs: [{names: []}]"],
                (3, 32),
                "DNS-SD config must contain at least one SRV record name",
            ),
            (
                &["static_configs: [~]"],
                (3, 24),
                "empty or null section in static_configs",
            ),
            (
                &["bearer_token: a", "bearer_token_file: f"],
                (3, 7),
                "at most one of bearer_token & bearer_token_file must be configured",
            ),
            (
                &["basic_auth: {username: u}", "sigv4: {}"],
                (4, 14),
                "at most one of basic_auth, authorization, oauth2, & sigv4 must be configured",
            ),
            (
                &["bearer_token: t", "sigv4: {region: r}"],
                (4, 14),
                "at most one of basic_auth, authorization, oauth2, & sigv4 must be configured",
            ),
            (
                &["oauth2: {client_id: i, token_url: u}", "sigv4: {}"],
                (4, 14),
                "at most one of basic_auth, authorization, oauth2, & sigv4 must be configured",
            ),
            (
                &[
                    "static_configs:",
                    "  - targets: [a:1]",
                    "  - targets: [b:1, 'http://b:9093']",
                ],
                (5, 26),
                r#""http://b:9093" is not a valid hostname"#,
            ),
            (
                &["relabel_configs: [{action: keep, regex: x}, ~]"],
                (3, 51),
                "empty or null Alertmanager target relabeling rule",
            ),
            (
                &["alert_relabel_configs: [~]"],
                (3, 31),
                "empty or null Alertmanager alert relabeling rule",
            ),
            (
                &["relabel_configs: [{action: bogus}]"],
                (3, 25),
                r#"unknown relabel action "bogus""#,
            ),
            (
                &["alert_relabel_configs: [{regex: 'a**'}]"],
                (3, 31),
                "error parsing regexp: invalid nested repetition operator: `**`",
            ),
            (
                &["timeout: 5"],
                (3, 16),
                "not a valid duration string: \"5\"",
            ),
        ];
        for (lines, pos, msg) in cases {
            let text = am(lines);
            let (l, c, m) = refused_at(&text);
            assert_eq!((m.as_str(), (l, c)), (*msg, *pos), "{text}");
        }
        // With target relabeling, a URL in the static targets is left to the rules.
        listed(&am(&[
            "static_configs: [{targets: ['http://am:9093/x']}]",
            "relabel_configs: [{action: keep, regex: x}]",
        ]));
    }

    /// Each Alertmanager below holds several errors; 3.x reports them in the order of
    /// `AlertmanagerConfig.UnmarshalYAML` (decoding, null SD entries, HTTP client,
    /// authentication, static targets, null rules), and relabel rules are validated only
    /// after the whole file is decoded.
    #[test]
    fn alertmanager_errors_come_in_prometheus_order() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["api_version: v1", "bearer_token: a", "bearer_token_file: b"],
                "expected Alertmanager api version",
            ),
            (
                &[
                    "sigv4: {access_key: a}",
                    "bearer_token: a",
                    "bearer_token_file: b",
                ],
                "must provide a AWS SigV4",
            ),
            (
                &[
                    "static_configs: [~]",
                    "bearer_token: a",
                    "bearer_token_file: b",
                ],
                "empty or null section in static_configs",
            ),
            (
                &[
                    "relabel_configs: [{action: bogus}]",
                    "bearer_token: a",
                    "bearer_token_file: b",
                ],
                "unknown relabel action",
            ),
            (
                &[
                    "bearer_token: a",
                    "bearer_token_file: b",
                    "basic_auth: {username: u}",
                    "sigv4: {}",
                ],
                "at most one of bearer_token & bearer_token_file",
            ),
            (
                &[
                    "basic_auth: {username: u}",
                    "sigv4: {}",
                    "static_configs: [{targets: [a/b]}]",
                ],
                "at most one of basic_auth, authorization, oauth2, & sigv4",
            ),
            (
                &[
                    "static_configs: [{targets: [a/b]}]",
                    "alert_relabel_configs: [~]",
                ],
                "is not a valid hostname",
            ),
            (
                &[
                    "relabel_configs: [~]",
                    "alert_relabel_configs: [~]",
                    "static_configs: [{targets: [a/b]}]",
                ],
                "empty or null Alertmanager target relabeling rule",
            ),
            // A rule `Validate` refuses loses to any decoding error...
            (
                &[
                    "relabel_configs: [{action: hashmod, target_label: t}]",
                    "bearer_token: a",
                    "bearer_token_file: b",
                ],
                "at most one of bearer_token & bearer_token_file",
            ),
            (
                &["relabel_configs: [{action: hashmod, target_label: t}, ~]"],
                "empty or null Alertmanager target relabeling rule",
            ),
            // ...and alert rules are validated before target rules.
            (
                &[
                    "relabel_configs: [{action: hashmod, target_label: t}]",
                    "alert_relabel_configs: [{action: replace}]",
                ],
                "relabel configuration for replace action requires 'target_label' value",
            ),
        ];
        for (lines, want) in cases {
            let text = am(lines);
            let got = refused(&text);
            assert!(got.contains(want), "{text}\n=> {got}\nwant {want}");
        }
    }

    #[test]
    fn alerting_level_rules_and_null_alertmanagers() {
        assert_eq!(
            refused_at("alerting:\n  alert_relabel_configs:\n    - ~\n"),
            (3, 7, "empty or null alert relabeling rule".into())
        );
        // Every Alertmanager is decoded before the null rule is noticed.
        assert_eq!(
            refused(
                "alerting:\n  alert_relabel_configs: [~]\n  alertmanagers: [{api_version: v1}]\n"
            ),
            "expected Alertmanager api version to be one of [v2] but got v1"
        );
        // Validate: the global rules first, then each Alertmanager's.
        assert_eq!(
            refused(
                "alerting:\n  alert_relabel_configs: [{action: hashmod, target_label: t}]\n  alertmanagers: [{alert_relabel_configs: [{action: replace}]}]\n"
            ),
            "relabel configuration for hashmod requires non-zero modulus"
        );
        // The global scheme applies to the rules.
        let rule = "alerting:\n  alert_relabel_configs: [{target_label: a.b, replacement: x}]\n";
        listed(rule);
        assert_eq!(
            refused(&format!(
                "global: {{metric_name_validation_scheme: legacy}}\n{rule}"
            )),
            r#""a.b" is invalid 'target_label' for replace action"#
        );
        // A null Alertmanager: Prometheus 3.14 accepts it while decoding and then
        // crashes (nil dereference in AlertingConfig.Validate); trawl refuses it there.
        assert_eq!(
            refused_at(
                "alerting:\n  alertmanagers:\n    - static_configs: [{targets: [a:1]}]\n    - ~\n"
            ),
            (4, 7, "empty or null Alertmanager config section".into())
        );
        assert_eq!(
            refused("alerting:\n  alertmanagers: [~, {api_version: v1}]\n"),
            "expected Alertmanager api version to be one of [v2] but got v1"
        );
        assert_eq!(
            refused(
                "alerting:\n  alert_relabel_configs: [{action: hashmod, target_label: t}]\n  alertmanagers: [~]\n"
            ),
            "relabel configuration for hashmod requires non-zero modulus"
        );
        // Alerting's relabel rules are validated after the scrape configs.
        assert_eq!(
            refused(
                "alerting:\n  alert_relabel_configs: [{action: hashmod, target_label: t}]\nscrape_configs:\n  - job_name: ''\n"
            ),
            "job_name is empty"
        );
    }

    #[test]
    fn remote_read() {
        let rr = |body: &str| format!("remote_read:\n  - {body}\n");
        listed(&rr("url: http://a/read"));
        // `config.URL` takes any string Go's url.Parse accepts.
        listed(&rr("url: ''"));
        listed(&rr("url: relative/path"));
        for (body, msg) in [
            ("name: x", "url for remote_read is empty"),
            ("url:", "url for remote_read is empty"),
            (
                "url: 'http://a b/'",
                r#"parse "http://a b/": invalid character " " in host name"#,
            ),
            (
                "{url: x, headers: {authorization: b}}",
                "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter",
            ),
            (
                "{url: x, headers: {AUTHORIZATION: b}}",
                "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter",
            ),
            (
                "{url: x, headers: {Host: b}}",
                "Host is a reserved header. It must not be changed",
            ),
            (
                "{url: x, headers: {X-Amz-Date: b}}",
                "X-Amz-Date is a reserved header. It must not be changed",
            ),
            (
                "{url: x, headers: {Keep-Alive: b}}",
                "Keep-Alive is a reserved header. It must not be changed",
            ),
            (
                "{url: x, headers: {X-Prometheus-Remote-Read-Version: b}}",
                "X-Prometheus-Remote-Read-Version is a reserved header. It must not be changed",
            ),
            (
                "{url: x, basic_auth: {username: u}, oauth2: {client_id: c, token_url: t}}",
                "at most one of basic_auth, oauth2 & authorization must be configured",
            ),
            (
                "{url: x, required_matchers: {'': v}}",
                r#""" is not a valid label name"#,
            ),
            (
                "{url: x, headers: {a: b, a: c}}",
                r#"key "a" already set in map"#,
            ),
            (
                "{url: x, chunked_read_limit: -1}",
                "cannot unmarshal !!int `-1` into uint64",
            ),
        ] {
            assert_eq!(refused(&rr(body)), msg, "{body}");
        }
        // Order: url, headers, HTTP client.
        assert_eq!(
            refused(&rr(
                "{headers: {Host: h}, bearer_token: a, bearer_token_file: b}"
            )),
            "url for remote_read is empty"
        );
        assert_eq!(
            refused(&rr(
                "{url: x, headers: {Host: h}, bearer_token: a, bearer_token_file: b}"
            )),
            "Host is a reserved header. It must not be changed"
        );
        // Positions: the header, the entry.
        assert_eq!(
            refused_at(
                "remote_read:\n  - url: x\n    headers:\n      X-Ok: 1\n      Content-Type: y\n"
            )
            .0,
            5
        );
        assert_eq!(
            refused_at("remote_read:\n  - url: x\n  - ~\n"),
            (3, 5, "empty or null remote read config section".into())
        );
        assert_eq!(
            refused_at("remote_read:\n  - {url: x, name: a}\n  - {url: y, name: a}\n"),
            (
                3,
                20,
                r#"found multiple remote read configs with job name "a""#.into()
            )
        );
        // Unnamed entries never clash.
        listed("remote_read: [{url: x}, {url: y}, {url: z, name: ''}]\n");
        // A null entry is noticed after every entry is decoded.
        assert_eq!(
            refused("remote_read: [~, {url: x, headers: {Host: h}}]\n"),
            "Host is a reserved header. It must not be changed"
        );
    }

    #[test]
    fn storage() {
        let retention = |body: &str| format!("storage:\n  tsdb:\n    retention:\n      {body}\n");
        for body in [
            "size: 0",
            "size: 1GiB",
            "size: 512MB",
            "size: 1.5TB",
            "size: -0",
            "percentage: 0",
            "percentage: 100",
            "percentage: .nan",
            "time: 30d",
        ] {
            listed(&retention(body));
        }
        for (body, msg) in [
            (
                "size: -1GiB",
                "'storage.tsdb.retention.size' must be greater than or equal to 0, got -1GiB",
            ),
            (
                "size: -1536B",
                "'storage.tsdb.retention.size' must be greater than or equal to 0, got -1KiB-512B",
            ),
            (
                "size: -1.5MB",
                "'storage.tsdb.retention.size' must be greater than or equal to 0, got -1MiB-512KiB",
            ),
            // 2^63 passes Go's overflow check and wraps to the most negative int64.
            (
                "size: 8EiB",
                "'storage.tsdb.retention.size' must be greater than or equal to 0, got -8EiB",
            ),
            ("size: 100", "units: unknown unit  in 100"),
            ("size: 1kB", "units: unknown unit kB in 1kB"),
            // One unit from each table: both parses fail, the second one's error stands.
            ("size: 1GiB512MB", "units: unknown unit GiB in 1GiB512MB"),
            ("size: GB", "units: invalid GB"),
            // Too large in the `KiB` table, then an unknown unit in the `KB` table.
            ("size: 9EiB", "units: unknown unit EiB in 9EiB"),
            ("size: 9EB", "units: overflow parsing unit"),
            (
                "percentage: 150",
                "'storage.tsdb.retention.percentage' must be in the range [0, 100], got 150",
            ),
            (
                "percentage: -0.5",
                "'storage.tsdb.retention.percentage' must be in the range [0, 100], got -0.5",
            ),
            (
                "percentage: 1e6",
                "'storage.tsdb.retention.percentage' must be in the range [0, 100], got 1e+06",
            ),
            (
                "percentage: .inf",
                "'storage.tsdb.retention.percentage' must be in the range [0, 100], got +Inf",
            ),
            ("time: 1x", "unknown unit \"x\" in duration \"1x\""),
        ] {
            assert_eq!(refused(&retention(body)), msg, "{body}");
        }
        assert_eq!(
            refused_at(&retention("size: -1GiB")),
            (
                4,
                13,
                "'storage.tsdb.retention.size' must be greater than or equal to 0, got -1GiB"
                    .into()
            )
        );
        let floats =
            |v: &str| format!("storage:\n  tsdb:\n    chunk_encoding:\n      floats: {v}\n");
        for ok in ["xor", "xor2", "''", "~"] {
            listed(&floats(ok));
        }
        assert_eq!(
            refused_at(&floats("XOR")),
            (
                4,
                15,
                r#"'storage.tsdb.chunk_encoding.floats' must be 'xor' or 'xor2', or the field must be omitted entirely, got "XOR""#.into()
            )
        );
        // The retention block is checked while it is decoded, before the encoding; size
        // before percentage.
        assert_eq!(
            refused(
                "storage:\n  tsdb:\n    chunk_encoding: {floats: x}\n    retention: {percentage: 101, size: -1B}\n"
            ),
            "'storage.tsdb.retention.size' must be greater than or equal to 0, got -1B"
        );
        // Go types.
        listed(
            "storage:\n  exemplars: {max_exemplars: -1}\n  tsdb: {stale_series_compaction_threshold: 2}\n",
        );
        assert_eq!(
            refused("storage: {exemplars: {max_exemplars: lots}}\n"),
            "cannot unmarshal !!str `lots` into int64"
        );
        assert_eq!(
            refused("storage: {tsdb: {outofordertimewindow: 10m}}\n"),
            "cannot unmarshal !!str `10m` into int64"
        );
    }

    #[test]
    fn tracing() {
        let t = |body: &str| format!("tracing:\n  {body}\n");
        listed(&t("{endpoint: localhost:4317}"));
        listed(&t("{endpoint: x, client_type: grpc, compression: ''}"));
        for (body, msg) in [
            (
                "{endpoint: x, client_type: udp}",
                "expected tracing client type to be to be http or grpc, but got udp",
            ),
            (
                "{endpoint: x, client_type: HTTP}",
                "expected tracing client type to be to be http or grpc, but got HTTP",
            ),
            (
                "{endpoint: x, headers: {Authorization: b}}",
                "custom authorization header configuration is not yet supported",
            ),
            (
                "{endpoint: x, headers: {User-Agent: b}}",
                "User-Agent is a reserved header. It must not be changed",
            ),
            ("{}", "tracing endpoint must be set"),
            ("{endpoint: ''}", "tracing endpoint must be set"),
            (
                "{endpoint: x, compression: zstd}",
                "invalid compression type zstd provided, valid options: gzip",
            ),
            (
                "{endpoint: x, tls_config: {ca: a, ca_file: b}}",
                "at most one of ca, ca_file & ca_ref must be configured",
            ),
        ] {
            assert_eq!(refused(&t(body)), msg, "{body}");
        }
        // Order: TLS (decoded first), headers, endpoint, compression.
        assert_eq!(
            refused(&t(
                "{compression: zstd, headers: {Host: h}, tls_config: {cert: c}}"
            )),
            "exactly one of key or key_file must be configured when a client certificate is configured"
        );
        assert_eq!(
            refused(&t("{compression: zstd, headers: {Host: h}}")),
            "Host is a reserved header. It must not be changed"
        );
        assert_eq!(
            refused_at("tracing:\n  compression: zstd\n"),
            (2, 3, "tracing endpoint must be set".into())
        );
        assert_eq!(
            refused_at("tracing:\n  endpoint: x\n  compression: zstd\n"),
            (
                3,
                16,
                "invalid compression type zstd provided, valid options: gzip".into()
            )
        );
    }

    #[test]
    fn otlp() {
        let o = |body: &str| format!("otlp:\n  {body}\n");
        listed(&o(
            "{promote_all_resource_attributes: true, ignore_resource_attributes: [a, b]}",
        ));
        listed(&o(
            "{promote_all_resource_attributes: true, promote_resource_attributes: []}",
        ));
        listed(&o("{promote_resource_attributes: [a, ' b', c]}"));
        for s in [
            "UnderscoreEscapingWithSuffixes",
            "UnderscoreEscapingWithoutSuffixes",
            "NoTranslation",
            "NoUTF8EscapingWithSuffixes",
            "''",
            "~",
        ] {
            listed(&o(&format!("{{translation_strategy: {s}}}")));
        }
        for (body, msg) in [
            (
                "{promote_all_resource_attributes: true, promote_resource_attributes: [a]}",
                "'promote_all_resource_attributes' and 'promote_resource_attributes' cannot be configured simultaneously",
            ),
            (
                "{ignore_resource_attributes: [a]}",
                "'ignore_resource_attributes' cannot be configured unless 'promote_all_resource_attributes' is true",
            ),
            (
                "{promote_resource_attributes: [a, ' a ', '', b, ~, b]}",
                "invalid 'promote_resource_attributes': duplicated promoted OTel resource attribute \"a\"\nempty promoted OTel resource attribute\nempty promoted OTel resource attribute\nduplicated promoted OTel resource attribute \"b\"",
            ),
            (
                "{promote_all_resource_attributes: true, ignore_resource_attributes: [' ', x, x]}",
                "invalid 'ignore_resource_attributes': empty ignored OTel resource attribute\nduplicated ignored OTel resource attribute \"x\"",
            ),
            (
                "{translation_strategy: underscoreEscapingWithSuffixes}",
                r#"unsupported OTLP translation strategy "underscoreEscapingWithSuffixes""#,
            ),
        ] {
            assert_eq!(refused(&o(body)), msg, "{body}");
        }
        // Without UTF-8 names, only the escaping strategies.
        let legacy = "global: {metric_name_validation_scheme: legacy}\n";
        listed(&format!(
            "{legacy}otlp: {{translation_strategy: UnderscoreEscapingWithoutSuffixes}}\n"
        ));
        listed(&format!("{legacy}otlp:\n"));
        for s in ["NoTranslation", "NoUTF8EscapingWithSuffixes"] {
            assert_eq!(
                refused_at(&format!("{legacy}otlp:\n  translation_strategy: {s}\n")),
                (
                    3,
                    25,
                    format!(
                        "OTLP translation strategy \"{s}\" is not allowed when UTF8 is disabled"
                    )
                )
            );
        }
        // The strategy is checked last, after the rest of the file.
        assert_eq!(
            refused("otlp: {translation_strategy: x}\nremote_read: [~]\n"),
            "empty or null remote read config section"
        );
    }

    #[test]
    fn runtime() {
        for v in ["50", "-1", "0", "1.5", "0x10", "~"] {
            listed(&format!("runtime:\n  gogc: {v}\n"));
        }
        assert_eq!(
            refused_at("runtime:\n  gogc: off\n"),
            (2, 9, "cannot unmarshal !!bool `off` into int".into())
        );
        assert_eq!(
            refused("runtime:\n  gogc: 'twenty-five percent'\n"),
            "cannot unmarshal !!str `twenty-...` into int"
        );
        assert_eq!(
            refused("runtime:\n  gogc: 9223372036854775808\n"),
            "cannot unmarshal !!int `9223372...` into int"
        );
        assert_eq!(
            refused("runtime:\n  gogc: {a: 1}\n"),
            "cannot unmarshal !!map into int"
        );
    }

    #[test]
    fn base2_bytes_like_alecthomas_units() {
        let p = |s: &str| Base2Bytes::parse(s).map(|b| b.0);
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("+0"), Ok(0));
        assert_eq!(p("1KiB"), Ok(1024));
        assert_eq!(p("1KB"), Ok(1024));
        assert_eq!(p("1GiB512MiB"), Ok(3 << 29));
        assert_eq!(p(".5KB"), Ok(512));
        assert_eq!(p("1.B"), Ok(1));
        assert_eq!(p("-2MB"), Ok(-(2 << 20)));
        assert_eq!(p("+"), Err("units: invalid +".into()));
        assert_eq!(p("."), Err("units: invalid .".into()));
        assert_eq!(p("1K"), Err("units: unknown unit K in 1K".into()));
        assert_eq!(
            p("99999999999999999999B"),
            Err("units: invalid 99999999999999999999B".into())
        );
        for (n, s) in [
            (0, "0B"),
            (1, "1B"),
            (1536, "1KiB512B"),
            (1 << 30, "1GiB"),
            (-(1 << 30), "-1GiB"),
            (i64::MIN, "-8EiB"),
            (i64::MAX, "7EiB1023PiB1023TiB1023GiB1023MiB1023KiB1023B"),
        ] {
            assert_eq!(Base2Bytes(n).to_string(), s);
        }
    }

    #[test]
    fn floats_print_as_go_v() {
        for (v, s) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (150.0, "150"),
            (100.5, "100.5"),
            (-0.5, "-0.5"),
            (123456.0, "123456"),
            (999999.5, "999999.5"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e21, "1e+21"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(go_float(v), s, "{v}");
        }
    }
}
