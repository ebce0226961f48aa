//! `--web.config.file`: the web server over TLS with rustls (certificates re-read when
//! they change), basic authentication against bcrypt hashes, client certificates and
//! configured headers, checked with a rustls client.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// An HTTPS GET to 127.0.0.1:`port` for `trawl.test`, trusting `ca`, with an optional
/// client certificate and basic credentials: status and the whole answer, or the error.
fn https(
    port: u16,
    path: &str,
    ca: &Path,
    client: Option<(&Path, &Path)>,
    user: Option<&str>,
) -> Result<(u16, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| e.to_string())? {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => b
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .map_err(|e| e.to_string())?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?,
                PrivateKeyDer::from_pem_file(key).map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?,
        None => b.with_no_client_auth(),
    };
    let name = ServerName::try_from("trawl.test").map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let sock = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let auth = user.map_or(String::new(), |u| {
        format!("Authorization: Basic {}\r\n", b64(u))
    });
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: trawl.test\r\n{auth}Connection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) => {}
        // A peer that closes without close_notify still gave its answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status: {text}"))?;
    Ok((status, text))
}

fn b64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// A client certificate signed by the test CA in `dir`.
fn client_cert(dir: &Path) {
    let run = |args: &[&str]| openssl(dir, args);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
        "-subj",
        "/CN=scraper",
    ]);
    std::fs::write(dir.join("client.cnf"), "extendedKeyUsage=clientAuth\n").expect("cnf");
    run(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "client.crt",
        "-days",
        "2",
        "-extfile",
        "client.cnf",
    ]);
}

#[test]
fn the_web_server_speaks_tls_checks_passwords_and_follows_certificate_changes() {
    let d = TempDir::new("webtls");
    certs(&d.0);
    client_cert(&d.0);
    let other = d.0.join("other");
    std::fs::create_dir_all(&other).expect("dir");
    certs(&other);
    let hash = bcrypt::hash("s3cret", 4).expect("bcrypt");
    let web = d.0.join("web.yml");
    let write_web = |extra: &str| {
        std::fs::write(
            &web,
            format!(
                "tls_server_config:\n  cert_file: srv.crt\n  key_file: srv.key\n{extra}\
                 http_server_config:\n  headers: {{X-Frame-Options: deny}}\n\
                 basic_auth_users:\n  admin: '{hash}'\n"
            ),
        )
        .expect("web config")
    };
    write_web("");
    let config = d.0.join("prometheus.yml");
    std::fs::write(&config, "scrape_configs: []\n").expect("config");
    let t = Daemon::start_with(
        &d.0,
        &config,
        &d.0.join("data"),
        &[format!("--web.config.file={}", web.display())],
    );
    let ca = d.0.join("ca.crt");
    eventually(Duration::from_secs(30), "ready over TLS", || {
        https(t.web, "/-/ready", &ca, None, Some("admin:s3cret")).is_ok_and(|(s, _)| s == 200)
    });
    let (s, text) = https(
        t.web,
        "/api/v1/status/buildinfo",
        &ca,
        None,
        Some("admin:s3cret"),
    )
    .expect("answer");
    assert_eq!(s, 200);
    assert!(text.contains("X-Frame-Options: deny"), "{text}");
    for user in [None, Some("admin:wrong"), Some("nobody:s3cret")] {
        let (s, text) = https(t.web, "/metrics", &ca, None, user).expect("answer");
        assert_eq!(s, 401, "{user:?}");
        assert!(text.contains("WWW-Authenticate: Basic"), "{text}");
    }
    // Plain HTTP gets no answer.
    assert!(api(t.web, "GET", "/-/healthy").is_none_or(|(s, _)| s != 200));

    // The certificate and key replaced on disk: new connections get the new pair.
    for f in ["srv.crt", "srv.key"] {
        let tmp = d.0.join(format!("{f}.new"));
        std::fs::copy(other.join(f), &tmp).expect("copy");
        std::fs::rename(&tmp, d.0.join(f)).expect("rename");
    }
    let other_ca = other.join("ca.crt");
    eventually(Duration::from_secs(10), "the new certificate", || {
        https(t.web, "/-/healthy", &other_ca, None, Some("admin:s3cret"))
            .is_ok_and(|(s, _)| s == 200)
    });
    assert!(https(t.web, "/-/healthy", &ca, None, Some("admin:s3cret")).is_err());

    // Client certificates required from now on (the first CA signs them).
    std::fs::copy(d.0.join("ca.crt"), d.0.join("clients.crt")).expect("client CA");
    write_web("  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\n");
    let client = (d.0.join("client.crt"), d.0.join("client.key"));
    eventually(
        Duration::from_secs(10),
        "client certificates required",
        || https(t.web, "/-/healthy", &other_ca, None, Some("admin:s3cret")).is_err(),
    );
    let (s, _) = https(
        t.web,
        "/-/healthy",
        &other_ca,
        Some((&client.0, &client.1)),
        Some("admin:s3cret"),
    )
    .expect("with a client certificate");
    assert_eq!(s, 200);

    // A broken file leaves the last good settings in force, and says so.
    std::fs::write(
        &web,
        "tls_server_config: {cert_file: missing.crt, key_file: srv.key}\n",
    )
    .expect("bad");
    std::thread::sleep(Duration::from_millis(1500));
    let (s, _) = https(
        t.web,
        "/-/healthy",
        &other_ca,
        Some((&client.0, &client.1)),
        Some("admin:s3cret"),
    )
    .expect("still served");
    assert_eq!(s, 200);
    assert!(
        t.log().contains("web configuration not reloaded"),
        "{}",
        t.log()
    );
}

#[test]
fn a_bad_web_configuration_stops_the_start() {
    let d = TempDir::new("webtls-bad");
    let web = d.0.join("web.yml");
    std::fs::write(&web, "tls_server_config: {cert_file: a.crt}\n").expect("web");
    let config = d.0.join("prometheus.yml");
    std::fs::write(&config, "scrape_configs: []\n").expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", d.0.join("data").display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .arg(format!("--web.config.file={}", web.display()))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("web.yml") && err.contains("missing key_file"),
        "{err}"
    );
}
