//! Consul discovery end to end, shared by both shells: the fake Consul agent
//! (`trawl_tests::consul`, checked with a real Consul client in
//! `tests/tests/consul_fake.rs`) registers services whose addresses are an nginx fleet on
//! loopback, so every discovered target is really scraped.

use std::path::Path;
use std::time::Duration;

use trawl_tests::consul::server::ConsulServer;
use trawl_tests::consul::{Catalog, Instance, Node};

use super::kube::{labels_of, sample};
use super::scenario::Start;
use super::*;

/// The catalog the scenario starts from: `web` on two nodes (one with a service
/// address), `db` with its own address; every address in the fleet at `port`.
pub(crate) fn catalog(port: u16) -> Catalog {
    let mut c = Catalog::new("dc-test");
    for (name, ip, rack) in [("n1", "127.0.0.2", "r1"), ("n2", "127.0.0.3", "r2")] {
        let mut node = Node {
            name: name.into(),
            address: ip.into(),
            ..Node::default()
        };
        node.meta.insert("rack".into(), rack.into());
        node.tagged_addresses.insert("lan".into(), ip.into());
        c.register_node(node);
    }
    c.register(Instance::new("n1", "web", "web-1", "", port).tags(&["prod", "v1"]));
    c.register(
        Instance::new("n2", "web", "web-2", "", port)
            .tags(&["prod"])
            .meta("version", "2"),
    );
    c.register(Instance::new("n1", "db", "db-1", "127.0.0.4", port).tags(&["db"]));
    c
}

/// Jobs: the whole catalog (the datacenter asked from the agent), the `prod` tag, the
/// listed `db` service; each keeps a few `__meta_consul_*` labels.
pub(crate) fn config(server: &str, token: &str) -> String {
    let keep = "    relabel_configs:\n      - {source_labels: [__meta_consul_service], regex: consul, action: drop}\n      - {source_labels: [__meta_consul_service], target_label: service}\n      - {source_labels: [__meta_consul_dc], target_label: dc}\n      - {source_labels: [__meta_consul_health], target_label: health}\n      - {source_labels: [__meta_consul_metadata_rack], target_label: rack}\n      - {source_labels: [__meta_consul_tags], target_label: tags}\n      - {source_labels: [__meta_consul_service_metadata_version], target_label: version}\n";
    format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n\
         - job_name: all\n    consul_sd_configs: [{{server: '{server}', token: '{token}', refresh_interval: 1s}}]\n{keep}\
         - job_name: prod\n    consul_sd_configs: [{{server: '{server}', token: '{token}', datacenter: dc-test, tags: [prod], refresh_interval: 1s}}]\n{keep}\
         - job_name: listed\n    consul_sd_configs: [{{server: '{server}', token: '{token}', services: [db], refresh_interval: 1s}}]\n{keep}"
    )
    .replace("\n- job_name", "\n  - job_name")
    .replace("scrape_configs:\n- job", "scrape_configs:\n  - job")
}

/// Every job discovers through the fake and its targets are scraped; registrations,
/// a failing check, deregistrations, a Consul that fails and a snapshot restore (the
/// index goes backwards) follow within seconds; the last good targets stay through
/// the failures; the RPC failures are counted.
pub(crate) fn consul_services_follow_the_catalog(dir: &Path, start: Start<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=6, 5);
    let port = port_of(&addrs[0]);
    let a = |i: u8| format!("127.0.0.{i}:{port}");
    let consul = ConsulServer::start(catalog(port));
    consul.require_token(Some("s3cret"));
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config(&consul.addr().to_string(), "s3cret")).expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    let wait = |what: &str, f: &dyn Fn(&dyn Shell) -> bool| {
        let t = &*t;
        eventually(Duration::from_secs(20), what, || f(t));
    };
    wait("every job's targets up", &|t| {
        up_instances(t, "all") == [a(2), a(3), a(4)]
            && up_instances(t, "prod") == [a(2), a(3)]
            && up_instances(t, "listed") == [a(4)]
    });
    let web = labels_of(&*t, "all");
    assert_eq!(web[0]["service"], "web");
    assert_eq!(web[0]["dc"], "dc-test", "the agent's datacenter");
    assert_eq!(web[0]["health"], "passing");
    assert_eq!(web[0]["rack"], "r1");
    assert_eq!(web[0]["tags"], ",prod,v1,");
    assert_eq!(web[1]["version"], "2");
    assert_eq!(web[2]["service"], "db");
    for call in ["service", "services"] {
        let n = sample(
            &*t,
            &format!(
                "prometheus_sd_consul_rpc_duration_seconds_count{{call=\"{call}\",endpoint=\"catalog\"}}"
            ),
        );
        assert!(n.unwrap_or(0.0) >= 1.0, "{call} calls timed: {n:?}");
    }

    // A new instance, a check going critical, an instance leaving.
    consul.with(|c| {
        let mut node = Node {
            name: "n3".into(),
            address: "127.0.0.5".into(),
            ..Node::default()
        };
        node.meta.insert("rack".into(), "r3".into());
        c.register_node(node);
        c.register(Instance::new("n3", "web", "web-3", "", port).tags(&["prod"]));
        c.set_check("n1", "web-1", "service:web-1", "critical");
        c.deregister("n2", "web-2");
    });
    wait("web-3 in, web-2 out", &|t| {
        up_instances(t, "all") == [a(2), a(4), a(5)] && up_instances(t, "prod") == [a(2), a(5)]
    });
    assert_eq!(labels_of(&*t, "prod")[0]["health"], "critical");

    // Consul fails for a while: counted, the targets stay.
    consul.fail_next(4, 500, "rpc error making call: No cluster leader");
    consul.with(|c| c.register(Instance::new("n1", "web", "web-4", "127.0.0.6", port)));
    wait("failures counted", &|t| {
        sample(t, "prometheus_sd_consul_rpc_failures_total").unwrap_or(0.0) >= 1.0
    });
    assert_eq!(
        up_instances(&*t, "listed"),
        [a(4)],
        "last good targets kept"
    );
    // It recovers (the failed watches retry after 15 s).
    eventually(Duration::from_secs(40), "web-4 after the failures", || {
        up_instances(&*t, "all").contains(&a(6))
    });

    // A snapshot restore takes the indexes back: the watches start over from the
    // lower index and still see the next change.
    consul.restore(12);
    std::thread::sleep(Duration::from_millis(500));
    consul.with(|c| c.deregister("n1", "db-1"));
    wait("db gone after the restore", &|t| {
        !up_instances(t, "all").contains(&a(4)) && up_instances(t, "listed").is_empty()
    });
}

/// The block `trawl sd` runs once: the catalog, then each service.
pub(crate) fn minimal_config(server: &str) -> String {
    format!("scrape_configs:\n  - job_name: all\n    consul_sd_configs: [{{server: '{server}'}}]\n")
}
