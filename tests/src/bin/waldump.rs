//! Prints the records of WAL segment files (a debugging aid): one line per record with
//! its offset, type and size, then its series or samples.

// A command-line tool reports on standard output.
#![allow(clippy::print_stdout)]

use trawl_core::wal::record;
use trawl_core::wal::segment::read_segment;

fn main() {
    for path in std::env::args().skip(1) {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                println!("{path}: {e}");
                continue;
            }
        };
        let (recs, err) = read_segment(&bytes);
        println!(
            "{path}: {} records, {} bytes, end: {err:?}",
            recs.len(),
            bytes.len()
        );
        for r in recs {
            let Some(p) = r.payload() else {
                println!("  @{} snappy payload does not decompress", r.offset);
                continue;
            };
            match p.first() {
                Some(&record::kind::SERIES) => {
                    for (s, l) in record::decode_series(&p).unwrap_or_default() {
                        let mut l = l.to_go_string();
                        l.truncate(120);
                        println!("  @{} series {} {l}", r.offset, s.0);
                    }
                }
                Some(&record::kind::SAMPLES) => {
                    for s in record::decode_samples(&p).unwrap_or_default() {
                        println!("  @{} sample {} {} {:#x}", r.offset, s.series.0, s.t, s.v);
                    }
                }
                k => println!("  @{} type {k:?}, {} bytes", r.offset, p.len()),
            }
        }
    }
}
