//! Eureka discovery end to end against the fake Eureka (`trawl_tests::eureka`): the
//! instances followed through the daemon (the scenario trawl-tokio runs too), and `trawl
//! sd` listing once.

mod common;

use common::eureka::*;
use common::*;
use trawl_tests::eureka::{EurekaServer, Instance, Registry};

#[test]
fn instances_are_followed_through_the_daemon() {
    let d = TempDir::new("eureka-daemon");
    eureka_instances_follow_the_registry(&d.0, &mut daemon);
    let log = log_of(&d.0);
    assert!(
        log.contains("non 2xx status '500' response during eureka service discovery")
            && log.contains("XML syntax error")
            && log.contains("jobs=eureka"),
        "the failures are logged with the job:\n{log}"
    );
}

#[test]
fn trawl_sd_lists_once() {
    let d = TempDir::new("eureka-sd");
    let mut reg = Registry::new();
    reg.put(Instance::new("a", "a-1", "127.0.0.2", 9100));
    let mut no_port = Instance::new("b", "", "127.0.0.3", 0);
    no_port.port = None;
    reg.put(no_port);
    let e = EurekaServer::start(reg);
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n  - job_name: e\n    eureka_sd_configs: [{{server: '{}'}}]\n",
            e.url()
        ),
    )
    .expect("config");
    // An instance id is the instance label; without one, the address (port 80).
    assert_eq!(sd_instances(&cfg), ["127.0.0.3:80", "a-1"]);
    assert_eq!(e.requests().len(), 1);
}
