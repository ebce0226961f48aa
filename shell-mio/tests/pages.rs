//! The daemon's pages in a real headless browser (Debian's Chromium through its
//! chromedriver): they load, the filters work, a dropped target shows the rule that
//! dropped it and its relabel steps, and a screenshot of each page is kept
//! (`target/screenshots/`, or `$TRAWL_SCREENSHOTS`; CI keeps them as artifacts).

mod common;

use std::time::Duration;

use common::browser::browser;
use common::receivers::*;
use common::*;

#[test]
fn pages_load_filter_and_explain_dropped_targets_in_a_browser() {
    let d = TempDir::new("pages");
    let Some(b) = browser(&d.0.join("chromium")) else {
        return;
    };
    let (_nginx, addrs, _) = fleet(&d.0, 2..=4, 5);
    let recv_port = free_port();
    let _recv = prometheus_server(&d.0.join("recv"), recv_port, None, "native-histograms");
    let down = format!("127.0.0.1:{}", free_port());
    let config = d.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 900ms}}\n\
             scrape_configs:\n\
             - job_name: web\n  basic_auth: {{username: u, password: hunter2}}\n  relabel_configs:\n\
             \x20 - {{source_labels: [__address__], regex: 'drop\\..*', action: drop}}\n\
             \x20 static_configs: [{{targets: ['{}', '{}', 'drop.me:80'], labels: {{team: blue}}}}]\n\
             - job_name: db\n  static_configs: [{{targets: ['{}', '{down}']}}]\n\
             remote_write: [{{url: 'http://127.0.0.1:{recv_port}/api/v1/write', name: recv}}]\n",
            addrs[0], addrs[1], addrs[2]
        ),
    )
    .expect("config");
    let t = Daemon::start(&d.0, &config, &d.0.join("data"));
    let base = format!("http://127.0.0.1:{}", t.web);
    eventually(Duration::from_secs(30), "targets scraped", || {
        let j = t.targets_json();
        j.matches("\"health\":\"up\"").count() == 3 && j.contains("\"health\":\"down\"")
    });

    // The home page is the targets page: four targets in two pools, open.
    b.go(&format!("{base}/"));
    assert!(b.url().ends_with("/targets"), "{}", b.url());
    assert_eq!(b.find_all("tr.target").len(), 4);
    assert!(
        b.text(&b.find("#summary"))
            .starts_with("4 targets in 2 pools: 3 up, 1 down")
    );
    assert_eq!(b.find_all("details.pool[open]").len(), 2);
    let err = b.text(&b.find("tr.target[data-health=down] td.error"));
    assert!(err.contains("connection refused"), "{err}");
    b.screenshot("targets");

    // Filters: health from the menu (submitted on change), text from the box.
    b.click(&b.find("#health option[value=down]"));
    b.until(Duration::from_secs(10), "the health filter", |b| {
        b.url().contains("health=down")
    });
    let rows = b.find_all("tr.target");
    assert_eq!(rows.len(), 1);
    assert!(b.text(&rows[0]).contains(&down));
    b.go(&format!("{base}/targets"));
    let search = b.find("#search");
    b.type_into(&search, &addrs[1]);
    b.click(&b.find("form.filter button"));
    b.until(Duration::from_secs(10), "the text filter", |b| {
        b.url().contains("search=")
    });
    let rows = b.find_all("tr.target");
    assert_eq!(rows.len(), 1, "{}", b.url());
    assert!(b.text(&rows[0]).contains("team=\"blue\""));
    b.go(&format!("{base}/targets"));
    b.click(&b.find("#pool option[value=db]"));
    b.until(Duration::from_secs(10), "the pool filter", |b| {
        b.url().contains("pool=db")
    });
    assert_eq!(b.find_all("details.pool").len(), 1);
    b.screenshot("targets-filtered");

    // Service discovery: the dropped target names its rule; its steps show the drop.
    b.go(&format!("{base}/service-discovery"));
    let dropped = b.find("tr.dropped-target");
    let text = b.text(&dropped);
    assert!(
        text.contains("drop.me:80") && text.contains("relabel_configs[0]"),
        "{text}"
    );
    assert!(text.contains("action: drop"), "{text}");
    assert_eq!(b.find_all("tr.active").len(), 4);
    b.screenshot("service-discovery");
    b.click(&b.find("tr.dropped-target a.steps"));
    b.until(Duration::from_secs(10), "the relabel steps", |b| {
        !b.find_all("#steps tr.step").is_empty()
    });
    let steps = b.find_all("#steps tr.step");
    assert_eq!(steps.len(), 1);
    assert!(
        b.text(&steps[0]).contains("dropped"),
        "{}",
        b.text(&steps[0])
    );
    b.screenshot("relabel-steps");

    // Configuration (secrets hidden), flags, status with the queue.
    b.go(&format!("{base}/config"));
    let cfg = b.text(&b.find("#config"));
    assert!(
        cfg.contains("job_name: web") && cfg.contains("<secret>"),
        "{cfg}"
    );
    assert!(!cfg.contains("hunter2"));
    b.screenshot("config");
    b.go(&format!("{base}/flags"));
    assert!(b.text(&b.find("#flags")).contains("web.listen-address"));
    b.screenshot("flags");
    eventually(Duration::from_secs(30), "samples sent", || {
        http_get(t.web, "/metrics").is_some_and(|(_, m)| {
            m.lines().any(|l| {
                l.starts_with("prometheus_remote_storage_samples_total{") && !l.ends_with(" 0")
            })
        })
    });
    b.go(&format!("{base}/status"));
    assert!(
        b.text(&b.find("#build"))
            .contains(env!("CARGO_PKG_VERSION"))
    );
    let queues = b.text(&b.find("#queues"));
    assert!(
        queues.contains("recv") && !queues.contains("none yet"),
        "{queues}"
    );
    assert!(b.text(&b.find("#wal")).contains("Segment being written"));
    b.screenshot("status");
}

/// A configuration of 10 pools × 1,000 static targets that are never answered (1h
/// interval, ports on 127.1.x.y where nothing listens), in `dir`.
fn ten_thousand_targets(dir: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("prometheus.yml");
    let mut yaml = String::from("global: {scrape_interval: 1h}\nscrape_configs:\n");
    for job in 0..10 {
        yaml.push_str(&format!(
            "- job_name: pool{job}\n  static_configs: [{{targets: ["
        ));
        for i in 0..1000 {
            yaml.push_str(&format!("'127.1.{job}.{}:{}',", i % 250, 9000 + i / 250));
        }
        yaml.push_str("]}]\n");
    }
    std::fs::write(&config, yaml).expect("config");
    config
}

/// 10,000 targets: the page comes closed per pool, and opening one shows its targets.
/// (How long the page takes is measured by `benches/pages.sh`, not asserted here.)
#[test]
fn ten_thousand_targets_come_in_closed_pools() {
    let d = TempDir::new("pages-10k");
    let Some(b) = browser(&d.0.join("chromium")) else {
        return;
    };
    let config = ten_thousand_targets(&d.0);
    let t = Daemon::start(&d.0, &config, &d.0.join("data"));
    eventually(Duration::from_secs(60), "10,000 targets", || {
        t.targets_json().matches("\"scrapePool\"").count() >= 10_000
    });
    b.go(&format!("http://127.0.0.1:{}/targets", t.web));
    assert!(
        b.text(&b.find("#summary"))
            .starts_with("10000 targets in 10 pools")
    );
    assert_eq!(b.find_all("details.pool").len(), 10);
    assert!(
        b.find_all("details.pool[open]").is_empty(),
        "closed for a large fleet"
    );
    b.click(&b.find("#pool-pool3 > summary"));
    assert_eq!(b.find_all("details.pool[open]").len(), 1);
    let visible = b.js(
        "return [...document.querySelectorAll('#pool-pool3 tr.target')].filter(r => r.offsetParent !== null).length",
    );
    assert_eq!(visible, 1000);
    b.screenshot("targets-10k");
}

/// The benchmark behind `benches/README.md`'s page figures (run by hand:
/// `cargo test --release -p trawl-mio --test pages -- --ignored --nocapture`): the
/// targets page for 10,000 targets in trawl and in Prometheus 2.42 on the same
/// configuration (its classic page, the one Debian packages), in the same headless
/// Chromium, five loads each; prints the median time from navigation to the load event.
#[test]
#[ignore = "a measurement, not a check: run by hand"]
fn measure_ten_thousand_target_pages() {
    let d = TempDir::new("pages-bench");
    let Some(b) = browser(&d.0.join("chromium")) else {
        return;
    };
    let config = ten_thousand_targets(&d.0);
    let t = Daemon::start(&d.0, &config, &d.0.join("data"));
    let prom = free_port();
    let _p = prometheus(
        prom,
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", d.0.join("tsdb").display()),
        ],
    );
    eventually(Duration::from_secs(60), "both have 10,000 targets", || {
        t.targets_json().matches("\"scrapePool\"").count() >= 10_000
            && http_get(prom, "/api/v1/targets?state=active")
                .is_some_and(|(_, j)| j.matches("\"scrapePool\"").count() >= 10_000)
    });
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let load = "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime;";
    let mut ours = Vec::new();
    for _ in 0..5 {
        b.go(&format!("http://127.0.0.1:{}/targets", t.web));
        ours.push(b.js(load).as_f64().unwrap_or(f64::NAN));
    }
    // Debian's Prometheus 2.42 serves its classic, server-rendered pages (its React UI
    // is not packaged): the same kind of page as trawl's.
    let mut theirs = Vec::new();
    for _ in 0..5 {
        b.go(&format!("http://127.0.0.1:{prom}/classic/targets"));
        theirs.push(b.js(load).as_f64().unwrap_or(f64::NAN));
    }
    eprintln!(
        "targets page, 10,000 targets, navigation to load event: trawl {:.0} ms, Prometheus 2.42 (classic) {:.0} ms; runs {ours:?} {theirs:?}",
        median(ours.clone()),
        median(theirs.clone())
    );
}
