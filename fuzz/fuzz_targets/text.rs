//! Arbitrary bytes through the Prometheus text parser; see `exposition_common.rs` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::exposition::Format;

#[path = "exposition_common.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::check(data, &[(Format::PromText, false)]));
