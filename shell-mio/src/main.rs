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
use trawl_core::target::{Populated, targets_from_group};
use trawl_io::storage::{SyncPolicy, WalOptions, WriterOptions};
use trawl_mio::daemon::{self, DaemonOptions};

/// A Prometheus-compatible service-discovery and scrape agent.
#[derive(Parser, Debug)]
#[command(name = "trawl", about, disable_version_flag = true)]
struct Cli {
    /// Print the version and build information (Prometheus's layout) and exit.
    #[arg(long = "version")]
    version: bool,
    /// Accepted for Prometheus's command lines: trawl always runs as an agent.
    #[arg(long = "agent")]
    agent: bool,
    /// The Prometheus configuration file.
    #[arg(long = "config.file", default_value = "prometheus.yml", global = true)]
    config_file: PathBuf,
    /// The data directory: the WAL (Prometheus's format) goes to <path>/wal.
    #[arg(
        long = "storage.path",
        alias = "storage.agent.path",
        default_value = "data"
    )]
    storage_path: PathBuf,
    /// Delete the oldest WAL segments beyond this size (e.g. 10GB; 0 = no bound).
    #[arg(long = "storage.retention.size", default_value = "0")]
    retention_size: String,
    /// Delete WAL segments whose newest sample is older than this (e.g. 1d; 0 = no bound).
    /// (`--storage.agent.retention.max-time` is the same bound.)
    #[arg(
        long = "storage.retention.time",
        alias = "storage.agent.retention.max-time",
        default_value = "0s"
    )]
    retention_time: String,
    /// Snappy-compress WAL records (as Prometheus does by default); `=false` or
    /// `--no-storage.wal-compression` turns it off.
    #[arg(
        long = "storage.wal-compression",
        alias = "storage.agent.wal-compression",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    wal_compression: bool,
    /// Do not compress WAL records (Prometheus's negated switch).
    #[arg(
        long = "no-storage.wal-compression",
        alias = "no-storage.agent.wal-compression"
    )]
    no_wal_compression: bool,
    /// WAL segment size (a multiple of 32KiB; Prometheus's default 128MB).
    #[arg(
        long = "storage.wal-segment-size",
        alias = "storage.agent.wal-segment-size",
        default_value = "128MiB"
    )]
    wal_segment_size: String,
    /// Prometheus agent flags trawl accepts and does not act on (a warning at start
    /// says so): trawl truncates the WAL when a segment completes, keeps no samples
    /// back for a minimum time, and always locks its data directory.
    #[arg(long = "storage.agent.wal-truncate-frequency", hide = true)]
    agent_truncate_frequency: Option<String>,
    #[arg(long = "storage.agent.retention.min-time", hide = true)]
    agent_min_time: Option<String>,
    #[arg(long = "storage.agent.no-lockfile", hide = true)]
    agent_no_lockfile: bool,
    /// How long a shutdown waits for remote write to send what the WAL still holds
    /// (what is left goes after the next start: each queue's progress is on disk, so
    /// the default is shorter than Prometheus's 1m).
    #[arg(long = "storage.remote.flush-deadline", default_value = "5s")]
    flush_deadline: String,
    /// Reload the configuration when its file changes (checked every
    /// --config.auto-reload-interval), as Prometheus 3.x's switch.
    #[arg(long = "config.auto-reload")]
    auto_reload: bool,
    /// How often --config.auto-reload looks at the configuration file.
    #[arg(long = "config.auto-reload-interval", default_value = "30s")]
    auto_reload_interval: String,
    /// Storage: `wal`, the local WAL in Prometheus's format, sent on to every
    /// `remote_write` receiver of the configuration (the only mode so far).
    #[arg(long = "storage.mode", default_value = "wal", value_parser = ["wal"])]
    storage_mode: String,
    /// Delete WAL segments as soon as every remote-write queue has sent them, so the WAL
    /// holds only what is still to send (the other retention bounds still apply).
    #[arg(long = "storage.wal.delete-sent")]
    delete_sent: bool,
    /// When the WAL is synced to disk: `always` (every write), `never` (when segments
    /// complete, like Prometheus), or an interval such as `1s`.
    #[arg(long = "storage.sync", default_value = "1s")]
    sync: String,
    /// Where the HTTP API listens: `host:port`, `:port` (every interface), a name;
    /// repeat the flag for more than one.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090", action = clap::ArgAction::Append)]
    listen: Vec<String>,
    /// The URL trawl is reached at from outside (behind a reverse proxy); its path
    /// prefixes every endpoint unless --web.route-prefix says otherwise.
    #[arg(long = "web.external-url")]
    external_url: Option<String>,
    /// The prefix of every endpoint (default: the path of --web.external-url, else /).
    #[arg(long = "web.route-prefix")]
    route_prefix: Option<String>,
    /// TLS and basic authentication for the web server, in Prometheus's web
    /// configuration format (`tls_server_config`, `basic_auth_users`,
    /// `http_server_config.headers`); its files are read again when they change.
    #[arg(long = "web.config.file")]
    web_config_file: Option<PathBuf>,
    /// The body size limit (decompressed) of scrapes whose job sets no
    /// `body_size_limit`; 0 for none (Prometheus's default). A job's own limit wins.
    #[arg(long = "scrape.body-size-limit", default_value = "64MB")]
    body_size_limit: String,
    /// Scrape a target found for a job that has run for an interval at once, then on
    /// its phase grid (off, as in Prometheus: a new target waits up to an interval for
    /// its first scrape). On, a burst of new targets is scraped together rather than
    /// spread over the interval.
    #[arg(long = "scrape.first-at-once")]
    first_at_once: bool,
    /// The resolver configuration (name servers, search domains, `options ndots:
    /// timeout: attempts: rotate`) for DNS discovery (read at every refresh) and for the
    /// name of every connection (targets, HTTP SD endpoints, proxies, remote write;
    /// read again after 5 s).
    #[arg(
        long = "discovery.dns.resolv-conf",
        default_value = "/etc/resolv.conf",
        global = true
    )]
    resolv_conf: String,
    /// The port name servers are asked on (resolv.conf cannot name one; for a server on
    /// another port, as in tests).
    #[arg(long = "discovery.dns.port", default_value_t = 53, global = true)]
    dns_port: u16,
    /// The hosts file the name of every connection is looked up in before DNS
    /// (read again after 5 s).
    #[arg(
        long = "discovery.dns.hosts-file",
        default_value = "/etc/hosts",
        global = true
    )]
    hosts_file: String,
    /// Where the pod's service account is mounted, for Kubernetes discovery in a
    /// cluster (the token, read again for every request, `ca.crt` and `namespace`).
    #[arg(
        long = "discovery.kubernetes.service-account-dir",
        default_value = trawl_core::agent::DEFAULT_SERVICE_ACCOUNT_DIR,
        global = true
    )]
    service_account_dir: String,
    /// Enable `POST /-/reload` and `POST /-/quit`.
    #[arg(long = "web.enable-lifecycle")]
    lifecycle: bool,
    /// The most time an API client may take to send its request (and so the longest
    /// an idle connection stays open), as Prometheus's flag.
    #[arg(long = "web.read-timeout", default_value = "5m")]
    read_timeout: String,
    /// API connections open at once. At the cap the connection that has been sending
    /// its request the longest is closed to make room, so slow clients cannot lock the
    /// API out (or take the file descriptors scrapes need).
    #[arg(long = "web.max-connections", default_value_t = 512)]
    max_connections: usize,
    /// Record every input the agent is fed to this file (replay it with `trawl replay`).
    /// The file holds the configuration as written, secrets included, the whole
    /// environment, and every scraped body and discovery answer; it is created readable
    /// by its owner only (mode 0600). Keep it as you would keep the secrets themselves.
    #[arg(long = "debug.record")]
    record: Option<PathBuf>,
    /// Prometheus's experimental features, comma-separated (repeatable). Applied:
    /// `created-timestamp-zero-ingestion`. Accepted with nothing to change:
    /// `exemplar-storage` (exemplars are always stored, as Prometheus's agent mode
    /// does), `native-histograms` (a no-op in 3.x too). Anything else is reported at
    /// start and not applied.
    #[arg(long = "enable-feature", value_delimiter = ',')]
    enable_feature: Vec<String>,
    /// Log format: logfmt (as Prometheus) or json.
    #[arg(long = "log.format", default_value = "logfmt", value_parser = ["logfmt", "json"])]
    log_format: String,
    /// Log level: debug, info, warn or error.
    #[arg(long = "log.level", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
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
    /// Parse an exposition body as a scrape would: print the samples it would store
    /// (labels, value, timestamp if any), or the error with its line and column.
    Parse {
        /// The body's Content-Type (default: Prometheus text 0.0.4).
        #[arg(long = "content-type", default_value = "text/plain; version=0.0.4")]
        content_type: String,
        /// Refuse OpenMetrics bodies that break the specification's semantic rules.
        /// Without it the first such rule is printed as a warning: a scrape accepts
        /// these bodies, as Prometheus does (client_golang writes a `_sum` beside
        /// negative buckets, which the specification forbids).
        #[arg(long)]
        strict: bool,
        /// Print every entry (metadata, samples with labels and exemplars) and the
        /// result as JSON lines.
        #[arg(long)]
        json: bool,
        /// Parse as `--enable-feature=created-timestamp-zero-ingestion` scrapes do:
        /// OpenMetrics `_created` lines of counters, summaries and histograms are start
        /// timestamps, printed with the samples they start (`st`, ms), not samples.
        #[arg(long = "created-timestamps")]
        created_timestamps: bool,
        /// Take native histograms as `scrape_native_histograms: true` does (protobuf
        /// bodies); without it their native parts are ignored.
        #[arg(long = "native-histograms")]
        native_histograms: bool,
        /// Convert classic histograms to native histograms with custom buckets
        /// (`convert_classic_histograms_to_nhcb: true`).
        #[arg(long = "convert-classic-histograms-to-nhcb")]
        nhcb: bool,
        /// Keep the classic series of histograms taken as native or converted
        /// (`always_scrape_classic_histograms: true`).
        #[arg(long = "always-scrape-classic-histograms")]
        keep_classic: bool,
        /// The file (`-` for standard input).
        file: PathBuf,
    },
    /// Replay a recording (`--debug.record`) into a fresh agent and print the digest of
    /// its outputs, and whether it equals the recorded run's.
    Replay {
        /// The recording.
        file: PathBuf,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell), made from
    /// this command line's own definition.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), made from this command line's own definition
    /// (`trawl man > trawl.1; man -l trawl.1`).
    Man,
    /// Run discovery once (static, file, HTTP, DNS and Kubernetes SD: Kubernetes lists
    /// once) and relabeling, and print the targets as JSON, active and dropped (with the
    /// dropping rule), without scraping.
    Sd {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
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
        let config = match trawl_io::source::load_config(f) {
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
        for w in config.warnings() {
            println!("  warning: {w}");
        }
        for job in &config.scrape_configs {
            let from = job
                .file
                .as_deref()
                .map(|f| format!(" (from {f})"))
                .unwrap_or_default();
            println!(
                "job {:?}{from}: every {}, timeout {}",
                job.job_name, job.scrape_interval, job.scrape_timeout
            );
            for sd in &job.sd_configs {
                if let Some(groups) = sd.static_groups() {
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
                println!(
                    "  warning: trawl does not run {u} yet: validated, it discovers nothing (the job's other blocks run)"
                );
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A histogram as Prometheus's `histogram.Histogram` / `FloatHistogram` hold it:
/// integer buckets as deltas, float buckets as counts, floats as Go formats them.
fn histogram_json(h: &trawl_core::histogram::Histogram) -> serde_json::Value {
    use trawl_core::goquote::format_go_float as g;
    use trawl_core::histogram::{Counts, Histogram};
    let spans = |s: &[trawl_core::histogram::Span]| {
        s.iter()
            .map(|s| serde_json::json!([s.offset, s.length]))
            .collect::<Vec<_>>()
    };
    let (count, zero_count, positive, negative) = match &h.counts {
        Counts::Int {
            count,
            zero_count,
            positive,
            negative,
        } => (
            serde_json::json!(count),
            serde_json::json!(zero_count),
            serde_json::json!(Histogram::deltas(positive).collect::<Vec<_>>()),
            serde_json::json!(Histogram::deltas(negative).collect::<Vec<_>>()),
        ),
        Counts::Float {
            count,
            zero_count,
            positive,
            negative,
        } => (
            serde_json::json!(g(*count)),
            serde_json::json!(g(*zero_count)),
            serde_json::json!(positive.iter().map(|v| g(*v)).collect::<Vec<_>>()),
            serde_json::json!(negative.iter().map(|v| g(*v)).collect::<Vec<_>>()),
        ),
    };
    serde_json::json!({
        "float": h.is_float(),
        "hint": h.hint as u8,
        "schema": h.schema,
        "count": count,
        "sum": g(h.sum),
        "zero_threshold": g(h.zero_threshold),
        "zero_count": zero_count,
        "positive_spans": spans(&h.positive_spans),
        "negative_spans": spans(&h.negative_spans),
        "positive_buckets": positive,
        "negative_buckets": negative,
        "custom_values": h.custom_values.iter().map(|v| g(*v)).collect::<Vec<_>>(),
    })
}

fn parse_body(
    content_type: &str,
    strict: bool,
    json: bool,
    created_timestamps: bool,
    hist: trawl_core::exposition::HistogramOptions,
    file: &std::path::Path,
) -> ExitCode {
    use trawl_core::exposition::created::{Disposition, StartTimes};
    use trawl_core::exposition::{BodyParser, Entry, FeedError, exposed_labels, select_format};
    use trawl_core::goquote::format_go_float;
    let body = if file.as_os_str() == "-" {
        let mut b = Vec::new();
        match std::io::Read::read_to_end(&mut std::io::stdin(), &mut b) {
            Ok(_) => b,
            Err(e) => {
                eprintln!("stdin: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        }
    };
    let format = match select_format(Some(content_type), None) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut p = BodyParser::new(format).histograms(hist);
    p = if strict { p.strict() } else { p.advisory() };
    let mut n = 0u64;
    // Lines out, in order; a sample's start timestamp may come later (a `_created` line
    // after it), so nothing is printed before the end.
    let mut out: Vec<String> = Vec::new();
    let mut st_of: std::collections::BTreeMap<usize, Option<i64>> = Default::default();
    let mut starts = created_timestamps.then(StartTimes::new);
    let pairs =
        |l: &mut dyn Iterator<Item = (std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)>| {
            serde_json::Value::Array(
                l.map(|(k, v)| serde_json::json!([k, v]))
                    .collect::<Vec<_>>(),
            )
        };
    // The sink refuses what a scrape refuses after parsing (a repeated label name), with
    // the sample that did it: the scrape would fail there.
    let mut sink = |e: Entry<'_>| -> Result<(), String> {
        let token = out.len();
        let mut st_here: Option<Option<i64>> = None;
        if let Some(st) = starts.as_mut() {
            let mut resolved = |t: u64, v: Option<i64>| {
                st_of.insert(t as usize, v);
            };
            match &e {
                Entry::Help { name, .. } | Entry::Type { name, .. } | Entry::Unit { name, .. } => {
                    st.metadata(name, &mut resolved)
                }
                Entry::Eof => st.end(&mut resolved),
                // A protobuf sample carries its start (0: none).
                Entry::Sample(s) if s.start.is_some() => {
                    st_here = Some(s.start.filter(|&t| t != 0));
                }
                Entry::Sample(s) => match st.sample(s, token as u64, &mut resolved) {
                    Disposition::Created => return Ok(()),
                    Disposition::Known(v) => st_here = Some(v),
                    Disposition::Pending => st_here = Some(None),
                },
                // A protobuf histogram carries its start; a converted one is found as
                // a sample's is.
                Entry::Histogram(h) if h.sample.start.is_some() => {
                    st_here = Some(h.sample.start.filter(|&t| t != 0));
                }
                Entry::Histogram(h) => match st.sample(&h.sample, token as u64, &mut resolved) {
                    Disposition::Created => return Ok(()),
                    Disposition::Known(v) => st_here = Some(v),
                    Disposition::Pending => st_here = Some(None),
                },
                Entry::Comment => {}
            }
        }
        if let Some(v) = st_here {
            st_of.entry(token).or_insert(v);
        }
        let line = match e {
            Entry::Sample(s) => {
                n += 1;
                let labels = exposed_labels(&s).map_err(|e| format!("{e}: {}", s.series))?;
                if json {
                    let exemplar = s.exemplar.as_ref().map(|x| {
                        serde_json::json!({
                            "labels": pairs(&mut x.labels()),
                            "value": format_go_float(x.value),
                            "timestamp": x.timestamp,
                        })
                    });
                    // A protobuf sample's series text is the decoder's compact key, not
                    // text: show its labels instead.
                    let series = if format == trawl_core::exposition::Format::Protobuf {
                        trawl_core::labels::Labels::from_pairs(labels.iter().cloned())
                            .to_go_string()
                    } else {
                        s.series.to_owned()
                    };
                    serde_json::json!({
                        "entry": "series",
                        "series": series,
                        "labels": pairs(&mut labels.into_iter()),
                        "value": format_go_float(s.value),
                        "timestamp": s.timestamp,
                        "exemplar": exemplar,
                    })
                    .to_string()
                } else {
                    let labels = trawl_core::labels::Labels::from_pairs(
                        labels
                            .into_iter()
                            .map(|(k, v)| (k.into_owned(), v.into_owned()))
                            .collect::<Vec<_>>(),
                    );
                    let mut l = format!("{} {}", labels.to_go_string(), format_go_float(s.value));
                    if let Some(t) = s.timestamp {
                        l.push_str(&format!(" {t}"));
                    }
                    l
                }
            }
            Entry::Histogram(h) => {
                n += 1;
                let s = &h.sample;
                let labels = exposed_labels(s).map_err(|e| format!("{e}: {}", s.series))?;
                let labels = trawl_core::labels::Labels::from_pairs(labels);
                let exemplars: Vec<serde_json::Value> = h
                    .exemplars
                    .iter()
                    .map(|x| {
                        serde_json::json!({
                            "labels": pairs(&mut x.labels()),
                            "value": format_go_float(x.value),
                            "timestamp": x.timestamp,
                        })
                    })
                    .collect();
                if json {
                    serde_json::json!({
                        "entry": "histogram",
                        // A protobuf series text is the decoder's compact key; a
                        // converted one is written as the text format writes it.
                        "series": if format == trawl_core::exposition::Format::Protobuf {
                            labels.to_go_string()
                        } else {
                            s.series.to_owned()
                        },
                        "labels": pairs(&mut labels.iter().map(|(k, v)| (k.into(), v.into()))),
                        "histogram": histogram_json(&h.histogram),
                        "timestamp": s.timestamp,
                        "exemplars": exemplars,
                    })
                    .to_string()
                } else {
                    let mut l = format!("{} {}", labels.to_go_string(), h.histogram);
                    if let Some(t) = s.timestamp {
                        l.push_str(&format!(" {t}"));
                    }
                    l
                }
            }
            _ if !json => return Ok(()),
            Entry::Help { name, text } => {
                serde_json::json!({"entry": "help", "name": name, "text": text}).to_string()
            }
            Entry::Type { name, kind } => {
                serde_json::json!({"entry": "type", "name": name, "kind": kind.as_str()})
                    .to_string()
            }
            Entry::Unit { name, unit } => {
                serde_json::json!({"entry": "unit", "name": name, "unit": unit}).to_string()
            }
            Entry::Comment => serde_json::json!({"entry": "comment"}).to_string(),
            Entry::Eof => serde_json::json!({"entry": "eof"}).to_string(),
        };
        out.push(line);
        Ok(())
    };
    let r = p.feed(&body, &mut sink).and_then(|()| p.finish(&mut sink));
    if let Some(st) = starts.as_mut() {
        st.end(&mut |t: u64, v: Option<i64>| {
            st_of.insert(t as usize, v);
        });
    }
    for (i, line) in out.iter().enumerate() {
        match st_of.get(&i) {
            // The start timestamp joins the sample's line.
            Some(st) if json => match serde_json::from_str::<serde_json::Value>(line) {
                Ok(serde_json::Value::Object(mut m)) => {
                    m.insert("st".into(), serde_json::json!(st));
                    println!("{}", serde_json::Value::Object(m));
                }
                _ => println!("{line}"),
            },
            Some(Some(st)) => println!("{line} st={st}"),
            _ => println!("{line}"),
        }
    }
    let (error, line, column) = match &r {
        Ok(()) => (None, None, None),
        Err(FeedError::Parse(e)) => (Some(e.message.clone()), Some(e.line), Some(e.column)),
        Err(FeedError::Sink(e)) => (Some(e.clone()), None, None),
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "result": if error.is_some() { "error" } else { "ok" },
                "samples": n,
                "error": error,
                "line": line,
                "column": column,
            })
        );
    }
    if let Some(a) = p.advice() {
        eprintln!(
            "{}: warning: {a}: the OpenMetrics specification forbids this; a scrape accepts it (as Prometheus does), --strict refuses it",
            file.display()
        );
    }
    match r {
        Ok(()) => {
            eprintln!("{}: {n} samples", file.display());
            ExitCode::SUCCESS
        }
        Err(FeedError::Parse(e)) => {
            eprintln!("{}: {e}", file.display());
            ExitCode::FAILURE
        }
        Err(FeedError::Sink(e)) => {
            eprintln!("{}: {e} (the scrape would fail here)", file.display());
            ExitCode::FAILURE
        }
    }
}

/// Every flag of the command line with its value, given or default, as
/// `/api/v1/status/flags` shows Prometheus's (names without the dashes; switches
/// `true`/`false`; repeated values joined by commas).
fn flags_map(matches: &clap::ArgMatches) -> std::collections::BTreeMap<String, String> {
    use clap::CommandFactory as _;
    let mut out = std::collections::BTreeMap::new();
    for arg in Cli::command().get_arguments() {
        let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else {
            continue;
        };
        if long == "help" || long == "version" {
            continue;
        }
        let value = match arg.get_action() {
            clap::ArgAction::SetTrue | clap::ArgAction::SetFalse => matches
                .get_one::<bool>(id)
                .copied()
                .unwrap_or(false)
                .to_string(),
            _ => matches
                .get_raw(id)
                .map(|v| {
                    v.map(|x| x.to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default(),
        };
        out.insert(long.to_owned(), value);
    }
    out
}

/// A `--web.listen-address`: `host:port`, `[v6]:port`, `:port` (every interface, as
/// Go listens on `:port`) or `name:port` (its first address).
fn listen_address(a: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs as _;
    if let Ok(addr) = a.parse() {
        return Ok(addr);
    }
    let (host, port) = a
        .rsplit_once(':')
        .ok_or_else(|| "missing port in address".to_owned())?;
    let port: u16 = port.parse().map_err(|_| format!("invalid port {port:?}"))?;
    if host.is_empty() {
        // IPv6's any address takes IPv4 too; without IPv6 the listener falls back to
        // IPv4's.
        return Ok(std::net::SocketAddr::from(([0u16; 8], port)));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("lookup {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("lookup {host}: no address"))
}

/// The external URL and the route prefix, as 3.x's `computeExternalURL` and its use:
/// without `--web.external-url`, `http://<hostname>:<port>/` of the first listener; the
/// prefix is the URL's path unless `--web.route-prefix` is given; both without a
/// trailing `/` (the prefix `/` alone for none).
fn web_paths(
    external: Option<&str>,
    prefix: Option<&str>,
    listen: &[std::net::SocketAddr],
) -> Result<(String, String), String> {
    let url = match external.filter(|u| !u.is_empty()) {
        Some(u) => {
            if u.starts_with(['"', '\'']) || u.ends_with(['"', '\'']) {
                return Err(format!(
                    "--web.external-url={u}: URL must not begin or end with quotes"
                ));
            }
            let parsed =
                trawl_core::gourl::parse(u).map_err(|e| format!("--web.external-url: {e}"))?;
            // The path: after `scheme://host`, up to a query or fragment.
            let after = u.split_once("://").map_or("", |(_, r)| r);
            let path = after
                .find('/')
                .map_or("", |i| &after[i..])
                .split(['?', '#'])
                .next()
                .unwrap_or("");
            let path = path.trim_end_matches('/');
            let path = if path.is_empty() || path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            };
            format!("{}://{}{path}", parsed.scheme, parsed.host,)
        }
        None => {
            let port = listen.first().map_or(9090, std::net::SocketAddr::port);
            format!("http://{}:{port}", hostname())
        }
    };
    let prefix = match prefix {
        Some(p) => p.to_owned(),
        None => url
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{p}"))
            .unwrap_or_default(),
    };
    let prefix = format!("/{}", prefix.trim_matches('/'));
    Ok((url, prefix))
}

fn options(cli: &Cli, matches: &clap::ArgMatches) -> Result<DaemonOptions, String> {
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
        .iter()
        .map(|a| listen_address(a).map_err(|e| format!("--web.listen-address={a}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let (external_url, route_prefix) = web_paths(
        cli.external_url.as_deref(),
        cli.route_prefix.as_deref(),
        &listen,
    )?;
    Ok(DaemonOptions {
        hosts_file: cli.hosts_file.clone(),
        record: cli.record.clone(),
        timer_slack: trawl_io::drive::TIMER_SLACK,
        listen,
        web: trawl_mio::web::WebOptions {
            lifecycle: cli.lifecycle,
            read_timeout: trawl_core::PromDuration::parse(&cli.read_timeout)
                .map_err(|e| format!("--web.read-timeout: {e}"))?
                .to_std(),
            max_connections: cli.max_connections,
            external_url,
            route_prefix,
            config_file: cli
                .web_config_file
                .clone()
                .filter(|p| !p.as_os_str().is_empty()),
            flags: flags_map(matches),
            retention: {
                // 3.x's runtime info: `<time> or <size>`, each only when set.
                let mut parts = Vec::new();
                if time > Duration::ZERO {
                    parts.push(
                        trawl_core::PromDuration::parse(&cli.retention_time)
                            .map(|d| d.to_string())
                            .unwrap_or_default(),
                    );
                }
                if size.0 > 0 {
                    parts.push(size.to_string());
                }
                parts.join(" or ")
            },
        },
        config_file: cli.config_file.clone(),
        storage_path: cli.storage_path.clone(),
        wal: WalOptions {
            compress: cli.wal_compression && !cli.no_wal_compression,
            segment_size: {
                let b = trawl_core::units::ByteSize::parse(&cli.wal_segment_size)
                    .map_err(|e| format!("--storage.wal-segment-size: {e}"))?
                    .0;
                if b == 0 || b % (32 << 10) != 0 {
                    return Err(format!(
                        "--storage.wal-segment-size={}: must be a positive multiple of 32KiB",
                        cli.wal_segment_size
                    ));
                }
                b
            },
            retention_size: size.0,
            retention_time: (time > Duration::ZERO).then_some(time),
            delete_sent: cli.delete_sent,
        },
        flush_deadline: trawl_core::PromDuration::parse(&cli.flush_deadline)
            .map_err(|e| format!("--storage.remote.flush-deadline: {e}"))?
            .to_std(),
        auto_reload: if cli.auto_reload {
            Some(
                trawl_core::PromDuration::parse(&cli.auto_reload_interval)
                    .map_err(|e| format!("--config.auto-reload-interval: {e}"))?
                    .to_std()
                    .max(Duration::from_secs(1)),
            )
        } else {
            None
        },
        writer: WriterOptions {
            sync,
            ..WriterOptions::default()
        },
        agent: AgentOptions {
            fqdn: hostname(),
            start_timestamps: features(cli).0,
            first_scrape_at_once: cli.first_at_once,
            body_size_limit: trawl_core::units::ByteSize::parse(&cli.body_size_limit)
                .map_err(|e| format!("--scrape.body-size-limit: {e}"))?
                .0,
            ..discovery_options(cli)
        },
    })
}

/// What `--enable-feature` asks for: whether start timestamps are on, and one line per
/// feature saying what trawl makes of it (logged at start).
fn features(cli: &Cli) -> (bool, Vec<(tracing::Level, String)>) {
    let mut start_timestamps = false;
    let mut notes = Vec::new();
    for f in cli
        .enable_feature
        .iter()
        .map(|f| f.trim())
        .filter(|f| !f.is_empty())
    {
        let note = match f {
            "created-timestamp-zero-ingestion" => {
                start_timestamps = true;
                (
                    tracing::Level::INFO,
                    "start timestamp zero ingestion enabled: OpenMetrics _created lines of counters, summaries and histograms are start timestamps, stored as 0 samples; jobs that do not list scrape_protocols prefer PrometheusProto (as in Prometheus 3.x)".to_owned(),
                )
            }
            "exemplar-storage" => (
                tracing::Level::INFO,
                "exemplar-storage: nothing to change, exemplars are always stored in the WAL (as in Prometheus's agent mode)".to_owned(),
            ),
            "native-histograms" => (
                tracing::Level::WARN,
                "native-histograms is a no-op (as in Prometheus 3.x): set scrape_native_histograms in the scrape config".to_owned(),
            ),
            other => (
                tracing::Level::WARN,
                format!("--enable-feature={other} is not applied: trawl does not know it or has nothing it changes"),
            ),
        };
        notes.push(note);
    }
    (start_timestamps, notes)
}

/// The agent options discovery takes from flags (the daemon and `trawl sd`).
fn discovery_options(cli: &Cli) -> AgentOptions {
    AgentOptions {
        resolv_conf: cli.resolv_conf.clone(),
        dns_port: cli.dns_port,
        kubernetes_service: trawl_io::source::kubernetes_service_from_env(),
        kubernetes_service_account_dir: cli.service_account_dir.clone(),
        aws_region: trawl_io::aws::default_region(&trawl_io::aws::ProcessEnv),
        api_bases: trawl_io::source::api_bases_from_env().0,
        ..AgentOptions::default()
    }
}

use trawl_mio::daemon::hostname;

fn main() -> ExitCode {
    trawl_mio::alloc::tune();
    let matches = {
        use clap::CommandFactory as _;
        Cli::command().get_matches()
    };
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if cli.version {
        print!("{}", trawl_mio::build_info::version_text());
        return ExitCode::SUCCESS;
    }
    match &cli.command {
        Some(Command::Check {
            what: Check::Config { files },
        }) => return check_config(files),
        Some(Command::Parse {
            content_type,
            strict,
            json,
            created_timestamps,
            native_histograms,
            nhcb,
            keep_classic,
            file,
        }) => {
            let hist = trawl_core::exposition::HistogramOptions {
                native: *native_histograms,
                keep_classic: *keep_classic,
                nhcb: *nhcb,
                start_timestamps: *created_timestamps,
            };
            return parse_body(
                content_type,
                *strict,
                *json,
                *created_timestamps,
                hist,
                file,
            );
        }
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory as _;
            clap_complete::generate(*shell, &mut Cli::command(), "trawl", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Some(Command::Man) => {
            use clap::CommandFactory as _;
            let cmd = Cli::command().version(trawl_mio::build_info::VERSION);
            return match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Command::Replay { file }) => {
            let bytes = match std::fs::read(file) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    return ExitCode::FAILURE;
                }
            };
            return match trawl_core::recording::replay(&bytes) {
                Ok(r) => {
                    println!("inputs {}", r.inputs);
                    println!("digest {:016x}", r.digest.0);
                    match r.recorded {
                        Some(d) if d == r.digest => {
                            println!("recorded {:016x}: match", d.0);
                            ExitCode::SUCCESS
                        }
                        Some(d) => {
                            println!("recorded {:016x}: MISMATCH", d.0);
                            ExitCode::FAILURE
                        }
                        None => {
                            println!("recorded: none (the recording did not end cleanly)");
                            ExitCode::SUCCESS
                        }
                    }
                }
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    ExitCode::FAILURE
                }
            };
        }
        Some(Command::Sd { job }) => {
            let options = discovery_options(&cli);
            for refused in trawl_io::source::api_bases_from_env().1 {
                eprintln!("test-only API base refused: {refused}");
            }
            for (mechanism, base) in &options.api_bases {
                eprintln!("test-only API base in use: {mechanism} at {base}");
            }
            return match trawl_mio::sd_once::run(
                &cli.config_file,
                job.as_deref(),
                options,
                &cli.hosts_file,
            ) {
                Ok(json) => {
                    println!("{json}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
    let level = match cli.log_level.as_str() {
        "debug" => tracing::Level::DEBUG,
        "warn" => tracing::Level::WARN,
        "error" => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    let format = if cli.log_format == "json" {
        trawl_mio::logfmt::Format::Json
    } else {
        trawl_mio::logfmt::Format::Logfmt
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .event_format(trawl_mio::logfmt::Logfmt(format))
        .init();
    {
        use trawl_mio::build_info as b;
        let args: Vec<String> = std::env::args().skip(1).collect();
        tracing::info!(
            mode = "agent",
            version = %format!("(version={}, branch={}, revision={})", b::VERSION, b::BRANCH, b::REVISION),
            build_context = %format!("(rust={}, platform={}/{}, date={})", b::RUSTC, std::env::consts::OS, b::GOARCH, b::BUILD_DATE),
            flags = %args.join(" "),
            "Starting trawl"
        );
    }
    for (flag, given) in [
        (
            "--storage.agent.wal-truncate-frequency",
            cli.agent_truncate_frequency.is_some(),
        ),
        (
            "--storage.agent.retention.min-time",
            cli.agent_min_time.is_some(),
        ),
        ("--storage.agent.no-lockfile", cli.agent_no_lockfile),
    ] {
        if given {
            tracing::warn!(
                flag,
                "accepted and not applied: trawl truncates the WAL when a segment completes (--storage.retention.time bounds its age) and always locks its data directory"
            );
        }
    }
    for (level, note) in features(&cli).1 {
        if level == tracing::Level::WARN {
            tracing::warn!(feature = %note, "--enable-feature");
        } else {
            tracing::info!(feature = %note, "--enable-feature");
        }
    }
    let opts = match options(&cli, &matches) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    for refused in trawl_io::source::api_bases_from_env().1 {
        tracing::warn!(variable = %refused, "test-only API base refused");
    }
    for (mechanism, base) in &opts.agent.api_bases {
        tracing::warn!(
            mechanism = %mechanism,
            base = %base,
            "test-only API base in use ({}*): this mechanism talks to it instead of its provider",
            trawl_io::source::API_BASE_PREFIX
        );
    }
    match daemon::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, in the log's format.
            tracing::error!(err = %e, "trawl stopped");
            ExitCode::FAILURE
        }
    }
}
