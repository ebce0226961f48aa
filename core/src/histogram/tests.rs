use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn int(spans: &[(i32, u32)], buckets: &[i64], count: u64) -> Histogram {
    Histogram {
        hint: ResetHint::Unknown,
        schema: 0,
        zero_threshold: 0.0,
        sum: 1.0,
        positive_spans: spans
            .iter()
            .map(|&(offset, length)| Span { offset, length })
            .collect(),
        negative_spans: Vec::new(),
        counts: Counts::Int {
            count,
            zero_count: 0,
            positive: buckets.to_vec(),
            negative: Vec::new(),
        },
        custom_values: Vec::new(),
    }
}

fn positive(h: &Histogram) -> (Vec<(i32, u32)>, Vec<i64>) {
    let Counts::Int { positive, .. } = &h.counts else {
        panic!("an integer histogram")
    };
    (
        h.positive_spans
            .iter()
            .map(|s| (s.offset, s.length))
            .collect(),
        positive.clone(),
    )
}

#[test]
fn compact_cuts_empty_buckets_at_span_ends_and_long_runs_inside() {
    // Buckets at 0..6 with empties at 0, 2, 3, 4 and 6: with max 0 every empty goes.
    let mut h = int(&[(0, 7)], &[0, 1, 0, 0, 0, 2, 0], 3);
    h.compact(0);
    assert_eq!(positive(&h), (vec![(1, 1), (3, 1)], vec![1, 2]));
    // With max 3 the run of three inside stays; the ends still go.
    let mut h = int(&[(0, 7)], &[0, 1, 0, 0, 0, 2, 0], 3);
    h.compact(3);
    assert_eq!(positive(&h), (vec![(1, 5)], vec![1, 0, 0, 0, 2]));
    // Spans closer than max+1 merge, filled with empty buckets; zero-length ones go.
    let mut h = int(&[(-2, 1), (0, 0), (2, 1), (5, 1)], &[4, 5, 6], 15);
    h.compact(2);
    assert_eq!(positive(&h), (vec![(-2, 4), (5, 1)], vec![4, 0, 0, 5, 6]));
}

#[test]
fn a_histogram_of_only_empty_buckets_compacts_to_no_spans() {
    let mut h = int(&[(3, 2), (1, 1)], &[0, 0, 0], 0);
    h.compact(0);
    assert_eq!(positive(&h), (vec![], vec![]));
    assert_eq!(h.validate(), Ok(()));
}

#[test]
fn reduce_resolution_merges_buckets_as_prometheus_maps_indices() {
    // Schema 1 indices 1,2 → schema 0 index 1; 3,4 → 2; 0 → 0; -1,0 pairs → 0.
    let mut h = int(&[(-1, 6)], &[1, 2, 3, 4, 5, 6], 21);
    h.schema = 1;
    h.reduce_resolution(0).unwrap();
    assert_eq!(h.schema, 0);
    // idx -1,0 → 0; 1,2 → 1; 3,4 → 2.
    assert_eq!(positive(&h), (vec![(0, 3)], vec![3, 7, 11]));
    assert!(h.reduce_resolution(0).is_err());
}

#[test]
fn validate_speaks_prometheus() {
    let h = int(&[(0, 2)], &[1, 2], 4);
    assert_eq!(
        h.validate().unwrap_err(),
        "3 observations found in buckets, but the Count field is 4: histogram's observation count should equal the number of observations found in the buckets (in absence of NaN)"
    );
    let mut nan = int(&[(0, 2)], &[1, 2], 4);
    nan.sum = f64::NAN;
    assert_eq!(nan.validate(), Ok(()));
    let h = int(&[(0, 1), (-1, 1)], &[1, 2], 3);
    assert_eq!(
        h.validate().unwrap_err(),
        "positive side: span number 2 with offset -1: histogram has a span whose offset is negative"
    );
    let h = int(&[(0, 3)], &[1, 2], 3);
    assert_eq!(
        h.validate().unwrap_err(),
        "positive side: spans need 3 buckets, have 2 buckets: histogram spans specify different number of buckets than provided"
    );
    let h = int(&[(0, 2)], &[1, -2], 0);
    assert_eq!(
        h.validate().unwrap_err(),
        "positive side: bucket number 2 has observation count of -2: histogram has a bucket whose observation count is negative"
    );
    let mut h = int(&[], &[], 0);
    h.schema = 9;
    assert_eq!(
        h.validate().unwrap_err(),
        "histogram has an invalid schema, which must be between -4 and 8 for exponential buckets, or -53 for custom buckets, got schema 9"
    );
    let mut h = int(&[(0, 2)], &[1, 1], 2);
    h.schema = CUSTOM_BUCKETS_SCHEMA;
    h.custom_values = vec![2.0, 1.0];
    assert_eq!(
        h.validate().unwrap_err(),
        "custom buckets: previous bound is 2.000000 and current is 1.000000: histogram custom bounds must be in strictly increasing order"
    );
    h.custom_values = vec![1.0, f64::INFINITY];
    assert_eq!(
        h.validate().unwrap_err(),
        "custom buckets: last +Inf bound must not be explicitly defined: histogram custom bounds must be finite"
    );
    h.custom_values = vec![];
    assert_eq!(
        h.validate().unwrap_err(),
        "custom buckets: only 0 custom bounds defined which is insufficient to cover total span length of 2: histogram custom bounds are too few"
    );
}

#[test]
fn the_stale_marker_is_prometheus_stale_nan() {
    // `value.StaleNaN` (exposition's tests check that `float::STALE_NAN` agrees).
    assert_eq!(STALE_NAN, 0x7FF0_0000_0000_0002);
    assert!(Histogram::stale_marker(false).is_stale());
    assert!(Histogram::stale_marker(true).is_float());
}

#[test]
fn pick_schema_follows_the_bucket_factor() {
    assert_eq!(pick_schema(0.0), 8);
    assert_eq!(pick_schema(1.1), 2);
    assert_eq!(pick_schema(2.0), 0);
    assert_eq!(pick_schema(4.0), -1);
    assert_eq!(pick_schema(1e300), -4);
}

#[test]
fn classic_histograms_convert_to_custom_buckets() {
    let mut c = ClassicHistogram::new();
    // Out of order, with a repeated bound (the first count stands).
    c.set_bucket(1.0, 2.0);
    c.set_bucket(0.5, 1.0);
    c.set_bucket(1.0, 9.0);
    c.set_bucket(f64::INFINITY, 4.0);
    c.set_count(4.0);
    c.set_sum(3.5);
    let h = c.convert().unwrap();
    assert_eq!(h.schema, CUSTOM_BUCKETS_SCHEMA);
    assert_eq!(h.custom_values, vec![0.5, 1.0]);
    assert_eq!(positive(&h), (vec![(0, 3)], vec![1, 1, 2]));
    assert_eq!(h.sum, 3.5);
    assert_eq!(h.validate(), Ok(()));

    // Fractional counts make a float histogram, compacted fully.
    let mut c = ClassicHistogram::new();
    c.set_bucket(1.0, 0.0);
    c.set_bucket(2.0, 1.5);
    c.set_count(1.5);
    let h = c.convert().unwrap();
    let Counts::Float {
        count, positive: p, ..
    } = &h.counts
    else {
        panic!("a float histogram")
    };
    assert_eq!((*count, p.clone()), (1.5, vec![1.5]));
    assert_eq!(
        h.positive_spans,
        vec![Span {
            offset: 1,
            length: 1
        }]
    );

    // Errors stick and name the problem as Prometheus does.
    let mut c = ClassicHistogram::new();
    c.set_bucket(1.0, 3.0);
    c.set_bucket(2.0, 2.0);
    assert_eq!(c.convert().unwrap_err(), "count is not cumulative: 2 < 3");
    let mut c = ClassicHistogram::new();
    c.set_bucket(1.0, 3.0);
    c.set_bucket(f64::INFINITY, 3.0);
    c.set_count(2.0);
    assert_eq!(
        c.convert().unwrap_err(),
        "count mismatch: count=2 != le=+Inf count=3"
    );
    // A count below the last bucket converts (Prometheus appends the +Inf bucket
    // unchecked), and validation refuses the result.
    let mut c = ClassicHistogram::new();
    c.set_bucket(1.0, 3.0);
    c.set_count(2.0);
    let h = c.convert().unwrap();
    assert_eq!(positive(&h), (vec![(0, 2)], vec![3, -1]));
    assert!(h.validate().is_err());
}

/// Spans and absolute counts with many empty buckets.
fn side() -> impl Strategy<Value = (Vec<Span>, Vec<i64>)> {
    (
        -5i32..5,
        prop::collection::vec((0i32..4, 0u32..5), 0..6),
        prop::collection::vec(prop_oneof![Just(0i64), 1i64..5], 0..30),
    )
        .prop_map(|(first, spans, pool)| {
            let mut out = Vec::new();
            let mut buckets = Vec::new();
            let mut k = 0;
            for (n, (offset, length)) in spans.into_iter().enumerate() {
                out.push(Span {
                    offset: if n == 0 { first } else { offset },
                    length,
                });
                for _ in 0..length {
                    buckets.push(pool.get(k).copied().unwrap_or(0));
                    k += 1;
                }
            }
            (out, buckets)
        })
}

proptest! {
    /// Compaction keeps every non-empty bucket at its index, and gives the unique form
    /// Prometheus's compactBuckets gives: spans start and end on non-empty buckets,
    /// runs of empty buckets inside a span are at most `max` long, and spans are more
    /// than `max` apart.
    #[test]
    fn compact_keeps_buckets_and_gives_the_canonical_form((spans, buckets) in side(), max in 0u32..4) {
        let before: Vec<(i32, i64)> = indexed(&spans, &buckets).unwrap().into_iter().filter(|p| p.1 != 0).collect();
        let total: i64 = buckets.iter().sum();
        let mut h = int(&spans.iter().map(|s| (s.offset, s.length)).collect::<Vec<_>>(), &buckets, total as u64);
        h.compact(max);
        let (s2, b2) = positive(&h);
        let s2: Vec<Span> = s2.into_iter().map(|(offset, length)| Span { offset, length }).collect();
        let after = indexed(&s2, &b2).unwrap();
        let kept: Vec<(i32, i64)> = after.iter().copied().filter(|p| p.1 != 0).collect();
        prop_assert_eq!(&kept, &before);
        let mut at = 0;
        for (n, s) in s2.iter().enumerate() {
            prop_assert!(s.length > 0);
            if n > 0 { prop_assert!(s.offset as u32 > max); }
            let run = &b2[at..at + s.length as usize];
            prop_assert!(run[0] != 0 && run[run.len() - 1] != 0);
            let mut empty = 0;
            for &c in run {
                if c == 0 { empty += 1; prop_assert!(empty <= max); } else { empty = 0; }
            }
            at += s.length as usize;
        }
        prop_assert_eq!(h.validate(), Ok(()));
        // Compacting again changes nothing.
        let once = h.clone();
        h.compact(max);
        prop_assert_eq!(h, once);
    }

    /// Reducing the resolution adds up the counts of the buckets each coarser bucket
    /// covers, and keeps the total.
    #[test]
    fn reduce_resolution_adds_up_covered_buckets((spans, buckets) in side(), from in -3i32..9, by in 1i32..6) {
        let to = (from - by).max(EXPONENTIAL_SCHEMA_MIN - 1);
        prop_assume!(to < from);
        let total: i64 = buckets.iter().sum();
        let mut h = int(&spans.iter().map(|s| (s.offset, s.length)).collect::<Vec<_>>(), &buckets, total as u64);
        h.schema = from;
        let mut model: BTreeMap<i32, i64> = BTreeMap::new();
        for (idx, c) in indexed(&spans, &buckets).unwrap() {
            *model.entry(((idx - 1) >> (from - to)) + 1).or_default() += c;
        }
        h.reduce_resolution(to).unwrap();
        let (s2, b2) = positive(&h);
        let s2: Vec<Span> = s2.into_iter().map(|(offset, length)| Span { offset, length }).collect();
        let got: BTreeMap<i32, i64> = indexed(&s2, &b2).unwrap().into_iter().collect();
        prop_assert_eq!(got, model);
        prop_assert_eq!(b2.iter().sum::<i64>(), total);
    }

    /// Deltas and absolute counts are inverses.
    #[test]
    fn deltas_round_trip(v in prop::collection::vec(-1000i64..1000, 0..20)) {
        let d: Vec<i64> = Histogram::deltas(&v).collect();
        prop_assert_eq!(Histogram::absolute(d), v);
    }
}
