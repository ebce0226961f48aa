//! # trawl-core
//!
//! The pure, deterministic core of trawl, a Prometheus-compatible service-discovery and
//! scrape agent. Everything here is a function of its inputs: no sockets, files, threads,
//! clocks or OS randomness. The shells (`trawl-mio`, `trawl-tokio`) do the IO.
//!
//! This release holds the foundations the agent state machine is built on:
//!
//! * [`config`] — an unmodified `prometheus.yml`, parsed and validated as Prometheus 3.x
//!   does, every error placed at a line and column;
//! * [`duration`] and [`units`] — Prometheus durations and base-2 byte sizes;
//! * [`labels`] — a compact sorted label set, its builder, and Prometheus's label hashes;
//! * [`goregex`] and [`relabel`] — Go RE2 regexes and the eleven relabel actions;
//! * [`target`] — discovered labels → relabeling → scrape target and URL;
//! * [`hash`] — target hash and scrape phase, bit-for-bit as Prometheus.
//!
//! ## Example: from configuration to scrape targets
//!
//! ```
//! use trawl_core::config::{Config, ParseOptions, SdConfig};
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
//! let SdConfig::Static(groups) = &job.sd_configs[0] else { unreachable!() };
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
//! ## The drive loop (contract for the agent)
//!
//! The agent state machine that lands next follows the sans-IO contract of
//! `ARCHITECTURE.md`: the shell reads the clock once per wake-up and feeds inputs; the core
//! answers with outputs and one deadline.
//!
//! ```text
//! loop {
//!     while let Some(out) = agent.poll_output() { shell.execute(out) }  // start IO, append
//!     let deadline = agent.poll_timeout();
//!     let event = shell.wait(deadline);                                  // IO or timer
//!     agent.handle_input(shell.now(), event);                            // never fails
//! }
//! ```
#![forbid(unsafe_code)]

pub mod agent;
pub mod config;
pub mod discovery;
pub mod duration;
pub mod goquote;
pub mod goregex;
pub mod hash;
pub mod io;
pub mod labels;
pub mod relabel;
pub mod scrape;
pub mod target;
pub mod time;
pub mod units;

pub use agent::{Agent, AgentOptions, Event, Input, Output};
pub use config::{Config, ConfigError, ParseOptions};
pub use duration::PromDuration;
pub use io::{IoEvent, IoOp, RequestId};
pub use labels::{Labels, LabelsBuilder};
pub use time::{Instant, Now, UnixNanos};
