//! Vultr discovery end to end against the fake Vultr API (`common::vultr`): the daemon
//! following the account (the scenario trawl-tokio runs too), and `trawl sd` listing
//! every page once.

mod common;

use common::vultr::*;
use common::*;
use trawl_tests::cloud::RestServer;
use trawl_tests::vultr::Account;

#[test]
fn instances_are_followed_through_the_daemon() {
    let d = TempDir::new("vultr-daemon");
    vultr_instances_follow_the_account(&d.0, &mut daemon);
    let log = log_of(&d.0);
    assert!(
        log.contains("jobs=vultr-wrong-key")
            && log.contains("Invalid API token.")
            && log.contains("boom"),
        "the failures are logged with the job and the API's answer:\n{log}"
    );
}

#[test]
fn trawl_sd_lists_every_page_once() {
    let d = TempDir::new("vultr-sd");
    let mut a = Account::new(KEY);
    a.max_per_page = 2;
    for n in 1..=5 {
        a.put(instance(n, 2));
    }
    let api = RestServer::start(a);
    point_api(&d.0, "vultr", &api.base());
    let cfg = d.0.join("prometheus.yml");
    // `instance` from the label: no target address is ever dialled by `trawl sd`.
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n  - job_name: v\n    vultr_sd_configs: [{{bearer_token: {KEY}, port: 9100}}]\n    relabel_configs: [{{source_labels: [__meta_vultr_instance_label], target_label: instance}}]\n"
        ),
    )
    .expect("config");
    assert_eq!(
        sd_instances(&cfg),
        ["web-1", "web-2", "web-3", "web-4", "web-5"]
    );
    let calls = api.calls();
    assert_eq!(calls.len(), 3, "three pages of two: {calls:?}");
    assert_eq!(calls[0], "GET /v2/instances?per_page=100");
}
