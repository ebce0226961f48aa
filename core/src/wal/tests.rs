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
