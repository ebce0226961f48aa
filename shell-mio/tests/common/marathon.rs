//! Marathon discovery end to end, shared by both shells: the fake Marathon
//! (`trawl_tests::marathon`) holds apps whose tasks are an nginx fleet on loopback, so
//! every discovered target is really scraped.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use trawl_tests::marathon::{App, Apps, MarathonServer, Ports};

use super::kube::{labels_of, sample};
use super::scenario::Start;
use super::*;

/// Apps are discovered behind a DC/OS token read from a file, and scraped; a task added,
/// an app destroyed, a Marathon that fails (its targets kept, the failures counted) and
/// a rotated token follow within a refresh.
pub(crate) fn marathon_apps_follow_the_cluster(dir: &Path, start: Start<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=6, 5);
    let port = port_of(&addrs[0]);
    let a = |i: u8| format!("127.0.0.{i}:{port}");
    let h = |i: u8| format!("127.0.0.{i}");
    let metrics = BTreeMap::from([("metrics".to_owned(), "yes".to_owned())]);
    let mut apps = Apps::new();
    apps.put(
        App::new(
            "/prod/web",
            "nginx:1",
            Ports::Definitions(vec![metrics.clone()]),
        )
        .label("team", "edge")
        .task("prod_web.1", &h(2), &[port])
        .task("prod_web.2", &h(3), &[port]),
    );
    apps.put(
        App::new(
            "/prod/api",
            "api:7",
            Ports::Mappings(vec![(9100, metrics.clone())]),
        )
        .task("prod_api.1", &h(4), &[port]),
    );
    let m = MarathonServer::start(apps);
    m.require_token(Some("t0ken-1"));
    let token = dir.join("marathon-token");
    std::fs::write(&token, "t0ken-1\n").expect("token");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: marathon\n    marathon_sd_configs: [{{servers: ['{}'], refresh_interval: 1s, auth_token_file: '{}'}}]\n    relabel_configs:\n      - {{source_labels: [__meta_marathon_app], target_label: app}}\n      - {{source_labels: [__meta_marathon_app_label_team], target_label: team}}\n      - {{source_labels: [__meta_marathon_port_definition_label_metrics, __meta_marathon_port_mapping_label_metrics], separator: '', target_label: metrics}}\n      - {{source_labels: [__meta_marathon_image], target_label: image}}\n",
            m.url(),
            token.display()
        ),
    )
    .expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    eventually(Duration::from_secs(20), "every task up", || {
        up_instances(&*t, "marathon") == [a(2), a(3), a(4)]
    });
    let l = labels_of(&*t, "marathon");
    assert_eq!(l[0]["app"], "/prod/web");
    assert_eq!(l[0]["team"], "edge");
    assert_eq!(l[0]["metrics"], "yes");
    assert_eq!(l[0]["image"], "nginx:1");
    assert_eq!(l[2]["app"], "/prod/api");
    assert_eq!(l[2]["metrics"], "yes", "a port mapping's label");

    // Scaled up, an app destroyed.
    m.with(|apps| {
        let web = apps.all().find(|x| x.id == "/prod/web").cloned();
        if let Some(web) = web {
            apps.put(web.task("prod_web.3", &h(5), &[port]));
        }
        apps.remove("/prod/api");
    });
    eventually(Duration::from_secs(20), "a task in, an app out", || {
        up_instances(&*t, "marathon") == [a(2), a(3), a(5)]
    });

    // Marathon fails: counted, the targets stay; then it recovers.
    m.fail_next(3, 503, "Service Unavailable");
    eventually(Duration::from_secs(20), "failures counted", || {
        refresh_failures(&*t, "marathon") >= 3.0
    });
    assert_eq!(up_instances(&*t, "marathon"), [a(2), a(3), a(5)]);

    // The token rotates: the file is read again for every request.
    std::fs::write(&token, "t0ken-2\n").expect("token");
    m.require_token(Some("t0ken-2"));
    m.with(|apps| {
        let web = apps.all().find(|x| x.id == "/prod/web").cloned();
        if let Some(mut web) = web {
            web.tasks.retain(|t| t.id != "prod_web.1");
            apps.put(web);
        }
    });
    eventually(
        Duration::from_secs(20),
        "a task gone after the rotation",
        || up_instances(&*t, "marathon") == [a(3), a(5)],
    );
    let reqs = m.requests();
    assert!(
        reqs.iter()
            .all(|q| q.path == "/v2/apps/" && q.param("embed") == Some("apps.tasks"))
    );
    assert!(
        reqs.iter()
            .any(|q| q.header("authorization") == Some("token=t0ken-2"))
    );
    let _ = sample;
}
