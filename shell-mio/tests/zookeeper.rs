//! ZooKeeper discovery (serverset and Nerve) end to end against a real ZooKeeper: the
//! members followed through the daemon (the scenario trawl-tokio runs too), and `trawl
//! sd` listing once over its blocking session.

mod common;

use common::zookeeper::*;
use common::*;
use trawl_tests::zookeeper::real::RealZk;

#[test]
fn members_are_followed_through_the_daemon() {
    let d = TempDir::new("zk-daemon");
    zookeeper_members_follow_the_tree(&d.0, &mut daemon);
    let log = log_of(&d.0);
    assert!(
        log.contains("serverset member") && log.contains("member_0000000004"),
        "the garbled member is logged with its node:\n{log}"
    );
    assert!(
        log.contains("session expired"),
        "the expiry is logged:\n{log}"
    );
}

#[test]
fn trawl_sd_lists_once() {
    let d = TempDir::new("zk-sd");
    let zk = RealZk::start(&d.0);
    let mut w = zk.writer();
    w.create_all(
        "/svc/web/m1",
        serverset_member("127.0.0.2", 9100, 0).as_bytes(),
    );
    w.create_all(
        "/svc/web/nested/m2",
        serverset_member("127.0.0.3", 9101, 1).as_bytes(),
    );
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n  - job_name: z\n    serverset_sd_configs: [{{servers: ['localhost:{}'], paths: [/svc/web]}}]\n",
            zk.port
        ),
    )
    .expect("config");
    let got = sd_instances(&cfg);
    assert_eq!(got, ["127.0.0.2:9100", "127.0.0.3:9101"]);
}
