//! OpenMetrics 1.0 text: the syntax exactly as Prometheus checks it, and the semantic
//! rules of the specification as an optional second layer ([`Validator`]).
//!
//! Prometheus checks syntax strictly (single spaces, `\n` line ends, no blank lines or
//! comments, commas only between label pairs, a final `# EOF`) but hardly any semantics:
//! it accepts 71 of the 167 invalid cases of the OpenMetrics test suite (counter values,
//! histogram bucket rules, grouping, repeated metadata…). Scrapes use the syntax layer
//! only, so trawl accepts what Prometheus accepts; the [`Validator`] implements the rest
//! of the specification (the rules of its reference parser) for the conformance suite
//! and for users who ask for strictness.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::float::parse_go_float;
use super::text::{is_label_char, is_label_start, is_name_char, is_name_start};
use super::{
    Entry, Exemplar, MetricType, Sample, Step, SyntaxError, quoted_end, quoted_text, syntax,
    unescape,
};

/// `b` as text; an error names the first invalid byte (`offset` is where `b` starts).
fn as_str<'a>(b: &'a [u8], offset: usize, what: &str) -> Result<&'a str, SyntaxError> {
    std::str::from_utf8(b).or_else(|e| syntax(offset + e.valid_up_to(), what))
}

/// Parses the entry at the start of `b` (`eof`: no more bytes will follow).
pub(crate) fn next_entry(b: &[u8], eof: bool) -> Result<Step<'_>, SyntaxError> {
    let (line, len) = match memchr::memchr(b'\n', b) {
        Some(p) => (&b[..p], p + 1),
        None if eof => (b, b.len()),
        None => return Ok(Step::Incomplete),
    };
    let newlines = u64::from(len > line.len());
    let entry = if line.is_empty() {
        return syntax(0, "blank line");
    } else if line[0] == b'#' {
        metadata(line)?
    } else {
        sample(line)?
    };
    if len == b.len() && len == line.len() && !matches!(entry, Entry::Eof) {
        // Only `# EOF` may end the body without a line end.
        return syntax(line.len(), "unexpected end of input");
    }
    Ok(Step::Entry {
        entry,
        len,
        newlines,
    })
}

fn metric_name(b: &[u8], i: usize) -> usize {
    let mut j = i;
    if j < b.len() && is_name_start(b[j]) {
        j += 1;
        while j < b.len() && is_name_char(b[j]) {
            j += 1;
        }
    }
    j
}

fn metadata(line: &[u8]) -> Result<Entry<'_>, SyntaxError> {
    if line == b"# EOF" {
        return Ok(Entry::Eof);
    }
    let kw = line.get(..7).unwrap_or(b"");
    let which = match kw {
        b"# HELP " => 0,
        b"# TYPE " => 1,
        b"# UNIT " => 2,
        _ => {
            return syntax(
                0,
                format!(
                    "{} is not a valid start token (comments are not allowed in OpenMetrics)",
                    crate::goquote::quote(&String::from_utf8_lossy(line))
                ),
            );
        }
    };
    // A metric-name word or (3.x) a quoted string, kept as written between its quotes.
    let (n, name_start, name_end) = if line.get(7) == Some(&b'"') {
        let mut nl = 0;
        match quoted_end(line, 8, &mut nl) {
            Some(close) => (close + 1, 8, close),
            None => (7, 7, 7),
        }
    } else {
        let n = metric_name(line, 7);
        (n, 7, n)
    };
    if n == 7 {
        return syntax(7, "expected metric name");
    }
    let name = as_str(
        &line[name_start..name_end],
        name_start,
        "invalid metric name",
    )?;
    let text = match line.get(n) {
        None => {
            return syntax(
                n,
                [
                    "expected text in HELP",
                    "expected text in TYPE",
                    "expected text in UNIT",
                ][which],
            );
        }
        Some(b' ') => &line[n + 1..],
        Some(_) => return syntax(n, "expected a space after the metric name"),
    };
    match which {
        0 => {
            let t = as_str(text, n + 1, "help text is not a valid utf8 string")?;
            let text = if t.contains('\\') {
                Cow::Owned(unescape(t, true))
            } else {
                Cow::Borrowed(t)
            };
            Ok(Entry::Help { name, text })
        }
        1 => {
            let kind = match text {
                b"counter" => MetricType::Counter,
                b"gauge" => MetricType::Gauge,
                b"histogram" => MetricType::Histogram,
                b"gaugehistogram" => MetricType::GaugeHistogram,
                b"summary" => MetricType::Summary,
                b"info" => MetricType::Info,
                b"stateset" => MetricType::StateSet,
                b"unknown" => MetricType::Unknown,
                other => {
                    return syntax(
                        n + 1,
                        format!(
                            "invalid metric type {}",
                            crate::goquote::quote(&String::from_utf8_lossy(other))
                        ),
                    );
                }
            };
            Ok(Entry::Type { name, kind })
        }
        _ => {
            let unit = as_str(text, n + 1, "unit is not valid UTF-8")?;
            let suffix_ok = name
                .strip_suffix(unit)
                .is_some_and(|head| head.ends_with('_'));
            if !unit.is_empty() && !suffix_ok {
                return syntax(
                    n + 1,
                    format!(
                        "unit not a suffix of metric {}",
                        crate::goquote::quote(name)
                    ),
                );
            }
            Ok(Entry::Unit { name, unit })
        }
    }
}

/// A byte range of a line.
type Span = (usize, usize);

/// A strict label block starting at the `{` at `open`: (end of block, index after `}`,
/// the quoted metric name's bytes if the block holds one). Label names are words or
/// (3.x) quoted strings; a quoted string followed by a comma or `}` is the metric name,
/// which an exemplar's block may not hold. A trailing comma is accepted, as 3.x's
/// `parseLVals` does.
fn label_block(
    line: &[u8],
    open: usize,
    exemplar: bool,
) -> Result<(usize, usize, Option<Span>), SyntaxError> {
    let mut i = open + 1;
    let mut qname = None;
    let mut newlines = 0;
    loop {
        let n0 = i;
        match line.get(i) {
            Some(b'}') => return Ok((i, i + 1, qname)),
            Some(b'"') => {
                let Some(close) = quoted_end(line, i + 1, &mut newlines) else {
                    return syntax(i, "unterminated quoted string");
                };
                i = close + 1;
                match line.get(i) {
                    Some(b',' | b'}') if !exemplar => {
                        if qname.is_some() {
                            return syntax(n0, "metric name already set");
                        }
                        qname = Some((n0 + 1, close));
                        if line[i] == b',' {
                            i += 1;
                        }
                        continue;
                    }
                    Some(b'=') => {}
                    _ if exemplar => return syntax(n0, "expected label name"),
                    _ => return syntax(i, "expected equal"),
                }
            }
            Some(&c) if is_label_start(c) => {
                while i < line.len() && is_label_char(line[i]) {
                    i += 1;
                }
                if line.get(i) != Some(&b'=') {
                    return syntax(
                        i,
                        format!(
                            "expected \"=\" after label name {}",
                            String::from_utf8_lossy(&line[n0..i])
                        ),
                    );
                }
            }
            _ => return syntax(i, "expected label name"),
        }
        // `i` is at the `=`.
        i += 1;
        if line.get(i) != Some(&b'"') {
            return syntax(i, "expected label value");
        }
        let v0 = i + 1;
        let Some(close) = quoted_end(line, v0, &mut newlines) else {
            return syntax(v0, "unterminated label value");
        };
        // UTF-8 is checked by the caller, once for the whole block.
        i = close + 1;
        match line.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Ok((i, i + 1, qname)),
            _ => return syntax(i, "expected \",\" or \"}\" after a label value"),
        }
    }
}

/// A run of bytes up to a space or the end of the line.
fn token(line: &[u8], i: usize) -> usize {
    let mut j = i;
    while j < line.len() && line[j] != b' ' {
        j += 1;
    }
    j
}

fn number(line: &[u8], i: usize, j: usize) -> Result<f64, SyntaxError> {
    if i == j {
        return syntax(i, "expected a number");
    }
    parse_go_float(&line[i..j])
        .or_else(|e| syntax(i, e.message(&String::from_utf8_lossy(&line[i..j]))))
}

/// A timestamp in seconds (any real number but NaN and infinities) as milliseconds,
/// truncated toward zero as Prometheus does.
fn timestamp(line: &[u8], i: usize, j: usize) -> Result<i64, SyntaxError> {
    let s = number(line, i, j)?;
    if !s.is_finite() {
        return syntax(i, "invalid timestamp");
    }
    // `as` saturates, where Go's conversion of an out-of-range value is undefined.
    Ok((s * 1000.0) as i64)
}

fn sample(line: &[u8]) -> Result<Entry<'_>, SyntaxError> {
    let name_end = metric_name(line, 0);
    if name_end == 0 && line.first() != Some(&b'{') {
        return syntax(
            0,
            format!(
                "{} is not a valid start token",
                crate::goquote::quote(&String::from_utf8_lossy(&line[..1]))
            ),
        );
    }
    let (block, series_end, qname) = if line.get(name_end) == Some(&b'{') {
        let (end, after, qname) = label_block(line, name_end, false)?;
        if qname.is_some() && name_end > 0 {
            return syntax(name_end + 1, "metric name already set");
        }
        ((name_end + 1, end), after, qname)
    } else {
        ((name_end, name_end), name_end, None)
    };
    let (name_start, name_stop) = match qname {
        Some(q) => q,
        None if name_end == 0 => return syntax(0, "metric name not set"),
        None => (0, name_end),
    };
    if line.get(series_end) != Some(&b' ') {
        return syntax(series_end, "expected value after metric");
    }
    let v0 = series_end + 1;
    let v1 = token(line, v0);
    let value = number(line, v0, v1)?;
    let mut i = v1;
    let mut ts = None;
    let mut exemplar_at = None;
    if i < line.len() {
        // A space, then a timestamp or an exemplar.
        i += 1;
        if line[i..].starts_with(b"# ") {
            exemplar_at = Some(i + 2);
        } else {
            let t1 = token(line, i);
            ts = Some(timestamp(line, i, t1)?);
            i = t1;
            if i < line.len() {
                if !line[i..].starts_with(b" # ") {
                    return syntax(i, "expected next entry after timestamp");
                }
                exemplar_at = Some(i + 3);
            }
        }
    }
    let series = as_str(&line[..series_end], 0, "invalid UTF-8 label value")?;
    let raw_name = &series[name_start..name_stop];
    let name = if qname.is_some() {
        quoted_text(raw_name)
    } else {
        Cow::Borrowed(raw_name)
    };
    let mut exemplar = None;
    if let Some(e0) = exemplar_at {
        // Any series may carry an exemplar (Prometheus >= 2.43; the specification's
        // restriction to counters and buckets is the `Validator`'s).
        if line.get(e0) != Some(&b'{') {
            return syntax(e0, "expected label set for the exemplar");
        }
        let (end, after, _) = label_block(line, e0, true)?;
        if line.get(after) != Some(&b' ') {
            return syntax(after, "expected a value after the exemplar's labels");
        }
        let x0 = after + 1;
        let x1 = token(line, x0);
        let xvalue = number(line, x0, x1)?;
        let mut xts = None;
        if x1 < line.len() {
            let t0 = x1 + 1;
            let t1 = token(line, t0);
            if t1 != line.len() {
                return syntax(t1, "unexpected data after the exemplar");
            }
            xts = Some(timestamp(line, t0, t1)?);
        }
        let labels = as_str(&line[e0 + 1..end], e0 + 1, "invalid UTF-8 label value")?;
        exemplar = Some(Box::new(Exemplar {
            label_block: labels,
            value: xvalue,
            timestamp: xts,
        }));
    }
    Ok(Entry::Sample(Sample {
        series,
        name,
        label_block: &series[block.0..block.1],
        value,
        timestamp: ts,
        exemplar,
        kind: MetricType::Unknown,
        start: None,
        proto: false,
    }))
}

/// The OpenMetrics specification's semantic rules, checked over the entries of one
/// exposition in order (the reference parser's rules): metadata once per family and
/// before its samples, families not interleaved and names not clashing, the sample
/// names a type allows, counter-like values, histogram buckets (`le` canonical, ordered,
/// cumulative, `+Inf` present, count and sum), summary quantiles, stateset and info
/// values, units, exemplar placement and size, and grouping and timestamps within a
/// metric.
#[derive(Debug, Default)]
pub struct Validator {
    family: Option<Family>,
    seen_names: BTreeSet<String>,
}

#[derive(Debug)]
struct Family {
    name: String,
    kind: Option<MetricType>,
    has_help: bool,
    unit: Option<String>,
    has_samples: bool,
    allowed: Vec<String>,
    group: Option<Vec<(String, String)>>,
    group_ts: Option<Option<i64>>,
    seen_groups: BTreeSet<Vec<(String, String)>>,
    hist: Option<HistRun>,
}

#[derive(Debug)]
struct HistRun {
    group: Vec<(String, String)>,
    ts: Option<i64>,
    bucket: Option<f64>,
    value: f64,
    count: Option<f64>,
    has_sum: bool,
    has_gsum: bool,
    negative_buckets: bool,
    negative_gsum: bool,
}

fn suffixes(kind: MetricType) -> &'static [&'static str] {
    match kind {
        MetricType::Counter => &["_total", "_created"],
        MetricType::Summary => &["", "_count", "_sum", "_created"],
        MetricType::Histogram => &["_count", "_sum", "_bucket", "_created"],
        MetricType::GaugeHistogram => &["_gcount", "_gsum", "_bucket"],
        MetricType::Info => &["_info"],
        _ => &[""],
    }
}

/// Python's `float()` on a label value, as the reference parser applies it to `le` and
/// `quantile`.
fn label_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, "inf" | "infinity" | "nan") {
        return t.parse().ok().or(Some(if unsigned == "nan" {
            f64::NAN
        } else if t.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }));
    }
    t.parse().ok()
}

/// An infinite value written other than `+Inf`/`-Inf` (the reference parser's rule);
/// `None` if it is not a number at all.
fn uncanonical(s: &str) -> Option<bool> {
    let f = label_float(s)?;
    Some(f.is_infinite() && s != "+Inf" && s != "-Inf")
}

impl Validator {
    /// A validator for one exposition.
    pub fn new() -> Validator {
        Validator::default()
    }

    /// Checks the next entry.
    pub fn entry(&mut self, e: &Entry<'_>) -> Result<(), String> {
        match e {
            Entry::Help { name, .. } => self.metadata(name, |f| {
                if f.has_help {
                    return Err(format!("more than one HELP for metric {name}"));
                }
                f.has_help = true;
                Ok(())
            }),
            Entry::Type { name, kind } => self.metadata(name, |f| {
                if f.kind.is_some() {
                    return Err(format!("more than one TYPE for metric {name}"));
                }
                f.kind = Some(*kind);
                f.allowed = suffixes(*kind)
                    .iter()
                    .map(|s| format!("{name}{s}"))
                    .collect();
                Ok(())
            }),
            Entry::Unit { name, unit } => self.metadata(name, |f| {
                if f.unit.is_some() {
                    return Err(format!("more than one UNIT for metric {name}"));
                }
                f.unit = Some((*unit).to_owned());
                Ok(())
            }),
            Entry::Sample(s) => self.sample(s),
            // Never from an OpenMetrics body (conversions come after validation).
            Entry::Histogram(_) => Ok(()),
            Entry::Comment => Ok(()),
            Entry::Eof => self.close(),
        }
    }

    fn metadata(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Family) -> Result<(), String>,
    ) -> Result<(), String> {
        match &self.family {
            Some(fam) if fam.name == name => {
                if fam.has_samples {
                    return Err(format!("metadata for {name} after its samples"));
                }
            }
            _ => {
                self.close()?;
                self.family = Some(Family::new(name, None));
            }
        }
        match &mut self.family {
            Some(fam) => f(fam),
            None => Ok(()),
        }
    }

    /// Ends the current family: name clashes, unit rules, the last histogram run.
    fn close(&mut self) -> Result<(), String> {
        let Some(mut fam) = self.family.take() else {
            return Ok(());
        };
        if let Some(run) = fam.hist.take() {
            run.check(&fam.name)?;
        }
        let kind = fam.kind.unwrap_or(MetricType::Unknown);
        let mut names: BTreeSet<&str> = suffixes(kind).iter().copied().collect();
        names.insert("");
        for s in names {
            let n = format!("{}{s}", fam.name);
            if !self.seen_names.insert(n.clone()) {
                return Err(format!("clashing name: {n}"));
            }
        }
        if let Some(unit) = fam.unit.as_deref().filter(|u| !u.is_empty()) {
            if !fam.name.ends_with(&format!("_{unit}")) {
                return Err(format!("unit does not match metric name: {}", fam.name));
            }
            if matches!(kind, MetricType::Info | MetricType::StateSet) {
                return Err(format!(
                    "units not allowed for this metric type: {}",
                    fam.name
                ));
            }
        }
        Ok(())
    }

    fn sample(&mut self, s: &Sample<'_>) -> Result<(), String> {
        let labels: Vec<(String, String)> = s
            .raw_labels()
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect();
        let sname: &str = &s.name;
        if s.label_block.ends_with(',') {
            return Err(format!("trailing comma in the label set: {}", s.series));
        }
        let mut names: Vec<&str> = labels.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!("duplicate label name in {}", s.series));
        }
        let in_family = self
            .family
            .as_ref()
            .is_some_and(|f| f.allowed.iter().any(|a| a == sname));
        if !in_family {
            self.close()?;
            self.family = Some(Family::new(sname, Some(MetricType::Unknown)));
        }
        let Some(fam) = self.family.as_mut() else {
            return Ok(());
        };
        fam.has_samples = true;
        let kind = fam.kind.unwrap_or(MetricType::Unknown);
        let name = fam.name.clone();
        let get = |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let suffix = &sname[name.len().min(sname.len())..];
        let line = s.series;
        if kind == MetricType::StateSet && get(&name).is_none() {
            return Err(format!("stateset missing label: {line}"));
        }
        let is_bucket = sname.len() == name.len() + 7 && suffix == "_bucket";
        if is_bucket {
            match get("le") {
                None | Some("NaN") => return Err(format!("invalid le label: {line}")),
                Some(le) if uncanonical(le) != Some(false) => {
                    return Err(format!("invalid le label: {line}"));
                }
                _ => {}
            }
            if s.value.fract() != 0.0 {
                return Err(format!("bucket value must be an integer: {line}"));
            }
        }
        if matches!(suffix, "_count" | "_gcount") && s.value.fract() != 0.0 {
            return Err(format!("count value must be an integer: {line}"));
        }
        if kind == MetricType::Summary && sname == name {
            let ok = get("quantile").is_some_and(|q| {
                uncanonical(q) == Some(false)
                    && label_float(q).is_some_and(|f| (0.0..=1.0).contains(&f))
            });
            if !ok {
                return Err(format!("invalid quantile label: {line}"));
            }
        }
        // Grouping: the labels that identify one metric of the family.
        let group: Vec<(String, String)> = {
            let mut g: Vec<(String, String)> = match kind {
                MetricType::Info => Vec::new(),
                MetricType::Summary if sname == name => labels
                    .iter()
                    .filter(|(n, _)| n != "quantile")
                    .cloned()
                    .collect(),
                MetricType::StateSet => {
                    labels.iter().filter(|(n, _)| *n != name).cloned().collect()
                }
                MetricType::Histogram | MetricType::GaugeHistogram if is_bucket => {
                    labels.iter().filter(|(n, _)| n != "le").cloned().collect()
                }
                _ => labels.clone(),
            };
            g.sort();
            g
        };
        if fam.group.as_ref().is_some_and(|g| *g != group) && fam.seen_groups.contains(&group) {
            return Err(format!("invalid metric grouping: {line}"));
        }
        if fam.group.as_ref() == Some(&group) {
            let prev = fam.group_ts.flatten();
            if fam
                .group_ts
                .is_some_and(|t| t.is_none() != s.timestamp.is_none())
            {
                return Err(format!("mix of timestamp presence within a group: {line}"));
            }
            if let (Some(p), Some(t)) = (prev, s.timestamp)
                && p > t
                && kind != MetricType::Info
            {
                return Err(format!("timestamps went backwards within a group: {line}"));
            }
        }
        fam.group = Some(group.clone());
        fam.group_ts = Some(s.timestamp);
        fam.seen_groups.insert(group.clone());
        if matches!(kind, MetricType::Histogram | MetricType::GaugeHistogram) && !suffix.is_empty()
        {
            let same = fam
                .hist
                .as_ref()
                .is_some_and(|r| r.group == group && r.ts == s.timestamp);
            if !same {
                if let Some(run) = fam.hist.take() {
                    run.check(&name)?;
                }
                fam.hist = Some(HistRun::new(group, s.timestamp));
            }
            if let Some(run) = fam.hist.as_mut() {
                match suffix {
                    "_bucket" => {
                        let b = get("le").and_then(label_float).unwrap_or(f64::NAN);
                        if b < 0.0 {
                            run.negative_buckets = true;
                        }
                        if run.bucket.is_some_and(|prev| b <= prev) {
                            return Err(format!("buckets out of order: {name}"));
                        }
                        if s.value < run.value {
                            return Err(format!("bucket values out of order: {name}"));
                        }
                        run.bucket = Some(b);
                        run.value = s.value;
                    }
                    "_count" | "_gcount" => run.count = Some(s.value),
                    "_sum" => run.has_sum = true,
                    "_gsum" => {
                        run.has_gsum = true;
                        if s.value < 0.0 {
                            run.negative_gsum = true;
                        }
                    }
                    _ => {}
                }
            }
        }
        let v = s.value;
        if kind == MetricType::StateSet && v != 0.0 && v != 1.0 {
            return Err(format!("stateset samples can only be 0 or 1: {line}"));
        }
        if kind == MetricType::Info && v != 1.0 {
            return Err(format!("info samples can only have value one: {line}"));
        }
        if kind == MetricType::Summary && sname == name && v < 0.0 {
            return Err(format!("quantile values cannot be negative: {line}"));
        }
        let counter_like = ["_total", "_sum", "_count", "_bucket", "_gcount", "_gsum"];
        if counter_like.contains(&suffix) && v.is_nan() {
            return Err(format!("counter-like samples cannot be NaN: {line}"));
        }
        if counter_like[..5].contains(&suffix) && v < 0.0 {
            return Err(format!("counter-like samples cannot be negative: {line}"));
        }
        if let Some(x) = &s.exemplar {
            let allowed = (matches!(kind, MetricType::Histogram | MetricType::GaugeHistogram)
                && sname.ends_with("_bucket"))
                || (kind == MetricType::Counter && sname.ends_with("_total"));
            if !allowed {
                return Err(format!(
                    "only histogram/gaugehistogram buckets and counters can have exemplars: {line}"
                ));
            }
            let chars: usize = x
                .labels()
                .map(|(n, v)| n.chars().count() + v.chars().count())
                .sum();
            if chars > 128 {
                return Err(format!("exemplar labels are too long: {line}"));
            }
        }
        Ok(())
    }
}

impl Family {
    fn new(name: &str, kind: Option<MetricType>) -> Family {
        Family {
            name: name.to_owned(),
            kind,
            has_help: false,
            unit: None,
            has_samples: false,
            allowed: vec![name.to_owned()],
            group: None,
            group_ts: None,
            seen_groups: BTreeSet::new(),
            hist: None,
        }
    }
}

impl HistRun {
    fn new(group: Vec<(String, String)>, ts: Option<i64>) -> HistRun {
        HistRun {
            group,
            ts,
            bucket: None,
            value: 0.0,
            count: None,
            has_sum: false,
            has_gsum: false,
            negative_buckets: false,
            negative_gsum: false,
        }
    }

    fn check(&self, name: &str) -> Result<(), String> {
        if self.bucket != Some(f64::INFINITY) {
            return Err(format!("+Inf bucket missing: {name}"));
        }
        if self.count.is_some_and(|c| c != self.value) {
            return Err(format!("count does not match +Inf value: {name}"));
        }
        if self.has_sum && self.count.is_none() {
            return Err(format!("_count must be present if _sum is present: {name}"));
        }
        if self.has_gsum && self.count.is_none() {
            return Err(format!(
                "_gcount must be present if _gsum is present: {name}"
            ));
        }
        if !(self.has_sum || self.has_gsum) && self.count.is_some() {
            return Err(format!(
                "_sum/_gsum must be present if _count is present: {name}"
            ));
        }
        if self.negative_buckets && self.has_sum {
            return Err(format!("cannot have _sum with negative buckets: {name}"));
        }
        if !self.negative_buckets && self.negative_gsum {
            return Err(format!(
                "cannot have negative _gsum with non-negative buckets: {name}"
            ));
        }
        Ok(())
    }
}
