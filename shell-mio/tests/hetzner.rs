//! Hetzner discovery end to end against the fake Hetzner API (`common::hetzner`): the
//! daemon following a project (the scenario trawl-tokio runs too), and `trawl sd`
//! listing every page once.

mod common;

use common::hetzner::*;
use common::*;
use trawl_tests::cloud::RestServer;
use trawl_tests::hetzner::Project;

#[test]
fn servers_are_followed_through_the_daemon() {
    let d = TempDir::new("hetzner-daemon");
    hetzner_servers_follow_the_project(&d.0, &mut daemon);
    let log = log_of(&d.0);
    assert!(
        log.contains("jobs=hcloud-wrong-token")
            && log.contains("unable to authenticate (unauthorized)")
            && log.contains("boom (server_error)"),
        "the failures are logged with the job and hcloud-go's wording:\n{log}"
    );
}

#[test]
fn trawl_sd_lists_every_page_once() {
    let d = TempDir::new("hetzner-sd");
    let mut p = Project::new(TOKEN);
    p.per_page = 2;
    p.max_per_page = 2;
    p.networks.insert(4711, "backend-net".into());
    for n in 1..=5 {
        p.put(server(n, 2));
    }
    let api = RestServer::start(p);
    point_api(&d.0, "hetzner", &api.base());
    let cfg = d.0.join("prometheus.yml");
    // `instance` from the name: no target address is ever dialled by `trawl sd`.
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n  - job_name: h\n    hetzner_sd_configs: [{{role: hcloud, bearer_token: {TOKEN}, port: 9100}}]\n    relabel_configs: [{{source_labels: [__meta_hetzner_server_name], target_label: instance}}]\n"
        ),
    )
    .expect("config");
    assert_eq!(
        sd_instances(&cfg),
        ["web-1", "web-2", "web-3", "web-4", "web-5"]
    );
    assert_eq!(
        api.calls(),
        [
            "GET /servers?page=1&per_page=50",
            "GET /servers?page=2&per_page=50",
            "GET /servers?page=3&per_page=50",
            "GET /networks?page=1&per_page=50"
        ],
        "three pages of two (the fake grants two a page), then the networks"
    );
}
