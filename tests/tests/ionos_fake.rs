//! The fake IONOS Cloud API (`trawl_tests::ionos`) checked with a real client:
//! ionoscloud (PyPI, IONOS's own SDK) runs `src/ionos_client_check.py` against it — the
//! servers of a datacenter at depth 3 deserialised into the SDK's models with their
//! NICs and volumes, an empty datacenter without items, a wrong password refused.

use trawl_tests::cloud::RestServer;
use trawl_tests::ionos::{Cloud, Server};
use trawl_tests::pycheck;

#[test]
fn ionoscloud_reads_the_fake_as_the_cloud_api() {
    if pycheck::missing("ionoscloud", "ionoscloud==6.1.11") {
        return;
    }
    let mut c = Cloud::new();
    c.datacenter("dc2");
    c.put("dc1", Server::new(1, "web-1", "192.0.2.1"));
    let mut two = Server::new(2, "web-2", "192.0.2.2");
    two.vm_state = "SHUTOFF".into();
    two.nics
        .push((None, vec!["10.0.0.2".into(), "10.0.0.3".into()]));
    c.put("dc1", two);
    let server = RestServer::start(c);
    let lines = pycheck::run("ionos_client_check.py", &[&server.base()]);
    assert_eq!(
        lines,
        [
            "b0a5a2f1-0000-4000-8000-000000000001 web-1 RUNNING AVAILABLE [('public', ['192.0.2.1'])] 5a1d1b2c-0000-4000-8000-000000000001",
            "b0a5a2f1-0000-4000-8000-000000000002 web-2 SHUTOFF AVAILABLE [('public', ['192.0.2.2']), (None, ['10.0.0.2', '10.0.0.3'])] 5a1d1b2c-0000-4000-8000-000000000001",
            "empty None",
            "refused: 401",
        ]
    );
    assert!(
        server
            .calls()
            .iter()
            .all(|c| c.starts_with("GET /cloudapi/v6/datacenters/")),
        "{:?}",
        server.calls()
    );
}
