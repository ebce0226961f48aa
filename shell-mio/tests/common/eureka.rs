//! Eureka discovery end to end, shared by both shells: the fake Eureka
//! (`trawl_tests::eureka`) holds instances of an nginx fleet on loopback, so every
//! discovered target is really scraped.

use std::path::Path;
use std::time::Duration;

use trawl_tests::eureka::{EurekaServer, Instance, Registry};

use super::kube::labels_of;
use super::scenario::Start;
use super::*;

/// Instances are discovered from the XML registry and scraped, named by their instance
/// id; an instance that is down is relabeled away; failures (a 500, a cut XML answer)
/// keep the targets; an instance cancelled and one registered follow within a refresh.
pub(crate) fn eureka_instances_follow_the_registry(dir: &Path, start: Start<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=5, 5);
    let port = port_of(&addrs[0]);
    let mut reg = Registry::new();
    reg.put(Instance::new("web", "web-1", "127.0.0.2", port).meta("team", "edge"));
    reg.put(Instance::new("web", "web-2", "127.0.0.3", port));
    reg.put(Instance::new("api", "api-1", "127.0.0.4", port).meta("prometheus.path", "/metrics"));
    let mut down = Instance::new("api", "api-2", "127.0.0.5", port);
    down.status = "DOWN".into();
    reg.put(down);
    let e = EurekaServer::start(reg);
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: eureka\n    eureka_sd_configs: [{{server: '{}', refresh_interval: 1s}}]\n    relabel_configs:\n      - {{source_labels: [__meta_eureka_app_instance_status], regex: UP, action: keep}}\n      - {{source_labels: [__meta_eureka_app_name], target_label: app}}\n      - {{source_labels: [__meta_eureka_app_instance_metadata_team], target_label: team}}\n      - {{source_labels: [__meta_eureka_app_instance_port_enabled], target_label: port_enabled}}\n      - {{source_labels: [__meta_eureka_app_instance_datacenterinfo_name], target_label: dc}}\n",
            e.url()
        ),
    )
    .expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    eventually(Duration::from_secs(20), "every instance that is up", || {
        up_instances(&*t, "eureka") == ["api-1", "web-1", "web-2"]
    });
    let l = labels_of(&*t, "eureka");
    assert_eq!(l[0]["app"], "API");
    assert_eq!(l[1]["app"], "WEB");
    assert_eq!(l[1]["team"], "edge");
    assert_eq!(l[1]["port_enabled"], "true");
    assert_eq!(l[1]["dc"], "MyOwn");

    e.fail_next(&[(500, "boom"), (200, "<applications><application><name>X")]);
    eventually(Duration::from_secs(20), "failures counted", || {
        refresh_failures(&*t, "eureka") >= 2.0
    });
    assert_eq!(up_instances(&*t, "eureka"), ["api-1", "web-1", "web-2"]);

    e.with(|r| {
        r.remove("web", "web-1");
        r.put(Instance::new("web", "web-3", "127.0.0.5", port));
    });
    eventually(Duration::from_secs(20), "web-1 out, web-3 in", || {
        up_instances(&*t, "eureka") == ["api-1", "web-2", "web-3"]
    });
    assert!(
        e.requests()
            .iter()
            .all(|q| q.path == "/eureka/apps" && q.header("accept").is_none())
    );
}
