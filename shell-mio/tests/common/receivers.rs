//! Remote-write receivers for the end-to-end tests: VictoriaMetrics single-node
//! (`victoria-metrics`, Debian's 1.79) and Prometheus 2.42 with
//! `--web.enable-remote-write-receiver`, on loopback, and what each holds.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::*;

/// VictoriaMetrics single-node on 127.0.0.1:`port`, data in `dir`.
pub(crate) fn victoria(dir: &Path, port: u16) -> Proc {
    let p = Proc(
        Command::new("victoria-metrics")
            .arg(format!("-storageDataPath={}", dir.display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg("-retentionPeriod=100y")
            .arg("-loggerLevel=ERROR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("victoria-metrics (Debian package victoria-metrics) is installed: .ci/run installs it"),
    );
    eventually(Duration::from_secs(20), "VictoriaMetrics up", || {
        http_get(port, "/health").is_some_and(|(s, _)| s == 200)
    });
    p
}

/// Prometheus 2.42 on 127.0.0.1:`port` with `args` (and errors-only logs), once ready.
pub(crate) fn prometheus(port: u16, args: &[String]) -> Proc {
    let p = Proc(
        Command::new("prometheus")
            .args(args)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package prometheus) is installed: .ci/run installs it"),
    );
    eventually(Duration::from_secs(60), "Prometheus ready", || {
        http_get(port, "/-/ready").is_some_and(|(s, _)| s == 200)
    });
    p
}

/// Prometheus 2.42 as a remote-write receiver on 127.0.0.1:`port`.
pub(crate) fn prometheus_receiver(dir: &Path, port: u16) -> Proc {
    std::fs::create_dir_all(dir).expect("receiver dir");
    let cfg = dir.join("receiver.yml");
    std::fs::write(&cfg, "global: {}\n").expect("receiver config");
    prometheus(
        port,
        &[
            format!("--config.file={}", cfg.display()),
            format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
            "--web.enable-remote-write-receiver".into(),
        ],
    )
}

/// Prometheus 2.42 with `--enable-feature=<feature>` and a ten-year retention: a
/// remote-write receiver on 127.0.0.1:`port`, or (with `data`) a server on a copy of a
/// data directory (trawl's WAL, replayed as Prometheus's head replays its own).
pub(crate) fn prometheus_server(dir: &Path, port: u16, data: Option<&Path>, feature: &str) -> Proc {
    std::fs::create_dir_all(dir).expect("dir");
    let cfg = dir.join("p.yml");
    std::fs::write(&cfg, "global: {scrape_interval: 1h}\n").expect("config");
    let tsdb = dir.join("tsdb");
    if let Some(d) = data {
        let ok = Command::new("cp")
            .arg("-r")
            .arg(d)
            .arg(&tsdb)
            .status()
            .expect("cp");
        assert!(ok.success());
        let _ = std::fs::remove_file(tsdb.join("lock"));
    }
    prometheus(
        port,
        &[
            format!("--config.file={}", cfg.display()),
            format!("--storage.tsdb.path={}", tsdb.display()),
            "--web.enable-remote-write-receiver".into(),
            format!("--enable-feature={feature}"),
            "--storage.tsdb.retention.time=10y".into(),
        ],
    )
}

pub(crate) fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    api(port, "GET", path)
}

pub(crate) fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Series key: `name{a="b",…}` with labels sorted, as the dump prints them.
pub(crate) fn key(m: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut pairs: Vec<(String, String)> = m
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
        .collect();
    pairs.sort();
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", body.join(", "))
}

/// Samples per series in VictoriaMetrics (stale markers included: VM keeps them as NaN).
pub(crate) fn vm_counts(port: u16) -> BTreeMap<String, usize> {
    let _ = http_get(port, "/internal/force_flush");
    let q = query_escape("{job=~\".+\"}");
    // Not up yet, or busy: nothing counted, and the caller asks again.
    let Some((200, body)) = http_get(port, &format!("/api/v1/export?match[]={q}")) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("export line");
        let m = v["metric"].as_object().expect("metric").clone();
        let n = v["timestamps"].as_array().map_or(0, Vec::len);
        *out.entry(key(&m)).or_default() += n;
    }
    out
}

/// Samples per series in a Prometheus receiver (a range query: stale markers are not
/// returned, so they are not counted).
pub(crate) fn prom_counts(port: u16) -> BTreeMap<String, usize> {
    let q = query_escape("{job=~\".+\"}[1h]");
    let Some((200, body)) = http_get(port, &format!("/api/v1/query?query={q}")) else {
        return BTreeMap::new();
    };
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let mut out = BTreeMap::new();
    for r in v["data"]["result"].as_array().expect("result") {
        let m = r["metric"].as_object().expect("metric").clone();
        out.insert(key(&m), r["values"].as_array().map_or(0, Vec::len));
    }
    out
}

/// Samples per series in trawl's WAL: all of them, and those that are not stale
/// markers (the bodies here never hold NaN, so a NaN in the dump is a stale marker).
pub(crate) fn wal_counts(data: &Path) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let d = dump(data);
    let all = d.iter().map(|(k, v)| (k.clone(), v.len())).collect();
    let live = d
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().filter(|(x, _)| x != "NaN").count()))
        .filter(|(_, n)| *n > 0)
        .collect();
    (all, live)
}

pub(crate) fn config(dir: &Path, addrs: &[String], receivers: &[String]) -> std::path::PathBuf {
    let targets: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    let mut yaml = format!(
        "global:\n  scrape_interval: 500ms\nscrape_configs:\n  - job_name: fleet\n    static_configs: [{{targets: [{}]}}]\nremote_write:\n",
        targets.join(", ")
    );
    for (i, url) in receivers.iter().enumerate() {
        yaml.push_str(&format!(
            "  - url: {url}\n    name: r{i}\n    queue_config: {{batch_send_deadline: 500ms, min_backoff: 50ms, max_backoff: 500ms}}\n"
        ));
    }
    let p = dir.join("prometheus.yml");
    std::fs::write(&p, yaml).expect("config");
    p
}

/// Asks `fetch` until `ok` holds or `max` has passed; the last answer.
pub(crate) fn settle(
    max: Duration,
    fetch: impl Fn() -> BTreeMap<String, usize>,
    ok: impl Fn(&BTreeMap<String, usize>) -> bool,
) -> BTreeMap<String, usize> {
    let end = std::time::Instant::now() + max;
    loop {
        let got = fetch();
        if ok(&got) || std::time::Instant::now() >= end {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// How `got` differs from `want`: series missing, short or over, with examples.
pub(crate) fn shortfall(want: &BTreeMap<String, usize>, got: &BTreeMap<String, usize>) -> String {
    let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let short: Vec<(&String, usize, usize)> = want
        .iter()
        .filter_map(|(k, &n)| got.get(k).filter(|&&m| m < n).map(|&m| (k, n, m)))
        .collect();
    let over: usize = want
        .iter()
        .filter_map(|(k, &n)| got.get(k).map(|&m| m.saturating_sub(n)))
        .sum();
    let unknown = got.keys().filter(|k| !want.contains_key(*k)).count();
    format!(
        "{} of {} series missing (e.g. {:?}); {} short by {} samples in all (e.g. {:?}); {over} samples over; {unknown} series not expected",
        missing.len(),
        want.len(),
        missing.first(),
        short.len(),
        short.iter().map(|(_, n, m)| n - m).sum::<usize>(),
        short.first()
    )
}
