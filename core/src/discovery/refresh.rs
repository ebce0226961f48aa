//! One HTTP request per refresh interval: the shape of 3.x's `refresh.Discovery` around
//! a `refresh` function that makes a single request (Marathon's `fetchApps`, Eureka's
//! `fetchApps`). The request starts at once and then every interval; one still running
//! when the next is due is cancelled and reported as `context deadline exceeded`, as the
//! context of 3.x's refresh would end it. The body of an answer that is not 2xx is not
//! kept (3.x discards it) unless the provider asks for its first bytes
//! ([`OneRequest::keep_error_body`]: AWS puts its error code there). A refresh of
//! several requests in turn (pages) goes on with [`OneRequest::follow`], all of them
//! within the one interval.

use std::sync::Arc;
use std::time::Duration;

use super::mechanism::MachineContext;
use crate::common::http::HttpClientConfig;
use crate::io::{CredentialsFile, HttpRequest, IoEvent, IoOp, IoQueue, Origin, RequestId};
use crate::time::Instant;

/// How a request ended.
#[derive(Debug)]
pub(crate) enum Done {
    /// A whole answer (the body only if 2xx, or its first bytes as asked), with the URL
    /// as messages show it.
    Answer {
        status: u16,
        body: Vec<u8>,
        url: String,
    },
    /// The request failed: `Get "<url>": <error>`.
    Failed(String),
}

#[derive(Debug)]
struct InFlight {
    id: RequestId,
    /// `Get` or `Post`, as Go's client errors name the method.
    method: &'static str,
    url: String,
    status: u16,
    body: Vec<u8>,
}

/// The request side of a refresh-based provider.
#[derive(Debug)]
pub(crate) struct OneRequest {
    headers: Vec<(String, String)>,
    credentials_file: Option<CredentialsFile>,
    client: Arc<HttpClientConfig>,
    limit: u64,
    provider: Arc<str>,
    interval: Duration,
    next: Instant,
    in_flight: Option<InFlight>,
    /// How much of a body that is not 2xx is kept.
    error_body: usize,
}

/// A URL as messages show it (without its password).
fn shown(url: &str) -> String {
    crate::gourl::redact_url(url, crate::gourl::STRIPPED).into_owned()
}

impl OneRequest {
    /// Requests with these headers (and credentials read from a file), the job's
    /// client, every `interval`, first at once.
    pub(crate) fn new(
        client: &HttpClientConfig,
        headers: Vec<(String, String)>,
        credentials_file: Option<CredentialsFile>,
        interval: Duration,
        cx: &MachineContext<'_>,
    ) -> OneRequest {
        OneRequest {
            headers,
            credentials_file,
            client: Arc::new(client.clone()),
            limit: cx.env.body_limit,
            provider: cx.name.clone(),
            interval,
            next: cx.now,
            in_flight: None,
            error_body: 0,
        }
    }

    /// Keeps up to `limit` bytes of the body of an answer that is not 2xx.
    pub(crate) fn keep_error_body(mut self, limit: usize) -> OneRequest {
        self.error_body = limit;
        self
    }

    /// Starts the next request of the refresh in progress (a following page) to `url`;
    /// the refresh still ends when the next is due. Nothing happens while a request is
    /// in flight.
    pub(crate) fn follow(&mut self, url: String, io: &mut IoQueue) {
        self.follow_with(url, None, io);
    }

    /// [`OneRequest::follow`] as a POST of `body` when there is one.
    pub(crate) fn follow_with(&mut self, url: String, body: Option<Arc<[u8]>>, io: &mut IoQueue) {
        self.follow_call(url, body, Vec::new(), io);
    }

    /// [`OneRequest::follow_with`] with `extra` headers on this request alone.
    pub(crate) fn follow_call(
        &mut self,
        url: String,
        body: Option<Arc<[u8]>>,
        extra: Vec<(String, String)>,
        io: &mut IoQueue,
    ) {
        if self.in_flight.is_none() {
            self.send(url, body, extra, io);
        }
    }

    /// Starts no request this time: the next refresh is due one interval from `now`.
    pub(crate) fn skip(&mut self, now: Instant) {
        self.next = now + self.interval;
    }

    /// The file requests read their credentials from.
    #[cfg(test)]
    pub(crate) fn credentials_file(&self) -> Option<&CredentialsFile> {
        self.credentials_file.as_ref()
    }

    /// Starts a request to `url` (unless one is in flight); the next refresh is due one
    /// interval from `now`.
    pub(crate) fn start(&mut self, now: Instant, url: String, io: &mut IoQueue) {
        self.start_with(now, url, None, io);
    }

    /// [`OneRequest::start`] as a POST of `body` when there is one.
    pub(crate) fn start_with(
        &mut self,
        now: Instant,
        url: String,
        body: Option<Arc<[u8]>>,
        io: &mut IoQueue,
    ) {
        self.start_call(now, url, body, Vec::new(), io);
    }

    /// [`OneRequest::start_with`] with `extra` headers on this request alone.
    pub(crate) fn start_call(
        &mut self,
        now: Instant,
        url: String,
        body: Option<Arc<[u8]>>,
        extra: Vec<(String, String)>,
        io: &mut IoQueue,
    ) {
        self.next = now + self.interval;
        if self.in_flight.is_some() {
            return;
        }
        self.send(url, body, extra, io);
    }

    fn send(
        &mut self,
        url: String,
        body: Option<Arc<[u8]>>,
        extra: Vec<(String, String)>,
        io: &mut IoQueue,
    ) {
        let method = if body.is_some() { "Post" } else { "Get" };
        let mut headers = self.headers.clone();
        headers.extend(extra);
        let id = io.start(IoOp::Http(HttpRequest {
            url: url.clone(),
            headers,
            credentials_file: self.credentials_file.clone(),
            client: self.client.clone(),
            body_limit: self.limit,
            timeout: self.interval,
            origin: Origin::Discovery {
                provider: self.provider.clone(),
            },
            body,
        }));
        self.in_flight = Some(InFlight {
            id,
            method,
            url,
            status: 0,
            body: Vec::new(),
        });
    }

    /// True if `id` is the request in flight.
    pub(crate) fn owns(&self, id: RequestId) -> bool {
        self.in_flight.as_ref().is_some_and(|r| r.id == id)
    }

    /// An event of the request in flight: how it ended, once it has.
    pub(crate) fn handle(&mut self, id: RequestId, ev: IoEvent<'_>) -> Option<Done> {
        let r = self.in_flight.as_mut().filter(|r| r.id == id)?;
        match ev {
            IoEvent::HttpHead { status, .. } => r.status = status,
            IoEvent::HttpBody(chunk) if r.status / 100 == 2 => r.body.extend_from_slice(chunk),
            IoEvent::HttpBody(chunk) => {
                let take = chunk
                    .len()
                    .min(self.error_body.saturating_sub(r.body.len()));
                r.body.extend_from_slice(&chunk[..take]);
            }
            IoEvent::HttpEnd => {
                let r = self.in_flight.take()?;
                return Some(Done::Answer {
                    status: r.status,
                    body: r.body,
                    url: shown(&r.url),
                });
            }
            IoEvent::Failed(e) => {
                let r = self.in_flight.take()?;
                return Some(Done::Failed(format!(
                    "{} {:?}: {e}",
                    r.method,
                    shown(&r.url)
                )));
            }
            _ => {}
        }
        None
    }

    /// At `now`: true if the next refresh is due, with the failure of a request it
    /// gives up (cancelled).
    pub(crate) fn due(&mut self, now: Instant, io: &mut IoQueue) -> (bool, Option<String>) {
        if now < self.next {
            return (false, None);
        }
        let gave_up = self.in_flight.take().map(|r| {
            io.cancel(r.id);
            format!(
                "{} {:?}: context deadline exceeded",
                r.method,
                shown(&r.url)
            )
        });
        (true, gave_up)
    }

    /// True if the next refresh is due at `now` (nothing is cancelled).
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// When the next refresh is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next)
    }

    /// Cancels the request in flight.
    pub(crate) fn stop(&mut self, io: &mut IoQueue) {
        if let Some(r) = self.in_flight.take() {
            io.cancel(r.id);
        }
    }

    /// 1 while a request is in flight.
    pub(crate) fn in_flight(&self) -> usize {
        usize::from(self.in_flight.is_some())
    }
}

/// Go's `http.StatusText` for the statuses APIs answer errors with, else the number.
pub(crate) fn status_text(status: u16) -> String {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => return status.to_string(),
    }
    .to_owned()
}
