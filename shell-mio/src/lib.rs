//! The IO half of trawl that both shells share, and the mio daemon.
//!
//! * [`storage`]: the local write-ahead log, in Prometheus's format: a data directory that
//!   `promtool tsdb dump` and a Prometheus server read. [`storage::Wal`] does the file
//!   work synchronously; [`storage::Writer`] runs it on its own thread, fed by a bounded
//!   crossbeam channel and answering with acknowledgements the event loop hands to the
//!   core as [`trawl_core::Input::Stored`]. `trawl-tokio` uses the same writer.
//! * [`daemon`]: the `trawl` daemon's event loop on mio: HTTP/1.1 scrapes with the core's
//!   codec over mio sockets (keep-alive, redirects, names resolved off the loop), file
//!   discovery with inotify, storage through the writer thread, SIGHUP reloads and a
//!   graceful shutdown on SIGTERM/SIGINT.
//! * [`remote`]: remote write from the WAL (the core's queues, the WAL tail, progress
//!   files, `prometheus_remote_storage_*`), over any [`remote::Transport`].
//! * [`alloc`]: the daemon's malloc thresholds (less resident memory with glibc).
//! * [`rlimit`]: the soft open-files limit raised to the hard one at start.
//! * [`web`]: the daemon's HTTP API server and its bounds ([`web::WebOptions`]).
//! * Shared with `trawl-tokio`, so both shells behave alike: [`files`] (discovery's
//!   file reads and listings), [`tls`] (rustls client settings from `tls_config`),
//!   [`credentials`] (credentials files) and [`log_event`] (how agent events are logged).

pub mod alloc;
pub mod daemon;
pub mod dns;
pub mod files;
pub mod logfmt;
mod net;
pub mod remote;
pub mod rlimit;
pub mod sd_once;
pub mod storage;
pub mod tls;
pub mod web;

pub use daemon::log_event;
pub use daemon::wait_for;
pub use net::{credentials, dial_error};
