//! Marathon discovery end to end against the fake Marathon (`trawl_tests::marathon`): the
//! apps followed through the daemon (the scenario trawl-tokio runs too), and `trawl sd`
//! listing once.

mod common;

use common::marathon::*;
use common::*;
use std::collections::BTreeMap;
use trawl_tests::marathon::{App, Apps, MarathonServer, Ports};

#[test]
fn apps_are_followed_through_the_daemon() {
    let d = TempDir::new("marathon-daemon");
    marathon_apps_follow_the_cluster(&d.0, &mut daemon);
    let log = log_of(&d.0);
    assert!(
        log.contains("non 2xx status '503' response during marathon service discovery")
            && log.contains("jobs=marathon"),
        "the failures are logged with the job:\n{log}"
    );
}

#[test]
fn trawl_sd_lists_once() {
    let d = TempDir::new("marathon-sd");
    let mut apps = Apps::new();
    apps.put(
        App::new("/a", "x", Ports::Definitions(vec![BTreeMap::new()])).task(
            "a.1",
            "127.0.0.2",
            &[9100],
        ),
    );
    apps.put(
        App::new("/b", "y", Ports::ContainerNetwork(vec![9187])).task_at(
            "b.1",
            "agent-9",
            "127.0.0.3",
        ),
    );
    let m = MarathonServer::start(apps);
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n  - job_name: m\n    marathon_sd_configs: [{{servers: ['{}']}}]\n",
            m.url()
        ),
    )
    .expect("config");
    let got = sd_instances(&cfg);
    assert_eq!(got, ["127.0.0.2:9100", "127.0.0.3:9187"]);
    assert_eq!(m.requests().len(), 1);
}
