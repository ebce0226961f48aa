//! Service discovery: the manager, and one module per mechanism.
//!
//! The manager holds providers built from SD blocks (identical blocks shared across
//! jobs), per-(job, provider, source) target groups, and the set of sources that changed
//! since the last delivery to the scrape manager. Semantics follow Prometheus 3.x
//! (`prometheus-semantics.md` §1, `discovery/manager.go`): provider names
//! `<mechanism>/<n>` with one counter that only grows, a job without usable SD blocks gets
//! the shared empty static provider, an empty group deletes its source, a reload keeps
//! providers whose block did not change and hands their groups to newly subscribed jobs at
//! once. Deliberately better: only the sources that changed are handed downstream, and a
//! refresh that re-sends identical groups changes nothing.
//!
//! # Mechanisms
//!
//! Every `*_sd_configs` key Prometheus 3.x knows (and `static_configs`) is one type
//! implementing [`mechanism::Mechanism`] in one module here, listed once in
//! [`registry`]. A mechanism trawl runs has a [`mechanism::SdMachine`]; the others are
//! validated exactly as 3.x validates them and reported (a warning at load, `trawl check
//! config`, `prometheus_sd_failed_configs`), their job keeping its other blocks.
//!
//! ## Adding a mechanism
//!
//! 1. **One module**, `core/src/discovery/<name>.rs`, holding:
//!    - the block as written (`#[serde(deny_unknown_fields)]`, `Nullable` where a null
//!      must take Go's zero value, `with_http_client!` if the block inlines Prometheus's
//!      HTTP client options) and as validated (3.x's defaults applied), with 3.x's checks
//!      in 3.x's order and words, each error at the field it is about;
//!    - its `__meta_*` labels, built into [`groups::TargetGroup`]s, one per source;
//!    - its counters ([`mechanism::Counter`]: exported from the start, incremented
//!      through [`mechanism::SdOut::count`]);
//!    - its machine: `start`, `handle_io`, `handle_timeout`, `poll_timeout`, `stop`,
//!      asking for IO only through the generic operations of [`crate::io::IoOp`] — an
//!      HTTP request (`Http`: the shells bring TLS, proxies, credentials files and name
//!      resolution), file reads, directory listings and watches, DNS exchanges. A
//!      mechanism that speaks HTTP (Kubernetes, Consul, the clouds) needs no new
//!      operation and no shell change. A byte stream (`Stream`: TCP, or a Unix socket)
//!      carries a protocol the core speaks itself (ZooKeeper's; HTTP to a Docker
//!      Engine's socket, in `moby::engine`). A mechanism whose refresh is one request
//!      per interval (Marathon, Eureka) drives it with [`refresh::OneRequest`];
//!    - `EXAMPLE`, a small valid block: a test checks it validates, and the fuzz target
//!      `sd_documents` runs the mechanism on fuzzed documents through it;
//!    - its docs: which 3.x functions it follows, and where it deliberately differs.
//! 2. **One line** in [`registry::with_mechanisms!`], kept sorted by key. From it the
//!    scrape config gets the field (a misspelt key stays an error), the parser validates
//!    the blocks in Prometheus's order, the manager runs the machines, the self-metrics
//!    export the counters, the fuzz target covers it, and `trawl sd`, `trawl check
//!    config` and the recordings (which hold the IO events, whatever the mechanism) work
//!    unchanged.
//! 3. **One simulator fake**: a world in `tests/src/sim/worlds/<name>.rs` (the
//!    `SdWorld` trait: the jobs it wants, its answers to the mechanism's requests, its
//!    changes, the addresses its jobs should end up scraping) and its line in
//!    `worlds()`; a test fails while a running mechanism has no world.
//!
//! DNS took, as the first mechanism needing a new IO operation: its module (`dns.rs`:
//! block, machine, labels, counters, tests) and the resolver it uses
//! (`crate::resolver`); `IoOp::Dns`/`IoEvent::DnsReply` in `io.rs` and the recording;
//! one DNS exchange module per shell (`shell-mio/src/dns.rs`, `shell-tokio/src/dns.rs`)
//! and their dispatch; its simulator world. A mechanism that speaks HTTP touches none of
//! the shell files.

pub mod aws;
pub mod azure;
pub mod consul;
pub mod digitalocean;
pub mod dns;
pub mod eureka;
pub mod file;
pub mod gce;
pub mod groups;
pub mod hetzner;
pub mod http;
pub mod ionos;
pub mod kubernetes;
pub mod kuma;
pub mod linode;
pub mod marathon;
pub mod mechanism;
pub mod moby;
pub mod nomad;
pub mod oci;
pub mod openstack;
pub mod outscale;
pub mod ovhcloud;
pub(crate) mod paged;
pub mod puppetdb;
pub(crate) mod refresh;
pub mod registry;
pub mod scaleway;
pub mod stackit;
pub mod statics;
pub mod triton;
pub mod uyuni;
pub mod vultr;
pub(crate) mod xml;
pub mod zookeeper;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::io::{IoCommand, IoEvent, IoQueue, RequestId};
use crate::time::Instant;
use groups::TargetGroup;
use mechanism::{CounterKey, MachineContext, SdConfig, SdEnv, SdMachine, SdOut};

/// Identifies a provider for the lifetime of the agent (the `n` of `file/n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProviderId(pub u64);

/// A source inside a job: the provider and the group's source string.
pub type SourceKey = (ProviderId, Arc<str>);

/// The changes for one job since the last delivery: each changed source with its new
/// group, or `None` if the source is gone.
pub type JobChanges = (Arc<str>, Vec<(SourceKey, Option<Arc<TargetGroup>>)>);

#[derive(Debug)]
struct Provider {
    name: Arc<str>,
    config: SdConfig,
    subs: BTreeSet<Arc<str>>,
    new_subs: BTreeSet<Arc<str>>,
    machine: Option<Box<dyn SdMachine>>,
    /// Its machine could not be created (counted in `failed_configs`).
    failed: bool,
}

/// A failure a provider reported, for logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdFailure {
    /// The provider (`file/2`).
    pub provider: Arc<str>,
    /// The jobs it discovers for, comma-separated (`node,blackbox`).
    pub jobs: String,
    /// What went wrong, naming the file or URL.
    pub message: String,
}

/// Mechanisms that watch rather than refresh in Prometheus (they have no
/// `prometheus_sd_refresh_*` series).
const WATCHERS: &[&str] = &[
    "consul",
    "file",
    "kubernetes",
    "nerve",
    "serverset",
    "static",
];

/// Discovery counters, under Prometheus's names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdStats {
    /// `prometheus_sd_failed_configs`.
    pub failed_configs: u64,
    /// `prometheus_sd_received_updates_total`.
    pub received_updates: u64,
    /// `prometheus_sd_updates_total` (deliveries to the scrape manager).
    pub updates: u64,
    /// Every registered mechanism's counter series (all present from the start).
    pub counters: BTreeMap<CounterKey, u64>,
    /// `prometheus_sd_refresh_failures_total{mechanism, config}`: failures of the
    /// mechanisms Prometheus runs through its refresh loop, per job subscribed.
    pub refresh_failures: BTreeMap<(&'static str, Arc<str>), u64>,
}

impl Default for SdStats {
    fn default() -> SdStats {
        SdStats {
            failed_configs: 0,
            received_updates: 0,
            updates: 0,
            counters: registry::counters()
                .map(|c| ((c.name, c.labels), 0))
                .collect(),
            refresh_failures: BTreeMap::new(),
        }
    }
}

impl SdStats {
    /// The mechanism counter `name`, summed over its series (0 if no mechanism counts
    /// it).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters
            .iter()
            .filter(|((n, _), _)| *n == name)
            .map(|(_, v)| v)
            .sum()
    }

    /// One series of a labelled mechanism counter (`labels` sorted by name).
    pub fn counter_series(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.counters
            .iter()
            .find(|((n, l), _)| *n == name && *l == labels)
            .map_or(0, |(_, v)| *v)
    }
}

/// The discovery manager.
#[derive(Debug)]
pub(crate) struct Discovery {
    providers: BTreeMap<ProviderId, Provider>,
    counter: u64,
    targets: TargetMap,
    dirty: BTreeMap<Arc<str>, BTreeSet<SourceKey>>,
    owners: BTreeMap<RequestId, ProviderId>,
    env: SdEnv,
    /// Blocks of mechanisms trawl does not run, at the last config.
    unsupported: u64,
    pub(crate) stats: SdStats,
    /// Every registered mechanism's summary series (all present from the start).
    durations: BTreeMap<CounterKey, crate::metrics::Summary>,
    pub(crate) failures: Vec<SdFailure>,
}

/// Each job's copy of each provider's groups, by source.
type TargetMap = BTreeMap<(Arc<str>, ProviderId), BTreeMap<Arc<str>, Arc<TargetGroup>>>;

/// Removes a job's copy of a provider's groups, marking each source as changed.
fn drop_targets(
    targets: &mut TargetMap,
    dirty: &mut BTreeMap<Arc<str>, BTreeSet<SourceKey>>,
    job: &Arc<str>,
    id: ProviderId,
) {
    if let Some(map) = targets.remove(&(job.clone(), id)) {
        let d = dirty.entry(job.clone()).or_default();
        d.extend(map.into_keys().map(|s| (id, s)));
    }
}

/// The empty static block a job without usable SD blocks subscribes to.
fn fallback() -> SdConfig {
    SdConfig::new::<statics::Static>(statics::StaticConfigs {
        groups: vec![TargetGroup::default()],
    })
}

impl Discovery {
    pub(crate) fn new(env: SdEnv) -> Discovery {
        Discovery {
            providers: BTreeMap::new(),
            counter: 0,
            targets: BTreeMap::new(),
            dirty: BTreeMap::new(),
            owners: BTreeMap::new(),
            env,
            unsupported: 0,
            stats: SdStats::default(),
            durations: registry::summaries()
                .map(|c| ((c.name, c.labels), crate::metrics::Summary::new()))
                .collect(),
            failures: Vec::new(),
        }
    }

    /// True if some source changed since the last [`Discovery::take_changes`].
    pub(crate) fn has_changes(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Applies the SD blocks of every job (in config order).
    pub(crate) fn apply_config(
        &mut self,
        now: Instant,
        jobs: &[(Arc<str>, &[SdConfig])],
        io: &mut IoQueue,
    ) {
        for p in self.providers.values_mut() {
            p.new_subs.clear();
        }
        let mut failed = 0;
        for (job, cfgs) in jobs {
            let mut added = false;
            for cfg in cfgs.iter() {
                if let Some(what) = cfg.unsupported() {
                    // A block trawl validates but does not run: counted as a config
                    // that could not be turned into a provider, as 3.x counts a
                    // discoverer it cannot build (`Manager.registerProviders`); the
                    // job keeps its other blocks.
                    failed += 1;
                    self.failures.push(SdFailure {
                        provider: cfg.mechanism().into(),
                        jobs: job.to_string(),
                        message: format!(
                            "Cannot create service discovery for job {job:?}: trawl does not run {what} yet"
                        ),
                    });
                    continue;
                }
                self.subscribe(job, cfg);
                added = true;
            }
            if !added {
                self.subscribe(job, &fallback());
            }
        }
        self.unsupported = failed;

        let before: BTreeSet<Arc<str>> = self.jobs();
        let Discovery {
            providers,
            targets,
            dirty,
            owners,
            ..
        } = self;
        let mut to_start = Vec::new();
        let mut removed = Vec::new();
        for (id, p) in providers.iter_mut() {
            let id = *id;
            let old_subs = std::mem::take(&mut p.subs);
            let new_subs = std::mem::take(&mut p.new_subs);
            if new_subs.is_empty() {
                if let Some(m) = p.machine.as_mut() {
                    m.stop(io);
                }
                removed.push(id);
                owners.retain(|_, p| *p != id);
                for job in old_subs {
                    drop_targets(targets, dirty, &job, id);
                }
                continue;
            }
            let reference = old_subs
                .iter()
                .next()
                .and_then(|j| targets.get(&(j.clone(), id)))
                .cloned()
                .unwrap_or_default();
            for job in old_subs.difference(&new_subs) {
                drop_targets(targets, dirty, job, id);
            }
            for job in new_subs.difference(&old_subs) {
                if !reference.is_empty() {
                    let d = dirty.entry(job.clone()).or_default();
                    d.extend(reference.keys().map(|s| (id, s.clone())));
                    targets.insert((job.clone(), id), reference.clone());
                }
            }
            p.subs = new_subs;
            if p.machine.is_none() {
                to_start.push(id);
            }
        }
        for id in removed {
            providers.remove(&id);
        }
        for id in to_start {
            self.start_provider(now, id, io);
        }
        self.count_failed();
        // A job that is newly subscribed is named downstream even with no targets, so
        // that its pool exists (and is emptied when its groups go).
        for job in self.jobs().difference(&before) {
            self.dirty.entry(job.clone()).or_default();
        }
    }

    /// `prometheus_sd_failed_configs`: blocks trawl does not run, and providers that
    /// could not be created.
    fn count_failed(&mut self) {
        let created = self.providers.values().filter(|p| p.failed).count() as u64;
        self.stats.failed_configs = self.unsupported + created;
    }

    fn subscribe(&mut self, job: &Arc<str>, cfg: &SdConfig) {
        if let Some(p) = self.providers.values_mut().find(|p| p.config == *cfg) {
            p.new_subs.insert(job.clone());
            return;
        }
        let id = ProviderId(self.counter);
        self.counter += 1;
        self.providers.insert(
            id,
            Provider {
                name: format!("{}/{}", cfg.mechanism(), id.0).into(),
                config: cfg.clone(),
                subs: BTreeSet::new(),
                new_subs: BTreeSet::from([job.clone()]),
                machine: None,
                failed: false,
            },
        );
    }

    fn start_provider(&mut self, now: Instant, id: ProviderId, io: &mut IoQueue) {
        let Some(p) = self.providers.get_mut(&id) else {
            return;
        };
        let cx = MachineContext {
            env: &self.env,
            name: &p.name,
            now,
        };
        // Blocks without a machine are filtered out in `apply_config`.
        let Some(mut machine) = p.config.machine(&cx) else {
            return;
        };
        let mut out = SdOut::default();
        let mark = io.mark();
        machine.start(now, io, &mut out);
        p.machine = Some(machine);
        self.after_call(now, id, mark, io, out);
    }

    /// Registers the operations a provider call started and applies what it reported.
    fn after_call(&mut self, now: Instant, id: ProviderId, mark: usize, io: &IoQueue, out: SdOut) {
        for cmd in &io.queue[mark..] {
            match cmd {
                IoCommand::Start(rid, _) => {
                    self.owners.insert(*rid, id);
                }
                IoCommand::Cancel(rid) => {
                    self.owners.remove(rid);
                }
                IoCommand::Send(..) => {}
            }
        }
        for (key, n) in out.counts {
            *self.stats.counters.entry(key).or_default() += n;
        }
        for (key, d) in out.observations {
            self.durations
                .entry(key)
                .or_default()
                .observe(now, d.as_secs_f64());
        }
        if out.creation_failed
            && let Some(p) = self.providers.get_mut(&id)
            && !p.failed
        {
            p.failed = true;
            self.count_failed();
        }
        let name = self.providers.get(&id).map(|p| {
            let jobs: BTreeSet<&str> = p.subs.iter().chain(&p.new_subs).map(|j| &**j).collect();
            let jobs: Vec<&str> = jobs.into_iter().collect();
            (p.name.clone(), jobs.join(","))
        });
        if let Some(p) = self.providers.get(&id)
            && !out.failures.is_empty()
        {
            let mechanism = p.config.mechanism();
            // 3.x's `refresh.Discovery` counts its failures; watchers count their own.
            if !WATCHERS.contains(&mechanism) {
                for job in &p.subs {
                    *self
                        .stats
                        .refresh_failures
                        .entry((mechanism, job.clone()))
                        .or_default() += out.failures.len() as u64;
                }
            }
        }
        if let Some((name, jobs)) = &name {
            for message in out.failures {
                self.failures.push(SdFailure {
                    provider: name.clone(),
                    jobs: jobs.clone(),
                    message,
                });
            }
        }
        for batch in out.updates {
            self.update(id, batch);
        }
    }

    /// Stores a batch for every job subscribed to the provider; marks what changed.
    fn update(&mut self, id: ProviderId, batch: Vec<TargetGroup>) {
        self.stats.received_updates += 1;
        let Some(p) = self.providers.get(&id) else {
            return;
        };
        let subs: Vec<Arc<str>> = p.subs.iter().cloned().collect();
        for group in batch {
            let source: Arc<str> = group.source.as_str().into();
            let group = Arc::new(group);
            for job in &subs {
                let map = self.targets.entry((job.clone(), id)).or_default();
                let changed = if group.targets.is_empty() {
                    map.remove(&source).is_some()
                } else if map.get(&source).is_some_and(|g| **g == *group) {
                    false
                } else {
                    map.insert(source.clone(), group.clone());
                    true
                };
                if changed {
                    self.dirty
                        .entry(job.clone())
                        .or_default()
                        .insert((id, source.clone()));
                }
            }
        }
    }

    /// Stops every provider and forgets all groups (shutdown).
    pub(crate) fn stop_all(&mut self, io: &mut IoQueue) {
        for p in self.providers.values_mut() {
            if let Some(m) = p.machine.as_mut() {
                m.stop(io);
            }
        }
        self.providers.clear();
        self.owners.clear();
        self.targets.clear();
        self.dirty.clear();
    }

    /// Every job subscribed to some provider.
    pub(crate) fn jobs(&self) -> BTreeSet<Arc<str>> {
        self.providers
            .values()
            .flat_map(|p| p.subs.iter().cloned())
            .collect()
    }

    /// Routes an IO event to its provider; false if no provider owns `id`.
    pub(crate) fn handle_io(
        &mut self,
        now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
    ) -> bool {
        let Some(pid) = self.owners.get(&id).copied() else {
            return false;
        };
        let Some(machine) = self
            .providers
            .get_mut(&pid)
            .and_then(|p| p.machine.as_mut())
        else {
            return false;
        };
        let mut out = SdOut::default();
        let mark = io.mark();
        machine.handle_io(now, id, ev, io, &mut out);
        if !machine.owns(id) {
            self.owners.remove(&id);
        }
        self.after_call(now, pid, mark, io, out);
        true
    }

    /// Runs every provider whose deadline has passed.
    pub(crate) fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue) {
        let due: Vec<ProviderId> = self
            .providers
            .iter()
            .filter(|(_, p)| {
                p.machine
                    .as_ref()
                    .and_then(|m| m.poll_timeout())
                    .is_some_and(|t| t <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        for pid in due {
            let Some(machine) = self
                .providers
                .get_mut(&pid)
                .and_then(|p| p.machine.as_mut())
            else {
                continue;
            };
            let mut out = SdOut::default();
            let mark = io.mark();
            machine.handle_timeout(now, io, &mut out);
            self.after_call(now, pid, mark, io, out);
        }
    }

    /// The earliest provider deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.providers
            .values()
            .filter_map(|p| p.machine.as_ref().and_then(|m| m.poll_timeout()))
            .min()
    }

    /// Takes the changed sources of every job, with their current groups.
    pub(crate) fn take_changes(&mut self) -> Vec<JobChanges> {
        let dirty = std::mem::take(&mut self.dirty);
        self.stats.updates += 1;
        dirty
            .into_iter()
            .map(|(job, keys)| {
                let changes = keys
                    .into_iter()
                    .map(|(pid, source)| {
                        let g = self
                            .targets
                            .get(&(job.clone(), pid))
                            .and_then(|m| m.get(&source))
                            .cloned();
                        ((pid, source), g)
                    })
                    .collect();
                (job, changes)
            })
            .collect()
    }

    /// All current groups of a job, in provider order then source order (what a
    /// from-scratch recomputation starts from).
    pub(crate) fn groups_of(&self, job: &str) -> Vec<(SourceKey, Arc<TargetGroup>)> {
        self.targets
            .iter()
            .filter(|((j, _), _)| &**j == job)
            .flat_map(|((_, pid), m)| m.iter().map(|(s, g)| ((*pid, s.clone()), g.clone())))
            .collect()
    }

    /// Number of discovered targets per job (`prometheus_sd_discovered_targets`).
    pub(crate) fn discovered_targets(&self) -> BTreeMap<Arc<str>, usize> {
        let mut out: BTreeMap<Arc<str>, usize> = self.jobs().into_iter().map(|j| (j, 0)).collect();
        for ((job, _), m) in &self.targets {
            *out.entry(job.clone()).or_default() +=
                m.values().map(|g| g.targets.len()).sum::<usize>();
        }
        out
    }

    /// The discovery manager's self-metrics, under 3.x's names (`discovery/metrics.go`,
    /// `metrics_refresh.go`) and each mechanism's counters.
    pub(crate) fn metrics(&self, now: Instant, m: &mut crate::metrics::Metrics) {
        let s = &self.stats;
        let scrape = || vec![("name", "scrape".to_owned())];
        m.gauge(
            "prometheus_sd_failed_configs",
            "Current number of service discovery configurations that failed to load.",
            scrape(),
            s.failed_configs as f64,
        );
        m.counter(
            "prometheus_sd_received_updates_total",
            "Total number of update events received from the SD providers.",
            scrape(),
            s.received_updates as f64,
        );
        m.counter(
            "prometheus_sd_updates_total",
            "Total number of update events sent to the SD consumers.",
            scrape(),
            s.updates as f64,
        );
        for (job, n) in self.discovered_targets() {
            m.gauge(
                "prometheus_sd_discovered_targets",
                "Current number of discovered targets.",
                vec![("config", job.to_string()), ("name", "scrape".into())],
                n as f64,
            );
        }
        for c in registry::counters() {
            let v = s.counters.get(&(c.name, c.labels)).copied().unwrap_or(0);
            let labels = c
                .labels
                .iter()
                .map(|(k, v)| (*k, (*v).to_owned()))
                .collect();
            m.counter(c.name, c.help, labels, v as f64);
        }
        for c in registry::summaries() {
            if let Some(s) = self.durations.get(&(c.name, c.labels)) {
                let labels = c
                    .labels
                    .iter()
                    .map(|(k, v)| (*k, (*v).to_owned()))
                    .collect();
                m.summary(c.name, c.help, labels, s, now);
            }
        }
        // Every refreshing provider's series, from 0 (as 3.x creates them with the
        // provider), so `increase()` sees the first failure.
        let mut refresh = s.refresh_failures.clone();
        for p in self.providers.values() {
            let mechanism = p.config.mechanism();
            if !WATCHERS.contains(&mechanism) {
                for job in &p.subs {
                    refresh.entry((mechanism, job.clone())).or_default();
                }
            }
        }
        for ((mechanism, job), v) in refresh {
            m.counter(
                "prometheus_sd_refresh_failures_total",
                "Number of refresh failures for the given SD mechanism.",
                vec![
                    ("config", job.to_string()),
                    ("mechanism", mechanism.to_owned()),
                ],
                v as f64,
            );
        }
    }

    /// `(provider name, subscribed jobs)` in provider order.
    pub(crate) fn providers(&self) -> Vec<(Arc<str>, Vec<Arc<str>>)> {
        self.providers
            .values()
            .map(|p| (p.name.clone(), p.subs.iter().cloned().collect()))
            .collect()
    }

    /// Operations in flight across all providers.
    pub(crate) fn in_flight(&self) -> usize {
        self.providers
            .values()
            .filter_map(|p| p.machine.as_ref())
            .map(|m| m.in_flight())
            .sum()
    }
}
