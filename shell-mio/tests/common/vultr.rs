//! Vultr discovery end to end, shared by both shells: the fake Vultr API
//! (`trawl_tests::vultr`) on loopback, the agent pointed at it by the test-only API base.
//! The instances' addresses are the fake's, never dialled: every target is relabelled
//! to the loopback nginx address its `lo=` tag names.

use std::path::Path;
use std::time::Duration;

use trawl_tests::cloud::RestServer;
use trawl_tests::vultr::{Account, Instance};

use super::scenario::Start;
use super::*;

/// The account's API key in these tests.
pub(crate) const KEY: &str = "VULTRE2EKEY";

/// An instance relabelled to `127.0.0.<lo>`.
pub(crate) fn instance(n: u32, lo: u8) -> Instance {
    Instance::new(n, &format!("web-{n}"), &format!("192.0.2.{n}")).tag(&format!("lo=127.0.0.{lo}"))
}

/// Instances are discovered cursor by cursor (two a page) with the block's key,
/// relabelled to loopback and scraped under their labels; a locked instance is
/// relabelled away; a deleted instance and a new one are followed within a refresh; a
/// failed call (500) keeps the targets; a job whose key is wrong is refused on every
/// refresh, counted, and keeps no targets.
pub(crate) fn vultr_instances_follow_the_account(dir: &Path, start: Start<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=5, 5);
    let port = port_of(&addrs[0]);
    let mut a = Account::new(KEY);
    a.max_per_page = 2;
    a.put(instance(1, 2));
    a.put(instance(2, 3));
    let mut locked = instance(3, 4);
    locked.server_status = "locked".into();
    a.put(locked);
    let api = RestServer::start(a);
    point_api(dir, "vultr", &api.base());
    let block = |key: &str| {
        format!(
            "    vultr_sd_configs:\n      - {{authorization: {{credentials: {key}}}, refresh_interval: 1s, port: {port}}}\n"
        )
    };
    let relabel = format!(
        "    relabel_configs:\n      - {{source_labels: [__meta_vultr_instance_server_status], regex: ok, action: keep}}\n      - {{source_labels: [__meta_vultr_instance_tags], regex: '.*,lo=([^,]+),.*', target_label: __address__, replacement: '${{1}}:{port}'}}\n      - {{source_labels: [__meta_vultr_instance_label], target_label: instance}}\n"
    );
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: vultr\n{}{relabel}  - job_name: vultr-wrong-key\n{}{relabel}",
            block(KEY),
            block("not-the-key"),
        ),
    )
    .expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    eventually(Duration::from_secs(30), "the instances that are ok", || {
        up_instances(&*t, "vultr") == ["web-1", "web-2"]
    });
    let calls = api.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("GET /v2/instances?cursor=")),
        "the second page asked for by its cursor: {calls:?}"
    );

    // The main job's own next three calls fail (the wrong-credential job fails on every
    // refresh anyway: the count is compared with where it stood).
    let before = refresh_failures(&*t, "vultr");
    api.fail_next_for(
        "Bearer VULTRE2EKEY",
        &[(500, r#"{"error":"boom","status":500}"#); 3],
    );
    eventually(
        Duration::from_secs(20),
        "the three failures served and counted",
        || api.pending_failures() == 0 && refresh_failures(&*t, "vultr") >= before + 3.0,
    );
    assert_eq!(
        up_instances(&*t, "vultr"),
        ["web-1", "web-2"],
        "the last targets stay"
    );

    api.with(|a| {
        let first = a
            .instances()
            .find(|i| i.label == "web-1")
            .map(|i| i.id.clone());
        a.remove(&first.expect("web-1"));
        a.put(instance(4, 5));
    });
    eventually(Duration::from_secs(30), "web-1 out, web-4 in", || {
        up_instances(&*t, "vultr") == ["web-2", "web-4"]
    });
    assert!(up_instances(&*t, "vultr-wrong-key").is_empty());
    let wrong = api
        .requests()
        .iter()
        .filter(|r| r.header("authorization") == Some("Bearer not-the-key"))
        .count();
    assert!(wrong >= 2, "the wrong key is tried on every refresh");
}
