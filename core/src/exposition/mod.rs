//! Exposition formats: the Prometheus text format 0.0.4 and OpenMetrics 1.0, parsed
//! zero-copy over the body as it streams in (see [`BodyParser`]), and the choice between
//! them from a response's `Content-Type` (Prometheus 3.x rules).
//!
//! Both parsers produce [`Entry`]s borrowing from the body. A [`Sample`] keeps its series
//! text as written (`name{labels}`), which is what the per-target series cache is keyed
//! by: a repeat scrape finds each series by that text and never decodes its labels
//! again. The label block has been checked when the sample is produced; [`Sample::labels`]
//! decodes it on demand.

use std::borrow::Cow;
use std::fmt;

use crate::config::ScrapeProtocol;

pub mod created;
pub mod float;
pub mod gzip;
mod nhcb;
pub mod openmetrics;
pub mod protobuf;
mod stream;
pub mod text;

pub use stream::{BodyParser, DEFAULT_MAX_FAMILY, DEFAULT_MAX_LINE, FeedError};

/// Which parser a body needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    PromText,
    /// OpenMetrics 1.0 (and 0.0.1, the same syntax).
    OpenMetrics,
    /// Delimited `io.prometheus.client.MetricFamily` protobuf messages.
    Protobuf,
}

impl Format {
    /// The format a configured protocol names.
    pub fn for_protocol(p: ScrapeProtocol) -> Option<Format> {
        match p {
            ScrapeProtocol::PrometheusText0_0_4 | ScrapeProtocol::PrometheusText1_0_0 => {
                Some(Format::PromText)
            }
            ScrapeProtocol::OpenMetricsText0_0_1 | ScrapeProtocol::OpenMetricsText1_0_0 => {
                Some(Format::OpenMetrics)
            }
            ScrapeProtocol::PrometheusProto => Some(Format::Protobuf),
        }
    }
}

/// The media type of a `Content-Type` value (lower-cased, parameters dropped), or
/// `None` if it is not a valid `type/subtype` token pair (Go's `mime.ParseMediaType`
/// for the part that matters here).
pub fn media_type(content_type: &str) -> Option<String> {
    let main = content_type.split(';').next().unwrap_or("").trim();
    let (ty, sub) = main.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_graphic()
                    && !matches!(
                        b,
                        b'(' | b')'
                            | b'<'
                            | b'>'
                            | b'@'
                            | b','
                            | b';'
                            | b':'
                            | b'\\'
                            | b'"'
                            | b'/'
                            | b'['
                            | b']'
                            | b'?'
                            | b'='
                    )
            })
    };
    if !token(ty) || !token(sub) {
        return None;
    }
    // Parameters must be `name=value` pairs (an empty trailing one is tolerated).
    for p in content_type.split(';').skip(1) {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let (k, _) = p.split_once('=')?;
        if !token(k.trim()) {
            return None;
        }
    }
    Some(main.to_ascii_lowercase())
}

/// Chooses the parser for a response (Prometheus 3.x `extractMediaType`):
/// `application/openmetrics-text` → OpenMetrics, `application/vnd.google.protobuf` →
/// protobuf, `text/plain` → text; a missing, unparsable or other type uses
/// `fallback_scrape_protocol` if configured and fails the scrape otherwise, with
/// Prometheus's messages.
pub fn select_format(
    content_type: Option<&str>,
    fallback: Option<ScrapeProtocol>,
) -> Result<Format, String> {
    let fallback = fallback.and_then(Format::for_protocol);
    let ct = content_type.map(str::trim).unwrap_or("");
    if ct.is_empty() {
        return fallback.ok_or_else(|| {
            "non-compliant scrape target sending blank Content-Type and no fallback_scrape_protocol specified for target".to_owned()
        });
    }
    let Some(mt) = media_type(ct) else {
        return fallback.ok_or_else(|| {
            format!(
                "cannot parse Content-Type {} and no fallback_scrape_protocol for target",
                crate::goquote::quote(ct)
            )
        });
    };
    match mt.as_str() {
        "application/openmetrics-text" => Ok(Format::OpenMetrics),
        "application/vnd.google.protobuf" => Ok(Format::Protobuf),
        "text/plain" => Ok(Format::PromText),
        _ => fallback.ok_or_else(|| {
            format!(
                "received unsupported Content-Type {} and no fallback_scrape_protocol specified for target",
                crate::goquote::quote(ct)
            )
        }),
    }
}

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricType {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `gaugehistogram` (OpenMetrics).
    GaugeHistogram,
    /// `summary`.
    Summary,
    /// `info` (OpenMetrics).
    Info,
    /// `stateset` (OpenMetrics).
    StateSet,
    /// `unknown` (OpenMetrics) or `untyped` (text).
    Unknown,
}

impl MetricType {
    /// The name Prometheus's metadata API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

/// One entry of an exposition, borrowing from the body.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry<'a> {
    /// `# HELP name text` (text unescaped).
    Help {
        /// The family name.
        name: &'a str,
        /// The help text.
        text: Cow<'a, str>,
    },
    /// `# TYPE name type`.
    Type {
        /// The family name.
        name: &'a str,
        /// The type.
        kind: MetricType,
    },
    /// `# UNIT name unit` (OpenMetrics).
    Unit {
        /// The family name.
        name: &'a str,
        /// The unit (may be empty).
        unit: &'a str,
    },
    /// A comment or blank line (text format).
    Comment,
    /// A sample.
    Sample(Sample<'a>),
    /// A native histogram sample (protobuf bodies with `scrape_native_histograms`, and
    /// classic histograms converted to custom buckets).
    Histogram(Box<HistogramSample<'a>>),
    /// `# EOF` (OpenMetrics).
    Eof,
}

/// A native histogram sample: its series (as a [`Sample`] whose `value` is unused),
/// its histogram, and its exemplars (those with a timestamp; 3.x drops the others).
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSample<'a> {
    /// The series, timestamp, type and start timestamp.
    pub sample: Sample<'a>,
    /// The histogram, compacted as Prometheus's parsers leave it.
    pub histogram: crate::histogram::Histogram,
    /// Its exemplars.
    pub exemplars: Vec<Exemplar<'a>>,
}

/// How a scrape takes histograms (3.x `ParserOptions`, from the job's
/// `scrape_native_histograms`, `always_scrape_classic_histograms` and
/// `convert_classic_histograms_to_nhcb`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistogramOptions {
    /// Native histograms are taken (`scrape_native_histograms`); otherwise their
    /// native parts are ignored.
    pub native: bool,
    /// A histogram taken as native or converted also gives its classic series.
    pub keep_classic: bool,
    /// Classic histograms are converted to native histograms with custom buckets.
    pub nhcb: bool,
    /// `_created` lines are start timestamps, not series
    /// (`created-timestamp-zero-ingestion`, 3.x's `OpenMetricsSkipSTSeries`): they do
    /// not end a histogram being converted.
    pub start_timestamps: bool,
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    /// The series as written: the metric name and its label block with braces
    /// (`a{b="c"}`, `{"a.b",c="d"}`); the series cache's key.
    pub series: &'a str,
    /// The metric name, unescaped if it was quoted (`{"a.b"}` names `a.b`).
    pub name: Cow<'a, str>,
    /// The label block between the braces, checked, not yet decoded (it may hold the
    /// quoted metric name).
    label_block: &'a str,
    /// The value (a NaN carries Prometheus's bits).
    pub value: f64,
    /// The timestamp in milliseconds, if the line has one.
    pub timestamp: Option<i64>,
    /// The exemplar (OpenMetrics), boxed: rare, and a sample moves by value from the
    /// parser to the pipeline, cheaper the smaller it is.
    pub exemplar: Option<Box<Exemplar<'a>>>,
    /// The type the last `# TYPE` line before this sample gave, whatever family it
    /// named: Prometheus's parsers keep it as state, and it decides whether `le` and
    /// `quantile` values are normalised ([`Sample::labels`]).
    pub kind: MetricType,
    /// The start timestamp (ms) the exposition gives with the sample: always `Some` for
    /// protobuf (`start_timestamp`, 0 when absent, as 3.x reads it), `None` for the text
    /// formats, whose OpenMetrics `_created` lines are read apart
    /// ([`created::StartTimes`]).
    pub start: Option<i64>,
    /// The label block is protobuf `LabelPair` fields (see [`protobuf`]), not text.
    proto: bool,
}

impl<'a> Sample<'a> {
    /// The sample's labels in the order written (without `__name__`), names and values
    /// unescaped, as Prometheus 3.x's parsers give them: after a `histogram` TYPE an
    /// `le` value, after a `summary` TYPE a `quantile` value that parses as a float is
    /// rewritten in the OpenMetrics form (`1` → `1.0`, `0x1p-3` → `0.125`;
    /// `normalizeFloatsInLabelValues`).
    pub fn labels(&self) -> LabelPairs<'a> {
        LabelPairs {
            rest: self.label_block,
            kind: self.kind,
            proto: self.proto,
        }
    }

    /// The labels exactly as written (unescaped, never normalised).
    pub fn raw_labels(&self) -> LabelPairs<'a> {
        LabelPairs {
            rest: self.label_block,
            kind: MetricType::Unknown,
            proto: self.proto,
        }
    }
}

/// A label name and value, borrowed from the body where no escape had to be decoded.
pub type LabelPair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// A sample's labels as a scrape builds them before the target's: its pairs and
/// `__name__`, sorted by name; an error, with Prometheus's message, if a name repeats
/// (a `__name__` pair beside the metric name counts: 3.x's `scrapeLoop.append` refuses
/// the sample and fails the scrape).
pub fn exposed_labels<'a>(s: &Sample<'a>) -> Result<Vec<LabelPair<'a>>, String> {
    let mut exposed: Vec<LabelPair<'a>> = s.labels().collect();
    exposed.push((Cow::Borrowed(crate::labels::METRIC_NAME), s.name.clone()));
    exposed.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = exposed.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!(
            "label name {} is not unique: invalid sample",
            crate::goquote::quote(&w[0].0)
        ));
    }
    Ok(exposed)
}

/// An exemplar attached to a sample (OpenMetrics).
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar<'a> {
    label_block: &'a str,
    /// The exemplar's value.
    pub value: f64,
    /// Its timestamp in milliseconds, if given.
    pub timestamp: Option<i64>,
}

impl<'a> Exemplar<'a> {
    /// The exemplar's labels in the order written.
    pub fn labels(&self) -> LabelPairs<'a> {
        LabelPairs {
            rest: self.label_block,
            kind: MetricType::Unknown,
            proto: false,
        }
    }
}

/// The pairs of a checked label block, in the order written.
#[derive(Clone, Debug)]
pub struct LabelPairs<'a> {
    rest: &'a str,
    kind: MetricType,
    proto: bool,
}

/// The text of a quoted name (between its quotes), unescaped only if it has escapes.
pub(crate) fn quoted_text(raw: &str) -> Cow<'_, str> {
    if raw.contains('\\') {
        Cow::Owned(unescape(raw, true))
    } else {
        Cow::Borrowed(raw)
    }
}

/// The index of the closing quote of a checked quoted string (`s` starts after the
/// opening one).
fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => return Some(i),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

impl<'a> Iterator for LabelPairs<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.proto {
            return self.next_proto();
        }
        // The block was checked when the sample was parsed: names are ASCII words or
        // quoted strings, values are quoted with backslash escapes; blanks and commas
        // separate pairs; a quoted string not followed by `=` is the metric name.
        loop {
            let s = self.rest.trim_start_matches([' ', '\t', ',']);
            if s.is_empty() {
                self.rest = s;
                return None;
            }
            let (name, after) = if let Some(q) = s.strip_prefix('"') {
                let end = closing_quote(q)?;
                let after = q[end + 1..].trim_start_matches([' ', '\t']);
                if !after.starts_with('=') {
                    // The metric name.
                    self.rest = after;
                    continue;
                }
                (quoted_text(&q[..end]), after)
            } else {
                let name_end = s.find(['=', ' ', '\t'])?;
                (
                    Cow::Borrowed(&s[..name_end]),
                    s[name_end..].trim_start_matches([' ', '\t']),
                )
            };
            let after = after.strip_prefix('=')?.trim_start_matches([' ', '\t']);
            let body = after.strip_prefix('"')?;
            let end = closing_quote(body)?;
            let raw = &body[..end];
            self.rest = &body[end + 1..];
            let value = quoted_text(raw);
            let value = match self.kind {
                MetricType::Histogram if name == "le" => normalize_float(value),
                MetricType::Summary if name == "quantile" => normalize_float(value),
                _ => value,
            };
            return Some((name, value));
        }
    }
}

impl<'a> LabelPairs<'a> {
    /// The next pair of a protobuf block: `0x0a len (0x0a n name 0x12 v value)`, every
    /// length one byte (the decoder only writes such blocks; see [`protobuf`]).
    fn next_proto(&mut self) -> Option<(Cow<'a, str>, Cow<'a, str>)> {
        let b = self.rest.as_bytes();
        let (&[0x0a, len], _) = b.split_first_chunk::<2>()? else {
            return None;
        };
        let pair = self.rest.get(2..2 + usize::from(len))?;
        self.rest = self.rest.get(2 + usize::from(len)..)?;
        let p = pair.as_bytes();
        let n = usize::from(*p.get(1)?);
        let name = pair.get(2..2 + n)?;
        let v = usize::from(*p.get(3 + n)?);
        let value = Cow::Borrowed(pair.get(4 + n..4 + n + v)?);
        let value = match self.kind {
            MetricType::Histogram if name == "le" => normalize_float(value),
            MetricType::Summary if name == "quantile" => normalize_float(value),
            _ => value,
        };
        Some((Cow::Borrowed(name), value))
    }
}

/// A label value that Go's `strconv.ParseFloat` reads, in the OpenMetrics form
/// (Prometheus's `labels.FormatOpenMetricsFloat`); anything else unchanged.
fn normalize_float(v: Cow<'_, str>) -> Cow<'_, str> {
    match float::parse_strconv_float(&v) {
        Some(f) => {
            let canonical = float::format_openmetrics_float(f);
            if canonical == *v {
                v
            } else {
                Cow::Owned(canonical)
            }
        }
        None => v,
    }
}

/// Decodes `\\`, `\n` and (if `quote`) `\"`; any other escaped character is kept with its
/// backslash, as Prometheus does.
pub(crate) fn unescape(raw: &str, quote: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A parse error with its position in the body (1-based line and column, the column
/// counted in bytes; for protobuf bodies line 0 and the byte offset from 1 as column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Line number, from 1.
    pub line: u64,
    /// Column (byte offset in the line), from 1.
    pub column: u64,
    /// What is wrong, in Prometheus's words where it has them.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            // A binary body has no lines: the column is the byte offset from 1.
            return write!(f, "{} (byte {})", self.message, self.column);
        }
        write!(
            f,
            "{} (line {}, column {})",
            self.message, self.line, self.column
        )
    }
}

impl std::error::Error for ParseError {}

/// What a parser made of the start of a buffer.
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// One entry, `len` bytes long (line end included), spanning `newlines` line ends.
    Entry {
        entry: Entry<'a>,
        len: usize,
        newlines: u64,
    },
    /// The buffer ends inside an entry; more bytes are needed.
    Incomplete,
}

/// A syntax error at a byte offset from the start of the entry.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub(crate) offset: usize,
    pub(crate) message: String,
}

pub(crate) fn syntax<T>(offset: usize, message: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError {
        offset,
        message: message.into(),
    })
}

/// Finds the end of the quoted string starting after the opening quote at `start`:
/// the index of the closing quote, or `None` if the buffer ends first. Counts raw line
/// ends in `newlines`.
pub(crate) fn quoted_end(b: &[u8], start: usize, newlines: &mut u64) -> Option<usize> {
    // A plain loop: label values are short, and a vectorised search costs more to set
    // up than it saves on them (measured with callgrind on both bench bodies).
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'"' => return Some(i),
            b'\\' => i += 2,
            b'\n' => {
                *newlines += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests;
