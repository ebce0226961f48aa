//! The machine of a cloud API listed page by page: 3.x's `refresh.Discovery` around a
//! `refresh` function that makes one request after another (a listing's pages, then
//! perhaps a second listing) and turns them into target groups.
//!
//! A mechanism says what to ask and what an answer means ([`Pages`]); [`PagedSd`] does
//! the rest, the same for every such mechanism: the first call at start and then every
//! `refresh_interval`, the next call as soon as an answer asks for one. A refresh still
//! running when the next is due goes on — each request times out after the interval,
//! as 3.x's client does, but the refresh as a whole has no deadline in 3.x either — and
//! the next starts as soon as it ends (3.x's ticker keeps one tick while `refresh`
//! runs). A failure
//! — transport, a status the mechanism refuses, an answer that does not decode — keeps
//! the last groups (3.x's `refresh.Discovery` sends nothing on an error). Two bounds 3.x
//! does not have, so that no API can keep a refresh going without end: at most
//! [`MAX_CALLS`] calls and the discovery body limit in bytes, summed over a refresh.

use std::fmt;
use std::sync::Arc;

use super::groups::TargetGroup;
use super::mechanism::{MachineContext, SdMachine, SdOut};
use super::refresh::{Done, OneRequest};
use crate::common::http::HttpClientConfig;
use crate::io::{IoEvent, IoQueue, RequestId};
use crate::time::Instant;

/// The most calls one refresh makes.
pub(crate) const MAX_CALLS: usize = 1000;

/// One request of a refresh: a `GET`, or a `POST` of `body`, with the machine's
/// headers and `headers` of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) url: String,
    pub(crate) body: Option<Arc<[u8]>>,
    pub(crate) headers: Vec<(String, String)>,
}

impl Call {
    /// A `GET` of `url`.
    pub(crate) fn get(url: impl Into<String>) -> Call {
        Call {
            url: url.into(),
            body: None,
            headers: Vec::new(),
        }
    }

    /// This call with the header `name: value` too.
    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Call {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// What an answer leads to.
#[derive(Debug)]
pub(crate) enum Step {
    /// Another call in this refresh.
    Next(Call),
    /// The refresh is complete: these groups replace the last.
    Done(Vec<TargetGroup>),
}

/// What a mechanism listed page by page knows: its calls and its answers. It keeps the
/// state of the refresh in progress itself (targets so far, the page asked for); a new
/// refresh starts with [`Pages::first`].
pub(crate) trait Pages: fmt::Debug + Send + 'static {
    /// The first call of a refresh, or the failure that stops it before any request
    /// (the next refresh is still due an interval later).
    fn first(&mut self) -> Result<Call, String>;
    /// An answer to the last call: its status, its body (a body that is not 2xx as
    /// much as the request keeps of it) and its URL as messages show it.
    fn answer(&mut self, status: u16, body: &[u8], url: &str) -> Result<Step, String>;
    /// The failure of the last call, worded as the mechanism words it (`e` is Go's
    /// client error: `Get "<url>": <cause>`, or a bound trawl puts on a refresh).
    fn failed(&self, e: String) -> String;
    /// The status, reason phrase and headers of the answer to the last call, before
    /// its body (and [`Pages::answer`]). Most mechanisms need nothing from them.
    fn head(&mut self, _status: u16, _reason: &str, _headers: &[(&str, &str)]) {}
}

/// The running machine of `pages`: its requests carry the agent's `User-Agent`,
/// `headers`, and the authorization of the block's HTTP `client` (a file's credentials
/// read by the shell for each request); each times out after `interval`, which is also
/// the refresh period; up to `error_body` bytes of an answer that is not 2xx are kept
/// for the failure's wording.
pub(crate) fn machine<P: Pages>(
    pages: P,
    client: &HttpClientConfig,
    headers: &[(&str, &str)],
    interval: std::time::Duration,
    error_body: usize,
    cx: &MachineContext<'_>,
) -> Box<dyn SdMachine> {
    let mut all = vec![("User-Agent".to_owned(), cx.env.user_agent.to_string())];
    all.extend(
        headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let file = crate::io::add_auth(client, &mut all);
    let req = OneRequest::new(client, all, file, interval, cx).keep_error_body(error_body);
    Box::new(PagedSd::new(pages, req, cx.env.body_limit))
}

/// A running mechanism listed page by page.
#[derive(Debug)]
pub(crate) struct PagedSd<P> {
    pages: P,
    req: OneRequest,
    /// A refresh is in progress (its calls so far, bytes read so far).
    refresh: Option<(usize, u64)>,
    /// The next refresh came due while one was in progress: it starts when that ends.
    pending: bool,
    limit: u64,
}

impl<P: Pages> PagedSd<P> {
    /// The machine for `pages`, its requests made by `req`; the answers of one refresh
    /// add up to at most `body_limit` bytes (0: no limit).
    pub(crate) fn new(pages: P, req: OneRequest, body_limit: u64) -> PagedSd<P> {
        PagedSd {
            pages,
            req,
            refresh: None,
            pending: false,
            limit: body_limit,
        }
    }

    fn refresh(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        match self.pages.first() {
            Err(e) => {
                self.req.skip(now);
                self.refresh = None;
                out.failures.push(e);
            }
            Ok(call) => {
                self.req
                    .start_call(now, call.url, call.body, call.headers, io);
                self.refresh = Some((1, 0));
            }
        }
    }

    fn done(&mut self, now: Instant, d: Done, io: &mut IoQueue, out: &mut SdOut) {
        self.step(d, io, out);
        if self.refresh.is_none() && self.pending {
            self.pending = false;
            self.refresh(now, io, out);
        }
    }

    fn step(&mut self, d: Done, io: &mut IoQueue, out: &mut SdOut) {
        let Some((calls, read)) = self.refresh.take() else {
            return;
        };
        let (status, body, url) = match d {
            Done::Failed(e) => return out.failures.push(self.pages.failed(e)),
            Done::Answer { status, body, url } => (status, body, url),
        };
        let read = read + body.len() as u64;
        if self.limit > 0 && read > self.limit {
            let e = format!("the answers of one refresh exceed {} bytes", self.limit);
            return out.failures.push(self.pages.failed(e));
        }
        match self.pages.answer(status, &body, &url) {
            Err(e) => out.failures.push(e),
            Ok(Step::Done(groups)) => out.updates.push(groups),
            Ok(Step::Next(_)) if calls >= MAX_CALLS => {
                let e = format!("more than {MAX_CALLS} calls in one refresh: giving up");
                out.failures.push(self.pages.failed(e));
            }
            Ok(Step::Next(call)) => {
                self.req.follow_call(call.url, call.body, call.headers, io);
                self.refresh = Some((calls + 1, read));
            }
        }
    }
}

impl<P: Pages> SdMachine for PagedSd<P> {
    fn start(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        self.refresh(now, io, out);
    }

    fn owns(&self, id: RequestId) -> bool {
        self.req.owns(id)
    }

    fn handle_io(
        &mut self,
        now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        if let IoEvent::HttpHead {
            status,
            reason,
            headers,
        } = ev
            && self.req.owns(id)
        {
            self.pages.head(status, reason, headers);
        }
        if let Some(d) = self.req.handle(id, ev) {
            self.done(now, d, io, out);
        }
    }

    fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        if !self.req.is_due(now) {
            return;
        }
        if self.refresh.is_some() {
            // 3.x's ticker keeps this tick until the refresh in progress returns.
            self.pending = true;
            self.req.skip(now);
            return;
        }
        self.refresh(now, io, out);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.req.poll_timeout()
    }

    fn stop(&mut self, io: &mut IoQueue) {
        self.refresh = None;
        self.pending = false;
        self.req.stop(io);
    }

    fn in_flight(&self) -> usize {
        self.req.in_flight()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::common::http::HttpClientConfig;
    use crate::discovery::mechanism::test_support::Drive;
    use crate::labels::Labels;

    /// Pages `/items?page=N` until a page says `last`; each page's body is one target.
    #[derive(Debug, Default)]
    struct Numbered {
        page: u32,
        targets: Vec<Labels>,
    }

    impl Pages for Numbered {
        fn first(&mut self) -> Result<Call, String> {
            self.page = 1;
            self.targets.clear();
            Ok(Call::get("http://api/items?page=1"))
        }
        fn answer(&mut self, status: u16, body: &[u8], _url: &str) -> Result<Step, String> {
            if status != 200 {
                return Err(self.failed(format!("status {status}")));
            }
            let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
            let (addr, more) = match text.strip_suffix(" more") {
                Some(a) => (a, true),
                None => (text, false),
            };
            self.targets
                .push(Labels::from_pairs([("__address__", addr)]));
            if more {
                self.page += 1;
                return Ok(Step::Next(Call::get(format!(
                    "http://api/items?page={}",
                    self.page
                ))));
            }
            Ok(Step::Done(vec![TargetGroup {
                targets: std::mem::take(&mut self.targets),
                labels: Labels::empty(),
                source: "items".into(),
            }]))
        }
        fn failed(&self, e: String) -> String {
            format!("page {}: {e}", self.page)
        }
    }

    fn drive(limit: u64) -> Drive<PagedSd<Numbered>> {
        Drive::start("t/0", 1, |cx| {
            let req = OneRequest::new(
                &HttpClientConfig::default(),
                vec![],
                None,
                Duration::from_secs(60),
                cx,
            );
            PagedSd::new(Numbered::default(), req, limit)
        })
    }

    fn addresses(d: &Drive<PagedSd<Numbered>>) -> Vec<Vec<String>> {
        d.out
            .updates
            .iter()
            .map(|u| {
                u[0].targets
                    .iter()
                    .map(|t| t.get("__address__").unwrap_or_default().to_owned())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn pages_are_followed_and_make_one_update() {
        let mut d = drive(0);
        let (id, url) = d.one();
        assert_eq!(url, "http://api/items?page=1");
        d.respond(id, 200, &[], "a:1 more");
        let (id, url) = d.one();
        assert_eq!(url, "http://api/items?page=2");
        assert!(d.out.updates.is_empty(), "no update before the last page");
        d.respond(id, 200, &[], "b:1");
        assert_eq!(addresses(&d), [["a:1", "b:1"]]);
        assert_eq!(d.m.in_flight(), 0);
        // The next refresh an interval after the first call.
        assert_eq!(d.advance(), Instant(60_000_000_000));
        let (_, url) = d.one();
        assert_eq!(url, "http://api/items?page=1");
    }

    #[test]
    fn failures_keep_the_last_groups_and_are_worded_by_the_mechanism() {
        let mut d = drive(0);
        let (id, _) = d.one();
        d.respond(id, 200, &[], "a:1 more");
        let (id, _) = d.one();
        d.feed(id, IoEvent::Failed("connection refused"));
        assert_eq!(
            d.out.failures,
            [r#"page 2: Get "http://api/items?page=2": connection refused"#]
        );
        assert!(d.out.updates.is_empty());
        d.advance();
        let (id, _) = d.one();
        d.respond(id, 503, &[], "");
        assert_eq!(d.out.failures[1], "page 1: status 503");
        // A refresh still running when the next is due goes on (3.x gives a refresh no
        // deadline; each request has its own timeout, the interval, in the shell)...
        d.advance();
        let (id, _) = d.one();
        d.respond(id, 200, &[], "a:1 more");
        let (slow, _) = d.one();
        d.advance();
        d.advance();
        assert!(d.cancelled().is_empty() && d.started().is_empty());
        assert_eq!(d.out.failures.len(), 2);
        d.respond(slow, 200, &[], "z:1");
        assert_eq!(addresses(&d), [["a:1", "z:1"]]);
        // ...and the next starts as soon as it ends (one, however many ticks it missed).
        let (id, url) = d.one();
        assert_eq!(url, "http://api/items?page=1");
        d.respond(id, 200, &[], "c:1");
        assert_eq!(
            addresses(&d),
            [
                vec!["a:1".to_owned(), "z:1".to_owned()],
                vec!["c:1".to_owned()]
            ]
        );
        assert!(d.started().is_empty());
        // A request the shell times out fails its refresh, as any failure.
        d.advance();
        let (id, _) = d.one();
        d.feed(id, IoEvent::Failed("context deadline exceeded"));
        assert_eq!(
            d.out.failures[2],
            r#"page 1: Get "http://api/items?page=1": context deadline exceeded"#
        );
    }

    #[test]
    fn a_refresh_is_bounded_in_calls_and_bytes() {
        let mut d = drive(0);
        for n in 0..MAX_CALLS {
            let (id, _) = d.one();
            d.respond(id, 200, &[], &format!("h{n}:1 more"));
        }
        assert_eq!(
            d.out.failures,
            [format!(
                "page {}: more than {MAX_CALLS} calls in one refresh: giving up",
                MAX_CALLS + 1
            )]
        );
        assert!(d.started().is_empty() && d.out.updates.is_empty());

        let mut d = drive(20);
        let (id, _) = d.one();
        d.respond(id, 200, &[], "0123456789 more");
        let (id, _) = d.one();
        d.respond(id, 200, &[], "0123456789");
        assert_eq!(
            d.out.failures,
            ["page 2: the answers of one refresh exceed 20 bytes"]
        );
        assert!(d.out.updates.is_empty());
    }
}
