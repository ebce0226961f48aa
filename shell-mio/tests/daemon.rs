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
use std::process::Command;
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
    let (addr, ca, _nginx) = scenario::https_targets_are_verified(&d.0, &mut daemon);
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
#[test]
fn targets_and_http_discovery_go_through_a_plain_http_proxy() {
    let d = TempDir::new("proxy");
    let (plain_addr, tls_addr, pport, _servers) =
        scenario::targets_go_through_a_plain_http_proxy(&d.0, &mut daemon);
    let ca = d.0.join("ca.crt");
    let ca = ca.display();
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
