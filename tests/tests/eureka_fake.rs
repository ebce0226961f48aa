//! The fake Eureka (`trawl_tests::eureka`) checked with a real Eureka client:
//! py-eureka-client (PyPI) runs `src/eureka_client_check.py` against it — registration,
//! lease renewal, the registry and one application listed in the form the client asks
//! for, cancellation.

use std::process::Command;

use trawl_tests::eureka::{EurekaServer, Instance, Registry};

#[test]
fn a_real_eureka_client_agrees_with_the_fake() {
    if Command::new("python3")
        .args(["-c", "import py_eureka_client"])
        .status()
        .map_or(true, |s| !s.success())
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "py-eureka-client is missing: .ci/run installs it"
        );
        eprintln!("skipped: pip install py-eureka-client==0.13.3 to run this check");
        return;
    }
    let mut reg = Registry::new();
    reg.put(Instance::new("api", "api-1", "127.0.0.3", 9100));
    let server = EurekaServer::start(reg);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/src/eureka_client_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(server.url())
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "listed API api-1 127.0.0.3 9100 True UP None",
            "listed WEB web-1 127.0.0.2 8080 True UP edge",
            "application WEB 1",
            "after cancel 1",
        ]
    );
    let reqs = server.requests();
    assert!(
        reqs.iter()
            .any(|q| q.path == "/eureka/apps/WEB" || q.path == "/eureka/apps/web"),
        "{reqs:?}"
    );
}
