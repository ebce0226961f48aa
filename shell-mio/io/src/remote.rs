//! Remote write in the daemon: for each `remote_write` entry, the core's
//! [`Queue`], a tail that reads the local WAL's records from disk, the queue's progress
//! file, and requests over the daemon's HTTP client.
//!
//! - **What the WAL holds, handed over in memory**: each acknowledgement of the WAL
//!   writer carries the records it wrote ([`trawl_io::storage::Written`], with their
//!   positions); a queue that has read everything before them takes them from there,
//!   without reading the segment back (page-cache copies, snappy, CRC). A queue that is
//!   behind (full, after an outage or a restart, or records past the hand-over bound)
//!   reads the segment files from its position instead, as the writer fills them
//!   (after acknowledgements, and every second), so an outage or a restart loses
//!   nothing the WAL still holds; while the queue is full it stops reading and the WAL
//!   is the buffer. Either way a record is fed at its WAL position: the queue cannot
//!   tell the two apart, and a record is never fed twice or skipped.
//! - **Progress** (`<data>/queues/<name>/progress`, `segment offset`) is written, by
//!   rename, when the queue's durable position has moved, at most once a second and at
//!   shutdown: after a restart, sending resumes there (series records before it are
//!   read again, their samples skipped; a crash may send again what the last second
//!   acknowledged, which receivers take as duplicates).
//! - **Retention** keeps every segment from the oldest one a queue still needs (a shared
//!   mark the WAL writer reads), unless the size bound forces it; a queue that finds a
//!   segment gone counts and logs the loss.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use trawl_core::config::{HttpClientConfig, RemoteWriteConfig};
use trawl_core::io::CredentialsFile;
use trawl_core::metrics::{Kind, Metrics, Series, Value};
use trawl_core::remote::encode::{RwMetadata, metadata_body};
use trawl_core::remote::queue::{Queue, QueueEvent, SendOutcome, WalPos};
use trawl_core::time::{Instant, Now};
use trawl_core::wal::segment;

use crate::storage::Written;

pub use crate::client::{Post, RemoteId};
use trawl_core::io::OwnedIoEvent;

/// A finished request: status, `Retry-After` and the start of the body; or the error.
type Answer = Result<(u16, Option<Duration>, String), String>;

/// A metric family of the queues: name, type, help, value.
type Family = (&'static str, Kind, &'static str, fn(&Runner) -> f64);

/// How remote write's requests go out: the daemon's mio client, or trawl-tokio's.
/// Answers come back through [`Remote::on_net`] under the same [`RemoteId`]s (a
/// sequence of remote write's own, apart from the agent's request ids).
pub trait Transport {
    /// Starts a POST.
    fn post(&mut self, id: RemoteId, p: Post<'_>);
    /// Abandons a request (its answer, if any comes, is ignored).
    fn cancel(&mut self, id: RemoteId);
}

/// How often the tail looks for new WAL data without being told.
const POLL: Duration = Duration::from_secs(1);

/// How often the tail looks at the files while records arrive in memory (a safety net:
/// every acknowledgement, at least once a second while scrapes store anything, brings
/// the records).
const HANDOVER_POLL: Duration = Duration::from_secs(5);

/// How often the progress file is written at most (a rename per acknowledged request
/// was 7 % of the daemon's CPU at 100 requests a second).
const PERSIST_EVERY: Duration = Duration::from_secs(1);

/// Most bytes read from a segment at once (grown for a larger record).
const READ_CHUNK: usize = 256 << 10;

#[derive(Debug)]
struct InFlight {
    runner: usize,
    /// The queue's request id; `None` for a metadata request (not the queue's).
    tx: Option<u64>,
    deadline: Instant,
    status: Option<(u16, Option<Duration>)>,
    body: Vec<u8>,
}

#[derive(Debug)]
struct Tail {
    segment: u32,
    offset: u64,
    /// The newest checkpoint whose series were read.
    checkpoint: Option<u32>,
}

#[derive(Debug)]
struct Runner {
    q: Queue,
    name: String,
    cfg: Arc<RemoteWriteConfig>,
    headers: Vec<(String, String)>,
    credentials: Option<CredentialsFile>,
    /// `sigv4`: each request is signed with the block's credentials.
    sigv4: Option<crate::aws::SigV4>,
    client: Arc<HttpClientConfig>,
    progress_path: PathBuf,
    persisted: Option<WalPos>,
    tail: Tail,
    /// Segments found deleted before this queue sent them.
    lost_segments: u64,
    next_poll: Instant,
    /// The last read stopped because the queue was full, not at the end of the WAL:
    /// read again as soon as the queue has room.
    behind: bool,
    /// When metadata goes out next (`metadata_config.send_interval`).
    next_metadata: Instant,
    /// Metadata requests acknowledged, and failed.
    metadata_sent: u64,
    metadata_failed: u64,
    /// Reads stopped because the queue was full.
    full_stops: u64,
    /// When the progress file may be written next; `closing`: at every pump.
    next_persist: Instant,
    closing: bool,
    /// The read buffer, kept between reads.
    buf: Vec<u8>,
    /// Records fed from the writer's hand-over, and read from segment files.
    from_memory: u64,
    from_files: u64,
    /// Handed-over records the queue had no room for yet, in order, following on from
    /// the tail (at most [`HELD_MAX`] bytes).
    held: std::collections::VecDeque<Written>,
    held_bytes: usize,
    /// The files hold records that were not handed over (a gap, a new segment, or the
    /// start): read them until the end of the WAL.
    files_needed: bool,
}

/// Most bytes of handed-over records a queue holds while it has no room for them
/// (about 3 s of 100 000 samples a second); past them, the files.
const HELD_MAX: usize = 4 << 20;

/// The agent's metric metadata: family, type, help, unit.
pub type Metadata = Vec<(String, trawl_core::exposition::MetricType, String, String)>;

/// Every remote-write queue of the configuration.
#[derive(Debug)]
pub struct Remote {
    runners: Vec<Runner>,
    wal_dir: PathBuf,
    next_id: u64,
    inflight: BTreeMap<RemoteId, InFlight>,
    keep_from: Arc<AtomicU32>,
}

fn segment_path(wal_dir: &Path, n: u32) -> PathBuf {
    wal_dir.join(format!("{n:08}"))
}

/// Segment numbers and checkpoint numbers in `wal/`, ascending.
fn listing(wal_dir: &Path) -> (Vec<u32>, Vec<u32>) {
    let mut segs = Vec::new();
    let mut cps = Vec::new();
    if let Ok(it) = std::fs::read_dir(wal_dir) {
        for e in it.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = name.strip_prefix("checkpoint.") {
                if let Ok(n) = n.parse() {
                    cps.push(n);
                }
            } else if name.len() == 8
                && let Ok(n) = name.parse()
            {
                segs.push(n);
            }
        }
    }
    segs.sort_unstable();
    cps.sort_unstable();
    (segs, cps)
}

/// The queue's name for metrics and its directory: `name`, or a hash of the URL (as
/// Prometheus names unnamed queues).
fn queue_name(cfg: &RemoteWriteConfig) -> String {
    if cfg.name.is_empty() {
        format!(
            "{:06x}",
            xxhash_rust::xxh3::xxh3_64(cfg.url.as_bytes()) & 0xff_ffff
        )
    } else {
        cfg.name.clone()
    }
}

fn cfg_interval(m: &trawl_core::config::remote_write::MetadataConfig) -> Duration {
    m.send_interval.to_std().max(Duration::from_millis(100))
}

fn read_progress(path: &Path) -> Option<WalPos> {
    let s = std::fs::read_to_string(path).ok()?;
    let mut it = s.split_whitespace();
    Some(WalPos {
        segment: it.next()?.parse().ok()?,
        offset: it.next()?.parse().ok()?,
    })
}

fn write_progress(path: &Path, p: WalPos) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{} {}\n", p.segment, p.offset))?;
    std::fs::rename(tmp, path)
}

impl Runner {
    /// Feeds checkpoint `n`'s series records.
    fn read_checkpoint(&mut self, wal_dir: &Path, n: u32) {
        let dir = wal_dir.join(format!("checkpoint.{n:08}"));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|it| it.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for f in files {
            let Ok(b) = std::fs::read(&f) else { continue };
            let (recs, _) = segment::read_segment(&b);
            for r in recs {
                if let Some(p) = r.payload() {
                    self.q.checkpoint_series(n, &p);
                }
            }
        }
        self.q.reset_series(n);
        self.tail.checkpoint = Some(n);
    }

    /// Reads WAL records while the queue wants them.
    fn read(&mut self, now: Now, wal_dir: &Path) {
        let mut chunk = READ_CHUNK;
        self.behind = true;
        while self.q.wants_records() {
            let path = segment_path(wal_dir, self.tail.segment);
            let mut f = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(_) => {
                    // Gone (retention forced by the size bound) or not written yet.
                    let (segs, cps) = listing(wal_dir);
                    match segs.iter().find(|&&s| s > self.tail.segment) {
                        Some(&next) => {
                            self.lost_segments += u64::from(next - self.tail.segment);
                            tracing::warn!(
                                queue = %self.name,
                                from = self.tail.segment,
                                to = next,
                                "WAL segments deleted before remote write sent them (size bound): their samples are lost to this queue"
                            );
                            if let Some(&c) = cps.iter().rfind(|&&c| c < next)
                                && self.tail.checkpoint.is_none_or(|x| x < c)
                            {
                                self.read_checkpoint(wal_dir, c);
                            }
                            self.tail.segment = next;
                            self.tail.offset = 0;
                            continue;
                        }
                        None => {
                            self.behind = false;
                            return;
                        }
                    }
                }
            };
            let len = f.metadata().map_or(0, |m| m.len());
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            if len > self.tail.offset {
                let want = ((len - self.tail.offset) as usize).min(chunk);
                // Into spare capacity, not zeroed first.
                buf.reserve_exact(want);
                let got = f
                    .seek(SeekFrom::Start(self.tail.offset))
                    .and_then(|_| (&mut f).take(want as u64).read_to_end(&mut buf));
                if got.is_err() {
                    self.buf = buf;
                    self.behind = false;
                    return;
                }
            }
            let (recs, _) = segment::read_segment_from(&buf, self.tail.offset as usize);
            let mut used = 0;
            for r in &recs {
                if !self.q.wants_records() {
                    // Full: the rest waits in the WAL, read again from here next time.
                    break;
                }
                used = r.end;
                let pos = WalPos {
                    segment: self.tail.segment,
                    offset: self.tail.offset + r.end as u64,
                };
                self.from_files += 1;
                match r.payload() {
                    Some(p) => self.q.handle_record(now, pos, &p),
                    None => {
                        tracing::warn!(queue = %self.name, segment = pos.segment, offset = pos.offset, "undecodable WAL record skipped")
                    }
                }
            }
            self.tail.offset += used as u64;
            let full = buf.len() == chunk;
            let any = !recs.is_empty();
            drop(recs);
            if buf.capacity() <= READ_CHUNK {
                self.buf = buf;
            }
            if any {
                chunk = READ_CHUNK;
                continue;
            }
            if full && (len - self.tail.offset) as usize > chunk {
                // A record larger than the chunk: read more of it at once.
                chunk *= 2;
                continue;
            }
            // Nothing new here: on to the next segment once the writer has moved on.
            let next = segment_path(wal_dir, self.tail.segment + 1);
            if !next.exists() {
                self.behind = false;
                self.files_needed = false;
                return;
            }
            self.tail.segment += 1;
            self.tail.offset = 0;
            let (_, cps) = listing(wal_dir);
            if let Some(&c) = cps.last()
                && c < self.tail.segment
                && self.tail.checkpoint.is_none_or(|x| x < c)
            {
                self.read_checkpoint(wal_dir, c);
            }
        }
        // The queue is full: reading waits for it (3.x's shards refuse the enqueue and
        // the WAL watcher retries).
        self.full_stops += 1;
    }

    /// Keeps the records the WAL writer handed over that follow on from what the
    /// tail has read or holds already; false if one does not (a gap: records left out
    /// past a bound, or a new segment and maybe a checkpoint), and the files must tell.
    fn offer(&mut self, written: &[Written]) -> bool {
        let mut last = self
            .held
            .back()
            .map_or((self.tail.segment, self.tail.offset), |w| {
                (w.segment, w.end)
            });
        for w in written {
            if (w.segment, w.end) <= last {
                // Read from the file, or held, already.
                continue;
            }
            if w.segment != last.0
                || w.after != last.1
                || self.held_bytes + w.payload.len() > HELD_MAX
            {
                self.files_needed = true;
                return false;
            }
            self.held_bytes += w.payload.len();
            self.held.push_back(w.clone());
            last = (w.segment, w.end);
        }
        true
    }

    /// Feeds held records while the queue has room.
    fn feed_held(&mut self, now: Now) {
        while let Some(w) = self.held.front() {
            let t = &self.tail;
            if (w.segment, w.end) <= (t.segment, t.offset) {
                // The file was read past it meanwhile.
            } else if w.segment != t.segment || w.after != t.offset {
                self.held.clear();
                self.held_bytes = 0;
                self.files_needed = true;
                return;
            } else if !self.q.wants_records() {
                self.behind = true;
                self.full_stops += 1;
                return;
            } else {
                let pos = WalPos {
                    segment: w.segment,
                    offset: w.end,
                };
                self.q.handle_record(now, pos, &w.payload);
                self.tail.offset = w.end;
                self.from_memory += 1;
            }
            if let Some(w) = self.held.pop_front() {
                self.held_bytes -= w.payload.len();
            }
        }
        self.behind = false;
    }

    /// The URL and headers of a request carrying `body`: the configured ones, signed
    /// when the entry has `sigv4` (at the wall time `now`, with credentials read again
    /// from their files now and then).
    fn request(
        &mut self,
        now: Now,
        body: &[u8],
    ) -> Result<(String, Vec<(String, String)>), String> {
        let mut headers = self.headers.clone();
        let Some(s) = &mut self.sigv4 else {
            return Ok((self.cfg.url.clone(), headers));
        };
        let creds = s
            .credentials(&crate::aws::ProcessEnv, std::time::Instant::now())
            .map_err(|e| format!("error retrieving credentials: {e}"))?;
        let (url, add) = trawl_core::auth::sigv4::sign_url(
            "POST",
            &self.cfg.url,
            &headers,
            body,
            &creds,
            &s.scope,
            now.wall,
        )
        .map_err(|e| format!("failed to sign request: {e}"))?;
        headers.extend(add);
        Ok((url, headers))
    }

    /// Posts `body` as request `id` (signed where the entry asks), or notes why the
    /// request could not be made (it then fails as a send fails).
    fn post(
        &mut self,
        now: Now,
        net: &mut dyn Transport,
        id: RemoteId,
        body: Arc<[u8]>,
        failed: &mut Vec<(RemoteId, String)>,
    ) {
        match self.request(now, &body) {
            Ok((url, headers)) => net.post(
                id,
                Post {
                    url: &url,
                    headers,
                    credentials_file: self.credentials.as_ref(),
                    body,
                    client: self.client.clone(),
                },
            ),
            Err(e) => failed.push((id, e)),
        }
    }

    fn persist(&mut self, now: Now) {
        if !self.closing && now.mono < self.next_persist {
            return;
        }
        let p = self.q.progress();
        if p != self.persisted
            && let Some(p) = p
        {
            self.next_persist = now.mono + PERSIST_EVERY;
            if let Err(e) = write_progress(&self.progress_path, p) {
                tracing::warn!(queue = %self.name, err = %e, "write remote-write progress");
            }
            self.persisted = Some(p);
        }
    }
}

impl Remote {
    /// The queues of `remote_write`, setting `keep_from` (the mark WAL retention
    /// respects) as they go, resuming from their progress files under `data_dir`.
    pub fn new(
        remote_write: &[RemoteWriteConfig],
        external_labels: &trawl_core::labels::Labels,
        data_dir: &Path,
        seed: u64,
        user_agent: &str,
        now: Now,
        keep_from: Arc<AtomicU32>,
    ) -> Result<Remote, String> {
        let wal_dir = data_dir.join("wal");
        let (segs, cps) = listing(&wal_dir);
        let mut runners = Vec::new();
        for (i, rw) in remote_write.iter().enumerate() {
            let cfg = Arc::new(rw.clone());
            let name = queue_name(&cfg);
            let dir = data_dir.join("queues").join(&name);
            std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
            let progress_path = dir.join("progress");
            let resume = read_progress(&progress_path);
            let (headers, credentials) = trawl_core::remote::request_headers(&cfg, user_agent);
            let sigv4 = match &cfg.sigv4 {
                Some(s) => Some(
                    crate::aws::SigV4::new(s, &crate::aws::ProcessEnv)
                        .map_err(|e| format!("remote_write {name}: {e}"))?,
                ),
                None => None,
            };
            let q = Queue::new(
                cfg.clone(),
                external_labels.clone(),
                resume,
                seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let first = segs.first().copied().unwrap_or(0);
            let mut r = Runner {
                q,
                name,
                client: Arc::new(cfg.http_client.clone()),
                cfg,
                headers,
                credentials,
                sigv4,
                progress_path,
                persisted: resume,
                tail: Tail {
                    segment: first,
                    offset: 0,
                    checkpoint: None,
                },
                lost_segments: 0,
                next_poll: now.mono,
                behind: false,
                next_metadata: now.mono + cfg_interval(&rw.metadata_config),
                metadata_sent: 0,
                metadata_failed: 0,
                full_stops: 0,
                next_persist: now.mono,
                closing: false,
                buf: Vec::new(),
                from_memory: 0,
                from_files: 0,
                held: std::collections::VecDeque::new(),
                held_bytes: 0,
                files_needed: true,
            };
            if let Some(&c) = cps.last() {
                r.read_checkpoint(&wal_dir, c);
                r.tail.segment = r.tail.segment.max(c + 1);
            }
            if let Some(p) = resume
                && p.segment < r.tail.segment
                && segs.first().is_some_and(|&f| f > p.segment)
            {
                tracing::warn!(queue = %r.name, resume = p.segment, first = r.tail.segment, "WAL segments the queue had not sent were deleted while trawl was down");
                r.lost_segments += u64::from(r.tail.segment - p.segment);
            }
            let url = trawl_core::http::redact_url(&r.cfg.url, trawl_core::http::REDACTED);
            match resume {
                Some(p) => {
                    tracing::info!(queue = %r.name, %url, segment = p.segment, offset = p.offset, "remote write queue started, resuming")
                }
                None => {
                    tracing::info!(queue = %r.name, %url, "remote write queue started from the WAL's start")
                }
            }
            runners.push(r);
        }
        let remote = Remote {
            runners,
            wal_dir,
            next_id: 1,
            inflight: BTreeMap::new(),
            keep_from,
        };
        remote.update_mark();
        Ok(remote)
    }

    /// True if there are no queues.
    pub fn is_empty(&self) -> bool {
        self.runners.is_empty()
    }

    fn update_mark(&self) {
        let m = self
            .runners
            .iter()
            .map(|r| r.q.progress().map_or(0, |p| p.segment))
            .min()
            .unwrap_or(u32::MAX);
        self.keep_from.store(m, Ordering::Release);
    }

    /// The writer acknowledged a write: `written` holds the records it wrote (see
    /// [`Written`]; empty if it kept none). A queue caught up takes them as they are;
    /// one that is not reads the segment files at the next [`Remote::pump`].
    pub fn wal_written(&mut self, now: Now, written: &[Written]) {
        for r in &mut self.runners {
            let followed = r.offer(written);
            r.feed_held(now);
            if followed && !r.files_needed && !written.is_empty() {
                // Caught up through memory: the files are only a safety net now.
                r.next_poll = now.mono + HANDOVER_POLL;
            } else {
                r.next_poll = now.mono;
            }
        }
    }

    /// Reads, sends and times out what is due at `now`.
    pub fn pump(&mut self, now: Now, net: &mut dyn Transport, metadata: &dyn Fn() -> Metadata) {
        // Requests past `remote_timeout`.
        let expired: Vec<RemoteId> = self
            .inflight
            .iter()
            .filter(|(_, f)| now.mono >= f.deadline)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            net.cancel(id);
            if let Some(f) = self.inflight.remove(&id)
                && let Some(r) = self.runners.get_mut(f.runner)
            {
                match f.tx {
                    Some(tx) => r.q.handle_response(
                        now,
                        tx,
                        SendOutcome::Failed("context deadline exceeded"),
                    ),
                    None => r.metadata_failed += 1,
                }
            }
        }
        // Requests that could not be made (credentials or signing failed): they fail as
        // a send fails, and are retried.
        let mut failed: Vec<(RemoteId, String)> = Vec::new();
        for (i, r) in self.runners.iter_mut().enumerate() {
            if !r.held.is_empty() && r.q.wants_records() {
                r.feed_held(now);
            }
            if r.held.is_empty() && (now.mono >= r.next_poll || (r.behind && r.q.wants_records())) {
                r.read(now, &self.wal_dir);
                r.next_poll = now.mono + POLL;
            }
            if r.q.poll_timeout().is_some_and(|t| now.mono >= t) {
                r.q.handle_timeout(now);
            }
            while let Some(t) = r.q.poll_transmit() {
                let id = RemoteId(self.next_id);
                self.next_id += 1;
                self.inflight.insert(
                    id,
                    InFlight {
                        runner: i,
                        tx: Some(t.id),
                        deadline: now.mono + r.cfg.remote_timeout.to_std(),
                        status: None,
                        body: Vec::new(),
                    },
                );
                r.post(now, net, id, t.body, &mut failed);
            }
            if r.cfg.metadata_config.send.0 && now.mono >= r.next_metadata {
                r.next_metadata = now.mono + cfg_interval(&r.cfg.metadata_config);
                // Metadata-only requests, as Prometheus sends them, at most
                // `max_samples_per_send` entries each.
                let all = metadata();
                let per = r.cfg.metadata_config.max_samples_per_send.max(1) as usize;
                for chunk in all.chunks(per) {
                    let entries: Vec<RwMetadata<'_>> = chunk
                        .iter()
                        .map(|(family, kind, help, unit)| RwMetadata {
                            kind: *kind,
                            family,
                            help,
                            unit,
                        })
                        .collect();
                    let Ok(z) = metadata_body(&entries) else {
                        continue;
                    };
                    let id = RemoteId(self.next_id);
                    self.next_id += 1;
                    self.inflight.insert(
                        id,
                        InFlight {
                            runner: i,
                            tx: None,
                            deadline: now.mono + r.cfg.remote_timeout.to_std(),
                            status: None,
                            body: Vec::new(),
                        },
                    );
                    r.post(now, net, id, Arc::from(z), &mut failed);
                }
            }
            while let Some(e) = r.q.poll_event() {
                log_event(&r.name, &e);
            }
            r.persist(now);
        }
        for (id, e) in failed {
            tracing::warn!(err = %e, "remote write request not sent");
            self.on_net(now, id, OwnedIoEvent::Failed(e));
        }
        self.update_mark();
    }

    /// A network event for one of remote write's requests.
    pub fn on_net(&mut self, now: Now, id: RemoteId, e: OwnedIoEvent) {
        let Some(f) = self.inflight.get_mut(&id) else {
            return;
        };
        let outcome_owned: Option<Answer> = match e {
            OwnedIoEvent::HttpHead(h) => {
                let retry = h
                    .header("Retry-After")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                f.status = Some((h.status, retry));
                None
            }
            OwnedIoEvent::HttpBody(b) => {
                let room = 1024usize.saturating_sub(f.body.len());
                f.body.extend_from_slice(&b[..b.len().min(room)]);
                None
            }
            OwnedIoEvent::HttpEnd => {
                let (code, retry) = f.status.unwrap_or((0, None));
                Some(Ok((
                    code,
                    retry,
                    String::from_utf8_lossy(&f.body).into_owned(),
                )))
            }
            OwnedIoEvent::Failed(m) => Some(Err(m)),
            // Not an HTTP event: never sent for a POST.
            _ => None,
        };
        let Some(done) = outcome_owned else { return };
        let Some(f) = self.inflight.remove(&id) else {
            return;
        };
        let Some(r) = self.runners.get_mut(f.runner) else {
            return;
        };
        let Some(tx) = f.tx else {
            // Metadata: sent again at the next interval either way.
            match &done {
                Ok((code, _, _)) if (200..300).contains(code) => r.metadata_sent += 1,
                Ok((code, _, body)) => {
                    r.metadata_failed += 1;
                    tracing::warn!(queue = %r.name, status = code, body = %body, "remote write refused metadata");
                }
                Err(m) => {
                    r.metadata_failed += 1;
                    tracing::warn!(queue = %r.name, err = %m, "remote write metadata not sent");
                }
            }
            return;
        };
        match &done {
            Ok((code, retry, body)) => r.q.handle_response(
                now,
                tx,
                SendOutcome::Status {
                    code: *code,
                    retry_after: *retry,
                    body,
                },
            ),
            Err(m) => r.q.handle_response(now, tx, SendOutcome::Failed(m)),
        }
    }

    /// When [`Remote::pump`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |y| y.min(x)));
        for r in &self.runners {
            at(r.next_poll);
            if r.cfg.metadata_config.send.0 {
                at(r.next_metadata);
            }
            if let Some(x) = r.q.poll_timeout() {
                at(x);
            }
        }
        for f in self.inflight.values() {
            at(f.deadline);
        }
        t
    }

    /// Cancels every request in flight (the queues are being replaced).
    pub fn abandon(&mut self, net: &mut dyn Transport) {
        for id in std::mem::take(&mut self.inflight).into_keys() {
            net.cancel(id);
        }
    }

    /// Stops reading and sends what is queued without waiting for full batches.
    pub fn close(&mut self, now: Now) {
        for r in &mut self.runners {
            r.closing = true;
            r.read(now, &self.wal_dir);
            r.q.close(now);
        }
    }

    /// True once every queue has read the whole WAL and sent what it read.
    pub fn is_idle(&self) -> bool {
        self.runners
            .iter()
            .all(|r| !r.behind && r.held.is_empty() && r.q.is_idle())
    }

    /// The `prometheus_remote_storage_*` families (3.x's `newQueueManagerMetrics`),
    /// one series per queue (`remote_name`, `url`).
    pub fn metrics(&self, m: &mut Metrics) {
        let families: [Family; 33] = [
            (
                "prometheus_remote_storage_samples_in_total",
                Kind::Counter,
                "Samples read from the WAL.",
                |r| r.q.stats().samples_in as f64,
            ),
            (
                "prometheus_remote_storage_samples_total",
                Kind::Counter,
                "Samples sent and acknowledged.",
                |r| r.q.stats().samples_sent as f64,
            ),
            (
                "prometheus_remote_storage_samples_failed_total",
                Kind::Counter,
                "Samples refused for good by the receiver.",
                |r| r.q.stats().samples_failed as f64,
            ),
            (
                "prometheus_remote_storage_samples_retried_total",
                Kind::Counter,
                "Samples in requests that were retried.",
                |r| r.q.stats().samples_retried as f64,
            ),
            (
                "prometheus_remote_storage_samples_dropped_total",
                Kind::Counter,
                "Samples dropped by write relabeling, of unknown series, or too old.",
                |r| r.q.stats().samples_dropped as f64,
            ),
            (
                "prometheus_remote_storage_samples_pending",
                Kind::Gauge,
                "Samples queued or in flight.",
                |r| r.q.stats().samples_pending as f64,
            ),
            (
                "prometheus_remote_storage_exemplars_in_total",
                Kind::Counter,
                "Exemplars read from the WAL (with send_exemplars).",
                |r| r.q.stats().exemplars_in as f64,
            ),
            (
                "prometheus_remote_storage_exemplars_total",
                Kind::Counter,
                "Exemplars sent and acknowledged.",
                |r| r.q.stats().exemplars_sent as f64,
            ),
            (
                "prometheus_remote_storage_exemplars_failed_total",
                Kind::Counter,
                "Exemplars refused for good by the receiver.",
                |r| r.q.stats().exemplars_failed as f64,
            ),
            (
                "prometheus_remote_storage_exemplars_dropped_total",
                Kind::Counter,
                "Exemplars of dropped or unknown series, or too old.",
                |r| r.q.stats().exemplars_dropped as f64,
            ),
            (
                "prometheus_remote_storage_exemplars_pending",
                Kind::Gauge,
                "Exemplars queued or in flight.",
                |r| r.q.stats().exemplars_pending as f64,
            ),
            (
                "prometheus_remote_storage_histograms_in_total",
                Kind::Counter,
                "Native histograms read from the WAL (with send_native_histograms).",
                |r| r.q.stats().histograms_in as f64,
            ),
            (
                "prometheus_remote_storage_histograms_total",
                Kind::Counter,
                "Native histograms sent and acknowledged.",
                |r| r.q.stats().histograms_sent as f64,
            ),
            (
                "prometheus_remote_storage_histograms_failed_total",
                Kind::Counter,
                "Native histograms refused for good by the receiver.",
                |r| r.q.stats().histograms_failed as f64,
            ),
            (
                "prometheus_remote_storage_histograms_dropped_total",
                Kind::Counter,
                "Native histograms of dropped or unknown series, or too old.",
                |r| r.q.stats().histograms_dropped as f64,
            ),
            (
                "prometheus_remote_storage_histograms_pending",
                Kind::Gauge,
                "Native histograms queued or in flight.",
                |r| r.q.stats().histograms_pending as f64,
            ),
            (
                "prometheus_remote_storage_bytes_total",
                Kind::Counter,
                "Compressed bytes acknowledged.",
                |r| r.q.stats().bytes_sent as f64,
            ),
            (
                "prometheus_remote_storage_exemplars_retried_total",
                Kind::Counter,
                "Exemplars in requests that were retried.",
                |r| r.q.stats().exemplars_retried as f64,
            ),
            (
                "prometheus_remote_storage_histograms_retried_total",
                Kind::Counter,
                "Native histograms in requests that were retried.",
                |r| r.q.stats().histograms_retried as f64,
            ),
            (
                "prometheus_remote_storage_enqueue_retries_total",
                Kind::Counter,
                "Total number of times enqueue has failed because a shards queue was full.",
                |r| r.full_stops as f64,
            ),
            (
                "prometheus_remote_storage_shards_max",
                Kind::Gauge,
                "The maximum number of shards that the queue is allowed to run.",
                |r| r.cfg.queue_config.max_shards as f64,
            ),
            (
                "prometheus_remote_storage_shards_min",
                Kind::Gauge,
                "The minimum number of shards that the queue is allowed to run.",
                |r| r.cfg.queue_config.min_shards as f64,
            ),
            (
                "prometheus_remote_storage_shard_capacity",
                Kind::Gauge,
                "The capacity of each shard of the queue used for parallel sending to the remote storage.",
                |r| r.cfg.queue_config.capacity as f64,
            ),
            (
                "prometheus_remote_storage_max_samples_per_send",
                Kind::Gauge,
                "The maximum number of samples to be sent, in a single request, to the remote storage.",
                |r| r.cfg.queue_config.max_samples_per_send as f64,
            ),
            (
                "prometheus_remote_storage_queue_highest_timestamp_seconds",
                Kind::Gauge,
                "Highest timestamp that was enqueued, in seconds since epoch.",
                |r| (r.q.stats().highest_enqueued_ms / 1000) as f64,
            ),
            (
                "prometheus_remote_storage_shards",
                Kind::Gauge,
                "Shards in use.",
                |r| r.q.stats().shards as f64,
            ),
            (
                "prometheus_remote_storage_shards_desired",
                Kind::Gauge,
                "Shards the rate calls for.",
                |r| r.q.stats().shards_desired,
            ),
            (
                "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
                Kind::Gauge,
                "Newest sample timestamp acknowledged.",
                |r| r.q.stats().highest_sent_ms as f64 / 1000.0,
            ),
            (
                "prometheus_remote_storage_metadata_total",
                Kind::Counter,
                "Metadata requests acknowledged.",
                |r| r.metadata_sent as f64,
            ),
            (
                "prometheus_remote_storage_metadata_failed_total",
                Kind::Counter,
                "Metadata requests that failed.",
                |r| r.metadata_failed as f64,
            ),
            (
                "trawl_remote_storage_wal_segments_lost_total",
                Kind::Counter,
                "WAL segments deleted (size bound) before this queue sent them.",
                |r| r.lost_segments as f64,
            ),
            (
                "trawl_remote_storage_wal_records_handed_over_total",
                Kind::Counter,
                "WAL records this queue took from the writer in memory.",
                |r| r.from_memory as f64,
            ),
            (
                "trawl_remote_storage_wal_records_read_total",
                Kind::Counter,
                "WAL records this queue read back from segment files (behind, or after a restart).",
                |r| r.from_files as f64,
            ),
        ];
        for (name, kind, help, get) in families {
            let f = m.family(name, help, kind);
            for r in &self.runners {
                f.series.push(Series {
                    labels: self.queue_labels(r),
                    value: Value::Number(get(r)),
                });
            }
        }
        for r in &self.runners {
            m.histogram(
                "prometheus_remote_storage_sent_batch_duration_seconds",
                "Duration of send calls to the remote storage.",
                self.queue_labels(r),
                r.q.send_durations(),
            );
        }
        for r in &self.runners {
            m.gauge(
                "prometheus_wal_watcher_current_segment",
                "Current segment the WAL watcher is reading records from.",
                vec![("consumer", r.name.clone())],
                r.tail.segment as f64,
            );
        }
        if !self.runners.is_empty() {
            // What remote storage received last: trawl's queues read the WAL, so this
            // is the newest timestamp any queue enqueued.
            let highest = self
                .runners
                .iter()
                .map(|r| r.q.stats().highest_enqueued_ms)
                .max()
                .unwrap_or(0);
            m.gauge(
                "prometheus_remote_storage_highest_timestamp_in_seconds",
                "Highest timestamp that has come into the remote storage via the Appender interface, in seconds since epoch. Initialized to 0 when no data has been received yet.",
                vec![],
                (highest / 1000) as f64,
            );
        }
    }

    fn queue_labels(&self, r: &Runner) -> Vec<(&'static str, String)> {
        vec![
            ("remote_name", r.name.clone()),
            (
                "url",
                trawl_core::http::redact_url(&r.cfg.url, trawl_core::http::REDACTED).into_owned(),
            ),
        ]
    }
}

fn log_event(queue: &str, e: &QueueEvent) {
    match e {
        QueueEvent::Dropped {
            status,
            samples,
            body,
        } => {
            tracing::error!(queue, status, samples, body = %body, "remote write refused a batch for good; its samples are dropped")
        }
        QueueEvent::Retrying {
            error,
            attempt,
            after,
        } => {
            tracing::warn!(queue, err = %error, attempt, after = %trawl_core::metrics::go_duration(*after), "remote write failed; retrying")
        }
        QueueEvent::Recovered => tracing::info!(queue, "remote write succeeds again"),
        QueueEvent::Resharded { from, to } => {
            tracing::info!(queue, from, to, "remote write resharded")
        }
        QueueEvent::BadRecord { pos } => {
            tracing::warn!(
                queue,
                segment = pos.segment,
                offset = pos.offset,
                "undecodable WAL record skipped"
            )
        }
    }
}
