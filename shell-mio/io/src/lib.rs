//! The IO half of trawl that both shells share, so the daemon (`trawl-mio`) and
//! `trawl-tokio` behave alike and an embedder compiles no daemon code:
//!
//! * [`storage`]: the local write-ahead log, in Prometheus's format: a data directory
//!   that `promtool tsdb dump` and a Prometheus server read. [`storage::Wal`] does the
//!   file work synchronously; [`storage::Writer`] runs it on its own thread, fed by a
//!   bounded crossbeam channel and answering with acknowledgements the shell hands to
//!   the core as `Input::Stored`. [`storage::Overflow`] keeps series declarations in
//!   order when a queue is full.
//! * [`remote`]: remote write from the WAL (the core's queues, the WAL tail, progress
//!   files, `prometheus_remote_storage_*`) over any [`remote::Transport`], with request
//!   ids of its own ([`client::RemoteId`]).
//! * [`drive`]: the bookkeeping between the agent and IO: [`drive::carry_out`] maps each
//!   output onto a shell's [`drive::Io`]; deadlines, the shutdown's flush deadline and
//!   event logging.
//! * [`client`]: who an HTTP request belongs to ([`client::Caller`]), remote write's
//!   POSTs, credentials files and Go's dial errors.
//! * [`files`]: discovery's bounded file reads and listings, and the inotify mask.
//! * [`tls`]: rustls client settings from `tls_config`.
//! * [`dns`]: name server addresses and a blocking exchange for one-shot runs.
//! * [`resolve`]: host names for every connection, through the core's stub resolver.
//! * [`source`]: a configuration and the files it includes, read for the core to parse.
//!
//! The completions a shell queues for the agent are the core's
//! [`trawl_core::io::OwnedIoEvent`].

pub mod aws;
pub mod client;
pub mod dns;
pub mod drive;
pub mod files;
pub mod remote;
pub mod resolve;
pub mod source;
pub mod storage;
pub mod tls;

pub use client::{Caller, RemoteId, authorize, credentials, dial_error};
pub use drive::{log_event, wait_for};
