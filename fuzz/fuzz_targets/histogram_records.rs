//! Arbitrary bytes as a native-histogram WAL record (types 7–10): decoding never
//! panics or allocates past the record's size; what decodes, written again into its
//! kind's record, decodes to the same histograms (the encoding is stable); the
//! operations a scrape or a reader applies (validate, compact, coarser resolution,
//! the remote-write encoding, replay) never panic on it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::histogram::{EXPONENTIAL_SCHEMA_MIN, EXPONENTIAL_SCHEMA_MAX};
use trawl_core::remote::encode::encode_histogram;
use trawl_core::wal::record;
use trawl_core::wal::replay::Replay;

fuzz_target!(|data: &[u8]| {
    let Some(points) = record::decode_histograms(data) else {
        return;
    };
    let mut again = Vec::new();
    for k in [
        record::kind::HISTOGRAM_SAMPLES,
        record::kind::FLOAT_HISTOGRAM_SAMPLES,
        record::kind::CUSTOM_BUCKETS_HISTOGRAM_SAMPLES,
        record::kind::CUSTOM_BUCKETS_FLOAT_HISTOGRAM_SAMPLES,
    ] {
        let mut rec = Vec::new();
        record::histograms(&mut rec, k, &points);
        let back = record::decode_histograms(&rec).expect("a written record decodes");
        assert!(back.iter().all(|p| record::histogram_kind(&p.h) == k));
        again.extend(back);
    }
    let mut want = points.clone();
    want.sort_by_key(|p| record::histogram_kind(&p.h));
    assert_eq!(again, want, "re-encoded records decode to the same histograms");
    let mut rp = Replay::new();
    rp.record(data);
    let _ = rp.finish();
    for p in points {
        let mut h = p.h;
        let _ = h.validate();
        let _ = h.fingerprint();
        let _ = h.to_string();
        let mut rw = Vec::new();
        encode_histogram(&mut rw, p.t, &h);
        if h.bucket_count() <= 1 << 16 {
            let mut c = h.clone();
            c.compact(2);
            c.compact(0);
            if (EXPONENTIAL_SCHEMA_MIN + 1..=EXPONENTIAL_SCHEMA_MAX).contains(&h.schema) {
                let _ = h.reduce_resolution(h.schema - 1);
            }
        }
    }
});
