//! DigitalOcean discovery end to end, shared by both shells: the fake DigitalOcean API
//! (`trawl_tests::digitalocean`, checked with python-digitalocean) on loopback, the
//! agent pointed at it by the test-only API base. The droplets' and clusters' addresses
//! are the fake's, never dialled: every target is relabelled to the loopback nginx
//! address its `lo:` tag (droplets) or its name (clusters) spells.

use std::path::Path;
use std::time::Duration;

use trawl_tests::cloud::RestServer;
use trawl_tests::digitalocean::{Account, Database, Droplet};

use super::kube::labels_of;
use super::scenario::Start;
use super::*;

/// The account's token in these tests.
pub(crate) const TOKEN: &str = "dop_v1_e2e";

/// A droplet relabelled to `127.0.0.<lo>`.
pub(crate) fn droplet(id: i64, lo: u8) -> Droplet {
    Droplet::new(
        id,
        &format!("web-{id}"),
        &format!("192.0.2.{id}"),
        &format!("10.108.0.{id}"),
    )
    .tag(&format!("lo:127-0-0-{lo}"))
}

/// The relabelling of the droplet jobs: active droplets only, to the loopback address
/// of their `lo:` tag, named after the droplet.
pub(crate) fn droplet_relabel(port: u16) -> String {
    format!(
        "    relabel_configs:\n      - {{source_labels: [__meta_digitalocean_status], regex: active, action: keep}}\n      - {{source_labels: [__meta_digitalocean_tags], regex: '.*,lo:(\\d+)-(\\d+)-(\\d+)-(\\d+),.*', target_label: __address__, replacement: '${{1}}.${{2}}.${{3}}.${{4}}:{port}'}}\n      - {{source_labels: [__meta_digitalocean_droplet_name], target_label: instance}}\n      - {{source_labels: [__meta_digitalocean_region], target_label: region}}\n"
    )
}

/// Droplets are discovered page by page (two a page) with the block's token,
/// relabelled to loopback and scraped under their names; a droplet that is off is
/// relabelled away; a deleted droplet and a new one are followed within a refresh; a
/// failed call (500) keeps the targets; a database cluster is discovered through the
/// `databases` role; a job whose token is wrong is refused on every refresh, counted,
/// and keeps no targets.
pub(crate) fn digitalocean_droplets_follow_the_account(dir: &Path, start: Start<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=6, 5);
    let port = port_of(&addrs[0]);
    let mut a = Account::new(TOKEN);
    a.per_page = 2;
    a.put(droplet(1, 2).tag("team-edge"));
    a.put(droplet(2, 3));
    let mut off = droplet(3, 4);
    off.status = "off".into();
    a.put(off);
    let mut db = Database::new("9cc10173-e9ea-4176-9dbc-a4cee4c4ff30", "db-127-0-0-6");
    db.tags = vec!["production".into()];
    a.put_database(db);
    let api = RestServer::start(a);
    point_api(dir, "digitalocean", &api.base());
    let block = |token: &str| {
        format!(
            "    digitalocean_sd_configs:\n      - {{authorization: {{credentials: {token}}}, refresh_interval: 1s, port: {port}}}\n"
        )
    };
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: digitalocean\n{}{relabel}  - job_name: digitalocean-wrong-token\n{}{relabel}  - job_name: digitalocean-db\n    digitalocean_sd_configs:\n      - {{role: databases, bearer_token: {TOKEN}, refresh_interval: 1s, port: 25060}}\n    relabel_configs:\n      - {{source_labels: [__meta_digitalocean_db_name], regex: 'db-(\\d+)-(\\d+)-(\\d+)-(\\d+)', target_label: __address__, replacement: '${{1}}.${{2}}.${{3}}.${{4}}:{port}'}}\n      - {{source_labels: [__meta_digitalocean_db_name], target_label: instance}}\n      - {{source_labels: [__meta_digitalocean_db_tag_production], target_label: production}}\n",
            block(TOKEN),
            block("not-the-token"),
            relabel = droplet_relabel(port),
        ),
    )
    .expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    eventually(Duration::from_secs(30), "the active droplets", || {
        up_instances(&*t, "digitalocean") == ["web-1", "web-2"]
    });
    let l = labels_of(&*t, "digitalocean");
    assert_eq!(l[0]["region"], "nyc3");
    eventually(Duration::from_secs(30), "the database cluster", || {
        up_instances(&*t, "digitalocean-db") == ["db-127-0-0-6"]
    });
    assert_eq!(labels_of(&*t, "digitalocean-db")[0]["production"], "true");
    // Two pages a refresh: the second asked for as godo asks.
    let calls = api.calls();
    assert!(
        calls.iter().any(|c| c == "GET /v2/droplets?page=2"),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c == "GET /v2/databases?page=1&per_page=100"),
        "{calls:?}"
    );

    // The main job's own next three calls fail (the wrong-credential job fails on every
    // refresh anyway: the count is compared with where it stood).
    let before = refresh_failures(&*t, "digitalocean");
    api.fail_next_for(
        "Bearer dop_v1_e2e",
        &[(500, r#"{"id":"server_error","message":"boom"}"#); 3],
    );
    eventually(
        Duration::from_secs(20),
        "the three failures served and counted",
        || api.pending_failures() == 0 && refresh_failures(&*t, "digitalocean") >= before + 3.0,
    );
    assert_eq!(
        up_instances(&*t, "digitalocean"),
        ["web-1", "web-2"],
        "the last targets stay"
    );

    api.with(|a| {
        a.remove(1);
        a.put(droplet(4, 5));
    });
    eventually(Duration::from_secs(30), "web-1 out, web-4 in", || {
        up_instances(&*t, "digitalocean") == ["web-2", "web-4"]
    });
    assert!(up_instances(&*t, "digitalocean-wrong-token").is_empty());
    let wrong = api
        .requests()
        .iter()
        .filter(|r| r.header("authorization") == Some("Bearer not-the-token"))
        .count();
    assert!(wrong >= 2, "the wrong token is tried on every refresh");
}
