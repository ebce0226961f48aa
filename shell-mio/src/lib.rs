//! The IO half of trawl that both shells share, and the mio daemon's pieces.
//!
//! * [`storage`]: the local write-ahead log, in Prometheus's format: a data directory that
//!   `promtool tsdb dump` and a Prometheus server read. [`storage::Wal`] does the file
//!   work synchronously; [`storage::Writer`] runs it on its own thread, fed by a bounded
//!   crossbeam channel and answering with acknowledgements the event loop hands to the
//!   core as [`trawl_core::Input::Stored`]. `trawl-tokio` uses the same writer.

pub mod storage;
