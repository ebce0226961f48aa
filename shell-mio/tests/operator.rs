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
    let p = Proc(
        Command::new("prometheus")
            .arg("--enable-feature=agent")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.agent.path={}",
                dir.join("agent").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package prometheus) is installed: .ci/run installs it"),
    );
    eventually(Duration::from_secs(60), "Prometheus agent ready", || {
        http_get(port, "/-/ready").is_some_and(|(s, _)| s == 200)
    });
    p
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
