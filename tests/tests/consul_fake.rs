//! The fake Consul agent (`trawl_tests::consul`) checked with a real Consul client:
//! py-consul (PyPI) runs `src/consul/client_check.py` against it — the agent's
//! datacenter, the catalog, blocking queries that time out with the same index and wake
//! on a registration or a check change, tag, node-meta, `filter` and `passing`
//! narrowing, ACL tokens, another datacenter.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use trawl_tests::consul::server::ConsulServer;
use trawl_tests::consul::{Catalog, Instance, Node};

#[test]
fn a_real_consul_client_agrees_with_the_fake() {
    let mut catalog = Catalog::new("dc-test");
    let mut meta = BTreeMap::new();
    meta.insert("rack".to_owned(), "r1".to_owned());
    catalog.register_node(Node {
        name: "n1".into(),
        address: "127.0.0.2".into(),
        meta,
        ..Node::default()
    });
    catalog.register(Instance::new("n1", "web", "web-1", "", 8080).tags(&["prod"]));
    catalog
        .register(Instance::new("n1", "web", "web-2", "127.0.0.3", 8081).tags(&["prod", "canary"]));
    let server = ConsulServer::start(catalog);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/src/consul/client_check.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(server.addr().port().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = Vec::new();
    for line in stdout.lines() {
        let line = line.expect("a line");
        if let Some(step) = line.strip_suffix(" ?") {
            // Let the client's blocking query reach the server first.
            std::thread::sleep(Duration::from_millis(300));
            match step {
                "register api" => {
                    server.with(|c| c.register(Instance::new("n1", "api", "api-1", "", 9000)));
                }
                "fail a check" => {
                    server.with(|c| c.set_check("n1", "web-2", "service:web-2", "critical"));
                }
                "require token" => server.require_token(Some("s3cret")),
                other => panic!("unknown step {other}"),
            }
            writeln!(stdin, "go").expect("answer the client");
            continue;
        }
        lines.push(line);
    }
    let out = child.wait_with_output().expect("the client ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{lines:#?}\n{err}");
    assert_eq!(
        lines,
        [
            "dc dc-test",
            r#"services {"consul": [], "web": ["canary", "prod"]}"#,
            "timeout True True",
            "woken True True True",
            r#"health [["n1", "web-1", 8080, ["passing", "passing"]], ["n1", "web-2", 8081, ["passing", "passing"]]]"#,
            r#"filtered ["web-2"]"#,
            "health woken True True",
            r#"passing ["web-1"]"#,
            "acl denied",
            "token True",
            "other dc True",
        ],
        "{err}"
    );
    // The client's requests, as the fake saw them: blocking ones carry index and wait.
    let blocking: Vec<String> = server
        .requests()
        .iter()
        .filter(|q| q.param("index").is_some())
        .map(|q| format!("{} wait={}", q.path, q.param("wait").unwrap_or("")))
        .collect();
    assert_eq!(
        blocking,
        [
            "/v1/catalog/services wait=1s",
            "/v1/catalog/services wait=30s",
            "/v1/health/service/web wait=30s",
        ]
    );
}
