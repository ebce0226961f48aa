//! Arbitrary bytes as a WAL segment: the reader never panics, returns records in order,
//! never returns a record at or past a fragment whose checksum failed, stops at record
//! boundaries (reading only up to a record's end gives the same records up to it), and
//! decoding any returned record never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::wal::record;
use trawl_core::wal::replay::Replay;
use trawl_core::wal::segment::{ReadError, read_segment, valid_len};

fuzz_target!(|data: &[u8]| {
    let (recs, err) = read_segment(data);
    let mut end = 0;
    for r in &recs {
        assert!(r.offset >= end, "records overlap");
        assert!(r.end > r.offset && r.end <= data.len());
        end = r.end;
    }
    if let Some(ReadError::Checksum { offset }) = err {
        assert!(end <= offset, "a record reaches past a bad checksum");
    }
    // The prefix up to the last whole record reads back as exactly those records.
    let cut = valid_len(&recs);
    let (again, err2) = read_segment(&data[..cut]);
    assert_eq!(again, recs);
    assert_eq!(err2, None);
    let mut rp = Replay::new();
    for r in &recs {
        if let Some(p) = r.payload() {
            let _ = record::decode_series(&p);
            let _ = record::decode_samples(&p);
            let _ = record::decode_metadata(&p);
            rp.record(&p);
        }
    }
    let _ = rp.finish();
});
