//! Service-discovery providers as sans-IO machines. Each one asks for IO through the
//! shared [`IoQueue`], hears back through `handle_io`, keeps its own deadline, and reports
//! target-group batches (and failures) in an [`SdOut`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::groups::{self, DocFormat, glob_match, name_groups, parse_target_groups, split_pattern};
use crate::config::{FileSdConfig, HttpClientConfig, HttpSdConfig, TargetGroup};
use crate::io::{self, HttpRequest, IoEvent, IoOp, IoQueue, Origin, RequestId};
use crate::time::Instant;

/// What one call into a provider produced.
#[derive(Debug, Default)]
pub(crate) struct SdOut {
    /// Target-group batches, in order (each replaces the groups of its sources).
    pub(crate) updates: Vec<Vec<TargetGroup>>,
    /// Failures to report (the provider keeps its previous groups).
    pub(crate) failures: Vec<String>,
    /// `prometheus_sd_file_read_errors_total` increments.
    pub(crate) file_read_errors: u64,
    /// `prometheus_sd_file_watcher_errors_total` increments.
    pub(crate) file_watcher_errors: u64,
    /// `prometheus_sd_http_failures_total` increments.
    pub(crate) http_failures: u64,
}

/// Limits and identity the providers need from the agent.
#[derive(Clone, Debug)]
pub(crate) struct SdEnv {
    pub(crate) user_agent: Arc<str>,
    /// Largest SD file or HTTP SD body accepted.
    pub(crate) body_limit: u64,
}

/// One provider's machine.
#[derive(Debug)]
pub(crate) enum Machine {
    /// `static_configs`: one batch at start, nothing after.
    Static(Vec<TargetGroup>),
    /// `file_sd_configs`.
    File(FileSd),
    /// `http_sd_configs`.
    Http(HttpSd),
}

impl Machine {
    pub(crate) fn start(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        match self {
            Machine::Static(groups) => out.updates.push(groups.clone()),
            Machine::File(f) => f.start(now, io, out),
            Machine::Http(h) => h.refresh(now, io),
        }
    }

    /// True if `id` belongs to this provider's operations.
    pub(crate) fn owns(&self, id: RequestId) -> bool {
        match self {
            Machine::Static(_) => false,
            Machine::File(f) => f.owns(id),
            Machine::Http(h) => h.in_flight.as_ref().is_some_and(|x| x.id == id),
        }
    }

    pub(crate) fn handle_io(
        &mut self,
        now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        match self {
            Machine::Static(_) => {}
            Machine::File(f) => f.handle_io(now, id, ev, io, out),
            Machine::Http(h) => h.handle_io(now, id, ev, io, out),
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        match self {
            Machine::Static(_) => {}
            Machine::File(f) => f.handle_timeout(now, io, out),
            Machine::Http(h) => h.handle_timeout(now, io, out),
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Machine::Static(_) => None,
            Machine::File(f) => Some(f.next_refresh),
            Machine::Http(h) => Some(match &h.in_flight {
                Some(x) => x.deadline.min(h.next_refresh),
                None => h.next_refresh,
            }),
        }
    }

    /// Cancels every operation in flight; the machine is dropped afterwards.
    pub(crate) fn stop(&mut self, io: &mut IoQueue) {
        match self {
            Machine::Static(_) => {}
            Machine::File(f) => {
                for id in f.watches.keys() {
                    io.cancel(*id);
                }
                if let Some(r) = &f.refresh {
                    for id in r.listings.keys().chain(r.reads.keys()) {
                        io.cancel(*id);
                    }
                }
            }
            Machine::Http(h) => {
                if let Some(x) = &h.in_flight {
                    io.cancel(x.id);
                }
            }
        }
    }

    /// Number of operations in flight (for the bounded-queue invariant).
    pub(crate) fn in_flight(&self) -> usize {
        match self {
            Machine::Static(_) => 0,
            Machine::File(f) => {
                f.watches.len()
                    + f.refresh
                        .as_ref()
                        .map_or(0, |r| r.listings.len() + r.reads.len())
            }
            Machine::Http(h) => usize::from(h.in_flight.is_some()),
        }
    }
}

/// File discovery: list each pattern's directory, read the matching files, watch the
/// directories, refresh on every change and every `refresh_interval`.
#[derive(Debug)]
pub(crate) struct FileSd {
    /// `(directory, last component)` of each pattern.
    patterns: Vec<(String, String)>,
    /// The distinct directories.
    dirs: BTreeSet<String>,
    interval: Duration,
    limit: u64,
    watches: BTreeMap<RequestId, String>,
    refresh: Option<FileRefresh>,
    /// Changes seen while a refresh was running: run another when it ends, of all files
    /// if `rerun_all`, else of the named paths.
    rerun_all: bool,
    rerun_paths: BTreeSet<String>,
    /// Groups each file produced at its last successful read.
    counts: BTreeMap<String, usize>,
    next_refresh: Instant,
}

/// What a refresh learned about one file.
#[derive(Debug)]
enum FileState {
    /// Read and parsed.
    Read(Vec<TargetGroup>),
    /// Could not be read or parsed: keeps what it had.
    Failed,
    /// Does not exist (any more): its groups go.
    Gone,
    /// Read requested, answer pending.
    Pending,
}

#[derive(Debug, Default)]
struct FileRefresh {
    listings: BTreeMap<RequestId, String>,
    reads: BTreeMap<RequestId, String>,
    /// Every file the patterns matched.
    files: BTreeMap<String, FileState>,
    /// A full refresh (listings, every matched file read); else only named files.
    all: bool,
}

impl FileSd {
    pub(crate) fn new(cfg: &FileSdConfig, env: &SdEnv, now: Instant) -> FileSd {
        let patterns: Vec<(String, String)> = cfg.files.iter().map(|p| split_pattern(p)).collect();
        FileSd {
            dirs: patterns.iter().map(|(d, _)| d.clone()).collect(),
            patterns,
            interval: cfg.refresh_interval.to_std(),
            limit: env.body_limit,
            watches: BTreeMap::new(),
            refresh: None,
            rerun_all: false,
            rerun_paths: BTreeSet::new(),
            counts: BTreeMap::new(),
            next_refresh: now,
        }
    }

    fn owns(&self, id: RequestId) -> bool {
        self.watches.contains_key(&id)
            || self
                .refresh
                .as_ref()
                .is_some_and(|r| r.listings.contains_key(&id) || r.reads.contains_key(&id))
    }

    fn start(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        self.begin_refresh(now, None, io, out);
    }

    fn ensure_watches(&mut self, io: &mut IoQueue) {
        let watched: BTreeSet<&String> = self.watches.values().collect();
        let missing: Vec<String> = self
            .dirs
            .iter()
            .filter(|d| !watched.contains(d))
            .cloned()
            .collect();
        for dir in missing {
            let id = io.start(IoOp::Watch { path: dir.clone() });
            self.watches.insert(id, dir);
        }
    }

    /// Starts a refresh: of every file (`only == None`: list the directories, read what
    /// matches), or of the named paths only (read them; no listing).
    fn begin_refresh(
        &mut self,
        now: Instant,
        only: Option<BTreeSet<String>>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        if only.is_none() {
            // The periodic deadline moves on with every full refresh, even one that
            // has to wait for the running refresh to end.
            self.next_refresh = now + self.interval;
        }
        if self.refresh.is_some() {
            match only {
                Some(p) => self.rerun_paths.extend(p),
                None => self.rerun_all = true,
            }
            return;
        }
        self.ensure_watches(io);
        let mut r = FileRefresh {
            all: only.is_none(),
            ..FileRefresh::default()
        };
        match only {
            None => {
                for dir in &self.dirs {
                    let id = io.start(IoOp::ListDir { path: dir.clone() });
                    r.listings.insert(id, dir.clone());
                }
            }
            Some(paths) => {
                for path in paths {
                    r.files.insert(path.clone(), FileState::Pending);
                    let rid = io.start(IoOp::ReadFile {
                        path: path.clone(),
                        limit: self.limit,
                    });
                    r.reads.insert(rid, path);
                }
            }
        }
        self.refresh = Some(r);
        self.maybe_finish(now, io, out);
    }

    fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        if now >= self.next_refresh {
            self.begin_refresh(now, None, io, out);
        }
    }

    fn handle_io(
        &mut self,
        now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        if let Some(dir) = self.watches.get(&id).cloned() {
            match ev {
                IoEvent::Changed { name: None } => self.begin_refresh(now, None, io, out),
                // Only a name some pattern of this directory matches can matter.
                IoEvent::Changed { name: Some(name) }
                    if self
                        .patterns
                        .iter()
                        .any(|(d, base)| *d == dir && glob_match(base, name)) =>
                {
                    let path = groups::join(&dir, name);
                    self.begin_refresh(now, Some(BTreeSet::from([path])), io, out);
                }
                IoEvent::Failed(e) => {
                    self.watches.remove(&id);
                    out.file_watcher_errors += 1;
                    out.failures
                        .push(format!("watching directory {dir:?} failed: {e}"));
                }
                _ => {}
            }
            return;
        }
        let Some(r) = self.refresh.as_mut() else {
            return;
        };
        if let Some(dir) = r.listings.remove(&id) {
            // A directory that cannot be listed matches nothing (as a glob would).
            if let IoEvent::DirEntries(names) = ev {
                let prefix = groups::join(&dir, "");
                let mut path = String::new();
                for (pdir, base) in &self.patterns {
                    if *pdir != dir {
                        continue;
                    }
                    for name in names {
                        if !glob_match(base, name) {
                            continue;
                        }
                        path.clear();
                        path.push_str(&prefix);
                        path.push_str(name);
                        if r.files.contains_key(&path) {
                            continue;
                        }
                        r.files.insert(path.clone(), FileState::Pending);
                        let rid = io.start(IoOp::ReadFile {
                            path: path.clone(),
                            limit: self.limit,
                        });
                        r.reads.insert(rid, path.clone());
                    }
                }
            }
        } else if let Some(path) = r.reads.remove(&id) {
            if let IoEvent::NotFound = ev {
                // Gone: its groups go (a missing file is no error).
                r.files.insert(path, FileState::Gone);
                self.maybe_finish(now, io, out);
                return;
            }
            let parsed = match ev {
                IoEvent::FileData(data) => parse_target_groups(data, DocFormat::for_path(&path)),
                IoEvent::Failed(e) => Err(e.to_owned()),
                _ => Err("unexpected answer to a file read".to_owned()),
            };
            match parsed {
                Ok(mut g) => {
                    name_groups(&mut g, &path, "__meta_filepath");
                    r.files.insert(path, FileState::Read(g));
                }
                Err(e) => {
                    r.files.insert(path.clone(), FileState::Failed);
                    out.file_read_errors += 1;
                    out.failures
                        .push(format!("error reading file {path:?}: {e}"));
                }
            }
        }
        self.maybe_finish(now, io, out);
    }

    fn maybe_finish(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        let done = self
            .refresh
            .as_ref()
            .is_some_and(|r| r.listings.is_empty() && r.reads.is_empty());
        if !done {
            return;
        }
        // `done` implies a refresh is present.
        let Some(r) = self.refresh.take() else { return };
        let mut batch = Vec::new();
        // Files that vanished: every group they had becomes an empty group. A full
        // refresh knows from its listings; a targeted one from the files it read.
        let vanished: Vec<String> = self
            .counts
            .keys()
            .filter(|p| match r.files.get(*p) {
                Some(state) => matches!(state, FileState::Gone),
                None => r.all,
            })
            .cloned()
            .collect();
        for path in vanished {
            let old = self.counts.remove(&path).unwrap_or(0);
            for i in 0..old {
                batch.push(empty_group(format!("{path}:{i}")));
            }
        }
        for (path, state) in r.files {
            match state {
                FileState::Read(g) => {
                    let n = g.len();
                    let old = self.counts.insert(path.clone(), n).unwrap_or(0);
                    batch.extend(g);
                    for i in n..old {
                        batch.push(empty_group(format!("{path}:{i}")));
                    }
                }
                // Gone: handled above. Failed: keeps what it had.
                FileState::Gone | FileState::Failed | FileState::Pending => {}
            }
        }
        out.updates.push(batch);
        let paths = std::mem::take(&mut self.rerun_paths);
        if std::mem::take(&mut self.rerun_all) {
            self.begin_refresh(now, None, io, out);
        } else if !paths.is_empty() {
            // One refresh for all the paths that changed meanwhile.
            self.begin_refresh(now, Some(paths), io, out);
        }
    }
}

fn empty_group(source: String) -> TargetGroup {
    TargetGroup {
        source,
        ..TargetGroup::default()
    }
}

/// HTTP discovery: GET the URL at start and every `refresh_interval`.
#[derive(Debug)]
pub(crate) struct HttpSd {
    url: String,
    interval: Duration,
    client: Arc<HttpClientConfig>,
    user_agent: Arc<str>,
    limit: u64,
    name: Arc<str>,
    in_flight: Option<HttpFetch>,
    next_refresh: Instant,
    /// Groups in the last successful answer.
    prev_count: usize,
}

#[derive(Debug)]
struct HttpFetch {
    id: RequestId,
    deadline: Instant,
    error: Option<String>,
    body: Vec<u8>,
}

/// True for `application/json`, optionally `;charset=utf-8` (quoted or not, any case).
pub(crate) fn json_content_type(ct: &str) -> bool {
    let ct = ct.trim().to_ascii_lowercase();
    let Some(rest) = ct.strip_prefix("application/json") else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(params) = rest.strip_prefix(';') else {
        return false;
    };
    matches!(params.trim_start(), "charset=utf-8" | "charset=\"utf-8\"")
}

impl HttpSd {
    pub(crate) fn new(cfg: &HttpSdConfig, env: &SdEnv, name: Arc<str>, now: Instant) -> HttpSd {
        HttpSd {
            url: cfg.url.clone(),
            interval: cfg.refresh_interval.to_std(),
            client: Arc::new(cfg.http_client.clone()),
            user_agent: env.user_agent.clone(),
            limit: env.body_limit,
            name,
            in_flight: None,
            next_refresh: now,
            prev_count: 0,
        }
    }

    fn refresh(&mut self, now: Instant, io: &mut IoQueue) {
        self.next_refresh = now + self.interval;
        if self.in_flight.is_some() {
            return;
        }
        let mut headers = vec![
            ("User-Agent".to_owned(), self.user_agent.to_string()),
            ("Accept".to_owned(), "application/json".to_owned()),
            (
                "X-Prometheus-Refresh-Interval-Seconds".to_owned(),
                io::seconds_string(self.interval),
            ),
        ];
        let credentials_file = io::add_auth(&self.client, &mut headers);
        let id = io.start(IoOp::Http(HttpRequest {
            url: self.url.clone(),
            headers,
            credentials_file,
            client: self.client.clone(),
            body_limit: self.limit,
            timeout: self.interval,
            origin: Origin::Discovery {
                provider: self.name.clone(),
            },
        }));
        self.in_flight = Some(HttpFetch {
            id,
            deadline: now + self.interval,
            error: None,
            body: Vec::new(),
        });
    }

    fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        if let Some(x) = self.in_flight.as_ref().filter(|x| now >= x.deadline) {
            io.cancel(x.id);
            self.in_flight = None;
            self.fail(
                out,
                format!(
                    "Get {:?}: context deadline exceeded",
                    crate::http::redact_url(&self.url, crate::http::STRIPPED)
                ),
            );
        }
        if now >= self.next_refresh {
            self.refresh(now, io);
        }
    }

    fn fail(&self, out: &mut SdOut, e: String) {
        out.http_failures += 1;
        out.failures.push(e);
    }

    fn handle_io(
        &mut self,
        _now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        let Some(x) = self.in_flight.as_mut().filter(|x| x.id == id) else {
            return;
        };
        match ev {
            IoEvent::HttpHead {
                status,
                reason,
                headers,
            } => {
                if status != 200 {
                    x.error = Some(format!("server returned HTTP status {status} {reason}"));
                } else {
                    let ct = io::header(headers, "content-type").unwrap_or("");
                    if !json_content_type(ct) {
                        x.error = Some(format!("unsupported content type {ct:?}"));
                    }
                }
                if x.error.is_some() {
                    // Nothing more is needed from this response.
                    io.cancel(id);
                    let e = x.error.take();
                    self.in_flight = None;
                    self.fail(out, e.unwrap_or_default());
                }
            }
            IoEvent::HttpBody(chunk) => {
                if self.limit > 0 && (x.body.len() + chunk.len()) as u64 > self.limit {
                    io.cancel(id);
                    self.in_flight = None;
                    let limit = self.limit;
                    self.fail(out, format!("response body exceeds {limit} bytes"));
                } else {
                    // Grow by doubling, but never past the limit: a body at the limit
                    // holds the limit, not twice it.
                    let need = x.body.len() + chunk.len();
                    if need > x.body.capacity() && self.limit > 0 {
                        let want = (x.body.capacity() * 2).max(need).min(self.limit as usize);
                        x.body.reserve_exact(want - x.body.len());
                    }
                    x.body.extend_from_slice(chunk);
                }
            }
            IoEvent::HttpEnd => {
                let body = std::mem::take(&mut x.body);
                self.in_flight = None;
                match parse_target_groups(&body, DocFormat::Json) {
                    Ok(mut g) => {
                        name_groups(&mut g, &self.url, "__meta_url");
                        let n = g.len();
                        for i in n..self.prev_count {
                            g.push(empty_group(format!("{}:{i}", self.url)));
                        }
                        self.prev_count = n;
                        out.updates.push(g);
                    }
                    Err(e) => {
                        let url = crate::http::redact_url(&self.url, crate::http::STRIPPED);
                        self.fail(out, format!("{url}: {e}"))
                    }
                }
            }
            IoEvent::Failed(e) => {
                self.in_flight = None;
                let url = crate::http::redact_url(&self.url, crate::http::STRIPPED);
                self.fail(out, format!("Get {url:?}: {e}"));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        for ok in [
            "application/json",
            "application/json;charset=utf-8",
            "application/json;charset=UTF-8",
            "Application/JSON;Charset=\"utf-8\"",
            "application/json; charset=\"utf-8\"",
        ] {
            assert!(json_content_type(ok), "{ok}");
        }
        for bad in [
            "application/jsonl; charset=\"utf-8\"",
            "application/json;charset=UTF-9",
            "application /json;charset=UTF-8",
            "application/ json;charset=UTF-8",
            "application/json;",
            "charset=UTF-8",
        ] {
            assert!(!json_content_type(bad), "{bad}");
        }
    }
}
