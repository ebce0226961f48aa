//! End-to-end scenarios both shells run with the same assertions (the daemon's in
//! `shell-mio/tests`, `trawl-tokio`'s in `shell-tokio/tests/parity.rs`).

use std::path::Path;
use std::time::Duration;

use super::receivers::*;
use super::*;

/// Static, file and HTTP discovery against an nginx fleet; a target renamed into a
/// watched directory; a reload that removes a static target (its series end in stale
/// markers); a graceful shutdown; then the WAL as `promtool tsdb dump` reads it.
/// `start` runs the agent on (dir, config, data); `extra` checks what only that shell
/// has, once every target is up.
pub(crate) fn discovery_reload_and_shutdown(
    dir: &Path,
    start: &mut dyn FnMut(&Path, &Path, &Path) -> Box<dyn Shell>,
    extra: &mut dyn FnMut(&dyn Shell),
) {
    let (_nginx, addrs, sd) = fleet(dir, 2..=4, 50);
    std::fs::write(
        sd.join("a.json"),
        format!(
            "[{{\"targets\": [\"{}\"], \"labels\": {{\"team\": \"x\"}}}}]",
            addrs[1]
        ),
    )
    .expect("sd file");
    let config = |with_static: bool| {
        let mut y = String::from("global:\n  scrape_interval: 1s\nscrape_configs:\n");
        // The target leaves the job, the job stays (a job that goes takes its loops
        // without stale markers, as in Prometheus).
        let target = if with_static {
            format!("\"{}\"", addrs[0])
        } else {
            String::new()
        };
        y.push_str(&format!(
            "  - job_name: static\n    static_configs:\n      - targets: [{target}]\n"
        ));
        y.push_str(&format!(
            "  - job_name: files\n    file_sd_configs:\n      - files: [\"{}/*.json\"]\n",
            sd.display()
        ));
        y.push_str(&format!(
            "  - job_name: http\n    http_sd_configs:\n      - url: http://{}/sd/targets.json\n        refresh_interval: 1s\n",
            addrs[0]
        ));
        y
    };
    std::fs::create_dir_all(dir.join("www/sd")).expect("sd dir");
    std::fs::write(
        dir.join("www/sd/targets.json"),
        format!(
            "[{{\"targets\": [\"{}\"], \"labels\": {{\"via\": \"http\"}}}}]",
            addrs[2]
        ),
    )
    .expect("http sd");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config(true)).expect("config");
    let data = dir.join("data");
    let mut t = start(dir, &cfg, &data);
    // The three targets show, then all up.
    let up = |t: &dyn Shell| {
        let a = t.active();
        a.len() == 3 && a.iter().all(|x| x.2 == "up")
    };
    let ok = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        up(&*t)
    });
    assert!(
        ok,
        "three targets up: {:?}\n{}",
        t.active(),
        t.log()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("http"))
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let pools: Vec<String> = t.active().into_iter().map(|x| x.0).collect();
    assert_eq!(pools, ["files", "http", "static"]);
    extra(&*t);
    let metrics = t.metrics();
    for name in [
        "prometheus_sd_updates_total",
        "prometheus_target_scrape_pools_total",
        "prometheus_target_scrape_pool_targets{scrape_job=\"files\"}",
        "trawl_storage_samples_stored_total",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    std::thread::sleep(Duration::from_millis(1500));
    // A new target arrives by atomic rename into the watched directory and shows up in
    // the API.
    let tmp = dir.join("b.json.tmp");
    std::fs::write(&tmp, format!("[{{\"targets\": [\"{}\"]}}]", addrs[2])).expect("tmp");
    std::fs::rename(&tmp, sd.join("b.json")).expect("rename");
    eventually(Duration::from_secs(10), "the renamed-in target", || {
        t.active().iter().any(|x| x.0 == "files" && x.1 == addrs[2])
    });
    std::thread::sleep(Duration::from_millis(2500));
    // The static target goes: its series get stale markers about an interval later.
    std::fs::write(&cfg, config(false)).expect("config");
    t.reload();
    std::thread::sleep(Duration::from_millis(3500));
    if let Err(e) = t.stop() {
        panic!("{e}:\n{}", t.log());
    }
    let dump = dump(&data);
    for a in &addrs {
        let up = series(&dump, "up", a);
        assert!(up.len() >= 2, "{a}: up {up:?}\n{}", t.log());
        assert!(
            up.iter().any(|(v, _)| v == "1"),
            "{a} never up: {up:?}\n{}",
            t.log()
        );
        // Fifty series each, every scrape.
        let m = series(&dump, "e2e_metric", a);
        assert!(m.len() >= 50 * 2, "{a}: {} samples", m.len());
    }
    // The HTTP-discovered target carries its group's label.
    assert!(
        dump.keys()
            .any(|l| l.contains("job=\"http\"") && l.contains("via=\"http\""))
    );
    // The file target carries its group's label.
    assert!(
        dump.keys()
            .any(|l| l.contains(&format!("instance=\"{}\"", addrs[1])) && l.contains("team=\"x\""))
    );
    // The removed static target's series end in a stale marker (NaN), the others not.
    let stat: Vec<&String> = dump
        .keys()
        .filter(|l| l.contains(&format!("instance=\"{}\"", addrs[0])))
        .collect();
    assert!(!stat.is_empty());
    for l in stat {
        let last = dump[l].last().expect("samples");
        assert_eq!(last.0, "NaN", "{l} does not end stale: {:?}", dump[l]);
    }
    let last_file = series(&dump, "up", &addrs[1]);
    assert_eq!(last_file.last().map(|x| x.0.as_str()), Some("1"));
}

/// `https` targets: verified against `ca_file`, with `server_name`, against the system
/// roots (which do not hold the test CA: down, with a TLS error), and not at all with
/// `insecure_skip_verify`. Returns the server's address, the CA file and the server (for
/// checks only a shell can make).
pub(crate) fn https_targets_are_verified(
    dir: &Path,
    start: &mut dyn FnMut(&Path, &Path, &Path) -> Box<dyn Shell>,
) -> (String, std::path::PathBuf, Proc) {
    certs(dir);
    let port = free_port();
    let addr = format!("127.0.0.8:{port}");
    let www = dir.join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("metrics"), body(10)).expect("metrics");
    let nginx = tls_nginx(dir, &addr, None);
    let ca = dir.join("ca.crt");
    let job = |name: &str, tls: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config: {tls}\n    static_configs: [{{targets: [\"{addr}\"]}}]\n"
        )
    };
    let yaml = format!(
        "global:\n  scrape_interval: 500ms\nscrape_configs:\n{}{}{}{}",
        job("ca", &format!("{{ca_file: {}}}", ca.display())),
        job(
            "name",
            &format!("{{ca_file: {}, server_name: trawl.test}}", ca.display())
        ),
        job("system", "{}"),
        job("insecure", "{insecure_skip_verify: true}"),
    );
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, yaml).expect("config");
    let mut t = start(dir, &cfg, &dir.join("data"));
    let health = |pool: &str| {
        t.active()
            .into_iter()
            .find(|x| x.0 == pool)
            .map(|x| x.2)
            .unwrap_or_default()
    };
    eventually(Duration::from_secs(15), "TLS scrapes settled", || {
        ["ca", "name", "system", "insecure"]
            .iter()
            .all(|p| health(p) != "unknown" && !health(p).is_empty())
    });
    assert_eq!(health("ca"), "up", "{}", t.log());
    assert_eq!(health("name"), "up");
    assert_eq!(health("insecure"), "up");
    assert_eq!(health("system"), "down", "the test CA is not a system root");
    let json = t.targets_json();
    let v: serde_json::Value = serde_json::from_str(&json).expect("targets JSON");
    let system_error = v["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["scrapePool"] == "system")
        .and_then(|x| x["lastError"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(
        system_error.contains(": tls: invalid peer certificate: UnknownIssuer"),
        "{json}"
    );
    if let Err(e) = t.stop() {
        panic!("{e}:\n{}", t.log());
    }
    (addr, ca, nginx)
}

/// An nginx fleet scraped and sent to VictoriaMetrics and a Prometheus receiver at
/// once; a reload removes a target (its stale markers must arrive too); after a
/// graceful shutdown each receiver holds exactly what the WAL holds (Prometheus: less
/// the stale markers, which its queries do not return).
pub(crate) fn remote_write_reaches_both_receivers(
    dir: &Path,
    start: &mut dyn FnMut(&Path, &Path, &Path) -> Box<dyn Shell>,
) {
    let (_nginx, addrs, _sd) = fleet(dir, 21..=25, 20);
    let (vm_port, prom_port) = (free_port(), free_port());
    let _vm = victoria(&dir.join("vm"), vm_port);
    let _prom = prometheus_receiver(&dir.join("prom"), prom_port);
    let cfg = config(
        dir,
        &addrs,
        &[
            format!("http://127.0.0.1:{vm_port}/api/v1/write"),
            format!("http://127.0.0.1:{prom_port}/api/v1/write"),
        ],
    );
    let data = dir.join("data");
    let mut t = start(dir, &cfg, &data);
    eventually(Duration::from_secs(15), "targets up", || {
        let a = t.active();
        a.len() == 5 && a.iter().all(|x| x.2 == "up")
    });
    std::thread::sleep(Duration::from_secs(3));
    // Remove a target: its series end with stale markers, which must arrive too.
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .expect("cfg")
            .replace(&format!("\"{}\", ", addrs[0]), ""),
    )
    .expect("config");
    t.reload();
    std::thread::sleep(Duration::from_secs(3));
    let metrics = t.metrics();
    assert!(
        metrics.contains("prometheus_remote_storage_samples_total{remote_name=\"r0\""),
        "{metrics}"
    );
    if let Err(e) = t.stop() {
        panic!("{e}:\n{}", t.log());
    }
    let (all, live) = wal_counts(&data);
    assert!(all.len() >= 5 * 25, "{} series in the WAL", all.len());
    let stale: usize = all.values().sum::<usize>() - live.values().sum::<usize>();
    assert!(stale >= 25, "stale markers for the removed target: {stale}");
    eventually(
        Duration::from_secs(20),
        "VictoriaMetrics has everything",
        || vm_counts(vm_port) == all,
    );
    let vm = vm_counts(vm_port);
    assert_eq!(vm, all, "VictoriaMetrics: series and sample counts");
    eventually(Duration::from_secs(20), "Prometheus has everything", || {
        prom_counts(prom_port) == live
    });
}

/// A receiver behind a fault front: two 500s (retried), one 400 (that batch dropped for
/// good, and counted), then the real receiver, which must end with everything else.
pub(crate) fn errors_are_retried_and_a_refused_batch_is_the_only_loss(
    dir: &Path,
    start: &mut dyn FnMut(&Path, &Path, &Path) -> Box<dyn Shell>,
) {
    let (_nginx, addrs, _sd) = fleet(dir, 41..=42, 10);
    let vm_port = free_port();
    let _vm = victoria(&dir.join("vm"), vm_port);
    // Two 500s (retried), then one 400 (dropped for good), then the real receiver.
    let (front, log) = fault_front(vm_port, vec![500, 500, 400]);
    let cfg = config(
        dir,
        &addrs,
        &[format!("http://127.0.0.1:{front}/api/v1/write")],
    );
    let data = dir.join("data");
    let mut t = start(dir, &cfg, &data);
    eventually(Duration::from_secs(60), "the 400 came and went", || {
        log.lock().expect("log").len() >= 5
    });
    std::thread::sleep(Duration::from_secs(2));
    let failed = queue_metric_of(&*t, "prometheus_remote_storage_samples_failed_total");
    let retried = queue_metric_of(&*t, "prometheus_remote_storage_samples_retried_total");
    if let Err(e) = t.stop() {
        panic!("{e}:\n{}", t.log());
    }
    assert_eq!(&log.lock().expect("log")[..3], &[500, 500, 400]);
    assert!(failed > 0.0, "the refused batch is counted: {failed}");
    assert!(retried > 0.0, "the 500s were retried: {retried}");
    let (all, _) = wal_counts(&data);
    let total: usize = all.values().sum();
    eventually(Duration::from_secs(60), "the receiver has the rest", || {
        let got: usize = vm_counts(vm_port).values().sum();
        got + failed as usize >= total
    });
    let got: usize = vm_counts(vm_port).values().sum();
    assert_eq!(
        got + failed as usize,
        total,
        "the front answered {:?}",
        log.lock().expect("log")
    );
    let vm = vm_counts(vm_port);
    assert!(
        all.iter().all(|(k, n)| vm.get(k).is_none_or(|m| m <= n)),
        "no duplicates"
    );
}

/// Metric metadata goes out in metadata-only requests every `send_interval`, read off
/// the wire, and is counted.
pub(crate) fn metadata_goes_out_in_metadata_only_requests(
    dir: &Path,
    start: &mut dyn FnMut(&Path, &Path, &Path) -> Box<dyn Shell>,
) {
    let (_nginx, addrs, _sd) = fleet(dir, 51..=52, 3);
    let vm_port = free_port();
    let _vm = victoria(&dir.join("vm"), vm_port);
    let (front, _log, bodies) = fault_front_capturing(vm_port, Vec::new());
    let cfg = dir.join("prometheus.yml");
    let targets: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 500ms\nscrape_configs:\n  - job_name: fleet\n    static_configs: [{{targets: [{}]}}]\nremote_write:\n  - url: http://127.0.0.1:{front}/api/v1/write\n    name: r0\n    metadata_config: {{send_interval: 1s}}\n",
            targets.join(", ")
        ),
    )
    .expect("config");
    let mut t = start(dir, &cfg, &dir.join("data"));
    // A metadata-only body: WriteRequest field 3 (tag 0x1a) first, with the family,
    // its type (gauge = 2) and its help from the exposition.
    let is_metadata = |b: &Vec<u8>| {
        let Ok(pb) = snap::raw::Decoder::new().decompress_vec(b) else {
            return false;
        };
        let has = |x: &[u8]| pb.windows(x.len()).any(|w| w == x);
        pb.first() == Some(&0x1a) && has(b"\x08\x02\x12\x0ae2e_metric") && has(b"A test metric.")
    };
    eventually(Duration::from_secs(20), "a metadata request", || {
        bodies.lock().expect("bodies").iter().any(is_metadata)
    });
    eventually(Duration::from_secs(10), "metadata counted as sent", || {
        queue_metric_of(&*t, "prometheus_remote_storage_metadata_total") >= 1.0
    });
    if let Err(e) = t.stop() {
        panic!("{e}:\n{}", t.log());
    }
}

/// A metric's value for the remote-write queue `r0` in the shell's metrics (-1 if
/// absent).
pub(crate) fn queue_metric_of(t: &dyn Shell, name: &str) -> f64 {
    t.metrics()
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{remote_name=\"r0\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

/// Scrapes through tinyproxy: `http://` targets forwarded with the absolute URL,
/// `https://` ones through a `CONNECT` tunnel (with `proxy_connect_header`), a wrong
/// proxy password, `no_proxy` for loopback, a dead proxy and an unsupported scheme,
/// each with Prometheus's error text. Returns the plain and TLS target addresses, the
/// proxy's port, and the servers (kept running for the caller's own checks).
pub(crate) fn targets_go_through_a_plain_http_proxy(
    dir: &Path,
    start: &mut dyn FnMut(&Path, &Path, &Path) -> Box<dyn Shell>,
) -> (String, String, u16, (Proc, Proc)) {
    certs(dir);
    let (tls_port, plain_port) = (free_port(), free_port());
    let tls_addr = format!("127.0.0.8:{tls_port}");
    let plain_addr = format!("127.0.0.9:{plain_port}");
    let www = dir.join("www");
    std::fs::create_dir_all(www.join("sd")).expect("www");
    std::fs::write(www.join("metrics"), body(10)).expect("metrics");
    std::fs::write(www.join("sd/t.json"), "[{\"targets\": [\"found:1\"]}]").expect("sd");
    let nginx = tls_nginx(dir, &tls_addr, Some(&plain_addr));
    let pport = free_port();
    let proxy_proc = tinyproxy(dir, pport, "trawl", "s3cret");
    // A port nothing listens on: a job that used that proxy could not scrape.
    let dead = free_port();
    let ca = dir.join("ca.crt");
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
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, yaml).expect("config");
    let mut t = start(dir, &cfg, &dir.join("data"));
    let pools = [
        "forward",
        "tunnel",
        "wrong_password",
        "bypassed",
        "dead_proxy",
        "socks",
    ];
    let health = |pool: &str| {
        t.active()
            .into_iter()
            .find(|x| x.0 == pool)
            .map(|x| x.2)
            .unwrap_or_default()
    };
    eventually(Duration::from_secs(15), "proxied scrapes settled", || {
        pools
            .iter()
            .all(|p| health(p) != "unknown" && !health(p).is_empty())
    });
    let error = |pool: &str| {
        let v: serde_json::Value = serde_json::from_str(&t.targets_json()).expect("JSON");
        v["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["scrapePool"] == pool)
            .and_then(|x| x["lastError"].as_str())
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
    let plog = std::fs::read_to_string(dir.join("tinyproxy.log")).unwrap_or_default();
    assert!(
        plog.contains(&format!("GET http://{plain_addr}/metrics HTTP/1.1")),
        "{plog}"
    );
    assert!(
        plog.contains(&format!("CONNECT {tls_addr} HTTP/1.1")),
        "{plog}"
    );
    if let Err(e) = t.stop() {
        panic!("{e}:\n{}", t.log());
    }
    (plain_addr, tls_addr, pport, (nginx, proxy_proc))
}
