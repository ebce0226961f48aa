//! The hostile-input suite against the daemon (issue 16): targets, discovery files and
//! API clients that misbehave, with bounded memory, an answering API, timely scrapes of
//! healthy targets alongside and a readable WAL asserted each time. The same scenarios
//! run against trawl-tokio in `shell-tokio/tests/hostile.rs`.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn endless_bodies_are_cut_at_their_limits() {
    let d = TempDir::new("endless");
    scenario::endless_bodies_are_cut_at_their_limits(&d.0, &mut daemon);
}

/// Issue 16, defect 3: after a target was removed, SIGTERM does not wait for its
/// end-of-run stale markers (due up to 2.1 intervals later: 21 s at 10 s); they are dropped as
/// Prometheus drops them. A scrape that hangs holds the shutdown up to its timeout, and
/// a second SIGTERM ends it at once; the WAL is readable either way.
#[test]
fn shutdown_is_prompt_and_a_second_signal_forces_it() {
    use common::hostile::{Misbehaviour, hostile};

    let d = TempDir::new("shutdown");
    let (_nginx, addrs, _) = fleet(&d.0, 23..=24, 10);
    let silent = hostile("127.0.0.25", Misbehaviour::Silent);
    let cfg = d.0.join("prometheus.yml");
    let config = |targets: &[&str], extra: &str| {
        let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        format!(
            "global:\n  scrape_interval: 10s\nscrape_configs:\n- job_name: j\n  static_configs: [{{targets: [{}]}}]\n{extra}",
            list.join(", ")
        )
    };
    std::fs::write(&cfg, config(&[&addrs[0], &addrs[1]], "")).expect("config");
    let data = d.0.join("data");
    // 1. A removed target's markers are not waited for.
    let mut t = Daemon::start(&d.0, &cfg, &data);
    eventually(Duration::from_secs(15), "both targets up", || {
        active(t.web).iter().filter(|x| x.2 == "up").count() == 2
    });
    std::fs::write(&cfg, config(&[&addrs[0]], "")).expect("config");
    t.reload();
    eventually(Duration::from_secs(10), "one target left", || {
        active(t.web).len() == 1
    });
    let asked = Instant::now();
    signal(&t.proc, "TERM");
    let status = wait_exit(&mut t.proc, Duration::from_secs(30));
    let took = asked.elapsed();
    assert!(status.success(), "{}", log_of(&d.0));
    assert!(
        took < Duration::from_secs(5),
        "shutdown took {took:?}\n{}",
        log_of(&d.0)
    );
    assert!(
        log_of(&d.0).contains("end-of-run stale markers of removed targets not written"),
        "{}",
        log_of(&d.0)
    );
    assert!(!dump(&data).is_empty());
    // 2. A hanging scrape (timeout 15 s) holds the first signal; the second ends it.
    let hang = "- job_name: hang\n  scrape_interval: 15s\n  scrape_timeout: 15s\n  static_configs: [{targets: [\"HANG\"]}]\n"
        .replace("HANG", &silent.addr);
    std::fs::write(&cfg, config(&[&addrs[0]], &hang)).expect("config");
    let mut t = Daemon::start(&d.0, &cfg, &data);
    eventually(
        Duration::from_secs(20),
        "the hanging scrape under way",
        || silent.requests.load(std::sync::atomic::Ordering::SeqCst) > 0,
    );
    signal(&t.proc, "TERM");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        t.proc.0.try_wait().expect("try_wait").is_none(),
        "the hanging scrape was not waited for"
    );
    let asked = Instant::now();
    signal(&t.proc, "TERM");
    let status = wait_exit(&mut t.proc, Duration::from_secs(30));
    assert!(status.success(), "{}", log_of(&d.0));
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    assert!(log_of(&d.0).contains("second stop request"));
    // The first run's samples are still there, and the WAL reads.
    let after = dump(&data);
    assert!(!series(&after, "up", &addrs[0]).is_empty());
}

/// Issue 16, defects 4 and 6: passwords never show outside the target's own labels (as
/// in Prometheus): not in `/api/v1/status/config` (inline secrets as `<secret>`, URL
/// passwords as `xxxxx`), not in `/metrics` (remote write's `url` label), not in
/// `lastError` (Go's `***`), not in the log; a password in a target's address is sent
/// as basic auth; the recording file is readable by its owner only.
#[test]
fn secrets_stay_hidden_and_url_credentials_authenticate() {
    use std::os::unix::fs::PermissionsExt;
    let d = TempDir::new("secrets");
    let www = d.0.join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("metrics"), body(5)).expect("metrics");
    std::fs::write(d.0.join("htpasswd"), "scraper:{PLAIN}tgtpw\n").expect("htpasswd");
    let port = free_port();
    let addr = format!("127.0.0.26:{port}");
    let conf = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ }}\nhttp {{\n  access_log off;\n  default_type \"text/plain; version=0.0.4\";\n  server {{ listen {addr}; root {www}; location / {{ auth_basic \"x\"; auth_basic_user_file {d}/htpasswd; }} }}\n}}\n",
        d = d.0.display(),
        www = www.display()
    );
    let _nginx = start_nginx(&d.0, &conf, &[&addr]);
    let dead = format!("127.0.0.27:{}", free_port());
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n\
             - job_name: auth\n  static_configs: [{{targets: [\"scraper:tgtpw@{addr}\"]}}]\n\
             - job_name: noauth\n  static_configs: [{{targets: [\"{addr}\"]}}]\n\
             - job_name: deadauth\n  static_configs: [{{targets: [\"scraper:deadpw@{dead}\"]}}]\n\
             - job_name: proxied\n  proxy_url: http://pu:proxypw@{dead}\n  static_configs: [{{targets: [\"{addr}\"]}}]\n\
             - job_name: sd\n  http_sd_configs: [{{url: \"http://su:sdpw@{dead}/sd\", refresh_interval: 1s}}]\n\
             remote_write:\n- url: http://ru:rwpw@{dead}/api/v1/write\n"
        ),
    )
    .expect("config");
    let data = d.0.join("data");
    let rec = d.0.join("recording");
    let web = free_port();
    let t = trawl_with(
        &d.0,
        &cfg,
        &data,
        web,
        &[format!("--debug.record={}", rec.display())],
    );
    let health = |pool: &str| {
        active(web)
            .into_iter()
            .find(|x| x.0 == pool)
            .map(|x| x.2)
            .unwrap_or_default()
    };
    eventually(Duration::from_secs(15), "every target scraped", || {
        health("auth") == "up"
            && health("noauth") == "down"
            && health("deadauth") == "down"
            && health("proxied") == "down"
    });
    // (A password in a static target's address is part of its labels: the config and
    // the targets API show it, as Prometheus's do.)
    let secrets = ["proxypw", "sdpw", "rwpw"];
    let (_, targets) = api(web, "GET", "/api/v1/targets").expect("targets");
    let (_, config) = api(web, "GET", "/api/v1/status/config").expect("config");
    let (_, metrics) = api(web, "GET", "/metrics").expect("metrics");
    for s in secrets {
        assert!(!config.contains(s), "{s} in the config shown:\n{config}");
        assert!(!metrics.contains(s), "{s} in /metrics");
    }
    assert!(
        config.contains("pu:xxxxx@")
            && config.contains("su:xxxxx@")
            && config.contains("ru:xxxxx@")
    );
    assert!(metrics.contains("url=\"http://ru:xxxxx@"), "{metrics}");
    // lastError names the URL as Go's client does; the address label is the target's
    // own (Prometheus shows it too).
    let v: serde_json::Value = serde_json::from_str(&targets).expect("JSON");
    let err_of = |pool: &str| {
        v["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["scrapePool"] == pool)
            .and_then(|x| x["lastError"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let e = err_of("deadauth");
    assert!(e.contains("scraper:***@") && !e.contains("deadpw"), "{e}");
    assert!(err_of("noauth").contains("401"), "{}", err_of("noauth"));
    assert!(
        !err_of("proxied").contains("proxypw"),
        "{}",
        err_of("proxied")
    );
    std::thread::sleep(Duration::from_millis(1500));
    signal(&t, "TERM");
    let mut t = t;
    assert!(wait_exit(&mut t, Duration::from_secs(30)).success());
    let log = log_of(&d.0);
    for s in secrets.iter().chain(&["tgtpw", "deadpw"]) {
        assert!(!log.contains(s), "{s} in the log:\n{log}");
    }
    let mode = std::fs::metadata(&rec)
        .expect("recording")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the recording's mode is {mode:o}");
}
