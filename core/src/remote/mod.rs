//! Remote write 1.0: the request encoder (pure, byte for byte what Prometheus 2.42
//! sends for the same series) and the queue that turns WAL records into requests.

pub mod encode;
pub mod queue;
