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
