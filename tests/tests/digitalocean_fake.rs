//! The fake DigitalOcean API (`trawl_tests::digitalocean`) checked with a real client:
//! python-digitalocean (PyPI) runs `src/digitalocean_client_check.py` against it — its
//! Manager follows `links.pages.next` through every page of droplets and reads each
//! droplet's networks, and a wrong token is refused with the API's message.

use trawl_tests::cloud::RestServer;
use trawl_tests::digitalocean::{Account, Droplet};
use trawl_tests::pycheck;

#[test]
fn python_digitalocean_reads_the_fake_as_digitalocean() {
    if pycheck::missing("digitalocean", "python-digitalocean==1.17.0") {
        return;
    }
    let mut a = Account::new("dop_v1_check");
    for n in 1..=5 {
        let mut d = Droplet::new(
            n,
            &format!("web-{n}"),
            &format!("192.0.2.{n}"),
            &format!("10.0.0.{n}"),
        );
        if n == 2 {
            d = d.tag("env:prod").tag("web");
        }
        if n == 5 {
            d.public_ip = None;
            d.status = "off".into();
        }
        a.put(d);
    }
    let server = RestServer::start(a);
    let lines = pycheck::run(
        "digitalocean_client_check.py",
        &[&server.base(), "dop_v1_check"],
    );
    assert_eq!(
        lines,
        [
            "1 web-1 192.0.2.1 10.0.0.1 2604:a880:400:d1::1 active nyc3 ",
            "2 web-2 192.0.2.2 10.0.0.2 2604:a880:400:d1::2 active nyc3 env:prod,web",
            "3 web-3 192.0.2.3 10.0.0.3 2604:a880:400:d1::3 active nyc3 ",
            "4 web-4 192.0.2.4 10.0.0.4 2604:a880:400:d1::4 active nyc3 ",
            "5 web-5 None 10.0.0.5 2604:a880:400:d1::5 off nyc3 ",
            "refused: Unable to authenticate you",
        ]
    );
    let calls = server.calls();
    assert_eq!(
        calls[..3],
        [
            "GET /v2/droplets/?per_page=2",
            "GET /v2/droplets/?per_page=2&page=2",
            "GET /v2/droplets/?per_page=2&page=3",
        ],
        "three pages of two, each asked for by the previous one's next link"
    );
}
