//! WAL record payloads: series (type 1), samples (type 2), exemplars (type 4), metadata
//! (type 6) and native histograms (types 7–10).
//! Encoders append to a caller's buffer (reused from batch to batch); decoders return
//! `None` for malformed input and never panic.

use crate::batch::{ExemplarPoint, HistogramPoint, Point, SeriesRef};
use crate::histogram::{CUSTOM_BUCKETS_SCHEMA, Counts, Histogram, ResetHint, Span};
use crate::labels::Labels;

/// Record type bytes.
pub mod kind {
    /// Series records.
    pub const SERIES: u8 = 1;
    /// Float samples records.
    pub const SAMPLES: u8 = 2;
    /// Exemplar records.
    pub const EXEMPLARS: u8 = 4;
    /// Metadata records.
    pub const METADATA: u8 = 6;
    /// Integer histogram samples (exponential schemas).
    pub const HISTOGRAM_SAMPLES: u8 = 7;
    /// Float histogram samples (exponential schemas).
    pub const FLOAT_HISTOGRAM_SAMPLES: u8 = 8;
    /// Integer histogram samples with custom buckets.
    pub const CUSTOM_BUCKETS_HISTOGRAM_SAMPLES: u8 = 9;
    /// Float histogram samples with custom buckets.
    pub const CUSTOM_BUCKETS_FLOAT_HISTOGRAM_SAMPLES: u8 = 10;
}

/// The record type a histogram goes in (Prometheus's agent splits integer and float,
/// exponential and custom-bucket histograms into four records).
pub fn histogram_kind(h: &Histogram) -> u8 {
    match (h.is_float(), h.uses_custom_buckets()) {
        (false, false) => kind::HISTOGRAM_SAMPLES,
        (true, false) => kind::FLOAT_HISTOGRAM_SAMPLES,
        (false, true) => kind::CUSTOM_BUCKETS_HISTOGRAM_SAMPLES,
        (true, true) => kind::CUSTOM_BUCKETS_FLOAT_HISTOGRAM_SAMPLES,
    }
}

/// A histogram samples record of type `kind` (Prometheus's `histogramSamplesV1`,
/// `floatHistogramSamplesV1` and their custom-bucket twins): the first histogram's ref
/// and time as big-endian words, then per histogram signed deltas of ref and time and
/// the histogram (`EncodeHistogram` / `EncodeFloatHistogram`). Histograms of another
/// kind are skipped, so one list of a batch's histograms feeds all four records.
pub fn histograms<'a>(
    out: &mut Vec<u8>,
    record_kind: u8,
    points: impl IntoIterator<Item = &'a HistogramPoint>,
) {
    out.push(record_kind);
    let mut first: Option<(u64, i64)> = None;
    for p in points {
        if histogram_kind(&p.h) != record_kind {
            continue;
        }
        let (r0, t0) = *first.get_or_insert_with(|| {
            out.extend_from_slice(&p.series.0.to_be_bytes());
            out.extend_from_slice(&p.t.to_be_bytes());
            (p.series.0, p.t)
        });
        put_varint(out, p.series.0.wrapping_sub(r0) as i64);
        put_varint(out, p.t.wrapping_sub(t0));
        histogram(out, &p.h);
    }
}

fn put_spans(out: &mut Vec<u8>, spans: &[Span]) {
    put_uvarint(out, spans.len() as u64);
    for s in spans {
        put_varint(out, i64::from(s.offset));
        put_uvarint(out, u64::from(s.length));
    }
}

/// One histogram as the WAL holds it: integer buckets as deltas, float ones as bits.
fn histogram(out: &mut Vec<u8>, h: &Histogram) {
    out.push(h.hint as u8);
    put_varint(out, i64::from(h.schema));
    out.extend_from_slice(&h.zero_threshold.to_bits().to_be_bytes());
    match &h.counts {
        Counts::Int {
            count,
            zero_count,
            positive,
            negative,
        } => {
            put_uvarint(out, *zero_count);
            put_uvarint(out, *count);
            out.extend_from_slice(&h.sum.to_bits().to_be_bytes());
            put_spans(out, &h.positive_spans);
            put_spans(out, &h.negative_spans);
            for side in [positive, negative] {
                put_uvarint(out, side.len() as u64);
                for d in Histogram::deltas(side) {
                    put_varint(out, d);
                }
            }
        }
        Counts::Float {
            count,
            zero_count,
            positive,
            negative,
        } => {
            out.extend_from_slice(&zero_count.to_bits().to_be_bytes());
            out.extend_from_slice(&count.to_bits().to_be_bytes());
            out.extend_from_slice(&h.sum.to_bits().to_be_bytes());
            put_spans(out, &h.positive_spans);
            put_spans(out, &h.negative_spans);
            for side in [positive, negative] {
                put_uvarint(out, side.len() as u64);
                for v in side {
                    out.extend_from_slice(&v.to_bits().to_be_bytes());
                }
            }
        }
    }
    if h.schema == CUSTOM_BUCKETS_SCHEMA {
        put_uvarint(out, h.custom_values.len() as u64);
        for v in &h.custom_values {
            out.extend_from_slice(&v.to_bits().to_be_bytes());
        }
    }
}

/// Decodes a histogram samples record (types 7–10); `None` if it is malformed. Every
/// length is checked against the bytes left before anything is allocated.
pub fn decode_histograms(b: &[u8]) -> Option<Vec<HistogramPoint>> {
    let &k = b.first()?;
    let float = match k {
        kind::HISTOGRAM_SAMPLES | kind::CUSTOM_BUCKETS_HISTOGRAM_SAMPLES => false,
        kind::FLOAT_HISTOGRAM_SAMPLES | kind::CUSTOM_BUCKETS_FLOAT_HISTOGRAM_SAMPLES => true,
        _ => return None,
    };
    based_entries(b, k, |series, t, b, pos| {
        Some(HistogramPoint {
            series,
            t,
            h: decode_histogram(b, pos, float)?,
        })
    })
}

/// A count read from a record, refused if more items than bytes left could hold.
fn items(b: &[u8], pos: &mut usize) -> Option<usize> {
    let n = usize::try_from(uvarint(b, pos)?).ok()?;
    (n <= b.len().saturating_sub(*pos)).then_some(n)
}

fn spans(b: &[u8], pos: &mut usize) -> Option<Vec<Span>> {
    let n = items(b, pos)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let offset = i32::try_from(varint(b, pos)?).ok()?;
        let length = u32::try_from(uvarint(b, pos)?).ok()?;
        v.push(Span { offset, length });
    }
    Some(v)
}

fn floats(b: &[u8], pos: &mut usize) -> Option<Vec<f64>> {
    let n = items(b, pos)?;
    (0..n).map(|_| be64(b, pos).map(f64::from_bits)).collect()
}

fn decode_histogram(b: &[u8], pos: &mut usize, float: bool) -> Option<Histogram> {
    let hint = ResetHint::from_u8(*b.get(*pos)?);
    *pos += 1;
    let schema = i32::try_from(varint(b, pos)?).ok()?;
    let zero_threshold = f64::from_bits(be64(b, pos)?);
    let (counts, sum, positive_spans, negative_spans) = if float {
        let zero_count = f64::from_bits(be64(b, pos)?);
        let count = f64::from_bits(be64(b, pos)?);
        let sum = f64::from_bits(be64(b, pos)?);
        let ps = spans(b, pos)?;
        let ns = spans(b, pos)?;
        let positive = floats(b, pos)?;
        let negative = floats(b, pos)?;
        (
            Counts::Float {
                count,
                zero_count,
                positive,
                negative,
            },
            sum,
            ps,
            ns,
        )
    } else {
        let zero_count = uvarint(b, pos)?;
        let count = uvarint(b, pos)?;
        let sum = f64::from_bits(be64(b, pos)?);
        let ps = spans(b, pos)?;
        let ns = spans(b, pos)?;
        let mut sides = [Vec::new(), Vec::new()];
        for side in &mut sides {
            let n = items(b, pos)?;
            let mut deltas = Vec::with_capacity(n);
            for _ in 0..n {
                deltas.push(varint(b, pos)?);
            }
            *side = Histogram::absolute(deltas);
        }
        let [positive, negative] = sides;
        (
            Counts::Int {
                count,
                zero_count,
                positive,
                negative,
            },
            sum,
            ps,
            ns,
        )
    };
    let custom_values = if schema == CUSTOM_BUCKETS_SCHEMA {
        floats(b, pos)?
    } else {
        Vec::new()
    };
    Some(Histogram {
        hint,
        schema,
        zero_threshold,
        sum,
        positive_spans,
        negative_spans,
        counts,
        custom_values,
    })
}

/// Go's `binary.PutUvarint`.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Go's `binary.PutVarint`: zigzag, then LEB128.
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A series record: each ref with its labels (already sorted by name, as `Labels` are).
pub fn series<'a>(out: &mut Vec<u8>, series: impl IntoIterator<Item = (SeriesRef, &'a Labels)>) {
    out.push(kind::SERIES);
    for (r, labels) in series {
        out.extend_from_slice(&r.0.to_be_bytes());
        put_uvarint(out, labels.len() as u64);
        for (n, v) in labels.iter() {
            put_str(out, n);
            put_str(out, v);
        }
    }
}

/// A samples record: the first sample's ref and time as the base, then each sample as
/// signed deltas from it and the value's bits. No samples: just the type byte.
pub fn samples(out: &mut Vec<u8>, samples: &[Point]) {
    samples_iter(out, samples.iter().copied());
}

/// [`samples`] over any sequence of samples (several batches, refs mapped on the way)
/// without collecting them first.
pub fn samples_iter(out: &mut Vec<u8>, samples: impl IntoIterator<Item = Point>) {
    out.push(kind::SAMPLES);
    let mut it = samples.into_iter();
    let Some(first) = it.next() else {
        return;
    };
    out.reserve(16 + 11 * it.size_hint().0);
    out.extend_from_slice(&first.series.0.to_be_bytes());
    out.extend_from_slice(&first.t.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&first.v.to_be_bytes());
    for p in it {
        put_varint(out, p.series.0.wrapping_sub(first.series.0) as i64);
        put_varint(out, p.t.wrapping_sub(first.t));
        out.extend_from_slice(&p.v.to_be_bytes());
    }
}

/// An exemplars record (Prometheus's `Encoder.Exemplars`): the first exemplar's ref and
/// time as the base, then each as signed deltas, the value's bits and its labels. No
/// exemplars: just the type byte.
pub fn exemplars<'a>(out: &mut Vec<u8>, exemplars: impl IntoIterator<Item = &'a ExemplarPoint>) {
    out.push(kind::EXEMPLARS);
    let mut first: Option<(u64, i64)> = None;
    for e in exemplars {
        let (r0, t0) = *first.get_or_insert_with(|| {
            out.extend_from_slice(&e.series.0.to_be_bytes());
            out.extend_from_slice(&e.t.to_be_bytes());
            (e.series.0, e.t)
        });
        put_varint(out, e.series.0.wrapping_sub(r0) as i64);
        put_varint(out, e.t.wrapping_sub(t0));
        out.extend_from_slice(&e.v.to_be_bytes());
        put_uvarint(out, e.labels.len() as u64);
        for (n, v) in e.labels.iter() {
            put_str(out, n);
            put_str(out, v);
        }
    }
}

/// One series' metadata, as a metadata record carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// The series.
    pub series: SeriesRef,
    /// Prometheus's metric type byte: 0 unknown, 1 counter, 2 gauge, 3 histogram,
    /// 4 gaugehistogram, 5 summary, 6 info, 7 stateset.
    pub kind: u8,
    /// The unit (may be empty).
    pub unit: String,
    /// The help text (may be empty).
    pub help: String,
}

/// A metadata record: per series, `uvarint ref`, the type byte and two fields, `UNIT`
/// then `HELP`, as Prometheus writes them.
pub fn metadata<'a>(out: &mut Vec<u8>, entries: impl IntoIterator<Item = &'a Metadata>) {
    out.push(kind::METADATA);
    for m in entries {
        put_uvarint(out, m.series.0);
        out.push(m.kind);
        put_uvarint(out, 2);
        put_str(out, "UNIT");
        put_str(out, &m.unit);
        put_str(out, "HELP");
        put_str(out, &m.help);
    }
}

/// Decodes a metadata record; `None` if it is malformed. Fields other than `UNIT` and
/// `HELP` are skipped, as Prometheus's decoder does.
pub fn decode_metadata(b: &[u8]) -> Option<Vec<Metadata>> {
    if b.first() != Some(&kind::METADATA) {
        return None;
    }
    let mut pos = 1;
    let mut out = Vec::new();
    while pos < b.len() {
        let series = SeriesRef(uvarint(b, &mut pos)?);
        let kind = *b.get(pos)?;
        pos += 1;
        let n = uvarint(b, &mut pos)?;
        let mut m = Metadata {
            series,
            kind,
            unit: String::new(),
            help: String::new(),
        };
        for _ in 0..n {
            let k = string(b, &mut pos)?;
            let v = string(b, &mut pos)?;
            match k {
                "UNIT" => m.unit = v.to_owned(),
                "HELP" => m.help = v.to_owned(),
                _ => {}
            }
        }
        out.push(m);
    }
    Some(out)
}

/// Reads a Go `uvarint` at `*pos`.
fn uvarint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = *b.get(*pos)?;
        *pos += 1;
        if shift >= 64 {
            return None;
        }
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
    }
}

fn varint(b: &[u8], pos: &mut usize) -> Option<i64> {
    let u = uvarint(b, pos)?;
    Some(((u >> 1) as i64) ^ -((u & 1) as i64))
}

fn be64(b: &[u8], pos: &mut usize) -> Option<u64> {
    let v = u64::from_be_bytes(b.get(*pos..*pos + 8)?.try_into().ok()?);
    *pos += 8;
    Some(v)
}

fn string<'a>(b: &'a [u8], pos: &mut usize) -> Option<&'a str> {
    let n = usize::try_from(uvarint(b, pos)?).ok()?;
    let s = std::str::from_utf8(b.get(*pos..pos.checked_add(n)?)?).ok()?;
    *pos += n;
    Some(s)
}

/// Decodes a series record; `None` if it is malformed.
pub fn decode_series(b: &[u8]) -> Option<Vec<(SeriesRef, Labels)>> {
    if b.first() != Some(&kind::SERIES) {
        return None;
    }
    let mut pos = 1;
    let mut out = Vec::new();
    while pos < b.len() {
        let r = be64(b, &mut pos)?;
        out.push((SeriesRef(r), labels(b, &mut pos)?));
    }
    Some(out)
}

/// A label set as records write it: a count, then each name and value.
fn labels(b: &[u8], pos: &mut usize) -> Option<Labels> {
    let n = uvarint(b, pos)?;
    let mut pairs = Vec::new();
    for _ in 0..n {
        let name = string(b, pos)?;
        let value = string(b, pos)?;
        pairs.push((name, value));
    }
    Some(Labels::from_pairs(pairs))
}

/// The entries of a record of type `kind` written as a base ref and time, then per
/// entry signed deltas and a value's bits (samples, exemplars); `rest` reads what an
/// entry carries after its value.
fn delta_entries<T>(
    b: &[u8],
    kind: u8,
    mut rest: impl FnMut(Point, &[u8], &mut usize) -> Option<T>,
) -> Option<Vec<T>> {
    based_entries(b, kind, |series, t, b, pos| {
        let v = be64(b, pos)?;
        rest(Point { series, t, v }, b, pos)
    })
}

/// The walk every delta-encoded record shares: the type byte, the first entry's ref
/// and time as big-endian words, then per entry signed deltas of both, and what
/// `entry` reads after them.
fn based_entries<T>(
    b: &[u8],
    kind: u8,
    mut entry: impl FnMut(SeriesRef, i64, &[u8], &mut usize) -> Option<T>,
) -> Option<Vec<T>> {
    if b.first() != Some(&kind) {
        return None;
    }
    let mut pos = 1;
    let mut out = Vec::new();
    if pos == b.len() {
        return Some(out);
    }
    let r0 = be64(b, &mut pos)?;
    let t0 = be64(b, &mut pos)? as i64;
    while pos < b.len() {
        let dr = varint(b, &mut pos)?;
        let dt = varint(b, &mut pos)?;
        let series = SeriesRef(r0.wrapping_add(dr as u64));
        out.push(entry(series, t0.wrapping_add(dt), b, &mut pos)?);
    }
    Some(out)
}

/// Decodes an exemplars record; `None` if it is malformed.
pub fn decode_exemplars(b: &[u8]) -> Option<Vec<ExemplarPoint>> {
    delta_entries(b, kind::EXEMPLARS, |p, b, pos| {
        Some(ExemplarPoint {
            series: p.series,
            t: p.t,
            v: p.v,
            labels: labels(b, pos)?,
        })
    })
}

/// Decodes a samples record; `None` if it is malformed.
pub fn decode_samples(b: &[u8]) -> Option<Vec<Point>> {
    delta_entries(b, kind::SAMPLES, |p, _, _| Some(p))
}
