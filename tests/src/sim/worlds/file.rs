//! File discovery's world: JSON and YAML files in a directory, rewritten (valid, garbage
//! or deleted) now and then, with an inotify-like watch that names the changed entries
//! (or, sometimes, only says that something changed).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use trawl_core::io::{IoOp, OwnedIoEvent, RequestId};

use super::{Answer, Reply, SdWorld, WorldJob};
use crate::sim::Rng;

/// The directory the files live in.
pub(crate) const SD_DIR: &str = "/sim/sd";

/// The world.
#[derive(Debug, Default)]
pub(crate) struct FileWorld {
    /// Name → content.
    files: BTreeMap<String, String>,
    /// Addresses each file declares; `None` for garbage (the agent keeps what the file
    /// declared last, if its provider saw a good version).
    file_addrs: BTreeMap<String, Option<Vec<String>>>,
    /// The watch on the directory, if the agent holds one.
    watch: Option<RequestId>,
    /// Some job of the configuration in force uses file SD.
    in_use: bool,
}

impl FileWorld {
    /// Rewrites some files (valid JSON/YAML, garbage, or deleted); returns their names.
    fn rewrite(&mut self, rng: &mut Rng, pool: &[String], all_valid: bool) -> Vec<&'static str> {
        let mut changed = Vec::new();
        for name in ["a.json", "b.json", "c.yml"] {
            if !all_valid && !rng.chance(50) {
                continue;
            }
            changed.push(name);
            let roll = if all_valid { 99 } else { rng.below(100) };
            if roll < 10 {
                self.files.remove(name);
                self.file_addrs.remove(name);
            } else if roll < 20 {
                // Garbage: the agent must keep the file's previous targets.
                self.files.insert(name.into(), "[{\"targets\": [".into());
                if self.in_use {
                    self.file_addrs.entry(name.into()).or_insert(None);
                } else {
                    // No provider remembers an earlier good version.
                    self.file_addrs.insert(name.into(), None);
                }
            } else {
                let picked: Vec<String> = pool.iter().filter(|_| rng.chance(25)).cloned().collect();
                let content = if name.ends_with(".yml") {
                    let mut s = String::new();
                    for chunk in picked.chunks(3) {
                        let quoted: Vec<String> = chunk.iter().map(|a| format!("'{a}'")).collect();
                        let _ = writeln!(s, "- targets: [{}]", quoted.join(", "));
                        let _ = writeln!(s, "  labels: {{source: yaml}}");
                    }
                    if s.is_empty() {
                        s = "[]\n".into();
                    }
                    s
                } else {
                    let groups: Vec<String> = picked
                        .chunks(2)
                        .map(|c| {
                            let t: Vec<String> = c.iter().map(|a| format!("\"{a}\"")).collect();
                            format!("{{\"targets\": [{}]}}", t.join(","))
                        })
                        .collect();
                    format!("[{}]", groups.join(","))
                };
                self.files.insert(name.into(), content);
                self.file_addrs.insert(name.into(), Some(picked));
            }
        }
        changed
    }
}

impl SdWorld for FileWorld {
    fn key(&self) -> &'static str {
        "file_sd_configs"
    }

    fn init(&mut self, rng: &mut Rng, pool: &[String]) {
        let _ = self.rewrite(rng, pool, true);
    }

    fn jobs(&mut self, rng: &mut Rng) -> Vec<WorldJob> {
        let sd = format!(
            "    file_sd_configs: [{{files: ['{SD_DIR}/*.json', '{SD_DIR}/*.yml'], refresh_interval: 5m}}]\n"
        );
        let mut jobs = Vec::new();
        if rng.chance(80) {
            jobs.push(WorldJob {
                name: "files",
                sd: sd.clone(),
                follows_variant: true,
            });
        }
        if rng.chance(50) {
            // A second job on the identical block: one provider, two subscribers.
            jobs.push(WorldJob {
                name: "files-copy",
                sd,
                follows_variant: false,
            });
        }
        jobs
    }

    fn reloaded(&mut self, in_use: bool) {
        self.in_use = in_use;
        if !in_use {
            // The provider stopped: a new one starts with no memory of the last good
            // content of a file that is garbage now.
            for (name, content) in &self.files {
                if content.starts_with("[{\"targets\": [") && !content.ends_with(']') {
                    self.file_addrs.insert(name.clone(), None);
                }
            }
        }
    }

    fn answer(
        &mut self,
        id: RequestId,
        op: &IoOp,
        rng: &mut Rng,
    ) -> Option<Result<Answer, String>> {
        let ms = Duration::from_millis(1 + rng.below(5));
        Some(Ok(match op {
            IoOp::Watch { path } => {
                if path != SD_DIR {
                    return Some(Err(format!("watch on unexpected directory {path}")));
                }
                self.watch = Some(id);
                Answer::Hold
            }
            IoOp::ListDir { path } if path == SD_DIR => {
                let names: Vec<String> = self.files.keys().cloned().collect();
                Answer::After(ms, vec![Reply::Io(OwnedIoEvent::DirEntries(names))])
            }
            IoOp::ReadFile { path, .. } => {
                let name = path.strip_prefix(SD_DIR)?.strip_prefix('/')?;
                let ev = match self.files.get(name) {
                    Some(c) => OwnedIoEvent::FileData(c.clone().into_bytes()),
                    None => OwnedIoEvent::NotFound,
                };
                Answer::After(ms, vec![Reply::Io(ev)])
            }
            _ => return None,
        }))
    }

    fn change(
        &mut self,
        rng: &mut Rng,
        pool: &[String],
        open: &BTreeMap<RequestId, IoOp>,
    ) -> Vec<(RequestId, OwnedIoEvent)> {
        let changed = self.rewrite(rng, pool, false);
        let Some(w) = self.watch.filter(|w| open.contains_key(w)) else {
            return Vec::new();
        };
        // inotify names each entry; sometimes the shell only knows "something changed".
        if rng.chance(30) {
            vec![(w, OwnedIoEvent::Changed(None))]
        } else {
            changed
                .into_iter()
                .map(|n| (w, OwnedIoEvent::Changed(Some(n.to_owned()))))
                .collect()
        }
    }

    fn addresses(&self) -> Vec<String> {
        self.file_addrs
            .values()
            .flatten()
            .flatten()
            .cloned()
            .collect()
    }

    fn settle(&self) -> Duration {
        // Reads take milliseconds.
        Duration::from_secs(1)
    }

    fn check_end(&self, open: &BTreeMap<RequestId, IoOp>) -> Result<(), String> {
        if self.watch.is_some_and(|w| open.contains_key(&w)) {
            return Err("the directory watch was not cancelled at shutdown".into());
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("files {:?}", self.files)
    }
}
