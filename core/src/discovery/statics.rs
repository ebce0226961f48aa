//! `static_configs`: target groups written in the scrape config. All entries of a job are
//! coalesced into one block, placed after every other (3.x's `readConfigs`), with sources
//! `"0"`, `"1"`, … in file order.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::groups::TargetGroup;
use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, SdOut};
use crate::common::yaml::{LenientString, Path};
use crate::goquote::quote;
use crate::io::{IoEvent, IoQueue, RequestId};
use crate::labels::{Labels, NameValidation};
use crate::time::Instant;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Static;

/// A `static_configs` entry as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStaticConfig {
    #[serde(default)]
    targets: Option<Vec<LenientString>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, LenientString>>,
}

/// A job's `static_configs`, coalesced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticConfigs {
    /// One group per entry; its index is its source.
    pub groups: Vec<TargetGroup>,
}

impl RawStaticConfig {
    /// The group for this entry; `index` becomes its source.
    fn into_group(self, index: usize, cx: &SdContext<'_>) -> Result<TargetGroup, Invalid> {
        let labels = self.labels.unwrap_or_default();
        // `model.LabelName`'s decoding checks names with the process-wide scheme, which
        // Prometheus 3.x sets to UTF-8 whatever the job's: only the empty name is
        // refused here (the job's scheme applies to the scraped series).
        for name in labels.keys() {
            if !NameValidation::Utf8.is_valid_label_name(name) {
                return Err((
                    Path::default().key("labels").key(name),
                    format!("{} is not a valid label name", quote(name)),
                ));
            }
        }
        let mut targets = Vec::new();
        for (i, t) in self.targets.unwrap_or_default().into_iter().enumerate() {
            // Without relabeling, a target is used as written: it must be a host name.
            if cx.no_relabeling && t.0.contains('/') {
                return Err((
                    Path::default().key("targets").index(i),
                    format!("{} is not a valid hostname", quote(&t.0)),
                ));
            }
            targets.push(Labels::single(crate::labels::ADDRESS, &t.0));
        }
        Ok(TargetGroup {
            targets,
            labels: Labels::from_pairs(labels.into_iter().map(|(k, v)| (k, v.0))),
            source: index.to_string(),
        })
    }
}

impl Mechanism for Static {
    const KEY: &'static str = "static_configs";
    const EXAMPLE: Option<&'static str> =
        Some("{targets: ['127.0.0.1:9100'], labels: {env: test}}");
    const NAME: &'static str = "static";
    const GO_TYPE: &'static str = "struct { Targets []string \"yaml:\\\"targets\\\"\"; Labels model.LabelSet \"yaml:\\\"labels\\\"\" }";
    const COALESCED: bool = true;
    const RUNS: bool = true;
    type Raw = RawStaticConfig;
    type Config = StaticConfigs;

    fn validate(raw: RawStaticConfig, cx: &SdContext<'_>) -> Result<StaticConfigs, Invalid> {
        Ok(StaticConfigs {
            groups: vec![raw.into_group(0, cx)?],
        })
    }

    fn validate_all(
        raws: Vec<(usize, RawStaticConfig)>,
        cx: &SdContext<'_>,
    ) -> Result<Vec<StaticConfigs>, Invalid> {
        let mut groups = Vec::with_capacity(raws.len());
        for (i, r) in raws {
            groups.push(
                r.into_group(i, cx)
                    .map_err(|(p, m)| (Path::default().index(i).join(&p), m))?,
            );
        }
        Ok(vec![StaticConfigs { groups }])
    }

    fn machine(cfg: &StaticConfigs, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        Some(Box::new(StaticSd(cfg.groups.clone())))
    }
}

/// Sends its groups once at start; nothing after.
#[derive(Debug)]
struct StaticSd(Vec<TargetGroup>);

impl SdMachine for StaticSd {
    fn start(&mut self, _: Instant, _: &mut IoQueue, out: &mut SdOut) {
        out.updates.push(self.0.clone());
    }
    fn owns(&self, _: RequestId) -> bool {
        false
    }
    fn handle_io(
        &mut self,
        _: Instant,
        _: RequestId,
        _: IoEvent<'_>,
        _: &mut IoQueue,
        _: &mut SdOut,
    ) {
    }
    fn handle_timeout(&mut self, _: Instant, _: &mut IoQueue, _: &mut SdOut) {}
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn stop(&mut self, _: &mut IoQueue) {}
    fn in_flight(&self) -> usize {
        0
    }
}
