//! A Docker Engine API client, sans IO: what 3.x's providers get from the moby client
//! (`github.com/moby/moby/client`), for the calls they make.
//!
//! - **Transport** (the client's `ParseHostURL` and `WithHost`): `unix://<path>` and
//!   `tcp://<host>:<port>[/<base>]` speak HTTP/1.1 over an [`IoOp::Stream`], the core
//!   writing the request and reading the response with its own codec, one connection per
//!   call, `Host: api.moby.localhost` on a Unix socket as the client sends; the job's
//!   HTTP client options are not used there (3.x passes them only for `http://` and
//!   `https://`, and trawl warns when they are set). `http://` and `https://` go through
//!   the shell's HTTP client with the job's options (TLS, authorization, proxy). Any
//!   other scheme cannot be reached: the provider fails to start, as 3.x's does.
//! - **API version negotiation** (`NegotiateAPIVersion`): before the first listing, and
//!   again after any failure, `GET /_ping`; its `Api-Version` header (1.24 when absent)
//!   caps the client's own [`MAX_API_VERSION`], and every call goes to
//!   `<base>/v<version>/<path>`.
//! - **Errors** (`checkResponseErr`): a non-2xx answer is `Error response from daemon:
//!   <message>` with the JSON body's `message`, or the body's text.
//!
//! Every body is bounded by the agent's discovery body limit, and a call is given up when
//! its refresh is (after one refresh interval, the client's `WithTimeout`).

use std::sync::Arc;
use std::time::Duration;

use crate::common::http::HttpClientConfig;
use crate::http::{ResponseEvent, ResponseReader, Url, write_get};
use crate::io::{
    self, CredentialsFile, HttpRequest, IoEvent, IoOp, IoQueue, Origin, RequestId, StreamOpen,
};

/// The newest API version the client asks for (moby client v0.5's default).
pub(crate) const MAX_API_VERSION: &str = "1.52";
/// The version assumed when `/_ping` names none (the client's fallback).
const FALLBACK_API_VERSION: &str = "1.24";
/// Bytes of an error answer kept for its message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// The `Host` of requests over a Unix socket (the client's `DummyHost`).
const UNIX_HOST: &str = "api.moby.localhost";

/// How the Engine is reached.
#[derive(Clone, Debug)]
enum Endpoint {
    /// HTTP/1.1 written and read by the core over a stream.
    Stream {
        unix_path: Option<String>,
        host: String,
        port: u16,
        /// `http://<authority><base>`, for the request line, `Host` and messages.
        base: String,
    },
    /// Through the shell's HTTP client.
    Http {
        /// `http(s)://<authority><base>`.
        base: String,
        client: Arc<HttpClientConfig>,
        headers: Vec<(String, String)>,
        credentials_file: Option<CredentialsFile>,
    },
}

/// The client of one provider.
#[derive(Debug)]
pub(crate) struct Engine {
    endpoint: Endpoint,
    /// The negotiated API version, once `/_ping` answered.
    version: Option<String>,
    user_agent: String,
    limit: u64,
    origin: Origin,
}

/// How a call ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A 2xx answer's body.
    Body(Vec<u8>),
    /// The call failed: the client's error text.
    Error(String),
}

/// One call in flight.
#[derive(Debug)]
pub(crate) struct Call {
    /// The operation (a stream or an HTTP request).
    pub(crate) id: RequestId,
    /// The request's URL, for messages.
    url: String,
    /// A stream's request bytes, written once it opens.
    request: Vec<u8>,
    /// A stream's response reader.
    reader: Option<ResponseReader>,
    status: u16,
    api_version: Option<String>,
    body: Vec<u8>,
    /// Set once the call has ended.
    outcome: Option<Outcome>,
    /// The call is `/_ping`.
    ping: bool,
}

impl Call {
    /// How it ended, once it has.
    pub(crate) fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// The request's URL, as messages show it.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Takes the outcome out.
    pub(crate) fn take_outcome(&mut self) -> Option<Outcome> {
        self.outcome.take()
    }
}

impl Engine {
    /// A client for `host` (validated as a URL), or why none can be made (3.x's "error
    /// setting up docker client").
    pub(crate) fn new(
        host: &str,
        client: &HttpClientConfig,
        user_agent: &str,
        limit: u64,
        origin: Origin,
    ) -> Result<Engine, String> {
        let Some((proto, addr)) = host.split_once("://").filter(|(_, a)| !a.is_empty()) else {
            return Err(format!("unable to parse docker host `{host}`"));
        };
        let endpoint = match proto {
            "unix" => Endpoint::Stream {
                unix_path: Some(addr.to_owned()),
                host: String::new(),
                port: 0,
                base: format!("http://{UNIX_HOST}"),
            },
            "tcp" | "http" | "https" => {
                let scheme = if proto == "https" { "https" } else { "http" };
                let (authority, path) = match addr.find(['/', '?', '#']) {
                    Some(i) => (&addr[..i], &addr[i..]),
                    None => (addr, ""),
                };
                let path = path.split(['?', '#']).next().unwrap_or("");
                let base = format!("{scheme}://{authority}{}", path.trim_end_matches('/'));
                let url = Url::parse(&format!("{base}/"))
                    .map_err(|e| format!("error setting up docker client: {e}"))?;
                if proto == "tcp" {
                    Endpoint::Stream {
                        unix_path: None,
                        host: url.host,
                        port: url.port,
                        base,
                    }
                } else {
                    let mut headers = vec![("User-Agent".to_owned(), user_agent.to_owned())];
                    let credentials_file = io::add_auth(client, &mut headers);
                    Endpoint::Http {
                        base,
                        client: Arc::new(client.clone()),
                        headers,
                        credentials_file,
                    }
                }
            }
            other => {
                return Err(format!(
                    "error setting up docker client: protocol {other:?} is not supported (unix, tcp, http and https are)"
                ));
            }
        };
        Ok(Engine {
            endpoint,
            version: None,
            user_agent: user_agent.to_owned(),
            limit,
            origin,
        })
    }

    /// True once the API version is known (no `/_ping` needed).
    pub(crate) fn negotiated(&self) -> bool {
        self.version.is_some()
    }

    /// Forgets the API version: the next listing pings first (after a failure, as the
    /// client does when it could not negotiate).
    pub(crate) fn forget_version(&mut self) {
        self.version = None;
    }

    /// Starts `GET /_ping`.
    pub(crate) fn ping(&self, timeout: Duration, io: &mut IoQueue) -> Call {
        let mut c = self.start("/_ping", timeout, io);
        c.ping = true;
        c
    }

    /// Starts `GET <base>/v<version>/<path_and_query>` (after a successful ping).
    pub(crate) fn get(&self, path_and_query: &str, timeout: Duration, io: &mut IoQueue) -> Call {
        let v = self.version.as_deref().unwrap_or(FALLBACK_API_VERSION);
        self.start(&format!("/v{v}{path_and_query}"), timeout, io)
    }

    fn start(&self, path_and_query: &str, timeout: Duration, io: &mut IoQueue) -> Call {
        match &self.endpoint {
            Endpoint::Stream {
                unix_path,
                host,
                port,
                base,
            } => {
                let url = format!("{base}{path_and_query}");
                let mut request = Vec::new();
                let written = Url::parse(&url).and_then(|u| {
                    let headers = [("User-Agent".to_owned(), self.user_agent.clone())];
                    write_get(&mut request, &u, &headers, false)
                });
                let id = io.start(IoOp::Stream(StreamOpen {
                    host: host.clone(),
                    port: *port,
                    unix_path: unix_path.clone(),
                    connect_timeout: timeout,
                    origin: self.origin.clone(),
                }));
                let mut c = Call::new(id, self.shown(&url));
                c.request = request;
                c.reader = Some(ResponseReader::new(false));
                if let Err(e) = written {
                    io.cancel(id);
                    c.outcome = Some(Outcome::Error(e));
                }
                c
            }
            Endpoint::Http {
                base,
                client,
                headers,
                credentials_file,
            } => {
                let url = format!("{base}{path_and_query}");
                let id = io.start(IoOp::Http(HttpRequest {
                    url: url.clone(),
                    headers: headers.clone(),
                    credentials_file: credentials_file.clone(),
                    client: client.clone(),
                    // The bound is the core's (error bodies are kept shorter).
                    body_limit: 0,
                    timeout,
                    origin: self.origin.clone(),
                    body: None,
                }));
                Call::new(id, self.shown(&url))
            }
        }
    }

    /// The URL as messages show it: a Unix socket's path in place of the dummy host (as
    /// Go's errors show `http://%2Fvar%2Frun%2Fdocker.sock/...`), passwords stripped.
    fn shown(&self, url: &str) -> String {
        match &self.endpoint {
            Endpoint::Stream {
                unix_path: Some(p), ..
            } => {
                let mut host = String::new();
                crate::gourl::path_escape(p, &mut host);
                let host = host.replace('/', "%2F");
                url.replacen(UNIX_HOST, &host, 1)
            }
            _ => crate::gourl::redact_url(url, crate::gourl::STRIPPED).into_owned(),
        }
    }

    /// An event of `call`'s operation. Returns true when the call has just ended (its
    /// outcome is set; a stream is closed).
    pub(crate) fn handle(&mut self, call: &mut Call, ev: IoEvent<'_>, io: &mut IoQueue) -> bool {
        if call.outcome.is_some() {
            return false;
        }
        match ev {
            IoEvent::StreamOpened => {
                let request = std::mem::take(&mut call.request);
                io.send(call.id, request);
            }
            IoEvent::StreamData(data) => {
                let Some(mut reader) = call.reader.take() else {
                    return false;
                };
                let mut events = Vec::new();
                let fed = reader.feed(data, &mut |e| events.push(owned(e)));
                call.reader = Some(reader);
                for e in events {
                    self.response_event(call, e);
                }
                if call.outcome.is_none()
                    && let Err(e) = fed
                {
                    call.outcome = Some(Outcome::Error(format!("Get {:?}: {e}", call.url)));
                }
                if call.outcome.is_some() {
                    io.cancel(call.id);
                }
            }
            IoEvent::StreamClosed => {
                let mut events = Vec::new();
                let ended = call
                    .reader
                    .as_mut()
                    .map(|r| r.eof(&mut |e| events.push(owned(e))));
                for e in events {
                    self.response_event(call, e);
                }
                if call.outcome.is_none() {
                    let e = match ended {
                        Some(Err(e)) => e.to_string(),
                        _ => "EOF".into(),
                    };
                    call.outcome = Some(Outcome::Error(format!("Get {:?}: {e}", call.url)));
                }
            }
            IoEvent::HttpHead {
                status, headers, ..
            } => self.response_event(
                call,
                Event::Head(
                    status,
                    io::header(headers, "Api-Version").map(str::to_owned),
                ),
            ),
            IoEvent::HttpBody(chunk) => self.response_event(call, Event::Body(chunk.to_vec())),
            IoEvent::HttpEnd => self.response_event(call, Event::End),
            IoEvent::Failed(e) => {
                call.outcome = Some(Outcome::Error(format!("Get {:?}: {e}", call.url)));
            }
            _ => return false,
        }
        call.outcome.is_some()
    }

    fn response_event(&mut self, call: &mut Call, e: Event) {
        if call.outcome.is_some() {
            return;
        }
        match e {
            Event::Head(status, version) => {
                call.status = status;
                call.api_version = version;
            }
            Event::Body(chunk) => {
                let ok = (200..300).contains(&call.status);
                if ok && call.body.len() as u64 + chunk.len() as u64 > self.limit {
                    call.outcome = Some(Outcome::Error(format!(
                        "Get {:?}: body exceeds the limit of {} bytes",
                        call.url, self.limit
                    )));
                    return;
                }
                let room = if ok {
                    chunk.len()
                } else {
                    ERROR_BODY_LIMIT
                        .saturating_sub(call.body.len())
                        .min(chunk.len())
                };
                call.body.extend_from_slice(&chunk[..room]);
            }
            Event::End => {
                if !(200..300).contains(&call.status) {
                    call.outcome = Some(Outcome::Error(daemon_error(
                        call.status,
                        &call.body,
                        &call.url,
                    )));
                    return;
                }
                if call.ping {
                    // `NegotiateAPIVersionPing`: the daemon's version caps the client's.
                    let theirs = call
                        .api_version
                        .clone()
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| FALLBACK_API_VERSION.to_owned());
                    let v = if version_less(&theirs, MAX_API_VERSION) {
                        theirs
                    } else {
                        MAX_API_VERSION.to_owned()
                    };
                    // A version that cannot be a path segment is not taken.
                    if v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                        self.version = Some(v);
                    } else {
                        call.outcome = Some(Outcome::Error(format!(
                            "Get {:?}: invalid API version {v:?} from the daemon",
                            call.url
                        )));
                        return;
                    }
                }
                call.outcome = Some(Outcome::Body(std::mem::take(&mut call.body)));
            }
        }
    }
}

/// A response event, owned (the stream reader lends its pieces).
enum Event {
    Head(u16, Option<String>),
    Body(Vec<u8>),
    End,
}

fn owned(e: ResponseEvent<'_>) -> Event {
    match e {
        ResponseEvent::Head(h) => {
            let v = h.header("Api-Version").map(str::to_owned);
            Event::Head(h.status, v)
        }
        ResponseEvent::Body(b) => Event::Body(b.to_vec()),
        ResponseEvent::End => Event::End,
    }
}

impl Call {
    fn new(id: RequestId, url: String) -> Call {
        Call {
            id,
            url,
            request: Vec::new(),
            reader: None,
            status: 0,
            api_version: None,
            body: Vec::new(),
            outcome: None,
            ping: false,
        }
    }
}

/// The client's `checkResponseErr`: the JSON body's `message`, else its text, else the
/// status.
fn daemon_error(status: u16, body: &[u8], url: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Message {
        message: Option<String>,
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let message = match serde_json::from_slice::<Message>(body) {
        Ok(Message { message: Some(m) }) => m,
        _ if !text.is_empty() => text.to_owned(),
        _ => {
            return format!(
                "request returned {} for API route and version {url}, check if the server supports the requested API version",
                status_text(status)
            );
        }
    };
    format!("Error response from daemon: {message}")
}

use crate::discovery::refresh::status_text;

/// Go's `versions.LessThan` for dotted versions: numeric, part by part, a missing part 0.
pub(crate) fn version_less(a: &str, b: &str) -> bool {
    let parts = |s: &str| -> Vec<u64> {
        s.split('.')
            .map(|p| p.parse::<u64>().unwrap_or(0))
            .collect()
    };
    let (a, b) = (parts(a), parts(b));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x < y;
        }
    }
    false
}

/// The `filters` query parameter as the client encodes it (`filters.ToJSON`: names to
/// sets of values, keys sorted), or `None` without any value.
pub(crate) fn filters_query(filters: &[super::SdFilter]) -> Option<String> {
    let mut map: std::collections::BTreeMap<&str, std::collections::BTreeMap<&str, bool>> =
        Default::default();
    for f in filters {
        for v in &f.values {
            map.entry(&f.name).or_default().insert(v, true);
        }
    }
    if map.is_empty() {
        return None;
    }
    // Serializing string maps cannot fail.
    let json = serde_json::to_string(&map).unwrap_or_default();
    Some(format!("filters={}", crate::gourl::query_escape(&json)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_less("1.9", "1.41"));
        assert!(version_less("1.41", "1.52"));
        assert!(!version_less("1.52", "1.52"));
        assert!(!version_less("2.0", "1.52"));
        assert!(version_less("1", "1.1"));
    }

    #[test]
    fn filters_encode_as_the_client_does() {
        let f = |name: &str, values: &[&str]| super::super::SdFilter {
            name: name.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        // The query 3.x's own tests expect for this filter (their mock serves a file
        // named by its hash).
        assert_eq!(
            filters_query(&[f("name", &["mon_node-exporter", "mon_grafana"])]).unwrap(),
            "filters=%7B%22name%22%3A%7B%22mon_grafana%22%3Atrue%2C%22mon_node-exporter%22%3Atrue%7D%7D"
        );
        assert_eq!(filters_query(&[f("label", &[])]), None);
        assert_eq!(
            filters_query(&[f("b", &["x y"]), f("a", &["1"]), f("b", &["z"])]).unwrap(),
            format!(
                "filters={}",
                crate::gourl::query_escape(r#"{"a":{"1":true},"b":{"x y":true,"z":true}}"#)
            )
        );
    }

    #[test]
    fn hosts_are_parsed_as_the_client_does() {
        let e = |h: &str| {
            Engine::new(
                h,
                &HttpClientConfig::default(),
                "ua",
                1 << 20,
                Origin::Discovery {
                    provider: "docker/0".into(),
                },
            )
        };
        assert_eq!(
            e("localhost").unwrap_err(),
            "unable to parse docker host `localhost`"
        );
        assert!(
            e("ssh://u@h")
                .unwrap_err()
                .contains("\"ssh\" is not supported")
        );
        match e("tcp://d:2375/base/").unwrap().endpoint {
            Endpoint::Stream {
                unix_path,
                host,
                port,
                base,
            } => {
                assert_eq!(unix_path, None);
                assert_eq!((host.as_str(), port), ("d", 2375));
                assert_eq!(base, "http://d:2375/base");
            }
            other => panic!("{other:?}"),
        }
        match e("unix:///run/docker.sock").unwrap().endpoint {
            Endpoint::Stream {
                unix_path, base, ..
            } => {
                assert_eq!(unix_path.as_deref(), Some("/run/docker.sock"));
                assert_eq!(base, "http://api.moby.localhost");
            }
            other => panic!("{other:?}"),
        }
        match e("https://d:2376").unwrap().endpoint {
            Endpoint::Http { base, .. } => assert_eq!(base, "https://d:2376"),
            other => panic!("{other:?}"),
        }
    }
}
