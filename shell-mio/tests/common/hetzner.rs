//! Hetzner discovery end to end, shared by both shells: the fake Hetzner API
//! (`trawl_tests::hetzner`, its Cloud API checked with hcloud-python) on loopback, the
//! agent pointed at it by the test-only API base. The servers' addresses are the
//! fake's, never dialled: every target is relabelled to the loopback nginx address its
//! `lo` label (Cloud) or its name (Robot) spells.

use std::path::Path;
use std::time::Duration;

use trawl_tests::cloud::RestServer;
use trawl_tests::hetzner::{CloudServer, Project, RobotServer};

use super::kube::labels_of;
use super::scenario::Start;
use super::*;

/// The Cloud API token in these tests.
pub(crate) const TOKEN: &str = "hcloud-e2e-token";

/// A Cloud server relabelled to `127.0.0.<lo>`.
pub(crate) fn server(id: i64, lo: u8) -> CloudServer {
    let mut s = CloudServer::new(id, &format!("web-{id}"), &format!("192.0.2.{id}"))
        .label("lo", &format!("127.0.0.{lo}"))
        .label("env", "prod");
    s.private.push((4711, format!("10.0.0.{id}")));
    s
}

/// Cloud servers are discovered page by page (two a page) with the block's label
/// selector and token, then the networks; relabelled to loopback and scraped under
/// their names with their private network's address as a label; a server that is off is
/// relabelled away; a deleted server and a new one are followed within a refresh; a
/// failed call (500) keeps the targets; Robot servers come from one answer with basic
/// auth; a job whose token is wrong is refused on every refresh, counted, and keeps no
/// targets.
pub(crate) fn hetzner_servers_follow_the_project(dir: &Path, start: Start<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=6, 5);
    let port = port_of(&addrs[0]);
    let mut p = Project::new(TOKEN);
    p.per_page = 2;
    p.max_per_page = 2;
    p.networks.insert(4711, "backend-net".into());
    p.put(server(1, 2));
    p.put(server(2, 3));
    let mut off = server(3, 4);
    off.status = "off".into();
    p.put(off);
    p.put(server(7, 4).label("env", "dev"));
    p.put_robot(RobotServer {
        number: 321,
        name: "dedi-127-0-0-6".into(),
        ip: "203.0.113.6".into(),
        dc: "FSN1-DC10".into(),
        cancelled: false,
    });
    let api = RestServer::start(p);
    point_api(dir, "hetzner", &api.base());
    let block = |token: &str| {
        format!(
            "    hetzner_sd_configs:\n      - {{role: hcloud, label_selector: env=prod, authorization: {{credentials: {token}}}, refresh_interval: 1s, port: {port}}}\n"
        )
    };
    let relabel = format!(
        "    relabel_configs:\n      - {{source_labels: [__meta_hetzner_server_status], regex: running, action: keep}}\n      - {{source_labels: [__meta_hetzner_hcloud_label_lo], target_label: __address__, replacement: '${{1}}:{port}'}}\n      - {{source_labels: [__meta_hetzner_server_name], target_label: instance}}\n      - {{source_labels: [__meta_hetzner_hcloud_private_ipv4_backend_net], target_label: private}}\n"
    );
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: hcloud\n{}{relabel}  - job_name: hcloud-wrong-token\n{}{relabel}  - job_name: robot\n    hetzner_sd_configs:\n      - {{role: robot, basic_auth: {{username: robot-user, password: secret}}, refresh_interval: 1s}}\n    relabel_configs:\n      - {{source_labels: [__meta_hetzner_server_name], regex: 'dedi-(\\d+)-(\\d+)-(\\d+)-(\\d+)', target_label: __address__, replacement: '${{1}}.${{2}}.${{3}}.${{4}}:{port}'}}\n      - {{source_labels: [__meta_hetzner_server_name], target_label: instance}}\n      - {{source_labels: [__meta_hetzner_robot_datacenter], target_label: dc}}\n",
            block(TOKEN),
            block("not-the-token"),
        ),
    )
    .expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    eventually(Duration::from_secs(30), "the running prod servers", || {
        up_instances(&*t, "hcloud") == ["web-1", "web-2"]
    });
    let l = labels_of(&*t, "hcloud");
    assert_eq!(l[0]["private"], "10.0.0.1");
    eventually(Duration::from_secs(30), "the dedicated server", || {
        up_instances(&*t, "robot") == ["dedi-127-0-0-6"]
    });
    assert_eq!(labels_of(&*t, "robot")[0]["dc"], "fsn1-dc10");
    let calls = api.calls();
    for want in [
        "GET /servers?label_selector=env=prod&page=2&per_page=50",
        "GET /networks?page=1&per_page=50",
        "GET /server",
    ] {
        assert!(calls.iter().any(|c| c == want), "{want}: {calls:?}");
    }

    // The main job's own next three calls fail (the wrong-credential job fails on every
    // refresh anyway: the count is compared with where it stood).
    let before = refresh_failures(&*t, "hetzner");
    api.fail_next_for(
        "Bearer hcloud-e2e-token",
        &[(
            500,
            r#"{"error":{"code":"server_error","message":"boom","details":{}}}"#,
        ); 3],
    );
    eventually(
        Duration::from_secs(20),
        "the three failures served and counted",
        || api.pending_failures() == 0 && refresh_failures(&*t, "hetzner") >= before + 3.0,
    );
    assert_eq!(
        up_instances(&*t, "hcloud"),
        ["web-1", "web-2"],
        "the last targets stay"
    );

    api.with(|p| {
        p.remove(1);
        p.put(server(4, 5));
    });
    eventually(Duration::from_secs(30), "web-1 out, web-4 in", || {
        up_instances(&*t, "hcloud") == ["web-2", "web-4"]
    });
    assert!(up_instances(&*t, "hcloud-wrong-token").is_empty());
    let wrong = api
        .requests()
        .iter()
        .filter(|r| r.header("authorization") == Some("Bearer not-the-token"))
        .count();
    assert!(wrong >= 2, "the wrong token is tried on every refresh");
}
