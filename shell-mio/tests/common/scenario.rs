//! End-to-end scenarios both shells run with the same assertions (the daemon's in
//! `shell-mio/tests`, `trawl-tokio`'s in `shell-tokio/tests/parity.rs`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::receivers::*;
use super::*;

/// How a scenario starts the agent under test on (dir, config, data): [`daemon`], or
/// trawl-tokio's `embedded`.
pub(crate) type Start<'a> = &'a mut dyn FnMut(&Path, &Path, &Path) -> Box<dyn Shell>;

/// Static, file and HTTP discovery against an nginx fleet; a target renamed into a
/// watched directory; a reload that removes a static target (its series end in stale
/// markers); a graceful shutdown; then the WAL as `promtool tsdb dump` reads it.
/// `start` runs the agent on (dir, config, data); `extra` checks what only that shell
/// has, once every target is up.
pub(crate) fn discovery_reload_and_shutdown(
    dir: &Path,
    start: Start<'_>,
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
    start: Start<'_>,
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
    let health = |pool: &str| pool_health_of(&*t, pool);
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
    let system_error = pool_error_of(&*t, "system");
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
pub(crate) fn remote_write_reaches_both_receivers(dir: &Path, start: Start<'_>) {
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
    start: Start<'_>,
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
pub(crate) fn metadata_goes_out_in_metadata_only_requests(dir: &Path, start: Start<'_>) {
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
    queue_metric_in(t, name, "r0")
}

/// Remote write with `sigv4` to a front that checks each request's signature with
/// botocore (AWS's Python SDK) before forwarding it to VictoriaMetrics: with the right
/// keys every sample arrives and no request is refused; a second queue signing with a
/// wrong secret is refused (403) and counts its samples as failed, and nothing it sent
/// reaches the receiver.
pub(crate) fn sigv4_signed_requests_are_accepted_and_a_wrong_key_refused(
    dir: &Path,
    start: Start<'_>,
) {
    let (_nginx, addrs, _sd) = fleet(dir, 61..=62, 10);
    let vm_port = free_port();
    let _vm = victoria(&dir.join("vm"), vm_port);
    let front = free_port();
    let log = dir.join("front.log");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shell-mio/tests/data/sigv4_front.py");
    let _front = Proc(
        std::process::Command::new("python3")
            .arg(&script)
            .args([
                front.to_string(),
                vm_port.to_string(),
                "AKIDTRAWLTEST".into(),
                "trawl/secret+KEY".into(),
                "eu-west-1".into(),
                "aps".into(),
            ])
            .arg(&log)
            .spawn()
            .expect("python3 runs the front"),
    );
    eventually(Duration::from_secs(20), "the front listens", || {
        std::net::TcpStream::connect(("127.0.0.1", front)).is_ok()
    });
    let cfg = dir.join("prometheus.yml");
    let targets: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 500ms\nscrape_configs:\n  - job_name: fleet\n    static_configs: [{{targets: [{}]}}]\nremote_write:\n  - url: http://127.0.0.1:{front}/workspaces/ws-1//api/v1/write\n    name: r0\n    sigv4: {{region: eu-west-1, access_key: AKIDTRAWLTEST, secret_key: trawl/secret+KEY}}\n  - url: http://127.0.0.1:{front}/workspaces/ws-1/api/v1/write\n    name: r1\n    sigv4: {{region: eu-west-1, access_key: AKIDTRAWLTEST, secret_key: not-the-key}}\n",
            targets.join(", ")
        ),
    )
    .expect("write config");
    let data = dir.join("data");
    let mut t = start(dir, &cfg, &data);
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while !(queue_metric_in(&*t, "prometheus_remote_storage_samples_failed_total", "r1") > 0.0
        && queue_metric_of(&*t, "prometheus_remote_storage_samples_total") > 0.0)
    {
        assert!(
            std::time::Instant::now() < until,
            "the wrong key was not refused, or the right one not accepted; front: {}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            t.metrics()
                .lines()
                .filter(|l| l.contains("samples"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    if let Err(e) = t.stop() {
        panic!("{e}:\n{}", t.log());
    }
    let (all, _) = wal_counts(&data);
    let total: usize = all.values().sum();
    eventually(
        Duration::from_secs(60),
        "the receiver has every sample",
        || vm_counts(vm_port).values().sum::<usize>() >= total,
    );
    let vm = vm_counts(vm_port);
    // r1's samples never arrived: no sample twice.
    assert_eq!(vm.values().sum::<usize>(), total);
    let lines = std::fs::read_to_string(&log).expect("front log");
    let ok = lines.lines().filter(|l| *l == "ok").count();
    let bad = lines.lines().filter(|l| l.starts_with("bad")).count();
    assert!(ok > 0, "{lines}");
    // Every refusal is r1's: r0's requests are all signed right.
    assert!(bad > 0, "{lines}");
    assert!(
        !lines
            .lines()
            .any(|l| l.starts_with("bad") && l != "bad signature"),
        "{lines}"
    );
}

/// A metric's value for the remote-write queue `queue` (-1 if absent).
pub(crate) fn queue_metric_in(t: &dyn Shell, name: &str, queue: &str) -> f64 {
    t.metrics()
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{remote_name=\"{queue}\"")))
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
    start: Start<'_>,
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
    let health = |pool: &str| pool_health_of(&*t, pool);
    eventually(Duration::from_secs(15), "proxied scrapes settled", || {
        pools
            .iter()
            .all(|p| health(p) != "unknown" && !health(p).is_empty())
    });
    let error = |pool: &str| pool_error_of(&*t, pool);
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

/// The scale-out recipe (`examples/scale-out/`): three instances share 300 targets by
/// `hashmod`; every target is scraped by exactly one, and VictoriaMetrics gets every
/// series from all three.
pub(crate) fn three_instances_share_a_fleet_of_300_targets(root: &Path, start: Start<'_>) {
    let port = free_port();
    let addrs: Vec<String> = (0..300)
        .map(|i| format!("127.2.{}.{}:{port}", i / 200, i % 200 + 1))
        .collect();
    let _nginx = nginx(root, &addrs);
    std::fs::write(root.join("www/metrics"), body(2)).expect("metrics");
    let vm_port = free_port();
    let _vm = victoria(&root.join("vm"), vm_port);
    std::fs::create_dir_all(root.join("targets")).expect("targets dir");
    let list: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    std::fs::write(
        root.join("targets/fleet.json"),
        format!("[{{\"targets\": [{}]}}]", list.join(",")),
    )
    .expect("targets");
    // The recipe's file, as its README says to use it (receiver and interval adapted).
    let recipe = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scale-out/trawl-shard.yml"),
    )
    .expect("examples/scale-out/trawl-shard.yml");
    let mut instances = Vec::new();
    for i in 0..3 {
        let cfg = root.join(format!("shard-{i}.yml"));
        let text = recipe
            .replace("SHARD_INDEX", &i.to_string())
            .replace("SHARD_COUNT", "3")
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("127.0.0.1:8428", &format!("127.0.0.1:{vm_port}"));
        std::fs::write(&cfg, text).expect("shard config");
        let dir = root.join(format!("i{i}"));
        std::fs::create_dir_all(&dir).expect("instance dir");
        instances.push(start(&dir, &cfg, &root.join(format!("data-{i}"))));
    }
    // Every target scraped by exactly one instance.
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    eventually(
        Duration::from_secs(30),
        "300 targets up across 3 instances",
        || {
            owners.clear();
            let mut up = 0;
            for t in &instances {
                for (_, instance, health) in t.active() {
                    *owners.entry(instance).or_default() += 1;
                    up += usize::from(health == "up");
                }
            }
            up == 300
        },
    );
    assert_eq!(owners.len(), 300);
    assert!(owners.values().all(|&n| n == 1), "a target scraped twice");
    for t in &instances {
        let n = t.active().len();
        assert!(
            (60..=140).contains(&n),
            "an instance has {n} of 300 targets"
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    for t in &mut instances {
        if let Err(e) = t.stop() {
            panic!("{e}:\n{}", t.log());
        }
    }
    // The receiver has every series: 300 targets × (2 gauges + 5 report series).
    eventually(
        Duration::from_secs(30),
        "VictoriaMetrics has every series",
        || vm_counts(vm_port).len() == 300 * 7,
    );
    let vm = vm_counts(vm_port);
    let shards: std::collections::BTreeSet<&str> = vm
        .keys()
        .filter_map(|k| k.split("trawl_shard=\"").nth(1))
        .filter_map(|s| s.split('"').next())
        .collect();
    assert_eq!(shards.len(), 3, "series from every instance");
}

/// Both receivers stopped for a minute, then restarted on the same data: each ends with
/// every sample, the queues never hold more than their capacity (the backlog waits in
/// the WAL), and, where the agent is a process of its own, its RSS stays flat.
pub(crate) fn both_receivers_stopped_for_a_minute_get_everything_and_memory_stays_flat(
    dir: &Path,
    start: Start<'_>,
) {
    let (_nginx, addrs, _sd) = fleet(dir, 51..=58, 500);
    let (vm_port, prom_port) = (free_port(), free_port());
    let (vm_dir, prom_dir) = (dir.join("vm"), dir.join("prom"));
    let mut vm = victoria(&vm_dir, vm_port);
    let mut prom = prometheus_receiver(&prom_dir, prom_port);
    let cfg = config(
        dir,
        &addrs,
        &[
            format!("http://127.0.0.1:{vm_port}/api/v1/write"),
            format!("http://127.0.0.1:{prom_port}/api/v1/write"),
        ],
    );
    // A small queue: what a minute of scraping brings (8 targets × 505 series × 2/s,
    // about 480 000 samples) is many times what the queues may hold, so everything past
    // their capacity has to wait in the WAL, not in memory.
    let capacity = 1000;
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg).expect("cfg").replace(
            "queue_config: {",
            &format!(
                "queue_config: {{capacity: {capacity}, max_samples_per_send: 200, max_shards: 2, "
            ),
        ),
    )
    .expect("config");
    let data = dir.join("data");
    let mut t = start(dir, &cfg, &data);
    eventually(Duration::from_secs(15), "targets up", || {
        let a = t.active();
        a.len() == 8 && a.iter().all(|x| x.2 == "up")
    });
    std::thread::sleep(Duration::from_secs(3));
    // Both receivers stop for a minute.
    stop_proc(&mut vm);
    stop_proc(&mut prom);
    let mut samples = Vec::new();
    let mut pending_max = 0.0f64;
    for _ in 0..60 {
        std::thread::sleep(Duration::from_secs(1));
        samples.extend(t.rss());
        for q in ["r0", "r1"] {
            pending_max = pending_max.max(queue_metric_in(
                &*t,
                "prometheus_remote_storage_samples_pending",
                q,
            ));
        }
    }
    let retried = queue_metric_in(&*t, "prometheus_remote_storage_samples_retried_total", "r1");
    // They come back on the same data and ports.
    let _vm = victoria(&vm_dir, vm_port);
    let _prom = prometheus_receiver(&prom_dir, prom_port);
    assert!(
        retried > 0.0,
        "the outage was seen: {retried} samples retried"
    );
    eventually(Duration::from_secs(90), "the queues caught up", || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        ["r0", "r1"].iter().all(|q| {
            let sent = queue_metric_in(
                &*t,
                "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
                q,
            );
            now - sent < 3.0
        })
    });
    std::thread::sleep(Duration::from_secs(2));
    if let Err(e) = t.stop() {
        panic!("{e}:\n{}", t.log());
    }
    let (all, live) = wal_counts(&data);
    let total: usize = all.values().sum();
    assert!(
        total > 50 * capacity,
        "the outage produced more than the queues hold: {total} samples"
    );
    // Memory: what the queues hold is bounded by their capacity, and the process does not
    // grow with the backlog: the last 20 s of the outage against the 10 s after its start.
    // A shard takes a whole WAL record (one scrape, 505 samples) while under capacity.
    assert!(
        pending_max <= (2 * (capacity + 505)) as f64,
        "pending samples {pending_max} over the capacity of 2 shards × {capacity} and a scrape"
    );
    if samples.len() == 60 {
        let early = samples[2..12].iter().copied().max().unwrap_or(0);
        let late = samples[40..].iter().copied().max().unwrap_or(0);
        assert!(
            late <= early + early / 5 + (2 << 20),
            "RSS grew with the backlog: {early} B early in the outage, {late} B at its end ({samples:?})"
        );
    }
    let vm = settle(
        Duration::from_secs(60),
        || vm_counts(vm_port),
        |vm| vm.len() == all.len() && all.iter().all(|(k, n)| vm.get(k).is_some_and(|m| m >= n)),
    );
    assert!(
        vm.len() == all.len() && all.iter().all(|(k, n)| vm.get(k).is_some_and(|m| m >= n)),
        "VictoriaMetrics lacks samples: {}",
        shortfall(&all, &vm)
    );
    let extra: usize = vm.values().sum::<usize>() - total;
    assert!(
        extra <= 2 * 200,
        "duplicates beyond the last retried batches: {extra}"
    );
    let prom = settle(
        Duration::from_secs(60),
        || prom_counts(prom_port),
        |p| *p == live,
    );
    assert!(prom == live, "Prometheus: {}", shortfall(&live, &prom));
}

/// The health of the first active target of `pool` ("" while there is none).
pub(crate) fn pool_health_of(t: &dyn Shell, pool: &str) -> String {
    t.active()
        .into_iter()
        .find(|x| x.0 == pool)
        .map(|x| x.2)
        .unwrap_or_default()
}

/// The last error of the first active target of `pool`.
pub(crate) fn pool_error_of(t: &dyn Shell, pool: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&t.targets_json()).expect("targets JSON");
    v["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["scrapePool"] == pool)
        .and_then(|x| x["lastError"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Samples `t`'s resident memory every 100 ms for `d` while checking that its API
/// answers; the highest reading (0 where the shell has no process of its own).
pub(crate) fn watch_memory_and_api(t: &dyn Shell, d: Duration) -> u64 {
    let end = std::time::Instant::now() + d;
    let mut peak = 0;
    while std::time::Instant::now() < end {
        let asked = std::time::Instant::now();
        let j = t.targets_json();
        assert!(
            j.contains("\"success\""),
            "the API stopped answering: {j:?}\n{}",
            t.log()
        );
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "the API took {:?} to answer",
            asked.elapsed()
        );
        peak = peak.max(t.rss().unwrap_or(0));
        std::thread::sleep(Duration::from_millis(100));
    }
    peak
}

/// Issue 16, defect 1: targets that stream bodies without end, close-delimited and
/// chunked, and an HTTP SD endpoint that does, as fast as loopback carries them. The
/// scrapes fail on `body_size_limit` and discovery on its 64 MiB bound as the bytes
/// arrive; one with a limit it never reaches (10 GB, `sample_limit` keeping its memory
/// small) fails on its `scrape_timeout` while its socket stays readable; memory stays
/// bounded, the API answers throughout, and a healthy target beside them is scraped on
/// schedule.
pub(crate) fn endless_bodies_are_cut_at_their_limits(dir: &Path, start: Start<'_>) {
    use super::hostile::{Misbehaviour, hostile};
    let (_nginx, addrs, _) = fleet(dir, 20..=20, 50);
    let close = hostile("127.0.0.21", Misbehaviour::EndlessClose);
    let chunked = hostile("127.0.0.22", Misbehaviour::EndlessChunked);
    let sd = hostile("127.0.0.19", Misbehaviour::EndlessJson);
    let slow = hostile("127.0.0.18", Misbehaviour::EndlessClose);
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n\
             - job_name: good\n  scrape_interval: 500ms\n  scrape_timeout: 500ms\n  static_configs: [{{targets: [\"{}\"]}}]\n\
             - job_name: close\n  body_size_limit: 1MB\n  static_configs: [{{targets: [\"{}\"]}}]\n\
             - job_name: chunked\n  body_size_limit: 1MB\n  static_configs: [{{targets: [\"{}\"]}}]\n\
             - job_name: sd\n  http_sd_configs: [{{url: \"http://{}/sd\", refresh_interval: 2s}}]\n\
             - job_name: timeout\n  body_size_limit: 10GB\n  sample_limit: 1000\n  static_configs: [{{targets: [\"{}\"]}}]\n",
            addrs[0], close.addr, chunked.addr, sd.addr, slow.addr
        ),
    )
    .expect("config");
    let data = dir.join("data");
    let mut t = start(dir, &cfg, &data);
    eventually(Duration::from_secs(10), "the hostile targets down", || {
        ["close", "chunked", "timeout"]
            .iter()
            .all(|p| pool_health_of(&*t, p) == "down")
    });
    let begun = std::time::Instant::now();
    let peak = watch_memory_and_api(&*t, Duration::from_secs(5));
    assert!(
        peak < 150 << 20,
        "resident memory reached {} MiB",
        peak >> 20
    );
    for pool in ["close", "chunked"] {
        let e = pool_error_of(&*t, pool);
        assert_eq!(e, "body size limit exceeded", "{pool}");
    }
    let e = pool_error_of(&*t, "timeout");
    assert!(e.ends_with(": context deadline exceeded"), "{e}");
    let failures = t
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix("prometheus_sd_http_failures_total "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        failures >= 1.0,
        "the endless HTTP SD answer was not refused"
    );
    assert_eq!(pool_health_of(&*t, "good"), "up");
    let sent = close.sent.load(std::sync::atomic::Ordering::Relaxed)
        + chunked.sent.load(std::sync::atomic::Ordering::Relaxed);
    let watched = begun.elapsed();
    t.stop().expect("a clean stop");
    // Every scrape of the healthy target in the window was stored: at 500 ms, none lost.
    let d = dump(&data);
    let ups = series(&d, "up", &addrs[0]);
    let in_window = ups.len() as u128;
    let expected = watched.as_millis() / 500;
    assert!(
        in_window >= expected,
        "{in_window} scrapes of the healthy target, {expected} expected"
    );
    // The hostile targets did not get to push much past their limits.
    eprintln!(
        "hostile targets sent {} MiB in all; peak RSS {} MiB",
        sent >> 20,
        peak >> 20
    );
}

/// Discovery files that attack the agent: a YAML alias bomb (one 1 MiB string
/// referenced 3,000 times: 3 GiB if expanded), a FIFO nobody writes to, binary garbage,
/// beside a good file. The good file's target is discovered and scraped, memory stays
/// bounded, the API answers, the three read errors are counted, and replacing the bomb
/// with a good document is picked up (the provider was not stuck). `extra` checks what
/// only that shell has, after the errors were counted.
pub(crate) fn hostile_discovery_files_are_refused_and_the_rest_goes_on(
    dir: &Path,
    start: Start<'_>,
    extra: &mut dyn FnMut(&dyn Shell),
) {
    let (_nginx, addrs, sd) = fleet(dir, 29..=30, 10);
    std::fs::write(
        sd.join("good.json"),
        format!("[{{\"targets\": [\"{}\"]}}]", addrs[0]),
    )
    .expect("good");
    let mut bomb = format!(
        "- labels: {{a: &big \"{}\"}}\n  targets: []\n",
        "x".repeat(1 << 20)
    );
    for _ in 0..3000 {
        bomb.push_str("- targets: [\"h:1\"]\n  labels: {a: *big}\n");
    }
    std::fs::write(sd.join("bomb.yml"), &bomb).expect("bomb");
    let fifo = sd.join("pipe.json");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    std::fs::write(sd.join("garbage.json"), [0xffu8, 0xfe, 0, 1, 2, 3]).expect("garbage");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n- job_name: files\n  scrape_interval: 500ms\n  file_sd_configs: [{{files: [\"{d}/*.json\", \"{d}/*.yml\"], refresh_interval: 1s}}]\n",
            d = sd.display()
        ),
    )
    .expect("config");
    let mut t = start(dir, &cfg, &dir.join("data"));
    eventually(Duration::from_secs(15), "the good file's target up", || {
        t.active().iter().any(|x| x.1 == addrs[0] && x.2 == "up")
    });
    let peak = watch_memory_and_api(&*t, Duration::from_secs(3));
    assert!(
        peak < 150 << 20,
        "resident memory reached {} MiB",
        peak >> 20
    );
    eventually(Duration::from_secs(10), "three read errors counted", || {
        t.metrics()
            .lines()
            .find_map(|l| l.strip_prefix("prometheus_sd_file_read_errors_total "))
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|v| v >= 3.0)
    });
    extra(&*t);
    // The bomb replaced by a good document: picked up.
    std::fs::write(
        sd.join("bomb.yml"),
        format!("- targets: [\"{}\"]\n", addrs[1]),
    )
    .expect("fix");
    eventually(
        Duration::from_secs(15),
        "the fixed file's target up",
        || t.active().iter().any(|x| x.1 == addrs[1] && x.2 == "up"),
    );
    t.stop().expect("a clean stop");
}

/// Issue 16: a decompression bomb within its job's limit (256 MiB of text in about
/// 256 KiB of gzip). The agent parses it in slices, so the API keeps answering and the
/// healthy target beside it loses no scrape; memory stays bounded; the bomb's scrape
/// succeeds and its `scrape_duration_seconds` includes the parsing.
pub(crate) fn a_decompression_bomb_is_parsed_in_slices(dir: &Path, start: Start<'_>) {
    use super::hostile::{Misbehaviour, gzip_bomb, hostile};
    let (_nginx, addrs, _) = fleet(dir, 32..=32, 20);
    let bomb = hostile("127.0.0.31", Misbehaviour::Gzip(gzip_bomb(256)));
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n\
             - job_name: good\n  scrape_interval: 500ms\n  static_configs: [{{targets: [\"{}\"]}}]\n\
             - job_name: bomb\n  scrape_interval: 15s\n  scrape_timeout: 10s\n  body_size_limit: 1GB\n  static_configs: [{{targets: [\"{}\"]}}]\n",
            addrs[0], bomb.addr
        ),
    )
    .expect("config");
    let data = dir.join("data");
    let mut t = start(dir, &cfg, &data);
    eventually(Duration::from_secs(20), "the bomb requested", || {
        bomb.requests.load(std::sync::atomic::Ordering::SeqCst) > 0
    });
    let began = std::time::Instant::now();
    let peak = watch_memory_and_api(&*t, Duration::from_secs(6));
    assert!(
        peak < 150 << 20,
        "resident memory reached {} MiB",
        peak >> 20
    );
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while pool_health_of(&*t, "bomb") != "up" {
        assert!(
            std::time::Instant::now() < end,
            "the bomb was not scraped: {:?} {:?}",
            pool_health_of(&*t, "bomb"),
            pool_error_of(&*t, "bomb")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let watched = began.elapsed();
    t.stop().expect("a clean stop");
    let d = dump(&data);
    let ups = series(&d, "up", &addrs[0]).len() as u128;
    assert!(
        ups >= watched.as_millis() / 500,
        "{ups} scrapes of the healthy target in {watched:?}"
    );
    let took = series(&d, "scrape_duration_seconds", &bomb.addr);
    let took: f64 = took
        .first()
        .and_then(|x| x.0.parse().ok())
        .expect("the bomb's scrape duration");
    let scraped = series(&d, "scrape_samples_scraped", &bomb.addr);
    assert_eq!(
        scraped.first().and_then(|x| x.0.parse::<f64>().ok()),
        Some(((256usize << 20) / 14) as f64),
        "every line counted"
    );
    eprintln!("the bomb's scrape took {took} s");
    assert!(took > 0.05, "a 256 MiB parse took {took} s");
}

/// How a DNS scenario starts the agent: (dir, config, data, resolv.conf, name servers'
/// port).
pub(crate) type StartDns<'a> = &'a mut dyn FnMut(&Path, &Path, &Path, &Path, u16) -> Box<dyn Shell>;

fn instances_of(t: &dyn Shell, pool: &str) -> Vec<String> {
    t.active()
        .into_iter()
        .filter(|x| x.0 == pool)
        .map(|x| x.1)
        .collect()
}

fn metric_value(t: &dyn Shell, name: &str) -> f64 {
    t.metrics()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(-1.0)
}

/// DNS discovery against BIND: SRV and A records (the A name through the search
/// domain) become targets that are scraped; a record added with `nsupdate` shows within a
/// refresh, one deleted goes; when the server stops answering, lookups fail, are counted,
/// and the targets stay.
pub(crate) fn dns_changes_reach_the_targets(dir: &Path, start: StartDns<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 20..=23, 5);
    let host = |a: &str| a.split(':').next().unwrap_or_default().to_owned();
    let port = addrs[0].rsplit(':').next().unwrap_or_default().to_owned();
    let records = format!(
        "_prom._tcp IN SRV 0 0 {port} {}.\n_prom._tcp IN SRV 0 0 {port} {}.\nweb IN A {}\n",
        host(&addrs[0]),
        host(&addrs[1]),
        host(&addrs[2])
    );
    let mut named = dns::named(dir, &records);
    let resolv = named.resolv_conf(
        dir,
        &["127.0.0.1"],
        "search trawl.test\noptions timeout:1 attempts:1\n",
    );
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: srv\n    dns_sd_configs: [{{names: [_prom._tcp.trawl.test], refresh_interval: 1s}}]\n  - job_name: a\n    dns_sd_configs: [{{names: [web], type: A, port: {port}, refresh_interval: 1s}}]\n"
        ),
    )
    .expect("config");
    let mut t = start(dir, &cfg, &dir.join("data"), &resolv, named.port);
    eventually(Duration::from_secs(15), "SRV and A targets up", || {
        let a = t.active();
        a.len() == 3 && a.iter().all(|x| x.2 == "up")
    });
    assert_eq!(
        instances_of(&*t, "srv"),
        [addrs[0].clone(), addrs[1].clone()]
    );
    assert_eq!(instances_of(&*t, "a"), [addrs[2].clone()]);
    // The labels 3.x gives, in the API.
    let j = t.targets_json();
    assert!(
        j.contains("\"__meta_dns_srv_record_target\":\"127.0.0.20.\"")
            && j.contains("\"__meta_dns_name\":\"_prom._tcp.trawl.test\"")
            && j.contains(&format!("\"__meta_dns_srv_record_port\":\"{port}\"")),
        "{j}"
    );
    // A record added while trawl runs.
    named.update(&format!(
        "update add _prom._tcp.{} 1 SRV 0 0 {port} {}.",
        dns::ZONE,
        host(&addrs[3])
    ));
    eventually(Duration::from_secs(5), "the added SRV target", || {
        instances_of(&*t, "srv").contains(&addrs[3])
    });
    // And one deleted.
    named.update(&format!(
        "update delete _prom._tcp.{} SRV 0 0 {port} {}.",
        dns::ZONE,
        host(&addrs[0])
    ));
    eventually(
        Duration::from_secs(5),
        "the deleted SRV target gone",
        || !instances_of(&*t, "srv").contains(&addrs[0]),
    );
    let lookups = metric_value(&*t, "prometheus_sd_dns_lookups_total");
    assert!(lookups >= 4.0, "{lookups}\n{}", t.metrics());
    assert_eq!(
        metric_value(&*t, "prometheus_sd_dns_lookup_failures_total"),
        0.0,
        "{}",
        t.log()
            .lines()
            .filter(|l| l.contains("discovery"))
            .collect::<Vec<_>>()
            .join("\n")
            + &std::fs::read_to_string(named.dir.join("named.log")).unwrap_or_default()
    );
    // The server goes away: lookups fail and are counted; the targets stay.
    stop_proc(&mut named.proc);
    eventually(Duration::from_secs(10), "failed lookups counted", || {
        metric_value(&*t, "prometheus_sd_dns_lookup_failures_total") >= 2.0
    });
    assert_eq!(instances_of(&*t, "srv").len(), 2, "{:?}", t.active());
    assert_eq!(instances_of(&*t, "a"), [addrs[2].clone()]);
    if let Err(e) = t.stop() {
        panic!("{e}:\n{}", t.log());
    }
}

/// Starts a shell for [`names_resolve_through_the_resolver`]: configuration, data
/// directory, resolv.conf, name servers' port and hosts file.
pub(crate) type StartResolving<'a> =
    &'a mut dyn FnMut(&Path, &Path, &Path, &Path, u16, &Path) -> Box<dyn Shell>;

/// Issue 17 (§4): scrape targets' names go through the core's resolver, as DNS
/// discovery's do: the hosts file first (it wins over DNS), then A records from a real
/// BIND, every address tried in order (the first one refuses, the second serves: in the
/// hosts file, whose order is fixed, and in DNS, whose order BIND may rotate), and a
/// name nobody knows is Go's "no such host" naming the server asked.
pub(crate) fn names_resolve_through_the_resolver(dir: &Path, start: StartResolving<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 24..=25, 3);
    let host = |a: &str| a.split(':').next().unwrap_or_default().to_owned();
    let port = addrs[0].rsplit(':').next().unwrap_or_default().to_owned();
    // 127.0.0.30 and .31 have nothing on the port: connections there are refused.
    let records = format!(
        "multi IN A 127.0.0.30\nmulti IN A {}\nboth IN A 127.0.0.31\n",
        host(&addrs[0])
    );
    let named = dns::named(dir, &records);
    let resolv = named.resolv_conf(dir, &["127.0.0.1"], "options timeout:1 attempts:1\n");
    let hosts = dir.join("hosts");
    std::fs::write(
        &hosts,
        format!(
            "# test hosts\n{h} pinned.local\n{h} both.trawl.test\n127.0.0.30 twice.local\n{h} twice.local\n",
            h = host(&addrs[1])
        ),
    )
    .expect("hosts");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: names\n    static_configs: [{{targets: ['multi.trawl.test:{port}', 'pinned.local:{port}', 'both.trawl.test:{port}', 'nowhere.trawl.test:{port}', 'twice.local:{port}']}}]\n"
        ),
    )
    .expect("config");
    let mut t = start(dir, &cfg, &dir.join("data"), &resolv, named.port, &hosts);
    let want = |name: &str, health: &str| {
        (
            "names".to_owned(),
            format!("{name}:{port}"),
            health.to_owned(),
        )
    };
    let expected = vec![
        want("both.trawl.test", "up"),
        want("multi.trawl.test", "up"),
        want("nowhere.trawl.test", "down"),
        want("pinned.local", "up"),
        want("twice.local", "up"),
    ];
    eventually(
        Duration::from_secs(15),
        "names resolved and scraped",
        || t.active() == expected,
    );
    let v: serde_json::Value = serde_json::from_str(&t.targets_json()).expect("JSON");
    let nowhere = v["data"]["activeTargets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|x| x["labels"]["instance"] == format!("nowhere.trawl.test:{port}"))
        .expect("nowhere target")["lastError"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        nowhere,
        format!(
            "Get \"http://nowhere.trawl.test:{port}/metrics\": dial tcp: lookup nowhere.trawl.test on 127.0.0.1:{}: no such host",
            named.port
        ),
        "{}",
        t.log()
    );
    t.stop().expect("clean stop");
}
