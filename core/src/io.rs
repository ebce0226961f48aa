//! The vocabulary between the core and a shell: what the core asks the shell to do
//! ([`IoOp`]), what the shell reports back ([`IoEvent`]), and the ids tying them together.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::common::http::HttpClientConfig;
use crate::http::ResponseHead;

/// Identifies one IO operation the core started. Ids only grow, never reused, so a
/// completion that arrives after a cancel or a reload is recognised and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Who asked for a request, for logs and tracing in the shells.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A scrape of one target by its loop.
    Scrape {
        /// The job (scrape pool).
        job: Arc<str>,
        /// The loop; a loop lives as long as its target identity in its pool.
        loop_id: u64,
    },
    /// A service-discovery provider (`file/3`, `http/0`, …).
    Discovery {
        /// Provider name.
        provider: Arc<str>,
    },
}

/// An HTTP GET the shell is to perform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// The full URL.
    pub url: String,
    /// Request headers, in the order to send them (credentials read from files are not
    /// here: see [`HttpRequest::credentials_file`]).
    pub headers: Vec<(String, String)>,
    /// Credentials the shell reads from a file before each request, as Prometheus does.
    pub credentials_file: Option<CredentialsFile>,
    /// Client options (TLS, proxy, redirects); shared by every request of a pool.
    pub client: Arc<HttpClientConfig>,
    /// Stop reading and fail once the (decompressed) body reaches this many bytes;
    /// 0 = no limit.
    pub body_limit: u64,
    /// The core cancels the request after this long; the shell may enforce it too.
    pub timeout: Duration,
    /// Who asked.
    pub origin: Origin,
    /// A POST's body (`Content-Length` is added); `None`: a GET. Discovery APIs that
    /// are called with a POST (AWS's JSON protocol, PuppetDB's queries) set it.
    pub body: Option<Arc<[u8]>>,
}

/// An `Authorization` header whose secret lives in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialsFile {
    /// `basic_auth` with `password_file` or `username_file`: `Basic
    /// base64(<user>:<password>)`, each from its file when one is named.
    BasicPassword {
        /// The user name (when `username_file` is empty).
        username: String,
        /// File holding the user name (empty: `username`).
        username_file: String,
        /// The password (when `path` is empty).
        password: crate::common::http::Secret,
        /// File holding the password (empty: `password`).
        path: String,
    },
    /// `authorization.credentials_file` (also `bearer_token_file`): `<kind> <file contents>`.
    Credentials {
        /// The scheme (`Bearer`, …).
        kind: String,
        /// File holding the credentials.
        path: String,
    },
    /// `<prefix><file contents>` (Marathon's `auth_token_file`: `token=<token>`).
    Prefixed {
        /// What goes before the file's contents.
        prefix: String,
        /// File holding the token.
        path: String,
    },
    /// A header of its own whose value is a file's contents, trimmed (Scaleway's
    /// `X-Auth-Token` from `secret_key_file`), with the client's own credentials file
    /// too when it has one.
    Header {
        /// The header's name.
        name: String,
        /// File holding its value.
        path: String,
        /// The client's own credentials file, added as usual.
        and: Option<Box<CredentialsFile>>,
    },
    /// AWS Signature Version 4 (EC2 discovery): the shell finds the credentials as the
    /// AWS SDK's default chain does — the block's keys, else its profile in the shared
    /// files, else the environment, else the `default` profile (see
    /// `trawl_io::aws`) — and signs the request at its wall time with
    /// [`crate::auth::sigv4::sign_url`] for the block's `region` and `service_name`
    /// (both always set here). The headers it adds are `X-Amz-Date`,
    /// `X-Amz-Security-Token` with temporary credentials, and `Authorization`.
    SigV4(Box<crate::auth::SigV4Config>),
}

/// A DNS exchange with one server: the shell sends `message` and answers with the first
/// reply that carries the same id (the message's first two bytes), or a failure. Over
/// UDP the socket is connected to the server (replies from elsewhere are dropped); over
/// TCP the message and the reply each go with a two-byte length prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsQuery {
    /// The server: an IP literal (IPv6 possibly with a `%zone`), never a name.
    pub server: String,
    /// Its port (53).
    pub port: u16,
    /// Over TCP instead of UDP.
    pub tcp: bool,
    /// The query, as the core encoded it.
    pub message: Vec<u8>,
    /// The core gives up after this long (and cancels); the shell may enforce it too.
    pub timeout: Duration,
}

/// A connection the core speaks a protocol over (ZooKeeper's; HTTP to a Docker Engine's
/// Unix socket): a Unix-domain socket when [`StreamOpen::unix_path`] is set, else TCP,
/// the shell resolving `host` as it does for HTTP (`/etc/hosts`, then DNS; every address tried in order),
/// connects, reports [`IoEvent::StreamOpened`], then hands over every byte that arrives
/// as [`IoEvent::StreamData`] until the peer closes ([`IoEvent::StreamClosed`]), the
/// connection fails ([`IoEvent::Failed`]) or the core cancels. The core writes with
/// [`crate::agent::Output::Send`]; the shell writes those bytes in order (bytes sent
/// before the connection is open wait for it). Framing, timeouts and every limit are
/// the core's: the shell only bounds what it reads per turn of its loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamOpen {
    /// A host name or an IP literal (IPv6 without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
    /// A Unix-domain socket to connect to instead of `host` and `port` (which are then
    /// unused).
    pub unix_path: Option<String>,
    /// The core gives up on connecting after this long (and cancels); the shell may
    /// enforce it too.
    pub connect_timeout: Duration,
    /// Who asked.
    pub origin: Origin,
}

/// An operation the shell carries out for the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoOp {
    /// HTTP GET (POST with [`HttpRequest::body`]); answered by [`IoEvent::HttpHead`], then [`IoEvent::HttpBody`] chunks,
    /// then [`IoEvent::HttpEnd`] (or [`IoEvent::Failed`] at any point).
    Http(HttpRequest),
    /// Read a whole file; answered by [`IoEvent::FileData`], [`IoEvent::NotFound`] or
    /// [`IoEvent::Failed`].
    ReadFile {
        /// Path as configured (already resolved against the config directory).
        path: String,
        /// Fail if the file is larger than this.
        limit: u64,
    },
    /// List the names in a directory; answered by [`IoEvent::DirEntries`] or
    /// [`IoEvent::Failed`].
    ListDir {
        /// The directory.
        path: String,
    },
    /// Watch a directory until cancelled; each change (other than chmod alone) of an
    /// entry is reported as [`IoEvent::Changed`]. A watch that cannot be set up or breaks
    /// is reported as [`IoEvent::Failed`] and ends.
    Watch {
        /// The directory.
        path: String,
    },
    /// One DNS exchange; answered by [`IoEvent::DnsReply`] or [`IoEvent::Failed`].
    Dns(DnsQuery),
    /// A TCP connection carrying bytes both ways; answered by [`IoEvent::StreamOpened`],
    /// then [`IoEvent::StreamData`] chunks, and at last [`IoEvent::StreamClosed`] or
    /// [`IoEvent::Failed`].
    Stream(StreamOpen),
}

/// What happened to an operation, as the shell reports it. Borrowed from the shell's
/// buffers; the core copies what it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoEvent<'a> {
    /// The status line and headers of an HTTP response.
    HttpHead {
        /// Status code.
        status: u16,
        /// Reason phrase as sent (may be empty).
        reason: &'a str,
        /// Response headers, names as sent.
        headers: &'a [(&'a str, &'a str)],
    },
    /// A chunk of the (decoded transfer-encoding, still content-encoded) body.
    HttpBody(&'a [u8]),
    /// The body is complete.
    HttpEnd,
    /// A whole file.
    FileData(&'a [u8]),
    /// The file does not exist (for file SD: its targets go; other read errors keep
    /// them).
    NotFound,
    /// The names in a directory.
    DirEntries(&'a [&'a str]),
    /// Something in a watched directory changed: the entry's name when the shell knows
    /// it (inotify does), so only that file is read again; `None` re-reads them all.
    Changed {
        /// Name of the changed entry inside the directory.
        name: Option<&'a str>,
    },
    /// A DNS server's reply (the whole message, without a TCP length prefix).
    DnsReply(&'a [u8]),
    /// A stream's connection is open: what the core sent so far is on its way.
    StreamOpened,
    /// Bytes that arrived on a stream, in order.
    StreamData(&'a [u8]),
    /// The peer closed the stream (end of file).
    StreamClosed,
    /// The operation failed (connection refused, no such file, body too large…).
    Failed(&'a str),
}

impl IoEvent<'_> {
    /// True for events after which the operation is over.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            IoEvent::HttpHead { .. }
                | IoEvent::HttpBody(_)
                | IoEvent::Changed { .. }
                | IoEvent::StreamOpened
                | IoEvent::StreamData(_)
        )
    }
}

/// An [`IoEvent`] that owns its data: what a shell, the simulator or a recording's
/// decoder holds between the moment IO finishes and the moment the agent is fed. Both
/// shells queue completions as these; [`OwnedIoEvent::with_event`] lends the agent the
/// borrowed form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedIoEvent {
    /// [`IoEvent::HttpHead`].
    HttpHead(ResponseHead),
    /// [`IoEvent::HttpBody`].
    HttpBody(Vec<u8>),
    /// [`IoEvent::HttpEnd`].
    HttpEnd,
    /// [`IoEvent::FileData`].
    FileData(Vec<u8>),
    /// [`IoEvent::NotFound`].
    NotFound,
    /// [`IoEvent::DirEntries`].
    DirEntries(Vec<String>),
    /// [`IoEvent::Changed`].
    Changed(Option<String>),
    /// [`IoEvent::DnsReply`].
    DnsReply(Vec<u8>),
    /// [`IoEvent::StreamOpened`].
    StreamOpened,
    /// [`IoEvent::StreamData`].
    StreamData(Vec<u8>),
    /// [`IoEvent::StreamClosed`].
    StreamClosed,
    /// [`IoEvent::Failed`].
    Failed(String),
}

impl OwnedIoEvent {
    /// Hands the event to `f` in the borrowed form the agent takes.
    pub fn with_event<R>(&self, f: impl FnOnce(IoEvent<'_>) -> R) -> R {
        match self {
            OwnedIoEvent::HttpHead(h) => {
                let headers = h.header_refs();
                f(IoEvent::HttpHead {
                    status: h.status,
                    reason: &h.reason,
                    headers: &headers,
                })
            }
            OwnedIoEvent::HttpBody(b) => f(IoEvent::HttpBody(b)),
            OwnedIoEvent::HttpEnd => f(IoEvent::HttpEnd),
            OwnedIoEvent::FileData(d) => f(IoEvent::FileData(d)),
            OwnedIoEvent::NotFound => f(IoEvent::NotFound),
            OwnedIoEvent::DirEntries(names) => {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                f(IoEvent::DirEntries(&refs))
            }
            OwnedIoEvent::Changed(name) => f(IoEvent::Changed {
                name: name.as_deref(),
            }),
            OwnedIoEvent::DnsReply(m) => f(IoEvent::DnsReply(m)),
            OwnedIoEvent::StreamOpened => f(IoEvent::StreamOpened),
            OwnedIoEvent::StreamData(d) => f(IoEvent::StreamData(d)),
            OwnedIoEvent::StreamClosed => f(IoEvent::StreamClosed),
            OwnedIoEvent::Failed(m) => f(IoEvent::Failed(m)),
        }
    }

    /// A copy of a borrowed event (an HTTP head's minor version is taken to be 1: the
    /// borrowed form does not carry it).
    pub fn from_event(e: &IoEvent<'_>) -> OwnedIoEvent {
        match *e {
            IoEvent::HttpHead {
                status,
                reason,
                headers,
            } => OwnedIoEvent::HttpHead(ResponseHead {
                minor: 1,
                status,
                reason: reason.to_owned(),
                headers: headers
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                    .collect(),
            }),
            IoEvent::HttpBody(b) => OwnedIoEvent::HttpBody(b.to_vec()),
            IoEvent::HttpEnd => OwnedIoEvent::HttpEnd,
            IoEvent::FileData(d) => OwnedIoEvent::FileData(d.to_vec()),
            IoEvent::NotFound => OwnedIoEvent::NotFound,
            IoEvent::DirEntries(names) => {
                OwnedIoEvent::DirEntries(names.iter().map(|n| (*n).to_owned()).collect())
            }
            IoEvent::Changed { name } => OwnedIoEvent::Changed(name.map(str::to_owned)),
            IoEvent::DnsReply(m) => OwnedIoEvent::DnsReply(m.to_vec()),
            IoEvent::StreamOpened => OwnedIoEvent::StreamOpened,
            IoEvent::StreamData(d) => OwnedIoEvent::StreamData(d.to_vec()),
            IoEvent::StreamClosed => OwnedIoEvent::StreamClosed,
            IoEvent::Failed(m) => OwnedIoEvent::Failed(m.to_owned()),
        }
    }

    /// True for events after which the operation is over ([`IoEvent::is_final`]).
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            OwnedIoEvent::HttpHead(_)
                | OwnedIoEvent::HttpBody(_)
                | OwnedIoEvent::Changed(_)
                | OwnedIoEvent::StreamOpened
                | OwnedIoEvent::StreamData(_)
        )
    }
}

/// The value of the first header named `name` (case-insensitive).
pub fn header<'a>(headers: &[(&'a str, &'a str)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// Seconds in the shortest decimal form, as Go's `strconv.FormatFloat(s, 'f', -1, 64)`
/// (`10`, `1.5`, `0.25`).
pub fn seconds_string(d: Duration) -> String {
    let s = d.as_secs_f64();
    let mut t = format!("{s}");
    if t.ends_with(".0") {
        t.truncate(t.len() - 2);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_events_round_trip() {
        let head = OwnedIoEvent::HttpHead(ResponseHead {
            minor: 1,
            status: 200,
            reason: "OK".into(),
            headers: vec![("Content-Type".into(), "text/plain".into())],
        });
        let all = [
            head,
            OwnedIoEvent::HttpBody(b"a 1\n".to_vec()),
            OwnedIoEvent::HttpEnd,
            OwnedIoEvent::FileData(b"[]".to_vec()),
            OwnedIoEvent::NotFound,
            OwnedIoEvent::DirEntries(vec!["a.json".into(), "b.yml".into()]),
            OwnedIoEvent::Changed(Some("a.json".into())),
            OwnedIoEvent::Changed(None),
            OwnedIoEvent::DnsReply(vec![0, 1, 2]),
            OwnedIoEvent::StreamOpened,
            OwnedIoEvent::StreamData(vec![0, 0, 0, 1, 7]),
            OwnedIoEvent::StreamClosed,
            OwnedIoEvent::Failed("refused".into()),
        ];
        for e in &all {
            let back = e.with_event(|b| {
                assert_eq!(b.is_final(), e.is_final());
                OwnedIoEvent::from_event(&b)
            });
            assert_eq!(&back, e);
        }
    }

    #[test]
    fn seconds() {
        assert_eq!(seconds_string(Duration::from_secs(10)), "10");
        assert_eq!(seconds_string(Duration::from_millis(1500)), "1.5");
        assert_eq!(seconds_string(Duration::from_millis(250)), "0.25");
    }
}

/// The core's allocator of request ids and its queue of IO to start or cancel, shared by
/// every sub-machine (SD providers, scrape loops), in the order they asked.
#[derive(Debug, Default)]
pub(crate) struct IoQueue {
    next: u64,
    pub(crate) queue: Vec<IoCommand>,
}

/// One queued IO command.
#[derive(Debug)]
pub(crate) enum IoCommand {
    Start(RequestId, IoOp),
    Cancel(RequestId),
    /// Bytes to write on the stream `RequestId` ([`IoOp::Stream`]).
    Send(RequestId, Vec<u8>),
}

impl IoQueue {
    /// Queues `op` under a fresh id.
    pub(crate) fn start(&mut self, op: IoOp) -> RequestId {
        self.next += 1;
        let id = RequestId(self.next);
        self.queue.push(IoCommand::Start(id, op));
        id
    }

    /// Queues bytes to write on the open stream `id`.
    pub(crate) fn send(&mut self, id: RequestId, data: Vec<u8>) {
        self.queue.push(IoCommand::Send(id, data));
    }

    /// Queues a cancel of `id`.
    pub(crate) fn cancel(&mut self, id: RequestId) {
        self.queue.push(IoCommand::Cancel(id));
    }

    /// Where the queue ends now (to see what a call added).
    pub(crate) fn mark(&self) -> usize {
        self.queue.len()
    }
}

/// Adds the `Authorization` header the client options ask for to `headers`, or returns
/// the file the shell must read to build it.
pub(crate) fn add_auth(
    client: &HttpClientConfig,
    headers: &mut Vec<(String, String)>,
) -> Option<CredentialsFile> {
    if let Some(b) = &client.basic_auth {
        if !b.password_file.is_empty() || !b.username_file.is_empty() {
            return Some(CredentialsFile::BasicPassword {
                username: b.username.clone(),
                username_file: b.username_file.clone(),
                password: b.password.clone(),
                path: b.password_file.clone(),
            });
        }
        let raw = format!("{}:{}", b.username, b.password.expose());
        headers.push((
            "Authorization".into(),
            format!("Basic {}", crate::bytes::base64_encode(raw.as_bytes())),
        ));
        return None;
    }
    if let Some(a) = &client.authorization {
        let kind = if a.kind.is_empty() { "Bearer" } else { &a.kind };
        if !a.credentials_file.is_empty() {
            return Some(CredentialsFile::Credentials {
                kind: kind.to_owned(),
                path: a.credentials_file.clone(),
            });
        }
        headers.push((
            "Authorization".into(),
            format!("{kind} {}", a.credentials.expose()),
        ));
    }
    None
}

#[cfg(test)]
mod auth_tests {
    use super::*;
    use crate::common::http::{BasicAuth, Secret};

    #[test]
    fn basic_auth_files_go_to_the_shell_and_inline_secrets_to_the_header() {
        let client = |b: BasicAuth| HttpClientConfig {
            basic_auth: Some(b),
            ..HttpClientConfig::default()
        };
        let mut h = Vec::new();
        let inline = client(BasicAuth {
            username: "u".into(),
            password: Secret::new("p"),
            ..BasicAuth::default()
        });
        assert_eq!(add_auth(&inline, &mut h), None);
        assert_eq!(h, [("Authorization".into(), "Basic dTpw".into())]);
        // A user name in a file is read by the shell, as a password in a file is: it
        // was validated and then dropped before.
        let mut h = Vec::new();
        let from_file = client(BasicAuth {
            username_file: "/run/user".into(),
            password: Secret::new("p"),
            ..BasicAuth::default()
        });
        assert_eq!(
            add_auth(&from_file, &mut h),
            Some(CredentialsFile::BasicPassword {
                username: String::new(),
                username_file: "/run/user".into(),
                password: Secret::new("p"),
                path: String::new(),
            })
        );
        assert!(h.is_empty());
        assert_eq!(
            format!("{:?}", add_auth(&from_file, &mut h)),
            r#"Some(BasicPassword { username: "", username_file: "/run/user", password: <secret>, path: "" })"#,
            "the password never shows"
        );
    }
}
