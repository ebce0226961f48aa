//! One resource of one namespace, kept in step with the API server: list it (in pages),
//! then watch it from the list's `resourceVersion`, applying each event to a store keyed
//! `namespace/name` — client-go's reflector and informer store as 3.x uses them
//! (`tools/cache/reflector.go`: `ListAndWatch`, `watchHandler`), with these choices:
//!
//! - Lists are classic `limit=500` pages read consistently (no `resourceVersion`); the
//!   streaming watch-list of client-go 0.35 is not asked of the server.
//! - Watches ask for bookmarks and a server-side `timeoutSeconds` drawn in [300, 600) from
//!   the agent's seed, as client-go draws it; a watch that ends cleanly is re-opened at
//!   once from the last version seen (events and bookmarks), an expired version (`410`, as
//!   a status or an `ERROR` event) relists, and every other failure waits out the
//!   reflector's backoff (0.8 s doubling to 30 s, jittered, reset after 2 quiet minutes).
//! - A relist reports only what changed against the store: new keys as added, a changed
//!   `resourceVersion` as updated, vanished keys as deleted (client-go's `Replace` and
//!   its handlers, resync disabled).
//! - Better than the reflector: an object that does not decode is skipped with an error
//!   naming it, and its previous state is kept, instead of failing the whole list or
//!   watch; a watch that neither ends nor speaks past its own timeout is abandoned.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::objects::{Object, Resource, Status};
use super::watch::{EventType, WatchDecoder, decode_list};
use crate::common::http::HttpClientConfig;
use crate::gourl::query_escape;
use crate::io::{CredentialsFile, HttpRequest, IoEvent, IoOp, IoQueue, Origin, RequestId};
use crate::time::Instant;

/// Objects per list page.
pub(crate) const PAGE_SIZE: u32 = 500;
/// A list page must answer within this.
pub(crate) const LIST_TIMEOUT: Duration = Duration::from_secs(60);
/// A watch past its `timeoutSeconds` by this much is abandoned.
pub(crate) const WATCH_GRACE: Duration = Duration::from_secs(30);
/// Most bytes of an error response read for its message.
const ERROR_BODY: usize = 64 << 10;
/// A watch that ends sooner than this without an event is an error (client-go's
/// `VeryShortWatchError`).
const SHORT_WATCH: Duration = Duration::from_secs(1);
/// The reflector's backoff: first delay, cap, and the quiet time that resets it.
const BACKOFF_FIRST: Duration = Duration::from_millis(800);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
const BACKOFF_RESET: Duration = Duration::from_secs(120);

/// Where and how requests go: shared by every informer of a provider.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    /// The server's URL without a trailing slash (`https://10.0.0.1:443`, or with a
    /// path prefix).
    pub(crate) base: String,
    /// Headers of every request (User-Agent, Accept, static auth, impersonation).
    pub(crate) headers: Vec<(String, String)>,
    /// Credentials the shell reads from a file per request (a rotating token).
    pub(crate) credentials_file: Option<CredentialsFile>,
    /// TLS and proxy options.
    pub(crate) client: Arc<HttpClientConfig>,
    /// Who asks, for the shell's logs.
    pub(crate) origin: Origin,
    /// Largest list page body.
    pub(crate) page_limit: u64,
}

/// What an event or relist did to one key of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ChangeKind {
    /// A new key.
    Add,
    /// The key's object changed.
    Update,
    /// The key is gone.
    Delete,
}

/// One change of the store; the new object (if any) is in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    /// What happened.
    pub(crate) kind: ChangeKind,
    /// The key (`namespace/name`).
    pub(crate) key: String,
}

/// What one call into an informer produced.
#[derive(Debug, Default)]
pub(crate) struct InformerOut {
    /// Store changes, in order.
    pub(crate) changes: Vec<Change>,
    /// Errors to log.
    pub(crate) failures: Vec<String>,
    /// Errors to count in `prometheus_sd_kubernetes_failures_total`.
    pub(crate) failure_count: u64,
}

impl InformerOut {
    fn fail(&mut self, message: String) {
        self.failure_count += 1;
        self.failures.push(message);
    }
}

#[derive(Debug)]
enum Phase {
    /// Waiting until `at`, then listing (`relist`) or watching.
    Idle {
        at: Instant,
        relist: bool,
    },
    Listing(Listing),
    Watching(Watching),
}

#[derive(Debug)]
struct Listing {
    id: RequestId,
    deadline: Instant,
    /// Non-200: the status, and the error body read so far.
    status: u16,
    body: Vec<u8>,
    /// The store being built from the pages so far.
    next: BTreeMap<String, Object>,
    /// This page's `continue` token (empty for the first).
    continue_token: String,
}

#[derive(Debug)]
struct Watching {
    id: RequestId,
    /// Until the response's head: [`LIST_TIMEOUT`]; then the end of the server's timeout
    /// plus [`WATCH_GRACE`].
    deadline: Instant,
    /// When the stream must have ended.
    end_by: Instant,
    started: Instant,
    status: u16,
    error_body: Vec<u8>,
    decoder: WatchDecoder,
    events: u64,
}

/// A resource kept in step with the server.
#[derive(Debug)]
pub(crate) struct Informer {
    /// The resource.
    pub(crate) resource: Resource,
    /// Its namespace (`""`: all, or cluster-scoped).
    pub(crate) namespace: String,
    label_selector: String,
    field_selector: String,
    /// The objects, by key.
    pub(crate) store: BTreeMap<String, Object>,
    /// The version to watch from.
    rv: String,
    /// True once a whole list has been applied.
    pub(crate) synced: bool,
    phase: Phase,
    /// Next backoff base (doubles per failure).
    backoff: Duration,
    last_failure: Option<Instant>,
    rng: u64,
}

use crate::hash::splitmix64 as next_random;

/// `d` times a factor in [1, 2) drawn from `state` (apimachinery's `wait.Jitter(d, 1.0)`).
fn jitter(d: Duration, state: &mut u64) -> Duration {
    let f = (next_random(state) >> 11) as f64 / (1u64 << 53) as f64;
    d.mul_f64(1.0 + f)
}

/// The message of an error response: a `Status`'s message, else the body's first line.
fn error_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let s = Status::decode(&text);
    let detail = if s.message.is_empty() {
        text.lines().next().unwrap_or("").trim().to_owned()
    } else {
        s.message
    };
    if detail.is_empty() {
        format!("server returned HTTP status {status}")
    } else {
        format!("server returned HTTP status {status}: {detail}")
    }
}

impl Informer {
    /// An informer for `resource` in `namespace` with the role's selectors; `seed`
    /// draws its watch timeouts and backoff jitter.
    pub(crate) fn new(
        resource: Resource,
        namespace: &str,
        label_selector: &str,
        field_selector: &str,
        seed: u64,
    ) -> Informer {
        Informer {
            resource,
            namespace: if resource.cluster_scoped() {
                String::new()
            } else {
                namespace.to_owned()
            },
            label_selector: label_selector.to_owned(),
            field_selector: field_selector.to_owned(),
            store: BTreeMap::new(),
            rv: String::new(),
            synced: false,
            phase: Phase::Idle {
                at: Instant(0),
                relist: true,
            },
            backoff: BACKOFF_FIRST,
            last_failure: None,
            rng: seed,
        }
    }

    /// The collection's path.
    pub(crate) fn path(&self) -> String {
        self.resource.path(&self.namespace)
    }

    /// The version a watch would start from.
    #[cfg(test)]
    pub(crate) fn resource_version(&self) -> &str {
        &self.rv
    }

    /// Starts the first list.
    pub(crate) fn start(&mut self, now: Instant, ep: &Endpoint, io: &mut IoQueue) {
        self.list(now, ep, io, String::new(), BTreeMap::new());
    }

    fn selectors(&self, q: &mut Vec<(&'static str, String)>) {
        if !self.field_selector.is_empty() {
            q.push(("fieldSelector", query_escape(&self.field_selector)));
        }
        if !self.label_selector.is_empty() {
            q.push(("labelSelector", query_escape(&self.label_selector)));
        }
    }

    fn request(
        &self,
        ep: &Endpoint,
        query: Vec<(&'static str, String)>,
        limit: u64,
        timeout: Duration,
    ) -> IoOp {
        let mut query = query;
        // `url.Values.Encode`: keys sorted.
        query.sort();
        let q: Vec<String> = query.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        IoOp::Http(HttpRequest {
            url: format!("{}{}?{}", ep.base, self.path(), q.join("&")),
            headers: ep.headers.clone(),
            credentials_file: ep.credentials_file.clone(),
            client: ep.client.clone(),
            body_limit: limit,
            timeout,
            origin: ep.origin.clone(),
            body: None,
        })
    }

    fn list(
        &mut self,
        now: Instant,
        ep: &Endpoint,
        io: &mut IoQueue,
        continue_token: String,
        next: BTreeMap<String, Object>,
    ) {
        let mut q = vec![("limit", PAGE_SIZE.to_string())];
        if !continue_token.is_empty() {
            q.push(("continue", query_escape(&continue_token)));
        }
        self.selectors(&mut q);
        let id = io.start(self.request(ep, q, ep.page_limit, LIST_TIMEOUT));
        self.phase = Phase::Listing(Listing {
            id,
            deadline: now + LIST_TIMEOUT,
            status: 0,
            body: Vec::new(),
            next,
            continue_token,
        });
    }

    fn watch(&mut self, now: Instant, ep: &Endpoint, io: &mut IoQueue) {
        // client-go: `timeoutSeconds` = minWatchTimeout · (1 + rand) with 5 minutes.
        let secs = 300 + next_random(&mut self.rng) % 300;
        let mut q = vec![
            ("allowWatchBookmarks", "true".to_owned()),
            ("resourceVersion", query_escape(&self.rv)),
            ("timeoutSeconds", secs.to_string()),
            ("watch", "true".to_owned()),
        ];
        self.selectors(&mut q);
        let timeout = Duration::from_secs(secs) + WATCH_GRACE;
        // Each event is bounded by the decoder, not the stream.
        let id = io.start(self.request(ep, q, 0, timeout));
        self.phase = Phase::Watching(Watching {
            id,
            deadline: now + LIST_TIMEOUT.min(timeout),
            end_by: now + timeout,
            started: now,
            status: 0,
            error_body: Vec::new(),
            decoder: WatchDecoder::new(),
            events: 0,
        });
    }

    /// The request in flight, if any.
    fn in_flight_id(&self) -> Option<RequestId> {
        match &self.phase {
            Phase::Listing(l) => Some(l.id),
            Phase::Watching(w) => Some(w.id),
            Phase::Idle { .. } => None,
        }
    }

    /// True if `id` is this informer's request.
    pub(crate) fn owns(&self, id: RequestId) -> bool {
        self.in_flight_id() == Some(id)
    }

    /// Requests in flight (0 or 1).
    pub(crate) fn in_flight(&self) -> usize {
        usize::from(self.in_flight_id().is_some())
    }

    /// Cancels the request in flight.
    pub(crate) fn stop(&mut self, io: &mut IoQueue) {
        if let Some(id) = self.in_flight_id() {
            io.cancel(id);
        }
        self.phase = Phase::Idle {
            at: Instant(u64::MAX),
            relist: false,
        };
    }

    /// When it next needs [`Informer::handle_timeout`].
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        Some(match &self.phase {
            Phase::Idle { at, .. } => *at,
            Phase::Listing(l) => l.deadline,
            Phase::Watching(w) => w.deadline,
        })
    }

    /// Waits out the backoff, then lists again or watches again.
    fn back_off(&mut self, now: Instant, relist: bool) {
        if self
            .last_failure
            .is_some_and(|t| now.saturating_since(t) > BACKOFF_RESET)
        {
            self.backoff = BACKOFF_FIRST;
        }
        self.last_failure = Some(now);
        let wait = jitter(self.backoff, &mut self.rng);
        self.backoff = (self.backoff * 2).min(BACKOFF_CAP);
        self.phase = Phase::Idle {
            at: now + wait,
            relist,
        };
    }

    fn what(&self) -> String {
        format!("{} {}", self.resource.plural(), self.path())
    }

    /// A deadline passed.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        ep: &Endpoint,
        io: &mut IoQueue,
        out: &mut InformerOut,
    ) {
        match &self.phase {
            Phase::Idle { at, relist } if now >= *at => {
                if *relist {
                    self.list(now, ep, io, String::new(), BTreeMap::new());
                } else {
                    self.watch(now, ep, io);
                }
            }
            Phase::Listing(l) if now >= l.deadline => {
                io.cancel(l.id);
                out.fail(format!(
                    "list {}: timed out after {LIST_TIMEOUT:?}",
                    self.what()
                ));
                self.back_off(now, true);
            }
            Phase::Watching(w) if now >= w.deadline => {
                io.cancel(w.id);
                let why = if w.deadline == w.end_by {
                    "no end past the server's timeout".to_owned()
                } else {
                    format!("no answer within {LIST_TIMEOUT:?}")
                };
                out.fail(format!("watch {}: {why}; watching again", self.what()));
                self.back_off(now, false);
            }
            _ => {}
        }
    }

    /// An event of its request.
    pub(crate) fn handle_io(
        &mut self,
        now: Instant,
        ev: IoEvent<'_>,
        ep: &Endpoint,
        io: &mut IoQueue,
        out: &mut InformerOut,
    ) {
        if matches!(self.phase, Phase::Listing(_)) {
            self.on_list(now, ev, ep, io, out);
        } else if matches!(self.phase, Phase::Watching(_)) {
            self.on_watch(now, ev, ep, io, out);
        }
    }

    fn on_list(
        &mut self,
        now: Instant,
        ev: IoEvent<'_>,
        ep: &Endpoint,
        io: &mut IoQueue,
        out: &mut InformerOut,
    ) {
        let what = self.what();
        let Phase::Listing(l) = &mut self.phase else {
            return;
        };
        match ev {
            IoEvent::HttpHead { status, .. } => l.status = status,
            IoEvent::HttpBody(chunk) => {
                let cap = if l.status == 200 {
                    ep.page_limit as usize
                } else {
                    ERROR_BODY
                };
                if cap > 0 && l.body.len() + chunk.len() > cap {
                    if l.status == 200 {
                        io.cancel(l.id);
                        out.fail(format!("list {what}: page larger than {cap} bytes"));
                        self.back_off(now, true);
                    }
                    // An error body's message is cut short; the rest is dropped.
                    return;
                }
                l.body.extend_from_slice(chunk);
            }
            IoEvent::HttpEnd => {
                let body = std::mem::take(&mut l.body);
                let status = l.status;
                if status != 200 {
                    let message = error_message(status, &body);
                    if status == 410 && !l.continue_token.is_empty() {
                        // An expired continue token: list again from the start at once
                        // (client-go's pager falls back to a full list).
                        out.failures
                            .push(format!("list {what}: {message}; listing again"));
                        self.list(now, ep, io, String::new(), BTreeMap::new());
                    } else {
                        out.fail(format!("list {what}: {message}"));
                        self.back_off(now, true);
                    }
                    return;
                }
                let mut next = std::mem::take(&mut l.next);
                match decode_list(&body) {
                    Err(e) => {
                        out.fail(format!("list {what}: {e}"));
                        self.back_off(now, true);
                    }
                    Ok(page) => {
                        for item in page.items {
                            match self.resource.decode(item) {
                                Ok(o) => {
                                    next.insert(o.meta().key(), o);
                                }
                                Err(e) => {
                                    // Keep what the store had for it, if anything.
                                    let key = key_of(item.get());
                                    out.fail(format!("list {what}: {}: {e}", key_or(&key)));
                                    if let Some(old) =
                                        key.and_then(|k| self.store.get(&k).map(|o| (k, o)))
                                    {
                                        next.insert(old.0, old.1.clone());
                                    }
                                }
                            }
                        }
                        if page.continue_token.is_empty() {
                            self.replace(next, page.resource_version, out);
                            self.backoff = BACKOFF_FIRST;
                            self.watch(now, ep, io);
                        } else {
                            self.list(now, ep, io, page.continue_token, next);
                        }
                    }
                }
            }
            IoEvent::Failed(e) => {
                out.fail(format!("list {what}: {e}"));
                self.back_off(now, true);
            }
            _ => {}
        }
    }

    /// Applies a complete list: client-go's `DeltaFIFO.Replace` as the handlers see it.
    fn replace(&mut self, next: BTreeMap<String, Object>, rv: String, out: &mut InformerOut) {
        let mut old = std::mem::replace(&mut self.store, next);
        for (key, o) in &self.store {
            match old.remove(key) {
                None => out.changes.push(Change {
                    kind: ChangeKind::Add,
                    key: key.clone(),
                }),
                Some(prev) => {
                    if prev.meta().resource_version != o.meta().resource_version {
                        out.changes.push(Change {
                            kind: ChangeKind::Update,
                            key: key.clone(),
                        });
                    }
                }
            }
        }
        for key in old.into_keys() {
            out.changes.push(Change {
                kind: ChangeKind::Delete,
                key,
            });
        }
        self.rv = rv;
        self.synced = true;
    }

    fn on_watch(
        &mut self,
        now: Instant,
        ev: IoEvent<'_>,
        ep: &Endpoint,
        io: &mut IoQueue,
        out: &mut InformerOut,
    ) {
        let what = self.what();
        let Phase::Watching(w) = &mut self.phase else {
            return;
        };
        match ev {
            IoEvent::HttpHead { status, .. } => {
                w.status = status;
                w.deadline = w.end_by;
            }
            IoEvent::HttpBody(chunk) => {
                if w.status != 200 {
                    let room = ERROR_BODY.saturating_sub(w.error_body.len());
                    w.error_body
                        .extend_from_slice(&chunk[..chunk.len().min(room)]);
                    return;
                }
                // Events are applied as the decoder completes them, straight from its
                // buffer; it is put back while the watch goes on.
                let mut decoder = std::mem::take(&mut w.decoder);
                let r = decoder.feed(chunk, &mut |e| {
                    self.apply_event(now, e.kind, e.object, &what, io, out)
                });
                if let Phase::Watching(w) = &mut self.phase {
                    w.decoder = decoder;
                    if let Err(e) = r {
                        self.stream_broke(now, io, out, format!("watch {what}: {e}"));
                    }
                }
            }
            IoEvent::HttpEnd => {
                if w.status != 200 {
                    let message = error_message(w.status, &w.error_body);
                    out.fail(format!("watch {what}: {message}"));
                    // 410: the version is gone; anything else may have lost events too.
                    self.back_off(now, true);
                    return;
                }
                let mut decoder = std::mem::take(&mut w.decoder);
                let short = now.saturating_since(w.started) < SHORT_WATCH && w.events == 0;
                let r = decoder
                    .finish(&mut |e| self.apply_event(now, e.kind, e.object, &what, io, out));
                if !matches!(self.phase, Phase::Watching(_)) {
                    return;
                }
                if let Err(e) = r {
                    out.fail(format!("watch {what}: {e}"));
                    self.back_off(now, true);
                } else if short {
                    out.fail(format!(
                        "watch {what}: very short watch: ended without an event"
                    ));
                    self.back_off(now, true);
                } else {
                    self.watch(now, ep, io);
                }
            }
            IoEvent::Failed(e) => {
                out.fail(format!("watch {what}: {e}"));
                // A broken connection: watch again from the last version seen.
                self.back_off(now, false);
            }
            _ => {}
        }
    }

    /// The watch cannot go on: drop it and relist after the backoff.
    fn stream_broke(
        &mut self,
        now: Instant,
        io: &mut IoQueue,
        out: &mut InformerOut,
        message: String,
    ) {
        if let Phase::Watching(w) = &self.phase {
            io.cancel(w.id);
        }
        out.fail(message);
        self.back_off(now, true);
    }

    /// Applies one watch event (nothing once the watch has ended: a 410 before it).
    fn apply_event(
        &mut self,
        now: Instant,
        kind: EventType,
        raw: &serde_json::value::RawValue,
        what: &str,
        io: &mut IoQueue,
        out: &mut InformerOut,
    ) {
        {
            let Phase::Watching(w) = &mut self.phase else {
                return;
            };
            w.events += 1;
            match kind {
                EventType::Bookmark => {
                    let rv = super::watch::resource_version(raw);
                    if !rv.is_empty() {
                        self.rv = rv;
                    }
                }
                EventType::Error => {
                    let s = Status::decode(raw.get());
                    if let Phase::Watching(w) = &self.phase {
                        io.cancel(w.id);
                    }
                    if s.expired() {
                        // Normal life: the version was compacted away. Relist.
                        out.failures.push(format!(
                            "watch {what}: {} ({}); listing again",
                            s.message, s.code
                        ));
                        self.phase = Phase::Idle {
                            at: now,
                            relist: true,
                        };
                    } else {
                        out.fail(format!("watch {what}: {} ({})", s.message, s.code));
                        self.back_off(now, true);
                    }
                }
                EventType::Added | EventType::Modified | EventType::Deleted => {
                    let obj = match self.resource.decode(raw) {
                        Ok(o) => o,
                        Err(e) => {
                            // Skipped, the old state kept; the version moves on.
                            let key = key_of(raw.get());
                            out.fail(format!("watch {what}: {}: {e}", key_or(&key)));
                            let rv = super::watch::resource_version(raw);
                            if !rv.is_empty() {
                                self.rv = rv;
                            }
                            return;
                        }
                    };
                    let key = obj.meta().key();
                    let rv = obj.meta().resource_version.to_string();
                    if !rv.is_empty() {
                        self.rv = rv;
                    }
                    if kind == EventType::Deleted {
                        if self.store.remove(&key).is_some() {
                            out.changes.push(Change {
                                kind: ChangeKind::Delete,
                                key,
                            });
                        }
                    } else {
                        let old = self.store.insert(key.clone(), obj);
                        out.changes.push(Change {
                            kind: if old.is_some() {
                                ChangeKind::Update
                            } else {
                                ChangeKind::Add
                            },
                            key,
                        });
                    }
                }
            }
        }
    }
}

/// The `namespace/name` of an object that did not decode as its kind, if its metadata
/// does.
fn key_of(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Meta {
        name: Option<String>,
        namespace: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Obj {
        metadata: Option<Meta>,
    }
    let m = serde_json::from_str::<Obj>(text).ok()?.metadata?;
    let name = m.name?;
    Some(match m.namespace.filter(|n| !n.is_empty()) {
        Some(ns) => format!("{ns}/{name}"),
        None => name,
    })
}

fn key_or(key: &Option<String>) -> &str {
    key.as_deref().unwrap_or("an object without a name")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::IoCommand;

    fn endpoint() -> Endpoint {
        Endpoint {
            base: "http://api:8080".into(),
            headers: vec![("Accept".into(), "application/json".into())],
            credentials_file: None,
            client: Arc::new(HttpClientConfig::default()),
            origin: Origin::Discovery {
                provider: "kubernetes/0".into(),
            },
            page_limit: 1 << 20,
        }
    }

    /// Drives one informer, playing the server by hand.
    struct Drive {
        inf: Informer,
        io: IoQueue,
        ep: Endpoint,
        now: Instant,
        out: InformerOut,
    }

    impl Drive {
        fn new(label: &str) -> Drive {
            let mut d = Drive {
                inf: Informer::new(Resource::Pods, "ns", label, "", 7),
                io: IoQueue::default(),
                ep: endpoint(),
                now: Instant(1_000_000_000),
                out: InformerOut::default(),
            };
            d.inf.start(d.now, &d.ep, &mut d.io);
            d
        }

        /// The URL of the request in flight (the last one started).
        fn url(&self) -> String {
            self.io
                .queue
                .iter()
                .rev()
                .find_map(|c| match c {
                    IoCommand::Start(_, IoOp::Http(r)) => Some(r.url.clone()),
                    _ => None,
                })
                .expect("a request")
        }

        fn id(&self) -> RequestId {
            self.inf.in_flight_id().expect("in flight")
        }

        fn answer(&mut self, status: u16, pieces: &[&str], end: bool) {
            let id = self.id();
            assert!(self.inf.owns(id));
            let ev = IoEvent::HttpHead {
                status,
                reason: "",
                headers: &[],
            };
            self.inf
                .handle_io(self.now, ev, &self.ep, &mut self.io, &mut self.out);
            for p in pieces {
                if !self.inf.owns(id) {
                    return;
                }
                self.inf.handle_io(
                    self.now,
                    IoEvent::HttpBody(p.as_bytes()),
                    &self.ep,
                    &mut self.io,
                    &mut self.out,
                );
            }
            if end && self.inf.owns(id) {
                self.inf.handle_io(
                    self.now,
                    IoEvent::HttpEnd,
                    &self.ep,
                    &mut self.io,
                    &mut self.out,
                );
            }
        }

        fn changes(&mut self) -> Vec<(ChangeKind, String)> {
            std::mem::take(&mut self.out.changes)
                .into_iter()
                .map(|c| (c.kind, c.key))
                .collect()
        }

        fn advance(&mut self, d: Duration) {
            self.now = self.now + d;
            self.inf
                .handle_timeout(self.now, &self.ep, &mut self.io, &mut self.out);
        }
    }

    fn pod(name: &str, rv: u32) -> String {
        format!(
            r#"{{"metadata":{{"name":"{name}","namespace":"ns","resourceVersion":"{rv}"}},"status":{{"podIP":"10.0.0.1"}}}}"#
        )
    }

    fn list(rv: u32, cont: &str, pods: &[(&str, u32)]) -> String {
        let items: Vec<String> = pods.iter().map(|(n, r)| pod(n, *r)).collect();
        format!(
            r#"{{"kind":"PodList","metadata":{{"resourceVersion":"{rv}","continue":"{cont}"}},"items":[{}]}}"#,
            items.join(",")
        )
    }

    fn event(kind: &str, name: &str, rv: u32) -> String {
        format!("{{\"type\":\"{kind}\",\"object\":{}}}\n", pod(name, rv))
    }

    #[test]
    fn lists_in_pages_then_watches_from_the_lists_version() {
        let mut d = Drive::new("app in (a, b)");
        assert_eq!(
            d.url(),
            "http://api:8080/api/v1/namespaces/ns/pods?labelSelector=app+in+%28a%2C+b%29&limit=500"
        );
        d.answer(200, &[&list(5, "tok/1", &[("a", 3)])], true);
        assert!(d.changes().is_empty(), "nothing before the last page");
        assert!(!d.inf.synced);
        assert!(
            d.url().contains("continue=tok%2F1&labelSelector="),
            "{}",
            d.url()
        );
        let page = list(6, "", &[("b", 4)]);
        let (x, y) = page.split_at(20);
        d.answer(200, &[x, y], true);
        assert!(d.inf.synced);
        assert_eq!(
            d.changes(),
            vec![
                (ChangeKind::Add, "ns/a".into()),
                (ChangeKind::Add, "ns/b".into())
            ]
        );
        let url = d.url();
        assert!(url.starts_with("http://api:8080/api/v1/namespaces/ns/pods?allowWatchBookmarks=true&labelSelector=app+in+%28a%2C+b%29&resourceVersion=6&timeoutSeconds="), "{url}");
        let secs: u64 = url
            .split("timeoutSeconds=")
            .nth(1)
            .and_then(|s| s.split('&').next())
            .and_then(|s| s.parse().ok())
            .expect("timeout");
        assert!((300..600).contains(&secs), "{secs}");
        assert!(url.ends_with("&watch=true"));
        // Events in any pieces; a bookmark moves the version only.
        let stream = [
            event("MODIFIED", "a", 7),
            event("ADDED", "c", 8),
            "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":\"12\"}}}\n".into(),
            event("DELETED", "b", 13),
            event("DELETED", "zz", 14),
        ]
        .concat();
        let pieces: Vec<&str> = (0..stream.len())
            .step_by(17)
            .map(|i| &stream[i..(i + 17).min(stream.len())])
            .collect();
        d.answer(200, &pieces, false);
        assert_eq!(
            d.changes(),
            vec![
                (ChangeKind::Update, "ns/a".into()),
                (ChangeKind::Add, "ns/c".into()),
                (ChangeKind::Delete, "ns/b".into()),
            ]
        );
        assert_eq!(d.inf.resource_version(), "14");
        // The server ends the watch: a new one from the last version, at once.
        let id = d.id();
        d.advance(Duration::from_secs(5));
        d.inf
            .handle_io(d.now, IoEvent::HttpEnd, &d.ep, &mut d.io, &mut d.out);
        assert_ne!(d.id(), id);
        assert!(d.url().contains("resourceVersion=14"));
        assert_eq!(d.out.failure_count, 0);
    }

    #[test]
    fn an_expired_version_relists_and_reports_only_differences() {
        let mut d = Drive::new("");
        d.answer(200, &[&list(5, "", &[("a", 3), ("b", 4), ("c", 5)])], true);
        d.changes();
        let gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\",\"message\":\"too old resource version: 5 (9)\"}}\n";
        d.answer(200, &[gone], false);
        assert_eq!(d.inf.in_flight(), 0, "the watch is cancelled");
        assert_eq!(d.out.failure_count, 0, "expiry is normal life");
        d.advance(Duration::ZERO);
        assert!(
            d.url().contains("limit=500"),
            "relists at once: {}",
            d.url()
        );
        // a unchanged, b changed, c gone, d new.
        d.answer(
            200,
            &[&list(20, "", &[("a", 3), ("b", 15), ("d", 16)])],
            true,
        );
        assert_eq!(
            d.changes(),
            vec![
                (ChangeKind::Update, "ns/b".into()),
                (ChangeKind::Add, "ns/d".into()),
                (ChangeKind::Delete, "ns/c".into()),
            ]
        );
        assert!(d.url().contains("resourceVersion=20"));
    }

    #[test]
    fn failures_back_off_and_keep_the_store() {
        let mut d = Drive::new("");
        d.answer(
            403,
            &[r#"{"kind":"Status","code":403,"reason":"Forbidden","message":"pods is forbidden: User \"x\" cannot list"}"#],
            true,
        );
        assert_eq!(d.out.failure_count, 1);
        assert!(
            d.out.failures[0].contains("pods /api/v1/namespaces/ns/pods: server returned HTTP status 403: pods is forbidden"),
            "{:?}",
            d.out.failures
        );
        assert_eq!(d.inf.in_flight(), 0);
        // Backoff 0.8 s × [1, 2).
        d.advance(Duration::from_millis(790));
        assert_eq!(d.inf.in_flight(), 0);
        d.advance(Duration::from_millis(810));
        assert_eq!(d.inf.in_flight(), 1);
        d.answer(200, &[&list(5, "", &[("a", 3)])], true);
        assert_eq!(d.changes().len(), 1);
        // A malformed object is skipped and counted; the stream goes on.
        let bad = "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\",\"resourceVersion\":\"6\"},\"spec\":{\"containers\":7}}}\n";
        d.answer(200, &[bad, &event("ADDED", "b", 7)], false);
        assert_eq!(d.out.failure_count, 2);
        assert!(
            d.out
                .failures
                .last()
                .is_some_and(|f| f.contains("ns/a: unable to decode a Pod")),
            "{:?}",
            d.out.failures
        );
        assert_eq!(d.changes(), vec![(ChangeKind::Add, "ns/b".into())]);
        assert!(d.inf.store.contains_key("ns/a"), "the old state stays");
        // A line that is not an event ends the watch: relist after the backoff.
        d.answer(200, &["garbage\n"], false);
        assert_eq!(d.out.failure_count, 3);
        assert_eq!(d.inf.in_flight(), 0);
        assert!(d.inf.store.len() == 2, "targets stay while relisting");
        // A dropped connection watches again (from the version) after the backoff.
        d.advance(Duration::from_secs(4));
        d.answer(200, &[&list(9, "", &[("a", 3), ("b", 7)])], true);
        let id = d.id();
        d.inf.handle_io(
            d.now,
            IoEvent::Failed("connection reset"),
            &d.ep,
            &mut d.io,
            &mut d.out,
        );
        assert_eq!(d.inf.in_flight(), 0);
        d.advance(Duration::from_secs(4));
        assert_ne!(d.id(), id);
        assert!(d.url().contains("watch=true") && d.url().contains("resourceVersion=9"));
    }

    #[test]
    fn a_silent_watch_is_abandoned_after_its_timeout() {
        let mut d = Drive::new("");
        d.answer(200, &[&list(5, "", &[])], true);
        // No head within a minute: a hung server.
        d.advance(LIST_TIMEOUT);
        assert_eq!(d.out.failure_count, 1);
        assert!(
            d.out.failures[0].contains("no answer within 60s"),
            "{:?}",
            d.out.failures
        );
        d.advance(Duration::from_secs(2));
        d.answer(200, &[], false);
        d.advance(Duration::from_secs(600) + WATCH_GRACE);
        assert_eq!(d.out.failure_count, 2);
        assert_eq!(d.inf.in_flight(), 0);
        // A watch ending at once without an event is an error too.
        d.advance(Duration::from_secs(2));
        d.answer(200, &[], true);
        assert_eq!(d.out.failure_count, 3);
        assert!(d.out.failures[2].contains("very short watch"));
    }

    #[test]
    fn a_page_over_the_limit_fails_the_list() {
        let mut d = Drive::new("");
        d.ep.page_limit = 100;
        d.answer(200, &[&list(5, "", &[("a", 3), ("b", 4)])], true);
        assert_eq!(d.out.failure_count, 1);
        assert!(d.out.failures[0].contains("page larger than 100 bytes"));
        assert!(!d.inf.synced);
    }
}
