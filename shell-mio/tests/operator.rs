//! What an operator meets (issue 20): the self-metrics the prometheus-mixin's alerts and
//! dashboards use, checked against a running trawl beside Prometheus 2.42 in agent mode
//! on the same configuration, and `/metrics` checked by `promtool check metrics`.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::receivers::*;
use common::*;

/// Sample names (`name` of each sample line) in a text-format body.
fn sample_names(body: &str) -> BTreeSet<String> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

/// The value of the first sample line starting with `prefix`.
fn sample(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Every metric name the mixin's expressions use (`prometheus_…` and `process_…`).
fn mixin_names() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/prometheus-mixin");
    let mut names = BTreeSet::new();
    for f in ["alerts.libsonnet", "dashboards.libsonnet"] {
        let text = std::fs::read_to_string(dir.join(f)).expect("mixin file");
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let word_start = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
            let rest = &text[i..];
            if word_start && (rest.starts_with("prometheus_") || rest.starts_with("process_")) {
                let end = rest
                    .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                    .unwrap_or(rest.len());
                names.insert(rest[..end].to_owned());
                i += end;
            } else {
                i += 1;
            }
        }
    }
    names
}

/// Mixin names an agent has no use for, with the reason: Prometheus's own agent mode
/// does not export them either (checked below), or exports them idle.
const NOT_FOR_AN_AGENT: &[(&str, &str)] = &[
    (
        "prometheus_engine_",
        "PromQL queries: an agent answers none",
    ),
    (
        "prometheus_rule_",
        "rule evaluation: an agent evaluates no rules",
    ),
    (
        "prometheus_tsdb_head_",
        "the TSDB head: an agent keeps only its WAL",
    ),
    (
        "prometheus_tsdb_compactions_",
        "TSDB blocks: an agent writes none",
    ),
    (
        "prometheus_tsdb_reloads_",
        "TSDB blocks: an agent writes none",
    ),
    (
        "prometheus_tsdb_clean_start",
        "the TSDB's lock-file check: an agent has none",
    ),
    // 2.x names the mixin falls back to (`a or b`) beside the current ones.
    (
        "prometheus_remote_storage_failed_samples_total",
        "2.x name of prometheus_remote_storage_samples_failed_total",
    ),
    (
        "prometheus_remote_storage_succeeded_samples_total",
        "2.x name of prometheus_remote_storage_samples_total",
    ),
    (
        "prometheus_remote_storage_dropped_samples_total",
        "2.x name of prometheus_remote_storage_samples_dropped_total",
    ),
    (
        "prometheus_remote_storage_retried_samples_total",
        "2.x name of prometheus_remote_storage_samples_retried_total",
    ),
    (
        "prometheus_remote_storage_pending_samples",
        "2.x name of prometheus_remote_storage_samples_pending",
    ),
];

/// Mixin names Prometheus's agent registers though it cannot use them: its notifier
/// exists, but an agent has no rules, so it never sends an alert.
const IDLE_IN_PROMETHEUS_AGENT: &[&str] = &["prometheus_notifications_"];

fn excluded(name: &str) -> bool {
    NOT_FOR_AN_AGENT.iter().any(|(p, _)| name.starts_with(p))
        || IDLE_IN_PROMETHEUS_AGENT.iter().any(|p| name.starts_with(p))
}

/// Prometheus 2.42 in agent mode on `config`, its API on `port`.
fn prometheus_agent(dir: &Path, config: &Path, port: u16) -> Proc {
    prometheus(
        port,
        &[
            "--enable-feature=agent".into(),
            format!("--config.file={}", config.display()),
            format!("--storage.agent.path={}", dir.join("agent").display()),
        ],
    )
}

/// trawl exports every series the prometheus-mixin's alerts and dashboards use that
/// applies to an agent; each exclusion is something Prometheus's own agent mode lacks
/// (or registers idle); and `promtool check metrics` finds nothing wrong with `/metrics`
/// beyond the names Prometheus itself uses.
#[test]
fn self_metrics_cover_the_mixin_beside_prometheus_agent_mode() {
    let d = TempDir::new("mixin");
    let (_nginx, addrs, _) = fleet(&d.0, 1..=1, 20);
    let recv_port = free_port();
    let _recv = prometheus_server(&d.0.join("recv"), recv_port, None, "native-histograms");
    let closed = free_port();
    let config = d.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 900ms}}\n\
             scrape_configs:\n\
             - job_name: e2e\n  static_configs: [{{targets: ['{}']}}]\n\
             - job_name: sd\n  http_sd_configs: [{{url: 'http://127.0.0.1:{closed}/sd', refresh_interval: 1s}}]\n\
             remote_write:\n\
             - url: http://127.0.0.1:{recv_port}/api/v1/write\n  name: recv\n",
            addrs[0]
        ),
    )
    .expect("config");
    let t = Daemon::start(&d.0, &config, &d.0.join("data"));
    let agent_port = free_port();
    let _agent = prometheus_agent(&d.0, &config, agent_port);
    let ready = |port: u16| {
        let m = http_get(port, "/metrics").map(|x| x.1).unwrap_or_default();
        sample(&m, "prometheus_target_interval_length_seconds_count").unwrap_or(0.0) >= 3.0
            && sample(&m, "prometheus_remote_storage_samples_total").unwrap_or(0.0) > 0.0
    };
    eventually(Duration::from_secs(60), "both scraped and sent", || {
        ready(t.web) && ready(agent_port)
    });
    let ours = t.metrics();
    let theirs = http_get(agent_port, "/metrics")
        .map(|x| x.1)
        .unwrap_or_default();
    let (ours_n, theirs_n) = (sample_names(&ours), sample_names(&theirs));

    eprintln!(
        "Prometheus's agent exports, trawl does not: {:?}",
        theirs_n.difference(&ours_n).collect::<Vec<_>>()
    );
    let mixin = mixin_names();
    assert!(mixin.len() > 40, "the mixin's names were read: {mixin:?}");
    let missing: Vec<&String> = mixin
        .iter()
        .filter(|n| !excluded(n) && !ours_n.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "mixin series trawl does not export: {missing:?}\n{ours}"
    );
    // Each exclusion is one Prometheus's agent mode does without too.
    for n in mixin.iter().filter(|n| excluded(n)) {
        let idle = IDLE_IN_PROMETHEUS_AGENT.iter().any(|p| n.starts_with(p));
        assert!(
            idle || !theirs_n.contains(n),
            "{n} is excluded but Prometheus's agent exports it"
        );
    }
    // The refresh failures of the HTTP discovery that cannot connect are counted.
    assert!(
        sample(
            &ours,
            "prometheus_sd_refresh_failures_total{config=\"sd\",mechanism=\"http\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{ours}"
    );
    assert_eq!(
        sample(&ours, "prometheus_config_last_reload_successful"),
        Some(1.0)
    );

    // `promtool check metrics`: no format error; its only lint findings are about names
    // Prometheus itself exports.
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(ours.as_bytes()).expect("write");
    }
    let out = child.wait_with_output().expect("promtool");
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "promtool: {findings}"
    );
    for f in findings.lines().filter(|l| !l.trim().is_empty()) {
        let name = f.split_whitespace().next().unwrap_or_default();
        assert!(
            theirs.contains(&format!("# TYPE {name} ")) || PROMETHEUS_3_NAMES.contains(&name),
            "promtool finds {f:?} about a name Prometheus does not use"
        );
    }
}

/// Names 3.x exports that 2.42 did not (promtool lints their `histogram` word).
const PROMETHEUS_3_NAMES: &[&str] = &[
    "prometheus_target_interval_length_histogram_seconds",
    "prometheus_target_sync_length_histogram_seconds",
    "prometheus_target_scrapes_exceeded_native_histogram_bucket_limit_total",
];

/// Writes a WAL of `scrapes` × `series` samples into `data` (1 MiB segments), as a
/// previous run would have left it.
fn write_wal(data: &Path, series: usize, scrapes: usize) -> u32 {
    use trawl_core::labels::Labels;
    use trawl_core::scrape::pipeline::{Batch, Point, SeriesRef};
    use trawl_io::storage::{Wal, WalOptions};
    let opts = WalOptions {
        segment_size: 1 << 20,
        ..WalOptions::default()
    };
    let (mut wal, _, _) = Wal::open(data, opts).expect("open");
    for s in 0..scrapes {
        let t = 1_700_000_000_000 + s as i64 * 15_000;
        let mut b = Batch {
            job: "j".into(),
            target: "u".into(),
            loop_id: 0,
            series: Vec::new(),
            samples: Vec::with_capacity(series),
            histograms: Default::default(),
            exemplars: Default::default(),
            retired: Default::default(),
        };
        for i in 0..series {
            if s == 0 {
                let l = Labels::from_pairs([("__name__", "m"), ("i", &*i.to_string())]);
                b.series.push((SeriesRef(i as u64 + 1), l));
            }
            b.samples.push(Point {
                series: SeriesRef(i as u64 + 1),
                t,
                v: (s as f64).to_bits(),
            });
        }
        assert!(wal.append(&[b], t).error.is_none());
    }
    let last = wal.current_segment();
    wal.close().expect("close");
    last
}

/// The API listens before the WAL is replayed: meanwhile `/-/ready` and the other API
/// endpoints answer 503, `/-/healthy` 200 and `/api/v1/status/walreplay` the progress;
/// once replayed and configured, ready.
#[test]
fn the_api_answers_while_the_wal_replays_and_is_ready_after() {
    let d = TempDir::new("replay-ready");
    let data = d.0.join("data");
    let last = write_wal(&data, 20_000, 150);
    let config = d.0.join("prometheus.yml");
    std::fs::write(&config, "scrape_configs: []\n").expect("config");
    let t = Daemon::start(&d.0, &config, &data);
    let mut seen = Vec::new();
    let mut replay = None;
    eventually(Duration::from_secs(120), "ready", || {
        let Some((status, _)) = api(t.web, "GET", "/-/ready") else {
            return false;
        };
        seen.push(status);
        if status == 503 {
            assert_eq!(api(t.web, "GET", "/-/healthy").map(|x| x.0), Some(200));
            assert_eq!(
                api(t.web, "GET", "/api/v1/targets").map(|x| x.0),
                Some(503),
                "not ready: the API waits"
            );
            if let Some((200, b)) = api(t.web, "GET", "/api/v1/status/walreplay") {
                replay = Some(b);
            }
        }
        status == 200
    });
    eprintln!("ready after {} polls", seen.len());
    assert_eq!(seen.first(), Some(&503), "{seen:?}\n{}", t.log());
    let replay: serde_json::Value =
        serde_json::from_str(&replay.expect("walreplay answered")).expect("JSON");
    assert_eq!(replay["status"], "success");
    assert_eq!(replay["data"]["min"], 0);
    assert_eq!(replay["data"]["max"], u64::from(last), "{replay}");
    let metrics = t.metrics();
    assert!(metrics.contains("prometheus_ready 1"), "{metrics}");
}

/// Prometheus 2.42 as a server on `config`, its API on `port`.
fn prometheus_on(dir: &Path, config: &Path, port: u16) -> Proc {
    prometheus(
        port,
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
        ],
    )
}

fn get_json(port: u16, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = http_get(port, path).unwrap_or((0, String::new()));
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}")),
    )
}

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The rest of Prometheus's API, in its shapes: scrape pools, target metadata (checked
/// entry for entry against Prometheus 2.42 scraping the same target), relabel steps of
/// a dropped target, flags, build and runtime information (2.42's fields all present),
/// `scrapeInterval` as the label's value, a failed reload in `runtimeinfo` and the
/// reload metric.
#[test]
fn the_api_answers_in_prometheus_shapes() {
    let d = TempDir::new("api-shapes");
    let (_nginx, addrs, _) = fleet(&d.0, 1..=1, 3);
    let config = d.0.join("prometheus.yml");
    let good = format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 900ms}}\n\
         scrape_configs:\n\
         - job_name: e2e\n  relabel_configs:\n\
         \x20 - {{source_labels: [__address__], regex: 'drop\\..*', action: drop}}\n\
         \x20 - {{target_label: __scrape_interval__, replacement: 1000ms}}\n\
         \x20 static_configs: [{{targets: ['{}', 'drop.me:1']}}]\n",
        addrs[0]
    );
    std::fs::write(&config, &good).expect("config");
    let mut t = Daemon::start(&d.0, &config, &d.0.join("data"));
    let prom_port = free_port();
    let _prom = prometheus_on(&d.0.join("prom"), &config, prom_port);
    let metadata = "/api/v1/targets/metadata?metric=e2e_metric";
    eventually(Duration::from_secs(30), "metadata from a scrape", || {
        [t.web, prom_port].iter().all(|&p| {
            get_json(p, metadata).1["data"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        })
    });

    let (s, pools) = get_json(t.web, "/api/v1/scrape_pools");
    assert_eq!(
        (s, &pools["data"]["scrapePools"]),
        (200, &serde_json::json!(["e2e"]))
    );

    // Metadata: the same entries as Prometheus's, for one metric and for all.
    let (_, ours) = get_json(t.web, metadata);
    let (_, theirs) = get_json(prom_port, metadata);
    assert_eq!(ours, theirs);
    assert_eq!(ours["data"][0]["help"], "A test metric.");
    let all = "/api/v1/targets/metadata?match_target=%7Bjob%3D%22e2e%22%7D";
    let e2e = |v: &serde_json::Value| {
        v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["metric"] == "e2e_metric")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        e2e(&get_json(t.web, all).1),
        e2e(&get_json(prom_port, all).1)
    );
    assert_eq!(e2e(&get_json(t.web, all).1).len(), 1);
    let none = get_json(
        t.web,
        "/api/v1/targets/metadata?match_target=%7Bjob%3D%22x%22%7D",
    )
    .1;
    assert_eq!(none["data"], serde_json::json!([]));
    let (s, bad) = get_json(t.web, "/api/v1/targets/metadata?limit=x");
    assert_eq!((s, bad["errorType"].as_str()), (400, Some("bad_data")));
    assert_eq!(bad["error"], "limit must be a number");

    // scrapeInterval is the label's value as written.
    let (_, targets) = get_json(t.web, "/api/v1/targets");
    let active = &targets["data"]["activeTargets"][0];
    assert_eq!(active["scrapeInterval"], "1000ms");
    assert_eq!(
        active["scrapeInterval"],
        get_json(prom_port, "/api/v1/targets").1["data"]["activeTargets"][0]["scrapeInterval"]
    );

    // The relabel steps of the dropped target: kept by nothing, dropped by rule 0.
    let dropped = targets["data"]["droppedTargets"][0]["discoveredLabels"].to_string();
    let q = query_escape(&dropped);
    let (s, steps) = get_json(
        t.web,
        &format!("/api/v1/targets/relabel_steps?scrapePool=e2e&labels={q}"),
    );
    assert_eq!(s, 200, "{steps}");
    let steps = steps["data"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["keep"], false);
    assert_eq!(steps[0]["rule"]["action"], "drop");
    assert_eq!(steps[0]["rule"]["regex"], "drop\\..*");
    assert_eq!(steps[0]["output"], serde_json::json!({}));
    assert_eq!(steps[1]["keep"], false);
    let (s, e) = get_json(t.web, "/api/v1/targets/relabel_steps?scrapePool=e2e");
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("no labels parameter provided"))
    );

    // Status: Prometheus's fields (2.42's all present), trawl's values.
    for path in [
        "/api/v1/status/buildinfo",
        "/api/v1/status/runtimeinfo",
        "/api/v1/status/walreplay",
    ] {
        let (s, ours) = get_json(t.web, path);
        let theirs = get_json(prom_port, path).1;
        assert_eq!(s, 200, "{path}");
        let missing: Vec<_> = keys(&theirs["data"])
            .difference(&keys(&ours["data"]))
            .cloned()
            .collect();
        assert!(
            missing.is_empty(),
            "{path}: {missing:?} missing from {ours}"
        );
    }
    let (_, build) = get_json(t.web, "/api/v1/status/buildinfo");
    assert_eq!(build["data"]["version"], env!("CARGO_PKG_VERSION"));
    let (_, flags) = get_json(t.web, "/api/v1/status/flags");
    assert_eq!(
        flags["data"]["web.listen-address"],
        format!("127.0.0.1:{}", t.web)
    );
    assert_eq!(flags["data"]["web.enable-lifecycle"], "false");
    let (_, rt) = get_json(t.web, "/api/v1/status/runtimeinfo");
    assert_eq!(rt["data"]["reloadConfigSuccess"], true);

    // A failed reload shows, and the configuration in force stays.
    std::fs::write(&config, "scrape_configs: [{job_name: e2e, bogus: 1}]\n").expect("config");
    t.reload();
    eventually(Duration::from_secs(10), "the failed reload", || {
        get_json(t.web, "/api/v1/status/runtimeinfo").1["data"]["reloadConfigSuccess"] == false
    });
    assert!(
        t.metrics()
            .contains("\nprometheus_config_last_reload_successful 0\n")
    );
    assert_eq!(
        get_json(t.web, "/api/v1/scrape_pools").1["data"]["scrapePools"],
        serde_json::json!(["e2e"])
    );
    std::fs::write(&config, &good).expect("config");
    t.reload();
    eventually(Duration::from_secs(10), "the good reload", || {
        t.metrics()
            .contains("\nprometheus_config_last_reload_successful 1\n")
    });
}

/// A configuration mistake stops trawl before it touches the data directory: a second
/// trawl on a directory the first one holds reports the configuration, not the lock.
#[test]
fn a_bad_configuration_fails_before_the_data_directory_is_locked() {
    let d = TempDir::new("config-first");
    let data = d.0.join("data");
    let good = d.0.join("good.yml");
    std::fs::write(&good, "scrape_configs: []\n").expect("config");
    let first = Daemon::start(&d.0, &good, &data);
    eventually(Duration::from_secs(30), "the first trawl ready", || {
        api(first.web, "GET", "/-/ready").is_some_and(|x| x.0 == 200)
    });
    let bad = d.0.join("bad.yml");
    std::fs::write(
        &bad,
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 5x\n",
    )
    .expect("bad");
    let out = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .arg(format!("--config.file={}", bad.display()))
        .arg(format!("--storage.path={}", data.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .output()
        .expect("run trawl");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad.yml") && err.contains("5x"), "{err}");
    assert!(!err.contains("lock"), "{err}");
}

/// Prometheus's flags as an operator passes them: `--version` in Prometheus's layout,
/// unknown log levels refused, `:port` and repeated `--web.listen-address`, the route
/// prefix of `--web.external-url` (`/` redirects to it, nothing answers outside it),
/// `--storage.agent.*` aliases, `--no-storage.wal-compression`, `--config.auto-reload`,
/// and log lines in 3.x's shape (logfmt and flat JSON) without Rust's debug notation.
#[test]
fn flags_paths_and_logs_as_prometheus_has_them() {
    let bin = env!("CARGO_BIN_EXE_trawl");
    let out = Command::new(bin).arg("--version").output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.starts_with(&format!(
            "trawl, version {} (branch: ",
            env!("CARGO_PKG_VERSION")
        )) && text.contains(", revision: ")
            && text.contains("build date:")
            && text.contains("platform:"),
        "{text}"
    );
    let out = Command::new(bin)
        .arg("--log.level=verbose")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("verbose"));

    let d = TempDir::new("flags");
    let (_nginx, addrs, _) = fleet(&d.0, 1..=1, 3);
    let recv_port = free_port();
    let _recv = prometheus_server(&d.0.join("recv"), recv_port, None, "native-histograms");
    let config = d.0.join("prometheus.yml");
    let write = |interval: &str| {
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: {interval}}}\nscrape_configs:\n- job_name: e2e\n  static_configs: [{{targets: ['{}']}}]\nremote_write: [{{url: 'http://127.0.0.1:{recv_port}/api/v1/write'}}]\n",
                addrs[0]
            ),
        )
        .expect("config")
    };
    write("1s");
    let (a, b) = (free_port(), free_port());
    let data = d.0.join("data");
    for format in ["logfmt", "json"] {
        let _ = std::fs::remove_dir_all(&data);
        let log = std::fs::File::create(d.0.join(format!("{format}.log"))).expect("log");
        let mut p = Proc(
            Command::new(bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.agent.path={}", data.display()))
                .arg(format!("--web.listen-address=:{a}"))
                .arg(format!("--web.listen-address=127.0.0.1:{b}"))
                .arg("--web.external-url=http://proxy.example:8080/trawl/")
                .arg("--no-storage.wal-compression")
                .arg("--storage.agent.wal-segment-size=1MiB")
                .arg("--config.auto-reload")
                .arg("--config.auto-reload-interval=1s")
                .arg("--storage.agent.retention.min-time=5m")
                .arg(format!("--log.format={format}"))
                .stderr(log)
                .spawn()
                .expect("start"),
        );
        eventually(Duration::from_secs(30), "ready under the prefix", || {
            api(a, "GET", "/trawl/-/ready").is_some_and(|x| x.0 == 200)
        });
        // Both listeners, the prefix, the redirect, nothing outside.
        assert_eq!(api(b, "GET", "/trawl/-/healthy").map(|x| x.0), Some(200));
        assert_eq!(api(a, "GET", "/-/ready").map(|x| x.0), Some(404));
        assert_eq!(api(a, "GET", "/").map(|x| x.0), Some(302));
        let flags = get_json(b, "/trawl/api/v1/status/flags").1;
        assert_eq!(
            flags["data"]["web.listen-address"],
            format!(":{a},127.0.0.1:{b}")
        );
        // Auto-reload: a new interval shows without a signal.
        write("2s");
        eventually(Duration::from_secs(20), "the changed file reloaded", || {
            get_json(a, "/trawl/api/v1/targets").1["data"]["activeTargets"][0]["scrapeInterval"]
                == "2s"
        });
        eventually(Duration::from_secs(30), "samples sent", || {
            http_get(a, "/trawl/metrics")
                .and_then(|(_, m)| sample(&m, "prometheus_remote_storage_samples_total"))
                .unwrap_or(0.0)
                > 0.0
        });
        write("1s");
        signal(&p, "TERM");
        assert!(wait_exit(&mut p, Duration::from_secs(30)).success());
        // Records written uncompressed, in 1 MiB segments.
        let wal = data.join("wal");
        let mut records = 0;
        for e in std::fs::read_dir(&wal).expect("wal").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.bytes().all(|c| c.is_ascii_digit()) {
                let bytes = std::fs::read(e.path()).expect("segment");
                assert!(bytes.len() as u64 <= 1 << 20);
                let (recs, _) = trawl_core::wal::segment::read_segment(&bytes);
                records += recs.len();
                assert!(
                    recs.iter().all(|r| !r.snappy),
                    "compressed record in {name}"
                );
            }
        }
        assert!(records > 0);
        // The log: 3.x's keys first on every line, values without debug notation.
        let log = std::fs::read_to_string(d.0.join(format!("{format}.log"))).expect("log");
        assert!(log.contains("Starting trawl"), "{log}");
        assert!(
            log.contains("--storage.agent.retention.min-time"),
            "the ignored flag is warned about: {log}"
        );
        for line in log.lines() {
            match format {
                "json" => {
                    let v: serde_json::Value =
                        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                    let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
                    assert!(keys.len() >= 4, "{line}");
                    assert!(line.starts_with("{\"time\":"), "{line}");
                    assert!(
                        v["level"]
                            .as_str()
                            .is_some_and(|l| ["DEBUG", "INFO", "WARN", "ERROR"].contains(&l)),
                        "{line}"
                    );
                }
                _ => {
                    let mut parts = line.split(' ');
                    for key in ["time=", "level=", "source="] {
                        assert!(
                            parts.next().is_some_and(|p| p.starts_with(key)),
                            "{key} in {line}"
                        );
                    }
                    assert!(
                        parts.next().is_some_and(|p| p.starts_with("msg=")),
                        "{line}"
                    );
                }
            }
            for debug in ["Some(", "None", "[\"", "Duration"] {
                assert!(!line.contains(debug), "debug notation {debug:?} in {line}");
            }
        }
    }
}

/// A `ca_file` replaced on disk takes effect at the next connection, without a reload:
/// the scrape fails against a CA that did not sign the target, then succeeds once the
/// file holds the right one (as Prometheus re-reads its TLS files).
#[test]
fn tls_files_are_read_again_when_they_change() {
    let d = TempDir::new("tls-rotate");
    certs(&d.0);
    let other = d.0.join("other");
    std::fs::create_dir_all(&other).expect("dir");
    certs(&other);
    std::fs::create_dir_all(d.0.join("www")).expect("www");
    std::fs::write(d.0.join("www/metrics"), body(3)).expect("body");
    let port = free_port();
    let addr = format!("127.0.0.8:{port}");
    let _nginx = tls_nginx(&d.0, &addr, None);
    let ca = d.0.join("trust.pem");
    std::fs::copy(other.join("ca.crt"), &ca).expect("wrong CA");
    let config = d.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 900ms}}\nscrape_configs:\n- job_name: tls\n  scheme: https\n  tls_config: {{ca_file: {}}}\n  static_configs: [{{targets: ['{addr}']}}]\n",
            ca.display()
        ),
    )
    .expect("config");
    let t = Daemon::start(&d.0, &config, &d.0.join("data"));
    eventually(Duration::from_secs(20), "the scrape refused", || {
        let j = t.targets_json();
        j.contains("\"health\":\"down\"") && j.contains("certificate")
    });
    // The right CA, written in place (a new file renamed over the old, as tools do).
    let tmp = d.0.join("trust.pem.new");
    std::fs::copy(d.0.join("ca.crt"), &tmp).expect("right CA");
    std::fs::rename(&tmp, &ca).expect("rename");
    eventually(Duration::from_secs(20), "the scrape succeeds", || {
        t.targets_json().contains("\"health\":\"up\"")
    });
}
