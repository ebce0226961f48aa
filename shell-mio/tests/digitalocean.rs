//! DigitalOcean discovery end to end against the fake DigitalOcean API
//! (`common::digitalocean`): the daemon following the account (the scenario trawl-tokio
//! runs too), and `trawl sd` listing every page once.

mod common;

use common::digitalocean::*;
use common::*;
use trawl_tests::cloud::RestServer;
use trawl_tests::digitalocean::Account;

#[test]
fn droplets_are_followed_through_the_daemon() {
    let d = TempDir::new("digitalocean-daemon");
    digitalocean_droplets_follow_the_account(&d.0, &mut daemon);
    let log = log_of(&d.0);
    assert!(
        log.contains("jobs=digitalocean-wrong-token")
            && log.contains("401 (request")
            && log.contains("Unable to authenticate you")
            && log.contains("error while listing droplets page 0: GET ")
            && log.contains("500 boom"),
        "the failures are logged with the job and godo's wording:\n{log}"
    );
    assert!(
        log.contains("test-only API base in use"),
        "the override is announced:\n{log}"
    );
}

#[test]
fn trawl_sd_lists_every_page_once() {
    let d = TempDir::new("digitalocean-sd");
    let mut a = Account::new(TOKEN);
    a.per_page = 2;
    for n in 1..=5 {
        a.put(droplet(n, 2));
    }
    let api = RestServer::start(a);
    point_api(&d.0, "digitalocean", &api.base());
    let cfg = d.0.join("prometheus.yml");
    // `instance` from the name: no target address is ever dialled by `trawl sd`.
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n  - job_name: d\n    digitalocean_sd_configs: [{{bearer_token: {TOKEN}, port: 9100}}]\n    relabel_configs: [{{source_labels: [__meta_digitalocean_droplet_name], target_label: instance}}]\n"
        ),
    )
    .expect("config");
    let got = sd_instances(&cfg);
    assert_eq!(got, ["web-1", "web-2", "web-3", "web-4", "web-5"]);
    assert_eq!(
        api.calls(),
        [
            "GET /v2/droplets",
            "GET /v2/droplets?page=2",
            "GET /v2/droplets?page=3"
        ],
        "three pages of two"
    );
}
