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
    let t = Daemon {
        proc: t,
        web,
        dir: d.0.clone(),
    };
    let err_of = |pool: &str| scenario::pool_error_of(&t, pool);
    let e = err_of("deadauth");
    assert!(e.contains("scraper:***@") && !e.contains("deadpw"), "{e}");
    assert!(err_of("noauth").contains("401"), "{}", err_of("noauth"));
    assert!(
        !err_of("proxied").contains("proxypw"),
        "{}",
        err_of("proxied")
    );
    std::thread::sleep(Duration::from_millis(1500));
    let mut t = t;
    assert!(t.stop().is_ok());
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

/// Issue 16, defect 5 and the HEAD fix: `POST /-/reload` answers 500 with the error
/// when the new configuration is refused (and the running one stays), 200 when it is
/// applied; a HEAD answer has the GET answer's length and no body.
#[test]
fn reload_answers_500_on_failure_and_head_has_no_body() {
    use std::io::{Read, Write};
    let d = TempDir::new("reload500");
    let cfg = d.0.join("prometheus.yml");
    let good = "scrape_configs:\n- job_name: a\n  static_configs: [{targets: [\"127.0.0.1:1\"]}]\n";
    std::fs::write(&cfg, good).expect("config");
    let web = free_port();
    let mut t = trawl_with(
        &d.0,
        &cfg,
        &d.0.join("data"),
        web,
        &["--web.enable-lifecycle".into()],
    );
    eventually(Duration::from_secs(10), "the API", || {
        !active(web).is_empty()
    });
    std::fs::write(
        &cfg,
        "scrape_configs:\n- job_name: a\n  scrape_interval: 1x\n",
    )
    .expect("config");
    let (status, body) = api(web, "POST", "/-/reload").expect("reload");
    assert_eq!(status, 500, "{body}");
    assert!(
        body.starts_with("failed to reload config: ") && body.contains("1x"),
        "{body}"
    );
    assert_eq!(active(web).len(), 1, "the running configuration stays");
    std::fs::write(
        &cfg,
        good.replace("[\"127.0.0.1:1\"]", "[\"127.0.0.1:1\", \"127.0.0.1:2\"]"),
    )
    .expect("config");
    assert_eq!(api(web, "POST", "/-/reload").map(|x| x.0), Some(200));
    assert_eq!(active(web).len(), 2);
    for path in ["/api/v1/targets", "/-/healthy", "/metrics"] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", web)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(s, "HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read");
        let text = String::from_utf8_lossy(&raw);
        let (head, rest) = text.split_once("\r\n\r\n").expect("a head");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.parse().ok())
            .expect("a length");
        assert!(len > 0, "{path}");
        assert!(
            rest.is_empty(),
            "HEAD {path} carried {} body bytes",
            rest.len()
        );
    }
    signal(&t, "TERM");
    assert!(wait_exit(&mut t, Duration::from_secs(30)).success());
}

/// The API's bounds: 800 clients that connect and never finish their request, and 100
/// that ask for a large `/api/v1/targets` (20,000 targets, 12 MB) and never read it.
/// Connections stay at `--web.max-connections` (the oldest unfinished request makes
/// room, so the API still answers); the same answer is built once and shared, other
/// answers are built at most four times a second and held up to 64 MiB (the rest are
/// answered 503); the daemon's memory stays bounded and the healthy target beside them
/// is scraped on schedule.
#[test]
fn abusive_api_clients_cannot_starve_the_daemon() {
    use std::io::Write;
    let d = TempDir::new("webabuse");
    let (_nginx, addrs, _) = fleet(&d.0, 28..=28, 20);
    let cfg = d.0.join("prometheus.yml");
    let mut y = format!(
        "scrape_configs:\n- job_name: good\n  scrape_interval: 500ms\n  static_configs: [{{targets: [\"{}\"]}}]\n- job_name: many\n  scrape_interval: 1h\n  static_configs:\n  - targets:\n",
        addrs[0]
    );
    for i in 0..20_000 {
        y.push_str(&format!("    - 127.0.{}.{}:1\n", 1 + i / 250, 1 + i % 250));
    }
    std::fs::write(&cfg, y).expect("config");
    let data = d.0.join("data");
    let web = free_port();
    let mut t = trawl_with(
        &d.0,
        &cfg,
        &data,
        web,
        &["--web.max-connections=200".into()],
    );
    let pid = t.0.id();
    eventually(Duration::from_secs(20), "the healthy target up", || {
        active(web).iter().any(|x| x.0 == "good" && x.2 == "up")
    });
    let began = Instant::now();
    // Slowloris: a request line, then nothing.
    let mut idle = Vec::new();
    for _ in 0..800 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", web)) {
            let _ = s.write_all(b"GET /api/v1/targets HTTP/1.1\r\n");
            idle.push(s);
        }
    }
    // Clients that ask and never read: half of them the same answer (built once and
    // shared), half each another one (built at most a few times a second).
    let mut stuck = Vec::new();
    for i in 0..100 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", web)).expect("connect");
        let q = if i % 2 == 0 {
            String::new()
        } else {
            format!("?x={i}")
        };
        s.write_all(format!("GET /api/v1/targets{q} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .expect("write");
        stuck.push(s);
        std::thread::sleep(Duration::from_millis(20));
    }
    let rss = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .unwrap_or(0)
            * 1024
    };
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let mut peak = (0, 0);
    for _ in 0..30 {
        assert_eq!(
            api(web, "GET", "/-/healthy").map(|x| x.0),
            Some(200),
            "the API stopped answering"
        );
        peak = (peak.0.max(rss()), peak.1.max(fds()));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        peak.0 < 250 << 20,
        "resident memory reached {} MiB",
        peak.0 >> 20
    );
    assert!(peak.1 < 200 + 100, "{} descriptors open", peak.1);
    let (_, metrics) = api(web, "GET", "/metrics").expect("metrics");
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(
        value("trawl_web_connections_evicted_total") >= 600.0,
        "{metrics}"
    );
    assert!(
        value("trawl_web_responses_refused_total") >= 1.0,
        "{metrics}"
    );
    drop(stuck);
    drop(idle);
    let (status, body) = api(web, "GET", "/api/v1/targets").expect("targets");
    assert_eq!(status, 200);
    assert!(body.len() > 5 << 20, "{} bytes", body.len());
    let watched = began.elapsed();
    signal(&t, "TERM");
    assert!(wait_exit(&mut t, Duration::from_secs(30)).success());
    let dump = dump(&data);
    let ups = series(&dump, "up", &addrs[0]).len() as u128;
    // Scrapes at 500 ms before, during and after the abuse: none lost in the window.
    assert!(
        ups >= watched.as_millis() / 500,
        "{ups} scrapes in {watched:?}"
    );
}

/// Discovery files that attack the daemon (see the scenario); here the log must name
/// each bad file with its error.
#[test]
fn hostile_discovery_files_are_refused_and_the_rest_goes_on() {
    let d = TempDir::new("sdfiles");
    let dir = d.0.clone();
    scenario::hostile_discovery_files_are_refused_and_the_rest_goes_on(
        &d.0,
        &mut daemon,
        &mut |_: &dyn Shell| {
            let log = log_of(&dir);
            for (file, why) in [
                ("bomb.yml", "YAML aliases expand the document to more than"),
                ("pipe.json", "not a regular file"),
                ("garbage.json", ""),
            ] {
                assert!(
                    log.lines().any(|l| l.contains(file) && l.contains(why)),
                    "no error names {file}:\n{log}"
                );
            }
        },
    );
}

#[test]
fn a_decompression_bomb_is_parsed_in_slices() {
    let d = TempDir::new("bomb");
    scenario::a_decompression_bomb_is_parsed_in_slices(&d.0, &mut daemon);
}

/// The data directory removed while the daemon runs (as `rm -rf` of it would): the
/// writer finds its lock file and segment gone within a second, the daemon logs why and
/// stops with an error instead of writing on into unlinked files; started again, it
/// makes the directory afresh and goes on. The same for a directory moved away.
#[test]
fn a_removed_data_directory_stops_the_daemon_loudly() {
    let d = TempDir::new("rmdata");
    let (_nginx, addrs, _) = fleet(&d.0, 33..=33, 10);
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n- job_name: j\n  scrape_interval: 500ms\n  static_configs: [{{targets: [\"{}\"]}}]\n",
            addrs[0]
        ),
    )
    .expect("config");
    let data = d.0.join("data");
    for how in ["remove", "move"] {
        let mut t = Daemon::start(&d.0, &cfg, &data);
        eventually(Duration::from_secs(10), "the target up", || {
            active(t.web).iter().any(|x| x.2 == "up")
        });
        if how == "remove" {
            std::fs::remove_dir_all(&data).expect("rm -rf data");
        } else {
            std::fs::rename(&data, d.0.join("moved")).expect("mv data");
        }
        let status = wait_exit(&mut t.proc, Duration::from_secs(10));
        assert!(!status.success(), "{how}: the daemon went on");
        let log = log_of(&d.0);
        assert!(
            log.contains("the data directory is gone; stopping")
                && log.contains("removed or replaced while running"),
            "{how}:\n{log}"
        );
        // Started again, it makes the directory afresh.
        let mut t = Daemon::start(&d.0, &cfg, &data);
        eventually(Duration::from_secs(10), "the target up again", || {
            active(t.web).iter().any(|x| x.2 == "up")
        });
        assert!(t.stop().is_ok());
        assert!(!series(&dump(&data), "up", &addrs[0]).is_empty());
        let _ = std::fs::remove_dir_all(d.0.join("moved"));
        std::fs::remove_dir_all(&data).expect("clean up");
    }
}
