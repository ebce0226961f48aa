//! `trawl`: the Prometheus-compatible discovery and scrape agent.
//!
//! `trawl --config.file=prometheus.yml` runs the daemon; `trawl check config FILE…`
//! validates configurations as Prometheus 3.x does.

// A command-line program reports on standard output and error.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use trawl_core::agent::AgentOptions;
use trawl_core::config::SdConfig;
use trawl_core::target::{Populated, targets_from_group};
use trawl_mio::daemon::{self, DaemonOptions};
use trawl_mio::storage::{SyncPolicy, WalOptions, WriterOptions};

/// A Prometheus-compatible service-discovery and scrape agent.
#[derive(Parser, Debug)]
#[command(name = "trawl", version, about)]
struct Cli {
    /// The Prometheus configuration file.
    #[arg(long = "config.file", default_value = "prometheus.yml", global = true)]
    config_file: PathBuf,
    /// The data directory: the WAL (Prometheus's format) goes to <path>/wal.
    #[arg(long = "storage.path", default_value = "data")]
    storage_path: PathBuf,
    /// Delete the oldest WAL segments beyond this size (e.g. 10GB; 0 = no bound).
    #[arg(long = "storage.retention.size", default_value = "0")]
    retention_size: String,
    /// Delete WAL segments whose newest sample is older than this (e.g. 1d; 0 = no bound).
    #[arg(long = "storage.retention.time", default_value = "0s")]
    retention_time: String,
    /// Snappy-compress WAL records (as Prometheus does by default).
    #[arg(long = "storage.wal-compression", default_value_t = true, action = clap::ArgAction::Set)]
    wal_compression: bool,
    /// When the WAL is synced to disk: `always` (every write), `never` (when segments
    /// complete, like Prometheus), or an interval such as `1s`.
    #[arg(long = "storage.sync", default_value = "1s")]
    sync: String,
    /// Where the HTTP API listens.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090")]
    listen: String,
    /// Enable `POST /-/reload` and `POST /-/quit`.
    #[arg(long = "web.enable-lifecycle")]
    lifecycle: bool,
    /// Log level: debug, info, warn or error.
    #[arg(long = "log.level", default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check files.
    Check {
        #[command(subcommand)]
        what: Check,
    },
}

#[derive(Subcommand, Debug)]
enum Check {
    /// Validate configuration files and show the targets of their static configs.
    Config {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn check_config(files: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for f in files {
        let config = match daemon::load_config(f) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("FAILED: {e}");
                ok = false;
                continue;
            }
        };
        println!("{}: configuration is valid", f.display());
        for s in &config.ignored_sections {
            println!("  note: section {s:?} is accepted and ignored by an agent");
        }
        for job in &config.scrape_configs {
            println!(
                "job {:?}: every {}, timeout {}",
                job.job_name, job.scrape_interval, job.scrape_timeout
            );
            for sd in &job.sd_configs {
                if let SdConfig::Static(groups) = sd {
                    for g in groups {
                        for r in targets_from_group(g, job) {
                            match r {
                                Ok(Populated::Active(t)) => {
                                    println!("  target {} {}", t.url, t.public_labels());
                                }
                                Ok(Populated::Dropped { rule }) => {
                                    println!("  dropped by relabel_configs[{rule}]");
                                }
                                Err(e) => println!("  error: {e}"),
                            }
                        }
                    }
                } else {
                    println!("  {} discovery", sd.mechanism());
                }
            }
            for u in &job.unsupported_sd {
                println!("  note: {u} is not supported yet; it discovers nothing");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn options(cli: &Cli) -> Result<DaemonOptions, String> {
    let size = trawl_core::units::ByteSize::parse(&cli.retention_size)
        .map_err(|e| format!("--storage.retention.size: {e}"))?;
    let time = trawl_core::PromDuration::parse(&cli.retention_time)
        .map_err(|e| format!("--storage.retention.time: {e}"))?
        .to_std();
    let sync = match cli.sync.as_str() {
        "always" => SyncPolicy::EveryWrite,
        "never" => SyncPolicy::Never,
        d => SyncPolicy::Interval(
            trawl_core::PromDuration::parse(d)
                .map_err(|e| format!("--storage.sync: {e}"))?
                .to_std(),
        ),
    };
    let listen = cli
        .listen
        .parse()
        .map_err(|e| format!("--web.listen-address={}: {e}", cli.listen))?;
    Ok(DaemonOptions {
        listen,
        lifecycle: cli.lifecycle,
        config_file: cli.config_file.clone(),
        storage_path: cli.storage_path.clone(),
        wal: WalOptions {
            compress: cli.wal_compression,
            retention_size: size.0,
            retention_time: (time > Duration::ZERO).then_some(time),
            ..WalOptions::default()
        },
        writer: WriterOptions {
            sync,
            ..WriterOptions::default()
        },
        agent: AgentOptions {
            fqdn: hostname(),
            ..AgentOptions::default()
        },
    })
}

/// The host name, for the scrape-phase seed (as Prometheus's `os.Hostname`-based FQDN).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Check {
        what: Check::Config { files },
    }) = &cli.command
    {
        return check_config(files);
    }
    let level = match cli.log_level.as_str() {
        "debug" => tracing::Level::DEBUG,
        "warn" => tracing::Level::WARN,
        "error" => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let opts = match options(&cli) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match daemon::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(err = %e, "trawl stopped");
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
