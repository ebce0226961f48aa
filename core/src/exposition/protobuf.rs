//! The Prometheus protobuf exposition format: a body of length-delimited
//! `io.prometheus.client.MetricFamily` messages (`scrape_protocols: [PrometheusProto]`,
//! `Content-Type: application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
//! encoding=delimited`), decoded by hand from the wire format.
//!
//! Each family becomes the entries the text parsers give, in the order Prometheus 3.x's
//! `ProtobufParser.Next` gives them: `Help` (always), `Unit` (if set), `Type`, then the
//! samples of each metric. A summary is `_count`, `_sum`, then one sample per quantile;
//! a classic histogram `_count`, `_sum`, then one `_bucket` per bucket and a `+Inf`
//! bucket (the count) if the last bucket is not `+Inf`. `quantile` and `le` values are
//! formatted as 3.x formats them. Native-histogram parts are ignored (3.x with
//! `scrape_native_histograms: false`, the default): a histogram with no classic bucket
//! is its count, sum and `+Inf` bucket.
//!
//! A sample's series text (the series cache's key) is written as the text format would
//! write it, `name{label="value",…}` (quoted where a name needs it), so everything after
//! the parser treats protobuf and text alike. Timestamps of 0 mean none, as in 3.x
//! (proto3 cannot tell unset from 0); a counter's, summary's or histogram's
//! `start_timestamp` is the sample's start timestamp.

use std::borrow::Cow;

use super::{
    Entry, Exemplar, HistogramOptions, HistogramSample, MetricType, Sample, SyntaxError, syntax,
};
use crate::histogram::{ClassicHistogram, Counts, Histogram, ResetHint};

/// The protobuf wire types this format uses.
const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const I32: u8 = 5;

/// A read position in one message.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    /// Where `b` starts in the family message, for error offsets.
    base: usize,
}

impl<'a> Reader<'a> {
    #[inline(always)]
    fn new(b: &'a [u8], base: usize) -> Reader<'a> {
        Reader { b, at: 0, base }
    }

    #[inline(always)]
    fn done(&self) -> bool {
        self.at >= self.b.len()
    }

    #[cold]
    #[inline(never)]
    fn err<T>(&self, what: &str) -> Result<T, SyntaxError> {
        syntax(self.base + self.at, format!("protobuf: {what}"))
    }

    #[inline(always)]
    fn varint(&mut self) -> Result<u64, SyntaxError> {
        // Most varints here (keys, lengths of names and values) are one byte.
        if let Some(&byte) = self.b.get(self.at)
            && byte < 0x80
        {
            self.at += 1;
            return Ok(u64::from(byte));
        }
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.b.get(self.at) else {
                return self.err("truncated varint");
            };
            self.at += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        self.err("varint longer than 10 bytes")
    }

    #[inline(always)]
    fn fixed64(&mut self) -> Result<u64, SyntaxError> {
        let Some(s) = self.b.get(self.at..self.at + 8) else {
            return self.err("truncated fixed64");
        };
        self.at += 8;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }

    #[inline(always)]
    fn bytes(&mut self) -> Result<(&'a [u8], usize), SyntaxError> {
        let n = self.varint()?;
        let start = self.at;
        let Some(end) = usize::try_from(n).ok().and_then(|n| start.checked_add(n)) else {
            return self.err("length out of range");
        };
        let Some(s) = self.b.get(start..end) else {
            return self.err("truncated length-delimited field");
        };
        self.at = end;
        Ok((s, self.base + start))
    }

    fn string(&mut self) -> Result<&'a str, SyntaxError> {
        let (s, at) = self.bytes()?;
        std::str::from_utf8(s)
            .or_else(|e| syntax(at + e.valid_up_to(), "protobuf: invalid UTF-8 in a string"))
    }

    /// The next field's number and wire type; `None` at the end.
    #[inline(always)]
    fn field(&mut self) -> Result<Option<(u64, u8)>, SyntaxError> {
        if self.done() {
            return Ok(None);
        }
        let key = self.varint()?;
        let wire = (key & 7) as u8;
        let n = key >> 3;
        if n == 0 {
            return self.err("field number 0");
        }
        Ok(Some((n, wire)))
    }

    fn skip(&mut self, wire: u8) -> Result<(), SyntaxError> {
        match wire {
            VARINT => self.varint().map(|_| ()),
            I64 => self.fixed64().map(|_| ()),
            LEN => self.bytes().map(|_| ()),
            I32 => {
                if self.at + 4 > self.b.len() {
                    return self.err("truncated fixed32");
                }
                self.at += 4;
                Ok(())
            }
            _ => self.err("unsupported wire type (groups are not used by this format)"),
        }
    }

    /// A field of wire type `want`, or an error naming it.
    #[inline(always)]
    fn expect(&self, wire: u8, want: u8, what: &str) -> Result<(), SyntaxError> {
        if wire == want {
            Ok(())
        } else {
            self.wrong_wire(wire, want, what)
        }
    }

    #[cold]
    #[inline(never)]
    fn wrong_wire(&self, wire: u8, want: u8, what: &str) -> Result<(), SyntaxError> {
        self.err(&format!("{what} has wire type {wire}, want {want}"))
    }

    #[inline]
    fn double(&mut self, wire: u8, what: &str) -> Result<f64, SyntaxError> {
        self.expect(wire, I64, what)?;
        Ok(f64::from_bits(self.fixed64()?))
    }
}

/// A `google.protobuf.Timestamp` as milliseconds (`seconds*1000 + nanos/1e6`, as 3.x).
fn timestamp(b: &[u8], base: usize) -> Result<i64, SyntaxError> {
    let mut r = Reader::new(b, base);
    let (mut secs, mut nanos) = (0i64, 0i64);
    while let Some((n, wire)) = r.field()? {
        match n {
            1 => {
                r.expect(wire, VARINT, "Timestamp.seconds")?;
                secs = r.varint()? as i64;
            }
            2 => {
                r.expect(wire, VARINT, "Timestamp.nanos")?;
                nanos = i64::from(r.varint()? as i32);
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(secs.wrapping_mul(1000).wrapping_add(nanos / 1_000_000))
}

/// An exemplar as decoded: labels, value, timestamp.
#[derive(Default)]
struct RawExemplar<'a> {
    labels: Vec<Pair<'a>>,
    value: f64,
    ts: Option<i64>,
}

/// A label pair's name and value, not yet checked for UTF-8: the series text they go
/// into is checked once, whole.
type Pair<'a> = (&'a [u8], &'a [u8]);

/// A label pair, and whether it was written in the usual form (name then value, each
/// shorter than 128 bytes), which is read directly.
fn label_pair(b: &[u8], base: usize) -> Result<(Pair<'_>, bool), SyntaxError> {
    if let [0x0a, n, rest @ ..] = b
        && *n < 0x80
        && let Some((name, rest)) = rest.split_at_checked(usize::from(*n))
        && let [0x12, v, value @ ..] = rest
        && *v < 0x80
        && usize::from(*v) == value.len()
    {
        return Ok(((name, value), true));
    }
    let mut r = Reader::new(b, base);
    let (mut name, mut value): Pair<'_> = (b"", b"");
    while let Some((n, wire)) = r.field()? {
        match n {
            1 => {
                r.expect(wire, LEN, "LabelPair.name")?;
                name = r.bytes()?.0;
            }
            2 => {
                r.expect(wire, LEN, "LabelPair.value")?;
                value = r.bytes()?.0;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(((name, value), false))
}

fn exemplar<'a>(b: &'a [u8], base: usize) -> Result<RawExemplar<'a>, SyntaxError> {
    let mut r = Reader::new(b, base);
    let mut e = RawExemplar::default();
    while let Some((n, wire)) = r.field()? {
        match n {
            1 => {
                r.expect(wire, LEN, "Exemplar.label")?;
                let (s, at) = r.bytes()?;
                e.labels.push(label_pair(s, at)?.0);
            }
            2 => e.value = r.double(wire, "Exemplar.value")?,
            3 => {
                r.expect(wire, LEN, "Exemplar.timestamp")?;
                let (s, at) = r.bytes()?;
                e.ts = Some(timestamp(s, at)?);
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(e)
}

/// One `Metric`, with the parts of every type (only the family's type is read).
#[derive(Default)]
struct RawMetric<'a> {
    labels: Vec<Pair<'a>>,
    /// The label fields as written, when already in the compact form.
    label_raw: Option<&'a [u8]>,
    /// gauge, counter or untyped value.
    value: f64,
    counter_exemplar: Option<RawExemplar<'a>>,
    start: Option<i64>,
    count: f64,
    /// A histogram's `sample_count` as written.
    count_int: u64,
    count_float: f64,
    sum: f64,
    quantiles: Vec<(f64, f64)>,
    /// (upper bound, cumulative count, count float, exemplar).
    buckets: Vec<(f64, f64, f64, Option<RawExemplar<'a>>)>,
    timestamp_ms: i64,
    /// The native parts of a histogram, if it has any (boxed: most metrics have none,
    /// and a `RawMetric` is built and moved once per metric).
    native: Option<Box<Native<'a>>>,
}

/// The native parts of a `Histogram` message, as written.
#[derive(Default)]
struct Native<'a> {
    schema: i32,
    zero_threshold: f64,
    zero_count: u64,
    zero_count_float: f64,
    negative_spans: Vec<crate::histogram::Span>,
    negative_deltas: Vec<i64>,
    negative_counts: Vec<f64>,
    positive_spans: Vec<crate::histogram::Span>,
    positive_deltas: Vec<i64>,
    positive_counts: Vec<f64>,
    exemplars: Vec<RawExemplar<'a>>,
}

impl Native<'_> {
    /// 3.x `isNativeHistogram`: spans, a zero threshold or an (integer) zero count.
    fn present(&self) -> bool {
        !self.positive_spans.is_empty()
            || !self.negative_spans.is_empty()
            || self.zero_threshold > 0.0
            || self.zero_count > 0
    }
}

/// Zigzag decoding (`sint32`, `sint64`).
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A `BucketSpan`.
fn span(b: &[u8], base: usize) -> Result<crate::histogram::Span, SyntaxError> {
    let mut r = Reader::new(b, base);
    let mut s = crate::histogram::Span::default();
    while let Some((n, wire)) = r.field()? {
        match n {
            1 => {
                r.expect(wire, VARINT, "BucketSpan.offset")?;
                s.offset = unzigzag(r.varint()?) as i32;
            }
            2 => {
                r.expect(wire, VARINT, "BucketSpan.length")?;
                s.length = r.varint()? as u32;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(s)
}

/// A repeated `sint64`, packed or not.
fn sint64s(r: &mut Reader<'_>, wire: u8, out: &mut Vec<i64>) -> Result<(), SyntaxError> {
    if wire == LEN {
        let (b, at) = r.bytes()?;
        let mut p = Reader::new(b, at);
        while !p.done() {
            out.push(unzigzag(p.varint()?));
        }
        return Ok(());
    }
    r.expect(wire, VARINT, "a repeated sint64")?;
    out.push(unzigzag(r.varint()?));
    Ok(())
}

/// A repeated `double`, packed or not.
fn doubles(r: &mut Reader<'_>, wire: u8, out: &mut Vec<f64>) -> Result<(), SyntaxError> {
    if wire == LEN {
        let (b, at) = r.bytes()?;
        let mut p = Reader::new(b, at);
        while !p.done() {
            out.push(f64::from_bits(p.fixed64()?));
        }
        return Ok(());
    }
    out.push(r.double(wire, "a repeated double")?);
    Ok(())
}

fn metric<'a>(
    b: &'a [u8],
    base: usize,
    kind: i64,
    labels: Vec<Pair<'a>>,
) -> Result<RawMetric<'a>, SyntaxError> {
    let mut r = Reader::new(b, base);
    let mut m = RawMetric {
        labels,
        ..RawMetric::default()
    };
    m.labels.clear();
    // The label fields as one slice of the message, when they are adjacent and each is
    // written `0x0a len 0x0a n name 0x12 v value` with one-byte lengths: the compact
    // block the decoder would write, ready to copy whole.
    let mut raw: Option<(usize, usize)> = None;
    let mut raw_ok = true;
    loop {
        let field_start = r.at;
        let Some((n, wire)) = r.field()? else { break };
        match n {
            1 => {
                r.expect(wire, LEN, "Metric.label")?;
                let (s, at) = r.bytes()?;
                let (pair, usual) = label_pair(s, at)?;
                // One byte of key, one of length, then the usual pair.
                raw_ok &= usual && r.at - field_start == s.len() + 2;
                raw = match raw {
                    None => Some((field_start, r.at)),
                    Some((a, e)) if e == field_start => Some((a, r.at)),
                    Some(_) => {
                        raw_ok = false;
                        raw
                    }
                };
                m.labels.push(pair);
            }
            // The value of the family's type only (3.x reads `GetCounter()` for a
            // counter, and so on).
            2 | 5 if (n == 2 && kind == 1) || (n == 5 && kind == 3) => {
                r.expect(wire, LEN, "Metric value")?;
                let (s, at) = r.bytes()?;
                let mut v = Reader::new(s, at);
                while let Some((f, w)) = v.field()? {
                    match f {
                        1 => m.value = v.double(w, "value")?,
                        _ => v.skip(w)?,
                    }
                }
            }
            3 if kind == 0 => {
                r.expect(wire, LEN, "Metric.counter")?;
                let (s, at) = r.bytes()?;
                let mut v = Reader::new(s, at);
                while let Some((f, w)) = v.field()? {
                    match f {
                        1 => m.value = v.double(w, "Counter.value")?,
                        2 => {
                            v.expect(w, LEN, "Counter.exemplar")?;
                            let (e, at) = v.bytes()?;
                            m.counter_exemplar = Some(exemplar(e, at)?);
                        }
                        3 => {
                            v.expect(w, LEN, "Counter.start_timestamp")?;
                            let (t, at) = v.bytes()?;
                            m.start = Some(timestamp(t, at)?);
                        }
                        _ => v.skip(w)?,
                    }
                }
            }
            4 if kind == 2 => {
                r.expect(wire, LEN, "Metric.summary")?;
                let (s, at) = r.bytes()?;
                let mut v = Reader::new(s, at);
                while let Some((f, w)) = v.field()? {
                    match f {
                        1 => {
                            v.expect(w, VARINT, "Summary.sample_count")?;
                            m.count = v.varint()? as f64;
                        }
                        2 => m.sum = v.double(w, "Summary.sample_sum")?,
                        3 => {
                            v.expect(w, LEN, "Summary.quantile")?;
                            let (q, at) = v.bytes()?;
                            let mut qr = Reader::new(q, at);
                            let (mut quantile, mut value) = (0.0, 0.0);
                            while let Some((g, w2)) = qr.field()? {
                                match g {
                                    1 => quantile = qr.double(w2, "Quantile.quantile")?,
                                    2 => value = qr.double(w2, "Quantile.value")?,
                                    _ => qr.skip(w2)?,
                                }
                            }
                            m.quantiles.push((quantile, value));
                        }
                        4 => {
                            v.expect(w, LEN, "Summary.start_timestamp")?;
                            let (t, at) = v.bytes()?;
                            m.start = Some(timestamp(t, at)?);
                        }
                        _ => v.skip(w)?,
                    }
                }
            }
            7 if kind == 4 || kind == 5 => {
                r.expect(wire, LEN, "Metric.histogram")?;
                let (s, at) = r.bytes()?;
                let mut v = Reader::new(s, at);
                while let Some((f, w)) = v.field()? {
                    match f {
                        1 => {
                            v.expect(w, VARINT, "Histogram.sample_count")?;
                            m.count_int = v.varint()?;
                            m.count = m.count_int as f64;
                        }
                        4 => m.count_float = v.double(w, "Histogram.sample_count_float")?,
                        2 => m.sum = v.double(w, "Histogram.sample_sum")?,
                        3 => {
                            v.expect(w, LEN, "Histogram.bucket")?;
                            let (bb, at) = v.bytes()?;
                            let mut br = Reader::new(bb, at);
                            let (mut upper, mut cum, mut cumf, mut ex) = (0.0, 0.0, 0.0, None);
                            while let Some((g, w2)) = br.field()? {
                                match g {
                                    1 => {
                                        br.expect(w2, VARINT, "Bucket.cumulative_count")?;
                                        cum = br.varint()? as f64;
                                    }
                                    4 => cumf = br.double(w2, "Bucket.cumulative_count_float")?,
                                    2 => upper = br.double(w2, "Bucket.upper_bound")?,
                                    3 => {
                                        br.expect(w2, LEN, "Bucket.exemplar")?;
                                        let (e, at) = br.bytes()?;
                                        ex = Some(exemplar(e, at)?);
                                    }
                                    _ => br.skip(w2)?,
                                }
                            }
                            m.buckets.push((upper, cum, cumf, ex));
                        }
                        15 => {
                            v.expect(w, LEN, "Histogram.start_timestamp")?;
                            let (t, at) = v.bytes()?;
                            m.start = Some(timestamp(t, at)?);
                        }
                        5 => {
                            v.expect(w, VARINT, "Histogram.schema")?;
                            m.native.get_or_insert_default().schema = unzigzag(v.varint()?) as i32;
                        }
                        6 => {
                            m.native.get_or_insert_default().zero_threshold =
                                v.double(w, "Histogram.zero_threshold")?
                        }
                        7 => {
                            v.expect(w, VARINT, "Histogram.zero_count")?;
                            m.native.get_or_insert_default().zero_count = v.varint()?;
                        }
                        8 => {
                            m.native.get_or_insert_default().zero_count_float =
                                v.double(w, "Histogram.zero_count_float")?
                        }
                        9 | 12 => {
                            v.expect(w, LEN, "Histogram span")?;
                            let (b, at) = v.bytes()?;
                            let sp = span(b, at)?;
                            if f == 9 {
                                m.native.get_or_insert_default().negative_spans.push(sp);
                            } else {
                                m.native.get_or_insert_default().positive_spans.push(sp);
                            }
                        }
                        10 => sint64s(
                            &mut v,
                            w,
                            &mut m.native.get_or_insert_default().negative_deltas,
                        )?,
                        13 => sint64s(
                            &mut v,
                            w,
                            &mut m.native.get_or_insert_default().positive_deltas,
                        )?,
                        11 => doubles(
                            &mut v,
                            w,
                            &mut m.native.get_or_insert_default().negative_counts,
                        )?,
                        14 => doubles(
                            &mut v,
                            w,
                            &mut m.native.get_or_insert_default().positive_counts,
                        )?,
                        16 => {
                            v.expect(w, LEN, "Histogram.exemplars")?;
                            let (e, at) = v.bytes()?;
                            m.native
                                .get_or_insert_default()
                                .exemplars
                                .push(exemplar(e, at)?);
                        }
                        _ => v.skip(w)?,
                    }
                }
            }
            6 => {
                r.expect(wire, VARINT, "Metric.timestamp_ms")?;
                m.timestamp_ms = r.varint()? as i64;
            }
            _ => r.skip(wire)?,
        }
    }
    m.label_raw = match raw {
        Some((a, e)) if raw_ok => b.get(a..e),
        None => Some(&[]),
        Some(_) => None,
    };
    Ok(m)
}

/// Reused text for the entries of one family.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    series: Vec<u8>,
    name: String,
    exemplar: Vec<u8>,
}

/// A name that needs no quotes in the text format (a label name, or with `metric` a
/// metric name, which may also hold `:`).
pub(crate) fn is_legacy_name(s: &[u8], metric: bool) -> bool {
    use super::text::{is_label_char, is_label_start, is_name_char, is_name_start};
    match s.split_first() {
        None => false,
        Some((&first, rest)) if metric => {
            is_name_start(first) && rest.iter().all(|&c| is_name_char(c))
        }
        Some((&first, rest)) => is_label_start(first) && rest.iter().all(|&c| is_label_char(c)),
    }
}

/// Appends `s` quoted with the text format's escapes.
pub(crate) fn push_quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let plain = if s.len() < 32 {
        // Short strings (most names and values): a loop beats setting up a search.
        !s.iter().any(|&c| matches!(c, b'\\' | b'"' | b'\n'))
    } else {
        memchr::memchr3(b'\\', b'"', b'\n', s).is_none()
    };
    if plain {
        out.extend_from_slice(s);
        out.push(b'"');
        return;
    }
    for &c in s {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// Appends one label pair in the compact form (`0x0a len 0x0a n name 0x12 v value`);
/// every length must be below 128.
fn put_compact(series: &mut Vec<u8>, n: &[u8], v: &[u8]) {
    series.extend_from_slice(&[0x0a, (n.len() + v.len() + 4) as u8, 0x0a, n.len() as u8]);
    series.extend_from_slice(n);
    series.extend_from_slice(&[0x12, v.len() as u8]);
    series.extend_from_slice(v);
}

/// Appends `name="value",…` for `labels` (names quoted where needed).
pub(crate) fn push_pairs<'x>(out: &mut Vec<u8>, labels: impl Iterator<Item = Pair<'x>>) {
    let mut first = true;
    for (n, v) in labels {
        if !first {
            out.push(b',');
        }
        first = false;
        if is_legacy_name(n, false) {
            out.extend_from_slice(n);
        } else {
            push_quoted(out, n);
        }
        out.push(b'=');
        push_quoted(out, v);
    }
}

/// What [`next_family`] stopped on.
#[derive(Debug)]
pub(crate) enum ProtoError<E> {
    /// The body is malformed.
    Syntax(SyntaxError),
    /// The consumer refused an entry.
    Sink(E),
}

impl<E> From<SyntaxError> for ProtoError<E> {
    fn from(e: SyntaxError) -> Self {
        ProtoError::Syntax(e)
    }
}

/// The delimited family at the start of `b`: its entries go to `sink`, and the bytes it
/// took are returned; `None` if `b` ends inside it (more bytes may come unless `eof`).
/// A family longer than `max` bytes is an error (bounded memory).
pub(crate) fn next_family<E>(
    b: &[u8],
    eof: bool,
    max: usize,
    opts: HistogramOptions,
    scratch: &mut Scratch,
    sink: &mut dyn FnMut(Entry<'_>) -> Result<(), E>,
) -> Result<Option<usize>, ProtoError<E>> {
    let mut r = Reader::new(b, 0);
    let len = match r.varint() {
        Ok(n) => n,
        Err(_) if !eof && b.len() < 10 => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let start = r.at;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > max {
        return Err(syntax(
            0,
            format!("protobuf: a metric family of {len} bytes is longer than {max}"),
        )?);
    }
    let Some(msg) = b.get(start..start + len) else {
        if eof {
            return Err(syntax(
                b.len(),
                "protobuf: the body ends inside a metric family",
            )?);
        }
        return Ok(None);
    };
    family(msg, start, opts, scratch, sink)?;
    Ok(Some(start + len))
}

fn family<E>(
    msg: &[u8],
    base: usize,
    opts: HistogramOptions,
    scratch: &mut Scratch,
    sink: &mut dyn FnMut(Entry<'_>) -> Result<(), E>,
) -> Result<(), ProtoError<E>> {
    let mut r = Reader::new(msg, base);
    let (mut name, mut help, mut unit, mut kind) = ("", "", "", 0i64);
    let mut metrics: Vec<(&[u8], usize)> = Vec::new();
    while let Some((n, wire)) = r.field()? {
        match n {
            1 => {
                r.expect(wire, LEN, "MetricFamily.name")?;
                name = r.string()?;
            }
            2 => {
                r.expect(wire, LEN, "MetricFamily.help")?;
                help = r.string()?;
            }
            3 => {
                r.expect(wire, VARINT, "MetricFamily.type")?;
                kind = r.varint()? as i64;
            }
            4 => {
                r.expect(wire, LEN, "MetricFamily.metric")?;
                metrics.push(r.bytes()?);
            }
            5 => {
                r.expect(wire, LEN, "MetricFamily.unit")?;
                unit = r.string()?;
            }
            _ => r.skip(wire)?,
        }
    }
    // 3.x skips a family without metrics entirely.
    if metrics.is_empty() {
        return Ok(());
    }
    if name.is_empty() {
        return Err(syntax(base, "protobuf: invalid metric name: (empty)")?);
    }
    let mtype = match kind {
        0 => MetricType::Counter,
        1 => MetricType::Gauge,
        2 => MetricType::Summary,
        3 => MetricType::Unknown,
        4 => MetricType::Histogram,
        5 => MetricType::GaugeHistogram,
        other => {
            return Err(syntax(
                base,
                format!("protobuf: unknown metric type for metric {name:?}: {other}"),
            )?);
        }
    };
    sink(Entry::Help {
        name,
        text: Cow::Borrowed(help),
    })
    .map_err(ProtoError::Sink)?;
    if !unit.is_empty() {
        sink(Entry::Unit { name, unit }).map_err(ProtoError::Sink)?;
    }
    sink(Entry::Type { name, kind: mtype }).map_err(ProtoError::Sink)?;
    // One label vector for the family's metrics.
    let mut labels = Vec::new();
    for (m, at) in metrics {
        let m = metric(m, at, kind, std::mem::take(&mut labels))?;
        let ts = (m.timestamp_ms != 0).then_some(m.timestamp_ms);
        let mut emit = |suffix: &str,
                        magic: Option<(&str, String)>,
                        value: f64,
                        exs: &[&RawExemplar<'_>],
                        hist: Option<Histogram>|
         -> Result<(), ProtoError<E>> {
            let Scratch {
                series,
                name: full,
                exemplar: ex_text,
            } = &mut *scratch;
            full.clear();
            full.push_str(name);
            full.push_str(suffix);
            series.clear();
            // The compact form, when every length fits a byte: the labels as protobuf
            // `LabelPair` fields (no escaping, one copy), then the name. Lengths under
            // 128 are single ASCII bytes, so the text is UTF-8 exactly when the names
            // and values are; one check covers them all.
            let short = |n: &[u8], v: &[u8]| n.len() + v.len() + 4 < 0x80;
            let compact = full.len() < 0x80
                && m.labels.iter().all(|(n, v)| short(n, v))
                && magic
                    .as_ref()
                    .is_none_or(|(n, v)| short(n.as_bytes(), v.as_bytes()));
            let (block, proto) = if compact {
                match m.label_raw {
                    // Written in the compact form already: one copy.
                    Some(raw) => series.extend_from_slice(raw),
                    None => {
                        for (n, v) in &m.labels {
                            put_compact(series, n, v);
                        }
                    }
                }
                if let Some((n, v)) = &magic {
                    put_compact(series, n.as_bytes(), v.as_bytes());
                }
                let block_end = series.len();
                series.extend_from_slice(&[0x1a, full.len() as u8]);
                series.extend_from_slice(full.as_bytes());
                (0..block_end, true)
            } else {
                // Otherwise the text form, as the text format writes it.
                let legacy = is_legacy_name(full.as_bytes(), true);
                if legacy {
                    series.extend_from_slice(full.as_bytes());
                    series.push(b'{');
                } else {
                    series.push(b'{');
                    push_quoted(series, full.as_bytes());
                    if !m.labels.is_empty() || magic.is_some() {
                        series.push(b',');
                    }
                }
                let block_start = series.len();
                push_pairs(series, m.labels.iter().copied());
                if let Some((n, v)) = &magic {
                    if !m.labels.is_empty() {
                        series.push(b',');
                    }
                    push_pairs(series, std::iter::once((n.as_bytes(), v.as_bytes())));
                }
                let block_end = series.len();
                series.push(b'}');
                // The quoted name is part of the block, as a text parser sees it.
                (if legacy { block_start } else { 1 }..block_end, false)
            };
            // Every name and value of the series is checked here, once.
            let series = std::str::from_utf8(series)
                .or_else(|_| syntax(at, "protobuf: invalid UTF-8 in a label name or value"))?;
            ex_text.clear();
            let mut ranges = Vec::with_capacity(exs.len());
            for e in exs {
                let a = ex_text.len();
                push_pairs(ex_text, e.labels.iter().copied());
                ranges.push(a..ex_text.len());
            }
            let ex_text = std::str::from_utf8(ex_text)
                .or_else(|_| syntax(at, "protobuf: invalid UTF-8 in an exemplar label"))?;
            let mut exemplars = Vec::with_capacity(exs.len());
            for (e, r) in exs.iter().zip(ranges) {
                let Some(label_block) = ex_text.get(r) else {
                    return Err(syntax(at, "protobuf: invalid UTF-8 in an exemplar label")?);
                };
                exemplars.push(Exemplar {
                    label_block,
                    value: e.value,
                    timestamp: e.ts,
                });
            }
            let value = if value.is_nan() {
                f64::from_bits(super::float::NORMAL_NAN)
            } else {
                value
            };
            let mut sample = Sample {
                series,
                name: Cow::Borrowed(full.as_str()),
                label_block: &series[block],
                value,
                timestamp: ts,
                exemplar: None,
                kind: mtype,
                // Always set for protobuf (0: none, as 3.x reads an absent field), so
                // that nothing downstream looks for `_created` lines in a protobuf body.
                start: Some(m.start.unwrap_or(0)),
                proto,
            };
            let entry = match hist {
                None => {
                    sample.exemplar = exemplars.pop().map(Box::new);
                    Entry::Sample(sample)
                }
                Some(histogram) => Entry::Histogram(Box::new(HistogramSample {
                    sample,
                    histogram,
                    exemplars,
                })),
            };
            sink(entry).map_err(ProtoError::Sink)
        };
        match mtype {
            MetricType::Counter => {
                let ex: Vec<&RawExemplar<'_>> = m.counter_exemplar.iter().collect();
                emit("", None, m.value, &ex, None)?
            }
            MetricType::Gauge | MetricType::Unknown => emit("", None, m.value, &[], None)?,
            MetricType::Summary => {
                emit("_count", None, m.count, &[], None)?;
                emit("_sum", None, m.sum, &[], None)?;
                for &(q, v) in &m.quantiles {
                    let q = super::float::format_openmetrics_float(q);
                    emit("", Some(("quantile", q)), v, &[], None)?;
                }
            }
            _ => {
                let native = opts.native && m.native.as_ref().is_some_and(|n| n.present());
                if native {
                    // 3.x `Next`, state EntryType: the native histogram first.
                    let h = native_histogram(&m, mtype, name, at)?;
                    emit("", None, 0.0, &histogram_exemplars(&m), Some(h))?;
                }
                // Its classic series: when it is not native, unless only the converted
                // form is wanted; after a native one only if asked for and present.
                let classic = if native {
                    opts.keep_classic && !m.buckets.is_empty()
                } else {
                    !opts.nhcb || opts.keep_classic
                };
                if classic {
                    let count = if m.count_float > 0.0 {
                        m.count_float
                    } else {
                        m.count
                    };
                    emit("_count", None, count, &[], None)?;
                    emit("_sum", None, m.sum, &[], None)?;
                    let mut inf = false;
                    for (upper, cum, cumf, ex) in &m.buckets {
                        let v = if *cumf > 0.0 { *cumf } else { *cum };
                        inf = upper.is_infinite() && *upper > 0.0;
                        let le = super::float::format_openmetrics_float(*upper);
                        let ex: Vec<&RawExemplar<'_>> = ex.iter().collect();
                        emit("_bucket", Some(("le", le)), v, &ex, None)?;
                        if inf {
                            break;
                        }
                    }
                    if !inf {
                        emit("_bucket", Some(("le", "+Inf".to_owned())), count, &[], None)?;
                    }
                }
                if !native && opts.nhcb {
                    // 3.x `convertToNHCB`, after the classic series if they are kept.
                    let h = nhcb(&m, mtype).map_err(|message| SyntaxError {
                        offset: at,
                        message: format!(
                            "protobuf: histogram {}: {message}",
                            crate::goquote::quote(name)
                        ),
                    })?;
                    emit("", None, 0.0, &histogram_exemplars(&m), Some(h))?;
                }
            }
        }
        labels = m.labels;
    }
    Ok(())
}

/// The exemplars a native histogram (or one converted from its classic buckets)
/// carries in 3.x's `ProtobufParser.Exemplar`: those of its `exemplars` field if it
/// has any, else those of its classic buckets; only ones with a timestamp.
fn histogram_exemplars<'x, 'a>(m: &'x RawMetric<'a>) -> Vec<&'x RawExemplar<'a>> {
    if let Some(n) = m.native.as_ref().filter(|n| !n.exemplars.is_empty()) {
        n.exemplars.iter().filter(|e| e.ts.is_some()).collect()
    } else {
        m.buckets
            .iter()
            .filter_map(|b| b.3.as_ref())
            .filter(|e| e.ts.is_some())
            .collect()
    }
}

/// The native histogram of a metric (3.x `ProtobufParser.Histogram`): float if it has
/// a float count or float zero count, integer otherwise; spans checked against the
/// buckets first (`checkNativeHistogramConsistency`), then compacted.
fn native_histogram(
    m: &RawMetric<'_>,
    mtype: MetricType,
    name: &str,
    at: usize,
) -> Result<Histogram, SyntaxError> {
    let none = Native::default();
    let n = m.native.as_deref().unwrap_or(&none);
    let float = m.count_float > 0.0 || n.zero_count_float > 0.0;
    let (np, nn) = if float {
        (n.positive_counts.len(), n.negative_counts.len())
    } else {
        (n.positive_deltas.len(), n.negative_deltas.len())
    };
    for (side, spans, have) in [
        ("positive", &n.positive_spans, np),
        ("negative", &n.negative_spans, nn),
    ] {
        let need: u64 = spans.iter().map(|s| u64::from(s.length)).sum();
        if need != have as u64 {
            return syntax(
                at,
                format!(
                    "histogram {}: {side} side: spans require {need} buckets, have {have}",
                    crate::goquote::quote(name)
                ),
            );
        }
        // A span going backwards cannot be compacted as Prometheus does it; refuse it
        // with the message validation would give.
        if let Err(e) = crate::histogram::check_spans(spans, have) {
            return syntax(at, format!("{side} side: {e}"));
        }
    }
    let counts = if float {
        Counts::Float {
            count: m.count_float,
            zero_count: n.zero_count_float,
            positive: n.positive_counts.clone(),
            negative: n.negative_counts.clone(),
        }
    } else {
        Counts::Int {
            count: m.count_int,
            zero_count: n.zero_count,
            positive: Histogram::absolute(n.positive_deltas.iter().copied()),
            negative: Histogram::absolute(n.negative_deltas.iter().copied()),
        }
    };
    let mut h = Histogram {
        hint: if mtype == MetricType::GaugeHistogram {
            ResetHint::Gauge
        } else {
            ResetHint::Unknown
        },
        schema: n.schema,
        zero_threshold: n.zero_threshold,
        sum: m.sum,
        positive_spans: n.positive_spans.clone(),
        negative_spans: n.negative_spans.clone(),
        counts,
        custom_values: Vec::new(),
    };
    h.compact(0);
    Ok(h)
}

/// A classic protobuf histogram converted to custom buckets (3.x `convertToNHCB`).
fn nhcb(m: &RawMetric<'_>, mtype: MetricType) -> Result<Histogram, String> {
    let mut c = ClassicHistogram::new();
    c.set_count(if m.count_float != 0.0 {
        m.count_float
    } else {
        m.count
    });
    c.set_sum(m.sum);
    for (upper, cum, cumf, _) in &m.buckets {
        c.set_bucket(*upper, if *cumf != 0.0 { *cumf } else { *cum });
    }
    let mut h = c.convert()?;
    if mtype == MetricType::GaugeHistogram {
        h.hint = ResetHint::Gauge;
    }
    Ok(h)
}
