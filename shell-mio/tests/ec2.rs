//! EC2 discovery end to end against moto in server mode (`common::ec2`): the daemon
//! following instances through botocore-checked signatures (the scenario trawl-tokio
//! runs too), and `trawl sd` discovering, label for label, what Prometheus 2.42
//! discovers from the same moto.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::ec2::*;
use common::receivers::{http_get, prometheus};
use common::*;

#[test]
fn instances_are_followed_through_the_daemon() {
    let d = TempDir::new("ec2-daemon");
    ec2_instances_follow_moto(&d.0, &mut daemon);
    let log = log_of(&d.0);
    assert!(
        log.contains("jobs=ec2-wrong-key")
            && log.contains("api error AuthFailure: AWS was not able to validate"),
        "the refusals are logged with the job and AWS's code:\n{log}"
    );
}

/// `__address__` and the `__meta_ec2_*` labels of each target, by instance id.
fn discovered(targets: &serde_json::Value) -> BTreeMap<String, BTreeMap<String, String>> {
    targets
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| {
            let l: BTreeMap<String, String> = t["discoveredLabels"]
                .as_object()
                .expect("labels")
                .iter()
                .filter(|(k, _)| k.starts_with("__meta_ec2_") || *k == "__address__")
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            (l["__meta_ec2_instance_id"].clone(), l)
        })
        .collect()
}

#[test]
fn trawl_sd_discovers_what_prometheus_discovers() {
    let d = TempDir::new("ec2-sd");
    let moto = Moto::start(&d.0);
    let front = Front::start(&d.0, moto.port);
    for (env, lo) in [
        ("prod", "127.0.0.2"),
        ("prod", "127.0.0.3"),
        ("dev", "127.0.0.4"),
    ] {
        moto.run(&[("env", env), ("loopback", lo), ("odd key.with-dots", "v")]);
    }
    let gone = moto.run(&[("env", "prod"), ("loopback", "127.0.0.5")]);
    moto.terminate(&gone);
    // Every target goes to loopback port 1, where nothing listens: no address moto hands
    // out is ever dialled.
    let job = |endpoint: u16, secret: &str| {
        format!(
            "  - job_name: ec2\n    scrape_interval: 1h\n    ec2_sd_configs:\n      - {{region: us-east-1, endpoint: 'http://127.0.0.1:{endpoint}', access_key: {ACCESS_KEY}, secret_key: '{secret}', port: 9100, filters: [{{name: 'tag:env', values: [prod]}}]}}\n    relabel_configs:\n      - {{source_labels: [__meta_ec2_tag_loopback], target_label: __address__, replacement: '${{1}}:1'}}\n"
        )
    };
    let cfg = d.0.join("trawl.yml");
    std::fs::write(
        &cfg,
        format!("scrape_configs:\n{}", job(front.port, SECRET_KEY)),
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trawl"))
        .arg("sd")
        .arg(format!("--config.file={}", cfg.display()))
        .output()
        .expect("trawl sd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let ours = discovered(&v["activeTargets"]);
    assert_eq!(
        ours.len(),
        3,
        "two prod instances running, one terminated: {ours:#?}"
    );
    assert!(
        front.lines().iter().all(|l| l == "ok"),
        "{:?}",
        front.lines()
    );

    // Prometheus 2.42 asks moto directly (its aws-sdk-go v1 signs; moto checks nothing).
    let pcfg = d.0.join("prometheus.yml");
    std::fs::write(&pcfg, format!("scrape_configs:\n{}", job(moto.port, "any"))).expect("config");
    let pport = free_port();
    let _p = prometheus(
        pport,
        &[
            format!("--config.file={}", pcfg.display()),
            format!("--storage.tsdb.path={}", d.0.join("tsdb").display()),
        ],
    );
    let mut theirs = BTreeMap::new();
    eventually(Duration::from_secs(60), "Prometheus discovers", || {
        let Some((200, body)) = http_get(pport, "/api/v1/targets") else {
            return false;
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        theirs = discovered(&v["data"]["activeTargets"]);
        theirs.len() == 3
    });
    // 2.42 shows the address after relabelling among the discovered labels (3.x shows
    // the discovered one, as trawl does): every other label is compared.
    for (id, mut l) in ours {
        let addr = l.remove("__address__");
        assert_eq!(addr, Some(format!("{}:9100", l["__meta_ec2_private_ip"])));
        let mut t = theirs.get(&id).cloned().unwrap_or_default();
        t.remove("__address__");
        assert_eq!(l, t, "{id}");
    }
}
