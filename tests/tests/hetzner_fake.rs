//! The fake Hetzner Cloud API (`trawl_tests::hetzner`) checked with a real client:
//! hcloud-python (PyPI, Hetzner's own) runs `src/hetzner_client_check.py` against it —
//! `servers.get_all` pages through `meta.pagination` with a label selector and reads
//! every server field discovery uses, `networks.get_all` lists the networks, and a
//! wrong token is refused with the API's error code. (No maintained client of the Robot
//! web service installs here; its answers follow the Robot reference and 3.x's tests.)

use trawl_tests::cloud::RestServer;
use trawl_tests::hetzner::{CloudServer, Project};
use trawl_tests::pycheck;

#[test]
fn hcloud_python_reads_the_fake_as_the_cloud_api() {
    if pycheck::missing("hcloud", "hcloud==2.5.1") {
        return;
    }
    let mut p = Project::new("check-token");
    p.per_page = 2;
    p.max_per_page = 2;
    p.networks.insert(4711, "backend".into());
    for n in 1..=5 {
        let env = if n == 4 { "dev" } else { "prod" };
        let mut s =
            CloudServer::new(n, &format!("web-{n}"), &format!("192.0.2.{n}")).label("env", env);
        if n == 2 {
            s.private.push((4711, "10.0.0.2".into()));
            s.ipv4 = None;
            s.status = "off".into();
        }
        p.put(s);
    }
    let server = RestServer::start(p);
    let lines = pycheck::run("hetzner_client_check.py", &[&server.base(), "check-token"]);
    assert_eq!(
        lines,
        [
            "1 web-1 running 192.0.2.1 2a01:4f8:c0c:1::/64  cx22 2 fsn1 ubuntu-24.04 [('env', 'prod')]",
            "2 web-2 off None 2a01:4f8:c0c:2::/64 4711=10.0.0.2 cx22 2 fsn1 ubuntu-24.04 [('env', 'prod')]",
            "3 web-3 running 192.0.2.3 2a01:4f8:c0c:3::/64  cx22 2 fsn1 ubuntu-24.04 [('env', 'prod')]",
            "5 web-5 running 192.0.2.5 2a01:4f8:c0c:5::/64  cx22 2 fsn1 ubuntu-24.04 [('env', 'prod')]",
            "networks [(4711, 'backend')]",
            "refused: unauthorized unable to authenticate",
        ]
    );
    let calls = server.calls();
    assert!(
        calls.iter().any(|c| c.contains("page=2")),
        "hcloud-python asked for a second page: {calls:?}"
    );
}
