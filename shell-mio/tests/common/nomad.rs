//! Nomad discovery end to end, shared by both shells: the fake Nomad agent
//! (`trawl_tests::nomad`) holds service registrations whose addresses are an nginx fleet
//! on loopback, so every discovered target is really scraped.

use std::path::Path;
use std::time::Duration;

use trawl_tests::nomad::{NomadServer, Registration, Registry};

use super::kube::{labels_of, sample};
use super::scenario::Start;
use super::*;

/// The registrations are discovered behind an ACL token and scraped; a new one, a
/// removed one and a Nomad that fails (its targets kept, the failures counted) follow
/// within a refresh.
pub(crate) fn nomad_services_follow_the_registry(dir: &Path, start: Start<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=5, 5);
    let port = port_of(&addrs[0]);
    let a = |i: u8| format!("127.0.0.{i}:{port}");
    let mut reg = Registry::new("global");
    reg.register(Registration::new("web", "web-1", "127.0.0.2", port).tags(&["metrics", "v1"]));
    reg.register(Registration::new("web", "web-2", "127.0.0.3", port));
    reg.register(Registration::new("api", "api-1", "127.0.0.4", port).tags(&["metrics"]));
    let nomad = NomadServer::start(reg);
    nomad.require_token(Some("n0mad"));
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: nomad\n    nomad_sd_configs: [{{server: '{}', refresh_interval: 1s, authorization: {{credentials: n0mad}}}}]\n    relabel_configs:\n      - {{source_labels: [__meta_nomad_service], target_label: service}}\n      - {{source_labels: [__meta_nomad_tags], target_label: tags}}\n      - {{source_labels: [__meta_nomad_dc], target_label: dc}}\n",
            nomad.url()
        ),
    )
    .expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    eventually(Duration::from_secs(20), "every registration up", || {
        up_instances(&*t, "nomad") == [a(2), a(3), a(4)]
    });
    let l = labels_of(&*t, "nomad");
    assert_eq!(l[0]["service"], "web");
    assert_eq!(l[0]["tags"], ",metrics,v1,");
    assert_eq!(l[0]["dc"], "dc1");
    assert!(l[1].get("tags").is_none(), "no tags, no label: {}", l[1]);
    assert_eq!(l[2]["service"], "api");

    nomad.with(|r| {
        r.register(Registration::new("api", "api-2", "127.0.0.5", port));
        r.deregister("web-2");
    });
    eventually(Duration::from_secs(20), "api-2 in, web-2 out", || {
        up_instances(&*t, "nomad") == [a(2), a(4), a(5)]
    });

    // Nomad fails: counted, the targets stay; then it recovers.
    nomad.fail_next(3, 500, "No cluster leader");
    eventually(Duration::from_secs(20), "failures counted", || {
        sample(&*t, "prometheus_sd_nomad_failures_total").unwrap_or(0.0) >= 2.0
    });
    assert_eq!(up_instances(&*t, "nomad"), [a(2), a(4), a(5)]);
    nomad.with(|r| r.deregister("api-1"));
    eventually(
        Duration::from_secs(20),
        "api-1 gone after the failures",
        || up_instances(&*t, "nomad") == [a(2), a(5)],
    );
    let reqs = nomad.requests();
    assert!(
        reqs.iter()
            .all(|q| q.header("authorization") == Some("Bearer n0mad")),
        "every request carries the token"
    );
    assert!(reqs.iter().any(|q| q.path == "/v1/service/api"
        && q.param("namespace") == Some("default")
        && q.param("region") == Some("global")
        && q.param("stale") == Some("")));
}
