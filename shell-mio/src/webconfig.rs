//! `--web.config.file`: TLS and basic authentication on the daemon's web server, in the
//! file format of Prometheus's exporter-toolkit (`tls_server_config`,
//! `http_server_config`, `basic_auth_users`), checked as it checks it.
//!
//! The file and the certificate, key and client CA files it names are looked at again
//! when a connection arrives (at most once a second) and on SIGHUP: a change is applied
//! to the connections that follow, and a file that no longer loads leaves the last good
//! settings in force (logged).
//!
//! What trawl does not act on is said at load: `cipher_suites`, `curve_preferences` and
//! `prefer_server_cipher_suites` (rustls chooses among its own safe suites and groups),
//! TLS 1.0 and 1.1 (rustls speaks 1.2 and 1.3), `http2` (the server speaks HTTP/1.1).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tls_server_config: Option<TlsServer>,
    #[serde(default)]
    http_server_config: Option<HttpServer>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsServer {
    #[serde(default)]
    cert_file: String,
    #[serde(default)]
    key_file: String,
    #[serde(default)]
    cert: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    client_auth_type: String,
    #[serde(default)]
    client_ca_file: String,
    #[serde(default)]
    client_ca: String,
    #[serde(default)]
    client_allowed_sans: Vec<String>,
    #[serde(default)]
    min_version: String,
    #[serde(default)]
    max_version: String,
    #[serde(default)]
    cipher_suites: Vec<String>,
    #[serde(default)]
    curve_preferences: Vec<String>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpServer {
    #[serde(default)]
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// What identifies a file's content without reading it: size, modification time, inode.
type Stamp = Option<(u64, std::time::SystemTime, u64)>;

fn stamp(p: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(p).ok()?;
    Some((m.len(), m.modified().ok()?, m.ino()))
}

/// The web server's settings from `--web.config.file`.
#[derive(Clone)]
pub struct WebConfig {
    /// TLS, if `tls_server_config` is given.
    pub tls: Option<Arc<ServerConfig>>,
    /// User name → bcrypt hash (`basic_auth_users`); empty: no authentication.
    pub users: BTreeMap<String, String>,
    /// Extra response headers (`http_server_config.headers`).
    pub headers: Vec<(String, String)>,
    /// Things in the file trawl does not act on, for a warning.
    pub not_applied: Vec<String>,
    /// The files read and how they were, to notice a change.
    stamps: Vec<(PathBuf, Stamp)>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("headers", &self.headers)
            .finish()
    }
}

/// The headers exporter-toolkit lets a web configuration set, with the values it allows
/// (`None`: any).
const HEADERS: &[(&str, Option<&[&str]>)] = &[
    ("Strict-Transport-Security", None),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-XSS-Protection", None),
    ("Content-Security-Policy", None),
];

fn relative(base: &Path, f: &str) -> PathBuf {
    let p = Path::new(f);
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

/// The most the web config file, or a certificate or key file it names, may hold
/// (regular files only, opened without blocking: a FIFO in their place is refused).
const FILE_LIMIT: u64 = trawl_io::tls::TLS_FILE_LIMIT;

impl WebConfig {
    /// Reads and checks `path` (errors name the file and the field, as exporter-toolkit
    /// words them where it has words).
    pub fn load(path: &Path) -> Result<WebConfig, String> {
        let shown = path.display();
        let text = match trawl_io::files::read_limited(&path.to_string_lossy(), FILE_LIMIT) {
            Ok(Some(b)) => String::from_utf8(b).map_err(|e| format!("{shown}: {e}"))?,
            Ok(None) => return Err(format!("{shown}: larger than {FILE_LIMIT} bytes")),
            Err(e) => return Err(format!("{shown}: {e}")),
        };
        let file: File =
            trawl_core::common::yaml::from_yaml(&text, &|_| "").map_err(|e| match e.position {
                Some((line, col)) => format!("{shown}:{line}:{col}: {}", e.message),
                None => format!("{shown}: {}", e.message),
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut stamps = vec![(path.to_owned(), stamp(path))];
        let mut not_applied = Vec::new();
        let mut headers = Vec::new();
        if let Some(h) = &file.http_server_config {
            for (name, value) in &h.headers {
                let Some((canon, allowed)) =
                    HEADERS.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))
                else {
                    return Err(format!(
                        "{shown}: HTTP header {name:?} can not be configured"
                    ));
                };
                if let Some(allowed) = allowed
                    && !allowed.iter().any(|a| a.eq_ignore_ascii_case(value))
                {
                    return Err(format!(
                        "{shown}: invalid value for {canon}. Expected one of: {allowed:?}, but got: {value:?}"
                    ));
                }
                if value.contains(['\r', '\n']) {
                    return Err(format!("{shown}: header {canon} holds a line break"));
                }
                headers.push(((*canon).to_owned(), value.clone()));
            }
            if h.http2 == Some(true) {
                not_applied.push(
                    "http_server_config.http2: the server speaks HTTP/1.1 (clients fall back to it)"
                        .to_owned(),
                );
            }
        }
        for (user, hash) in &file.basic_auth_users {
            if bcrypt::verify("", hash).is_err() {
                return Err(format!(
                    "{shown}: basic_auth_users: the password of {user:?} is not a bcrypt hash"
                ));
            }
        }
        let tls = match &file.tls_server_config {
            None => None,
            Some(t) => Some(Arc::new(server_config(
                t,
                base,
                &mut stamps,
                &mut not_applied,
                &shown.to_string(),
            )?)),
        };
        Ok(WebConfig {
            tls,
            users: file.basic_auth_users,
            headers,
            not_applied,
            stamps,
        })
    }

    /// Logs each setting of the file (`path`) trawl accepts and does not act on.
    pub fn warn_not_applied(&self, path: &Path) {
        for n in &self.not_applied {
            tracing::warn!(file = %path.display(), setting = %n, "--web.config.file: accepted and not applied");
        }
    }

    /// True if the file or a file it names changed since it was read.
    pub fn changed(&self) -> bool {
        self.stamps.iter().any(|(p, s)| stamp(p) != *s)
    }
}

fn server_config(
    t: &TlsServer,
    base: &Path,
    stamps: &mut Vec<(PathBuf, Stamp)>,
    not_applied: &mut Vec<String>,
    shown: &str,
) -> Result<ServerConfig, String> {
    let mut read = |inline: &str, file: &str, what: &str| -> Result<Vec<u8>, String> {
        match (inline.is_empty(), file.is_empty()) {
            (false, false) => Err(format!("{shown}: {what} and {what}_file are both set")),
            (false, true) => Ok(inline.as_bytes().to_vec()),
            (true, false) => {
                let p = relative(base, file);
                stamps.push((p.clone(), stamp(&p)));
                let at = p.display();
                match trawl_io::files::read_limited(&p.to_string_lossy(), FILE_LIMIT) {
                    Ok(Some(b)) => Ok(b),
                    Ok(None) => Err(format!(
                        "{shown}: {what}_file {at}: larger than {FILE_LIMIT} bytes"
                    )),
                    Err(e) => Err(format!("{shown}: {what}_file {at}: {e}")),
                }
            }
            (true, true) => Err(format!("{shown}: missing {what}_file")),
        }
    };
    // Both named before either is read, as exporter-toolkit validates them.
    for (inline, file, what) in [
        (&t.cert, &t.cert_file, "cert"),
        (&t.key, &t.key_file, "key"),
    ] {
        if inline.is_empty() && file.is_empty() {
            return Err(format!("{shown}: missing {what}_file"));
        }
    }
    let cert = read(&t.cert, &t.cert_file, "cert")?;
    let key = read(&t.key, &t.key_file, "key")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{shown}: failed to load X509KeyPair: {e}"))?;
    if chain.is_empty() {
        return Err(format!(
            "{shown}: failed to load X509KeyPair: no certificate"
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key)
        .map_err(|e| format!("{shown}: failed to load X509KeyPair: {e}"))?;
    let version = |v: &str, default: &'static rustls::SupportedProtocolVersion| match v {
        "" => Ok(default),
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS12" | "TLS11" | "TLS10" => Ok(&rustls::version::TLS12),
        other => Err(format!("{shown}: unknown TLS version: {other}")),
    };
    let min = version(&t.min_version, &rustls::version::TLS12)?;
    let max = version(&t.max_version, &rustls::version::TLS13)?;
    if matches!(t.min_version.as_str(), "TLS10" | "TLS11") {
        not_applied.push(format!(
            "tls_server_config.min_version {}: rustls speaks TLS 1.2 and 1.3 only",
            t.min_version
        ));
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [&rustls::version::TLS12, &rustls::version::TLS13]
            .into_iter()
            .filter(|v| {
                let rank = |x: &rustls::SupportedProtocolVersion| {
                    u8::from(x.version == rustls::ProtocolVersion::TLSv1_3)
                };
                rank(v) >= rank(min) && rank(v) <= rank(max)
            })
            .collect();
    if versions.is_empty() {
        return Err(format!("{shown}: min_version is above max_version"));
    }
    for (what, given) in [
        ("cipher_suites", !t.cipher_suites.is_empty()),
        ("curve_preferences", !t.curve_preferences.is_empty()),
        (
            "prefer_server_cipher_suites",
            t.prefer_server_cipher_suites.is_some(),
        ),
    ] {
        if given {
            not_applied.push(format!(
                "tls_server_config.{what}: rustls chooses among its own suites and groups"
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("{shown}: {e}"))?;
    let has_ca = !t.client_ca_file.is_empty() || !t.client_ca.is_empty();
    let mut roots = || -> Result<RootCertStore, String> {
        let pem = read(&t.client_ca, &t.client_ca_file, "client_ca")?;
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&pem) {
            let c = c.map_err(|e| format!("{shown}: client_ca_file: {e}"))?;
            roots
                .add(c)
                .map_err(|e| format!("{shown}: client_ca_file: {e}"))?;
        }
        Ok(roots)
    };
    if !t.client_allowed_sans.is_empty() {
        not_applied.push(
            "tls_server_config.client_allowed_sans: any certificate the client CA signed is accepted"
                .to_owned(),
        );
    }
    let builder = match t.client_auth_type.as_str() {
        "" | "NoClientCert" => {
            if has_ca {
                return Err(format!(
                    "{shown}: Client CA's have been configured without a Client Auth Policy"
                ));
            }
            builder.with_no_client_auth()
        }
        "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert" => {
            if !has_ca {
                return Err(format!(
                    "{shown}: client_auth_type {} needs client_ca_file",
                    t.client_auth_type
                ));
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots()?), provider);
            let v = if t.client_auth_type == "VerifyClientCertIfGiven" {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder.with_client_cert_verifier(
                v.build()
                    .map_err(|e| format!("{shown}: client_ca_file: {e}"))?,
            )
        }
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(format!(
                "{shown}: client_auth_type {}: trawl verifies client certificates against client_ca_file only (use VerifyClientCertIfGiven or RequireAndVerifyClientCert)",
                t.client_auth_type
            ));
        }
        other => return Err(format!("{shown}: Invalid ClientAuth: {other}")),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("{shown}: failed to load X509KeyPair: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Basic-auth checks: bcrypt is slow by design (tens of milliseconds a check), and the
/// loop that runs it also scrapes, so answers are remembered (a digest of the password
/// under a per-process key, never the password) and at most [`CHECKS_PER_SECOND`]
/// unremembered checks run each second; past that the client is told to retry.
#[derive(Debug)]
pub struct Auth {
    key: std::collections::hash_map::RandomState,
    known: BTreeMap<(String, u64, u64), bool>,
    window: Option<std::time::Instant>,
    checks: u32,
}

/// bcrypt checks the web server runs per second at most.
pub const CHECKS_PER_SECOND: u32 = 5;
const REMEMBERED: usize = 256;

/// What a request's credentials come to.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed.
    Ok,
    /// Missing or wrong: 401.
    Denied,
    /// Too many checks this second: 503, retry.
    Busy,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            key: std::collections::hash_map::RandomState::new(),
            known: BTreeMap::new(),
            window: None,
            checks: 0,
        }
    }
}

impl Auth {
    /// Checks an `Authorization` header against `users`.
    pub fn check(&mut self, users: &BTreeMap<String, String>, header: Option<&[u8]>) -> Verdict {
        use std::hash::BuildHasher as _;
        let Some((user, pass)) = header.and_then(decode_basic) else {
            return Verdict::Denied;
        };
        let Some(hash) = users.get(&user) else {
            return Verdict::Denied;
        };
        let d1 = self.key.hash_one((&pass, hash, 1u8));
        let d2 = self.key.hash_one((&pass, hash, 2u8));
        let k = (user, d1, d2);
        if let Some(&ok) = self.known.get(&k) {
            return if ok { Verdict::Ok } else { Verdict::Denied };
        }
        let now = std::time::Instant::now();
        if self
            .window
            .is_none_or(|w| now.duration_since(w) >= std::time::Duration::from_secs(1))
        {
            self.window = Some(now);
            self.checks = 0;
        }
        if self.checks >= CHECKS_PER_SECOND {
            return Verdict::Busy;
        }
        self.checks += 1;
        let ok = bcrypt::verify(&pass, hash).unwrap_or(false);
        if self.known.len() >= REMEMBERED {
            self.known.clear();
        }
        self.known.insert(k, ok);
        if ok { Verdict::Ok } else { Verdict::Denied }
    }
}

/// `Basic base64(user:pass)` → (user, pass).
fn decode_basic(h: &[u8]) -> Option<(String, String)> {
    let s = std::str::from_utf8(h).ok()?.trim();
    let (scheme, rest) = s.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64(rest.trim())?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

fn base64(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.trim_end_matches('=').bytes() {
        acc = (acc << 6) | u32::from(val(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode_and_check_once_per_answer() {
        assert_eq!(
            decode_basic(b"Basic dXNlcjpwYTpzcw=="),
            Some(("user".into(), "pa:ss".into()))
        );
        assert_eq!(decode_basic(b"Bearer x"), None);
        let users: BTreeMap<String, String> =
            [("user".to_owned(), bcrypt::hash("pa:ss", 4).expect("hash"))].into();
        let mut a = Auth::default();
        assert_eq!(
            a.check(&users, Some(b"Basic dXNlcjpwYTpzcw==")),
            Verdict::Ok
        );
        assert_eq!(
            a.check(&users, Some(b"Basic dXNlcjp3cm9uZw==")),
            Verdict::Denied
        );
        assert_eq!(a.check(&users, None), Verdict::Denied);
        // Remembered: no more bcrypt runs for the same answers.
        let before = a.checks;
        assert_eq!(
            a.check(&users, Some(b"Basic dXNlcjpwYTpzcw==")),
            Verdict::Ok
        );
        assert_eq!(a.checks, before);
        // Past the budget, new passwords wait.
        for i in 0..CHECKS_PER_SECOND {
            let h = format!("Basic {}", b64(&format!("user:x{i}")));
            let _ = a.check(&users, Some(h.as_bytes()));
        }
        let h = format!("Basic {}", b64("user:another"));
        assert_eq!(a.check(&users, Some(h.as_bytes())), Verdict::Busy);
    }

    fn b64(s: &str) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let b = s.as_bytes();
        let mut out = String::new();
        for c in b.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= c.len() {
                    out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn files_are_checked_as_exporter_toolkit_checks_them() {
        let d = std::env::temp_dir().join(format!("trawl-webconfig-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("dir");
        let f = d.join("web.yml");
        for (text, want) in [
            (
                "tls_server_config: {cert_file: a.crt}\n",
                "missing key_file",
            ),
            ("tls_server_config: {cert_fil: a.crt}\n", "cert_fil"),
            (
                "http_server_config: {headers: {Server: x}}\n",
                "can not be configured",
            ),
            (
                "http_server_config: {headers: {X-Frame-Options: allow}}\n",
                "Expected one of",
            ),
            ("basic_auth_users: {u: plain}\n", "not a bcrypt hash"),
        ] {
            std::fs::write(&f, text).expect("write");
            let e = WebConfig::load(&f)
                .err()
                .unwrap_or_else(|| panic!("{text} accepted"));
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.contains("web.yml"), "{e}");
        }
        std::fs::write(&f, "basic_auth_users: {}\n").expect("write");
        let c = WebConfig::load(&f).expect("valid");
        assert!(c.tls.is_none() && c.users.is_empty() && !c.changed());
        std::fs::write(
            &f,
            "basic_auth_users: {}\nhttp_server_config: {headers: {X-Frame-Options: deny}}\n",
        )
        .expect("write");
        assert!(c.changed());
        let _ = std::fs::remove_dir_all(&d);
    }
}
