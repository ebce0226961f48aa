//! Linode discovery end to end, shared by both shells: the fake Linode API
//! (`trawl_tests::linode`, on the wall clock) on loopback, the agent pointed at it by
//! the test-only API base. The instances' addresses are the fake's, never dialled: every
//! target is relabelled to the loopback nginx address its `lo=` tag names.

use std::path::Path;
use std::time::Duration;

use trawl_tests::cloud::RestServer;
use trawl_tests::linode::{Account, Instance};

use super::scenario::Start;
use super::*;

/// The account's token in these tests.
pub(crate) const TOKEN: &str = "LINODEE2ETOKEN";

/// An instance in `us-east` relabelled to `127.0.0.<lo>`.
pub(crate) fn instance(n: i64, lo: u8) -> Instance {
    Instance::new(n, &format!("web-{n}"), &format!("192.0.2.{n}")).tag(&format!("lo=127.0.0.{lo}"))
}

/// The main job's calls starting with `prefix`.
fn count(api: &RestServer<Account>, prefix: &str) -> usize {
    let auth = format!("Bearer {TOKEN}");
    api.requests()
        .iter()
        .filter(|r| {
            r.header("authorization") == Some(auth.as_str()) && r.line().starts_with(prefix)
        })
        .count()
}

const LISTING: &str = "GET /v4/linode/instances?page=1&";
const POLL: &str = "GET /v4/account/events?";

/// Instances of the block's region are discovered page by page (two a page) with the
/// block's token, relabelled to loopback and scraped under their labels; an offline
/// instance is relabelled away; between full listings the agent polls events and lists
/// again only when there are some (or every tenth poll); a deleted instance and a new
/// one are followed through their events; a failed call (500) keeps the targets; a
/// token without the events scope makes every refresh a full listing; a job whose token
/// is wrong is refused on every refresh, counted, and keeps no targets.
pub(crate) fn linode_instances_follow_the_account(dir: &Path, start: Start<'_>) {
    let (_nginx, addrs, _) = fleet(dir, 2..=5, 5);
    let port = port_of(&addrs[0]);
    let mut a = Account::new(TOKEN);
    a.max_page_size = 2;
    a.put(instance(1, 2));
    a.put(instance(2, 3));
    let mut offline = instance(3, 4);
    offline.status = "offline".into();
    a.put(offline);
    a.put(instance(9, 5).region("eu-west"));
    let api = RestServer::start(a);
    point_api(dir, "linode", &api.base());
    let block = |token: &str| {
        format!(
            "    linode_sd_configs:\n      - {{authorization: {{credentials: {token}}}, region: us-east, refresh_interval: 1s, port: {port}}}\n"
        )
    };
    let relabel = format!(
        "    relabel_configs:\n      - {{source_labels: [__meta_linode_status], regex: running, action: keep}}\n      - {{source_labels: [__meta_linode_tags], regex: '.*,lo=([^,]+),.*', target_label: __address__, replacement: '${{1}}:{port}'}}\n      - {{source_labels: [__meta_linode_instance_label], target_label: instance}}\n"
    );
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: linode\n{}{relabel}  - job_name: linode-wrong-token\n{}{relabel}",
            block(TOKEN),
            block("not-the-token"),
        ),
    )
    .expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    eventually(
        Duration::from_secs(30),
        "the running instances of us-east",
        || up_instances(&*t, "linode") == ["web-1", "web-2"],
    );
    let requests = api.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.line() == "GET /v4/linode/instances?page=2&page_size=500"),
        "the second page asked for: {:?}",
        api.calls()
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.path == "/v4/linode/instances")
            .all(|r| r.header("x-filter") == Some(r#"{"region": "us-east"}"#)),
        "the region goes as X-Filter"
    );

    // Quiet: polls, and (ten polls apart) at most one full listing in four seconds.
    std::thread::sleep(Duration::from_secs(3));
    let (polls, listings) = (count(&api, POLL), count(&api, LISTING));
    std::thread::sleep(Duration::from_secs(4));
    let polled = count(&api, POLL) - polls;
    let listed = count(&api, LISTING) - listings;
    assert!(
        polled >= 2 && listed <= 1,
        "{polled} polls and {listed} full listings in four quiet seconds"
    );

    // The main job's own next three calls fail (the wrong-token job fails on every
    // refresh anyway: the count is compared with where it stood).
    let before = job_refresh_failures(&*t, "linode", "linode");
    api.fail_next_for(
        &format!("Bearer {TOKEN}"),
        &[(500, r#"{"errors":[{"reason":"boom"}]}"#); 3],
    );
    eventually(
        Duration::from_secs(20),
        "the three failures served and counted",
        || {
            api.pending_failures() == 0
                && job_refresh_failures(&*t, "linode", "linode") >= before + 3.0
        },
    );
    assert_eq!(
        up_instances(&*t, "linode"),
        ["web-1", "web-2"],
        "the last targets stay"
    );

    api.with(|a| {
        a.remove(1);
        a.put(instance(4, 5));
    });
    let from = api.requests().len();
    eventually(Duration::from_secs(30), "web-1 out, web-4 in", || {
        up_instances(&*t, "linode") == ["web-2", "web-4"]
    });
    // Through the events: the main job's first poll after the change finds them and is
    // followed at once by a full listing (not only by the tenth poll's).
    let main: Vec<String> = api.requests()[from..]
        .iter()
        .filter(|r| r.header("authorization") == Some(format!("Bearer {TOKEN}").as_str()))
        .map(|r| r.line())
        .collect();
    let poll = main
        .iter()
        .position(|l| l.starts_with(POLL))
        .expect("a poll");
    assert!(
        main.get(poll + 1).is_some_and(|l| l.starts_with(LISTING)),
        "the poll after the change is followed by a listing: {main:?}"
    );
    assert!(up_instances(&*t, "linode-wrong-token").is_empty());
    let wrong = requests_with(&api, "Bearer not-the-token");
    assert!(wrong >= 2, "the wrong token is tried on every refresh");

    // A token that may not read events: polling stops, every refresh lists everything.
    api.with(|a| a.events_scope = false);
    std::thread::sleep(Duration::from_secs(3));
    let (polls, listings) = (count(&api, POLL), count(&api, LISTING));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(count(&api, POLL), polls, "no poll once events are refused");
    let listed = count(&api, LISTING) - listings;
    assert!(
        listed >= 2,
        "a full listing every refresh: {listed} in three seconds"
    );
    api.with(|a| a.put(instance(5, 2)));
    eventually(Duration::from_secs(30), "web-5 in", || {
        up_instances(&*t, "linode") == ["web-2", "web-4", "web-5"]
    });
}

fn requests_with(api: &RestServer<Account>, auth: &str) -> usize {
    api.requests()
        .iter()
        .filter(|r| r.header("authorization") == Some(auth))
        .count()
}
