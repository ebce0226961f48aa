//! Arbitrary bytes through the protobuf exposition parser; see `exposition_common.rs` for
//! what is checked (no panic, chunking invisible, bounded carry).
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::exposition::Format;

#[path = "exposition_common.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::check(data, &[(Format::Protobuf, false)]));
