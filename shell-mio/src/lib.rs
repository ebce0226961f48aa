//! The `trawl` daemon: the trawl-core agent driven by a mio event loop, on the IO layer
//! both shells share ([`trawl_io`]: storage, remote write, file work, TLS, the
//! agent-to-IO bookkeeping).
//!
//! * [`daemon`]: the event loop: HTTP/1.1 scrapes with the core's codec over mio sockets
//!   (keep-alive, redirects, names resolved off the loop), DNS exchanges, file discovery
//!   with inotify, storage through the writer thread, SIGHUP reloads and a graceful
//!   shutdown on SIGTERM/SIGINT.
//! * [`web`]: the daemon's HTTP API server and its bounds ([`web::WebOptions`]).
//! * [`webconfig`]: `--web.config.file` (TLS and basic auth on that server).
//! * [`pages`]: the pages it serves (targets, service discovery, configuration, flags,
//!   status).
//! * [`sd_once`]: `trawl sd`: discovery once, blocking, printed.
//! * [`dns`]: DNS exchanges on the loop's sockets.
//! * [`alloc`]: the daemon's malloc thresholds (less resident memory with glibc).
//! * [`rlimit`]: the soft open-files limit raised to the hard one at start.
//! * [`logfmt`]: Prometheus's logfmt log lines.
//! * [`build_info`]: version, commit and compiler of this build.

pub mod alloc;
pub mod build_info;
pub mod daemon;
pub mod dns;
pub mod logfmt;
mod lookups;
mod net;
pub mod pages;
pub mod rlimit;
pub mod sd_once;
mod stream;
pub mod web;
pub mod webconfig;
