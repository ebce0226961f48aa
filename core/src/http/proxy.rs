//! Which proxy a request goes through: `proxy_url`, `no_proxy`, `proxy_from_environment`
//! and `proxy_connect_header`, decided as Prometheus's HTTP client decides (Go's
//! `http.ProxyURL`, and `golang.org/x/net/http/httpproxy` once `no_proxy` or the
//! environment is involved). Pure: the shell passes the environment's values in.
//!
//! - `proxy_url` alone sends every request through the proxy, loopback included.
//! - With `no_proxy`, or from the environment, requests to `localhost` and loopback
//!   addresses never use a proxy, and `no_proxy` entries exclude more: `*` (everything),
//!   IP addresses and CIDR ranges, and domain names (`example.com` matches it and its
//!   subdomains, `.example.com` and `*.example.com` only the subdomains), each optionally
//!   with a port.
//! - Only plain-HTTP proxies are supported: `http://` targets are requested from the
//!   proxy with the absolute URL; `https://` targets through a `CONNECT` tunnel, which
//!   carries `proxy_connect_header`. Credentials in the proxy URL become
//!   `Proxy-Authorization: Basic …`.

use core::net::IpAddr;

use super::{Scheme, Url};
use crate::common::http::HttpClientConfig;

/// The proxy settings a shell reads from its environment for `proxy_from_environment`
/// (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`, or their lowercase forms; `HTTP_PROXY` is
/// ignored when `REQUEST_METHOD` is set, as Go does under CGI).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    /// For `http://` targets.
    pub http_proxy: String,
    /// For `https://` targets.
    pub https_proxy: String,
    /// Exclusions.
    pub no_proxy: String,
}

impl ProxyEnv {
    /// From a lookup of environment variables (the shell passes its environment in).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let either = |a: &str, b: &str| {
            get(a)
                .filter(|v| !v.is_empty())
                .or_else(|| get(b))
                .unwrap_or_default()
        };
        let cgi = get("REQUEST_METHOD").is_some_and(|v| !v.is_empty());
        ProxyEnv {
            http_proxy: if cgi {
                String::new()
            } else {
                either("HTTP_PROXY", "http_proxy")
            },
            https_proxy: either("HTTPS_PROXY", "https_proxy"),
            no_proxy: either("NO_PROXY", "no_proxy"),
        }
    }
}

/// How a request reaches its target through a proxy (`Debug` hides the credentials
/// and the `CONNECT` header values).
#[derive(Clone, PartialEq, Eq)]
pub struct Route {
    /// The proxy's host (an IPv6 address without brackets) and port.
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// `Proxy-Authorization` value, from the proxy URL's credentials.
    pub authorization: Option<String>,
    /// True for a `CONNECT` tunnel (an `https://` target); false to send the request to
    /// the proxy with the absolute URL.
    pub tunnel: bool,
    /// Headers for the `CONNECT` request (`proxy_connect_header`).
    pub connect_headers: Vec<(String, String)>,
}

impl core::fmt::Debug for Route {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Route")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<secret>"),
            )
            .field("tunnel", &self.tunnel)
            .field(
                "connect_headers",
                &self
                    .connect_headers
                    .iter()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Route {
    /// The `CONNECT` request head for `target`.
    pub fn connect_request(&self, target: &Url, out: &mut Vec<u8>) -> Result<(), String> {
        let authority = target.authority();
        out.extend_from_slice(b"CONNECT ");
        out.extend_from_slice(authority.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(authority.as_bytes());
        out.extend_from_slice(b"\r\n");
        let auth = self
            .authorization
            .iter()
            .map(|a| ("Proxy-Authorization".to_owned(), a.clone()));
        for (n, v) in self.connect_headers.iter().cloned().chain(auth) {
            let bad = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0);
            if n.is_empty() || bad(&n) || n.contains(':') || bad(&v) {
                return Err(format!("invalid proxy header field {n:?}"));
            }
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}

/// The route for a request to `target` under `client`'s settings: `Ok(None)` to connect
/// directly, `Err` if the proxy configured cannot be used (never silently bypassed).
pub fn route(
    client: &HttpClientConfig,
    env: &ProxyEnv,
    target: &Url,
) -> Result<Option<Route>, String> {
    let (proxy, no_proxy, rules) = if client.proxy_from_environment {
        let p = match target.scheme {
            Scheme::Http => &env.http_proxy,
            Scheme::Https => &env.https_proxy,
        };
        (p.as_str(), env.no_proxy.as_str(), true)
    } else {
        let rules = !client.no_proxy.is_empty();
        (client.proxy_url.as_str(), client.no_proxy.as_str(), rules)
    };
    if proxy.is_empty() || (rules && excluded(no_proxy, target)) {
        return Ok(None);
    }
    // The environment may name a proxy without a scheme; Go reads it as http.
    let with_scheme;
    let proxy = if client.proxy_from_environment && !proxy.contains("://") {
        with_scheme = format!("http://{proxy}");
        &with_scheme
    } else {
        proxy
    };
    if let Some((scheme, _)) = proxy.split_once("://")
        && !scheme.eq_ignore_ascii_case("http")
    {
        return Err(format!(
            "proxy {}: only http:// proxies are supported, not {scheme}://",
            redact(proxy)
        ));
    }
    let url = Url::parse(proxy).map_err(|e| format!("proxy {}: {e}", redact(proxy)))?;
    let authorization = url.userinfo.as_deref().map(|u| {
        let (user, pass) = u.split_once(':').unwrap_or((u, ""));
        let plain = format!("{}:{}", unescape(user), unescape(pass));
        format!("Basic {}", crate::bytes::base64_encode(plain.as_bytes()))
    });
    let tunnel = target.scheme == Scheme::Https;
    let connect_headers = if tunnel {
        client
            .proxy_connect_header
            .iter()
            .flat_map(|(n, vs)| vs.iter().map(move |v| (n.clone(), v.expose().to_owned())))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Some(Route {
        host: url.host,
        port: url.port,
        authorization,
        tunnel,
        connect_headers,
    }))
}

/// The proxy URL with its password hidden, for error messages.
fn redact(proxy: &str) -> String {
    match (proxy.split_once("://"), proxy.rfind('@')) {
        (Some((scheme, rest)), Some(at)) if at > scheme.len() + 3 => {
            let creds = &rest[..at - scheme.len() - 3];
            let user = creds.split_once(':').map_or(creds, |(u, _)| u);
            format!("{scheme}://{user}:xxxxx@{}", &proxy[at + 1..])
        }
        _ => proxy.to_owned(),
    }
}

/// Percent-decoding of URL credentials (invalid escapes are kept as written).
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True if `target` bypasses the proxy under `no_proxy` (httpproxy's rules).
pub fn excluded(no_proxy: &str, target: &Url) -> bool {
    let host = target.host.to_ascii_lowercase();
    let ip = host.parse::<IpAddr>().ok();
    if host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
        return true;
    }
    let port = target.port.to_string();
    for entry in no_proxy.split(',') {
        let e = entry.trim().to_ascii_lowercase();
        if e.is_empty() {
            continue;
        }
        if e == "*" {
            return true;
        }
        if let Some((net, bits)) = e.split_once('/') {
            // A CIDR range (an entry with a slash that is not one is ignored).
            if let (Ok(net), Ok(bits), Some(ip)) = (net.parse::<IpAddr>(), bits.parse(), ip)
                && in_cidr(ip, net, bits)
            {
                return true;
            }
            continue;
        }
        let (h, p) = split_host_port(&e);
        if h.is_empty() {
            continue;
        }
        let port_ok = p.is_empty() || p == port;
        if let Ok(eip) = h.parse::<IpAddr>() {
            if ip == Some(eip) && port_ok {
                return true;
            }
            continue;
        }
        // Domains: `foo.com` matches foo.com and *.foo.com; `.foo.com` and `*.foo.com`
        // only the subdomains.
        let h = h.strip_prefix('*').unwrap_or(h);
        let match_host = !h.starts_with('.');
        let dotted = if match_host {
            format!(".{h}")
        } else {
            h.to_owned()
        };
        if (host.ends_with(&dotted) || (match_host && host == h)) && port_ok {
            return true;
        }
    }
    false
}

/// `host:port`, `[v6]:port`, or a bare host (the port empty). A bare IPv6 address has
/// colons but no port.
fn split_host_port(e: &str) -> (&str, &str) {
    if let Some(rest) = e.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':').unwrap_or("")),
            None => ("", ""),
        };
    }
    match e.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p),
        _ => (e, ""),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::http::Secret;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    fn client(proxy: &str, no_proxy: &str) -> HttpClientConfig {
        HttpClientConfig {
            proxy_url: proxy.into(),
            no_proxy: no_proxy.into(),
            ..HttpClientConfig::default()
        }
    }

    fn via(c: &HttpClientConfig, env: &ProxyEnv, target: &str) -> Option<(String, u16, bool)> {
        route(c, env, &url(target))
            .expect("route")
            .map(|r| (r.host, r.port, r.tunnel))
    }

    #[test]
    fn proxy_url_alone_proxies_everything_even_loopback() {
        let c = client("http://proxy.example:3128", "");
        let env = ProxyEnv::default();
        assert_eq!(
            via(&c, &env, "http://127.0.0.1:9100/metrics"),
            Some(("proxy.example".into(), 3128, false))
        );
        assert_eq!(
            via(&c, &env, "https://node.example/metrics"),
            Some(("proxy.example".into(), 3128, true))
        );
        assert_eq!(via(&client("", ""), &env, "http://a:1/"), None);
    }

    #[test]
    fn no_proxy_follows_httpproxy_rules() {
        let c = client(
            "http://p:8080",
            "example.com, .sub.org,*.star.net,10.0.0.0/8,192.168.1.1:8080,2001:db8::1,[2001:db8::2]:443,bad/cidr",
        );
        let env = ProxyEnv::default();
        let direct = |t: &str| via(&c, &env, t).is_none();
        // With no_proxy, loopback and localhost never use a proxy.
        assert!(direct("http://127.0.0.5:9100/"));
        assert!(direct("http://localhost:9100/"));
        assert!(direct("http://[::1]:9100/"));
        // Domains: the name and its subdomains; with a leading dot or *., only subdomains.
        assert!(direct("http://example.com/"));
        assert!(direct("http://a.b.EXAMPLE.com/"));
        assert!(!direct("http://notexample.com/"));
        assert!(!direct("http://sub.org/"));
        assert!(direct("http://x.sub.org/"));
        assert!(!direct("http://star.net/"));
        assert!(direct("http://x.star.net/"));
        // Addresses, ranges and ports.
        assert!(direct("http://10.20.30.40:1/"));
        assert!(!direct("http://11.0.0.1/"));
        assert!(direct("http://192.168.1.1:8080/"));
        assert!(!direct("http://192.168.1.1:8081/"));
        assert!(direct("http://[2001:db8::1]:9/"));
        assert!(direct("https://[2001:db8::2]/"));
        assert!(!direct("http://[2001:db8::2]/"));
        // `*` excludes everything.
        assert!(via(&client("http://p:1", "*"), &env, "http://anything:1/").is_none());
    }

    #[test]
    fn the_environment_picks_the_proxy_by_scheme() {
        let c = HttpClientConfig {
            proxy_from_environment: true,
            ..HttpClientConfig::default()
        };
        let vars = [
            ("http_proxy", "plain:3128"),
            ("HTTPS_PROXY", "http://secure:3129"),
            ("NO_PROXY", "internal.example"),
        ];
        let env = ProxyEnv::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        });
        assert_eq!(
            via(&c, &env, "http://a.example:80/"),
            Some(("plain".into(), 3128, false))
        );
        assert_eq!(
            via(&c, &env, "https://a.example/"),
            Some(("secure".into(), 3129, true))
        );
        assert_eq!(via(&c, &env, "http://internal.example/"), None);
        assert_eq!(via(&c, &env, "http://127.0.0.1/"), None);
        // Under CGI, HTTP_PROXY is the client's header: ignored.
        let cgi = ProxyEnv::from_lookup(|k| match k {
            "REQUEST_METHOD" => Some("GET".into()),
            "HTTP_PROXY" => Some("http://evil:1".into()),
            _ => None,
        });
        assert_eq!(via(&c, &cgi, "http://a.example/"), None);
    }

    #[test]
    fn credentials_become_proxy_authorization_and_connect_carries_headers() {
        let mut c = client("http://user:p%40ss@proxy:3128", "");
        c.proxy_connect_header.insert(
            "X-Tenant".into(),
            vec![Secret::new("t1"), Secret::new("t2")],
        );
        let env = ProxyEnv::default();
        let plain = route(&c, &env, &url("http://t:9100/metrics"))
            .expect("route")
            .expect("proxied");
        // base64("user:p@ss")
        assert_eq!(plain.authorization.as_deref(), Some("Basic dXNlcjpwQHNz"));
        assert!(plain.connect_headers.is_empty());
        let tls = route(&c, &env, &url("https://t:9443/metrics"))
            .expect("route")
            .expect("proxied");
        let mut out = Vec::new();
        tls.connect_request(&url("https://t:9443/metrics"), &mut out)
            .expect("head");
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            "CONNECT t:9443 HTTP/1.1\r\nHost: t:9443\r\nX-Tenant: t1\r\nX-Tenant: t2\r\n\
             Proxy-Authorization: Basic dXNlcjpwQHNz\r\n\r\n"
        );
        assert!(!format!("{tls:?}").contains("dXNlcjpwQHNz"));
        assert!(!format!("{tls:?}").contains("t1"));
    }

    #[test]
    fn unsupported_proxies_are_errors_that_hide_the_password() {
        let env = ProxyEnv::default();
        let e = route(
            &client("socks5://u:hunter2@p:1080", ""),
            &env,
            &url("http://t/"),
        )
        .expect_err("socks5");
        assert!(e.contains("only http:// proxies"), "{e}");
        assert!(e.contains("socks5://u:xxxxx@p:1080"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = route(&client("https://p:443", ""), &env, &url("http://t/")).expect_err("https");
        assert!(e.contains("not https://"), "{e}");
    }
}
