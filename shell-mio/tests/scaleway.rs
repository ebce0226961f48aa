//! Scaleway discovery end to end against the fake Scaleway API (`common::scaleway`):
//! the daemon following the project (the scenario trawl-tokio runs too), and `trawl
//! sd` listing every page once.

mod common;

use common::scaleway::*;
use common::*;
use trawl_tests::cloud::RestServer;
use trawl_tests::scaleway::Project;

#[test]
fn servers_are_followed_through_the_daemon() {
    let d = TempDir::new("scaleway-daemon");
    scaleway_servers_follow_the_project(&d.0, &mut daemon);
    let log = log_of(&d.0);
    assert!(
        log.contains("jobs=scaleway-wrong-key")
            && log.contains("scaleway-sdk-go: denied authentication: API key does not exist")
            && log.contains("scaleway-sdk-go: http error 500 Internal Server Error: boom"),
        "the failures are logged with the job and the SDK's wording:\n{log}"
    );
}

#[test]
fn trawl_sd_lists_every_page_once() {
    let d = TempDir::new("scaleway-sd");
    let mut p = Project::new(KEY);
    p.max_per_page = 2;
    for n in 1..=5 {
        p.put(server(n, 2));
    }
    let api = RestServer::start(p);
    let cfg = d.0.join("prometheus.yml");
    // `instance` from the label: no target address is ever dialled by `trawl sd`.
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n  - job_name: s\n{}    relabel_configs: [{{source_labels: [__meta_scaleway_instance_name], target_label: instance}}]\n",
            block(&api.base(), &format!("secret_key: {KEY}"), 9100)
        ),
    )
    .expect("config");
    assert_eq!(
        sd_instances(&cfg),
        ["web-1", "web-2", "web-3", "web-4", "web-5"]
    );
    let calls = api.calls();
    assert_eq!(calls.len(), 3, "three pages of two: {calls:?}");
    assert_eq!(
        calls[0],
        "GET /instance/v1/zones/fr-par-1/servers?order=creation_date_desc&page=1&tags=web"
    );
}
