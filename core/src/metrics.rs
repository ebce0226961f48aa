//! Self-metrics: families with their help and type, in one renderer for `/metrics`.
//!
//! Every shell and every part of trawl adds its families to one [`Metrics`]; it renders
//! them in the text format 0.0.4 as client_golang writes it: `# HELP` and `# TYPE`
//! before each family, families ordered by name, series by labels, label values and help
//! texts escaped as the format says (`\\`, `\"`, `\n`), histograms as `_bucket`/`_sum`/
//! `_count` series and summaries with their `quantile` series.
//!
//! [`Summary`] and [`Buckets`] are the estimators behind Prometheus's summaries and
//! classic histograms. Both are pure: the caller passes the time (a summary forgets
//! observations after ten minutes, as client_golang's does).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::goquote::format_go_float;
use crate::time::Instant;

/// A family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A counter (the name ends in `_total` by convention).
    Counter,
    /// A gauge.
    Gauge,
    /// A classic histogram.
    Histogram,
    /// A summary.
    Summary,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }
}

/// One series' value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A counter's or gauge's value.
    Number(f64),
    /// A histogram: cumulative counts per upper bound (without `+Inf`), sum, count.
    Histogram {
        /// `(le, cumulative count)`, bounds ascending.
        buckets: Vec<(f64, u64)>,
        /// Sum of observations.
        sum: f64,
        /// Number of observations (the `+Inf` bucket).
        count: u64,
    },
    /// A summary: `(quantile, value)` pairs, sum, count.
    Summary {
        /// Quantiles ascending (NaN values when nothing was observed lately).
        quantiles: Vec<(f64, f64)>,
        /// Sum of observations.
        sum: f64,
        /// Number of observations.
        count: u64,
    },
}

/// A series: labels and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Labels (any order: rendered sorted by name).
    pub labels: Vec<(&'static str, String)>,
    /// Value.
    pub value: Value,
}

/// A metric family.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    /// Help text.
    pub help: &'static str,
    /// Type.
    pub kind: Kind,
    /// Series.
    pub series: Vec<Series>,
}

/// Self-metric families by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    families: BTreeMap<&'static str, Family>,
}

impl Metrics {
    /// No families.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Declares family `name` (a family with no series is not rendered, as client_golang
    /// leaves a vector with no children out) and returns it.
    pub fn family(&mut self, name: &'static str, help: &'static str, kind: Kind) -> &mut Family {
        self.families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: Vec::new(),
        })
    }

    fn push(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: Vec<(&'static str, String)>,
        value: Value,
    ) {
        self.family(name, help, kind)
            .series
            .push(Series { labels, value });
    }

    /// Adds a counter series.
    pub fn counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: Vec<(&'static str, String)>,
        v: f64,
    ) {
        self.push(name, help, Kind::Counter, labels, Value::Number(v));
    }

    /// Adds a gauge series.
    pub fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: Vec<(&'static str, String)>,
        v: f64,
    ) {
        self.push(name, help, Kind::Gauge, labels, Value::Number(v));
    }

    /// Adds a histogram series.
    pub fn histogram(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: Vec<(&'static str, String)>,
        h: &Buckets,
    ) {
        self.push(name, help, Kind::Histogram, labels, h.value());
    }

    /// Adds a summary series (quantiles as of `now`).
    pub fn summary(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: Vec<(&'static str, String)>,
        s: &Summary,
        now: Instant,
    ) {
        self.push(name, help, Kind::Summary, labels, s.value(now));
    }

    /// Moves every family of `other` in (series of a family both have are joined).
    pub fn extend(&mut self, other: Metrics) {
        for (name, f) in other.families {
            match self.families.get_mut(name) {
                Some(mine) => mine.series.extend(f.series),
                None => {
                    self.families.insert(name, f);
                }
            }
        }
    }

    /// The family `name`.
    pub fn get(&self, name: &str) -> Option<&Family> {
        self.families.get(name)
    }

    /// The value of the counter or gauge series `name` whose labels include `labels`
    /// (the first in label order), for tests and tools.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let f = self.families.get(name)?;
        let mut matching: Vec<&Series> = f
            .series
            .iter()
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .collect();
        matching.sort_by(|a, b| sorted(&a.labels).cmp(&sorted(&b.labels)));
        matching.first().and_then(|s| match s.value {
            Value::Number(v) => Some(v),
            _ => None,
        })
    }

    /// The sum of a counter or gauge over its series (0 if absent).
    pub fn sum(&self, name: &str) -> f64 {
        self.families.get(name).map_or(0.0, |f| {
            f.series
                .iter()
                .map(|s| match s.value {
                    Value::Number(v) => v,
                    _ => 0.0,
                })
                .sum()
        })
    }

    /// Names of the families that have series, in order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.families
            .iter()
            .filter(|(_, f)| !f.series.is_empty())
            .map(|(n, _)| *n)
    }

    /// The text format 0.0.4 (`text/plain; version=0.0.4`), as client_golang's
    /// `expfmt.MetricFamilyToText` writes it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, f) in &self.families {
            if f.series.is_empty() {
                continue;
            }
            out.push_str("# HELP ");
            out.push_str(name);
            out.push(' ');
            escape(&mut out, f.help, false);
            let _ = writeln!(out, "\n# TYPE {name} {}", f.kind.as_str());
            let mut series: Vec<(Vec<(&str, &str)>, &Value)> = f
                .series
                .iter()
                .map(|s| (sorted(&s.labels), &s.value))
                .collect();
            series.sort_by(|a, b| a.0.cmp(&b.0));
            for (labels, value) in series {
                match value {
                    Value::Number(v) => line(&mut out, name, "", &labels, None, *v),
                    Value::Histogram {
                        buckets,
                        sum,
                        count,
                    } => {
                        for (le, n) in buckets {
                            let le = format_go_float(*le);
                            line(
                                &mut out,
                                name,
                                "_bucket",
                                &labels,
                                Some(("le", &le)),
                                *n as f64,
                            );
                        }
                        line(
                            &mut out,
                            name,
                            "_bucket",
                            &labels,
                            Some(("le", "+Inf")),
                            *count as f64,
                        );
                        line(&mut out, name, "_sum", &labels, None, *sum);
                        line(&mut out, name, "_count", &labels, None, *count as f64);
                    }
                    Value::Summary {
                        quantiles,
                        sum,
                        count,
                    } => {
                        for (q, v) in quantiles {
                            let q = format_go_float(*q);
                            line(&mut out, name, "", &labels, Some(("quantile", &q)), *v);
                        }
                        line(&mut out, name, "_sum", &labels, None, *sum);
                        line(&mut out, name, "_count", &labels, None, *count as f64);
                    }
                }
            }
        }
        out
    }
}

fn sorted<'a>(labels: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    let mut v: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    v.sort();
    v
}

/// The text format's escaping: `\` and newline always, `"` in label values.
fn escape(out: &mut String, s: &str, quote: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn line(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(&str, &str)],
    extra: Option<(&str, &str)>,
    v: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        let mut first = true;
        for (k, val) in labels.iter().copied().chain(extra) {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(k);
            out.push_str("=\"");
            escape(out, val, true);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&format_go_float(v));
    out.push('\n');
}

/// client_golang's default histogram buckets (`prometheus.DefBuckets`).
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The buckets of 3.x's `prometheus_target_interval_length_histogram_seconds` and
/// `prometheus_target_sync_length_histogram_seconds`.
pub const INTERVAL_BUCKETS: &[f64] = &[0.01, 0.1, 1.0, 10.0];

/// A classic histogram's state: counts per bucket, sum, count.
#[derive(Clone, Debug, PartialEq)]
pub struct Buckets {
    bounds: &'static [f64],
    /// Non-cumulative counts per bound.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Buckets {
    /// An empty histogram with these upper bounds (ascending, `+Inf` implied).
    pub fn new(bounds: &'static [f64]) -> Buckets {
        Buckets {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Counts one observation.
    pub fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    /// Observations counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The series' value.
    pub fn value(&self) -> Value {
        let mut acc = 0;
        Value::Histogram {
            buckets: self
                .bounds
                .iter()
                .zip(&self.counts)
                .map(|(b, n)| {
                    acc += n;
                    (*b, acc)
                })
                .collect(),
            sum: self.sum,
            count: self.count,
        }
    }
}

/// The quantiles Prometheus's summaries report (`0.01`…`0.99`).
pub const QUANTILES: [f64; 5] = [0.01, 0.05, 0.5, 0.9, 0.99];
/// How long a summary remembers an observation (client_golang's `DefMaxAge`).
pub const MAX_AGE: Duration = Duration::from_secs(600);
const AGE_BUCKETS: usize = 5;
/// Distinct values a window keeps before it halves its resolution.
const WINDOW_KEYS: usize = 2048;

/// A summary's state: quantiles over the last [`MAX_AGE`] (in five windows that expire
/// in turn, as client_golang's age buckets do), all-time sum and count.
///
/// Where client_golang keeps a targeted-quantile stream, a window here counts
/// observations per value rounded to 0.1 ms (the values are durations); a window that
/// would hold more than 2,048 distinct values halves its resolution, so memory stays
/// bounded whatever is observed. Quantiles are exact up to that rounding.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    windows: [Window; AGE_BUCKETS],
    /// The window observations go to.
    current: usize,
    /// When `current` began.
    since: Option<Instant>,
    sum: f64,
    count: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Window {
    /// A value's key is `round(v × 10⁴) >> shift`.
    shift: u32,
    counts: BTreeMap<u64, u64>,
}

impl Window {
    fn add(&mut self, v: f64) {
        let key = (v.max(0.0) * 1e4).round() as u64 >> self.shift;
        *self.counts.entry(key).or_default() += 1;
        while self.counts.len() > WINDOW_KEYS {
            self.shift += 1;
            let old = std::mem::take(&mut self.counts);
            for (k, n) in old {
                *self.counts.entry(k >> 1).or_default() += n;
            }
        }
    }

    fn values(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        // The middle of the key's range, in seconds.
        let width = (1u64 << self.shift) as f64;
        self.counts
            .iter()
            .map(move |(k, n)| (((*k as f64) * width + (width - 1.0) / 2.0) / 1e4, *n))
    }
}

impl Default for Summary {
    fn default() -> Summary {
        Summary::new()
    }
}

impl Summary {
    /// Nothing observed.
    pub fn new() -> Summary {
        Summary {
            windows: Default::default(),
            current: 0,
            since: None,
            sum: 0.0,
            count: 0,
        }
    }

    /// Expires the windows older than [`MAX_AGE`] as of `now`.
    fn rotate(&mut self, now: Instant) {
        let step = MAX_AGE / AGE_BUCKETS as u32;
        let Some(mut since) = self.since else {
            self.since = Some(now);
            return;
        };
        let mut turns = 0;
        while now.saturating_since(since) >= step {
            since = since + step;
            self.current = (self.current + 1) % AGE_BUCKETS;
            self.windows[self.current] = Window::default();
            turns += 1;
            if turns == AGE_BUCKETS {
                // All expired: start afresh now.
                since = now;
                break;
            }
        }
        self.since = Some(since);
    }

    /// Counts one observation (seconds) at `now`.
    pub fn observe(&mut self, now: Instant, v: f64) {
        self.rotate(now);
        self.windows[self.current].add(v);
        self.sum += v;
        self.count += 1;
    }

    /// The summary's value at `now`: [`QUANTILES`] over what the windows still hold
    /// (NaN if nothing), all-time sum and count.
    pub fn value(&self, now: Instant) -> Value {
        let mut s = self.clone();
        s.rotate(now);
        let mut all: Vec<(f64, u64)> = s.windows.iter().flat_map(Window::values).collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n: u64 = all.iter().map(|v| v.1).sum();
        let quantiles = QUANTILES
            .iter()
            .map(|&q| {
                if n == 0 {
                    return (q, f64::NAN);
                }
                // The nearest rank: the smallest value with at least ⌈q·n⌉ at or below.
                let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
                let mut seen = 0;
                let v = all
                    .iter()
                    .find(|(_, c)| {
                        seen += c;
                        seen >= rank
                    })
                    .map_or(f64::NAN, |(v, _)| *v);
                (q, v)
            })
            .collect();
        Value::Summary {
            quantiles,
            sum: self.sum,
            count: self.count,
        }
    }
}

/// Go's `time.Duration.String()` (`15s`, `1m0s`, `1h30m0s`, `1.5s`, `250ms`), the
/// form Prometheus's `interval` labels take.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        let (unit, div) = if ns < 1_000 {
            ("ns", 1u128)
        } else if ns < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", fraction(ns, div));
    }
    let mut out = String::new();
    let secs = ns / 1_000_000_000;
    let (h, m) = (secs / 3600, (secs / 60) % 60);
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    let _ = write!(out, "{}s", fraction(ns % 60_000_000_000, 1_000_000_000));
    out
}

/// `n / div` with the fraction's trailing zeros left out.
fn fraction(n: u128, div: u128) -> String {
    let whole = n / div;
    let rest = n % div;
    if rest == 0 {
        return whole.to_string();
    }
    let digits = div.ilog10() as usize;
    let frac = format!("{rest:0digits$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_with_metadata_in_order_and_escaped() {
        let mut m = Metrics::new();
        m.gauge(
            "b_gauge",
            "A \\ back\nslash.",
            vec![("x", "q\"u\\o\nte".into())],
            1.5,
        );
        m.counter(
            "a_total",
            "Counted.",
            vec![("z", "2".into()), ("a", "1".into())],
            3.0,
        );
        m.counter(
            "a_total",
            "Counted.",
            vec![("a", "0".into()), ("z", "9".into())],
            1e21,
        );
        m.family("c_empty", "Nothing.", Kind::Gauge);
        assert_eq!(
            m.render(),
            "# HELP a_total Counted.\n# TYPE a_total counter\na_total{a=\"0\",z=\"9\"} 1e+21\na_total{a=\"1\",z=\"2\"} 3\n\
             # HELP b_gauge A \\\\ back\\nslash.\n# TYPE b_gauge gauge\nb_gauge{x=\"q\\\"u\\\\o\\nte\"} 1.5\n"
        );
        assert_eq!(m.value("a_total", &[("a", "1")]), Some(3.0));
        assert_eq!(m.sum("a_total"), 1e21 + 3.0);
        assert_eq!(m.names().collect::<Vec<_>>(), ["a_total", "b_gauge"]);
    }

    #[test]
    fn histograms_are_cumulative_with_inf_sum_and_count() {
        let mut h = Buckets::new(&[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 3.0] {
            h.observe(v);
        }
        let mut m = Metrics::new();
        m.histogram("d_seconds", "Durations.", vec![("j", "a".into())], &h);
        assert_eq!(
            m.render(),
            "# HELP d_seconds Durations.\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{j=\"a\",le=\"0.1\"} 2\nd_seconds_bucket{j=\"a\",le=\"1\"} 3\n\
             d_seconds_bucket{j=\"a\",le=\"+Inf\"} 4\nd_seconds_sum{j=\"a\"} 3.65\nd_seconds_count{j=\"a\"} 4\n"
        );
    }

    #[test]
    fn the_rendering_is_parsed_back_by_the_text_parser() {
        use crate::exposition::{BodyParser, Entry, Format};
        let mut m = Metrics::new();
        let mut s = Summary::new();
        for i in 0..100 {
            s.observe(Instant(i * 1_000_000_000), 15.0 + i as f64 / 1000.0);
        }
        m.summary(
            "i_seconds",
            "Intervals.",
            vec![("interval", "15s".into())],
            &s,
            Instant(100_000_000_000),
        );
        m.gauge("g", "G.", vec![("v", "a\"b\\c\nd".into())], 2.0);
        let text = m.render();
        let mut p = BodyParser::new(Format::PromText);
        let mut samples = Vec::new();
        let mut sink = |e: Entry<'_>| -> Result<(), String> {
            if let Entry::Sample(s) = e {
                samples.push((s.series.to_owned(), s.value));
            }
            Ok(())
        };
        p.feed(text.as_bytes(), &mut sink).expect("parses");
        p.finish(&mut sink).expect("parses");
        assert_eq!(samples.len(), 8, "{text}");
        assert_eq!(samples[0].0, "g{v=\"a\\\"b\\\\c\\nd\"}");
    }

    #[test]
    fn summaries_report_nearest_rank_quantiles_and_forget_after_ten_minutes() {
        let mut s = Summary::new();
        let t = |secs: u64| Instant(secs * 1_000_000_000);
        for i in 1..=100 {
            s.observe(t(i), i as f64 / 100.0);
        }
        let Value::Summary {
            quantiles,
            sum,
            count,
        } = s.value(t(100))
        else {
            unreachable!("a summary's value")
        };
        let q: Vec<f64> = quantiles
            .iter()
            .map(|(_, v)| (v * 1000.0).round() / 1000.0)
            .collect();
        assert_eq!(q, [0.01, 0.05, 0.5, 0.9, 0.99]);
        assert_eq!(count, 100);
        assert!((sum - 50.5).abs() < 1e-9);
        // Eleven minutes later nothing is left in the windows; sum and count stay.
        let Value::Summary {
            quantiles, count, ..
        } = s.value(t(100 + 660))
        else {
            unreachable!("a summary's value")
        };
        assert!(quantiles.iter().all(|(_, v)| v.is_nan()));
        assert_eq!(count, 100);
    }

    #[test]
    fn a_window_stays_bounded_whatever_it_sees() {
        let mut s = Summary::new();
        for i in 0..100_000u64 {
            s.observe(Instant(0), i as f64 * 0.37);
        }
        assert!(s.windows.iter().all(|w| w.counts.len() <= WINDOW_KEYS));
        let Value::Summary { quantiles, .. } = s.value(Instant(0)) else {
            unreachable!("a summary's value")
        };
        // The median is within the coarsened resolution of the true one.
        let median = quantiles[2].1;
        assert!(
            (median - 50_000.0 * 0.37).abs() / (50_000.0 * 0.37) < 0.01,
            "{median}"
        );
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        let d = |ms: u64| go_duration(Duration::from_millis(ms));
        assert_eq!(d(15_000), "15s");
        assert_eq!(d(60_000), "1m0s");
        assert_eq!(d(90_000), "1m30s");
        assert_eq!(d(3_600_000), "1h0m0s");
        assert_eq!(d(1_500), "1.5s");
        assert_eq!(d(250), "250ms");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }
}
