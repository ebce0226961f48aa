//! AWS Signature Version 4 for one HTTP request: pure computation over the request's
//! parts, the credentials and the time the shell read, so that the same inputs always
//! give the same `Authorization` header.
//!
//! Follows AWS's published procedure (canonical request, string to sign, derived
//! signing key) as `github.com/prometheus/sigv4`'s round tripper applies it through
//! aws-sdk-go-v2's `Signer.SignHTTP` for `remote_write`'s `sigv4` block: the service
//! `aps` unless `service_name` says otherwise, the body's SHA-256 as the payload hash,
//! `X-Amz-Date` and, with temporary credentials, `X-Amz-Security-Token` added and
//! signed. The path is cleaned first as that round tripper cleans it (duplicate
//! slashes and dot segments; a trailing slash kept) and sent as cleaned.
//!
//! Checked against AWS's own test-suite requests (`get-vanilla`,
//! `get-vanilla-query-order-key-case`, `post-vanilla`, `get-utf8`, …) in the tests
//! below, whose signatures are AWS's published ones.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::time::UnixNanos;

type HmacSha256 = Hmac<Sha256>;

/// Credentials to sign with.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (`AKIA…`, `ASIA…` for temporary credentials).
    pub access_key: String,
    /// The secret access key.
    pub secret_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    /// Never shows the secret or the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<secret>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<secret>"),
            )
            .finish()
    }
}

/// What is signed for: the region and the service (`aps` for Amazon Managed Service
/// for Prometheus).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// `us-east-1`.
    pub region: String,
    /// `aps`.
    pub service: String,
}

/// One request to sign.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// `POST`.
    pub method: &'a str,
    /// The `Host` header's value (with the port when it is not the scheme's).
    pub host: &'a str,
    /// The path as sent (percent-encoded as in the request line), without the query.
    pub path: &'a str,
    /// The query as sent, without `?` (empty for none).
    pub query: &'a str,
    /// Headers to sign besides `Host`, `X-Amz-Date` and `X-Amz-Security-Token`
    /// (`Content-Type`, `Content-Encoding`, …), as they are sent.
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
}

/// The signed request's additions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    /// The path to send (cleaned, see the module's documentation).
    pub path: String,
    /// Headers to add, in this order: `X-Amz-Date`, then `X-Amz-Security-Token` with
    /// temporary credentials, then `Authorization`.
    pub headers: Vec<(String, String)>,
}

/// `YYYYMMDDTHHMMSSZ` of a wall time (whole seconds, UTC).
pub fn amz_date(t: UnixNanos) -> String {
    let rfc = UnixNanos(t.0.div_euclid(1_000_000_000) * 1_000_000_000).to_rfc3339();
    // `YYYY-MM-DDTHH:MM:SSZ` without its separators.
    rfc.chars().filter(|c| *c != '-' && *c != ':').collect()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail.
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// The hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Percent-encodes everything but RFC 3986's unreserved characters (and `/` where
/// `slash` is kept), with upper-case hex digits, as SigV4's canonical forms require.
fn encode(out: &mut String, s: &[u8], keep_slash: bool) {
    for &b in s {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// `s` percent-encoded as SigV4's canonical query encodes a name or value (RFC 3986's
/// unreserved characters kept, everything else `%XX`), for building query strings that
/// sign as they are sent.
pub fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    encode(&mut out, s.as_bytes(), false);
    out
}

fn decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let digit = |at: usize| b.get(at).and_then(|&c| (c as char).to_digit(16));
        match (b[i], digit(i + 1), digit(i + 2)) {
            // Two hex digits make one byte: both below 16.
            (b'%', Some(h), Some(l)) => {
                out.push(((h << 4) | l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// A request path as the round tripper cleans it: Go's `path.Clean`
/// ([`crate::common::paths::clean_path`]) unless that gives `.` (an empty path stays
/// empty), a trailing slash kept.
pub fn clean_path(path: &str) -> String {
    let cleaned = crate::common::paths::clean_path(path);
    if cleaned == "." {
        path.to_owned()
    } else if cleaned != "/" && path.ends_with('/') {
        cleaned + "/"
    } else {
        cleaned
    }
}

/// The canonical query: each name and value decoded, then encoded strictly, sorted by
/// name and then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let (mut ek, mut ev) = (String::new(), String::new());
            encode(&mut ek, &decode(&k.replace('+', " ")), false);
            encode(&mut ev, &decode(&v.replace('+', " ")), false);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value as signed: trimmed, runs of spaces made one.
fn canonical_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Signs `req` at wall time `now`: the headers to add and the path to send.
pub fn sign(req: &Request<'_>, creds: &Credentials, scope: &Scope, now: UnixNanos) -> Signed {
    let date_time = amz_date(now);
    let date = &date_time[..8];
    let path = clean_path(req.path);
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), canonical_value(req.host)),
        ("x-amz-date".into(), date_time.clone()),
    ];
    if let Some(t) = &creds.session_token {
        headers.push(("x-amz-security-token".into(), canonical_value(t)));
    }
    for (n, v) in req.headers {
        let n = n.to_ascii_lowercase();
        // Never signed (aws-sdk-go-v2's ignored headers) or signed above.
        if matches!(
            n.as_str(),
            "authorization"
                | "user-agent"
                | "x-amzn-trace-id"
                | "expect"
                | "transfer-encoding"
                | "uber-trace-id"
                | "host"
                | "x-amz-date"
                | "x-amz-security-token"
        ) {
            continue;
        }
        match headers.iter_mut().find(|(h, _)| *h == n) {
            // A header sent twice is signed as one, its values joined by commas.
            Some((_, old)) => {
                old.push(',');
                old.push_str(&canonical_value(v));
            }
            None => headers.push((n, canonical_value(v))),
        }
    }
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut canonical = String::new();
    canonical.push_str(req.method);
    canonical.push('\n');
    let uri = if path.is_empty() { "/" } else { &path };
    // Services other than S3 sign the path as sent, encoded once more.
    encode(&mut canonical, uri.as_bytes(), true);
    canonical.push('\n');
    canonical.push_str(&canonical_query(req.query));
    canonical.push('\n');
    for (n, v) in &headers {
        canonical.push_str(n);
        canonical.push(':');
        canonical.push_str(v);
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&signed_headers);
    canonical.push('\n');
    canonical.push_str(&sha256_hex(req.body));
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date_time}\n{credential_scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let k_date = hmac(
        format!("AWS4{}", creds.secret_key).as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex(&hmac(&k_signing, to_sign.as_bytes()));
    let mut out = vec![("X-Amz-Date".to_owned(), date_time)];
    if let Some(t) = &creds.session_token {
        out.push(("X-Amz-Security-Token".to_owned(), t.clone()));
    }
    out.push((
        "Authorization".to_owned(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
            creds.access_key
        ),
    ));
    Signed { path, headers: out }
}

/// Signs a request to `url` (as sent, `http(s)://`) with `headers` and `body`: the URL
/// to send (its path cleaned) and the headers to add.
pub fn sign_url(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    creds: &Credentials,
    scope: &Scope,
    now: UnixNanos,
) -> Result<(String, Vec<(String, String)>), String> {
    let u = crate::http::Url::parse(url)?;
    let (path, query) = u
        .path_and_query
        .split_once('?')
        .unwrap_or((u.path_and_query.as_str(), ""));
    let host = u.authority();
    let signed = sign(
        &Request {
            method,
            host: &host,
            path,
            query,
            headers,
            body,
        },
        creds,
        scope,
        now,
    );
    let sent = if signed.path == path {
        url.to_owned()
    } else {
        let scheme = if url.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        let userinfo = u
            .userinfo
            .as_ref()
            .map(|i| format!("{i}@"))
            .unwrap_or_default();
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!("{scheme}://{userinfo}{host}{}{q}", signed.path)
    };
    Ok((sent, signed.headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's test-suite credentials, scope and time (2015-08-30T12:36:00Z).
    fn example() -> (Credentials, Scope, UnixNanos) {
        (
            Credentials {
                access_key: "AKIDEXAMPLE".into(),
                secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
                session_token: None,
            },
            Scope {
                region: "us-east-1".into(),
                service: "service".into(),
            },
            UnixNanos(1_440_938_160 * 1_000_000_000),
        )
    }

    fn authorization(s: &Signed) -> &str {
        &s.headers
            .iter()
            .find(|(n, _)| n == "Authorization")
            .expect("always added")
            .1
    }

    fn sig(method: &str, path: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
        let (c, s, t) = example();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let r = Request {
            method,
            host: "example.amazonaws.com",
            path,
            query,
            headers: &headers,
            body,
        };
        authorization(&sign(&r, &c, &s, t)).to_owned()
    }

    const PREFIX: &str =
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ";

    #[test]
    fn the_date_is_compact_utc() {
        assert_eq!(amz_date(example().2), "20150830T123600Z");
        assert_eq!(amz_date(UnixNanos(1_999_999_999)), "19700101T000001Z");
    }

    /// AWS's published signatures for its test-suite requests (aws-sig-v4-test-suite).
    #[test]
    fn matches_the_aws_test_suite() {
        assert_eq!(
            sig("GET", "/", "", &[], b""),
            format!(
                "{PREFIX}SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
        // get-vanilla-query-order-key-case: the query is sorted before signing.
        assert!(
            sig("GET", "/", "Param2=value2&Param1=value1", &[], b"").ends_with(
                "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
            )
        );
        // post-vanilla.
        assert!(sig("POST", "/", "", &[], b"").ends_with(
            "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        ));
        // get-utf8: the path's bytes are percent-encoded.
        assert!(sig("GET", "/\u{1234}", "", &[], b"").ends_with(
            "Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
        ));
    }

    /// post-sts-header-after: temporary credentials add and sign the session token.
    #[test]
    fn a_session_token_is_sent_and_signed() {
        let (mut c, s, t) = example();
        let token = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
        c.session_token = Some(token.into());
        let r = Request {
            method: "POST",
            host: "example.amazonaws.com",
            path: "/",
            query: "",
            headers: &[],
            body: b"",
        };
        let signed = sign(&r, &c, &s, t);
        assert_eq!(
            signed.headers[0],
            ("X-Amz-Date".into(), "20150830T123600Z".into())
        );
        assert_eq!(
            signed.headers[1],
            ("X-Amz-Security-Token".into(), token.into())
        );
        assert_eq!(
            authorization(&signed),
            format!(
                "{PREFIX}SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
            )
        );
    }

    /// A remote-write request as trawl sends it, signed as botocore 1.43's `SigV4Auth`
    /// (an implementation of its own) signs the same request: the protocol headers are
    /// signed, the body's hash is the payload hash, the secret never shows.
    #[test]
    fn a_remote_write_request_signs_its_headers_and_body() {
        let (c, s, t) = example();
        let headers: Vec<(String, String)> = [
            ("Content-Encoding", "snappy"),
            ("Content-Type", "application/x-protobuf"),
            ("User-Agent", "trawl/0.1.0"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        let r = Request {
            method: "POST",
            host: "ws.aps.example",
            path: "/workspaces/ws-1/api/v1/remote_write",
            query: "",
            headers: &headers,
            body: b"\x01\x02body",
        };
        let signed = sign(&r, &c, &s, t);
        assert_eq!(signed.path, "/workspaces/ws-1/api/v1/remote_write");
        assert_eq!(
            authorization(&signed),
            format!(
                "{PREFIX}SignedHeaders=content-encoding;content-type;host;x-amz-date;x-prometheus-remote-write-version, Signature=2066324ca85e8b456e63fded875a0e164268e93f17f5b45bd0b99738ac5d54c1"
            )
        );
        assert!(!format!("{c:?}").contains("EXAMPLEKEY"));
    }

    #[test]
    fn a_url_is_signed_for_its_host_and_sent_with_its_path_cleaned() {
        let (c, s, t) = example();
        let (url, h) = sign_url(
            "POST",
            "http://127.0.0.1:9201//api/./v1/write?x=1",
            &[],
            b"",
            &c,
            &s,
            t,
        )
        .expect("valid URL");
        assert_eq!(url, "http://127.0.0.1:9201/api/v1/write?x=1");
        assert_eq!(h.len(), 2);
        let (same, _) =
            sign_url("POST", "https://h.example/w", &[], b"", &c, &s, t).expect("valid");
        assert_eq!(same, "https://h.example/w");
        assert!(sign_url("POST", "ftp://h/", &[], b"", &c, &s, t).is_err());
    }

    #[test]
    fn paths_are_cleaned_as_the_round_tripper_cleans_them() {
        assert_eq!(clean_path("/a//b/./c/../d/"), "/a/b/d/");
        assert_eq!(clean_path("/"), "/");
        assert_eq!(clean_path("//"), "/");
        assert_eq!(clean_path("/x/.."), "/");
        assert_eq!(clean_path(""), "");
    }
}
