//! Prometheus's write-ahead log format, encoded in the core (pure: bytes in memory, the
//! shells write them): record encodings (`formats.md` §4.3) and the page/fragment layer
//! of a segment (§4.2). Byte-identical to what Prometheus 2.42 writes for uncompressed
//! records, as the golden segments show.
//!
//! Two places where Prometheus's own format document is wrong are followed as the code
//! and the readers have it: deltas in samples records are *signed* (zigzag) varints, and
//! segment names have eight digits.

pub mod record;
pub mod replay;
pub mod segment;

#[cfg(test)]
mod tests;
