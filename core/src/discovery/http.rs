//! `http_sd_configs`: target groups fetched as JSON from a URL at start and every
//! `refresh_interval`, as 3.x's `discovery/http` (`Discovery.Refresh`) does: the request
//! times out after one interval, a non-200 status or another content type than JSON is a
//! failure, and a failure keeps the previous groups.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::groups::{DocFormat, empty_group, name_groups, parse_target_groups};
use super::mechanism::{Counter, Invalid, MachineContext, Mechanism, SdContext, SdMachine, SdOut};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::{LenientString, Nullable, Path};
use crate::duration::PromDuration;
use crate::io::{self, HttpRequest, IoEvent, IoOp, IoQueue, Origin, RequestId};
use crate::time::Instant;

/// `prometheus_sd_http_failures_total`.
const FAILURES: &str = "prometheus_sd_http_failures_total";

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Http;

impl Mechanism for Http {
    const KEY: &'static str = "http_sd_configs";
    const EXAMPLE: Option<&'static str> = Some("{url: 'http://127.0.0.1:9000/sd'}");
    const NAME: &'static str = "http";
    const GO_TYPE: &'static str = "http.plain";
    const RUNS: bool = true;
    const COUNTERS: &'static [Counter] = &[Counter {
        name: FAILURES,
        labels: &[],
        help: "Number of HTTP service discovery refresh failures.",
    }];
    type Raw = RawHttpSd;
    type Config = HttpSdConfig;

    fn validate(raw: RawHttpSd, cx: &SdContext<'_>) -> Result<HttpSdConfig, Invalid> {
        raw.validate(cx).map_err(|e| (Path::default(), e))
    }

    fn machine(cfg: &HttpSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        Some(Box::new(HttpSd::new(cfg, cx)))
    }
}

with_http_client! {
    /// `http_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawHttpSd {
        #[serde(default)]
        url: LenientString,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
    }
}

/// HTTP-based discovery: `GET url` every `refresh_interval`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSdConfig {
    /// The endpoint.
    pub url: String,
    /// Refresh period (default 60s); also the request timeout.
    pub refresh_interval: PromDuration,
    /// Client options.
    pub http_client: HttpClientConfig,
}

/// Checks a discovery URL as 3.x's HTTP and PuppetDB discovery do: present, accepted
/// by Go's `url.Parse` (its message), scheme `http` or `https`, a host.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("URL is missing".into());
    }
    let parsed = crate::gourl::parse(url)?;
    if parsed.scheme != "http" && parsed.scheme != "https" {
        return Err("URL scheme must be 'http' or 'https'".into());
    }
    if parsed.host.is_empty() {
        return Err("host is missing in URL".into());
    }
    Ok(())
}

impl RawHttpSd {
    fn validate(mut self, cx: &SdContext<'_>) -> Result<HttpSdConfig, String> {
        let client = self.take_http_client();
        // The TLS blocks are checked while decoding, before the URL.
        client.check_tls()?;
        check_url(&self.url.0)?;
        let http_client = client.validate(&cx.paths)?;
        Ok(HttpSdConfig {
            url: self.url.0,
            refresh_interval: self
                .refresh_interval
                .value()
                .unwrap_or(PromDuration::from_secs(60)),
            http_client,
        })
    }
}

/// HTTP discovery: GET the URL at start and every `refresh_interval`.
#[derive(Debug)]
struct HttpSd {
    url: String,
    interval: Duration,
    client: Arc<HttpClientConfig>,
    user_agent: Arc<str>,
    limit: u64,
    name: Arc<str>,
    in_flight: Option<HttpFetch>,
    next_refresh: Instant,
    /// Groups in the last successful answer.
    prev_count: usize,
}

#[derive(Debug)]
struct HttpFetch {
    id: RequestId,
    deadline: Instant,
    error: Option<String>,
    body: Vec<u8>,
}

/// True for `application/json`, optionally `;charset=utf-8` (quoted or not, any case).
pub(crate) fn json_content_type(ct: &str) -> bool {
    let ct = ct.trim().to_ascii_lowercase();
    let Some(rest) = ct.strip_prefix("application/json") else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(params) = rest.strip_prefix(';') else {
        return false;
    };
    matches!(params.trim_start(), "charset=utf-8" | "charset=\"utf-8\"")
}

impl HttpSd {
    fn new(cfg: &HttpSdConfig, cx: &MachineContext<'_>) -> HttpSd {
        HttpSd {
            url: cfg.url.clone(),
            interval: cfg.refresh_interval.to_std(),
            client: Arc::new(cfg.http_client.clone()),
            user_agent: cx.env.user_agent.clone(),
            limit: cx.env.body_limit,
            name: cx.name.clone(),
            in_flight: None,
            next_refresh: cx.now,
            prev_count: 0,
        }
    }

    fn refresh(&mut self, now: Instant, io: &mut IoQueue) {
        self.next_refresh = now + self.interval;
        if self.in_flight.is_some() {
            return;
        }
        let mut headers = vec![
            ("User-Agent".to_owned(), self.user_agent.to_string()),
            ("Accept".to_owned(), "application/json".to_owned()),
            (
                "X-Prometheus-Refresh-Interval-Seconds".to_owned(),
                io::seconds_string(self.interval),
            ),
        ];
        let credentials_file = io::add_auth(&self.client, &mut headers);
        let id = io.start(IoOp::Http(HttpRequest {
            url: self.url.clone(),
            headers,
            credentials_file,
            client: self.client.clone(),
            body_limit: self.limit,
            timeout: self.interval,
            origin: Origin::Discovery {
                provider: self.name.clone(),
            },
            body: None,
        }));
        self.in_flight = Some(HttpFetch {
            id,
            deadline: now + self.interval,
            error: None,
            body: Vec::new(),
        });
    }

    fn on_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        if let Some(x) = self.in_flight.as_ref().filter(|x| now >= x.deadline) {
            io.cancel(x.id);
            self.in_flight = None;
            self.fail(
                out,
                format!(
                    "Get {:?}: context deadline exceeded",
                    crate::gourl::redact_url(&self.url, crate::gourl::STRIPPED)
                ),
            );
        }
        if now >= self.next_refresh {
            self.refresh(now, io);
        }
    }

    fn fail(&self, out: &mut SdOut, e: String) {
        out.count(FAILURES, 1);
        out.failures.push(e);
    }

    fn on_io(
        &mut self,
        _now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        let Some(x) = self.in_flight.as_mut().filter(|x| x.id == id) else {
            return;
        };
        match ev {
            IoEvent::HttpHead {
                status,
                reason,
                headers,
            } => {
                if status != 200 {
                    x.error = Some(format!("server returned HTTP status {status} {reason}"));
                } else {
                    let ct = io::header(headers, "content-type").unwrap_or("");
                    if !json_content_type(ct) {
                        x.error = Some(format!("unsupported content type {ct:?}"));
                    }
                }
                if x.error.is_some() {
                    // Nothing more is needed from this response.
                    io.cancel(id);
                    let e = x.error.take();
                    self.in_flight = None;
                    self.fail(out, e.unwrap_or_default());
                }
            }
            IoEvent::HttpBody(chunk) => {
                if self.limit > 0 && (x.body.len() + chunk.len()) as u64 > self.limit {
                    io.cancel(id);
                    self.in_flight = None;
                    let limit = self.limit;
                    self.fail(out, format!("response body exceeds {limit} bytes"));
                } else {
                    // Grow by doubling, but never past the limit: a body at the limit
                    // holds the limit, not twice it.
                    let need = x.body.len() + chunk.len();
                    if need > x.body.capacity() && self.limit > 0 {
                        let want = (x.body.capacity() * 2).max(need).min(self.limit as usize);
                        x.body.reserve_exact(want - x.body.len());
                    }
                    x.body.extend_from_slice(chunk);
                }
            }
            IoEvent::HttpEnd => {
                let body = std::mem::take(&mut x.body);
                self.in_flight = None;
                match parse_target_groups(&body, DocFormat::Json) {
                    Ok(mut g) => {
                        name_groups(&mut g, &self.url, "__meta_url");
                        let n = g.len();
                        for i in n..self.prev_count {
                            g.push(empty_group(format!("{}:{i}", self.url)));
                        }
                        self.prev_count = n;
                        out.updates.push(g);
                    }
                    Err(e) => {
                        let url = crate::gourl::redact_url(&self.url, crate::gourl::STRIPPED);
                        self.fail(out, format!("{url}: {e}"))
                    }
                }
            }
            IoEvent::Failed(e) => {
                self.in_flight = None;
                let url = crate::gourl::redact_url(&self.url, crate::gourl::STRIPPED);
                self.fail(out, format!("Get {url:?}: {e}"));
            }
            _ => {}
        }
    }
}

impl SdMachine for HttpSd {
    fn start(&mut self, now: Instant, io: &mut IoQueue, _: &mut SdOut) {
        self.refresh(now, io);
    }

    fn owns(&self, id: RequestId) -> bool {
        self.in_flight.as_ref().is_some_and(|x| x.id == id)
    }

    fn handle_io(
        &mut self,
        now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        self.on_io(now, id, ev, io, out);
    }

    fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        self.on_timeout(now, io, out);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Some(match &self.in_flight {
            Some(x) => x.deadline.min(self.next_refresh),
            None => self.next_refresh,
        })
    }

    fn stop(&mut self, io: &mut IoQueue) {
        if let Some(x) = &self.in_flight {
            io.cancel(x.id);
        }
    }

    fn in_flight(&self) -> usize {
        usize::from(self.in_flight.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls() {
        assert_eq!(check_url(""), Err("URL is missing".into()));
        assert_eq!(
            check_url("ftp://x/y"),
            Err("URL scheme must be 'http' or 'https'".into())
        );
        assert_eq!(
            check_url("foo.com/sd"),
            Err("URL scheme must be 'http' or 'https'".into())
        );
        assert_eq!(
            check_url("http:///sd"),
            Err("host is missing in URL".into())
        );
        assert!(check_url("https://user@host:8080/sd?x=1").is_ok());
        // Go's parser runs first, with its messages; it accepts a space in a path.
        assert_eq!(
            check_url("ftp://h:x/"),
            Err(r#"parse "ftp://h:x/": invalid port ":x" after host"#.into())
        );
        assert_eq!(
            check_url("http://a b/sd"),
            Err(r#"parse "http://a b/sd": invalid character " " in host name"#.into())
        );
        assert!(check_url("HTTP://h/a b").is_ok());
    }

    #[test]
    fn blocks_as_3x_checks_them() {
        use crate::discovery::mechanism::test_support::{error, job, parse};
        let key = "http_sd_configs";
        // Null is no URL (not the text `~`).
        assert_eq!(error(key, "url: ~"), "URL is missing");
        // The TLS block is checked while decoding, before the URL.
        assert_eq!(
            error(key, "url: ftp://x\ntls_config: {ca: a, ca_file: b}"),
            "at most one of ca, ca_file & ca_ref must be configured"
        );
        let text = job(key, &["url: http://sd/targets"]);
        let c = parse(&text).expect("valid");
        let j = c.job("j").expect("job");
        // trawl runs HTTP SD.
        assert!(j.unsupported_sd.is_empty());
        let cfg = j.sd_configs[0].get::<HttpSdConfig>().expect("http block");
        assert_eq!(cfg.refresh_interval, PromDuration::from_secs(60));
    }

    #[test]
    fn content_types() {
        for ok in [
            "application/json",
            "application/json;charset=utf-8",
            "application/json;charset=UTF-8",
            "Application/JSON;Charset=\"utf-8\"",
            "application/json; charset=\"utf-8\"",
        ] {
            assert!(json_content_type(ok), "{ok}");
        }
        for bad in [
            "application/jsonl; charset=\"utf-8\"",
            "application/json;charset=UTF-9",
            "application /json;charset=UTF-8",
            "application/ json;charset=UTF-8",
            "application/json;",
            "charset=UTF-8",
        ] {
            assert!(!json_content_type(bad), "{bad}");
        }
    }
}
