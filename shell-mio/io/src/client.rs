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

/// What [`authorize`] adds: the URL to send instead, when signing changed it, and the
/// headers.
pub type Authorized = (Option<String>, Vec<(String, String)>);

/// What a request's credentials add, read (or computed) now: the headers, and the URL
/// to send when signing changed it (SigV4 sends its cleaned path). `method`, `url`,
/// `headers` and `body` are the request as it will be sent; SigV4 signs them all (but
/// the headers AWS's SDK never signs, `User-Agent` among them) with `Host` and
/// `X-Amz-Date` (and the session token), as every `X-Amz-*` header must be signed.
/// Headers the client adds itself (`Accept-Encoding`, `Content-Length`) are not.
pub fn authorize(
    f: &CredentialsFile,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Authorized, String> {
    if let CredentialsFile::Header { name, path, and } = f {
        let mut out = match and {
            Some(g) => authorize(g, method, url, headers, body)?,
            None => (None, Vec::new()),
        };
        out.1
            .push((name.clone(), read_secret(path, "auth token file")?));
        return Ok(out);
    }
    let CredentialsFile::SigV4(cfg) = f else {
        return Ok((None, vec![credentials(f)?]));
    };
    let mut signer = crate::aws::SigV4::new(cfg, &crate::aws::ProcessEnv)?;
    let creds = signer
        .credentials(&crate::aws::ProcessEnv, std::time::Instant::now())
        .map_err(|e| format!("failed to retrieve credentials: {e}"))?;
    let (signed_url, add) = trawl_core::auth::sigv4::sign_url(
        method,
        url,
        headers,
        body,
        &creds,
        &signer.scope,
        crate::aws::wall_now(),
    )
    .map_err(|e| format!("failed to sign request: {e}"))?;
    Ok(((signed_url != url).then_some(signed_url), add))
}

/// The most a secret file (password, token) may hold.
pub const SECRET_FILE_LIMIT: u64 = 1 << 20;

/// A password or token file's content, trimmed as Prometheus trims it: a regular file of
/// at most [`SECRET_FILE_LIMIT`] bytes, opened without blocking (a FIFO or device in its
/// place is refused, never waited on: the caller is an event loop).
pub fn read_secret(path: &str, what: &str) -> Result<String, String> {
    match crate::files::read_limited(path, SECRET_FILE_LIMIT) {
        Ok(Some(b)) => Ok(String::from_utf8_lossy(&b).trim().to_owned()),
        Ok(None) => Err(format!(
            "unable to read {what} {path}: larger than {SECRET_FILE_LIMIT} bytes"
        )),
        Err(e) => Err(format!("unable to read {what} {path}: {e}")),
    }
}

/// The `Authorization` header for a credentials file, read now (as Prometheus reads it
/// before each request). SigV4 needs the whole request: see [`authorize`].
pub fn credentials(f: &CredentialsFile) -> Result<(String, String), String> {
    let read = |p: &str| read_secret(p, "credentials file");
    Ok(match f {
        CredentialsFile::BasicPassword {
            username,
            username_file,
            password,
            path,
        } => {
            // Prometheus reads `username_file` and `password_file` before each request
            // (common's `basicAuthRoundTripper`), trimmed as both are.
            let username = if username_file.is_empty() {
                username.clone()
            } else {
                read_secret(username_file, "basic auth username file")?
            };
            let pw = if path.is_empty() {
                password.expose().to_owned()
            } else {
                read(path)?
            };
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
            let token = read_secret(path, "auth token file")?;
            ("Authorization".into(), format!("{prefix}{token}"))
        }
        CredentialsFile::Header { name, path, .. } => {
            (name.clone(), read_secret(path, "auth token file")?)
        }
        CredentialsFile::SigV4(_) => {
            return Err("a SigV4 signature covers the whole request: use authorize".into());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_are_bounded_and_never_waited_on() {
        let dir = std::env::temp_dir().join(format!("trawl-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let token = dir.join("token");
        std::fs::write(&token, "  s3cret\n").expect("write");
        let path = token.to_string_lossy().into_owned();
        let f = CredentialsFile::Credentials {
            kind: "Bearer".into(),
            path: path.clone(),
        };
        assert_eq!(
            credentials(&f),
            Ok(("Authorization".into(), "Bearer s3cret".into()))
        );
        // basic_auth's username_file and password_file, each read and trimmed.
        let user = dir.join("user");
        std::fs::write(&user, "alice\n").expect("write");
        let f = CredentialsFile::BasicPassword {
            username: String::new(),
            username_file: user.to_string_lossy().into_owned(),
            password: trawl_core::config::Secret::new("pw"),
            path: String::new(),
        };
        assert_eq!(
            credentials(&f),
            Ok((
                "Authorization".into(),
                format!("Basic {}", trawl_core::bytes::base64_encode(b"alice:pw"))
            ))
        );
        let f = CredentialsFile::BasicPassword {
            username: "bob".into(),
            username_file: String::new(),
            password: trawl_core::config::Secret::default(),
            path: path.clone(),
        };
        assert_eq!(
            credentials(&f).map(|(_, v)| v),
            Ok(format!(
                "Basic {}",
                trawl_core::bytes::base64_encode(b"bob:s3cret")
            ))
        );
        // A file past the limit is refused, naming the file, not read whole.
        std::fs::write(&token, vec![b'x'; SECRET_FILE_LIMIT as usize + 1]).expect("write");
        assert_eq!(
            credentials(&f),
            Err(format!(
                "unable to read credentials file {path}: larger than {SECRET_FILE_LIMIT} bytes"
            ))
        );
        // A FIFO in the token's place is refused at once: the event loop reads these.
        let fifo = dir.join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo (coreutils)");
        assert!(made.success());
        let fifo = fifo.to_string_lossy().into_owned();
        let f = CredentialsFile::Prefixed {
            prefix: "Bearer ".into(),
            path: fifo.clone(),
        };
        assert_eq!(
            credentials(&f),
            Err(format!(
                "unable to read auth token file {fifo}: {fifo}: not a regular file"
            ))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
