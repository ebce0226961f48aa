//! ZooKeeper discovery end to end, shared by both shells, against a real ZooKeeper
//! (Debian's `zookeeper`, started on loopback by `trawl_tests::zookeeper::real`): serverset
//! and Nerve members whose addresses are an nginx fleet on loopback, so every discovered
//! target is really scraped.

use std::path::Path;
use std::time::Duration;

use trawl_tests::zookeeper::real::{RealZk, Relay};

use super::kube::{labels_of, sample};
use super::scenario::Start;
use super::*;

/// A serverset member's data, as Finagle writes it.
pub(crate) fn serverset_member(host: &str, port: u16, shard: u32) -> String {
    format!(
        r#"{{"serviceEndpoint":{{"host":"{host}","port":{port}}},"additionalEndpoints":{{"admin-http":{{"host":"{host}","port":9990}}}},"status":"ALIVE","shard":{shard}}}"#
    )
}

/// A Nerve registration's data.
pub(crate) fn nerve_member(host: &str, port: u16, name: &str) -> String {
    format!(r#"{{"host":"{host}","port":{port},"name":"{name}"}}"#)
}

/// Members are discovered (the first server of the list refuses: the next one serves)
/// and scraped; members added, moved, removed and garbled follow their watches; the
/// server killed and restarted (the session resumes, its watches re-armed); a network
/// partition long enough for the session to expire (counted; the tree is read again
/// and a member removed meanwhile goes).
pub(crate) fn zookeeper_members_follow_the_tree(dir: &Path, start: Start<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=6, 5);
    let port = port_of(&addrs[0]);
    let a = |i: u8| format!("127.0.0.{i}:{port}");
    let h = |i: u8| format!("127.0.0.{i}");
    let mut zk = RealZk::start(dir);
    let relay = Relay::start(zk.addr());
    let dead = free_port();
    let mut w = zk.writer();
    let web = "/aurora/prod/web";
    w.create_all(
        &format!("{web}/member_0000000001"),
        serverset_member(&h(2), port, 0).as_bytes(),
    );
    w.create_all(
        &format!("{web}/member_0000000002"),
        serverset_member(&h(3), port, 1).as_bytes(),
    );
    w.create_all(
        "/nerve/services/api/i-1",
        nerve_member(&h(4), port, "api").as_bytes(),
    );
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: serverset\n    serverset_sd_configs: [{{servers: ['127.0.0.1:{dead}', '127.0.0.1:{relay}'], paths: ['{web}'], timeout: 2s}}]\n    relabel_configs:\n      - {{source_labels: [__meta_serverset_shard], target_label: shard}}\n      - {{source_labels: [__meta_serverset_status], target_label: status}}\n      - {{source_labels: [__meta_serverset_endpoint_port_admin_http], target_label: admin_port}}\n      - {{source_labels: [__meta_serverset_path], target_label: zpath}}\n  - job_name: nerve\n    nerve_sd_configs: [{{servers: ['127.0.0.1:{relay}'], paths: [/nerve/services], timeout: 2s}}]\n    relabel_configs:\n      - {{source_labels: [__meta_nerve_endpoint_name], target_label: name}}\n      - {{source_labels: [__meta_nerve_path], target_label: zpath}}\n",
            relay = relay.port
        ),
    )
    .expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    eventually(Duration::from_secs(30), "every member up", || {
        up_instances(&*t, "serverset") == [a(2), a(3)] && up_instances(&*t, "nerve") == [a(4)]
    });
    let l = labels_of(&*t, "serverset");
    assert_eq!(l[0]["shard"], "0");
    assert_eq!(l[1]["shard"], "1");
    assert_eq!(l[0]["status"], "ALIVE");
    assert_eq!(l[0]["admin_port"], "9990");
    assert_eq!(l[0]["zpath"], format!("{web}/member_0000000001"));
    let l = labels_of(&*t, "nerve");
    assert_eq!(l[0]["name"], "api");
    assert_eq!(l[0]["zpath"], "/nerve/services/api/i-1");

    // Added, moved, removed; a member whose data is garbage has no target.
    w.create_all(
        &format!("{web}/member_0000000003"),
        serverset_member(&h(5), port, 2).as_bytes(),
    );
    w.set(
        &format!("{web}/member_0000000001"),
        serverset_member(&h(6), port, 0).as_bytes(),
    );
    w.delete(&format!("{web}/member_0000000002"));
    w.create_all(
        &format!("{web}/member_0000000004"),
        b"{\"serviceEndpoint\":",
    );
    eventually(Duration::from_secs(20), "added, moved, removed", || {
        up_instances(&*t, "serverset") == [a(5), a(6)]
    });

    // The server dies and comes back: the session resumes, its watches with it.
    drop(w);
    zk.restart();
    let mut w = zk.writer();
    w.create_all(
        "/nerve/services/api/i-2",
        nerve_member(&h(2), port, "api").as_bytes(),
    );
    eventually(
        Duration::from_secs(30),
        "a member added after the restart",
        || up_instances(&*t, "nerve") == [a(2), a(4)],
    );
    let before = sample(&*t, "prometheus_treecache_zookeeper_failures_total").unwrap_or(0.0);

    // A partition longer than the session timeout: the server expires the sessions;
    // what changed meanwhile is found when the trees are read again.
    relay.freeze(true);
    std::thread::sleep(Duration::from_millis(4500));
    w.delete("/nerve/services/api/i-1");
    w.create_all(
        &format!("{web}/member_0000000005"),
        serverset_member(&h(3), port, 4).as_bytes(),
    );
    relay.freeze(false);
    eventually(
        Duration::from_secs(40),
        "caught up after the expiry",
        || {
            up_instances(&*t, "nerve") == [a(2)]
                && up_instances(&*t, "serverset") == [a(3), a(5), a(6)]
        },
    );
    let after = sample(&*t, "prometheus_treecache_zookeeper_failures_total").unwrap_or(0.0);
    assert!(
        after >= before + 2.0,
        "each provider's expiry counted: {before} -> {after}"
    );
}
