//! The fake Lightsail (`trawl_tests::lightsail`) checked with AWS's own client: boto3
//! (PyPI, with moto) runs `src/lightsail_client_check.py` against it — the paginator
//! through every page of `get_instances`, botocore's parser reading each instance, and
//! an operation the fake does not serve refused in AWS's error shape.

use std::process::Command;

use trawl_tests::lightsail::{Fleet, Instance, LightsailServer};

#[test]
fn boto3_reads_the_fake_as_lightsail() {
    if Command::new("python3")
        .args(["-c", "import boto3"])
        .status()
        .map_or(true, |s| !s.success())
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "boto3 is missing: .ci/run installs it (with moto)"
        );
        eprintln!("skipped: pip install 'moto[server,ec2]==5.2.1' to run this check");
        return;
    }
    let mut f = Fleet::new();
    f.put(Instance::new("a", "172.26.0.1").tag("env", "prod"));
    let mut b = Instance::new("b", "172.26.0.2");
    b.public_ip = Some("192.0.2.2".into());
    b.state = "stopped".into();
    f.put(b);
    let mut c = Instance::new("c", "");
    c.private_ip = None;
    c.state = "pending".into();
    f.put(c);
    let server = LightsailServer::start(f);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/src/lightsail_client_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(format!("http://127.0.0.1:{}", server.port()))
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
            "a 172.26.0.1 None running us-east-1a env=prod",
            "b 172.26.0.2 192.0.2.2 stopped us-east-1a ",
            "c None None pending us-east-1a ",
            "pages 2",
            "error InvalidAction",
        ]
    );
    let calls = server.calls();
    assert_eq!(calls[1].1, r#"{"pageToken": "2"}"#, "{calls:?}");
    assert!(
        calls
            .iter()
            .take(2)
            .all(|(t, _)| t.as_deref() == Some("Lightsail_20161128.GetInstances"))
    );
}
