//! `file_sd_configs`: target groups read from JSON or YAML files (globs in the last path
//! component), re-read on every change the directory watch reports and every
//! `refresh_interval`. Follows 3.x's `discovery/file` (`Discovery.refresh`, `readFile`):
//! a file that cannot be read or parsed keeps its previous groups; a file that is gone
//! loses them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use super::groups::{
    self, DocFormat, TargetGroup, empty_group, glob_match, name_groups, parse_target_groups,
    split_pattern,
};
use super::mechanism::{Counter, Invalid, MachineContext, Mechanism, SdContext, SdMachine, SdOut};
use crate::common::paths::join_dir;
use crate::common::yaml::{LenientString, Nullable, Path};
use crate::duration::PromDuration;
use crate::goquote::quote;
use crate::io::{IoEvent, IoOp, IoQueue, RequestId};
use crate::time::Instant;

/// `prometheus_sd_file_read_errors_total`.
const READ_ERRORS: &str = "prometheus_sd_file_read_errors_total";
/// `prometheus_sd_file_watcher_errors_total`.
const WATCHER_ERRORS: &str = "prometheus_sd_file_watcher_errors_total";

/// The mechanism.
#[derive(Debug)]
pub(crate) struct File;

impl Mechanism for File {
    const KEY: &'static str = "file_sd_configs";
    const EXAMPLE: Option<&'static str> = Some("{files: ['/sd/*.json', '/sd/*.yml']}");
    const NAME: &'static str = "file";
    const GO_TYPE: &'static str = "file.plain";
    const RUNS: bool = true;
    const COUNTERS: &'static [Counter] = &[
        Counter {
            name: READ_ERRORS,
            labels: &[],
            help: "The number of File-SD read errors.",
        },
        Counter {
            name: WATCHER_ERRORS,
            labels: &[],
            help: "The number of File-SD errors caused by filesystem watch failures.",
        },
    ];
    type Raw = RawFileSd;
    type Config = FileSdConfig;

    fn validate(raw: RawFileSd, cx: &SdContext<'_>) -> Result<FileSdConfig, Invalid> {
        raw.validate(cx).map_err(|e| (Path::default(), e))
    }

    fn machine(cfg: &FileSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        Some(Box::new(FileSd::new(cfg, cx)))
    }
}

/// `file_sd_configs` entry as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFileSd {
    #[serde(default)]
    files: Option<Vec<LenientString>>,
    #[serde(default)]
    refresh_interval: Nullable<PromDuration>,
}

/// File-based discovery: files (globs allowed in the last path component) re-read on
/// change and every `refresh_interval`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileSdConfig {
    /// Patterns, resolved against the config file's directory.
    pub files: Vec<String>,
    /// Periodic re-read (default 5m).
    pub refresh_interval: PromDuration,
}

/// True for `^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$`.
fn valid_file_sd_pattern(p: &str) -> bool {
    let Some(dot) = p.rfind('.') else {
        return false;
    };
    if !matches!(
        &p[dot + 1..],
        "json" | "yml" | "yaml" | "JSON" | "YML" | "YAML"
    ) {
        return false;
    }
    let stem = &p[..dot];
    match stem.find('*') {
        None => true,
        Some(i) => !stem[i + 1..].contains('/'),
    }
}

impl RawFileSd {
    fn validate(self, cx: &SdContext<'_>) -> Result<FileSdConfig, String> {
        // Null (the whole list or an entry) leaves Go's zero value: no list, an empty
        // path.
        let raw_files: Vec<String> = self
            .files
            .unwrap_or_default()
            .into_iter()
            .map(|f| f.0)
            .collect();
        if raw_files.is_empty() {
            return Err("file service discovery config must contain at least one path name".into());
        }
        let mut files = Vec::with_capacity(raw_files.len());
        for f in raw_files {
            if !valid_file_sd_pattern(&f) {
                return Err(format!(
                    "path name {} is not valid for file discovery",
                    quote(&f)
                ));
            }
            files.push(join_dir(cx.paths.dir, &f));
        }
        Ok(FileSdConfig {
            files,
            refresh_interval: self
                .refresh_interval
                .value()
                .unwrap_or(PromDuration::from_secs(300)),
        })
    }
}

/// File discovery: list each pattern's directory, read the matching files, watch the
/// directories, refresh on every change and every `refresh_interval`.
#[derive(Debug)]
struct FileSd {
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
    fn new(cfg: &FileSdConfig, cx: &MachineContext<'_>) -> FileSd {
        let patterns: Vec<(String, String)> = cfg.files.iter().map(|p| split_pattern(p)).collect();
        FileSd {
            dirs: patterns.iter().map(|(d, _)| d.clone()).collect(),
            patterns,
            interval: cfg.refresh_interval.to_std(),
            limit: cx.env.body_limit,
            watches: BTreeMap::new(),
            refresh: None,
            rerun_all: false,
            rerun_paths: BTreeSet::new(),
            counts: BTreeMap::new(),
            next_refresh: cx.now,
        }
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

    fn on_io(
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
                    out.count(WATCHER_ERRORS, 1);
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
                    out.count(READ_ERRORS, 1);
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

impl SdMachine for FileSd {
    fn start(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        self.begin_refresh(now, None, io, out);
    }

    fn owns(&self, id: RequestId) -> bool {
        self.watches.contains_key(&id)
            || self
                .refresh
                .as_ref()
                .is_some_and(|r| r.listings.contains_key(&id) || r.reads.contains_key(&id))
    }

    fn handle_io(
        &mut self,
        now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        self.on_io(now, id, ev, io, out);
    }

    fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        if now >= self.next_refresh {
            self.begin_refresh(now, None, io, out);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_refresh)
    }

    fn stop(&mut self, io: &mut IoQueue) {
        for id in self.watches.keys() {
            io.cancel(*id);
        }
        if let Some(r) = &self.refresh {
            for id in r.listings.keys().chain(r.reads.keys()) {
                io.cancel(*id);
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.watches.len()
            + self
                .refresh
                .as_ref()
                .map_or(0, |r| r.listings.len() + r.reads.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_sd_patterns() {
        // The regex allows further `*` after the first, but no `/`.
        for ok in [
            "a.json",
            "dir/*.yml",
            "/x/y/foo*.yaml",
            "*.JSON",
            "a*b.yml",
            "a**.json",
        ] {
            assert!(valid_file_sd_pattern(ok), "{ok}");
        }
        for bad in ["a.txt", "*/a.json", "a*/b.yml", "json", "a*.b.c"] {
            assert!(!valid_file_sd_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn null_files_are_go_zero_values() {
        use crate::discovery::mechanism::test_support::{error, error_at};
        let key = "file_sd_configs";
        assert_eq!(
            error_at(key, "files: ~"),
            (
                4,
                9,
                "file service discovery config must contain at least one path name".into()
            )
        );
        assert_eq!(
            error(key, "files: [a.json, ~]"),
            r#"path name "" is not valid for file discovery"#
        );
        assert_eq!(
            error(key, "files: [a.json]\nno_such: 1"),
            "field no_such not found in type file.plain"
        );
    }
}
