//! What a service-discovery mechanism is to the rest of the core: one type implementing
//! [`Mechanism`] — its configuration block as written and as validated, its counters, and
//! the [`SdMachine`] that runs it — registered once in [`super::registry`].
//!
//! The configuration parser, the discovery manager, the self-metrics, `trawl sd` and the
//! recordings know mechanisms only through this trait and the registry, the way
//! Prometheus 3.x knows them through `discovery.Config` and `discovery.RegisterConfig`.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::groups::TargetGroup;
use crate::common::paths::PathResolver;
use crate::common::yaml::{Bool11, LenientString, Nullable, Path};
use crate::io::{IoEvent, IoQueue, RequestId};
use crate::time::Instant;

/// A validation error: where below the block (empty for the block itself) and what.
pub(crate) type Invalid = (Path, String);

/// A counter (or summary) series a mechanism keeps, under Prometheus's name; exported
/// from the start at 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    /// Prometheus's metric name.
    pub name: &'static str,
    /// The series' labels, sorted by name (empty for most counters).
    pub labels: &'static [(&'static str, &'static str)],
    /// Its help text.
    pub help: &'static str,
}

/// What a block's validation may need from the scrape config around it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SdContext<'a> {
    /// Resolves file paths against the config file's directory.
    pub(crate) paths: PathResolver<'a>,
    /// The job has no `relabel_configs` (static targets must then be host names).
    pub(crate) no_relabeling: bool,
}

/// Limits and identity the running machines need from the agent.
#[derive(Clone, Debug)]
pub(crate) struct SdEnv {
    /// `User-Agent` of discovery requests.
    pub(crate) user_agent: Arc<str>,
    /// Largest SD file or HTTP SD body accepted.
    pub(crate) body_limit: u64,
    /// The resolver configuration file DNS discovery reads.
    pub(crate) resolv_conf: Arc<str>,
    /// The port DNS servers are asked on.
    pub(crate) dns_port: u16,
    /// The agent's seed (DNS query ids derive from it).
    pub(crate) seed: u64,
    /// The in-cluster API server (host, port), from the shell's environment.
    pub(crate) kubernetes_service: Option<(String, String)>,
    /// The service account's directory (token, CA, namespace).
    pub(crate) service_account_dir: Arc<str>,
    /// The AWS region of blocks that name none, from the shell's environment.
    pub(crate) aws_region: Option<Arc<str>>,
    /// Test-only API base URLs by mechanism name, without a trailing `/`
    /// ([`crate::agent::AgentOptions::api_bases`]).
    pub(crate) api_bases: std::collections::BTreeMap<String, Arc<str>>,
}

impl SdEnv {
    /// The base URL of `mechanism`'s API: the test override if one is set, else
    /// `default` (the provider's, without a trailing `/`).
    pub(crate) fn api_base(&self, mechanism: &str, default: &str) -> String {
        self.api_bases
            .get(mechanism)
            .map_or_else(|| default.to_owned(), |b| b.to_string())
    }
}

#[cfg(test)]
impl SdEnv {
    /// The environment the machines' unit tests run in: a 1 MiB body limit, the
    /// standard resolv.conf and port, no in-cluster API server.
    pub(crate) fn for_tests(seed: u64) -> SdEnv {
        SdEnv {
            user_agent: "trawl/test".into(),
            body_limit: 1 << 20,
            resolv_conf: "/etc/resolv.conf".into(),
            dns_port: 53,
            seed,
            kubernetes_service: None,
            service_account_dir: "/sa".into(),
            aws_region: None,
            api_bases: std::collections::BTreeMap::new(),
        }
    }
}

/// One service-discovery mechanism (a `<name>_sd_configs` block kind).
pub(crate) trait Mechanism: 'static {
    /// The key in a scrape config (`dns_sd_configs`).
    const KEY: &'static str;
    /// The name in provider names (`dns/3`) and logs: 3.x's `Config.Name()`.
    const NAME: &'static str;
    /// The Go type yaml.v2 names for an unknown field of the block
    /// ("field x not found in type dns.plain").
    const GO_TYPE: &'static str;
    /// Blocks are coalesced into one and placed after all others (`static_configs`).
    const COALESCED: bool = false;
    /// trawl runs this mechanism (else its blocks are validated and reported).
    const RUNS: bool;
    /// Counters the mechanism keeps (in [`SdOut::count`]).
    const COUNTERS: &'static [Counter] = &[];
    /// Summaries of durations in seconds the mechanism observes (in [`SdOut::observe`]),
    /// exported from the start with no observations.
    const SUMMARIES: &'static [Counter] = &[];
    /// A small valid block, as YAML flow (`{names: [x.example.com]}`): the fuzz target
    /// for discovery documents runs every mechanism that has one, and tests check it
    /// validates. Required of every mechanism that runs.
    const EXAMPLE: Option<&'static str> = None;
    /// The block as written (`deny_unknown_fields`: a misspelt field is an error).
    type Raw: DeserializeOwned;
    /// The validated block. Equal blocks share one provider across jobs.
    type Config: Clone + fmt::Debug + PartialEq + Send + Sync + 'static;

    /// The Go type of a nested mapping below the block, by its key, for
    /// "field x not found in type T".
    fn nested_go_type(_key: &str) -> Option<&'static str> {
        None
    }

    /// Checks one block as 3.x does, with its defaults applied.
    fn validate(raw: Self::Raw, cx: &SdContext<'_>) -> Result<Self::Config, Invalid>;

    /// Turns every block of a job into configs; blocks of a coalesced mechanism (static)
    /// override this to make one.
    fn validate_all(
        raws: Vec<(usize, Self::Raw)>,
        cx: &SdContext<'_>,
    ) -> Result<Vec<Self::Config>, Invalid> {
        raws.into_iter()
            .map(|(i, r)| {
                Self::validate(r, cx).map_err(|(p, m)| (Path::default().index(i).join(&p), m))
            })
            .collect()
    }

    /// Whether trawl runs this block: [`Mechanism::RUNS`] unless the mechanism runs
    /// some of its blocks only (`aws_sd_configs` runs `role: ec2`).
    fn runs(cfg: &Self::Config) -> bool {
        Self::unsupported(cfg).is_none()
    }

    /// What trawl does not run in this block, as warnings and `trawl check config` name
    /// it (`ec2_sd_configs with role_arn (…)`); `None` when it runs the block. By
    /// default the key, unless [`Mechanism::RUNS`].
    fn unsupported(_cfg: &Self::Config) -> Option<String> {
        (!Self::RUNS).then(|| Self::KEY.to_owned())
    }

    /// The machine that runs a block, or `None` while trawl does not run the mechanism.
    fn machine(cfg: &Self::Config, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>>;
}

/// What a machine gets when it is built.
#[derive(Debug)]
pub(crate) struct MachineContext<'a> {
    /// The agent's limits and identity.
    pub(crate) env: &'a SdEnv,
    /// The provider's name (`http/2`), for origins and logs.
    pub(crate) name: &'a Arc<str>,
    /// When it starts.
    pub(crate) now: Instant,
}

/// A running provider: the same verbs as every machine of the core. It asks for IO
/// through the shared [`IoQueue`] (generic operations only), hears back through
/// `handle_io`, keeps its own deadline, and reports target-group batches, failures and
/// counters in an [`SdOut`].
pub(crate) trait SdMachine: fmt::Debug + Send {
    /// Starts the provider (its first refresh).
    fn start(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut);
    /// True if `id` is one of this provider's operations in flight.
    fn owns(&self, id: RequestId) -> bool;
    /// An event of one of its operations.
    fn handle_io(
        &mut self,
        now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    );
    /// Its deadline has passed.
    fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut);
    /// Its next deadline.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Cancels every operation in flight; the machine is dropped afterwards.
    fn stop(&mut self, io: &mut IoQueue);
    /// Number of operations in flight (for the bounded-queue invariant).
    fn in_flight(&self) -> usize;
}

/// A boxed machine is driven as the machine itself (the tests drive what
/// [`Mechanism::machine`] built).
impl<M: SdMachine + ?Sized> SdMachine for Box<M> {
    fn start(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        (**self).start(now, io, out);
    }
    fn owns(&self, id: RequestId) -> bool {
        (**self).owns(id)
    }
    fn handle_io(
        &mut self,
        now: Instant,
        id: RequestId,
        ev: IoEvent<'_>,
        io: &mut IoQueue,
        out: &mut SdOut,
    ) {
        (**self).handle_io(now, id, ev, io, out);
    }
    fn handle_timeout(&mut self, now: Instant, io: &mut IoQueue, out: &mut SdOut) {
        (**self).handle_timeout(now, io, out);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (**self).poll_timeout()
    }
    fn stop(&mut self, io: &mut IoQueue) {
        (**self).stop(io);
    }
    fn in_flight(&self) -> usize {
        (**self).in_flight()
    }
}

/// What one call into a provider produced.
#[derive(Debug, Default)]
pub(crate) struct SdOut {
    /// Target-group batches, in order (each replaces the groups of its sources).
    pub(crate) updates: Vec<Vec<TargetGroup>>,
    /// Failures to report (the provider keeps its previous groups).
    pub(crate) failures: Vec<String>,
    /// Counter increments, by series (one of the mechanism's [`Counter`]s).
    pub(crate) counts: Vec<(CounterKey, u64)>,
    /// Durations observed, by series (one of the mechanism's summaries).
    pub(crate) observations: Vec<(CounterKey, std::time::Duration)>,
    /// The provider could not be created (3.x's "Cannot create service discovery"):
    /// counted in `prometheus_sd_failed_configs` until it is replaced.
    pub(crate) creation_failed: bool,
}

/// A counter series: the metric name and its labels.
pub type CounterKey = (&'static str, &'static [(&'static str, &'static str)]);

impl SdOut {
    /// Adds `n` to the unlabelled counter `name`.
    pub(crate) fn count(&mut self, name: &'static str, n: u64) {
        self.counts.push(((name, &[]), n));
    }

    /// Adds `n` to the series `key` of a labelled counter.
    pub(crate) fn count_series(&mut self, key: CounterKey, n: u64) {
        self.counts.push((key, n));
    }

    /// Observes a duration into the series `key` of one of the mechanism's summaries.
    pub(crate) fn observe(&mut self, key: CounterKey, d: std::time::Duration) {
        self.observations.push((key, d));
    }
}

/// A validated block of some mechanism, type-erased.
pub(crate) trait Block: fmt::Debug + Send + Sync {
    fn key(&self) -> &'static str;
    fn name(&self) -> &'static str;
    fn runs(&self) -> bool;
    fn unsupported(&self) -> Option<String>;
    fn as_any(&self) -> &dyn Any;
    fn same(&self, other: &dyn Block) -> bool;
    fn machine(&self, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>>;
}

struct Typed<M: Mechanism>(M::Config, PhantomData<fn() -> M>);

impl<M: Mechanism> fmt::Debug for Typed<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple(M::NAME).field(&self.0).finish()
    }
}

impl<M: Mechanism> Block for Typed<M> {
    fn key(&self) -> &'static str {
        M::KEY
    }
    fn name(&self) -> &'static str {
        M::NAME
    }
    fn runs(&self) -> bool {
        M::runs(&self.0)
    }
    fn unsupported(&self) -> Option<String> {
        M::unsupported(&self.0)
    }
    fn as_any(&self) -> &dyn Any {
        &self.0
    }
    fn same(&self, other: &dyn Block) -> bool {
        other
            .as_any()
            .downcast_ref::<M::Config>()
            .is_some_and(|o| *o == self.0)
    }
    fn machine(&self, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        M::machine(&self.0, cx)
    }
}

/// One service-discovery block of a job, of any registered mechanism.
#[derive(Clone, Debug)]
pub struct SdConfig(Arc<dyn Block>);

impl PartialEq for SdConfig {
    fn eq(&self, other: &SdConfig) -> bool {
        self.0.same(&*other.0)
    }
}

impl SdConfig {
    pub(crate) fn new<M: Mechanism>(config: M::Config) -> SdConfig {
        SdConfig(Arc::new(Typed::<M>(config, PhantomData)))
    }

    /// The mechanism name used in provider names and metrics (`static`, `file`, …).
    pub fn mechanism(&self) -> &'static str {
        self.0.name()
    }

    /// The key the block was written under (`file_sd_configs`).
    pub fn key(&self) -> &'static str {
        self.0.key()
    }

    /// True if trawl runs this mechanism; a block it only validates discovers nothing and
    /// is reported at load, in `trawl check config` and in `prometheus_sd_failed_configs`.
    pub fn runs(&self) -> bool {
        self.0.runs()
    }

    /// What trawl does not run of this block, for warnings (the key, or the key and
    /// what in the block it cannot do yet); `None` when it runs.
    pub fn unsupported(&self) -> Option<String> {
        self.0.unsupported()
    }

    /// The validated block, if it is a `C` (`FileSdConfig`, `DnsSdConfig`, …).
    pub fn get<C: 'static>(&self) -> Option<&C> {
        self.0.as_any().downcast_ref::<C>()
    }

    /// The target groups of the job's coalesced `static_configs`.
    pub fn static_groups(&self) -> Option<&[TargetGroup]> {
        self.get::<super::statics::StaticConfigs>()
            .map(|s| s.groups.as_slice())
    }

    pub(crate) fn machine(&self, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        self.0.machine(cx)
    }
}

/// Validates every block a scrape config holds under `M::KEY` (a null entry is an error,
/// as in 3.x's `readConfigs`), appending them to `out`, or to `tail` for a coalesced
/// mechanism.
pub(crate) fn take_blocks<M: Mechanism>(
    list: Vec<Option<M::Raw>>,
    cx: &SdContext<'_>,
    at: &Path,
    out: &mut Vec<SdConfig>,
    tail: &mut Vec<SdConfig>,
) -> Result<(), Invalid> {
    if list.is_empty() {
        return Ok(());
    }
    let at = at.key(M::KEY);
    let mut raws = Vec::with_capacity(list.len());
    for (i, r) in list.into_iter().enumerate() {
        match r {
            Some(r) => raws.push((i, r)),
            None => {
                return Err((at.index(i), format!("empty or null section in {}", M::KEY)));
            }
        }
    }
    let configs = M::validate_all(raws, cx).map_err(|(p, m)| (at.join(&p), m))?;
    let dest = if M::COALESCED { tail } else { out };
    dest.extend(configs.into_iter().map(SdConfig::new::<M>));
    Ok(())
}

/// An error about the block as a whole.
pub(crate) fn whole(message: String) -> Invalid {
    (Path::default(), message)
}

/// The path of one field of a block, for errors about that field.
pub(crate) fn at(field: &str) -> Path {
    Path::default().key(field)
}

/// A Go `string` field whose default is `default` (null leaves it empty).
pub(crate) fn text(v: Nullable<LenientString>, default: &str) -> String {
    match v {
        Nullable::Absent => default.to_owned(),
        Nullable::Null => String::new(),
        Nullable::Value(s) => s.0,
    }
}

/// A Go `[]string` field (absent or null: empty; a null item: the empty string).
pub(crate) fn texts(v: Option<Vec<LenientString>>) -> Vec<String> {
    v.unwrap_or_default().into_iter().map(|s| s.0).collect()
}

/// A `filters` entry as written (EC2's and Docker's APIs take the same shape; each
/// mechanism names its Go type for errors through `nested_go_type`).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFilter {
    #[serde(default)]
    pub(crate) name: LenientString,
    #[serde(default)]
    pub(crate) values: Option<Vec<LenientString>>,
}

/// An API filter: a name and the values it matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SdFilter {
    /// The filter's name.
    pub name: String,
    /// The values it accepts.
    pub values: Vec<String>,
}

/// `filters` as written; a null entry is an empty filter (the Go list holds values).
pub(crate) fn filters(raw: Option<Vec<Option<RawFilter>>>) -> Vec<SdFilter> {
    raw.unwrap_or_default()
        .into_iter()
        .map(|f| {
            let f = f.unwrap_or_default();
            SdFilter {
                name: f.name.0,
                values: texts(f.values),
            }
        })
        .collect()
}

/// A Go `bool` field whose default is `default` (null leaves it false).
pub(crate) fn flag(v: Nullable<Bool11>, default: bool) -> bool {
    v.onto(Bool11(default)).0
}

/// Declares a role-like string type that, like the Go types with their own
/// `UnmarshalYAML`, refuses any other value while the document is decoded (a null value
/// skips the check and leaves the empty string).
macro_rules! go_enum {
    (
        $(#[$m:meta])*
        $vis:vis struct $name:ident: [$($value:literal),+ $(,)?] else $fmt:literal;
    ) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis struct $name(pub String);

        impl $name {
            /// The values the type accepts.
            pub const VALUES: &'static [&'static str] = &[$($value),+];

            /// The value as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = $crate::common::yaml::lenient_string(d)?;
                if Self::VALUES.contains(&s.as_str()) {
                    Ok($name(s))
                } else {
                    Err(serde::de::Error::custom(format!(
                        $fmt,
                        $crate::goquote::quote(&s)
                    )))
                }
            }
        }
    };
}
pub(crate) use go_enum;

/// Helpers for the mechanisms' tests: whole configurations parsed as `trawl` parses
/// `/etc/prometheus/prometheus.yml`.
#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::Arc;

    use super::{MachineContext, SdEnv, SdMachine, SdOut};
    use crate::config::{Config, ConfigError, ParseOptions};
    use crate::io::{IoCommand, IoEvent, IoOp, IoQueue, RequestId};
    use crate::time::Instant;

    /// A request a provider started: id, URL, headers.
    pub(crate) type Started = (RequestId, String, Vec<(String, String)>);

    /// Drives one provider by hand in its unit tests: the test answers its requests and
    /// moves its clock.
    pub(crate) struct Drive<M> {
        pub(crate) m: M,
        pub(crate) io: IoQueue,
        pub(crate) out: SdOut,
        pub(crate) now: Instant,
        seen: usize,
    }

    impl<M: SdMachine> Drive<M> {
        /// Builds the provider `name` with `make` in [`SdEnv::for_tests`]`(seed)` at time
        /// 0, and starts it.
        pub(crate) fn start(
            name: &str,
            seed: u64,
            make: impl FnOnce(&MachineContext<'_>) -> M,
        ) -> Drive<M> {
            let env = SdEnv::for_tests(seed);
            let name: Arc<str> = name.into();
            let cx = MachineContext {
                env: &env,
                name: &name,
                now: Instant(0),
            };
            let mut d = Drive {
                m: make(&cx),
                io: IoQueue::default(),
                out: SdOut::default(),
                now: Instant(0),
                seen: 0,
            };
            d.m.start(d.now, &mut d.io, &mut d.out);
            d
        }

        /// HTTP requests started since the last call.
        pub(crate) fn started(&mut self) -> Vec<Started> {
            let new = self.io.queue[self.seen..]
                .iter()
                .filter_map(|c| match c {
                    IoCommand::Start(id, IoOp::Http(r)) => {
                        Some((*id, r.url.clone(), r.headers.clone()))
                    }
                    _ => None,
                })
                .collect();
            self.seen = self.io.queue.len();
            new
        }

        /// The one request started since the last call: (id, URL).
        pub(crate) fn one(&mut self) -> (RequestId, String) {
            let s = self.started();
            assert_eq!(s.len(), 1, "{s:?}");
            (s[0].0, s[0].1.clone())
        }

        /// Requests cancelled since the start.
        pub(crate) fn cancelled(&self) -> Vec<RequestId> {
            self.io
                .queue
                .iter()
                .filter_map(|c| match c {
                    IoCommand::Cancel(id) => Some(*id),
                    IoCommand::Start(..) | IoCommand::Send(..) => None,
                })
                .collect()
        }

        /// One IO event for the provider now.
        pub(crate) fn feed(&mut self, id: RequestId, ev: IoEvent<'_>) {
            self.m
                .handle_io(self.now, id, ev, &mut self.io, &mut self.out);
        }

        /// A whole HTTP answer.
        pub(crate) fn respond(
            &mut self,
            id: RequestId,
            status: u16,
            headers: &[(&str, &str)],
            body: &str,
        ) {
            self.feed(
                id,
                IoEvent::HttpHead {
                    status,
                    reason: "",
                    headers,
                },
            );
            self.feed(id, IoEvent::HttpBody(body.as_bytes()));
            self.feed(id, IoEvent::HttpEnd);
        }

        /// [`Drive::advance`], then the one request it started.
        pub(crate) fn one_after_advance(&mut self) -> (RequestId, String) {
            self.advance();
            self.one()
        }

        /// Moves the clock to the provider's next deadline and lets it act.
        pub(crate) fn advance(&mut self) -> Instant {
            let t = self.m.poll_timeout().expect("a deadline");
            assert!(t >= self.now);
            self.now = t;
            self.m.handle_timeout(t, &mut self.io, &mut self.out);
            t
        }

        /// The counter `name`, summed over its series.
        pub(crate) fn count(&self, name: &str) -> u64 {
            self.out
                .counts
                .iter()
                .filter(|((n, _), _)| *n == name)
                .map(|(_, v)| v)
                .sum()
        }
    }

    /// Drives the machine `M` builds for the block `yaml`, its API at `base` (the
    /// test-only override) when one is given.
    pub(crate) fn drive_block<M: super::Mechanism>(
        yaml: &str,
        base: Option<&str>,
    ) -> Drive<Box<dyn SdMachine>> {
        let c: M::Config = block(M::KEY, yaml);
        Drive::start(&format!("{}/0", M::NAME), 1, |cx| {
            let mut env = cx.env.clone();
            if let Some(b) = base {
                env.api_bases.insert(M::NAME.into(), b.into());
            }
            let cx = MachineContext { env: &env, ..*cx };
            M::machine(&c, &cx).expect("the mechanism runs")
        })
    }

    /// The configuration file the tests pretend to read.
    pub(crate) const FILE: &str = "/etc/prometheus/prometheus.yml";

    /// Parses a whole configuration.
    pub(crate) fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, &ParseOptions::for_path(FILE))
    }

    /// A configuration with one job `j` holding `blocks` under `key`; each block is the
    /// body of one list item (its first line lands on line 4, column 9, the next ones
    /// below it).
    pub(crate) fn job(key: &str, blocks: &[&str]) -> String {
        let mut t = format!("scrape_configs:\n  - job_name: j\n    {key}:\n");
        for b in blocks {
            for (i, line) in b.lines().enumerate() {
                t.push_str(if i == 0 { "      - " } else { "        " });
                t.push_str(line);
                t.push('\n');
            }
        }
        t
    }

    /// The validated config of the one block `body` under `key` (the block must pass).
    pub(crate) fn block<C: Clone + 'static>(key: &str, body: &str) -> C {
        let text = job(key, &[body]);
        let config = parse(&text).unwrap_or_else(|e| panic!("{text}\n=> {e}"));
        let job = config.job("j").expect("job j");
        assert_eq!(job.sd_configs.len(), 1, "{text}");
        let runs = crate::discovery::registry::by_key(key).is_some_and(|m| m.runs);
        // A mechanism that runs runs every block; one that does not may run some.
        assert!(!runs || job.sd_configs[0].runs(), "{key} runs every block");
        let runs = job.sd_configs[0].runs();
        let unsupported: Vec<String> = job.sd_configs[0].unsupported().into_iter().collect();
        assert_eq!(runs, unsupported.is_empty());
        assert_eq!(job.unsupported_sd, unsupported);
        job.sd_configs[0]
            .get::<C>()
            .cloned()
            .unwrap_or_else(|| panic!("{key} is not the expected type"))
    }

    /// The error (line, column, message) of the one block `body` under `key`.
    pub(crate) fn error_at(key: &str, body: &str) -> (usize, usize, String) {
        let text = job(key, &[body]);
        match parse(&text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => (e.line.unwrap_or(0), e.column.unwrap_or(0), e.message),
        }
    }

    /// The message the one block `body` under `key` is refused with.
    pub(crate) fn error(key: &str, body: &str) -> String {
        error_at(key, body).2
    }

    /// Checks that a null entry is refused as 3.x's `readConfigs` refuses it.
    pub(crate) fn null_entry_is_refused(key: &str) {
        let text = job(key, &["~"]);
        let e = parse(&text).expect_err("null entry");
        assert_eq!(e.message, format!("empty or null section in {key}"));
        assert_eq!((e.line, e.column), (Some(4), Some(9)));
    }

    /// Checks that an unknown field is refused naming the Go type `go_type`.
    pub(crate) fn unknown_field_names(key: &str, valid_body: &str, go_type: &str) {
        let body = format!("{valid_body}\nno_such_field: 1");
        let (line, column, msg) = error_at(key, &body);
        assert_eq!(
            msg,
            format!("field no_such_field not found in type {go_type}")
        );
        assert_eq!((line, column), (4 + valid_body.lines().count(), 9));
    }
}
