//! Lightsail discovery end to end against the fake Lightsail (`common::lightsail`): the
//! daemon following the fleet through botocore-checked signatures (the scenario
//! trawl-tokio runs too), and `trawl sd` listing every page once.

mod common;

use common::ec2::{ACCESS_KEY, Front, SECRET_KEY};
use common::lightsail::*;
use common::*;
use trawl_tests::lightsail::{Fleet, Instance, LightsailServer};

#[test]
fn instances_are_followed_through_the_daemon() {
    let d = TempDir::new("lightsail-daemon");
    lightsail_instances_follow_the_fleet(&d.0, &mut daemon);
    let log = log_of(&d.0);
    assert!(
        log.contains("jobs=lightsail-wrong-key")
            && log.contains("api error InvalidSignatureException")
            && log.contains("api error InternalFailure: boom"),
        "the failures are logged with the job and AWS's error type:\n{log}"
    );
}

#[test]
fn trawl_sd_lists_every_page_once() {
    let d = TempDir::new("lightsail-sd");
    let mut f = Fleet::new();
    for n in 1..=5u8 {
        f.put(Instance::new(&format!("i{n}"), &format!("172.26.0.{n}")));
    }
    let ls = LightsailServer::start(f);
    let front = Front::start_for(&d.0, ls.port(), "lightsail", true);
    let cfg = d.0.join("prometheus.yml");
    // `instance` from the name: no target address is ever dialled by `trawl sd`.
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n  - job_name: l\n    lightsail_sd_configs: [{{region: us-east-1, endpoint: 'http://127.0.0.1:{}', access_key: {ACCESS_KEY}, secret_key: '{SECRET_KEY}', port: 9100}}]\n    relabel_configs: [{{source_labels: [__meta_lightsail_instance_name], target_label: instance}}]\n",
            front.port
        ),
    )
    .expect("config");
    assert_eq!(sd_instances(&cfg), ["i1", "i2", "i3", "i4", "i5"]);
    assert_eq!(ls.calls().len(), 3, "three pages of two");
    assert_eq!(front.lines(), ["ok", "ok", "ok"]);
}
