//! Arbitrary bytes as a file SD / HTTP SD document, in both syntaxes: parsing may fail,
//! never panic; every group it returns has no empty label value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::discovery::groups::{DocFormat, parse_target_groups};

fuzz_target!(|data: &[u8]| {
    for format in [DocFormat::Json, DocFormat::Yaml] {
        if let Ok(groups) = parse_target_groups(data, format) {
            for g in &groups {
                assert!(g.labels.iter().all(|(_, v)| !v.is_empty()));
                for t in &g.targets {
                    assert!(t.iter().all(|(_, v)| !v.is_empty()));
                }
            }
        }
    }
});
