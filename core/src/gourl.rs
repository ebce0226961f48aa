//! Go's `net/url.Parse` as a validator: which strings it refuses and with which message,
//! and the scheme and host of those it accepts, so that configuration checks built on it
//! give Prometheus's verdicts and texts (`parse "…": invalid port ":x" after host`).
//!
//! Follows the parser of the Go release Prometheus 3.x is built with (1.26): control
//! characters are refused anywhere, `%` escapes are checked in every part, a host may
//! hold only the characters RFC 3986 allows (plus `:`, `[`, `]`, `<`, `>`, `"`), a
//! bracketed host must be an IPv6 address, and for `http`/`https` URLs the port starts
//! at the first colon of the host.

use crate::goquote::quote;

/// The parts of an accepted URL that configuration checks look at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GoUrl {
    /// The scheme, lower-cased (empty for a relative reference).
    pub scheme: String,
    /// Host and optional port as written, with `%` escapes decoded (empty if none).
    pub host: String,
    /// The opaque part of `scheme:rest` URLs whose rest does not start with `/`.
    pub opaque: String,
}

/// Parses `raw` as Go's `url.Parse` does; the error is the whole message Go prints
/// (`parse "<url>": <reason>`, the URL as Go quotes it), except that a password in the
/// URL is shown as `xxxxx`.
pub fn parse(raw: &str) -> Result<GoUrl, String> {
    let (main, fragment) = match raw.find('#') {
        Some(i) => (&raw[..i], Some(&raw[i + 1..])),
        None => (raw, None),
    };
    // As everywhere in trawl's errors, a password in the URL is shown as `xxxxx`.
    let shown = |s: &str| quote(&crate::gourl::redact_url(s, crate::gourl::REDACTED));
    let url = parse_main(main).map_err(|e| format!("parse {}: {e}", shown(main)))?;
    if let Some(f) = fragment {
        unescape(f, Mode::Fragment).map_err(|e| format!("parse {}: {e}", shown(raw)))?;
    }
    Ok(url)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    Fragment,
}

fn parse_main(raw: &str) -> Result<GoUrl, String> {
    if raw.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    let mut url = GoUrl::default();
    if raw == "*" {
        return Ok(url);
    }
    let (scheme, rest) = split_scheme(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    let rest = match rest.strip_suffix('?') {
        Some(r) if !r.contains('?') => r,
        _ => rest.split('?').next().unwrap_or(""),
    };
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            url.opaque = rest.to_owned();
            return Ok(url);
        }
        if rest.split('/').next().unwrap_or("").contains(':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    let mut path = rest;
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority = &rest[2..];
        let (authority, tail) = match authority.find('/') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, ""),
        };
        url.host = parse_authority(&url.scheme, authority)?;
        path = tail;
    }
    unescape(path, Mode::Path)?;
    Ok(url)
}

/// `scheme:rest`, or no scheme (`""`, the whole input) when the text before the first
/// character that cannot be in a scheme is not followed by `:`.
fn split_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

fn parse_authority(scheme: &str, authority: &str) -> Result<String, String> {
    let at = authority.rfind('@');
    let host = parse_host(scheme, at.map_or(authority, |i| &authority[i + 1..]))?;
    if let Some(i) = at {
        let userinfo = &authority[..i];
        if !userinfo.bytes().all(valid_userinfo_byte) {
            return Err("net/url: invalid userinfo".into());
        }
        match userinfo.split_once(':') {
            None => {
                unescape(userinfo, Mode::UserPassword)?;
            }
            Some((user, password)) => {
                unescape(user, Mode::UserPassword)?;
                unescape(password, Mode::UserPassword)?;
            }
        }
    }
    Ok(host)
}

fn valid_userinfo_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || sub_delim(b)
        || matches!(b, b'-' | b'.' | b'_' | b':' | b'~' | b'%' | b'@')
}

/// RFC 3986's sub-delims, which Go's URL code allows in several places.
fn sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// Go's `validOptionalPort`: empty, or `:` followed by digits only.
pub(crate) fn valid_optional_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => port.is_empty(),
    }
}

fn parse_host(scheme: &str, host: &str) -> Result<String, String> {
    match host.rfind('[') {
        Some(i) if i > 0 => return Err("invalid IP-literal".into()),
        Some(_) => return parse_ip_literal(host),
        None => {}
    }
    if let Some(first) = host.find(':') {
        // For http and https the port starts at the first colon (a host cannot hold
        // one); other schemes keep the old reading from the last colon.
        let i = if scheme == "http" || scheme == "https" {
            first
        } else {
            host.rfind(':').unwrap_or(first)
        };
        let port = &host[i..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {} after host", quote(port)));
        }
    }
    unescape(host, Mode::Host)
}

/// `[address]` or `[address]:port`, the address an IPv6 one (with an optional `%25`
/// zone).
fn parse_ip_literal(host: &str) -> Result<String, String> {
    let Some(close) = host.rfind(']') else {
        return Err("missing ']' in host".into());
    };
    let port = &host[close + 1..];
    if !valid_optional_port(port) {
        return Err(format!("invalid port {} after host", quote(port)));
    }
    let port = unescape(port, Mode::Host)?;
    let inner = &host[1..close];
    let address = match inner.find("%25") {
        Some(z) => {
            let a = unescape(&inner[..z], Mode::Host)?;
            let zone = unescape(&inner[z..], Mode::Zone)?;
            a + &zone
        }
        None => unescape(inner, Mode::Host)?,
    };
    check_ipv6(&address)?;
    Ok(format!("[{address}]{port}"))
}

/// Go's `netip.ParseAddr` as the bracketed host needs it: an IPv6 address (optionally
/// with a zone) passes, an IPv4 one is not an IP literal, anything else is refused.
fn check_ipv6(s: &str) -> Result<(), String> {
    let fail = |msg: &str| Err(format!("invalid host: ParseAddr({}): {msg}", quote(s)));
    let first = s.bytes().position(|b| matches!(b, b'.' | b':' | b'%'));
    match first.map(|i| s.as_bytes()[i]) {
        Some(b'.') => {
            if crate::gourl::is_ipv4(s) {
                Err("invalid IP-literal".into())
            } else {
                fail("unable to parse IP")
            }
        }
        Some(b':') => {
            let (addr, zone) = match s.find('%') {
                Some(i) => (&s[..i], Some(&s[i + 1..])),
                None => (s, None),
            };
            if zone == Some("") {
                return fail("zone must be a non-empty string");
            }
            if crate::gourl::is_ipv6(addr) {
                Ok(())
            } else {
                fail("unable to parse IP")
            }
        }
        Some(_) => fail("missing IPv6 address"),
        None => fail("unable to parse IP"),
    }
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn unhex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// Go's `shouldEscape` for the modes `unescape` consults it in (host and zone).
fn host_byte_needs_escape(c: u8) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    !(sub_delim(c)
        || matches!(
            c,
            b':' | b'[' | b']' | b'<' | b'>' | b'"' | b'-' | b'_' | b'.' | b'~'
        ))
}

/// A URL's path decoded as Go's `url.Parse` decodes it into `URL.Path`.
pub(crate) fn path_unescape(s: &str) -> Result<String, String> {
    unescape(s, Mode::Path)
}

/// Checks the `%` escapes (and, in a host, the characters) of one part; returns the
/// part decoded.
fn unescape(s: &str, mode: Mode) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                if i + 2 >= b.len() || !is_hex(b[i + 1]) || !is_hex(b[i + 2]) {
                    let end = (i + 3).min(b.len());
                    return Err(escape_error(&b[i..end]));
                }
                let seq = &b[i..i + 3];
                let v = (unhex(b[i + 1]) << 4) | unhex(b[i + 2]);
                if mode == Mode::Host && unhex(b[i + 1]) < 8 && seq != b"%25" {
                    return Err(escape_error(seq));
                }
                if mode == Mode::Zone && seq != b"%25" && v != b' ' && host_byte_needs_escape(v) {
                    return Err(escape_error(seq));
                }
                out.push(v);
                i += 3;
            }
            c => {
                if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && host_byte_needs_escape(c)
                {
                    return Err(format!(
                        "invalid character {} in host name",
                        quote(&(c as char).to_string())
                    ));
                }
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `invalid URL escape "%zz"`, the bytes quoted as Go quotes a string that may not be
/// valid UTF-8 (a cut multi-byte character shows as `\xNN`).
fn escape_error(seq: &[u8]) -> String {
    let mut text = String::new();
    let mut rest = seq;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                text.push_str(&quote_inner(s));
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // `good` is valid UTF-8 by construction.
                text.push_str(&quote_inner(&String::from_utf8_lossy(good)));
                let n = e.error_len().unwrap_or(bad.len()).max(1);
                for byte in &bad[..n] {
                    text.push_str(&format!("\\x{byte:02x}"));
                }
                rest = &bad[n..];
            }
        }
    }
    format!("invalid URL escape \"{text}\"")
}

/// Go's quoting of `s` without the surrounding quotes.
fn quote_inner(s: &str) -> String {
    let q = quote(s);
    q[1..q.len() - 1].to_owned()
}

/// What Go's `url.URL.Redacted` puts in place of a URL's password (Prometheus shows
/// configured URLs this way: `/api/v1/status/config`, remote write's `url` label).
pub const REDACTED: &str = "xxxxx";
/// What Go's HTTP client puts in place of a URL's password in its errors (a scrape's
/// `lastError`, discovery failures).
pub const STRIPPED: &str = "***";

/// `s` with the password of its `user:password@` part replaced by `mask` (the text as it
/// was when it has none, or is not a URL).
pub fn redact_url<'a>(s: &'a str, mask: &str) -> std::borrow::Cow<'a, str> {
    let Some(start) = s.find("://").map(|i| i + 3) else {
        return s.into();
    };
    let rest = &s[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..end].rfind('@') else {
        return s.into();
    };
    let Some(colon) = rest[..at].find(':') else {
        return s.into();
    };
    format!("{}{mask}{}", &s[..start + colon + 1], &rest[at..]).into()
}

/// Go's path escaping in `url.URL.EscapedPath`, appended to `out`: letters, digits,
/// `-_.~` and `$&+,/:;=@` stay, every other byte `%XX` (upper-case hex).
pub fn path_escape(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b'&'
            | b'+'
            | b','
            | b'/'
            | b':'
            | b';'
            | b'='
            | b'@' => out.push(b as char),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
}

/// Go's `url.QueryEscape`: letters, digits and `-_.~` stay, a space becomes `+`, every
/// other byte `%XX` (upper-case hex).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
    out
}

/// True for an IPv4 address in dotted-quad form (`127.0.0.1`; no leading zeros beyond
/// three digits, each part at most 255).
pub fn is_ipv4(s: &str) -> bool {
    let mut n = 0;
    for p in s.split('.') {
        n += 1;
        if p.is_empty()
            || p.len() > 3
            || !p.bytes().all(|b| b.is_ascii_digit())
            || p.parse::<u16>().map_or(true, |v| v > 255)
        {
            return false;
        }
    }
    n == 4
}

/// True for an IPv6 address (`::1`, `2001:db8::1`, `::ffff:10.0.0.1`), without a zone.
pub fn is_ipv6(addr: &str) -> bool {
    if !addr.contains(':') || addr.len() > 45 {
        return false;
    }
    // An IPv4 tail counts as two groups.
    let owned;
    let addr = match addr.rfind(':') {
        Some(i) if addr[i + 1..].contains('.') => {
            if !is_ipv4(&addr[i + 1..]) {
                return false;
            }
            owned = format!("{}0:0", &addr[..=i]);
            owned.as_str()
        }
        _ => addr,
    };
    let groups = |part: &str| -> Option<usize> {
        if part.is_empty() {
            return Some(0);
        }
        let mut n = 0;
        for g in part.split(':') {
            if g.is_empty() || g.len() > 4 || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            n += 1;
        }
        Some(n)
    };
    match addr.split_once("::") {
        Some((left, right)) => {
            !right.contains("::")
                && matches!((groups(left), groups(right)), (Some(l), Some(r)) if l + r <= 7)
        }
        None => groups(addr) == Some(8),
    }
}

/// True for an IPv4 address or an IPv6 one with an optional non-empty `%zone`.
pub fn is_ip_literal(s: &str) -> bool {
    if is_ipv4(s) {
        return true;
    }
    match s.split_once('%') {
        Some((a, zone)) => !zone.is_empty() && is_ipv6(a),
        None => is_ipv6(s),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_escaping_as_go() {
        assert_eq!(
            super::query_escape("app in (a, b),x!=y"),
            "app+in+%28a%2C+b%29%2Cx%21%3Dy"
        );
        assert_eq!(super::query_escape("a-b_c.d~é"), "a-b_c.d~%C3%A9");
    }

    use super::*;

    #[test]
    fn accepted_urls_and_their_parts() {
        let u = parse("HTTP://user:pw@Host.example:8080/a b?x#y").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.host.as_str()),
            ("http", "Host.example:8080")
        );
        let u = parse("localhost:2375").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.opaque.as_str()),
            ("localhost", "2375")
        );
        let u = parse("unix:///var/run/docker.sock").unwrap();
        assert_eq!((u.scheme.as_str(), u.host.as_str()), ("unix", ""));
        assert_eq!(parse("http://[::1]:80/").unwrap().host, "[::1]:80");
        assert_eq!(parse("").unwrap(), GoUrl::default());
        assert_eq!(parse("/just/a/path").unwrap().host, "");
        // Other schemes keep reading the port from the last colon.
        assert!(parse("mongodb://a:1,b:2/db").is_ok());
    }

    #[test]
    fn refused_urls_and_go_messages() {
        for (raw, want) in [
            (":foo", r#"parse ":foo": missing protocol scheme"#),
            (
                "a\tb",
                r#"parse "a\tb": net/url: invalid control character in URL"#,
            ),
            (
                "1.2.3.4:80",
                r#"parse "1.2.3.4:80": first path segment in URL cannot contain colon"#,
            ),
            (
                "http://host:port/",
                r#"parse "http://host:port/": invalid port ":port" after host"#,
            ),
            (
                "http://a:1:2/",
                r#"parse "http://a:1:2/": invalid port ":1:2" after host"#,
            ),
            (
                "http://a b/",
                r#"parse "http://a b/": invalid character " " in host name"#,
            ),
            (
                "http://[::1/",
                r#"parse "http://[::1/": missing ']' in host"#,
            ),
            (
                "http://x[::1]/",
                r#"parse "http://x[::1]/": invalid IP-literal"#,
            ),
            (
                "http://[1.2.3.4]/",
                r#"parse "http://[1.2.3.4]/": invalid IP-literal"#,
            ),
            (
                "http://h/%zz",
                r#"parse "http://h/%zz": invalid URL escape "%zz""#,
            ),
            (
                "http://h/%",
                r#"parse "http://h/%": invalid URL escape "%""#,
            ),
            (
                "http://h/%4",
                r#"parse "http://h/%4": invalid URL escape "%4""#,
            ),
            (
                "http://h%41/",
                r#"parse "http://h%41/": invalid URL escape "%41""#,
            ),
            (
                "http://a^b@h/",
                r#"parse "http://a^b@h/": net/url: invalid userinfo"#,
            ),
            (
                "http://h/#%x",
                r#"parse "http://h/#%x": invalid URL escape "%x""#,
            ),
            (
                "http://u:pw@h:x/",
                r#"parse "http://u:xxxxx@h:x/": invalid port ":x" after host"#,
            ),
        ] {
            assert_eq!(parse(raw).unwrap_err(), want, "{raw}");
        }
        assert!(
            parse("http://[foo]/")
                .unwrap_err()
                .starts_with(r#"parse "http://[foo]/": invalid host: ParseAddr("foo")"#)
        );
        // A multi-byte character cut by the escape check is quoted byte by byte.
        assert_eq!(
            parse("/%aé").unwrap_err(),
            "parse \"/%aé\": invalid URL escape \"%a\\xc3\""
        );
        assert_eq!(
            parse("/%é").unwrap_err(),
            "parse \"/%é\": invalid URL escape \"%é\""
        );
    }
}
