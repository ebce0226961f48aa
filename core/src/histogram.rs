//! Native histograms as Prometheus 3.x stores them (`model/histogram`): exponential
//! schemas −4…8 and custom buckets (schema −53, "NHCB"), integer and float counts,
//! the operations a scrape applies — `Compact`, `ReduceResolution`, `Validate` — and
//! the conversion of a classic histogram to custom buckets (`util/convertnhcb`).
//!
//! Bucket counts are held **absolute** here (Prometheus's integer histograms hold
//! deltas); the WAL and remote-write encoders write deltas. Absolute counts make
//! compaction and resolution changes plain regroupings of `(index, count)` pairs,
//! which is how the functions below are written and tested: each is checked against
//! a naive model by property tests.

/// Prometheus's staleness marker NaN (`value.StaleNaN`; the same bits as
/// `exposition::float::STALE_NAN`, repeated here so that this module depends on nothing
/// above it).
const STALE_NAN: u64 = 0x7FF0_0000_0000_0002;

/// The schema of histograms with custom bucket bounds (`CustomBucketsSchema`).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;
/// The finest exponential schema Prometheus stores.
pub const EXPONENTIAL_SCHEMA_MAX: i32 = 8;
/// The coarsest exponential schema Prometheus stores.
pub const EXPONENTIAL_SCHEMA_MIN: i32 = -4;
/// The finest schema Prometheus accepts and reduces (`ExponentialSchemaMaxReserved`).
pub const EXPONENTIAL_SCHEMA_MAX_RESERVED: i32 = 52;
/// The coarsest schema Prometheus knows (`ExponentialSchemaMinReserved`).
pub const EXPONENTIAL_SCHEMA_MIN_RESERVED: i32 = -9;

/// A run of consecutive buckets: `offset` from the end of the previous span (for the
/// first span, the index of its first bucket; may be negative), `length` buckets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// Gap to the previous span, or the first bucket's index for the first span.
    pub offset: i32,
    /// Number of buckets.
    pub length: u32,
}

/// What a histogram says about counter resets (`CounterResetHint`; the WAL's byte and
/// remote write's `ResetHint`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ResetHint {
    /// Unknown: a reader must compare with the previous histogram.
    #[default]
    Unknown = 0,
    /// A counter reset happened before this histogram.
    Yes = 1,
    /// No counter reset.
    No = 2,
    /// A gauge histogram (never resets).
    Gauge = 3,
}

impl ResetHint {
    /// The hint of a WAL byte (unknown values read as `Unknown`).
    pub fn from_u8(b: u8) -> ResetHint {
        match b {
            1 => ResetHint::Yes,
            2 => ResetHint::No,
            3 => ResetHint::Gauge,
            _ => ResetHint::Unknown,
        }
    }
}

/// The counts of a histogram: integers (Prometheus's `Histogram`) or floats
/// (`FloatHistogram`). Bucket counts are absolute, in span order.
#[derive(Clone, Debug)]
pub enum Counts {
    /// Integer counts.
    Int {
        /// Observations.
        count: u64,
        /// Observations in the zero bucket.
        zero_count: u64,
        /// Positive buckets' counts.
        positive: Vec<i64>,
        /// Negative buckets' counts.
        negative: Vec<i64>,
    },
    /// Float counts.
    Float {
        /// Observations.
        count: f64,
        /// Observations in the zero bucket.
        zero_count: f64,
        /// Positive buckets' counts.
        positive: Vec<f64>,
        /// Negative buckets' counts.
        negative: Vec<f64>,
    },
}

/// One native histogram sample's value.
#[derive(Clone, Debug)]
pub struct Histogram {
    /// Counter-reset hint.
    pub hint: ResetHint,
    /// The schema: −4…8 exponential (bucket bounds grow by 2^(2^−schema)), −53 custom.
    pub schema: i32,
    /// Width of the zero bucket.
    pub zero_threshold: f64,
    /// Sum of observations (a stale marker holds [`STALE_NAN`]).
    pub sum: f64,
    /// Spans of the positive buckets.
    pub positive_spans: Vec<Span>,
    /// Spans of the negative buckets.
    pub negative_spans: Vec<Span>,
    /// The counts.
    pub counts: Counts,
    /// Upper bounds of the custom buckets (schema −53; the `+Inf` bucket has none).
    pub custom_values: Vec<f64>,
}

/// Floats compared by bits (a stale marker's NaN equals itself), so batches can be
/// compared whole in tests and simulations.
impl PartialEq for Histogram {
    fn eq(&self, o: &Histogram) -> bool {
        let bits = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
        };
        self.hint == o.hint
            && self.schema == o.schema
            && self.zero_threshold.to_bits() == o.zero_threshold.to_bits()
            && self.sum.to_bits() == o.sum.to_bits()
            && self.positive_spans == o.positive_spans
            && self.negative_spans == o.negative_spans
            && bits(&self.custom_values, &o.custom_values)
            && match (&self.counts, &o.counts) {
                (
                    Counts::Int {
                        count: a,
                        zero_count: b,
                        positive: c,
                        negative: d,
                    },
                    Counts::Int {
                        count: e,
                        zero_count: f,
                        positive: g,
                        negative: h,
                    },
                ) => a == e && b == f && c == g && d == h,
                (
                    Counts::Float {
                        count: a,
                        zero_count: b,
                        positive: c,
                        negative: d,
                    },
                    Counts::Float {
                        count: e,
                        zero_count: f,
                        positive: g,
                        negative: h,
                    },
                ) => {
                    a.to_bits() == e.to_bits()
                        && b.to_bits() == f.to_bits()
                        && bits(c, g)
                        && bits(d, h)
                }
                _ => false,
            }
    }
}

impl Eq for Histogram {}

/// A compact one-line rendering for tools (`trawl parse`): counts, sum, schema, zero
/// bucket, spans as `offset:length`, bucket counts (absolute), custom bounds.
impl std::fmt::Display for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let spans = |s: &[Span]| {
            s.iter()
                .map(|s| format!("{}:{}", s.offset, s.length))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let list = |v: Vec<String>| v.join(" ");
        let (count, zero, pos, neg) = match &self.counts {
            Counts::Int {
                count,
                zero_count,
                positive,
                negative,
            } => (
                count.to_string(),
                zero_count.to_string(),
                list(positive.iter().map(i64::to_string).collect()),
                list(negative.iter().map(i64::to_string).collect()),
            ),
            Counts::Float {
                count,
                zero_count,
                positive,
                negative,
            } => (
                go_v(*count),
                go_v(*zero_count),
                list(positive.iter().map(|v| go_v(*v)).collect()),
                list(negative.iter().map(|v| go_v(*v)).collect()),
            ),
        };
        write!(
            f,
            "{{{}count:{count}, sum:{}, schema:{}",
            if self.is_float() { "float " } else { "" },
            go_v(self.sum),
            self.schema
        )?;
        if self.hint != ResetHint::Unknown {
            write!(f, ", hint:{:?}", self.hint)?;
        }
        if !self.uses_custom_buckets() {
            write!(f, ", zero:{zero}@{}", go_v(self.zero_threshold))?;
        }
        write!(f, ", positive:[{}] {{{pos}}}", spans(&self.positive_spans))?;
        if !self.negative_spans.is_empty() {
            write!(f, ", negative:[{}] {{{neg}}}", spans(&self.negative_spans))?;
        }
        if !self.custom_values.is_empty() {
            let b: Vec<String> = self.custom_values.iter().map(|v| go_v(*v)).collect();
            write!(f, ", bounds:[{}]", b.join(" "))?;
        }
        write!(f, "}}")
    }
}

/// A bucket count: `i64` for integer histograms, `f64` for float ones.
trait Count: Copy + PartialEq + std::ops::Add<Output = Self> {
    const ZERO: Self;
}
impl Count for i64 {
    const ZERO: i64 = 0;
}
impl Count for f64 {
    const ZERO: f64 = 0.0;
}

/// The `(index, count)` pairs of one side, in order; `None` if the spans do not
/// describe exactly `buckets.len()` buckets or a span after the first goes backwards.
fn indexed<T: Count>(spans: &[Span], buckets: &[T]) -> Option<Vec<(i32, T)>> {
    let mut out = Vec::with_capacity(buckets.len());
    let mut idx: i32 = 0;
    let mut it = buckets.iter();
    for (n, s) in spans.iter().enumerate() {
        if n > 0 && s.offset < 0 {
            return None;
        }
        idx = idx.wrapping_add(s.offset);
        for _ in 0..s.length {
            out.push((idx, *it.next()?));
            idx = idx.wrapping_add(1);
        }
    }
    it.next().is_none().then_some(out)
}

/// Spans and buckets of `pairs` (ascending indices): a bucket joins the previous span
/// if at most `max_empty` indices lie between them (those are filled with empty
/// buckets), else it starts a new span.
fn regroup<T: Count>(pairs: &[(i32, T)], max_empty: u32) -> (Vec<Span>, Vec<T>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut buckets = Vec::with_capacity(pairs.len());
    let mut next: i64 = 0;
    for &(idx, v) in pairs {
        let gap = i64::from(idx) - next;
        match spans.last_mut() {
            Some(s) if gap <= i64::from(max_empty) => {
                for _ in 0..gap {
                    buckets.push(T::ZERO);
                }
                s.length += gap as u32 + 1;
            }
            Some(_) => spans.push(Span {
                offset: gap as i32,
                length: 1,
            }),
            None => spans.push(Span {
                offset: idx,
                length: 1,
            }),
        }
        buckets.push(v);
        next = i64::from(idx) + 1;
    }
    (spans, buckets)
}

/// Prometheus's `compactBuckets` on absolute counts: empty buckets are cut from the
/// ends of spans and from runs longer than `max_empty` inside them, spans closer than
/// `max_empty + 1` merge, and zero-length spans go. The result is the non-empty
/// buckets grouped by [`regroup`]. Returns false (leaving the side unchanged) for
/// spans that do not match the buckets or go backwards.
fn compact_side<T: Count>(spans: &mut Vec<Span>, buckets: &mut Vec<T>, max_empty: u32) -> bool {
    let Some(mut pairs) = indexed(spans, buckets) else {
        return false;
    };
    pairs.retain(|&(_, v)| v != T::ZERO);
    (*spans, *buckets) = regroup(&pairs, max_empty);
    true
}

/// Prometheus's `reduceResolution`: each bucket goes to the bucket of the coarser
/// schema holding it (`targetIdx`), counts of the same target bucket are added, and
/// adjacent target buckets share a span.
fn reduce_side<T: Count>(
    spans: &mut Vec<Span>,
    buckets: &mut Vec<T>,
    from: i32,
    to: i32,
) -> Result<(), String> {
    let Some(pairs) = indexed(spans, buckets) else {
        // `indexed` refuses exactly what `checkHistogramSpans` refuses.
        return Err(check_spans(spans, buckets.len())
            .err()
            .unwrap_or_else(|| "spans do not fit their buckets".into()));
    };
    let shift = (from - to) as u32;
    let mut merged: Vec<(i32, T)> = Vec::with_capacity(pairs.len());
    for (idx, v) in pairs {
        let t = (idx.wrapping_sub(1) >> shift.min(31)).wrapping_add(1);
        match merged.last_mut() {
            Some((last, sum)) if *last == t => *sum = *sum + v,
            _ => merged.push((t, v)),
        }
    }
    (*spans, *buckets) = regroup(&merged, 0);
    Ok(())
}

/// Go's `%f`.
fn go_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v:.6}")
    }
}

/// Go's `%v` of a float64.
fn go_v(v: f64) -> String {
    crate::goquote::format_go_float(v)
}

impl Histogram {
    /// True for a float histogram.
    pub fn is_float(&self) -> bool {
        matches!(self.counts, Counts::Float { .. })
    }

    /// True if the schema is the custom-buckets schema.
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// Positive and negative buckets together.
    pub fn bucket_count(&self) -> usize {
        match &self.counts {
            Counts::Int {
                positive, negative, ..
            } => positive.len() + negative.len(),
            Counts::Float {
                positive, negative, ..
            } => positive.len() + negative.len(),
        }
    }

    /// The staleness marker of a histogram series, as Prometheus's head stores it
    /// (`Histogram{Sum: StaleNaN}`, or the float kind for a float series).
    pub fn stale_marker(float: bool) -> Histogram {
        Histogram {
            hint: ResetHint::Unknown,
            schema: 0,
            zero_threshold: 0.0,
            sum: f64::from_bits(STALE_NAN),
            positive_spans: Vec::new(),
            negative_spans: Vec::new(),
            counts: if float {
                Counts::Float {
                    count: 0.0,
                    zero_count: 0.0,
                    positive: Vec::new(),
                    negative: Vec::new(),
                }
            } else {
                Counts::Int {
                    count: 0,
                    zero_count: 0,
                    positive: Vec::new(),
                    negative: Vec::new(),
                }
            },
            custom_values: Vec::new(),
        }
    }

    /// An empty histogram (schema 0, no observations), integer or float: what 3.x's
    /// agent stores at a start timestamp (`AppendHistogramSTZeroSample`).
    pub fn empty(float: bool) -> Histogram {
        let mut h = Histogram::stale_marker(float);
        h.sum = 0.0;
        h
    }

    /// A 64-bit digest of everything in the histogram (to tell a changed value from a
    /// repeated one, as the series cache does with a float's bits).
    pub fn fingerprint(&self) -> u64 {
        let mut b: Vec<u8> = Vec::with_capacity(64 + 8 * self.bucket_count());
        b.push(self.hint as u8);
        b.extend_from_slice(&self.schema.to_le_bytes());
        b.extend_from_slice(&self.zero_threshold.to_bits().to_le_bytes());
        b.extend_from_slice(&self.sum.to_bits().to_le_bytes());
        for (mark, spans) in [(b'p', &self.positive_spans), (b'n', &self.negative_spans)] {
            b.push(mark);
            for s in spans {
                b.extend_from_slice(&s.offset.to_le_bytes());
                b.extend_from_slice(&s.length.to_le_bytes());
            }
        }
        match &self.counts {
            Counts::Int {
                count,
                zero_count,
                positive,
                negative,
            } => {
                b.push(b'i');
                b.extend_from_slice(&count.to_le_bytes());
                b.extend_from_slice(&zero_count.to_le_bytes());
                // The spans above say where the positive buckets end.
                for v in positive.iter().chain(negative) {
                    b.extend_from_slice(&v.to_le_bytes());
                }
            }
            Counts::Float {
                count,
                zero_count,
                positive,
                negative,
            } => {
                b.push(b'f');
                b.extend_from_slice(&count.to_bits().to_le_bytes());
                b.extend_from_slice(&zero_count.to_bits().to_le_bytes());
                for v in positive.iter().chain(negative) {
                    b.extend_from_slice(&v.to_bits().to_le_bytes());
                }
            }
        }
        b.push(b'c');
        for v in &self.custom_values {
            b.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        xxhash_rust::xxh3::xxh3_64(&b)
    }

    /// True for a staleness marker.
    pub fn is_stale(&self) -> bool {
        self.sum.to_bits() == STALE_NAN
    }

    /// Prometheus's `Compact(max_empty)`. Spans must fit their buckets (the parser
    /// checks that first); otherwise nothing changes.
    pub fn compact(&mut self, max_empty: u32) {
        let (ps, ns) = (&mut self.positive_spans, &mut self.negative_spans);
        match &mut self.counts {
            Counts::Int {
                positive, negative, ..
            } => {
                compact_side(ps, positive, max_empty);
                compact_side(ns, negative, max_empty);
            }
            Counts::Float {
                positive, negative, ..
            } => {
                compact_side(ps, positive, max_empty);
                compact_side(ns, negative, max_empty);
            }
        }
    }

    /// Prometheus's `ReduceResolution(target)`: an exponential histogram regrouped into
    /// the coarser `target` schema.
    pub fn reduce_resolution(&mut self, target: i32) -> Result<(), String> {
        if self.uses_custom_buckets() {
            return Err("cannot reduce resolution when there are custom buckets".into());
        }
        if target == CUSTOM_BUCKETS_SCHEMA {
            return Err("cannot reduce resolution to custom buckets schema".into());
        }
        if target >= self.schema {
            return Err(format!(
                "cannot reduce resolution from schema {} to {}",
                self.schema, target
            ));
        }
        let (ps, ns) = (&mut self.positive_spans, &mut self.negative_spans);
        match &mut self.counts {
            Counts::Int {
                positive, negative, ..
            } => {
                reduce_side(ps, positive, self.schema, target)?;
                reduce_side(ns, negative, self.schema, target)?;
            }
            Counts::Float {
                positive, negative, ..
            } => {
                reduce_side(ps, positive, self.schema, target)?;
                reduce_side(ns, negative, self.schema, target)?;
            }
        }
        self.schema = target;
        Ok(())
    }

    /// Prometheus's `Validate` (integer) and `FloatHistogram.Validate`, with their
    /// messages: the schema, spans against buckets, no negative counts, custom bounds
    /// rising and finite, and for integer histograms the count equal to the buckets'
    /// sum (at least it, when the sum is NaN).
    pub fn validate(&self) -> Result<(), String> {
        let (np, nn) = match &self.counts {
            Counts::Int {
                positive, negative, ..
            } => (positive.len(), negative.len()),
            Counts::Float {
                positive, negative, ..
            } => (positive.len(), negative.len()),
        };
        if self.uses_custom_buckets() {
            self.check_custom_bounds(np)
                .map_err(|e| format!("custom buckets: {e}"))?;
            let zero_count_set = match &self.counts {
                Counts::Int { zero_count, .. } => *zero_count != 0,
                Counts::Float { zero_count, .. } => *zero_count != 0.0,
            };
            if zero_count_set {
                return Err("custom buckets: must have zero count of 0".into());
            }
            if self.zero_threshold != 0.0 {
                return Err("custom buckets: must have zero threshold of 0".into());
            }
            if !self.negative_spans.is_empty() {
                return Err("custom buckets: must not have negative spans".into());
            }
            if nn > 0 {
                return Err("custom buckets: must not have negative buckets".into());
            }
        } else if (EXPONENTIAL_SCHEMA_MIN..=EXPONENTIAL_SCHEMA_MAX).contains(&self.schema) {
            check_spans(&self.positive_spans, np).map_err(|e| format!("positive side: {e}"))?;
            check_spans(&self.negative_spans, nn).map_err(|e| format!("negative side: {e}"))?;
        } else {
            return Err(format!(
                "histogram has an invalid schema, which must be between {EXPONENTIAL_SCHEMA_MIN} and {EXPONENTIAL_SCHEMA_MAX} for exponential buckets, or {CUSTOM_BUCKETS_SCHEMA} for custom buckets, got schema {}",
                self.schema
            ));
        }
        let negative_bucket = |i: usize, c: String| {
            format!(
                "bucket number {} has observation count of {c}: histogram has a bucket whose observation count is negative",
                i + 1
            )
        };
        match &self.counts {
            Counts::Int {
                count,
                zero_count,
                positive,
                negative,
            } => {
                // `checkHistogramBuckets`: no negative bucket, and the side's total.
                let total = |side: &str, buckets: &[i64]| -> Result<u64, String> {
                    let mut sum = 0u64;
                    for (i, &c) in buckets.iter().enumerate() {
                        if c < 0 {
                            return Err(format!(
                                "{side} side: {}",
                                negative_bucket(i, c.to_string())
                            ));
                        }
                        sum = sum.wrapping_add(c as u64);
                    }
                    Ok(sum)
                };
                let n_count = total("negative", negative)?;
                if !self.uses_custom_buckets() && !self.custom_values.is_empty() {
                    return Err(
                        "histogram with exponential schema must not have custom bounds".into(),
                    );
                }
                let p_count = total("positive", positive)?;
                let in_buckets = n_count.wrapping_add(p_count).wrapping_add(*zero_count);
                if self.sum.is_nan() {
                    if in_buckets > *count {
                        return Err(format!(
                            "{in_buckets} observations found in buckets, but the Count field is {count}: histogram's observation count should be at least the number of observations found in the buckets"
                        ));
                    }
                } else if in_buckets != *count {
                    return Err(format!(
                        "{in_buckets} observations found in buckets, but the Count field is {count}: histogram's observation count should equal the number of observations found in the buckets (in absence of NaN)"
                    ));
                }
            }
            Counts::Float {
                count,
                zero_count,
                positive,
                negative,
            } => {
                if !self.uses_custom_buckets() {
                    if let Some((i, c)) = negative.iter().enumerate().find(|(_, c)| **c < 0.0) {
                        return Err(format!("negative side: {}", negative_bucket(i, go_v(*c))));
                    }
                    if *zero_count < 0.0 {
                        return Err(format!(
                            "zero bucket has observation count of {}: histogram has a bucket whose observation count is negative",
                            go_v(*zero_count)
                        ));
                    }
                    if !self.custom_values.is_empty() {
                        return Err(
                            "histogram with exponential schema must not have custom bounds".into(),
                        );
                    }
                }
                if *count < 0.0 {
                    return Err(format!(
                        "observation count is  {}: histogram's observation count is negative",
                        go_v(*count)
                    ));
                }
                if let Some((i, c)) = positive.iter().enumerate().find(|(_, c)| **c < 0.0) {
                    return Err(format!("positive side: {}", negative_bucket(i, go_v(*c))));
                }
            }
        }
        Ok(())
    }

    /// `checkHistogramCustomBounds`.
    fn check_custom_bounds(&self, buckets: usize) -> Result<(), String> {
        let mut prev = f64::NEG_INFINITY;
        for (i, &b) in self.custom_values.iter().enumerate() {
            if b.is_nan() {
                return Err("histogram custom bounds must not be NaN".into());
            }
            if i > 0 && b <= prev {
                return Err(format!(
                    "previous bound is {} and current is {}: histogram custom bounds must be in strictly increasing order",
                    go_f(prev),
                    go_f(b)
                ));
            }
            prev = b;
        }
        if prev == f64::INFINITY {
            return Err(
                "last +Inf bound must not be explicitly defined: histogram custom bounds must be finite"
                    .into(),
            );
        }
        let (mut need, mut total) = (0u64, 0i64);
        for (n, s) in self.positive_spans.iter().enumerate() {
            if s.offset < 0 {
                return Err(format!(
                    "span number {} with offset {}: histogram has a span whose offset is negative",
                    n + 1,
                    s.offset
                ));
            }
            need += u64::from(s.length);
            total += i64::from(s.length) + i64::from(s.offset);
        }
        if need != buckets as u64 {
            return Err(format!(
                "spans need {need} buckets, have {buckets} buckets: histogram spans specify different number of buckets than provided"
            ));
        }
        if (self.custom_values.len() as i64 + 1) < total {
            return Err(format!(
                "only {} custom bounds defined which is insufficient to cover total span length of {total}: histogram custom bounds are too few",
                self.custom_values.len()
            ));
        }
        Ok(())
    }

    /// The integer buckets of one side as deltas (each against the previous bucket),
    /// as the WAL and remote write carry them; empty for a float histogram.
    pub fn deltas(buckets: &[i64]) -> impl Iterator<Item = i64> + '_ {
        let mut prev = 0i64;
        buckets.iter().map(move |&c| {
            let d = c.wrapping_sub(prev);
            prev = c;
            d
        })
    }

    /// Absolute counts from deltas (the inverse of [`Histogram::deltas`]).
    pub fn absolute(deltas: impl IntoIterator<Item = i64>) -> Vec<i64> {
        let mut acc = 0i64;
        deltas
            .into_iter()
            .map(|d| {
                acc = acc.wrapping_add(d);
                acc
            })
            .collect()
    }
}

/// `checkHistogramSpans`.
pub(crate) fn check_spans(spans: &[Span], buckets: usize) -> Result<(), String> {
    for (n, s) in spans.iter().enumerate() {
        if n > 0 && s.offset < 0 {
            return Err(format!(
                "span number {} with offset {}: histogram has a span whose offset is negative",
                n + 1,
                s.offset
            ));
        }
    }
    let need: u64 = spans.iter().map(|s| u64::from(s.length)).sum();
    if need != buckets as u64 {
        return Err(format!(
            "spans need {need} buckets, have {buckets} buckets: histogram spans specify different number of buckets than provided"
        ));
    }
    Ok(())
}

/// The finest schema whose buckets grow by at least `factor` (3.x `pickSchema` for
/// `native_histogram_min_bucket_factor`; a factor ≤ 1 means the finest, 8).
pub fn pick_schema(factor: f64) -> i32 {
    let factor = if factor <= 1.0 { 1.00271 } else { factor };
    let floor = (-(factor.log2().log2())).floor();
    if floor >= f64::from(EXPONENTIAL_SCHEMA_MAX) {
        EXPONENTIAL_SCHEMA_MAX
    } else if floor <= f64::from(EXPONENTIAL_SCHEMA_MIN) {
        EXPONENTIAL_SCHEMA_MIN
    } else {
        floor as i32
    }
}

/// A classic histogram being collected for conversion to custom buckets (3.x
/// `convertnhcb.TempHistogram`): cumulative bucket counts by upper bound, the count
/// and the sum, in any order; the first error sticks.
#[derive(Clone, Debug, Default)]
pub struct ClassicHistogram {
    /// (upper bound, cumulative count), ascending by bound.
    buckets: Vec<(f64, f64)>,
    count: f64,
    has_count: bool,
    sum: f64,
    err: Option<String>,
}

impl ClassicHistogram {
    /// An empty one.
    pub fn new() -> ClassicHistogram {
        ClassicHistogram::default()
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        self.buckets.clear();
        self.count = 0.0;
        self.has_count = false;
        self.sum = 0.0;
        self.err = None;
    }

    /// True if nothing has been set.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty() && !self.has_count && self.sum == 0.0 && self.err.is_none()
    }

    /// A bucket `le` with cumulative count `count` (`SetBucketCount`; a repeated
    /// bound keeps the first count).
    pub fn set_bucket(&mut self, le: f64, count: f64) {
        if self.err.is_some() {
            return;
        }
        if le.is_nan() {
            self.err = Some("bucket boundary must not be NaN".into());
            return;
        }
        if count < 0.0 {
            self.err = Some(format!(
                "bucket count must be non-negative: le={}, count={}",
                go_g(le),
                go_g(count)
            ));
            return;
        }
        match self.buckets.last() {
            None => self.buckets.push((le, count)),
            Some(&(last_le, last_c)) if last_le < le => {
                if count < last_c {
                    self.err = Some(format!(
                        "count is not cumulative: {} < {}",
                        go_g(count),
                        go_g(last_c)
                    ));
                    return;
                }
                self.buckets.push((le, count));
            }
            Some(&(last_le, _)) if last_le == le => {}
            Some(_) => {
                let i = self.buckets.partition_point(|b| b.0 < le);
                if self.buckets[i].0 == le {
                    return;
                }
                if i > 0 && count < self.buckets[i - 1].1 {
                    self.err = Some(format!(
                        "count is not cumulative: {} < {}",
                        go_g(count),
                        go_g(self.buckets[i - 1].1)
                    ));
                    return;
                }
                if count > self.buckets[i].1 {
                    self.err = Some(format!(
                        "count is not cumulative: {} > {}",
                        go_g(count),
                        go_g(self.buckets[i].1)
                    ));
                    return;
                }
                self.buckets.insert(i, (le, count));
            }
        }
    }

    /// The `_count` (`SetCount`).
    pub fn set_count(&mut self, count: f64) {
        if self.err.is_some() {
            return;
        }
        if count < 0.0 {
            self.err = Some(format!("count must be non-negative: count={}", go_g(count)));
            return;
        }
        self.count = count;
        self.has_count = true;
    }

    /// The `_sum` (`SetSum`).
    pub fn set_sum(&mut self, sum: f64) {
        if self.err.is_none() {
            self.sum = sum;
        }
    }

    /// The histogram with custom buckets (`Convert`): integer if every count is a
    /// whole number (compacted keeping runs of up to two empty buckets), float
    /// otherwise (fully compacted); an error if the count does not match the `+Inf`
    /// bucket.
    pub fn convert(&self) -> Result<Histogram, String> {
        if let Some(e) = &self.err {
            return Err(e.clone());
        }
        let mut buckets = self.buckets.clone();
        let mut count = self.count;
        if !self.has_count
            && let Some(&(_, c)) = buckets.last()
        {
            count = c;
        }
        if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
            buckets.push((f64::INFINITY, count));
        }
        let whole =
            |v: f64| v == v.round() && v.round() >= i64::MIN as f64 && v.round() < i64::MAX as f64;
        let int = buckets.iter().all(|b| whole(b.1))
            && count == count.round()
            && count >= 0.0
            && count < u64::MAX as f64;
        let custom_values: Vec<f64> = buckets
            .iter()
            .filter(|b| b.0 != f64::INFINITY)
            .map(|b| b.0)
            .collect();
        let spans = vec![Span {
            offset: 0,
            length: buckets.len() as u32,
        }];
        let last = buckets[buckets.len() - 1];
        let (counts, max_empty) = if int {
            let mut prev = 0i64;
            let positive: Vec<i64> = buckets
                .iter()
                .map(|b| {
                    let c = b.1 as i64;
                    let d = c - prev;
                    prev = c;
                    d
                })
                .collect();
            let icount = count.round() as u64;
            if icount != last.1 as u64 {
                return Err(format!(
                    "count mismatch: count={icount} != le={} count={}",
                    go_g(last.0),
                    go_g(last.1)
                ));
            }
            let counts = Counts::Int {
                count: icount,
                zero_count: 0,
                positive,
                negative: Vec::new(),
            };
            (counts, 2)
        } else {
            let mut prev = 0.0;
            let positive: Vec<f64> = buckets
                .iter()
                .map(|b| {
                    let d = b.1 - prev;
                    prev = b.1;
                    d
                })
                .collect();
            if count != last.1 {
                return Err(format!(
                    "count mismatch: count={} != le={} count={}",
                    go_g(count),
                    go_g(last.0),
                    go_g(last.1)
                ));
            }
            let counts = Counts::Float {
                count,
                zero_count: 0.0,
                positive,
                negative: Vec::new(),
            };
            (counts, 0)
        };
        let mut h = Histogram {
            hint: ResetHint::Unknown,
            schema: CUSTOM_BUCKETS_SCHEMA,
            zero_threshold: 0.0,
            sum: self.sum,
            positive_spans: spans,
            negative_spans: Vec::new(),
            counts,
            custom_values,
        };
        // 3.x compacts integer conversions keeping runs of two empty buckets, float
        // ones fully.
        h.compact(max_empty);
        Ok(h)
    }
}

/// Go's `%g` of a float64 (shortest form).
fn go_g(v: f64) -> String {
    go_v(v)
}

#[cfg(test)]
mod tests;
