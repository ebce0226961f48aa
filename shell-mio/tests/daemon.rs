//! The `trawl` daemon end to end, against real nginx servers (Debian's `nginx-light`,
//! installed by `.ci/run`) on loopback addresses: static and file discovery, gzip
//! bodies, a reload that removes a target (stale markers in the dump), a kill -9 in the
//! middle of writing and a restart, all checked with `promtool tsdb dump`.
//!
//! These tests live in `shell-mio/` (not `tests/`) because cargo gives a package's own
//! integration tests the path of its binary (`CARGO_BIN_EXE_trawl`).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn static_and_file_targets_are_scraped_stored_and_marked_stale_after_a_reload() {
    let d = TempDir::new("sd");
    let port = std::cell::Cell::new(0);
    scenario::discovery_reload_and_shutdown(
        &d.0,
        &mut |dir: &Path, cfg: &Path, data: &Path| -> Box<dyn Shell> {
            let t = Daemon::start(dir, cfg, data);
            port.set(t.web);
            Box::new(t)
        },
        &mut |_: &dyn Shell| {
            // What only the daemon has: its lifecycle endpoints and process metrics.
            let web = port.get();
            assert_eq!(api(web, "GET", "/-/healthy").map(|x| x.0), Some(200));
            assert_eq!(api(web, "GET", "/-/ready").map(|x| x.0), Some(200));
            assert_eq!(
                api(web, "POST", "/-/reload").map(|x| x.0),
                Some(403),
                "lifecycle is off"
            );
            let (status, metrics) = api(web, "GET", "/metrics").expect("metrics");
            assert_eq!(status, 200);
            for name in ["process_resident_memory_bytes", "process_cpu_seconds_total"] {
                assert!(metrics.contains(name), "{name} missing:\n{metrics}");
            }
        },
    );
}

#[test]
fn a_kill_9_loses_nothing_committed_and_a_restart_goes_on_with_the_same_series() {
    let d = TempDir::new("kill");
    let port = free_port();
    let addr = format!("127.0.0.5:{port}");
    let _nginx = nginx(&d.0, std::slice::from_ref(&addr));
    std::fs::write(d.0.join("www/metrics"), body(200)).expect("metrics");
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 500ms\nscrape_configs:\n  - job_name: k\n    static_configs:\n      - targets: [\"{addr}\"]\n"),
    )
    .expect("config");
    let data = d.0.join("data");
    let t = trawl(&d.0, &cfg, &data, free_port());
    std::thread::sleep(Duration::from_millis(2600));
    signal(&t, "KILL");
    drop(t);
    // Readable as it is, whatever the kill cut.
    let first = dump(&data);
    let before: BTreeSet<String> = first.keys().cloned().collect();
    assert!(series(&first, "e2e_metric", &addr).len() >= 200 * 2);
    // A restart replays (and repairs) the WAL and goes on.
    let mut t = trawl(&d.0, &cfg, &data, free_port());
    std::thread::sleep(Duration::from_millis(2100));
    signal(&t, "TERM");
    let status = wait_exit(&mut t, Duration::from_secs(10));
    assert!(status.success(), "{}", log_of(&d.0));
    let after = dump(&data);
    // Nothing readable before is lost, and no label set appears twice (a series
    // declared again would have lost its earlier samples in Prometheus's replay).
    for (l, v) in &first {
        let later = &after[l];
        assert!(v.iter().all(|s| later.contains(s)), "{l} lost samples");
        assert!(later.len() > v.len(), "{l} got nothing after the restart");
    }
    assert_eq!(after.keys().cloned().collect::<BTreeSet<_>>(), before);
    assert!(log_of(&d.0).contains("WAL replayed"));
}

#[test]
fn a_recorded_run_replays_to_the_same_digest() {
    let d = TempDir::new("record");
    let (_nginx, addrs, sd) = fleet(&d.0, 6..=7, 30);
    std::fs::write(
        sd.join("a.json"),
        format!("[{{\"targets\": [\"{}\"]}}]", addrs[0]),
    )
    .expect("sd file");
    let cfg = d.0.join("prometheus.yml");
    let yaml = |extra: &str| {
        format!(
            "global:\n  scrape_interval: 500ms\nscrape_configs:\n  - job_name: f\n    file_sd_configs:\n      - files: [\"{}/*.json\"]\n{extra}",
            sd.display()
        )
    };
    std::fs::write(&cfg, yaml("")).expect("config");
    let rec = d.0.join("run.rec");
    let mut t = trawl_with(
        &d.0,
        &cfg,
        &d.0.join("data"),
        free_port(),
        &[format!("--debug.record={}", rec.display())],
    );
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(
        sd.join("b.json"),
        format!("[{{\"targets\": [\"{}\"]}}]", addrs[1]),
    )
    .expect("sd file");
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::write(
        &cfg,
        yaml(&format!(
            "  - job_name: s\n    static_configs: [{{targets: [\"{}\"]}}]\n",
            addrs[1]
        )),
    )
    .expect("config");
    signal(&t, "HUP");
    std::thread::sleep(Duration::from_millis(1200));
    signal(&t, "TERM");
    assert!(
        wait_exit(&mut t, Duration::from_secs(10)).success(),
        "{}",
        log_of(&d.0)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .arg("replay")
        .arg(&rec)
        .output()
        .expect("trawl replay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(": match"), "{stdout}");
    let inputs: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("inputs "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(inputs > 50, "{stdout}");
}

/// A CA and a server certificate for 127.0.0.8 and `trawl.test`, made with openssl.
#[test]
fn https_targets_are_verified_against_the_configured_ca() {
    let d = TempDir::new("tls");
    let (addr, ca, _nginx) = scenario::https_targets_are_verified(&d.0, &mut |dir, cfg, data| {
        Box::new(Daemon::start(dir, cfg, data))
    });
    let www = d.0.join("www");
    // HTTP discovery over TLS, through `trawl sd` (blocking client, same TLS settings).
    std::fs::create_dir_all(www.join("sd")).expect("sd dir");
    std::fs::write(www.join("sd/t.json"), "[{\"targets\": [\"found:1\"]}]").expect("sd");
    let sd_cfg = d.0.join("sd.yml");
    std::fs::write(
        &sd_cfg,
        format!(
            "scrape_configs:\n  - job_name: h\n    http_sd_configs:\n      - url: https://{addr}/sd/t.json\n        tls_config: {{ca_file: {}}}\n",
            ca.display()
        ),
    )
    .expect("sd config");
    sd_finds(&sd_cfg, "http://found:1/metrics", "TLS");
}

/// `trawl sd` on `cfg` lists a target with `url`.
fn sd_finds(cfg: &Path, url: &str, what: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(["sd", &format!("--config.file={}", cfg.display())])
        .output()
        .expect("trawl sd");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(url),
        "{what}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// tinyproxy (Debian's `tinyproxy`, installed by `.ci/run`) on 127.0.0.1:`port`,
/// requiring `user:pass`, logging each request to `tinyproxy.log`.
fn tinyproxy(dir: &Path, port: u16, user: &str, pass: &str) -> Proc {
    let conf = dir.join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nMaxClients 50\nAllow 127.0.0.1\nBasicAuth {user} {pass}\nDisableViaHeader Yes\n"
        ),
    )
    .expect("tinyproxy.conf");
    let log = std::fs::File::create(dir.join("tinyproxy.log")).expect("log");
    let p = Proc(
        Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy (Debian package tinyproxy) is installed: .ci/run installs it"),
    );
    eventually(Duration::from_secs(10), "tinyproxy listening", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    p
}

#[test]
fn targets_and_http_discovery_go_through_a_plain_http_proxy() {
    let d = TempDir::new("proxy");
    certs(&d.0);
    let (tls_port, plain_port) = (free_port(), free_port());
    let tls_addr = format!("127.0.0.8:{tls_port}");
    let plain_addr = format!("127.0.0.9:{plain_port}");
    let www = d.0.join("www");
    std::fs::create_dir_all(www.join("sd")).expect("www");
    std::fs::write(www.join("metrics"), body(10)).expect("metrics");
    std::fs::write(www.join("sd/t.json"), "[{\"targets\": [\"found:1\"]}]").expect("sd");
    let _nginx = tls_nginx(&d.0, &tls_addr, Some(&plain_addr));
    let pport = free_port();
    let _proxy = tinyproxy(&d.0, pport, "trawl", "s3cret");
    // A port nothing listens on: a job that used that proxy could not scrape.
    let dead = free_port();
    let ca = d.0.join("ca.crt");
    let ca = ca.display();
    let proxy = format!("http://trawl:s3cret@127.0.0.1:{pport}");
    let jobs = [
        format!("job_name: forward\n    proxy_url: {proxy}"),
        format!(
            "job_name: tunnel\n    scheme: https\n    tls_config: {{ca_file: {ca}}}\n    proxy_url: {proxy}\n    proxy_connect_header: {{X-Trawl-Test: [tunnel]}}"
        ),
        format!("job_name: wrong_password\n    proxy_url: http://trawl:nope@127.0.0.1:{pport}"),
        format!(
            "job_name: bypassed\n    proxy_url: http://127.0.0.1:{dead}\n    no_proxy: example.invalid"
        ),
        format!("job_name: dead_proxy\n    proxy_url: http://127.0.0.1:{dead}"),
        format!("job_name: socks\n    proxy_url: socks5://127.0.0.1:{pport}"),
    ];
    let mut yaml = String::from("global:\n  scrape_interval: 500ms\nscrape_configs:\n");
    for j in &jobs {
        let target = if j.contains("scheme: https") {
            &tls_addr
        } else {
            &plain_addr
        };
        yaml.push_str(&format!(
            "  - {j}\n    static_configs: [{{targets: [\"{target}\"]}}]\n"
        ));
    }
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(&cfg, yaml).expect("config");
    let web = free_port();
    let mut t = trawl(&d.0, &cfg, &d.0.join("data"), web);
    let pools = [
        "forward",
        "tunnel",
        "wrong_password",
        "bypassed",
        "dead_proxy",
        "socks",
    ];
    let health = |pool: &str| pool_health(web, pool);
    eventually(Duration::from_secs(15), "proxied scrapes settled", || {
        pools
            .iter()
            .all(|p| health(p) != "unknown" && !health(p).is_empty())
    });
    let error = |pool: &str| {
        let (_, body) =
            api(web, "GET", &format!("/api/v1/targets?scrapePool={pool}")).expect("targets");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        v["data"]["activeTargets"][0]["lastError"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(health("forward"), "up", "{}", error("forward"));
    assert_eq!(health("tunnel"), "up", "{}", error("tunnel"));
    assert_eq!(health("bypassed"), "up", "no_proxy: loopback goes direct");
    assert_eq!(health("wrong_password"), "down");
    assert!(
        error("wrong_password").contains("server returned HTTP status 40"),
        "{}",
        error("wrong_password")
    );
    assert_eq!(health("dead_proxy"), "down");
    assert!(
        error("dead_proxy").contains("proxyconnect tcp: dial tcp 127.0.0.1:"),
        "{}",
        error("dead_proxy")
    );
    assert!(
        error("socks").contains("only http:// proxies are supported"),
        "{}",
        error("socks")
    );
    // The proxy saw the forwarded request (absolute URL) and the tunnel.
    let plog = std::fs::read_to_string(d.0.join("tinyproxy.log")).unwrap_or_default();
    assert!(
        plog.contains(&format!("GET http://{plain_addr}/metrics HTTP/1.1")),
        "{plog}"
    );
    assert!(
        plog.contains(&format!("CONNECT {tls_addr} HTTP/1.1")),
        "{plog}"
    );
    signal(&t, "TERM");
    assert!(wait_exit(&mut t, Duration::from_secs(10)).success());
    // HTTP discovery through the proxy, with `trawl sd`, for both kinds of target.
    for (scheme, addr, tls) in [
        ("http", &plain_addr, String::new()),
        (
            "https",
            &tls_addr,
            format!("\n        tls_config: {{ca_file: {ca}}}"),
        ),
    ] {
        let sd_cfg = d.0.join("sd.yml");
        std::fs::write(
            &sd_cfg,
            format!(
                "scrape_configs:\n  - job_name: h\n    http_sd_configs:\n      - url: {scheme}://{addr}/sd/t.json\n        proxy_url: http://trawl:s3cret@127.0.0.1:{pport}{tls}\n"
            ),
        )
        .expect("sd config");
        sd_finds(&sd_cfg, "http://found:1/metrics", scheme);
    }
    let plog = std::fs::read_to_string(d.0.join("tinyproxy.log")).unwrap_or_default();
    assert!(
        plog.contains(&format!("GET http://{plain_addr}/sd/t.json HTTP/1.1")),
        "{plog}"
    );
}
