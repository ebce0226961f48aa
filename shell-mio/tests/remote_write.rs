//! Remote write end to end, against real receivers on loopback: VictoriaMetrics
//! single-node (`victoria-metrics`, Debian's 1.79) and Prometheus 2.42 with
//! `--web.enable-remote-write-receiver`. trawl scrapes an nginx fleet; what its own WAL
//! holds (`promtool tsdb dump`) is what each receiver must end up with.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::receivers::*;
use common::*;

fn stop(t: &mut Proc) {
    signal(t, "TERM");
    assert!(wait_exit(t, Duration::from_secs(30)).success());
}

#[test]
fn every_sample_in_the_wal_reaches_victoriametrics_and_prometheus() {
    let d = TempDir::new("rw");
    scenario::remote_write_reaches_both_receivers(&d.0, &mut |dir, cfg, data| {
        Box::new(Daemon::start(dir, cfg, data))
    });
    assert!(
        log_of(&d.0).contains("remote write queue started"),
        "{}",
        log_of(&d.0)
    );
}

#[test]
fn an_outage_and_a_kill_9_lose_nothing_the_wal_holds() {
    let d = TempDir::new("rw-outage");
    let (_nginx, addrs, _sd) = fleet(&d.0, 31..=33, 10);
    let vm_port = free_port();
    let cfg = config(
        &d.0,
        &addrs,
        &[format!("http://127.0.0.1:{vm_port}/api/v1/write")],
    );
    let web = free_port();
    let data = d.0.join("data");
    // The receiver is down: trawl scrapes and keeps everything in its WAL.
    let mut t = trawl(&d.0, &cfg, &data, web);
    eventually(Duration::from_secs(15), "targets up", || {
        let a = active(web);
        a.len() == 3 && a.iter().all(|x| x.2 == "up")
    });
    std::thread::sleep(Duration::from_secs(3));
    let m = api(web, "GET", "/metrics").expect("metrics").1;
    assert!(m.contains("prometheus_remote_storage_samples_retried_total{remote_name=\"r0\""));
    // Killed during the outage, started again: the progress file says what was sent.
    signal(&t, "KILL");
    let _ = wait_exit(&mut t, Duration::from_secs(10));
    let mut t = trawl(&d.0, &cfg, &data, web);
    std::thread::sleep(Duration::from_secs(2));
    // The receiver comes up.
    let _vm = victoria(&d.0.join("vm"), vm_port);
    std::thread::sleep(Duration::from_secs(4));
    stop(&mut t);
    let (all, _) = wal_counts(&data);
    eventually(
        Duration::from_secs(30),
        "VictoriaMetrics has everything",
        || {
            let vm = vm_counts(vm_port);
            // Every series, and at least every sample (a batch in flight at the kill may
            // come twice; VictoriaMetrics keeps duplicates).
            vm.len() == all.len() && all.iter().all(|(k, n)| vm.get(k).is_some_and(|m| m >= n))
        },
    );
    let vm = vm_counts(vm_port);
    let extra: usize = vm.values().sum::<usize>() - all.values().sum::<usize>();
    assert!(extra <= 2000, "duplicates beyond the last batches: {extra}");
}

/// Resident memory of a running process, in bytes (`VmRSS`).
fn rss(p: &Proc) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", p.0.id())).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[test]
fn both_receivers_stopped_for_a_minute_get_everything_and_memory_stays_flat() {
    let d = TempDir::new("rw-minute");
    let (_nginx, addrs, _sd) = fleet(&d.0, 51..=58, 500);
    let (vm_port, prom_port) = (free_port(), free_port());
    let (vm_dir, prom_dir) = (d.0.join("vm"), d.0.join("prom"));
    let mut vm = victoria(&vm_dir, vm_port);
    let mut prom = prometheus_receiver(&prom_dir, prom_port);
    let cfg = config(
        &d.0,
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
    let web = free_port();
    let data = d.0.join("data");
    let mut t = trawl(&d.0, &cfg, &data, web);
    eventually(Duration::from_secs(15), "targets up", || {
        let a = active(web);
        a.len() == 8 && a.iter().all(|x| x.2 == "up")
    });
    std::thread::sleep(Duration::from_secs(3));
    // Both receivers stop for a minute.
    stop(&mut vm);
    stop(&mut prom);
    let mut samples = Vec::new();
    let mut pending_max = 0.0f64;
    for _ in 0..60 {
        std::thread::sleep(Duration::from_secs(1));
        samples.push(rss(&t));
        for q in ["r0", "r1"] {
            pending_max = pending_max.max(metric_of(
                web,
                "prometheus_remote_storage_samples_pending",
                q,
            ));
        }
    }
    let retried = metric_of(web, "prometheus_remote_storage_samples_retried_total", "r1");
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
            let sent = metric_of(
                web,
                "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
                q,
            );
            now - sent < 3.0
        })
    });
    std::thread::sleep(Duration::from_secs(2));
    stop(&mut t);
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
    let early = samples[2..12].iter().copied().max().unwrap_or(0);
    let late = samples[40..].iter().copied().max().unwrap_or(0);
    assert!(
        late <= early + early / 5 + (2 << 20),
        "RSS grew with the backlog: {early} B early in the outage, {late} B at its end ({samples:?})"
    );
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

/// Asks `fetch` until `ok` holds or `max` has passed; the last answer.
fn settle(
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
fn shortfall(want: &BTreeMap<String, usize>, got: &BTreeMap<String, usize>) -> String {
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

/// A metric's value in trawl's `/metrics` for the queue `queue`.
fn metric_of(web: u16, name: &str, queue: &str) -> f64 {
    let m = api(web, "GET", "/metrics").expect("metrics").1;
    m.lines()
        .find(|l| l.starts_with(&format!("{name}{{remote_name=\"{queue}\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

#[test]
fn errors_are_retried_and_a_refused_batch_is_the_only_loss() {
    let d = TempDir::new("rw-faults");
    scenario::errors_are_retried_and_a_refused_batch_is_the_only_loss(
        &d.0,
        &mut |dir, cfg, data| Box::new(Daemon::start(dir, cfg, data)),
    );
    // The daemon logs the refusal (trawl-tokio's host decides where logs go).
    assert!(log_of(&d.0).contains("refused a batch for good"));
}

#[test]
fn three_instances_share_a_fleet_of_300_targets() {
    let d = TempDir::new("rw-scale");
    let port = free_port();
    let addrs: Vec<String> = (0..300)
        .map(|i| format!("127.2.{}.{}:{port}", i / 200, i % 200 + 1))
        .collect();
    let _nginx = nginx(&d.0, &addrs);
    std::fs::write(d.0.join("www/metrics"), body(2)).expect("metrics");
    let vm_port = free_port();
    let _vm = victoria(&d.0.join("vm"), vm_port);
    std::fs::create_dir_all(d.0.join("targets")).expect("targets dir");
    let list: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    std::fs::write(
        d.0.join("targets/fleet.json"),
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
        let cfg = d.0.join(format!("shard-{i}.yml"));
        let text = recipe
            .replace("SHARD_INDEX", &i.to_string())
            .replace("SHARD_COUNT", "3")
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("127.0.0.1:8428", &format!("127.0.0.1:{vm_port}"));
        std::fs::write(&cfg, text).expect("shard config");
        let web = free_port();
        let dir = d.0.join(format!("i{i}"));
        std::fs::create_dir_all(&dir).expect("instance dir");
        let t = trawl(&dir, &cfg, &d.0.join(format!("data-{i}")), web);
        instances.push((t, web));
    }
    // Every target scraped by exactly one instance.
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    eventually(
        Duration::from_secs(30),
        "300 targets up across 3 instances",
        || {
            owners.clear();
            let mut up = 0;
            for (i, (_, web)) in instances.iter().enumerate() {
                for (_, instance, health) in active(*web) {
                    *owners.entry(instance).or_default() += 1;
                    up += usize::from(health == "up");
                    let _ = i;
                }
            }
            up == 300
        },
    );
    assert_eq!(owners.len(), 300);
    assert!(owners.values().all(|&n| n == 1), "a target scraped twice");
    for (_, web) in &instances {
        let n = active(*web).len();
        assert!(
            (60..=140).contains(&n),
            "an instance has {n} of 300 targets"
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    for (t, _) in &mut instances {
        stop(t);
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

#[test]
fn metadata_goes_out_in_metadata_only_requests() {
    let d = TempDir::new("rw-meta");
    scenario::metadata_goes_out_in_metadata_only_requests(&d.0, &mut |dir, cfg, data| {
        Box::new(Daemon::start(dir, cfg, data))
    });
}
