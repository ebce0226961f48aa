//! PuppetDB discovery end to end, shared by both shells: a real PuppetDB (Debian's
//! package, on a PostgreSQL cluster of its own; `trawl_tests::puppetdb::server`) loaded
//! with catalogs through its command API, and the fake PuppetDB
//! (`trawl_tests::puppetdb::Db`) for the failures a real one cannot be made to give.
//! Nodes' certnames are never dialled: every target is relabelled to the loopback nginx
//! address its class's `listen` parameter names.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use trawl_tests::cloud::RestServer;
use trawl_tests::puppetdb::server::{self, Server};
use trawl_tests::puppetdb::{Db, Resource};

use super::scenario::Start;
use super::*;

/// The query the jobs ask.
pub(crate) const QUERY: &str = r#"resources { type = "Class" and title = "Node_exporter" }"#;

/// The real PuppetDB, or `None` where it is not installed (outside CI: skipped).
pub(crate) fn real(dir: &Path) -> Option<Server> {
    if !server::available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "puppetdb and postgresql-15 are missing: .ci/run installs them"
        );
        eprintln!("skipped: apt-get install puppetdb postgresql-15 to run this test");
        return None;
    }
    Some(Server::start(dir))
}

/// A node's `Class[Node_exporter]` listening on `listen`, and a class the query leaves
/// out.
pub(crate) fn catalog(listen: &str, ensure: &str) -> Vec<Value> {
    vec![
        json!({"type": "Class", "title": "Node_exporter", "tags": ["class", "node_exporter"],
            "parameters": {"listen": listen, "ensure": ensure, "collectors": ["cpu", "meminfo"],
                "options": {"log": {"level": "info"}}, "weight": 1.5, "threads": 1000000,
                "extra": [], "comment": ""}}),
        json!({"type": "Class", "title": "Ssh", "tags": ["class", "ssh"], "parameters": {"port": 22}}),
    ]
}

fn relabel() -> String {
    "    relabel_configs:\n      - {source_labels: [__meta_puppetdb_parameter_ensure], regex: running, action: keep}\n      - {source_labels: [__meta_puppetdb_parameter_listen], target_label: __address__}\n      - {source_labels: [__meta_puppetdb_certname], target_label: instance}\n".into()
}

/// The discovered labels of `job`'s target `instance`.
fn discovered(t: &dyn Shell, job: &str, instance: &str) -> Value {
    let v: Value = serde_json::from_str(&t.targets_json()).expect("JSON");
    v["data"]["activeTargets"]
        .as_array()
        .expect("active")
        .iter()
        .find(|x| x["labels"]["job"] == job && x["labels"]["instance"] == instance)
        .map(|x| x["discoveredLabels"].clone())
        .unwrap_or(Value::Null)
}

/// The classes a query selects become targets (relabelled to loopback by a
/// parameter), with 3.x's labels — parameters flattened, numbers as Go writes them;
/// a stopped one relabelled away; a node whose catalog loses the class, and a
/// deactivated node, leave; a new node comes in; a query PuppetDB cannot parse is
/// refused on every refresh, counted and logged; a job against the fake PuppetDB keeps
/// its targets through injected 500s.
pub(crate) fn puppetdb_classes_follow_the_catalogs(dir: &Path, start: Start<'_>, pdb: &Server) {
    let (_nginx, addrs, _) = fleet(dir, 2..=6, 5);
    let port = port_of(&addrs[0]);
    let lo = |n: u8| format!("127.0.0.{n}:{port}");
    pdb.replace_catalog("web1.example.com", 1, &catalog(&lo(2), "running"));
    pdb.replace_catalog("web2.example.com", 1, &catalog(&lo(3), "running"));
    pdb.replace_catalog("web3.example.com", 1, &catalog(&lo(4), "stopped"));
    pdb.replace_catalog(
        "db1.example.com",
        1,
        &[json!({"type": "Class", "title": "Postgresql", "tags": ["class"], "parameters": {}})],
    );
    let fake = RestServer::start(Db {
        resources: vec![
            Resource::class("f1.example.com", "Node_exporter")
                .param("ensure", json!("running"))
                .param("listen", json!(lo(5))),
        ],
    });
    let job = |name: &str, url: &str, query: &str| {
        format!(
            "  - job_name: {name}\n    puppetdb_sd_configs:\n      - {{url: '{url}', query: '{}', include_parameters: true, refresh_interval: 1s}}\n{}",
            query.replace('\'', "''"),
            relabel()
        )
    };
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n{}{}{}",
            job("puppetdb", &pdb.url(), QUERY),
            job("puppetdb-bad-query", &pdb.url(), "resources { type = "),
            job("puppetdb-fake", &fake.base(), QUERY),
        ),
    )
    .expect("config");
    let t = start(dir, &cfg, &dir.join("data"));
    eventually(Duration::from_secs(30), "the running classes", || {
        up_instances(&*t, "puppetdb") == ["web1.example.com", "web2.example.com"]
            && up_instances(&*t, "puppetdb-fake") == ["f1.example.com"]
    });
    let l = discovered(&*t, "puppetdb", "web1.example.com");
    for (k, v) in [
        ("__meta_puppetdb_query", QUERY),
        ("__meta_puppetdb_certname", "web1.example.com"),
        ("__meta_puppetdb_type", "Class"),
        ("__meta_puppetdb_title", "Node_exporter"),
        ("__meta_puppetdb_exported", "false"),
        ("__meta_puppetdb_environment", "production"),
        ("__meta_puppetdb_parameter_collectors", "cpu,meminfo"),
        ("__meta_puppetdb_parameter_options_log_level", "info"),
        ("__meta_puppetdb_parameter_weight", "1.5"),
        ("__meta_puppetdb_parameter_threads", "1e+06"),
    ] {
        assert_eq!(l[k], v, "{k} in {l}");
    }
    assert!(
        l.get("__meta_puppetdb_parameter_extra").is_none()
            && l.get("__meta_puppetdb_parameter_comment").is_none(),
        "{l}"
    );
    let tags = l["__meta_puppetdb_tags"].as_str().unwrap_or_default();
    assert!(
        tags.starts_with(',') && tags.contains(",node_exporter,"),
        "{tags}"
    );
    assert_eq!(
        l["__meta_puppetdb_resource"].as_str().map(str::len),
        Some(40),
        "{l}"
    );

    // The fake's next three answers to the fake job fail, are counted for it; its
    // targets stay.
    let before = job_refresh_failures(&*t, "puppetdb", "puppetdb-fake");
    fake.fail_next(&[(500, "boom"); 3]);
    eventually(
        Duration::from_secs(20),
        "the three failures served and counted",
        || {
            fake.pending_failures() == 0
                && job_refresh_failures(&*t, "puppetdb", "puppetdb-fake") >= before + 3.0
        },
    );
    assert_eq!(
        up_instances(&*t, "puppetdb-fake"),
        ["f1.example.com"],
        "the last targets stay"
    );

    // web1 loses the class, web2 is deactivated, web4 comes.
    pdb.replace_catalog("web1.example.com", 2, &catalog(&lo(2), "running")[1..]);
    pdb.deactivate("web2.example.com");
    pdb.replace_catalog("web4.example.com", 1, &catalog(&lo(6), "running"));
    eventually(
        Duration::from_secs(30),
        "web1 and web2 out, web4 in",
        || up_instances(&*t, "puppetdb") == ["web4.example.com"],
    );
    assert!(up_instances(&*t, "puppetdb-bad-query").is_empty());
    assert!(
        job_refresh_failures(&*t, "puppetdb", "puppetdb-bad-query") >= 2.0,
        "the refused query counted on every refresh"
    );
    assert_eq!(job_refresh_failures(&*t, "puppetdb", "puppetdb"), 0.0);
}
