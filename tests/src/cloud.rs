//! The loopback server every fake cloud API runs in, and the request it hands them.
//!
//! A fake is its answer function ([`Api::answer`]: a request in, an answer out) and
//! the state it answers from; [`RestServer`] serves it over HTTP/1.1 keep-alive on
//! `127.0.0.1` at a port the OS picks, records every request, and can be told to answer
//! the next requests with given failures instead. The simulator's worlds call the same
//! answer function with requests the agent makes in memory, so the fake the end-to-end
//! tests check against real clients is the one the simulator runs.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A request as a fake sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, percent-decoded.
    pub path: String,
    /// The query's parameters in order, percent-decoded.
    pub query: Vec<(String, String)>,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Percent-decoding (`+` as a space, as in a form).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Request {
    /// A request for `target` (`/v2/droplets?page=2`).
    pub fn new(method: &str, target: &str) -> Request {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Request {
            method: method.to_owned(),
            path: unescape(path),
            query: query
                .split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (unescape(k), unescape(v))
                })
                .collect(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The request a URL the agent asked for stands for (`http://host/path?query`).
    pub fn from_url(method: &str, url: &str) -> Request {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let target = rest.find('/').map_or("/", |i| &rest[i..]);
        Request::new(method, target)
    }

    /// With a header.
    pub fn header_set(mut self, name: &str, value: &str) -> Request {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// The first value of query parameter `k`.
    pub fn param(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    /// The header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `GET /path?query`, as the tests list calls.
    pub fn line(&self) -> String {
        let q: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if q.is_empty() {
            format!("{} {}", self.method, self.path)
        } else {
            format!("{} {}?{}", self.method, self.path, q.join("&"))
        }
    }
}

/// An answer: status, content type, other headers, body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// Other headers (`Date`, …).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, v: &serde_json::Value) -> Reply {
        Reply {
            status,
            content_type: "application/json; charset=utf-8".into(),
            headers: Vec::new(),
            body: v.to_string(),
        }
    }

    /// This answer with a header too.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Unix seconds as an HTTP `Date` (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[m as usize - 1],
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Unix seconds as `2006-01-02T15:04:05` (UTC, no zone).
pub fn datetime(secs: i64) -> String {
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// The wall clock in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A fake cloud API: its answer to a request, given the base URL it is reached at
/// (for the links it puts in answers).
pub trait Api: Send + 'static {
    /// The answer to `req`.
    fn answer(&self, req: &Request, base: &str) -> Reply;
}

struct State<A> {
    api: A,
    /// Answers to give instead, each to the next request carrying the `Authorization`
    /// value (any request when `None`).
    failures: Vec<(Option<String>, Reply)>,
    calls: Vec<Request>,
}

struct Shared<A> {
    inner: Mutex<State<A>>,
    base: String,
    stop: AtomicBool,
}

/// A fake API served on loopback; stops when dropped.
pub struct RestServer<A: Api> {
    addr: SocketAddr,
    shared: Arc<Shared<A>>,
}

impl<A: Api> std::fmt::Debug for RestServer<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl<A: Api> RestServer<A> {
    /// Starts `api` on `127.0.0.1` at a port the OS picks.
    pub fn start(api: A) -> RestServer<A> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a fake API");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            inner: Mutex::new(State {
                api,
                failures: Vec::new(),
                calls: Vec::new(),
            }),
            base: format!("http://{addr}"),
            stop: AtomicBool::new(false),
        });
        crate::accept_loop(
            listener,
            shared.clone(),
            |s| s.stop.load(Ordering::SeqCst),
            serve::<A>,
        );
        RestServer { addr, shared }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        self.shared.base.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State<A>> {
        // A poisoned lock means a server thread panicked: the test fails anyway.
        self.shared.inner.lock().expect("fake API lock")
    }

    /// Runs `f` on the fake's state.
    pub fn with<R>(&self, f: impl FnOnce(&mut A) -> R) -> R {
        f(&mut self.lock().api)
    }

    /// The next requests are answered these (status, JSON body) instead.
    pub fn fail_next(&self, answers: &[(u16, &str)]) {
        self.fail(None, answers);
    }

    /// The next requests carrying `Authorization: <auth>` (or, without one,
    /// `X-Auth-Token: <auth>`) are answered these instead (the others as usual): a job's
    /// own requests fail, not another's.
    pub fn fail_next_for(&self, auth: &str, answers: &[(u16, &str)]) {
        self.fail(Some(auth.to_owned()), answers);
    }

    fn fail(&self, auth: Option<String>, answers: &[(u16, &str)]) {
        self.lock().failures.extend(answers.iter().map(|(s, b)| {
            (
                auth.clone(),
                Reply {
                    status: *s,
                    content_type: "application/json".into(),
                    headers: Vec::new(),
                    body: (*b).to_owned(),
                },
            )
        }));
    }

    /// How many injected failures are still to be answered.
    pub fn pending_failures(&self) -> usize {
        self.lock().failures.len()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().calls.clone()
    }

    /// Every request so far as `GET /path?query`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.iter().map(Request::line).collect()
    }
}

impl<A: Api> Drop for RestServer<A> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve<A: Api>(conn: TcpStream, s: &Shared<A>) {
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    loop {
        let Some((method, target, headers)) = crate::read_request(&mut r) else {
            return;
        };
        let mut req = Request::new(&method, &target);
        let len: usize = req_len(&headers);
        req.headers = headers;
        let mut body = vec![0u8; len.min(1 << 20)];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        req.body = body;
        let mut inner = s.inner.lock().expect("fake API lock");
        inner.calls.push(req.clone());
        // Who the request is from: its `Authorization`, else its `X-Auth-Token`.
        let auth = req
            .header("authorization")
            .or_else(|| req.header("x-auth-token"))
            .map(str::to_owned);
        let injected = inner
            .failures
            .iter()
            .position(|(want, _)| want.is_none() || *want == auth);
        let reply = match injected {
            Some(i) => inner.failures.remove(i).1,
            None => inner.api.answer(&req, &s.base),
        };
        drop(inner);
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            reply.status,
            crate::reason(reply.status),
            reply.content_type,
            reply.body.len()
        );
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if w.write_all(head.as_bytes()).is_err() || w.write_all(reply.body.as_bytes()).is_err() {
            return;
        }
    }
}

fn req_len(headers: &[(String, String)]) -> usize {
    headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_as_http_wants_them() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(1_835_827_200), "Sun, 05 Mar 2028 00:00:00 GMT");
        assert_eq!(datetime(1_700_000_000), "2023-11-14T22:13:20");
    }

    #[test]
    fn requests_are_read_as_fakes_see_them() {
        let r = Request::from_url("GET", "http://x:1/v2/a%20b?page=2&tag_name=a%3Ab&x")
            .header_set("Authorization", "Bearer t");
        assert_eq!(r.path, "/v2/a b");
        assert_eq!(r.param("page"), Some("2"));
        assert_eq!(r.param("tag_name"), Some("a:b"));
        assert_eq!(r.param("x"), Some(""));
        assert_eq!(r.header("authorization"), Some("Bearer t"));
        assert_eq!(r.line(), "GET /v2/a b?page=2&tag_name=a:b&x=");
        assert_eq!(unescape("100%"), "100%");
        assert_eq!(unescape("%4"), "%4");
        assert_eq!(Request::from_url("GET", "http://x").path, "/");
    }
}
