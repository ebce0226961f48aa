//! The fake Scaleway API (`trawl_tests::scaleway`) checked with a real client:
//! Scaleway's own Python SDK (PyPI `scaleway`) runs `src/scaleway_client_check.py`
//! against it — Instance servers paged and filtered by tag, decoded into its models;
//! IPAM's address of a private NIC; Elastic Metal servers, offers and images; a wrong
//! secret key refused with the API's error.

use trawl_tests::cloud::RestServer;
use trawl_tests::pycheck;
use trawl_tests::scaleway::{Metal, Project, Server};

#[test]
fn scaleways_sdk_reads_the_fake_as_scaleway() {
    if pycheck::missing("scaleway", "scaleway==2.12.0") {
        return;
    }
    let mut p = Project::default();
    p.max_per_page = 2;
    for n in 1..=3 {
        p.put(Server::new(n, &format!("web-{n}"), &format!("192.0.2.{n}")).tag("web"));
    }
    let mut db = Server::new(4, "db", "192.0.2.4");
    db.public_ips.clear();
    db.private_nics.push(("nic-4".into(), "10.0.0.4".into()));
    p.put(db);
    p.put_metal(Metal {
        id: "m1".into(),
        name: "metal-1".into(),
        status: "ready".into(),
        tags: vec![],
        ipv4: "198.51.100.1".into(),
    });
    let key = p.secret_key.clone();
    let server = RestServer::start(p);
    let lines = pycheck::run("scaleway_client_check.py", &[&server.base(), &key]);
    assert_eq!(
        lines,
        [
            "web-1 running fr-par-1 ['web'] [('192.0.2.1', 'inet')] x86_64",
            "web-2 running fr-par-1 ['web'] [('192.0.2.2', 'inet')] x86_64",
            "web-3 running fr-par-1 ['web'] [('192.0.2.3', 'inet')] x86_64",
            "nic db [('10.0.0.4/32', 'nic-4')]",
            "metal [('metal-1', 'ready', ['198.51.100.1'])] ['EM-A115X-SSD'] ['Ubuntu']",
            "refused: 401 denied_authentication",
        ]
    );
    let calls = server.calls();
    assert!(
        calls.iter().any(|c| c.contains("page=2")),
        "the SDK asks for the second page itself: {calls:?}"
    );
}
