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
use crate::config::PathResolver;
use crate::config::yaml::Path;
use crate::io::{IoEvent, IoQueue, RequestId};
use crate::labels::NameValidation;
use crate::time::Instant;

/// A validation error: where below the block (empty for the block itself) and what.
pub(crate) type Invalid = (Path, String);

/// A counter a mechanism keeps, under Prometheus's name; exported from the start at 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    /// Prometheus's metric name.
    pub name: &'static str,
    /// Its help text.
    pub help: &'static str,
}

/// What a block's validation may need from the scrape config around it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SdContext<'a> {
    /// Resolves file paths against the config file's directory.
    pub(crate) paths: PathResolver<'a>,
    /// The job's label-name validation scheme.
    pub(crate) scheme: NameValidation,
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

/// What one call into a provider produced.
#[derive(Debug, Default)]
pub(crate) struct SdOut {
    /// Target-group batches, in order (each replaces the groups of its sources).
    pub(crate) updates: Vec<Vec<TargetGroup>>,
    /// Failures to report (the provider keeps its previous groups).
    pub(crate) failures: Vec<String>,
    /// Counter increments, by metric name (one of the mechanism's [`Counter`]s).
    pub(crate) counts: Vec<(&'static str, u64)>,
}

impl SdOut {
    /// Adds `n` to the counter `name`.
    pub(crate) fn count(&mut self, name: &'static str, n: u64) {
        self.counts.push((name, n));
    }
}

/// A validated block of some mechanism, type-erased.
pub(crate) trait Block: fmt::Debug + Send + Sync {
    fn key(&self) -> &'static str;
    fn name(&self) -> &'static str;
    fn runs(&self) -> bool;
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
        M::RUNS
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
