use super::record;
use super::segment::{PAGE, SegmentWriter};
use crate::exposition::float::STALE_NAN;
use crate::labels::Labels;
use crate::scrape::pipeline::{Point, SeriesRef};

#[test]
fn crc32c_check_value() {
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn the_worked_example_is_byte_identical_to_the_golden_segment() {
    // formats.md §4.6: `up{job="a"}`, ref 1, three samples, the last a stale marker.
    let labels = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
    let mut s = Vec::new();
    record::series(&mut s, [(SeriesRef(1), &labels)]);
    assert_eq!(s.len(), 28);
    let t0 = 1_700_000_000_000;
    let p = |t: i64, v: u64| Point {
        series: SeriesRef(1),
        t,
        v,
    };
    let mut m = Vec::new();
    record::samples(
        &mut m,
        &[
            p(t0, 1f64.to_bits()),
            p(t0 + 15_000, 0f64.to_bits()),
            p(t0 + 30_000, STALE_NAN),
        ],
    );
    assert_eq!(m.len(), 51);
    let mut w = SegmentWriter::new();
    w.append(&s);
    w.append(&m);
    let golden = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance/wal-golden/simple/wal/00000000"
    ))
    .expect("golden segment in ../shared/conformance");
    assert_eq!(w.bytes(), &golden[..]);
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

fn golden(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../shared/conformance/wal-golden/{name}/wal/00000000",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("golden segment in ../shared/conformance")
}

#[test]
fn the_reader_reads_every_golden_segment_whole() {
    use super::segment::read_segment;
    let (recs, err) = read_segment(&golden("simple"));
    assert_eq!(err, None);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].data[0], record::kind::SERIES);
    assert_eq!(recs[1].data.len(), 51);
    for name in ["multipage", "prometheus-2.42-written"] {
        let (recs, err) = read_segment(&golden(name));
        assert_eq!(err, None, "{name}");
        assert!(!recs.is_empty(), "{name}");
    }
    // The multipage golden's first record spans three pages: first, middle, last.
    let (recs, _) = read_segment(&golden("multipage"));
    assert!(!recs[0].snappy);
    assert_eq!(recs[0].data[0], record::kind::SERIES);
    assert!(recs[0].data.len() > 2 * PAGE, "{}", recs[0].data.len());
    // Then a snappy samples record across a page boundary, a small snappy record and an
    // uncompressed samples record.
    let flags: Vec<bool> = recs.iter().map(|r| r.snappy).collect();
    assert_eq!(flags, [false, true, true, false]);
    assert_eq!(recs[3].data[0], record::kind::SAMPLES);
}

#[test]
fn a_cut_at_every_offset_keeps_exactly_the_whole_records_before_it() {
    use super::segment::{ReadError, read_segment};
    let seg = golden("simple");
    let (all, _) = read_segment(&seg);
    let ends: Vec<usize> = vec![7 + 28, seg.len()];
    for cut in 0..seg.len() {
        let (recs, err) = read_segment(&seg[..cut]);
        let whole = ends.iter().filter(|&&e| e <= cut).count();
        assert_eq!(recs, all[..whole].to_vec(), "cut at {cut}");
        let clean = cut == 0 || ends.contains(&cut);
        assert_eq!(err.is_none(), clean, "cut at {cut}: {err:?}");
        if !clean {
            assert!(
                matches!(err, Some(ReadError::Torn { .. })),
                "cut at {cut}: {err:?}"
            );
        }
    }
    // A flipped bit is a checksum error, never a wrong record.
    let mut bad = seg.clone();
    bad[40] ^= 1;
    let (recs, err) = read_segment(&bad);
    assert_eq!(recs.len(), 1);
    assert!(matches!(err, Some(ReadError::Checksum { .. })));
}

/// A segment's samples as `promtool tsdb dump` prints them: by label set, then time.
fn dump(seg: &[u8]) -> Vec<String> {
    use super::segment::read_segment;
    let (recs, err) = read_segment(seg);
    assert_eq!(err, None);
    let mut series = std::collections::BTreeMap::new();
    // (labels, time, value as printed)
    type Row = (Vec<(String, String)>, i64, String);
    let mut rows: Vec<Row> = Vec::new();
    for r in recs {
        let p = r.payload().expect("decompresses");
        match p[0] {
            record::kind::SERIES => {
                for (r, l) in record::decode_series(&p).expect("series record") {
                    series.insert(r, l);
                }
            }
            record::kind::SAMPLES => {
                for s in record::decode_samples(&p).expect("samples record") {
                    let l = &series[&s.series];
                    let key = l
                        .iter()
                        .map(|(n, v)| (n.to_owned(), v.to_owned()))
                        .collect();
                    rows.push((key, s.t, format!("{}", s.value())));
                }
            }
            _ => {}
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    rows.into_iter()
        .map(|(l, t, v)| {
            let labels: Vec<String> = l.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
            format!("{{{}}} {v} {t}", labels.join(", "))
        })
        .collect()
}

#[test]
fn decoded_goldens_match_promtool_dump() {
    for name in ["simple", "multipage", "prometheus-2.42-written"] {
        let want = std::fs::read_to_string(format!(
            "{}/../../shared/conformance/wal-golden/{name}/expected-promtool-dump.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let want: Vec<&str> = want.lines().collect();
        assert_eq!(dump(&golden(name)), want, "{name}");
    }
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
