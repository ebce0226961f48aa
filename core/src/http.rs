//! The HTTP/1.1 client codec, without IO: URLs, request heads, and a response reader fed
//! whatever bytes the socket gave (heads parsed by `httparse`; bodies framed by
//! `Content-Length`, `chunked` or the end of the connection). The shells move the bytes;
//! both use this one codec, so a scrape behaves the same whichever shell runs it.

use std::fmt;

/// `http` or `https`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// The default port.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

pub use crate::gourl::{REDACTED, STRIPPED, redact_url};

/// An absolute `http(s)://` URL, split as a client needs it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Url {
    /// The scheme.
    pub scheme: Scheme,
    /// Host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// The port (the scheme's default when the URL has none).
    pub port: u16,
    /// Path and query, at least `/`.
    pub path_and_query: String,
    /// `user:password@` credentials, if the URL carries them (for `proxy_url`).
    pub userinfo: Option<String>,
}

impl Url {
    /// Parses an absolute URL.
    pub fn parse(s: &str) -> Result<Url, String> {
        let (scheme, rest) = if let Some(r) = s.strip_prefix("http://") {
            (Scheme::Http, r)
        } else if let Some(r) = s.strip_prefix("https://") {
            (Scheme::Https, r)
        } else {
            // Go's client: `unsupported protocol scheme "ftp"` (`""` for none).
            let scheme = crate::gourl::parse(s).map(|u| u.scheme).unwrap_or_default();
            return Err(format!(
                "unsupported protocol scheme {}",
                crate::goquote::quote(&scheme)
            ));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let tail = tail.split('#').next().unwrap_or("");
        let path_and_query = if tail.is_empty() {
            "/".to_owned()
        } else if tail.starts_with('?') {
            format!("/{tail}")
        } else {
            tail.to_owned()
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(authority[..i].to_owned()), &authority[i + 1..]),
            None => (None, authority),
        };
        // Errors name the URL as Go's client does: without its password.
        let s = &*redact_url(s, STRIPPED);
        let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
            let close = r
                .find(']')
                .ok_or_else(|| format!("missing ']' in host in {s:?}"))?;
            let after = &r[close + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(format!("invalid host in {s:?}")),
            };
            (&r[..close], port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(format!("no host in request URL {s:?}"));
        }
        let port = match port {
            None | Some("") => scheme.default_port(),
            Some(p) => p
                .parse()
                .map_err(|_| format!("invalid port {p:?} in {s:?}"))?,
        };
        Ok(Url {
            scheme,
            host: host.to_owned(),
            port,
            path_and_query,
            userinfo,
        })
    }

    /// `host[:port]` as the `Host` header carries it (port left out when it is the
    /// scheme's default; IPv6 in brackets).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The URL a redirect's `Location` names, relative to this one.
    pub fn join(&self, location: &str) -> Result<Url, String> {
        if location.starts_with("http://") || location.starts_with("https://") {
            return Url::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            let scheme = match self.scheme {
                Scheme::Http => "http",
                Scheme::Https => "https",
            };
            return Url::parse(&format!("{scheme}://{rest}"));
        }
        let path = if location.starts_with('/') {
            location.to_owned()
        } else {
            // Relative to the current path's directory.
            let base = self.path_and_query.split('?').next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        Ok(Url {
            path_and_query: if path.is_empty() { "/".into() } else { path },
            ..self.clone()
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}{}", self.authority(), self.path_and_query)
    }
}

/// Writes a GET request head for `url` with `headers` (after `Host`). `absolute` writes
/// the absolute URL as the target, as a request to a plain HTTP proxy must.
pub fn write_get(
    out: &mut Vec<u8>,
    url: &Url,
    headers: &[(String, String)],
    absolute: bool,
) -> Result<(), String> {
    write_head(out, "GET", url, headers, None, absolute)
}

/// Writes a POST request head for a body of `len` bytes (`Content-Length`); the body
/// follows it on the wire.
pub fn write_post(
    out: &mut Vec<u8>,
    url: &Url,
    headers: &[(String, String)],
    len: usize,
    absolute: bool,
) -> Result<(), String> {
    write_head(out, "POST", url, headers, Some(len), absolute)
}

fn write_head(
    out: &mut Vec<u8>,
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    len: Option<usize>,
    absolute: bool,
) -> Result<(), String> {
    // Checked first, so a refused header leaves nothing half written.
    let bad = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0);
    if let Some((n, _)) = headers
        .iter()
        .find(|(n, v)| n.is_empty() || bad(n) || n.contains(':') || bad(v))
    {
        return Err(format!("invalid header field {n:?}"));
    }
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    if absolute {
        out.extend_from_slice(url.to_string().as_bytes());
    } else {
        out.extend_from_slice(url.path_and_query.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(url.authority().as_bytes());
    out.extend_from_slice(b"\r\n");
    // Credentials in the URL (`http://user:pass@host/`) are sent as basic auth unless
    // the request has its own `Authorization`, as Go's `http.Client.send` does.
    if let Some(info) = &url.userinfo
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
    {
        let (user, pass) = info.split_once(':').unwrap_or((info, ""));
        // Decoded as Go's `url.User` holds them.
        let pair = format!("{}:{}", proxy::unescape(user), proxy::unescape(pass));
        out.extend_from_slice(b"Authorization: Basic ");
        out.extend_from_slice(crate::bytes::base64_encode(pair.as_bytes()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (n, v) in headers {
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(n) = len {
        out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// A response's status line and headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// HTTP minor version (0 or 1).
    pub minor: u8,
    /// Status code.
    pub status: u16,
    /// Reason phrase as sent.
    pub reason: String,
    /// Headers, names as sent, in order.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The headers as the core's `IoEvent::HttpHead` borrows them.
    pub fn header_refs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }
}

/// What the response reader found.
#[derive(Debug, PartialEq, Eq)]
pub enum ResponseEvent<'a> {
    /// The (final, non-1xx) head.
    Head(ResponseHead),
    /// A piece of the body (transfer coding removed).
    Body(&'a [u8]),
    /// The body is complete.
    End,
}

/// Why a response could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError(pub String);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a size line.
    Size,
    /// `n` data bytes left in the chunk.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines, up to the empty one.
    Trailers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    Chunked(Chunk),
    Close,
    Done,
}

/// Most bytes of a response head, and of one chunk-size or trailer line.
pub const MAX_HEAD: usize = 64 * 1024;
const MAX_LINE: usize = 4096;
const MAX_HEADERS: usize = 128;

/// Reads one response from the bytes a connection delivers.
#[derive(Debug)]
pub struct ResponseReader {
    state: State,
    /// Head bytes, or a partial chunk-size/trailer line.
    buf: Vec<u8>,
    head_request: bool,
    keep_alive: bool,
}

impl ResponseReader {
    /// A reader for the response to a request (`head`: the request was HEAD, so no
    /// body follows whatever the headers say).
    pub fn new(head: bool) -> ResponseReader {
        ResponseReader {
            state: State::Head,
            buf: Vec::new(),
            head_request: head,
            keep_alive: false,
        }
    }

    /// True once the whole response is read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// True if the connection may carry another request after this response.
    pub fn reusable(&self) -> bool {
        self.is_done() && self.keep_alive
    }

    /// Feeds bytes from the connection; events go to `sink`. Returns how many bytes
    /// were used: all of them, unless the response ended first (what follows belongs to
    /// no request, and the connection is not to be reused).
    pub fn feed(
        &mut self,
        mut input: &[u8],
        sink: &mut dyn FnMut(ResponseEvent<'_>),
    ) -> Result<usize, HttpError> {
        let total = input.len();
        while !input.is_empty() {
            match self.state {
                State::Done => {
                    self.keep_alive = false;
                    return Ok(total - input.len());
                }
                State::Head if self.buf.is_empty() => {
                    // The usual case: the whole head in one read, parsed in place.
                    match self.parse_head(input)? {
                        None => {
                            let take = input.len().min(MAX_HEAD + 1);
                            if take > MAX_HEAD {
                                return Err(HttpError("response head too large".into()));
                            }
                            self.buf.extend_from_slice(&input[..take]);
                            input = &input[take..];
                        }
                        Some((used, head)) => {
                            input = &input[used..];
                            if let Some(head) = head {
                                sink(ResponseEvent::Head(head));
                                if self.state == State::Done {
                                    sink(ResponseEvent::End);
                                }
                            }
                        }
                    }
                }
                State::Head => {
                    let take = input.len().min(MAX_HEAD + 1 - self.buf.len().min(MAX_HEAD));
                    let old = self.buf.len();
                    let mut buf = std::mem::take(&mut self.buf);
                    buf.extend_from_slice(&input[..take]);
                    let parsed = self.parse_head(&buf);
                    self.buf = buf;
                    match parsed? {
                        None => {
                            if self.buf.len() > MAX_HEAD {
                                return Err(HttpError("response head too large".into()));
                            }
                            input = &input[take..];
                        }
                        Some((used, head)) => {
                            let rest = used - old;
                            input = &input[rest..];
                            // A split head is rare: keep no buffer for the connection's life.
                            self.buf = Vec::new();
                            if let Some(head) = head {
                                sink(ResponseEvent::Head(head));
                                if self.state == State::Done {
                                    sink(ResponseEvent::End);
                                }
                            }
                        }
                    }
                }
                State::Length(n) => {
                    let k = (n as usize).min(input.len());
                    sink(ResponseEvent::Body(&input[..k]));
                    input = &input[k..];
                    let left = n - k as u64;
                    if left == 0 {
                        self.state = State::Done;
                        sink(ResponseEvent::End);
                    } else {
                        self.state = State::Length(left);
                    }
                }
                State::Close => {
                    sink(ResponseEvent::Body(input));
                    input = &[];
                }
                State::Chunked(c) => input = self.chunked(c, input, sink)?,
            }
        }
        Ok(total)
    }

    /// The connection ended (EOF). A close-delimited body ends here; anything else is
    /// cut short.
    pub fn eof(&mut self, sink: &mut dyn FnMut(ResponseEvent<'_>)) -> Result<(), HttpError> {
        match self.state {
            State::Close => {
                self.state = State::Done;
                self.keep_alive = false;
                sink(ResponseEvent::End);
                Ok(())
            }
            State::Done => Ok(()),
            State::Head if self.buf.is_empty() => Err(HttpError("EOF".into())),
            _ => Err(HttpError("unexpected EOF".into())),
        }
    }

    /// Parses the head at the start of `buf`: `None` if incomplete; else the bytes of
    /// `buf` it took and the head (`None` for a 1xx, after which another head follows).
    fn parse_head(
        &mut self,
        buf: &[u8],
    ) -> Result<Option<(usize, Option<ResponseHead>)>, HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let used = match resp.parse(buf) {
            Ok(httparse::Status::Partial) => return Ok(None),
            Ok(httparse::Status::Complete(n)) => n,
            Err(e) => return Err(HttpError(format!("malformed HTTP response: {e}"))),
        };
        let status = resp.code.unwrap_or(0);
        let minor = resp.version.unwrap_or(1);
        let mut head = ResponseHead {
            minor,
            status,
            reason: resp.reason.unwrap_or("").to_owned(),
            headers: Vec::with_capacity(resp.headers.len()),
        };
        for h in resp.headers.iter() {
            let v = String::from_utf8_lossy(h.value).into_owned();
            head.headers.push((h.name.to_owned(), v));
        }
        if (100..200).contains(&status) && status != 101 {
            return Ok(Some((used, None)));
        }
        let conn = head
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .collect::<Vec<_>>();
        self.keep_alive = if minor == 0 {
            conn.iter().any(|t| t == "keep-alive")
        } else {
            !conn.iter().any(|t| t == "close")
        };
        let chunked = head
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("chunked"));
        let mut length: Option<u64> = None;
        for (n, v) in &head.headers {
            if n.eq_ignore_ascii_case("content-length") {
                let l: u64 = v
                    .trim()
                    .parse()
                    .map_err(|_| HttpError(format!("bad Content-Length {v:?}")))?;
                if length.is_some_and(|x| x != l) {
                    return Err(HttpError(
                        "message cannot contain multiple Content-Length headers".into(),
                    ));
                }
                length = Some(l);
            }
        }
        self.state = if self.head_request || status == 204 || status == 304 {
            State::Done
        } else if chunked {
            State::Chunked(Chunk::Size)
        } else {
            match length {
                Some(0) => State::Done,
                Some(n) => State::Length(n),
                None => {
                    self.keep_alive = false;
                    State::Close
                }
            }
        };
        Ok(Some((used, Some(head))))
    }

    fn chunked<'i>(
        &mut self,
        c: Chunk,
        input: &'i [u8],
        sink: &mut dyn FnMut(ResponseEvent<'_>),
    ) -> Result<&'i [u8], HttpError> {
        match c {
            Chunk::Data(n) => {
                let k = (n as usize).min(input.len());
                sink(ResponseEvent::Body(&input[..k]));
                let left = n - k as u64;
                self.state = State::Chunked(if left == 0 {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left)
                });
                Ok(&input[k..])
            }
            Chunk::Size | Chunk::DataEnd | Chunk::Trailers => {
                // A line: up to LF.
                let Some(nl) = memchr::memchr(b'\n', input) else {
                    if self.buf.len() + input.len() > MAX_LINE {
                        return Err(HttpError("chunked line too long".into()));
                    }
                    self.buf.extend_from_slice(input);
                    return Ok(&[]);
                };
                self.buf.extend_from_slice(&input[..nl]);
                let rest = &input[nl + 1..];
                if self.buf.len() > MAX_LINE {
                    return Err(HttpError("chunked line too long".into()));
                }
                let line = std::mem::take(&mut self.buf);
                let line = line.strip_suffix(b"\r").unwrap_or(&line);
                match c {
                    Chunk::DataEnd => {
                        if !line.is_empty() {
                            return Err(HttpError("malformed chunked encoding".into()));
                        }
                        self.state = State::Chunked(Chunk::Size);
                    }
                    Chunk::Trailers => {
                        if line.is_empty() {
                            self.state = State::Done;
                            sink(ResponseEvent::End);
                        }
                    }
                    _ => {
                        let hex = line.split(|&b| b == b';').next().unwrap_or(&[]);
                        let hex = std::str::from_utf8(hex).unwrap_or("").trim();
                        let n = u64::from_str_radix(hex, 16)
                            .map_err(|_| HttpError("malformed chunked encoding".into()))?;
                        self.state = State::Chunked(if n == 0 {
                            Chunk::Trailers
                        } else {
                            Chunk::Data(n)
                        });
                    }
                }
                Ok(rest)
            }
        }
    }
}

pub mod proxy;

#[cfg(test)]
mod tests;
