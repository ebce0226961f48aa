//! The remote write 1.0 body: a protobuf `prometheus.WriteRequest`, snappy block
//! compressed (`formats.md` §5.1).
//!
//! Encoded by hand, field by field, exactly as Prometheus's gogoproto code does: fields
//! in number order, proto3 defaults left out (a sample of value `0.0` or timestamp 0
//! carries no such field, an empty help text none either). Values travel as their bits,
//! so stale markers (`0x7ff0000000000002`) and Prometheus's NaN keep their exact
//! patterns.

use crate::exposition::MetricType;
use crate::histogram::{Counts, Histogram, Span};

/// One sample: timestamp (ms) and value bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RwSample {
    /// Milliseconds since the epoch.
    pub t: i64,
    /// The value's bits.
    pub v: u64,
}

/// One metadata entry (`MetricMetadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RwMetadata<'a> {
    /// The family's type.
    pub kind: MetricType,
    /// The family's name.
    pub family: &'a str,
    /// Its help text.
    pub help: &'a str,
    /// Its unit.
    pub unit: &'a str,
}

/// The protobuf enum value of a metric type (`MetricMetadata.MetricType`).
pub fn metric_type_number(k: MetricType) -> u64 {
    match k {
        MetricType::Unknown => 0,
        MetricType::Counter => 1,
        MetricType::Gauge => 2,
        MetricType::Histogram => 3,
        MetricType::GaugeHistogram => 4,
        MetricType::Summary => 5,
        MetricType::Info => 6,
        MetricType::StateSet => 7,
    }
}

fn varint_len(mut x: u64) -> usize {
    let mut n = 1;
    while x >= 0x80 {
        x >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// A length-delimited field's size with its tag and length prefix.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn put_bytes(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
    out.push(tag);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn label_len(n: &str, v: &str) -> usize {
    let mut l = 0;
    if !n.is_empty() {
        l += field_len(n.len());
    }
    if !v.is_empty() {
        l += field_len(v.len());
    }
    l
}

fn sample_len(s: &RwSample) -> usize {
    let mut l = 0;
    // proto3: a double equal to zero (either sign) is not written.
    if f64::from_bits(s.v) != 0.0 {
        l += 9;
    }
    if s.t != 0 {
        l += 1 + varint_len(s.t as u64);
    }
    l
}

/// Appends one `WriteRequest.timeseries` entry: `labels` (already sorted by name, as
/// the spec requires) and `samples` (in time order).
pub fn put_timeseries<'a>(
    out: &mut Vec<u8>,
    labels: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    samples: &[RwSample],
) {
    let mut pb = Vec::new();
    encode_labels(&mut pb, labels);
    put_timeseries_encoded(out, &pb, samples);
}

/// A label set as the `TimeSeries.labels` fields it becomes (what a queue keeps per
/// series, so that each request copies it instead of encoding it again).
pub fn encode_labels<'a>(out: &mut Vec<u8>, labels: impl Iterator<Item = (&'a str, &'a str)>) {
    for (n, v) in labels {
        out.push(0x0a);
        put_varint(out, label_len(n, v) as u64);
        if !n.is_empty() {
            put_bytes(out, 0x0a, n.as_bytes());
        }
        if !v.is_empty() {
            put_bytes(out, 0x12, v.as_bytes());
        }
    }
}

/// One exemplar (`prometheus.Exemplar`): its labels encoded by [`encode_labels`], time
/// (ms) and value bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RwExemplar<'a> {
    /// The encoded `Label` fields.
    pub labels: &'a [u8],
    /// Milliseconds since the epoch.
    pub t: i64,
    /// The value's bits.
    pub v: u64,
}

fn exemplar_len(e: &RwExemplar<'_>) -> usize {
    let mut l = e.labels.len();
    if f64::from_bits(e.v) != 0.0 {
        l += 9;
    }
    if e.t != 0 {
        l += 1 + varint_len(e.t as u64);
    }
    l
}

/// [`put_timeseries`] with the labels already encoded by [`encode_labels`].
pub fn put_timeseries_encoded(out: &mut Vec<u8>, labels: &[u8], samples: &[RwSample]) {
    put_timeseries_with_exemplars(out, labels, samples, &[]);
}

/// [`put_timeseries_encoded`] with exemplars (`TimeSeries.exemplars`, field 3, after
/// the samples).
pub fn put_timeseries_with_exemplars(
    out: &mut Vec<u8>,
    labels: &[u8],
    samples: &[RwSample],
    exemplars: &[RwExemplar<'_>],
) {
    put_timeseries_full(out, labels, samples, exemplars, &[]);
}

/// One `TimeSeries` with samples, exemplars and native histograms (field 4, each a
/// `Histogram` message from [`encode_histogram`]).
pub fn put_timeseries_full(
    out: &mut Vec<u8>,
    labels: &[u8],
    samples: &[RwSample],
    exemplars: &[RwExemplar<'_>],
    histograms: &[&[u8]],
) {
    put_timeseries_with(
        out,
        labels.len(),
        |o| o.extend_from_slice(labels),
        samples,
        exemplars,
        histograms,
    );
}

/// As [`put_timeseries_full`], the encoded `Label` fields (`labels_len` bytes) written
/// straight into `out` by `labels`, without a copy of their own.
pub fn put_timeseries_with(
    out: &mut Vec<u8>,
    labels_len: usize,
    labels: impl FnOnce(&mut Vec<u8>),
    samples: &[RwSample],
    exemplars: &[RwExemplar<'_>],
    histograms: &[&[u8]],
) {
    let samples_len: usize = samples.iter().map(|s| field_len(sample_len(s))).sum();
    let exemplars_len: usize = exemplars.iter().map(|e| field_len(exemplar_len(e))).sum();
    let histograms_len: usize = histograms.iter().map(|h| field_len(h.len())).sum();
    out.push(0x0a);
    put_varint(
        out,
        (labels_len + samples_len + exemplars_len + histograms_len) as u64,
    );
    let at = out.len();
    labels(out);
    debug_assert_eq!(out.len() - at, labels_len, "labels as long as announced");
    for s in samples {
        out.push(0x12);
        put_varint(out, sample_len(s) as u64);
        if f64::from_bits(s.v) != 0.0 {
            out.push(0x09);
            out.extend_from_slice(&s.v.to_le_bytes());
        }
        if s.t != 0 {
            out.push(0x10);
            // int64: two's complement varint (not zigzag).
            put_varint(out, s.t as u64);
        }
    }
    for e in exemplars {
        out.push(0x1a);
        put_varint(out, exemplar_len(e) as u64);
        out.extend_from_slice(e.labels);
        if f64::from_bits(e.v) != 0.0 {
            out.push(0x11);
            out.extend_from_slice(&e.v.to_le_bytes());
        }
        if e.t != 0 {
            out.push(0x18);
            put_varint(out, e.t as u64);
        }
    }
    for h in histograms {
        out.push(0x22);
        put_varint(out, h.len() as u64);
        out.extend_from_slice(h);
    }
}

/// Zigzag (`sint32`, `sint64`).
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// A `BucketSpan` list (`offset` sint32, `length` uint32), each under `tag`.
fn put_spans(out: &mut Vec<u8>, tag: u8, spans: &[Span]) {
    for s in spans {
        let mut m = Vec::with_capacity(12);
        if s.offset != 0 {
            m.push(0x08);
            put_varint(&mut m, zigzag(i64::from(s.offset)));
        }
        if s.length != 0 {
            m.push(0x10);
            put_varint(&mut m, u64::from(s.length));
        }
        put_bytes(out, tag, &m);
    }
}

/// A packed repeated field under `tag`, left out when empty.
fn put_packed(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    if !body.is_empty() {
        put_bytes(out, tag, body);
    }
}

/// The packed buckets of one side: zigzag deltas or doubles.
fn side(out: &mut Vec<u8>, counts: &Counts, positive_side: bool) {
    out.clear();
    match counts {
        Counts::Int {
            positive, negative, ..
        } => {
            let b = if positive_side { positive } else { negative };
            for d in Histogram::deltas(b) {
                put_varint(out, zigzag(d));
            }
        }
        Counts::Float {
            positive, negative, ..
        } => {
            let b = if positive_side { positive } else { negative };
            for v in b {
                out.extend_from_slice(&v.to_bits().to_le_bytes());
            }
        }
    }
}

/// A remote-write 1.0 `Histogram` message at time `t` (3.x `FromIntHistogram` and
/// `FromFloatHistogram`), fields in number order as gogo writes them: the count and
/// zero count always (they are `oneof` members), integer buckets as zigzag deltas,
/// float buckets as doubles, `custom_values` for custom buckets.
pub fn encode_histogram(out: &mut Vec<u8>, t: i64, h: &Histogram) {
    let mut packed = Vec::new();
    match &h.counts {
        Counts::Int { count, .. } => {
            out.push(0x08);
            put_varint(out, *count);
        }
        Counts::Float { count, .. } => {
            out.push(0x11);
            out.extend_from_slice(&count.to_bits().to_le_bytes());
        }
    }
    if h.sum.to_bits() != 0 {
        out.push(0x19);
        out.extend_from_slice(&h.sum.to_bits().to_le_bytes());
    }
    if h.schema != 0 {
        out.push(0x20);
        put_varint(out, zigzag(i64::from(h.schema)));
    }
    if h.zero_threshold.to_bits() != 0 {
        out.push(0x29);
        out.extend_from_slice(&h.zero_threshold.to_bits().to_le_bytes());
    }
    match &h.counts {
        Counts::Int { zero_count, .. } => {
            out.push(0x30);
            put_varint(out, *zero_count);
        }
        Counts::Float { zero_count, .. } => {
            out.push(0x39);
            out.extend_from_slice(&zero_count.to_bits().to_le_bytes());
        }
    }
    let float = h.is_float();
    put_spans(out, 0x42, &h.negative_spans);
    side(&mut packed, &h.counts, false);
    // negative_deltas (9) or negative_counts (10).
    put_packed(out, if float { 0x52 } else { 0x4a }, &packed);
    put_spans(out, 0x5a, &h.positive_spans);
    side(&mut packed, &h.counts, true);
    // positive_deltas (12) or positive_counts (13).
    put_packed(out, if float { 0x6a } else { 0x62 }, &packed);
    if h.hint as u8 != 0 {
        out.push(0x70);
        put_varint(out, h.hint as u64);
    }
    if t != 0 {
        out.push(0x78);
        put_varint(out, t as u64);
    }
    packed.clear();
    for v in &h.custom_values {
        packed.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    if !packed.is_empty() {
        // custom_values (16): a two-byte key.
        out.extend_from_slice(&[0x82, 0x01]);
        put_varint(out, packed.len() as u64);
        out.extend_from_slice(&packed);
    }
}

/// Appends one `WriteRequest.metadata` entry.
pub fn put_metadata(out: &mut Vec<u8>, m: &RwMetadata<'_>) {
    let ty = metric_type_number(m.kind);
    let mut len = 0;
    if ty != 0 {
        len += 1 + varint_len(ty);
    }
    for (s, _) in [(m.family, 0x12u8), (m.help, 0x22), (m.unit, 0x2a)] {
        if !s.is_empty() {
            len += field_len(s.len());
        }
    }
    out.push(0x1a);
    put_varint(out, len as u64);
    if ty != 0 {
        out.push(0x08);
        put_varint(out, ty);
    }
    for (s, tag) in [(m.family, 0x12u8), (m.help, 0x22), (m.unit, 0x2a)] {
        if !s.is_empty() {
            put_bytes(out, tag, s.as_bytes());
        }
    }
}

/// Snappy block compression of a request body (what `Content-Encoding: snappy` means
/// in remote write; not the framed format). `enc` and `out` are reused across requests.
pub fn compress(
    enc: &mut snap::raw::Encoder,
    body: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    out.resize(snap::raw::max_compress_len(body.len()), 0);
    match enc.compress(body, out) {
        Ok(n) => {
            out.truncate(n);
            Ok(())
        }
        Err(e) => {
            out.clear();
            Err(format!("snappy: {e}"))
        }
    }
}

/// A metadata-only request body (protobuf `WriteRequest` with field 3 only, snappy
/// compressed), as Prometheus sends its metadata.
pub fn metadata_body(entries: &[RwMetadata<'_>]) -> Result<Vec<u8>, String> {
    let mut pb = Vec::new();
    for m in entries {
        put_metadata(&mut pb, m);
    }
    let mut z = Vec::new();
    compress(&mut snap::raw::Encoder::new(), &pb, &mut z)?;
    Ok(z)
}
