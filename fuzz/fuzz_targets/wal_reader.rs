//! Arbitrary bytes as a WAL segment: the reader never panics, returns records in order
//! (each one's fragments passed their checksums: the reader stops at the first bad one),
//! and decoding any returned record never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::wal::record;
use trawl_core::wal::segment::read_segment;

fuzz_target!(|data: &[u8]| {
    let (recs, _err) = read_segment(data);
    let mut end = 0;
    for r in &recs {
        assert!(r.offset >= end, "records overlap");
        end = r.offset;
        if let Some(p) = r.payload() {
            let _ = record::decode_series(&p);
            let _ = record::decode_samples(&p);
        }
    }
});
