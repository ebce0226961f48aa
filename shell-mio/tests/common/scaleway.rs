//! Scaleway discovery end to end, shared by both shells: the fake Scaleway API
//! (`trawl_tests::scaleway`) on loopback, reached through the block's own `api_url`.
//! The servers' addresses are the fake's, never dialled: every target is relabelled to
//! the loopback nginx address its `lo=` tag names.

use std::path::Path;
use std::time::Duration;

use trawl_tests::cloud::RestServer;
use trawl_tests::scaleway::{Project, Server};

use super::scenario::Start;
use super::*;

/// The project's first secret key in these tests.
pub(crate) const KEY: &str = "6d6579e5-a5b9-49fc-a35f-b4feb9b87301";
/// The key it is rotated to.
pub(crate) const NEW_KEY: &str = "0b8e8b0e-3d7e-4a4b-9c36-6f0a3c1b2d4e";

/// A server relabelled to `127.0.0.<lo>`.
pub(crate) fn server(n: u32, lo: u8) -> Server {
    Server::new(n, &format!("web-{n}"), &format!("192.0.2.{n}"))
        .tag("web")
        .tag(&format!("lo=127.0.0.{lo}"))
}

/// The block of a job: `key` is `secret_key_file: …` or `secret_key: …`.
pub(crate) fn block(api: &str, key: &str, port: u16) -> String {
    format!(
        "    scaleway_sd_configs:\n      - {{role: instance, api_url: '{api}', project_id: cb334986-b054-4725-9d5a-30850fdc6015, access_key: SCWABCDEFGHIJ0123456, {key}, tags_filter: [web], refresh_interval: 1s, port: {port}}}\n"
    )
}

/// Servers are discovered page by page (two a page, the total in `X-Total-Count`) with
/// the key read from `secret_key_file`, relabelled to loopback and scraped under their
/// labels; a stopped server is relabelled away, an untagged one not listed; a server
/// with no public address is found at its private NIC's address through IPAM; a failed
/// call (500) keeps the targets; the key rotated in its file is used from the next
/// refresh; a job whose key is wrong is refused on every refresh, counted, and keeps no
/// targets.
pub(crate) fn scaleway_servers_follow_the_project(dir: &Path, start: Start<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=6, 5);
    let port = port_of(&addrs[0]);
    let mut p = Project::new(KEY);
    p.max_per_page = 2;
    p.put(server(1, 2));
    p.put(server(2, 3));
    let mut stopped = server(3, 4);
    stopped.state = "stopped".into();
    p.put(stopped);
    p.put(Server::new(7, "untagged", "192.0.2.7").tag("lo=127.0.0.5"));
    let mut private = server(5, 6);
    private.public_ips.clear();
    private
        .private_nics
        .push(("nic-5".into(), "10.0.0.5".into()));
    p.put(private);
    let api = RestServer::start(p);
    let key_file = dir.join("scaleway-key");
    std::fs::write(&key_file, format!("{KEY}\n")).expect("key file");
    let relabel = format!(
        "    relabel_configs:\n      - {{source_labels: [__meta_scaleway_instance_status], regex: running, action: keep}}\n      - {{source_labels: [__meta_scaleway_instance_tags], regex: '.*,lo=([^,]+),.*', target_label: __address__, replacement: '${{1}}:{port}'}}\n      - {{source_labels: [__meta_scaleway_instance_name], target_label: instance}}\n"
    );
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: scaleway\n{}{relabel}  - job_name: scaleway-wrong-key\n{}{relabel}",
            block(&api.base(), &format!("secret_key_file: {}", key_file.display()), port),
            block(&api.base(), "secret_key: 00000000-0000-4000-8000-000000000000", port),
        ),
    )
    .expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    eventually(
        Duration::from_secs(30),
        "the running tagged servers",
        || up_instances(&*t, "scaleway") == ["web-1", "web-2", "web-5"],
    );
    let calls = api.calls();
    assert!(
        calls.iter().any(|c| c
            == "GET /instance/v1/zones/fr-par-1/servers?order=creation_date_desc&page=2&tags=web"),
        "the second page asked for: {calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("GET /ipam/v1/regions/fr-par/ips?")
                && c.contains("resource_ids=nic-5")),
        "IPAM asked for the private NIC: {calls:?}"
    );

    let before = job_refresh_failures(&*t, "scaleway", "scaleway");
    api.fail_next_for(KEY, &[(500, r#"{"message":"boom"}"#); 3]);
    eventually(
        Duration::from_secs(20),
        "the three failures served and counted",
        || {
            api.pending_failures() == 0
                && job_refresh_failures(&*t, "scaleway", "scaleway") >= before + 3.0
        },
    );
    assert_eq!(
        up_instances(&*t, "scaleway"),
        ["web-1", "web-2", "web-5"],
        "the last targets stay"
    );

    // The key rotates: the project takes only the new one, the file names it.
    api.with(|p| {
        p.secret_key = NEW_KEY.into();
        let first = p
            .servers()
            .find(|s| s.name == "web-1")
            .map(|s| s.id.clone());
        p.remove(&first.expect("web-1"));
        p.put(server(4, 5));
    });
    std::fs::write(&key_file, format!("{NEW_KEY}\n")).expect("key file");
    eventually(Duration::from_secs(30), "web-1 out, web-4 in", || {
        up_instances(&*t, "scaleway") == ["web-2", "web-4", "web-5"]
    });
    assert!(up_instances(&*t, "scaleway-wrong-key").is_empty());
    assert!(job_refresh_failures(&*t, "scaleway", "scaleway-wrong-key") >= 2.0);
}
