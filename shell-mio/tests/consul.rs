//! Consul discovery end to end against the fake Consul agent (`trawl_tests::consul`,
//! checked with a real Consul client in `tests/tests/consul_fake.rs`): the catalog
//! followed through the daemon (the scenario trawl-tokio runs too), `trawl sd` answering
//! from the first answers without waiting on blocking queries, and a Consul that answers
//! garbage.

mod common;

use std::process::Command;
use std::time::Duration;

use common::consul::*;
use common::kube::sample;
use common::*;
use trawl_tests::consul::server::ConsulServer;

#[test]
fn the_catalog_is_followed_through_the_daemon() {
    let d = TempDir::new("consul-daemon");
    consul_services_follow_the_catalog(&d.0, &mut daemon);
}

#[test]
fn trawl_sd_answers_from_the_first_answers() {
    let d = TempDir::new("consul-sd");
    let consul = ConsulServer::start(catalog(9100));
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(&cfg, minimal_config(&consul.addr().to_string())).expect("config");
    let t0 = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .arg("sd")
        .arg(format!("--config.file={}", cfg.display()))
        .output()
        .expect("trawl sd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not held by a blocking query (each waits 2 minutes).
    assert!(t0.elapsed() < Duration::from_secs(60));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut got: Vec<(String, String)> = v["activeTargets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| {
            (
                t["discoveredLabels"]["__meta_consul_service"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                t["labels"]["instance"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("consul".to_owned(), "127.0.0.1:8300".to_owned()),
            ("db".to_owned(), "127.0.0.4:9100".to_owned()),
            ("web".to_owned(), "127.0.0.2:9100".to_owned()),
            ("web".to_owned(), "127.0.0.3:9100".to_owned()),
        ]
    );
    let reqs = consul.requests();
    assert_eq!(reqs[0].path, "/v1/agent/self");
    assert!(reqs.iter().all(|q| q.index() == 0), "no blocking query");
}

/// A "Consul" that answers garbage, then recovers: every failure counted and logged
/// with the job, the targets of the last good answer kept throughout.
#[test]
fn garbage_answers_are_counted_and_the_last_targets_kept() {
    let d = TempDir::new("consul-garbage");
    let (_nginx, addrs, _) = fleet(&d.0, 2..=4, 3);
    let port = port_of(&addrs[0]);
    let consul = ConsulServer::start(catalog(port));
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: listed\n    consul_sd_configs: [{{server: '{}', datacenter: dc-test, services: [web], refresh_interval: 1s}}]\n",
            consul.addr()
        ),
    )
    .expect("config");
    let t = daemon(&d.0, &cfg, &d.0.join("data"));
    let up = |t: &dyn Shell| t.active().iter().filter(|x| x.2 == "up").count();
    eventually(Duration::from_secs(20), "web up", || up(&*t) == 2);
    // A proxy's HTML page with an index (woken by the check change), then answers
    // without their index: 15 s apart.
    consul.fail_next(1, 200, "<html>proxy error</html>");
    consul.with(|c| c.set_check("n1", "web-1", "service:web-1", "warning"));
    eventually(Duration::from_secs(20), "the page refused", || {
        sample(&*t, "prometheus_sd_consul_rpc_failures_total").unwrap_or(0.0) >= 1.0
    });
    // A watch blocks until something changes: a check flips every 2 s, and each
    // answer it wakes has no index.
    consul.drop_index_header(true);
    let mut polls = 0u32;
    eventually(Duration::from_secs(90), "three failures", || {
        polls += 1;
        if polls.is_multiple_of(40) {
            let st = if polls.is_multiple_of(80) {
                "passing"
            } else {
                "warning"
            };
            consul.with(|c| c.set_check("n2", "web-2", "service:web-2", st));
        }
        sample(&*t, "prometheus_sd_consul_rpc_failures_total").unwrap_or(0.0) >= 3.0
    });
    assert_eq!(up(&*t), 2, "the last good targets stay");
    let log = t.log();
    assert!(log.contains("listed"), "the job is named:\n{log}");
    assert!(log.contains("Error refreshing service web"), "{log}");
    assert!(log.contains("X-Consul-Index"), "{log}");
    assert!(log.contains("decoding the answer"), "{log}");
    consul.drop_index_header(false);
    consul.with(|c| c.deregister("n2", "web-2"));
    eventually(Duration::from_secs(60), "recovered", || up(&*t) == 1);
}
