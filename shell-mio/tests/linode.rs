//! Linode discovery end to end against the fake Linode API (`common::linode`): the
//! daemon following the account (the scenario trawl-tokio runs too), and `trawl sd`
//! listing every page of the three listings once.

mod common;

use common::linode::*;
use common::*;
use trawl_tests::cloud::RestServer;
use trawl_tests::linode::Account;

#[test]
fn instances_are_followed_through_the_daemon() {
    let d = TempDir::new("linode-daemon");
    linode_instances_follow_the_account(&d.0, &mut daemon);
    let log = log_of(&d.0);
    assert!(
        log.contains("jobs=linode-wrong-token")
            && log.contains("[401] Invalid Token")
            && log.contains("[500] boom"),
        "the failures are logged with the job and the API's answer:\n{log}"
    );
}

#[test]
fn trawl_sd_lists_every_page_once() {
    let d = TempDir::new("linode-sd");
    let mut a = Account::new(TOKEN);
    a.max_page_size = 2;
    for n in 1..=5 {
        a.put(instance(n, 2));
    }
    let api = RestServer::start(a);
    point_api(&d.0, "linode", &api.base());
    let cfg = d.0.join("prometheus.yml");
    // `instance` from the label: no target address is ever dialled by `trawl sd`.
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n  - job_name: l\n    linode_sd_configs: [{{authorization: {{credentials: {TOKEN}}}, port: 9100}}]\n    relabel_configs: [{{source_labels: [__meta_linode_instance_label], target_label: instance}}]\n"
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
            "GET /v4/linode/instances?page=1&page_size=500",
            "GET /v4/linode/instances?page=2&page_size=500",
            "GET /v4/linode/instances?page=3&page_size=500",
            "GET /v4/networking/ips?page=1&page_size=500",
            "GET /v4/networking/ips?page=2&page_size=500",
            "GET /v4/networking/ips?page=3&page_size=500",
            "GET /v4/networking/ipv6/ranges?page=1&page_size=500",
        ],
        "three listings, every page once"
    );
}

/// `trawl sd` says on standard error why a job found nothing (it sets up no logging).
#[test]
fn trawl_sd_says_why_a_job_found_nothing() {
    let d = TempDir::new("linode-sd-refused");
    let api = RestServer::start(Account::new(TOKEN));
    point_api(&d.0, "linode", &api.base());
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        "scrape_configs:\n  - job_name: l\n    linode_sd_configs: [{authorization: {credentials: wrong}}]\n",
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trawl"))
        .envs(api_base_env(&d.0))
        .arg("sd")
        .arg(format!("--config.file={}", cfg.display()))
        .output()
        .expect("trawl sd");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: discovery linode/0 failed: [401] Invalid Token"),
        "{err}"
    );
}
