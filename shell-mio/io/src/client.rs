//! What both shells' HTTP clients share: who a request is for ([`Caller`]), remote
//! write's requests ([`Post`]), credentials files read before each request, and Go's
//! wording of a failed dial.

use std::io;
use std::sync::Arc;

use trawl_core::io::{CredentialsFile, RequestId};

/// Remote write's own request ids: a sequence of its own, never mixed with the agent's
/// [`RequestId`]s (a shell tells the two apart by [`Caller`], not by a range).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RemoteId(pub u64);

/// Whom an HTTP request (and every event of its response) belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Caller {
    /// The agent: scrapes and HTTP-based discovery.
    Agent(RequestId),
    /// Remote write's queues.
    Remote(RemoteId),
}

/// A request to start: a POST (remote write), or a GET's parts.
pub struct Post<'a> {
    /// The URL.
    pub url: &'a str,
    /// Headers after `Host` (`Content-Length` is added).
    pub headers: Vec<(String, String)>,
    /// An `Authorization` header to read from a file first.
    pub credentials_file: Option<&'a CredentialsFile>,
    /// The body.
    pub body: Arc<[u8]>,
    /// TLS and proxy settings.
    pub client: Arc<trawl_core::config::HttpClientConfig>,
}

/// A failed connection as Go words it (`dial tcp ADDR: connect: connection refused`;
/// `proxyconnect tcp: ` first when dialing a proxy).
pub fn dial_error(proxied: bool, addr: &str, e: &io::Error) -> String {
    let what = match e.kind() {
        io::ErrorKind::ConnectionRefused => "connect: connection refused".to_owned(),
        io::ErrorKind::TimedOut => "i/o timeout".to_owned(),
        _ => e.to_string(),
    };
    let via = if proxied { "proxyconnect tcp: " } else { "" };
    format!("{via}dial tcp {addr}: {what}")
}

/// The `Authorization` header for a credentials file, read now (as Prometheus reads it
/// before each request).
pub fn credentials(f: &CredentialsFile) -> Result<(String, String), String> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .map_err(|e| format!("unable to read credentials file {p}: {e}"))
    };
    Ok(match f {
        CredentialsFile::BasicPassword { username, path } => {
            let pw = read(path)?;
            (
                "Authorization".into(),
                format!(
                    "Basic {}",
                    trawl_core::bytes::base64_encode(format!("{username}:{pw}").as_bytes())
                ),
            )
        }
        CredentialsFile::Credentials { kind, path } => {
            ("Authorization".into(), format!("{kind} {}", read(path)?))
        }
        CredentialsFile::Prefixed { prefix, path } => {
            let token = std::fs::read_to_string(path)
                .map(|s| s.trim().to_owned())
                .map_err(|e| format!("unable to read auth token file {path}: {e}"))?;
            ("Authorization".into(), format!("{prefix}{token}"))
        }
    })
}
