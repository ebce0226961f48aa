//! IONOS Cloud discovery end to end against the fake IONOS Cloud API (`common::ionos`):
//! the daemon following a datacenter (the scenario trawl-tokio runs too), and `trawl
//! sd` listing it once.

mod common;

use common::ionos::*;
use common::*;
use trawl_tests::cloud::RestServer;
use trawl_tests::ionos::Cloud;

#[test]
fn servers_are_followed_through_the_daemon() {
    let d = TempDir::new("ionos-daemon");
    ionos_servers_follow_the_datacenter(&d.0, &mut daemon);
    let log = log_of(&d.0);
    assert!(
        log.contains("jobs=ionos-wrong-password")
            && log.contains("401 Unauthorized")
            && log.contains("500 Internal Server Error"),
        "the failures are logged with the job and the SDK's wording:\n{log}"
    );
}

#[test]
fn trawl_sd_lists_the_datacenter() {
    let d = TempDir::new("ionos-sd");
    let mut c = Cloud::new();
    for n in 1..=3 {
        c.put(DC, server(n, n as u8 + 1));
    }
    let api = RestServer::start(c);
    point_api(&d.0, "ionos", &api.base());
    let cfg = d.0.join("prometheus.yml");
    // `instance` from the name: no target address is ever dialled by `trawl sd`.
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n  - job_name: i\n    ionos_sd_configs: [{{datacenter_id: {DC}, bearer_token: ionos-test-token, port: 9100}}]\n    relabel_configs: [{{source_labels: [__meta_ionos_server_name], target_label: instance}}]\n"
        ),
    )
    .expect("config");
    assert_eq!(
        sd_instances(&cfg),
        ["web-127-0-0-2", "web-127-0-0-3", "web-127-0-0-4"]
    );
    assert_eq!(api.calls().len(), 1);
}
