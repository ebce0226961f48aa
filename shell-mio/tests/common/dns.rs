//! A real name server for DNS discovery tests: BIND 9 (Debian's `bind9`, installed by
//! `.ci/run`) serving the zone `trawl.test` on 127.0.0.1 and a port the test picks, with
//! dynamic updates allowed from loopback (`nsupdate`), and a black hole: a UDP socket and
//! a TCP listener on 127.0.0.2 that never answer.
#![allow(dead_code)] // each test binary uses some of it

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Proc, free_port};

/// The zone every test server holds.
pub(crate) const ZONE: &str = "trawl.test";

/// A running `named`.
pub(crate) struct Named {
    pub(crate) proc: Proc,
    /// The port it (and the black hole) listen on.
    pub(crate) port: u16,
    pub(crate) dir: PathBuf,
}

/// `named` on 127.0.0.1:`port` (a free one) with `records` (zone-file lines, relative to
/// the zone) in `trawl.test`, once it answers.
pub(crate) fn named(dir: &Path, records: &str) -> Named {
    // A port free for both TCP and UDP.
    let port = loop {
        let p = free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.2", p)).is_ok()
        {
            break p;
        }
    };
    named_at(dir, records, port)
}

/// [`named`] on a given port (53 inside a network namespace of the test's own).
pub(crate) fn named_at(dir: &Path, records: &str, port: u16) -> Named {
    let d = dir.join("named");
    std::fs::create_dir_all(&d).expect("named dir");
    let zone = format!(
        "$TTL 1\n@ IN SOA ns.{ZONE}. admin.{ZONE}. 1 60 60 3600 1\n@ IN NS ns.{ZONE}.\nns IN A 127.0.0.1\n{records}\n"
    );
    std::fs::write(d.join("zone"), zone).expect("zone file");
    let conf = format!(
        "options {{\n  directory \"{d}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  pid-file \"{d}/named.pid\";\n  session-keyfile \"{d}/session.key\";\n  managed-keys-directory \"{d}\";\n  recursion no;\n  dnssec-validation no;\n  notify no;\n  allow-query {{ any; }};\n}};\ncontrols {{ }};\nzone \"{ZONE}\" {{ type primary; file \"{d}/zone\"; allow-update {{ 127.0.0.1; }}; }};\n",
        d = d.display()
    );
    std::fs::write(d.join("named.conf"), conf).expect("named.conf");
    let log = std::fs::File::create(d.join("named.log")).expect("log");
    let child = Command::new("named")
        .args(["-g", "-c"])
        .arg(d.join("named.conf"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("named (Debian package bind9) is installed: .ci/run installs it");
    let n = Named {
        proc: Proc(child),
        port,
        dir: d,
    };
    let end = Instant::now() + Duration::from_secs(20);
    while dig(port, "127.0.0.1", &format!("ns.{ZONE}"), "A").is_empty() {
        assert!(
            Instant::now() < end,
            "named did not answer:\n{}",
            std::fs::read_to_string(n.dir.join("named.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // BIND answers SERVFAIL now and then in its first moments, after the first good
    // answer: let it settle.
    std::thread::sleep(Duration::from_millis(500));
    n
}

impl Named {
    /// Applies `nsupdate` commands (`update add …`, `update delete …`) to the zone.
    pub(crate) fn update(&self, commands: &str) {
        let script = format!(
            "server 127.0.0.1 {}\nzone {ZONE}\n{commands}\nsend\n",
            self.port
        );
        let mut c = Command::new("nsupdate")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nsupdate (Debian package bind9-dnsutils)");
        use std::io::Write;
        c.stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write");
        let out = c.wait_with_output().expect("nsupdate");
        assert!(
            out.status.success(),
            "nsupdate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A resolv.conf naming `servers` (in order) with these `options`, written to `dir`.
    pub(crate) fn resolv_conf(&self, dir: &Path, servers: &[&str], extra: &str) -> PathBuf {
        let mut s: String = servers
            .iter()
            .map(|a| format!("nameserver {a}\n"))
            .collect();
        s.push_str(extra);
        let p = dir.join("resolv.conf");
        std::fs::write(&p, s).expect("resolv.conf");
        p
    }
}

/// `dig +short` against a server on loopback (empty if no answer).
pub(crate) fn dig(port: u16, server: &str, name: &str, kind: &str) -> String {
    Command::new("dig")
        .args([
            &format!("@{server}"),
            "-p",
            &port.to_string(),
            "+short",
            "+time=1",
            "+tries=1",
            name,
            kind,
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// A server that never answers: UDP and TCP on 127.0.0.2:`port`, bound and silent.
pub(crate) struct BlackHole {
    _udp: std::net::UdpSocket,
    _tcp: std::net::TcpListener,
}

pub(crate) fn black_hole(port: u16) -> BlackHole {
    BlackHole {
        _udp: std::net::UdpSocket::bind(("127.0.0.2", port)).expect("udp"),
        // A backlog that never gets accepted: connects succeed, nothing is ever read.
        _tcp: std::net::TcpListener::bind(("127.0.0.2", port)).expect("tcp"),
    }
}
