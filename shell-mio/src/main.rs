//! `trawl`: the Prometheus-compatible discovery and scrape agent.
//!
//! This build loads and validates a `prometheus.yml` and shows the targets its static
//! configurations produce after relabeling, as Prometheus would. Discovery from files,
//! HTTP and DNS, scraping and storage arrive with the daemon.

// A command-line program reports on standard output and error.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use trawl_core::config::{Config, ParseOptions, SdConfig};
use trawl_core::target::{Populated, targets_from_group};

const USAGE: &str = "usage: trawl [--config.file=PATH] [--version]

Loads PATH (default prometheus.yml), validates it as Prometheus 3.x does and prints the
targets of its static_configs after relabeling.";

fn main() -> ExitCode {
    let mut config_file = "prometheus.yml".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--version" | "-v" => {
                println!("trawl {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--config.file" => match args.next() {
                Some(v) => config_file = v,
                None => {
                    eprintln!("--config.file needs a value\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            a if a.starts_with("--config.file=") => {
                config_file = a["--config.file=".len()..].to_owned();
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let text = match std::fs::read_to_string(&config_file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{config_file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut options = ParseOptions::for_path(&config_file);
    options.env = std::env::vars().collect();
    let config = match Config::parse(&text, &options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{config_file}: configuration is valid");
    for s in &config.ignored_sections {
        println!("  note: section {s:?} is accepted and ignored by an agent");
    }
    for job in &config.scrape_configs {
        println!(
            "job {:?}: every {}, timeout {}",
            job.job_name, job.scrape_interval, job.scrape_timeout
        );
        for sd in &job.sd_configs {
            match sd {
                SdConfig::Static(groups) => {
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
                }
                other => println!(
                    "  {} discovery configured (runs in the daemon, not in this build)",
                    other.mechanism()
                ),
            }
        }
        for u in &job.unsupported_sd {
            println!("  note: {u} is not supported yet; it discovers nothing");
        }
    }
    for rw in &config.remote_write {
        println!("remote_write {}", rw.url);
    }
    ExitCode::SUCCESS
}
