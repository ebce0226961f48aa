//! The sans-IO agent: discovery manager, coalescing, scrape manager and loops in one
//! deterministic state machine (see the crate docs for the drive loop).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, ScrapeConfig, SdConfig};
use crate::discovery::mechanism::SdEnv;
use crate::discovery::{Discovery, SdFailure, SdStats};
use crate::io::{IoCommand, IoEvent, IoOp, IoQueue, RequestId};
use crate::metrics::Metrics;
use crate::scrape::pipeline::Batch;
use crate::scrape::{
    DroppedView, HealthChange, PoolView, ScrapeManager, ScrapeOut, ScrapeStats, TargetView,
};
use crate::time::{Instant, Now, UnixNanos};

/// Options of an [`Agent`] that do not come from `prometheus.yml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentOptions {
    /// Seed for every random choice the core makes, so that a run is reproducible.
    /// (Scrape phases are not random: they come from the target hash and the host.)
    pub seed: u64,
    /// The host's fully qualified name: with the external labels it seeds the scrape
    /// phases, as Prometheus's `offsetSeed` (so trawl and a Prometheus on the same host
    /// with the same external labels scrape a target at the same phase).
    pub fqdn: String,
    /// A discovery change arriving after a quiet period reaches the pools this long
    /// after it arrives (default 100 ms).
    pub coalesce_window: Duration,
    /// A continuous stream of changes reaches the pools at most once per this period
    /// (Prometheus's `updatert`, default 5 s).
    pub updatert: Duration,
    /// `User-Agent` of scrapes and HTTP SD requests.
    pub user_agent: String,
    /// Largest file SD file or HTTP SD response accepted (default 64 MiB).
    pub sd_body_limit: u64,
    /// The body size limit of scrapes whose job sets no `body_size_limit` (Prometheus's
    /// default there is none); 0 for none. Default [`DEFAULT_BODY_SIZE_LIMIT`]: a target
    /// that streams without end, or a decompression bomb, is cut there instead of
    /// taking a gigabyte per scrape. A job's own `body_size_limit` wins, larger or not.
    pub body_size_limit: u64,
    /// The resolver configuration DNS discovery reads (default `/etc/resolv.conf`).
    pub resolv_conf: String,
    /// The port name servers are asked on (default 53; resolv.conf cannot say another).
    pub dns_port: u16,
    /// The in-cluster Kubernetes API server as the shell found it in
    /// `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT` (the core reads no
    /// environment); empty when not running in a cluster.
    pub kubernetes_service: Option<(String, String)>,
    /// Where a pod's service account is mounted (token, `ca.crt`, `namespace`): default
    /// `/var/run/secrets/kubernetes.io/serviceaccount`.
    pub kubernetes_service_account_dir: String,
    /// The AWS region discovery uses when a block names none, as the shell found it in
    /// the environment (`AWS_REGION`, `AWS_DEFAULT_REGION`, the shared config file's
    /// profile: `trawl_io::aws::default_region`); `None` when none is set. The daemon
    /// fills it; an embedder (trawl-tokio's builder starts from the defaults) sets it
    /// itself, as it sets `kubernetes_service`.
    pub aws_region: Option<String>,
    /// **For tests only**: the base URL a cloud mechanism's API is reached at instead of
    /// the provider's own, by mechanism name (`digitalocean` →
    /// `http://127.0.0.1:8080`), so that discovery can run against a fake on loopback.
    /// Empty in production. The daemon fills it from `TRAWL_TEST_API_BASE_<NAME>`
    /// environment variables (`TRAWL_TEST_API_BASE_DIGITALOCEAN`); mechanisms whose
    /// configuration has an endpoint of its own (`ec2_sd_configs`' `endpoint`) do not
    /// read it.
    pub api_bases: std::collections::BTreeMap<String, String>,
    /// `--enable-feature=created-timestamp-zero-ingestion` (Prometheus 3.x): OpenMetrics
    /// `_created` lines of counters, summaries and histograms give their series a start
    /// timestamp, stored as a 0 sample, instead of being samples themselves; and jobs
    /// whose `scrape_protocols` are the default ask for protobuf first, which carries
    /// start timestamps (3.x changes the global default the same way).
    pub start_timestamps: bool,
    /// Scrape a target discovered for a job that has been running for at least an
    /// interval at once, then on its phase grid (`--scrape.first-at-once`). Off by
    /// default, as in Prometheus: a new target otherwise waits for its first grid
    /// instant, up to an interval, and a short-lived one may never be scraped. On, a
    /// burst of new targets is scraped together instead of spread over the interval;
    /// targets of a job's first interval (a start, a reload that adds the job) stay on
    /// the grid, and so does a target whose first grid instant is within its
    /// `scrape_timeout`. The at-once scrape is stamped with its own start time.
    pub first_scrape_at_once: bool,
}

/// The default of [`AgentOptions::kubernetes_service_account_dir`].
pub const DEFAULT_SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The default of [`AgentOptions::body_size_limit`]: 64 MiB decompressed, far above what
/// exporters send (node_exporter about 0.1–1 MB, kube-state-metrics of a large cluster
/// tens of MB); vmagent's `-promscrape.maxScrapeSize` is 16 MiB.
pub const DEFAULT_BODY_SIZE_LIMIT: u64 = 64 << 20;

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            seed: 0,
            fqdn: "localhost".into(),
            coalesce_window: Duration::from_millis(100),
            updatert: Duration::from_secs(5),
            user_agent: concat!("trawl/", env!("CARGO_PKG_VERSION")).into(),
            sd_body_limit: 64 << 20,
            body_size_limit: DEFAULT_BODY_SIZE_LIMIT,
            resolv_conf: "/etc/resolv.conf".into(),
            dns_port: 53,
            kubernetes_service: None,
            kubernetes_service_account_dir: DEFAULT_SERVICE_ACCOUNT_DIR.into(),
            aws_region: None,
            api_bases: std::collections::BTreeMap::new(),
            start_timestamps: false,
            first_scrape_at_once: false,
        }
    }
}

/// What the shell feeds the agent.
#[derive(Debug)]
pub enum Input<'a> {
    /// A new, validated configuration (a reload).
    Config(Box<Config>),
    /// Progress of an operation the agent started.
    Io {
        /// The operation.
        id: RequestId,
        /// What happened.
        event: IoEvent<'a>,
    },
    /// The deadline from [`Agent::poll_timeout`] has passed.
    Timeout,
    /// Stop: discovery stops, loops finish their in-flight scrapes, then
    /// [`Event::ShutdownComplete`].
    Shutdown,
    /// The series the storage already holds, read back at start
    /// ([`crate::wal::replay::Replay`]): a series scraped again keeps its ref, and no new
    /// ref collides with a stored one. Must come before the first scrape is stored;
    /// later it is refused ([`Event::RestoreRefused`]).
    Restore(Box<crate::wal::replay::Restored>),
    /// The storage's report on the next `batches` [`Output::Append`]s, in the order they
    /// were emitted.
    Stored(Stored<'a>),
}

/// What the storage did with some appended batches (after writing them and, per its
/// sync policy, syncing them to disk).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stored<'a> {
    /// Batches reported on.
    pub batches: u64,
    /// Samples stored.
    pub samples: u64,
    /// Samples that could not be stored (disk full, write error, queue full).
    pub lost_samples: u64,
    /// The error, if any of them failed (`None`: all stored).
    pub error: Option<&'a str>,
}

/// Queued outputs (and IO commands) kept room for after a burst drains.
const SPARE_OUTPUTS: usize = 4096;

/// What the agent asks of the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Start an operation; report its progress as [`Input::Io`] with this id.
    Start {
        /// The operation's id.
        id: RequestId,
        /// What to do.
        op: IoOp,
    },
    /// Abandon an operation; anything reported for it later is ignored.
    Cancel(RequestId),
    /// Write these bytes, after those sent before, on the open stream `id`
    /// ([`IoOp::Stream`]); a stream that is gone (cancelled, failed) drops them.
    Send {
        /// The stream.
        id: RequestId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Store one committed scrape (its new series, then its samples), atomically.
    Append(Batch),
    /// Something to log or count.
    Event(Event),
}

/// Things worth logging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A configuration is in force (`jobs` scrape configs).
    ConfigApplied {
        /// Number of jobs.
        jobs: usize,
    },
    /// A provider failed; it keeps its previous targets.
    SdFailure(SdFailure),
    /// A discovered target could not become a scrape target.
    TargetSyncFailed {
        /// The job.
        job: Arc<str>,
        /// `instance <i> in group <source>: <error>`.
        message: String,
    },
    /// Discovery changes reached the pools.
    Delivered {
        /// Jobs touched.
        jobs: usize,
        /// Sources changed.
        sources: usize,
    },
    /// A pool was created (discovery named its job for the first time).
    PoolCreated(Arc<str>),
    /// A pool was stopped (its job left the configuration, or shutdown).
    PoolStopped(Arc<str>),
    /// A target's health or error changed.
    Health(HealthChange),
    /// Shutdown finished: nothing is in flight any more.
    ShutdownComplete,
    /// At shutdown, this many removed targets still had end-of-run stale markers due;
    /// they are not written (as in Prometheus, which presumes a restart resumes them).
    StaleMarkersDropped(usize),
    /// Storage refused batches (first failure after success): scraping goes on, and
    /// what is not stored is counted.
    StorageFailing(String),
    /// Storage stores again.
    StorageRecovered,
    /// Series read back from storage were taken (their number).
    Restored(usize),
    /// An [`Input::Restore`] came after series were stored and was ignored.
    RestoreRefused,
}

/// Storage counters, from [`Input::Stored`] reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Batches emitted as [`Output::Append`].
    pub appended_batches: u64,
    /// Batches the storage reported on.
    pub reported_batches: u64,
    /// Samples stored.
    pub stored_samples: u64,
    /// Samples lost.
    pub lost_samples: u64,
    /// The storage's last report was an error.
    pub failing: bool,
    /// Series restored at start.
    pub restored_series: u64,
}

impl StorageStats {
    /// Batches emitted and not yet reported on.
    pub fn pending_batches(&self) -> u64 {
        self.appended_batches.saturating_sub(self.reported_batches)
    }
}

/// Counters and gauges of the agent, as data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Discovery counters.
    pub sd: SdStats,
    /// Scrape-manager counters.
    pub scrape: ScrapeStats,
    /// Completions for ids the agent no longer waits for (after a cancel or reload).
    pub stale_completions: u64,
    /// Configurations applied.
    pub config_reloads: u64,
    /// Storage counters.
    pub storage: StorageStats,
}

/// The agent. See the crate docs for how a shell drives it.
#[derive(Debug)]
pub struct Agent {
    options: AgentOptions,
    discovery: Discovery,
    scrape: ScrapeManager,
    io: IoQueue,
    outputs: VecDeque<Output>,
    coalesce_at: Option<Instant>,
    last_delivery: Option<Instant>,
    now: Now,
    config: Arc<Config>,
    shutting_down: bool,
    shutdown_reported: bool,
    stats: AgentStats,
    /// The last configuration attempt succeeded.
    config_ok: bool,
    /// When the configuration in force was applied.
    config_at: UnixNanos,
}

impl Agent {
    /// A new agent running `config` from `now` on.
    pub fn new(config: Config, options: AgentOptions, now: Now) -> Agent {
        let env = SdEnv {
            user_agent: options.user_agent.as_str().into(),
            body_limit: options.sd_body_limit,
            resolv_conf: options.resolv_conf.as_str().into(),
            dns_port: options.dns_port,
            seed: options.seed,
            kubernetes_service: options.kubernetes_service.clone(),
            service_account_dir: options.kubernetes_service_account_dir.as_str().into(),
            aws_region: options.aws_region.as_deref().map(Arc::from),
            api_bases: options
                .api_bases
                .iter()
                .map(|(k, v)| (k.clone(), Arc::from(v.trim_end_matches('/'))))
                .collect(),
        };
        let mut agent = Agent {
            discovery: Discovery::new(env),
            scrape: {
                let mut m =
                    ScrapeManager::new(options.user_agent.as_str().into(), options.body_size_limit);
                m.start_timestamps = options.start_timestamps;
                m.first_at_once = options.first_scrape_at_once;
                m
            },
            options,
            io: IoQueue::default(),
            outputs: VecDeque::new(),
            coalesce_at: None,
            last_delivery: None,
            now,
            config: Arc::new(Config::default()),
            shutting_down: false,
            shutdown_reported: false,
            stats: AgentStats::default(),
            config_ok: true,
            config_at: now.wall,
        };
        agent.apply_config(now, config);
        agent.flush();
        agent
    }

    /// Feeds one input. Never fails: problems become events, health and counters.
    pub fn handle_input(&mut self, now: Now, input: Input<'_>) {
        // The core's clock never goes backwards, whatever the shell passes.
        let now = Now::new(now.mono.max(self.now.mono), now.wall);
        self.now = now;
        // Pending body work goes on only on timeouts, so a turn of the shell does a
        // bounded amount of it however many inputs it feeds.
        let timeout = matches!(input, Input::Timeout);
        match input {
            Input::Config(c) => {
                if !self.shutting_down {
                    self.apply_config(now, *c);
                }
            }
            Input::Io { id, event } => self.handle_io(now, id, event),
            Input::Timeout => {}
            Input::Restore(r) => {
                let n = r.series.len();
                if self.scrape.refs.restore(*r, now.wall.as_millis()) {
                    self.stats.storage.restored_series += n as u64;
                    self.outputs.push_back(Output::Event(Event::Restored(n)));
                } else {
                    self.outputs.push_back(Output::Event(Event::RestoreRefused));
                }
            }
            Input::Stored(st) => {
                let s = &mut self.stats.storage;
                s.reported_batches += st.batches;
                s.stored_samples += st.samples;
                s.lost_samples += st.lost_samples;
                match (st.error, s.failing) {
                    (Some(e), false) => {
                        s.failing = true;
                        self.outputs
                            .push_back(Output::Event(Event::StorageFailing(e.to_owned())));
                    }
                    (None, true) if st.batches > 0 => {
                        s.failing = false;
                        self.outputs
                            .push_back(Output::Event(Event::StorageRecovered));
                    }
                    _ => {}
                }
            }
            Input::Shutdown => {
                if !self.shutting_down {
                    self.shutting_down = true;
                    self.discovery.stop_all(&mut self.io);
                    self.coalesce_at = None;
                    let mut out = ScrapeOut::default();
                    self.scrape.stop_all(&mut out);
                    self.report(out);
                }
            }
        }
        self.run_timers(now, timeout);
        self.flush();
    }

    /// The next output, until `None`; the shell drains this after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        let o = self.outputs.pop_front();
        // A burst (a discovery sync starting thousands of operations) leaves a large
        // queue behind: give the memory back once it is drained.
        if o.is_none() && self.outputs.capacity() > SPARE_OUTPUTS {
            self.outputs.shrink_to(SPARE_OUTPUTS / 4);
        }
        o
    }

    /// When the agent next needs [`Input::Timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.coalesce_at,
            self.discovery.poll_timeout(),
            self.scrape.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The options the agent runs with.
    pub fn options(&self) -> &AgentOptions {
        &self.options
    }

    /// Active targets, by job then identity.
    pub fn targets(&self) -> Vec<TargetView> {
        self.scrape.targets()
    }

    /// Metric metadata (family, type, help, unit) of the active targets' last scrapes,
    /// deduplicated and sorted: what remote write sends as metadata.
    pub fn metadata(&self) -> Vec<(String, crate::exposition::MetricType, String, String)> {
        self.scrape.metadata()
    }

    /// Each active target's metric metadata from its last scrape (family, type, help,
    /// unit), with the target's labels, in the order of [`Agent::targets`]: what
    /// `/api/v1/targets/metadata` serves.
    pub fn target_metadata(
        &self,
    ) -> Vec<(crate::labels::Labels, Vec<crate::scrape::FamilyMetadata>)> {
        self.scrape.target_metadata()
    }

    /// Whether the last configuration attempt succeeded, and when the configuration in
    /// force was applied (`/api/v1/status/runtimeinfo`).
    pub fn config_status(&self) -> (bool, UnixNanos) {
        (self.config_ok, self.config_at)
    }

    /// Dropped targets (up to `keep_dropped_targets` per job), with the dropping rule.
    pub fn dropped_targets(&self) -> Vec<DroppedView> {
        self.scrape.dropped_targets()
    }

    /// Pools, by job.
    pub fn pools(&self) -> Vec<PoolView> {
        self.scrape.pools()
    }

    /// Counters.
    pub fn stats(&self) -> AgentStats {
        AgentStats {
            sd: self.discovery.stats.clone(),
            scrape: self.scrape.stats.clone(),
            ..self.stats.clone()
        }
    }

    /// Discovery providers and the jobs subscribed to each, in creation order.
    pub fn providers(&self) -> Vec<(Arc<str>, Vec<Arc<str>>)> {
        self.discovery.providers()
    }

    /// A number that changes whenever the set of targets may have changed (a delivery of
    /// discovery changes, a configuration), not when only scrape results did: for
    /// caches of target listings.
    pub fn targets_version(&self) -> u64 {
        self.scrape.version
    }

    /// False while the scrape `id` has received body bytes the agent has not parsed yet
    /// (a gzip body that inflates far is parsed in slices of
    /// [`crate::scrape::BODY_SLICE`]): the shell should read no more of that response
    /// until this turns true, which it does after enough [`Input::Timeout`]s. True for
    /// any other request.
    pub fn accepts_body(&self, id: RequestId) -> bool {
        self.scrape.accepts_body(id)
    }

    /// Operations in flight (SD and scrapes), for bounds checks.
    pub fn in_flight(&self) -> usize {
        self.discovery.in_flight() + self.scrape.in_flight()
    }

    /// Scrape loops alive (active, or finishing a scrape after being stopped).
    pub fn loops_alive(&self) -> usize {
        self.scrape.loops_alive()
    }

    /// True once shutdown has completed.
    pub fn is_shut_down(&self) -> bool {
        self.shutdown_reported
    }

    /// Recomputes a job's active targets from scratch from the groups discovery holds
    /// now: relabels every entry again and deduplicates by identity. The incremental
    /// pools must equal this after every delivery; tests and the simulator check it.
    pub fn recompute_from_scratch(&self, job: &str) -> Vec<crate::target::ScrapeTarget> {
        let Some(cfg) = self.scrape.pool_config(job) else {
            return Vec::new();
        };
        let mut set = std::collections::BTreeSet::new();
        for (_, g) in self.discovery.groups_of(job) {
            for r in crate::target::targets_from_group(&g, cfg)
                .into_iter()
                .flatten()
            {
                if let crate::target::Populated::Active(t) = r {
                    set.insert(t);
                }
            }
        }
        set.into_iter().collect()
    }

    /// The active identities the pool of `job` holds (sorted).
    pub fn active_identities(&self, job: &str) -> Vec<crate::target::ScrapeTarget> {
        self.scrape.active_identities(job)
    }

    /// True while discovery changes wait for the coalescing timer.
    pub fn has_pending_changes(&self) -> bool {
        self.discovery.has_changes()
    }

    /// The agent's self-metrics (discovery, scrape pools and loops, configuration,
    /// storage reports) under Prometheus 3.x's names, with help and type; the shells add
    /// theirs and render [`Metrics::render`]. Summaries are as of the last input.
    pub fn metrics(&self) -> Metrics {
        let mut m = Metrics::new();
        self.discovery.metrics(self.now.mono, &mut m);
        self.scrape.metrics(self.now.mono, &mut m);
        m.gauge(
            "prometheus_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
            vec![],
            if self.config_ok { 1.0 } else { 0.0 },
        );
        m.gauge(
            "prometheus_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
            vec![],
            self.config_at.0 as f64 / 1e9,
        );
        let st = &self.stats.storage;
        m.counter(
            "trawl_storage_samples_stored_total",
            "Samples the storage reported stored.",
            vec![],
            st.stored_samples as f64,
        );
        m.counter(
            "trawl_storage_samples_lost_total",
            "Samples the storage reported lost (write errors, a full queue).",
            vec![],
            st.lost_samples as f64,
        );
        m.gauge(
            "trawl_storage_pending_batches",
            "Batches handed to the storage and not reported on yet.",
            vec![],
            st.pending_batches() as f64,
        );
        m.counter(
            "trawl_config_reloads_total",
            "Configurations applied (the first included).",
            vec![],
            self.stats.config_reloads as f64,
        );
        m
    }

    /// Records that a configuration could not be loaded (the shell failed to read or
    /// parse it): `prometheus_config_last_reload_successful` turns 0 until one applies.
    /// The running configuration stays.
    pub fn config_rejected(&mut self) {
        self.config_ok = false;
    }

    fn apply_config(&mut self, now: Now, config: Config) {
        self.stats.config_reloads += 1;
        self.config_ok = true;
        self.config_at = now.wall;
        let seed = crate::hash::offset_seed(&self.options.fqdn, &config.global.external_labels);
        let proto_first = self.options.start_timestamps;
        let configs: BTreeMap<Arc<str>, Arc<ScrapeConfig>> = config
            .scrape_configs
            .iter()
            .map(|c| {
                let mut c = c.clone();
                // 3.x's `created-timestamp-zero-ingestion` makes the default
                // scrape_protocols protobuf first (protobuf carries start timestamps).
                if proto_first && c.scrape_protocols_defaulted {
                    c.scrape_protocols = crate::config::ScrapeProtocol::PROTO_FIRST.to_vec();
                }
                (Arc::from(c.job_name.as_str()), Arc::new(c))
            })
            .collect();
        let mut out = ScrapeOut::default();
        self.scrape.apply_config(now, configs, seed, &mut out);
        let jobs: Vec<(Arc<str>, &[SdConfig])> = config
            .scrape_configs
            .iter()
            .map(|c| (Arc::from(c.job_name.as_str()), c.sd_configs.as_slice()))
            .collect();
        self.discovery.apply_config(now.mono, &jobs, &mut self.io);
        // A reload is delivered at once: nothing waits for the coalescing timer.
        self.deliver(now, &mut out);
        self.report(out);
        self.outputs.push_back(Output::Event(Event::ConfigApplied {
            jobs: config.scrape_configs.len(),
        }));
        self.config = Arc::new(config);
    }

    fn handle_io(&mut self, now: Now, id: RequestId, event: IoEvent<'_>) {
        if self.discovery.handle_io(now.mono, id, event, &mut self.io) {
            self.arm_coalescing(now.mono);
            return;
        }
        let mut out = ScrapeOut::default();
        if !self
            .scrape
            .handle_io(now, id, event, &mut self.io, &mut out)
        {
            self.stats.stale_completions += 1;
        }
        self.report(out);
    }

    fn arm_coalescing(&mut self, now: Instant) {
        if self.coalesce_at.is_none() && self.discovery.has_changes() {
            let soon = now + self.options.coalesce_window;
            let paced = self
                .last_delivery
                .map_or(soon, |t| t + self.options.updatert);
            self.coalesce_at = Some(soon.max(paced));
        }
    }

    fn run_timers(&mut self, now: Now, timeout: bool) {
        if self.discovery.poll_timeout().is_some_and(|t| t <= now.mono) {
            self.discovery.handle_timeout(now.mono, &mut self.io);
            self.arm_coalescing(now.mono);
        }
        let mut out = ScrapeOut::default();
        if self.coalesce_at.is_some_and(|t| t <= now.mono) {
            self.last_delivery = Some(now.mono);
            self.deliver(now, &mut out);
        }
        self.scrape
            .handle_timeout(now, timeout, &mut self.io, &mut out);
        self.report(out);
        if self.shutting_down && !self.shutdown_reported && self.scrape.loops_alive() == 0 {
            self.shutdown_reported = true;
            self.outputs
                .push_back(Output::Event(Event::ShutdownComplete));
        }
    }

    fn deliver(&mut self, now: Now, out: &mut ScrapeOut) {
        self.coalesce_at = None;
        if !self.discovery.has_changes() {
            return;
        }
        let changes = self.discovery.take_changes();
        let jobs = changes.len();
        let sources = changes.iter().map(|(_, c)| c.len()).sum();
        for (job, ch) in changes {
            self.scrape.sync(now, &job, ch, out);
        }
        self.outputs
            .push_back(Output::Event(Event::Delivered { jobs, sources }));
    }

    fn report(&mut self, out: ScrapeOut) {
        let retire = self.scrape.take_retire_batches();
        for b in out.batches.into_iter().chain(retire) {
            self.stats.storage.appended_batches += 1;
            self.outputs.push_back(Output::Append(b));
        }
        for job in out.pools_created {
            self.outputs
                .push_back(Output::Event(Event::PoolCreated(job)));
        }
        for (job, message) in out.sync_failures {
            self.outputs
                .push_back(Output::Event(Event::TargetSyncFailed { job, message }));
        }
        for h in out.health {
            self.outputs.push_back(Output::Event(Event::Health(h)));
        }
        for job in out.pools_stopped {
            self.outputs
                .push_back(Output::Event(Event::PoolStopped(job)));
        }
        if out.stale_dropped > 0 {
            self.outputs
                .push_back(Output::Event(Event::StaleMarkersDropped(out.stale_dropped)));
        }
    }

    /// Moves queued IO and discovery failures into the output queue.
    fn flush(&mut self) {
        for f in self.discovery.failures.drain(..) {
            self.outputs.push_back(Output::Event(Event::SdFailure(f)));
        }
        for cmd in self.io.queue.drain(..) {
            self.outputs.push_back(match cmd {
                IoCommand::Start(id, op) => Output::Start { id, op },
                IoCommand::Cancel(id) => Output::Cancel(id),
                IoCommand::Send(id, data) => Output::Send { id, data },
            });
        }
        if self.io.queue.capacity() > SPARE_OUTPUTS {
            self.io.queue.shrink_to(SPARE_OUTPUTS / 4);
        }
    }
}
