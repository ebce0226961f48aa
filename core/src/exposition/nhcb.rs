//! Classic histograms of text and OpenMetrics bodies converted to native histograms
//! with custom buckets as they stream past (`convert_classic_histograms_to_nhcb`),
//! following Prometheus 3.x's `NHCBParser`, which wraps those two parsers:
//!
//! - after a `# TYPE x histogram`, the series `x_bucket` (with a `le` that reads as a
//!   float), `x_count` and `x_sum` are collected while they share their other labels;
//! - a series of another metric or label set, any metadata or comment line, `# EOF`
//!   and the end of the body close the collection: the converted histogram is given
//!   then, before the entry that closed it, named `x` with the other labels;
//! - a conversion that fails, or a histogram that `Validate` refuses, gives nothing
//!   (the classic series are still there if kept);
//! - the classic series are dropped unless `always_scrape_classic_histograms`.
//!
//! Blank lines do not close a collection (3.x's lexer skips them), nor do `_created`
//! lines when they are start timestamps (3.x's parser skips those). The converted
//! histogram carries the timestamp of the last series the parser read, as 3.x's does
//! (which is the series that closed the collection when one did), and, with start
//! timestamps on, the start its first series had: the first `_created` line read
//! while collecting decides it (its own gives the start, another's none), as 3.x's
//! read-ahead from that series does while the collection is open.

use std::borrow::Cow;

use super::{Entry, Exemplar, HistogramSample, MetricType, Sample};
use crate::histogram::ClassicHistogram;

/// The converter's state between entries of one body.
#[derive(Debug, Default)]
pub(crate) struct Nhcb {
    keep_classic: bool,
    /// `_created` lines are not series (3.x's parser skips them before this sees them).
    skip_created: bool,
    /// The family and type of the last `# TYPE` line.
    family: String,
    kind: Option<MetricType>,
    collecting: bool,
    /// The collected histogram's base name and its labels without `le` (sorted, as
    /// the key that decides whether a series belongs to it).
    name: String,
    labels: Vec<(String, String)>,
    hist: ClassicHistogram,
    /// Exemplars of the collected series: (label block text, value, timestamp).
    exemplars: Vec<(String, f64, Option<i64>)>,
    /// The timestamp of the last series read.
    last_ts: Option<i64>,
    /// The start timestamp of the histogram being collected, once a `_created` line
    /// decided it (3.x reads ahead from its first series to the first `_created` line:
    /// its own gives the start, another's none).
    start: Option<Option<i64>>,
    /// Text the converted histogram's entry borrows.
    series: String,
}

/// `x_bucket`, `x_count`, `x_sum` → (suffix, `x`).
fn base_name(name: &str) -> (&'static str, &str) {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            return (suffix, base);
        }
    }
    ("", name)
}

/// A sample's labels without `le`, sorted by name.
fn key_labels(s: &Sample<'_>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = s
        .labels()
        .filter(|(n, _)| n != "le")
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    v.sort();
    v
}

impl Nhcb {
    pub(crate) fn new(opts: super::HistogramOptions) -> Nhcb {
        Nhcb {
            keep_classic: opts.keep_classic,
            skip_created: opts.start_timestamps,
            ..Nhcb::default()
        }
    }

    /// Passes `e` on, with a converted histogram before it if `e` closes one; a sample
    /// that went into a conversion is dropped unless classic series are kept. `blank`
    /// says a `Comment` entry is a blank line.
    pub(crate) fn push<E>(
        &mut self,
        e: Entry<'_>,
        blank: bool,
        sink: &mut impl FnMut(Entry<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        match &e {
            // A start-timestamp line, which 3.x's parser never hands to its converter.
            Entry::Sample(s)
                if self.skip_created
                    && matches!(
                        s.kind,
                        MetricType::Counter | MetricType::Summary | MetricType::Histogram
                    )
                    && s.name.ends_with("_created") =>
            {
                if self.collecting && self.start.is_none() {
                    let own = s.name.strip_suffix("_created") == Some(self.name.as_str())
                        && key_labels(s) == self.labels;
                    let st = (s.value * 1000.0) as i64;
                    self.start = Some((own && st != 0).then_some(st));
                }
            }
            Entry::Sample(s) => {
                self.last_ts = s.timestamp;
                if self.collecting && self.different_metric(s) {
                    self.flush(sink)?;
                }
                if self.take(s) && !self.keep_classic {
                    return Ok(());
                }
            }
            Entry::Comment if blank => {}
            Entry::Type { name, kind } => {
                self.family.clear();
                self.family.push_str(name);
                self.kind = Some(*kind);
                self.flush(sink)?;
            }
            _ => self.flush(sink)?,
        }
        sink(e)
    }

    /// `differentMetric`: not a histogram family any more, another base name, or other
    /// labels.
    fn different_metric(&self, s: &Sample<'_>) -> bool {
        if self.kind != Some(MetricType::Histogram) {
            return true;
        }
        let (_, base) = base_name(&s.name);
        base != self.name || key_labels(s) != self.labels
    }

    /// `handleClassicHistogramSeries`: collects `s` if it is part of the current
    /// histogram family; true if it was.
    fn take(&mut self, s: &Sample<'_>) -> bool {
        if self.kind != Some(MetricType::Histogram) {
            return false;
        }
        let (suffix, base) = base_name(&s.name);
        if base != self.family {
            return false;
        }
        match suffix {
            "_bucket" => {
                let le = s
                    .labels()
                    .find(|(n, _)| n == "le")
                    .and_then(|(_, v)| super::float::parse_strconv_float(&v))
                    .filter(|f| !f.is_nan());
                let Some(le) = le else { return false };
                self.start(s, base);
                self.hist.set_bucket(le, s.value);
            }
            "_count" => {
                self.start(s, base);
                self.hist.set_count(s.value);
            }
            "_sum" => {
                self.start(s, base);
                self.hist.set_sum(s.value);
            }
            _ => return false,
        }
        if let Some(x) = &s.exemplar {
            let pairs: Vec<super::LabelPair<'_>> = x.labels().collect();
            let mut text = Vec::new();
            super::protobuf::push_pairs(
                &mut text,
                pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            );
            let text = String::from_utf8_lossy(&text).into_owned();
            self.exemplars.push((text, x.value, x.timestamp));
        }
        true
    }

    /// `processClassicHistogramSeries`: the first series of a histogram sets its name
    /// and labels.
    fn start(&mut self, s: &Sample<'_>, base: &str) {
        if !self.collecting {
            self.collecting = true;
            self.start = None;
            self.name.clear();
            self.name.push_str(base);
            self.labels = key_labels(s);
        }
    }

    /// `processNHCB`: gives the converted histogram, if there is one and it is valid,
    /// and starts over.
    pub(crate) fn flush<E>(
        &mut self,
        sink: &mut impl FnMut(Entry<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if !self.collecting {
            return Ok(());
        }
        self.collecting = false;
        let converted = self.hist.convert().ok().filter(|h| h.validate().is_ok());
        self.hist.reset();
        let exemplars = std::mem::take(&mut self.exemplars);
        let Some(histogram) = converted else {
            return Ok(());
        };
        // The series as the text format writes it: `name{labels}` (just `name` without
        // labels, as 3.x writes it), quoted where needed.
        let mut b: Vec<u8> = Vec::new();
        let legacy = super::protobuf::is_legacy_name(self.name.as_bytes(), true);
        if legacy && self.labels.is_empty() {
            b.extend_from_slice(self.name.as_bytes());
        } else if legacy {
            b.extend_from_slice(self.name.as_bytes());
            b.push(b'{');
        } else {
            b.push(b'{');
            super::protobuf::push_quoted(&mut b, self.name.as_bytes());
            if !self.labels.is_empty() {
                b.push(b',');
            }
        }
        let block_start = if legacy { b.len() } else { 1 };
        super::protobuf::push_pairs(
            &mut b,
            self.labels
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_bytes())),
        );
        let block_end = b.len();
        if !(legacy && self.labels.is_empty()) {
            b.push(b'}');
        }
        self.series = String::from_utf8_lossy(&b).into_owned();
        let series = self.series.as_str();
        let sample = Sample {
            series,
            name: Cow::Borrowed(self.name.as_str()),
            label_block: series.get(block_start..block_end).unwrap_or(""),
            value: 0.0,
            timestamp: self.last_ts,
            exemplar: None,
            kind: MetricType::Histogram,
            // With start timestamps on, the histogram carries its own (0: none), as a
            // protobuf sample does.
            start: self.skip_created.then(|| self.start.flatten().unwrap_or(0)),
            proto: false,
        };
        let exemplars = exemplars
            .iter()
            .map(|(block, value, timestamp)| Exemplar {
                label_block: block,
                value: *value,
                timestamp: *timestamp,
            })
            .collect();
        sink(Entry::Histogram(Box::new(HistogramSample {
            sample,
            histogram,
            exemplars,
        })))
    }
}
