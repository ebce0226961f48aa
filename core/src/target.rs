//! From a discovered target to a scrape target: discovered labels, relabeling,
//! finalisation and the target URL (Prometheus 3.x `PopulateLabels`), plus the JSON
//! shape of a target in `/api/v1/targets`.

use std::fmt::Write;

use serde::Serialize;

use crate::config::{ScrapeConfig, TargetGroup};
use crate::duration::PromDuration;
use crate::goquote::quote;
use crate::labels::{self, Labels, LabelsBuilder};
use crate::relabel::{self, Outcome};

/// A target after relabeling and finalisation: everything needed to scrape it. Its
/// identity in a pool is the whole value (full label set and URL). Its order is an
/// implementation detail (a URL digest, the URL, the labels' canonical encoding) chosen to
/// make ordered containers fast; views sort by URL themselves.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScrapeTarget {
    /// The full final label set, including `__address__`, `__scheme__`,
    /// `__metrics_path__`, `__param_*`, the interval and timeout labels and any other
    /// `__` label left by relabeling; without `__meta_*`.
    pub labels: Labels,
    /// The URL to scrape (shared: the target's identity, its loop and its requests hold it).
    pub url: std::sync::Arc<str>,
    /// Scrape interval (from `__scrape_interval__`).
    pub interval: PromDuration,
    /// Scrape timeout (from `__scrape_timeout__`).
    pub timeout: PromDuration,
    /// A digest of the URL, kept inline so that ordered containers of targets compare
    /// two integers before touching the URL's and labels' heap memory.
    digest: u64,
}

impl Ord for ScrapeTarget {
    fn cmp(&self, other: &ScrapeTarget) -> std::cmp::Ordering {
        self.digest
            .cmp(&other.digest)
            .then_with(|| self.url.as_bytes().cmp(other.url.as_bytes()))
            .then_with(|| self.labels.encoded().cmp(other.labels.encoded()))
            .then_with(|| self.interval.cmp(&other.interval))
            .then_with(|| self.timeout.cmp(&other.timeout))
    }
}

impl PartialOrd for ScrapeTarget {
    fn partial_cmp(&self, other: &ScrapeTarget) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl ScrapeTarget {
    /// A target from its parts.
    pub fn new(
        labels: Labels,
        url: std::sync::Arc<str>,
        interval: PromDuration,
        timeout: PromDuration,
    ) -> ScrapeTarget {
        ScrapeTarget {
            digest: xxhash_rust::xxh64::xxh64(url.as_bytes(), 0),
            labels,
            url,
            interval,
            timeout,
        }
    }

    /// The labels attached to every scraped series (those not starting with `__`).
    pub fn public_labels(&self) -> Labels {
        self.labels.without_reserved()
    }

    /// Prometheus's target hash (3.x label hash and the URL), which picks the scrape phase.
    pub fn hash(&self) -> u64 {
        crate::hash::target_hash(self.labels.hash(), &self.url)
    }
}

/// What became of one discovered target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Populated {
    /// It is to be scraped.
    Active(ScrapeTarget),
    /// A relabel rule dropped it.
    Dropped {
        /// Index of the dropping rule in `relabel_configs`.
        rule: usize,
    },
}

/// Steps 1–4: the discovered labels of a target, borrowing from its sources.
pub fn discovered_builder<'a>(
    target: &'a Labels,
    group: &'a Labels,
    cfg: &'a ScrapeConfig,
    lb: &mut LabelsBuilder<'a>,
) {
    lb.reset_layered(target, group, &cfg.target_defaults);
}

/// The discovered labels of a target (what the targets API shows before relabeling).
pub fn discovered_labels(target: &Labels, group: &Labels, cfg: &ScrapeConfig) -> Labels {
    let mut lb = LabelsBuilder::with_capacity(target.len() + group.len() + 10);
    discovered_builder(target, group, cfg, &mut lb);
    lb.labels()
}

fn go_parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            quote(s)
        )),
    }
}

/// Relabels and finalises one target (`PopulateLabels`). `lb` is scratch space reused
/// across calls. Errors carry Prometheus's texts.
pub fn populate<'a>(
    target: &'a Labels,
    group: &'a Labels,
    cfg: &'a ScrapeConfig,
    lb: &mut LabelsBuilder<'a>,
) -> Result<Populated, String> {
    discovered_builder(target, group, cfg, lb);
    if let Outcome::Dropped { rule } = relabel::process(&cfg.relabel_configs, lb) {
        return Ok(Populated::Dropped { rule });
    }
    finalise(lb, cfg)
}

/// [`populate`] for one target of a group whose shared layer (group labels and config
/// defaults, from [`group_layer`]) is saved: only the target's own labels are set on top.
pub fn populate_in_group<'a>(
    target: &'a Labels,
    layer: &labels::SavedLabels<'a>,
    cfg: &'a ScrapeConfig,
    lb: &mut LabelsBuilder<'a>,
) -> Result<Populated, String> {
    lb.restore(layer);
    for (n, v) in target.iter() {
        lb.set(n, v);
    }
    if let Outcome::Dropped { rule } = relabel::process(&cfg.relabel_configs, lb) {
        return Ok(Populated::Dropped { rule });
    }
    finalise(lb, cfg)
}

/// The labels every target of a group starts from: the group's labels over the config
/// defaults (a target's own labels go on top, in [`populate_in_group`]).
pub fn group_layer<'a>(
    group: &'a Labels,
    cfg: &'a ScrapeConfig,
    lb: &mut LabelsBuilder<'a>,
) -> labels::SavedLabels<'a> {
    // The group over itself adds nothing: the defaults fill in what it lacks.
    lb.reset_layered(group, group, &cfg.target_defaults);
    lb.save()
}

/// Steps 6–13 on relabeled labels.
pub fn finalise(lb: &mut LabelsBuilder<'_>, cfg: &ScrapeConfig) -> Result<Populated, String> {
    lb.drop_meta();
    // The URL is built in the builder's reused buffer (taken now: the labels below borrow
    // the builder; an error return just leaves a fresh buffer), then copied once into the
    // shared URL.
    let mut buf = std::mem::take(&mut lb.url_buf);
    // One pass over what is left (the reserved and public labels) picks out every label
    // finalisation reads.
    let mut address = None;
    let mut interval_raw = "";
    let mut timeout_raw = "";
    let mut scheme = "";
    let mut path = "";
    let mut has_instance = false;
    let mut flags: [Option<&str>; 3] = [None; 3];
    for (n, v) in lb.iter() {
        // Every name wanted here starts with '_' or is `instance`.
        if !matches!(n.as_bytes().first(), Some(b'_' | b'i')) {
            continue;
        }
        match n {
            labels::ADDRESS => address = Some(v),
            labels::SCRAPE_INTERVAL => interval_raw = v,
            labels::SCRAPE_TIMEOUT => timeout_raw = v,
            labels::SCHEME => scheme = v,
            labels::METRICS_PATH => path = v,
            labels::INSTANCE => has_instance = true,
            labels::CONVERT_CLASSIC_HISTOGRAMS_TO_NHCB => flags[0] = Some(v),
            labels::ALWAYS_SCRAPE_CLASSIC_HISTOGRAMS => flags[1] = Some(v),
            labels::SCRAPE_NATIVE_HISTOGRAMS => flags[2] = Some(v),
            _ => {}
        }
    }
    let Some(address) = address else {
        return Err("no address".into());
    };
    if address.contains('/') {
        return Err(format!("{} is not a valid hostname", quote(address)));
    }
    let interval = PromDuration::parse(interval_raw)
        .map_err(|e| format!("error parsing scrape interval: {e}"))?;
    if interval.is_zero() {
        return Err("scrape interval cannot be 0".into());
    }
    let timeout = PromDuration::parse(timeout_raw)
        .map_err(|e| format!("error parsing scrape timeout: {e}"))?;
    if timeout.is_zero() {
        return Err("scrape timeout cannot be 0".into());
    }
    if timeout > interval {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({} > {})",
            quote(timeout_raw),
            quote(interval_raw)
        ));
    }
    for (value, what) in flags.iter().zip([
        "convert classic histograms to nhcb",
        "always scrape classic histograms",
        "scrape native histograms",
    ]) {
        if let Some(v) = value {
            go_parse_bool(v).map_err(|e| format!("error parsing {what}: {e}"))?;
        }
    }
    url_from(
        scheme,
        address,
        path,
        lb.with_prefix(labels::PARAM_PREFIX),
        &cfg.params,
        &mut buf,
    );
    let url: std::sync::Arc<str> = buf.as_str().into();
    if !has_instance {
        let address = lb.get_cow(labels::ADDRESS).unwrap_or_default();
        lb.set(labels::INSTANCE, address);
    }
    lb.url_buf = buf;
    Ok(Populated::Active(ScrapeTarget::new(
        lb.labels(),
        url,
        interval,
        timeout,
    )))
}

/// Relabels every target of a group. Failures read
/// `instance <i> in group <source>: <error>`, as Prometheus logs them.
pub fn targets_from_group(
    group: &TargetGroup,
    cfg: &ScrapeConfig,
) -> Vec<Result<Populated, String>> {
    let mut lb = LabelsBuilder::new();
    group
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            populate(t, &group.labels, cfg, &mut lb)
                .map_err(|e| format!("instance {i} in group {}: {e}", group.source))
        })
        .collect()
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// The target URL: `__scheme__://__address__` + `__metrics_path__` + the query built
/// from the config's `params` where each `__param_<k>` label replaces the first value of
/// `k` (or adds it); keys sorted, as Go's `url.Values.Encode`.
pub fn target_url(
    labels: &Labels,
    params: &std::collections::BTreeMap<String, Vec<String>>,
) -> String {
    let mut url = String::new();
    url_from(
        labels.get(labels::SCHEME).unwrap_or(""),
        labels.get(labels::ADDRESS).unwrap_or(""),
        labels.get(labels::METRICS_PATH).unwrap_or(""),
        labels
            .iter()
            .filter(|(n, _)| n.starts_with(labels::PARAM_PREFIX)),
        params,
        &mut url,
    );
    url
}

fn url_from<'s>(
    scheme: &str,
    host: &str,
    path: &str,
    param_labels: impl Iterator<Item = (&'s str, &'s str)>,
    params: &std::collections::BTreeMap<String, Vec<String>>,
    url: &mut String,
) {
    url.clear();
    if !scheme.is_empty() {
        url.push_str(scheme);
        url.push(':');
    }
    if !scheme.is_empty() || !host.is_empty() {
        url.push_str("//");
        url.push_str(host);
    }
    if !path.is_empty() && !path.starts_with('/') && !host.is_empty() {
        url.push('/');
    }
    crate::gourl::path_escape(path, url);

    let overrides: Vec<(&str, &str)> = param_labels
        .filter_map(|(n, v)| n.strip_prefix(labels::PARAM_PREFIX).map(|k| (k, v)))
        .collect();
    if params.is_empty() && overrides.is_empty() {
        return;
    }
    let mut merged: std::collections::BTreeMap<&str, Vec<&str>> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
        .collect();
    for (k, v) in overrides {
        let e = merged.entry(k).or_default();
        if e.is_empty() {
            e.push(v);
        } else {
            e[0] = v;
        }
    }
    let mut first = true;
    for (k, vs) in merged {
        for v in vs {
            url.push(if first { '?' } else { '&' });
            first = false;
            query_escape(k, url);
            url.push('=');
            query_escape(v, url);
        }
    }
}

/// Health of a target, as the targets API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not scraped yet.
    Unknown,
    /// Last scrape succeeded.
    Up,
    /// Last scrape failed.
    Down,
}

impl Health {
    /// Prometheus's word for it (`up`, `down`, `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// One active target in `/api/v1/targets`, in Prometheus's JSON shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveTargetJson {
    /// Labels before relabeling.
    pub discovered_labels: Labels,
    /// Public labels after relabeling.
    pub labels: Labels,
    /// The job.
    pub scrape_pool: String,
    /// The URL scraped.
    pub scrape_url: String,
    /// The URL with the host's external name.
    pub global_url: String,
    /// Last error, empty if none.
    pub last_error: String,
    /// Time of the last scrape (RFC 3339).
    pub last_scrape: String,
    /// Duration of the last scrape in seconds.
    pub last_scrape_duration: f64,
    /// Health.
    pub health: Health,
    /// The `__scrape_interval__` label value.
    pub scrape_interval: String,
    /// The `__scrape_timeout__` label value.
    pub scrape_timeout: String,
}

/// One dropped target in `/api/v1/targets`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DroppedTargetJson {
    /// Labels before relabeling.
    pub discovered_labels: Labels,
    /// The job.
    pub scrape_pool: String,
}

impl ActiveTargetJson {
    /// The API entry of a target not yet scraped.
    pub fn new(job: &str, discovered: Labels, target: &ScrapeTarget) -> ActiveTargetJson {
        ActiveTargetJson {
            discovered_labels: discovered,
            labels: target.public_labels(),
            scrape_pool: job.to_owned(),
            scrape_url: target.url.to_string(),
            global_url: target.url.to_string(),
            last_error: String::new(),
            last_scrape: "0001-01-01T00:00:00Z".into(),
            last_scrape_duration: 0.0,
            health: Health::Unknown,
            scrape_interval: target
                .labels
                .get(labels::SCRAPE_INTERVAL)
                .unwrap_or("")
                .into(),
            scrape_timeout: target
                .labels
                .get(labels::SCRAPE_TIMEOUT)
                .unwrap_or("")
                .into(),
        }
    }
}

mod plan;
pub use plan::GroupPlan;

#[cfg(test)]
mod tests;
