//! The tree under one configured path, kept up to date from reads and watches: 3.x's
//! `util/treecache` (`ZookeeperTreeCache`), without its goroutines.
//!
//! Every node under the path (the path itself included) is read with a data watch and a
//! child watch. A node whose data is new or changed is reported with its data; a node
//! that goes is reported without (its whole subtree with it). A fired watch reads its
//! node again; new children are read, children gone are dropped. Any failure (an error
//! other than "no node", a connection lost under a read, the session expiring, the path
//! itself missing) counts one `prometheus_treecache_zookeeper_failures_total`, stops
//! acting on watches, and 10 s later the whole tree is read again: nodes not found then
//! are dropped (3.x's `resyncState`). Unlike 3.x, a resync reports only nodes whose data
//! changed, and a read already in flight for a node is not repeated when its watch fires
//! (the answer to come already reflects the change: the server orders them).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::session::{ReadError, Reply, Session, SessionEvent};
use crate::labels::Key128;
use crate::time::Instant;

/// The pause before reading the tree again after a failure (3.x's `failure`).
pub(crate) const RETRY: Duration = Duration::from_secs(10);
/// The most nodes one tree keeps; a tree past it is a failure (each node costs two
/// reads and their watches on the server).
pub(crate) const MAX_NODES: usize = 200_000;

#[derive(Debug, Default)]
struct Node {
    /// A 128-bit hash of the data last reported (the data itself is not kept: a
    /// change is all the tree needs to see).
    data: Option<Key128>,
    children: BTreeSet<String>,
}

/// A node's data changed (`Some`) or the node went (`None`).
pub(crate) type NodeEvent = (String, Option<Vec<u8>>);

/// The tree under one path.
#[derive(Debug)]
pub(crate) struct Tree {
    root: String,
    /// This tree's index among the provider's (high bits of the read tags).
    index: u64,
    nodes: BTreeMap<String, Node>,
    /// Reads in flight by node: data, children.
    reading: BTreeMap<String, (bool, bool)>,
    /// Tags of this generation's reads; answers from an older one are dropped.
    generation: u64,
    /// Nodes read in the resync under way (`None`: none under way).
    resync: Option<BTreeSet<String>>,
    /// When to read the tree again after a failure.
    retry_at: Option<Instant>,
    /// Node changes to report, in order.
    pub(crate) events: Vec<NodeEvent>,
    /// Failures to report (each counted once).
    pub(crate) failures: Vec<String>,
}

fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

impl Tree {
    /// The tree under `root`, the `index`-th of its provider.
    pub(crate) fn new(root: &str, index: u64) -> Tree {
        Tree {
            root: root.to_owned(),
            index,
            nodes: BTreeMap::new(),
            reading: BTreeMap::new(),
            generation: 0,
            resync: None,
            retry_at: None,
            events: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// The tag of this generation's reads.
    fn tag(&self) -> u64 {
        (self.index << 40) | (self.generation & ((1 << 40) - 1))
    }

    /// The tree a read tag belongs to.
    pub(crate) fn index_of(tag: u64) -> u64 {
        tag >> 40
    }

    /// Reads the whole tree (the first time, or after a failure).
    pub(crate) fn sync(&mut self, now: Instant, s: &mut Session) {
        self.generation += 1;
        self.reading.clear();
        self.retry_at = None;
        self.resync = Some(BTreeSet::new());
        self.nodes.entry(self.root.clone()).or_default();
        let root = self.root.clone();
        self.read(now, s, &root);
    }

    fn read(&mut self, now: Instant, s: &mut Session, path: &str) {
        if self.reading.contains_key(path) {
            return;
        }
        if let Some(seen) = &mut self.resync {
            seen.insert(path.to_owned());
        }
        self.reading.insert(path.to_owned(), (true, true));
        let tag = self.tag();
        s.read(now, tag, path, true);
        s.read(now, tag, path, false);
    }

    fn failure(&mut self, now: Instant, why: String) {
        self.generation += 1;
        self.reading.clear();
        self.resync = None;
        self.retry_at = Some(now + RETRY);
        self.failures.push(why);
    }

    fn failing(&self) -> bool {
        self.retry_at.is_some()
    }

    /// Drops `path` and its subtree, reporting the nodes that had data; its parent
    /// forgets it (a node created again under that name is then new).
    fn delete(&mut self, path: &str) {
        let Some(node) = self.nodes.remove(path) else {
            return;
        };
        if let Some((parent, name)) = path.rsplit_once('/') {
            let parent = if parent.is_empty() { "/" } else { parent };
            if let Some(p) = self.nodes.get_mut(parent) {
                p.children.remove(name);
            }
        }
        self.reading.remove(path);
        if node.data.is_some() {
            self.events.push((path.to_owned(), None));
        }
        for c in node.children {
            self.delete(&child_path(path, &c));
        }
    }

    /// A session event for this tree.
    pub(crate) fn handle(&mut self, now: Instant, s: &mut Session, ev: SessionEvent) {
        match ev {
            SessionEvent::Expired => {
                if !self.failing() {
                    self.failure(now, "lost connection to ZooKeeper: session expired".into());
                }
            }
            SessionEvent::Watch { path } => {
                if !self.failing() && self.nodes.contains_key(&path) {
                    self.read(now, s, &path);
                }
            }
            SessionEvent::Read {
                tag,
                path,
                data,
                result,
            } => {
                if tag != self.tag() {
                    return;
                }
                let Some(r) = self.reading.get_mut(&path) else {
                    return;
                };
                if data {
                    r.0 = false;
                } else {
                    r.1 = false;
                }
                if !r.0 && !r.1 {
                    self.reading.remove(&path);
                }
                self.answer(now, s, &path, result);
                self.finish_resync();
            }
        }
    }

    fn answer(
        &mut self,
        now: Instant,
        s: &mut Session,
        path: &str,
        result: Result<Reply, ReadError>,
    ) {
        match result {
            Err(ReadError::NoNode) => {
                self.delete(path);
                if path == self.root {
                    self.failure(now, format!("path {path} does not exist"));
                }
            }
            Err(ReadError::Failed(e)) => self.failure(now, format!("reading {path}: {e}")),
            Ok(Reply::Data(d)) => {
                let Some(node) = self.nodes.get_mut(path) else {
                    return;
                };
                let key = Key128::of(&d);
                if node.data != Some(key) {
                    node.data = Some(key);
                    self.events.push((path.to_owned(), Some(d)));
                }
            }
            Ok(Reply::Children(names)) => {
                let Some(node) = self.nodes.get_mut(path) else {
                    return;
                };
                let old = std::mem::replace(&mut node.children, names.into_iter().collect());
                let new = &node.children;
                let gone: Vec<String> = old.difference(new).cloned().collect();
                // New children are read; in a resync, every child not read yet.
                let to_read: Vec<String> = match &self.resync {
                    None => new.difference(&old).map(|c| child_path(path, c)).collect(),
                    Some(seen) => new
                        .iter()
                        .map(|c| child_path(path, c))
                        .filter(|p| !seen.contains(p))
                        .collect(),
                };
                for g in gone {
                    self.delete(&child_path(path, &g));
                }
                for p in to_read {
                    self.nodes.entry(p.clone()).or_default();
                    self.read(now, s, &p);
                }
                if self.nodes.len() > MAX_NODES {
                    self.failure(
                        now,
                        format!("more than {MAX_NODES} nodes under {}", self.root),
                    );
                }
            }
        }
    }

    /// Ends a resync once every read of it was answered: nodes it did not find go.
    fn finish_resync(&mut self) {
        if !self.reading.is_empty() {
            return;
        }
        let Some(seen) = self.resync.take() else {
            return;
        };
        let stale: Vec<String> = self
            .nodes
            .keys()
            .filter(|p| !seen.contains(*p))
            .cloned()
            .collect();
        for p in stale {
            self.delete(&p);
        }
    }

    /// Acts on the retry deadline.
    pub(crate) fn handle_timeout(&mut self, now: Instant, s: &mut Session) {
        if self.retry_at.is_some_and(|t| t <= now) {
            self.sync(now, s);
        }
    }

    /// The retry deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.retry_at
    }
}
