//! IONOS Cloud discovery end to end, shared by both shells: the fake IONOS Cloud API
//! (`trawl_tests::ionos`, checked with IONOS's own SDK) on loopback, the agent pointed
//! at it by the test-only API base. The servers' NIC addresses are the fake's, never
//! dialled: every target is relabelled to the loopback nginx address its name spells.

use std::path::Path;
use std::time::Duration;

use trawl_tests::cloud::RestServer;
use trawl_tests::ionos::{Cloud, Server};

use super::kube::labels_of;
use super::scenario::Start;
use super::*;

/// The datacenter of these tests.
pub(crate) const DC: &str = "8feda53f-15f0-447f-badf-ebe32dad2fc0";

/// A server relabelled to `127.0.0.<lo>`.
pub(crate) fn server(n: u32, lo: u8) -> Server {
    Server::new(n, &format!("web-127-0-0-{lo}"), &format!("192.0.2.{n}"))
}

/// A datacenter's servers are discovered in one call at depth 3 with basic auth,
/// relabelled to loopback and scraped under their names; a server that is shut off is
/// relabelled away; a deleted server and a new one are followed within a refresh; a
/// failed call (500) keeps the targets; a job whose password is wrong is refused on every
/// refresh, counted, and keeps no targets.
pub(crate) fn ionos_servers_follow_the_datacenter(dir: &Path, start: Start<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=5, 5);
    let port = port_of(&addrs[0]);
    let mut c = Cloud::new();
    c.put(DC, server(1, 2));
    c.put(DC, server(2, 3));
    let mut off = server(3, 4);
    off.vm_state = "SHUTOFF".into();
    c.put(DC, off);
    let api = RestServer::start(c);
    point_api(dir, "ionos", &api.base());
    let block = |password: &str| {
        format!(
            "    ionos_sd_configs:\n      - {{datacenter_id: {DC}, basic_auth: {{username: user@example.com, password: {password}}}, refresh_interval: 1s, port: {port}}}\n"
        )
    };
    let relabel = format!(
        "    relabel_configs:\n      - {{source_labels: [__meta_ionos_server_state], regex: RUNNING, action: keep}}\n      - {{source_labels: [__meta_ionos_server_name], regex: 'web-(\\d+)-(\\d+)-(\\d+)-(\\d+)', target_label: __address__, replacement: '${{1}}.${{2}}.${{3}}.${{4}}:{port}'}}\n      - {{source_labels: [__meta_ionos_server_name], target_label: instance}}\n      - {{source_labels: [__meta_ionos_server_nic_ip_public], target_label: nic}}\n"
    );
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ionos\n{}{relabel}  - job_name: ionos-wrong-password\n{}{relabel}",
            block("secret"),
            block("not-the-password"),
        ),
    )
    .expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    eventually(Duration::from_secs(30), "the running servers", || {
        up_instances(&*t, "ionos") == ["web-127-0-0-2", "web-127-0-0-3"]
    });
    assert_eq!(labels_of(&*t, "ionos")[0]["nic"], ",192.0.2.1,");
    let calls = api.calls();
    assert!(
        calls
            .iter()
            .any(|c| c == &format!("GET /cloudapi/v6/datacenters/{DC}/servers?depth=3")),
        "{calls:?}"
    );

    // The main job's own next three calls fail (the wrong-credential job fails on every
    // refresh anyway: the count is compared with where it stood).
    let before = refresh_failures(&*t, "ionos");
    api.fail_next_for(
        &format!(
            "Basic {}",
            trawl_core::bytes::base64_encode(b"user@example.com:secret")
        ),
        &[(
            500,
            r#"{"httpStatus":500,"messages":[{"errorCode":"000","message":"boom"}]}"#,
        ); 3],
    );
    eventually(
        Duration::from_secs(20),
        "the three failures served and counted",
        || api.pending_failures() == 0 && refresh_failures(&*t, "ionos") >= before + 3.0,
    );
    assert_eq!(
        up_instances(&*t, "ionos"),
        ["web-127-0-0-2", "web-127-0-0-3"],
        "the last targets stay"
    );

    api.with(|c| {
        let first = c.servers(DC)[0].id.clone();
        c.remove(DC, &first);
        c.put(DC, server(4, 5));
    });
    eventually(Duration::from_secs(30), "web-1 out, web-4 in", || {
        up_instances(&*t, "ionos") == ["web-127-0-0-3", "web-127-0-0-5"]
    });
    assert!(up_instances(&*t, "ionos-wrong-password").is_empty());
}
