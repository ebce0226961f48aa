//! Lightsail discovery end to end, shared by both shells: the fake Lightsail
//! (`trawl_tests::lightsail`, checked with boto3) behind the SigV4 front
//! (`tests/data/sigv4_front.py`, botocore re-signing every request). The instances'
//! addresses are the fake's private ones, never dialled: every target is relabelled to
//! the loopback nginx address its `loopback` tag names.

use std::path::Path;
use std::time::Duration;

use trawl_tests::lightsail::{Fleet, Instance, LightsailServer};

use super::ec2::{ACCESS_KEY, Front, SECRET_KEY};
use super::kube::labels_of;
use super::scenario::Start;
use super::*;

fn instance(name: &str, n: u8, lo: &str) -> Instance {
    Instance::new(name, &format!("172.26.0.{n}")).tag("loopback", lo)
}

/// Instances are discovered page by page through signed POSTs, relabelled to loopback
/// and scraped under their names; a stopped instance is relabelled away; a deleted one
/// and a new one are followed within a refresh; a failed call (500) keeps the targets;
/// a job whose key is wrong is refused on every refresh, counted, and keeps no targets.
pub(crate) fn lightsail_instances_follow_the_fleet(dir: &Path, start: Start<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=5, 5);
    let port = port_of(&addrs[0]);
    let mut f = Fleet::new();
    f.put(instance("web-1", 2, "127.0.0.2").tag("team", "edge"));
    f.put(instance("web-2", 3, "127.0.0.3"));
    let mut stopped = instance("web-3", 4, "127.0.0.4");
    stopped.state = "stopped".into();
    f.put(stopped);
    let ls = LightsailServer::start(f);
    let front = Front::start_for(dir, ls.port(), "lightsail", true);
    let relabel = format!(
        "    relabel_configs:\n      - {{source_labels: [__meta_lightsail_instance_state], regex: running, action: keep}}\n      - {{source_labels: [__meta_lightsail_tag_loopback], target_label: __address__, replacement: '${{1}}:{port}'}}\n      - {{source_labels: [__meta_lightsail_instance_name], target_label: instance}}\n      - {{source_labels: [__meta_lightsail_tag_team], target_label: team}}\n      - {{source_labels: [__meta_lightsail_availability_zone], target_label: az}}\n"
    );
    let block = |secret: &str| {
        format!(
            "    lightsail_sd_configs:\n      - {{region: us-east-1, endpoint: 'http://127.0.0.1:{}', access_key: {ACCESS_KEY}, secret_key: '{secret}', refresh_interval: 1s}}\n",
            front.port
        )
    };
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: lightsail\n{}{relabel}  - job_name: lightsail-wrong-key\n{}{relabel}",
            block(SECRET_KEY),
            block("not-the-key"),
        ),
    )
    .expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    eventually(Duration::from_secs(30), "the running instances", || {
        up_instances(&*t, "lightsail") == ["web-1", "web-2"]
    });
    let l = labels_of(&*t, "lightsail");
    assert_eq!(l[0]["team"], "edge");
    assert_eq!(l[0]["az"], "us-east-1a");
    // Two pages a refresh: the second asked for with the first's token.
    assert!(
        ls.calls()
            .iter()
            .any(|(_, body)| body == r#"{"pageToken":"2"}"#),
        "{:?}",
        ls.calls()
    );

    ls.fail_next(&[(500, r#"{"__type":"InternalFailure","message":"boom"}"#)]);
    eventually(Duration::from_secs(20), "failures counted", || {
        refresh_failures(&*t, "lightsail") >= 3.0
    });
    assert_eq!(up_instances(&*t, "lightsail"), ["web-1", "web-2"]);

    ls.with(|f| {
        f.remove("web-1");
        f.put(instance("web-4", 5, "127.0.0.5"));
    });
    eventually(Duration::from_secs(30), "web-1 out, web-4 in", || {
        up_instances(&*t, "lightsail") == ["web-2", "web-4"]
    });
    assert!(up_instances(&*t, "lightsail-wrong-key").is_empty());
    let lines = front.lines();
    assert!(lines.iter().any(|l| l == "bad signature"), "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l == "ok" || l == "bad signature" || l.starts_with("upstream 500")),
        "every request reached the fake (its injected 500 aside) or was refused for its signature: {lines:?}"
    );
}
