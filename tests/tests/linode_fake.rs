//! The fake Linode API (`trawl_tests::linode`) checked with a real client: linode_api4
//! (PyPI, Linode's own) runs `src/linode_client_check.py` against it — its paginated
//! lists go through every page, a region filter goes as `X-Filter`, addresses and IPv6
//! ranges decode into its models, events filtered by creation time arrive newest first,
//! and a wrong token is refused with the API's reason.

use trawl_tests::cloud::{RestServer, datetime};
use trawl_tests::linode::{Account, Instance};
use trawl_tests::pycheck;

#[test]
fn linode_api4_reads_the_fake_as_linode() {
    if pycheck::missing("linode_api4", "linode_api4==5.48.0") {
        return;
    }
    let mut a = Account::new("check-token");
    a.clock = Some(1_700_000_000);
    a.max_page_size = 2;
    for n in 1..=4 {
        a.put(Instance::new(n, &format!("web-{n}"), &format!("192.0.2.{n}")).tag("web"));
    }
    let mut eu = Instance::new(5, "eu-1", "198.51.100.5").region("eu-west");
    eu.ipv4.push("192.168.130.5".into());
    eu.ipv6 = Some("2001:db8::5/128".into());
    a.put(eu);
    a.ranges
        .push(("2001:db8:5::".into(), 64, "2001:db8::5".into()));
    a.remove(2);
    let server = RestServer::start(a);
    let lines = pycheck::run(
        "linode_client_check.py",
        &[&server.base(), "check-token", &datetime(1_700_000_005)],
    );
    assert_eq!(
        lines,
        [
            "1 web-1 us-east running ['192.0.2.1'] None ['web']",
            "3 web-3 us-east running ['192.0.2.3'] None ['web']",
            "4 web-4 us-east running ['192.0.2.4'] None ['web']",
            "5 eu-1 eu-west running ['198.51.100.5', '192.168.130.5'] 2001:db8::5/128 []",
            "eu-west ['eu-1']",
            "ip 192.0.2.1 True li1.members.linode.com 1",
            "ip 192.0.2.3 True li3.members.linode.com 3",
            "ip 192.0.2.4 True li4.members.linode.com 4",
            "ip 198.51.100.5 True li5.members.linode.com 5",
            "ip 192.168.130.5 False None 5",
            "ip 2001:db8::5 True None 5",
            "range 2001:db8:5:: 64 2001:db8::5",
            "events [('linode_delete', 2), ('linode_create', 5)]",
            "refused: 401 ['Invalid Token']",
        ]
    );
    let calls = server.calls();
    assert!(
        calls.contains(&"GET /v4/linode/instances?page=2&page_size=2".to_owned()),
        "linode_api4 asks for the second page itself: {calls:?}"
    );
    let filtered = server
        .requests()
        .into_iter()
        .filter_map(|r| r.header("x-filter").map(str::to_owned))
        .collect::<Vec<_>>();
    assert!(
        filtered.contains(&r#"{"region": "eu-west"}"#.to_owned()),
        "{filtered:?}"
    );
}
