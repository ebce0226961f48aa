//! The WAL encoder and reader against the golden segments in
//! `../shared/conformance/wal-golden/` (read in place): the worked example byte for byte,
//! every golden read whole, decoded exactly as `promtool tsdb dump` printed it, and a cut
//! at every offset keeping exactly the whole records before it.

use trawl_core::exposition::float::STALE_NAN;
use trawl_core::labels::Labels;
use trawl_core::scrape::pipeline::{Point, SeriesRef};
use trawl_core::wal::record;
use trawl_core::wal::segment::{PAGE, SegmentWriter};

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
    assert_eq!(w.bytes(), &golden("simple")[..]);
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
    use trawl_core::wal::segment::read_segment;
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
    use trawl_core::wal::segment::{ReadError, read_segment};
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
    use trawl_core::wal::segment::read_segment;
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
