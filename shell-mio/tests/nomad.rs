//! Nomad discovery end to end against the fake Nomad agent (`trawl_tests::nomad`): the
//! registry followed through the daemon (the scenario trawl-tokio runs too), and `trawl
//! sd` listing once.

mod common;

use common::nomad::*;
use common::*;
use trawl_tests::nomad::{NomadServer, Registration, Registry};

#[test]
fn the_registry_is_followed_through_the_daemon() {
    let d = TempDir::new("nomad-daemon");
    nomad_services_follow_the_registry(&d.0, &mut daemon);
}

#[test]
fn trawl_sd_lists_once() {
    let d = TempDir::new("nomad-sd");
    let mut reg = Registry::new("global");
    reg.register(Registration::new("web", "w1", "127.0.0.2", 9100).tags(&["a"]));
    reg.register(Registration::new("db", "d1", "127.0.0.3", 9187));
    let nomad = NomadServer::start(reg);
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n  - job_name: n\n    nomad_sd_configs: [{{server: '{}'}}]\n",
            nomad.url()
        ),
    )
    .expect("config");
    let got = sd_instances(&cfg);
    assert_eq!(got, ["127.0.0.2:9100", "127.0.0.3:9187"]);
    // One list, one request per service.
    let paths: Vec<String> = nomad.requests().iter().map(|q| q.path.clone()).collect();
    assert_eq!(paths, ["/v1/services", "/v1/service/db", "/v1/service/web"]);
}
