//! # trawl-core
//!
//! The pure, deterministic core of trawl, a Prometheus-compatible service-discovery and
//! scrape agent. Everything here is a function of its inputs: no sockets, files, threads,
//! clocks or OS randomness. The shells (`trawl-mio`, `trawl-tokio`) do the IO.
//!
//! * [`agent`] — the [`Agent`]: discovery manager (providers shared across jobs,
//!   per-source target groups), coalescing of discovery changes, the incremental scrape
//!   manager (pools keyed by exact target identity) and the scrape loops on Prometheus's
//!   phase grid; [`discovery`] and [`scrape`] hold its parts, and
//!   [`scrape::pipeline`] turns each response into one atomic batch (series cache,
//!   `honor_labels`, metric relabeling, limits, staleness, report series);
//! * [`exposition`] — the Prometheus text and OpenMetrics parsers, streaming and
//!   zero-copy, the `Content-Type` rules and gzip;
//! * [`io`] and [`time`] — what the agent asks a shell to do and hears back, and the
//!   agent's own clock types;
//! * [`config`] — an unmodified `prometheus.yml`, parsed and validated as Prometheus 3.x
//!   does, every error placed at a line and column;
//! * [`duration`] and [`units`] — Prometheus durations and base-2 byte sizes;
//! * [`labels`] — a compact sorted label set, its builder, and Prometheus's label hashes;
//! * [`goregex`] and [`relabel`] — Go RE2 regexes and the eleven relabel actions;
//! * [`target`] — discovered labels → relabeling → scrape target and URL;
//! * [`hash`] — target hash and scrape phase, bit-for-bit as Prometheus;
//! * [`wal`] — Prometheus's write-ahead log in memory: record encoders and decoders,
//!   pages and fragments, the segment reader, and the replay that restores series refs
//!   at start (the files are `trawl-mio`'s `storage` module).
//!
//! ## Example: from configuration to scrape targets
//!
//! ```
//! use trawl_core::config::{Config, ParseOptions};
//! use trawl_core::target::{Populated, targets_from_group};
//!
//! let yaml = r#"
//! scrape_configs:
//!   - job_name: node
//!     static_configs:
//!       - targets: ["localhost:9100"]
//!         labels: {env: prod}
//! "#;
//! let config = Config::parse(yaml, &ParseOptions::for_path("/etc/prometheus/prometheus.yml"))
//!     .expect("valid config");
//! let job = config.job("node").unwrap();
//! let groups = job.sd_configs[0].static_groups().expect("static_configs");
//! for result in targets_from_group(&groups[0], job) {
//!     match result {
//!         Ok(Populated::Active(t)) => {
//!             assert_eq!(&*t.url, "http://localhost:9100/metrics");
//!             assert_eq!(t.public_labels().get("instance"), Some("localhost:9100"));
//!         }
//!         Ok(Populated::Dropped { rule }) => println!("dropped by rule {rule}"),
//!         Err(e) => println!("{e}"),
//!     }
//! }
//! ```
//!
//! ## The drive loop
//!
//! The agent never blocks and never fails. A shell reads the clock once per wake-up,
//! feeds what happened, carries out what the agent asks, and sleeps until the agent's one
//! deadline or the next IO event:
//!
//! ```text
//! loop {
//!     while let Some(out) = agent.poll_output() { shell.execute(out) }  // IO, send, cancel, store
//!     let event = shell.wait_until(agent.poll_timeout());                 // IO or timer
//!     agent.handle_input(shell.now(), event);                             // never fails
//! }
//! ```
//!
//! Here is that loop in full, with a test's stand-in for the network and storage: every
//! scrape is answered at once with the same small body, and every committed scrape
//! arrives as one `Output::Append` batch.
//!
//! ```
//! use trawl_core::agent::{Agent, AgentOptions, Input, Output};
//! use trawl_core::config::{Config, ParseOptions};
//! use trawl_core::io::{IoEvent, IoOp};
//! use trawl_core::time::{Instant, Now, UnixNanos};
//!
//! let config = Config::parse(
//!     "scrape_configs: [{job_name: node, scrape_interval: 15s, static_configs: [{targets: ['localhost:9100']}]}]",
//!     &ParseOptions::for_path("/etc/prometheus/prometheus.yml"),
//! ).expect("valid config");
//! let mut now = Now::new(Instant(0), UnixNanos(1_700_000_000_000_000_000));
//! let mut agent = Agent::new(config, AgentOptions::default(), now);
//! let (mut scrapes, mut stored) = (Vec::new(), Vec::new());
//! while scrapes.len() < 3 {
//!     while let Some(out) = agent.poll_output() {
//!         match out {
//!             Output::Start { id, op: IoOp::Http(req) } => {
//!                 scrapes.push((now.mono, req.url));
//!                 let head = IoEvent::HttpHead { status: 200, reason: "OK", headers: &[("Content-Type", "text/plain")] };
//!                 agent.handle_input(now, Input::Io { id, event: head });
//!                 agent.handle_input(now, Input::Io { id, event: IoEvent::HttpBody(b"node_load1 0.5\n") });
//!                 agent.handle_input(now, Input::Io { id, event: IoEvent::HttpEnd });
//!             }
//!             Output::Append(batch) => stored.push(batch),
//!             _ => {}
//!         }
//!     }
//!     // Nothing else to do: sleep until the agent's deadline.
//!     let deadline = agent.poll_timeout().expect("a loop is scheduled");
//!     now = now.after(deadline - now.mono);
//!     agent.handle_input(now, Input::Timeout);
//! }
//! assert_eq!(scrapes[0].1, "http://localhost:9100/metrics");
//! // Scrapes are exactly one interval apart.
//! assert_eq!(scrapes[2].0 - scrapes[1].0, std::time::Duration::from_secs(15));
//! // The first batch declares `node_load1` and the five report series, then their samples.
//! assert_eq!(stored[0].series.len(), 6);
//! assert_eq!(stored[0].samples[0].value(), 0.5);
//! assert!(stored[1].series.is_empty(), "a repeat scrape declares nothing new");
//! ```
//!
//! A shell also carries byte streams ([`io::IoOp::Stream`], ZooKeeper's sessions): it
//! connects, reports what arrives as [`io::IoEvent::StreamData`], and writes the bytes of
//! each [`agent::Output::Send`] in order; framing, timeouts and limits stay in the core.
//!
//! With storage, two more inputs close the loop: at start, before anything is scraped,
//! [`agent::Input::Restore`] hands the agent what the WAL holds (so a series scraped again
//! keeps its ref), and after writes the storage reports on the batches it received,
//! in order, with [`agent::Input::Stored`] (stored or lost samples, the error if any);
//! the agent keeps scraping whatever storage does and counts it in
//! [`agent::AgentStats::storage`]. Each batch also lists the refs it retires, so storage
//! knows which series can no longer receive samples.
//!
//! Same inputs and seed give the same outputs, byte for byte: the simulator in
//! `trawl-tests` drives the agent through hours of simulated discovery churn, failures
//! and reloads and checks its invariants after every step.
#![forbid(unsafe_code)]

pub mod agent;
pub mod api;
pub mod auth;
pub mod batch;
pub mod bytes;
pub mod common;
pub mod config;
pub mod discovery;
pub mod duration;
pub mod exposition;
pub mod goquote;
pub mod goregex;
pub mod gourl;
pub mod hash;
pub mod histogram;
pub mod http;
pub mod io;
pub mod labels;
pub mod metrics;
pub mod recording;
pub mod relabel;
pub mod remote;
pub mod resolver;
pub mod scrape;
pub mod selector;
pub mod target;
pub mod time;
pub mod units;
pub mod wal;

pub use agent::{Agent, AgentOptions, Event, Input, Output, Stored};
pub use config::{Config, ConfigError, ParseOptions};
pub use duration::PromDuration;
pub use io::{IoEvent, IoOp, RequestId};
pub use labels::{Labels, LabelsBuilder};
pub use time::{Instant, Now, UnixNanos};
