use super::record;
use super::segment::{PAGE, SegmentWriter};
use crate::batch::{Point, SeriesRef};
use crate::exposition::float::STALE_NAN;
use crate::labels::Labels;

#[test]
fn crc32c_check_value() {
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn records_are_split_across_pages_and_pages_padded() {
    let mut w = SegmentWriter::new();
    let big = vec![7u8; PAGE + 100];
    w.append(&big);
    let b = w.bytes();
    assert_eq!(b[0], super::segment::fragment::FIRST);
    let n = u16::from_be_bytes([b[1], b[2]]) as usize;
    assert_eq!(n, PAGE - 7);
    assert_eq!(b[PAGE], super::segment::fragment::LAST);
    assert_eq!(b.len(), PAGE + 7 + 107);
    // A page with fewer than 7 bytes left is padded before the next record.
    let mut w = SegmentWriter::new();
    w.append(&vec![1u8; PAGE - 7 - 3]);
    w.append(b"x");
    assert_eq!(w.bytes().len(), PAGE + 8);
    assert!(w.bytes()[PAGE - 3..PAGE].iter().all(|&b| b == 0));
    w.pad_page();
    assert_eq!(w.bytes().len(), 2 * PAGE);
}

proptest::proptest! {
    /// Encode → segment → read → decode gives back every series and sample, bit for bit
    /// (NaN, stale markers, label sets larger than a page, compressed or not).
    #[test]
    fn round_trip(
        batches in proptest::collection::vec(
            (
                proptest::collection::vec(("[a-z_]{1,8}", "[ -~]{0,40}"), 0..6),
                proptest::collection::vec((0u64..50, -5_000i64..5_000, proptest::prelude::any::<u64>()), 0..60),
                0usize..3,
            ),
            1..12,
        ),
        compress in proptest::prelude::any::<bool>(),
    ) {
        use super::segment::read_segment;
        let mut w = SegmentWriter::new();
        let mut want = Vec::new();
        for (k, (pairs, samples, big)) in batches.iter().enumerate() {
            let mut l: Vec<(String, String)> = pairs.clone();
            if *big > 0 {
                // A label value longer than a page.
                l.push(("huge".into(), "x".repeat(*big * PAGE / 2 + 11)));
            }
            let labels = Labels::from_pairs(l.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let mut s = Vec::new();
            record::series(&mut s, [(SeriesRef(k as u64 + 1), &labels)]);
            let points: Vec<Point> = samples
                .iter()
                .map(|&(r, t, v)| Point { series: SeriesRef(r), t: 1_700_000_000_000 + t, v: if v % 7 == 0 { STALE_NAN } else { v } })
                .collect();
            let mut m = Vec::new();
            record::samples(&mut m, &points);
            for rec in [&s, &m] {
                if compress { w.append_compressed(rec) } else { w.append(rec) }
            }
            want.push((SeriesRef(k as u64 + 1), labels, points));
        }
        let (recs, err) = read_segment(w.bytes());
        proptest::prop_assert_eq!(err, None);
        proptest::prop_assert_eq!(recs.len(), 2 * want.len());
        for (pair, (r, labels, points)) in recs.chunks(2).zip(&want) {
            let s = record::decode_series(&pair[0].payload().unwrap()).unwrap();
            proptest::prop_assert_eq!(&s, &vec![(*r, labels.clone())]);
            let m = record::decode_samples(&pair[1].payload().unwrap()).unwrap();
            proptest::prop_assert_eq!(&m, points);
        }
    }
}

#[test]
fn metadata_records_round_trip_and_skip_unknown_fields() {
    let m = vec![
        record::Metadata {
            series: SeriesRef(3),
            kind: 1,
            unit: "seconds".into(),
            help: "Time spent.".into(),
        },
        record::Metadata {
            series: SeriesRef(300),
            kind: 0,
            unit: String::new(),
            help: String::new(),
        },
    ];
    let mut b = Vec::new();
    record::metadata(&mut b, &m);
    // type, ref 3, counter, 2 fields, "UNIT", "seconds", ...
    assert_eq!(&b[..5], &[6, 3, 1, 2, 4]);
    assert_eq!(record::decode_metadata(&b), Some(m.clone()));
    // A third, unknown field is skipped.
    let mut c = vec![6, 3, 1, 3];
    for s in ["UNIT", "s", "X", "y", "HELP", "h"] {
        c.push(s.len() as u8);
        c.extend_from_slice(s.as_bytes());
    }
    let d = record::decode_metadata(&c).unwrap();
    assert_eq!((d[0].unit.as_str(), d[0].help.as_str()), ("s", "h"));
    // Cut anywhere: malformed, never a panic.
    for cut in 1..b.len() {
        let _ = record::decode_metadata(&b[..cut]);
    }
}

#[test]
fn a_resumed_writer_lays_out_pages_as_one_that_wrote_everything() {
    let recs: Vec<Vec<u8>> = (0..40).map(|i| vec![i as u8; 1000 + i * 977]).collect();
    let mut whole = SegmentWriter::new();
    for r in &recs {
        whole.append(r);
    }
    let mut parts = Vec::new();
    let mut w = SegmentWriter::new();
    for (i, r) in recs.iter().enumerate() {
        w.append(r);
        if i % 3 == 0 {
            parts.extend(w.take());
            // And a writer resumed at that length continues identically.
            let mut fresh = SegmentWriter::resume(w.len());
            std::mem::swap(&mut w, &mut fresh);
        }
    }
    parts.extend(w.take());
    assert_eq!(parts, whole.bytes());
    // The rotation bound holds wherever in a page a record starts.
    for start in [0usize, 1, PAGE - 8, PAGE - 7, PAGE - 6, PAGE - 1] {
        for n in [0usize, 1, 100, PAGE - 8, PAGE - 7, PAGE, 3 * PAGE + 5] {
            let mut w = SegmentWriter::resume(start as u64);
            w.append(&vec![1u8; n]);
            assert!(
                w.len() - start as u64 <= SegmentWriter::bound(n),
                "{start} {n}"
            );
        }
    }
}

#[test]
fn replay_recovers_refs_last_times_and_merges_duplicate_label_sets() {
    use super::replay::Replay;
    let a = Labels::from_pairs([("__name__", "a")]);
    let b = Labels::from_pairs([("__name__", "b")]);
    let p = |r: u64, t: i64| Point {
        series: SeriesRef(r),
        t,
        v: 0,
    };
    let mut rp = Replay::new();
    let mut rec = Vec::new();
    record::series(&mut rec, [(SeriesRef(3), &a), (SeriesRef(7), &b)]);
    rp.record(&rec);
    rec.clear();
    // A sample for ref 9 before any series record declares it: unknown.
    record::samples(&mut rec, &[p(3, 100), p(7, 50), p(9, 1), p(3, 90)]);
    rp.record(&rec);
    rec.clear();
    // `a` again under ref 12 (a later duplicate maps to the first).
    record::series(&mut rec, [(SeriesRef(12), &a)]);
    rp.record(&rec);
    rec.clear();
    record::samples(&mut rec, &[p(12, 200)]);
    rp.record(&rec);
    rp.record(&[42, 1, 2, 3]); // unknown record type: skipped
    rp.record(&[record::kind::SERIES, 0, 0]); // malformed
    let st = rp.stats();
    assert_eq!((st.records, st.series, st.samples), (6, 3, 5));
    assert_eq!((st.unknown_refs, st.malformed), (1, 1));
    let r = rp.finish();
    assert_eq!(r.next_ref, 13);
    let got: Vec<(u64, String, i64)> = r
        .series
        .iter()
        .map(|s| (s.series.0, s.labels.to_string(), s.last_t))
        .collect();
    assert_eq!(got, vec![(3, a.to_string(), 200), (7, b.to_string(), 50),]);
}

mod histograms {
    use super::record;
    use crate::batch::{HistogramPoint, SeriesRef};
    use crate::histogram::{CUSTOM_BUCKETS_SCHEMA, Counts, Histogram, ResetHint, Span};
    use proptest::prelude::*;

    fn int_hist() -> Histogram {
        Histogram {
            hint: ResetHint::Gauge,
            schema: 1,
            zero_threshold: 0.5,
            sum: 2.0,
            positive_spans: vec![Span {
                offset: -1,
                length: 2,
            }],
            negative_spans: Vec::new(),
            counts: Counts::Int {
                count: 3,
                zero_count: 0,
                positive: vec![1, 2],
                negative: Vec::new(),
            },
            custom_values: Vec::new(),
        }
    }

    /// The bytes Prometheus's `histogramSamplesV1` writes for one histogram, spelled
    /// out field by field from `EncodeHistogram`.
    #[test]
    fn an_integer_histogram_record_is_byte_for_byte_prometheus() {
        let mut rec = Vec::new();
        let p = HistogramPoint {
            series: SeriesRef(5),
            t: 1000,
            h: int_hist(),
        };
        record::histograms(&mut rec, record::kind::HISTOGRAM_SAMPLES, [&p]);
        let mut want = vec![7u8];
        want.extend_from_slice(&5u64.to_be_bytes()); // base ref
        want.extend_from_slice(&1000i64.to_be_bytes()); // base time
        want.extend_from_slice(&[0, 0]); // ref and time deltas (zigzag 0)
        want.push(3); // hint: gauge
        want.push(2); // schema 1, zigzag
        want.extend_from_slice(&0.5f64.to_bits().to_be_bytes());
        want.push(0); // zero count
        want.push(3); // count
        want.extend_from_slice(&2.0f64.to_bits().to_be_bytes());
        want.extend_from_slice(&[1, 1, 2]); // one positive span: offset -1 (zigzag 1), length 2
        want.push(0); // no negative spans
        want.extend_from_slice(&[2, 2, 2]); // two positive deltas: +1, +1 (zigzag 2 each)
        want.push(0); // no negative buckets
        assert_eq!(rec, want);
        // Other kinds are not in this record.
        let mut only = Vec::new();
        record::histograms(&mut only, record::kind::FLOAT_HISTOGRAM_SAMPLES, [&p]);
        assert_eq!(only, vec![8u8]);
    }

    fn arb_hist() -> impl Strategy<Value = Histogram> {
        (
            any::<bool>(),
            any::<bool>(),
            -4i32..9,
            prop::collection::vec((0i32..3, 1u32..4), 0..4),
            prop::collection::vec(0u32..100, 0..12),
            prop::collection::vec(-1e6f64..1e6, 0..6),
            0u8..4,
        )
            .prop_map(|(float, custom, schema, spans, pool, bounds, hint)| {
                let spans: Vec<Span> = spans
                    .into_iter()
                    .map(|(offset, length)| Span { offset, length })
                    .collect();
                let n: usize = spans.iter().map(|s| s.length as usize).sum();
                let vals: Vec<u32> = (0..n).map(|i| *pool.get(i).unwrap_or(&1)).collect();
                let counts = if float {
                    Counts::Float {
                        count: 1.5,
                        zero_count: 0.25,
                        positive: vals.iter().map(|&v| f64::from(v) / 3.0).collect(),
                        negative: vec![f64::NAN],
                    }
                } else {
                    Counts::Int {
                        count: u64::MAX,
                        zero_count: 7,
                        positive: vals.iter().map(|&v| i64::from(v)).collect(),
                        negative: vec![-3],
                    }
                };
                let mut bounds = bounds;
                bounds.sort_by(f64::total_cmp);
                Histogram {
                    hint: ResetHint::from_u8(hint),
                    schema: if custom {
                        CUSTOM_BUCKETS_SCHEMA
                    } else {
                        schema
                    },
                    zero_threshold: 1e-128,
                    sum: -0.0,
                    positive_spans: spans,
                    negative_spans: vec![Span {
                        offset: -7,
                        length: 1,
                    }],
                    counts,
                    custom_values: if custom { bounds } else { Vec::new() },
                }
            })
    }

    proptest! {
        /// Every histogram record decodes to what was written, in all four kinds, and a
        /// record cut short or padded decodes to nothing rather than garbage.
        #[test]
        fn histogram_records_round_trip(
            hs in prop::collection::vec((0u64..50, -1000i64..1000, arb_hist()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let points: Vec<HistogramPoint> = hs
                .into_iter()
                .map(|(r, t, h)| HistogramPoint { series: SeriesRef(r), t, h })
                .collect();
            let mut back = Vec::new();
            for k in 7u8..=10 {
                let mut rec = Vec::new();
                record::histograms(&mut rec, k, &points);
                let d = record::decode_histograms(&rec).expect("decodes");
                prop_assert!(d.iter().all(|p| record::histogram_kind(&p.h) == k));
                if rec.len() > 1 {
                    let at = 1 + cut.index(rec.len() - 1);
                    if let Some(short) = record::decode_histograms(&rec[..at]) {
                        prop_assert!(short.len() < d.len() || at == rec.len());
                    }
                }
                back.extend(d);
            }
            let mut want = points.clone();
            want.sort_by_key(|p| record::histogram_kind(&p.h));
            prop_assert_eq!(back, want);
        }
    }
}
