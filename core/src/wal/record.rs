//! WAL record payloads: series (type 1), samples (type 2) and metadata (type 6).

use crate::labels::Labels;
use crate::scrape::pipeline::{Point, SeriesRef};

/// Record type bytes.
pub mod kind {
    /// Series records.
    pub const SERIES: u8 = 1;
    /// Float samples records.
    pub const SAMPLES: u8 = 2;
    /// Metadata records.
    pub const METADATA: u8 = 6;
}

/// Go's `binary.PutUvarint`.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Go's `binary.PutVarint`: zigzag, then LEB128.
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A series record: each ref with its labels (already sorted by name, as `Labels` are).
pub fn series<'a>(out: &mut Vec<u8>, series: impl IntoIterator<Item = (SeriesRef, &'a Labels)>) {
    out.push(kind::SERIES);
    for (r, labels) in series {
        out.extend_from_slice(&r.0.to_be_bytes());
        put_uvarint(out, labels.len() as u64);
        for (n, v) in labels.iter() {
            put_str(out, n);
            put_str(out, v);
        }
    }
}

/// A samples record: the first sample's ref and time as the base, then each sample as
/// signed deltas from it and the value's bits. No samples: just the type byte.
pub fn samples(out: &mut Vec<u8>, samples: &[Point]) {
    out.push(kind::SAMPLES);
    let Some(first) = samples.first() else {
        return;
    };
    out.extend_from_slice(&first.series.0.to_be_bytes());
    out.extend_from_slice(&first.t.to_be_bytes());
    for p in samples {
        put_varint(out, p.series.0.wrapping_sub(first.series.0) as i64);
        put_varint(out, p.t.wrapping_sub(first.t));
        out.extend_from_slice(&p.v.to_be_bytes());
    }
}
