//! Partial evaluation of `relabel_configs` for one target group.
//!
//! The targets of a group share every label but their own (for file, HTTP and static
//! discovery, just `__address__`), and most rules of a typical job read only shared
//! labels: keep on an annotation, copy the namespace, map the pod labels. Such a rule has
//! the same effect on every target of the group, so a [`GroupPlan`] applies it once to
//! the group's layer and each target then runs only the rules that read its own labels.
//!
//! Soundness. Call a label name *dependent* if its value may differ between targets: the
//! targets' own label names, and every name a per-target rule may write. A rule that
//! reads a dependent name is per-target (its writes must be known names, or planning
//! gives up); any other rule is *invariant* and is applied to the group's layer, in
//! order. Running all invariant rules first and then the per-target ones equals running
//! them interleaved when each invariant rule commutes with every per-target rule before
//! it: the invariant rule reads no dependent name (so no per-target write), and the names
//! it writes ([`RelabelConfig::writes`], computed on the layer just before it) are
//! neither dependent — not even a write that changes nothing in the layer, since a
//! target's own value would differ — nor read by an earlier per-target rule. A change that breaks this
//! makes planning give up and the group is relabeled target by target. An invariant drop
//! drops the whole group, reported as that rule unless an earlier per-target rule drops
//! the target first. A property test compares plans with [`populate`] over random rules.

use std::collections::BTreeSet;

use super::{Populated, finalise, group_layer, populate_in_group};
use crate::config::ScrapeConfig;
use crate::labels::{Labels, LabelsBuilder, SavedLabels};
use crate::relabel::{self, Action, Outcome, RelabelConfig};

#[cfg(doc)]
use super::populate;

/// Groups with fewer targets are relabeled target by target: planning costs about as much
/// as relabeling a target or two.
const MIN_TARGETS: usize = 4;

/// How the targets of one group are relabeled: the group's shared layer, and where
/// possible the rules evaluated once for the whole group (see the module docs).
#[derive(Clone, Debug)]
pub struct GroupPlan<'a> {
    base: SavedLabels<'a>,
    pub(super) partial: Option<Partial<'a>>,
}

#[derive(Clone, Debug)]
pub(super) struct Partial<'a> {
    /// The layer after the invariant rules; `__meta_*` labels only where a per-target
    /// rule reads them (finalisation removes the rest).
    start: SavedLabels<'a>,
    /// Indices of the per-target rules, ascending.
    pub(super) rules: Vec<usize>,
    /// The invariant rule that drops every target of the group.
    pub(super) drop: Option<usize>,
    /// The targets' own label names, sorted: a target with another name is relabeled in
    /// full.
    own: Vec<&'a str>,
}

impl<'a> GroupPlan<'a> {
    /// Plans the relabeling of `targets`, which share the group labels `group`.
    pub fn new(
        group: &'a Labels,
        targets: &'a [Labels],
        cfg: &'a ScrapeConfig,
        lb: &mut LabelsBuilder<'a>,
    ) -> GroupPlan<'a> {
        GroupPlan::with_threshold(group, targets, cfg, lb, MIN_TARGETS)
    }

    /// [`GroupPlan::new`], planning only when the group has at least `min_targets`.
    pub(crate) fn with_threshold(
        group: &'a Labels,
        targets: &'a [Labels],
        cfg: &'a ScrapeConfig,
        lb: &mut LabelsBuilder<'a>,
        min_targets: usize,
    ) -> GroupPlan<'a> {
        let base = group_layer(group, cfg, lb);
        let partial = if targets.len() >= min_targets {
            plan(&base, targets, cfg, lb)
        } else {
            None
        };
        GroupPlan { base, partial }
    }

    /// True if the rules were partly evaluated for the whole group.
    pub fn is_partial(&self) -> bool {
        self.partial.is_some()
    }

    /// Relabels and finalises one target of the group: the same result as [`populate`].
    pub fn populate(
        &self,
        target: &'a Labels,
        cfg: &'a ScrapeConfig,
        lb: &mut LabelsBuilder<'a>,
    ) -> Result<Populated, String> {
        let Some(p) = &self.partial else {
            return populate_in_group(target, &self.base, cfg, lb);
        };
        if !target.iter().all(|(n, _)| p.own.binary_search(&n).is_ok()) {
            return populate_in_group(target, &self.base, cfg, lb);
        }
        lb.restore(&p.start);
        for (n, v) in target.iter() {
            lb.set(n, v);
        }
        if let Outcome::Dropped { rule } =
            relabel::process_selected(&cfg.relabel_configs, &p.rules, lb)
        {
            return Ok(Populated::Dropped { rule });
        }
        if let Some(rule) = p.drop {
            return Ok(Populated::Dropped { rule });
        }
        finalise(lb, cfg)
    }
}

/// Does `rule` read a name in `dep`? Name-pattern rules read the names they match (and
/// `labelkeep` the names it removes).
fn reads_dependent(rule: &RelabelConfig, dep: &BTreeSet<&str>) -> bool {
    match rule.action {
        Action::LabelMap | Action::LabelDrop => dep.iter().any(|n| rule.regex.is_match(n)),
        Action::LabelKeep => dep.iter().any(|n| !rule.regex.is_match(n)),
        Action::KeepEqual | Action::DropEqual => {
            dep.contains(rule.target_label.as_str())
                || rule.source_labels.iter().any(|n| dep.contains(n.as_str()))
        }
        _ => rule.source_labels.iter().any(|n| dep.contains(n.as_str())),
    }
}

fn plan<'a>(
    base: &SavedLabels<'a>,
    targets: &'a [Labels],
    cfg: &'a ScrapeConfig,
    lb: &mut LabelsBuilder<'a>,
) -> Option<Partial<'a>> {
    let mut own: Vec<&'a str> = targets
        .iter()
        .flat_map(|t| t.iter().map(|(n, _)| n))
        .collect();
    own.sort_unstable();
    own.dedup();
    let mut dep: BTreeSet<&'a str> = own.iter().copied().collect();
    let mut dep_reads: BTreeSet<&'a str> = BTreeSet::new();
    let mut rules = Vec::new();
    let mut drop = None;
    lb.restore(base);
    for (i, rule) in cfg.relabel_configs.iter().enumerate() {
        if reads_dependent(rule, &dep) {
            match rule.action {
                Action::Keep | Action::Drop | Action::KeepEqual | Action::DropEqual => {}
                Action::Replace => {
                    dep.insert(rule.literal_target()?);
                }
                Action::HashMod | Action::Lowercase | Action::Uppercase => {
                    dep.insert(rule.target_label.as_str());
                }
                // Their writes depend on which dependent names a target has.
                Action::LabelMap | Action::LabelDrop | Action::LabelKeep => return None,
            }
            dep_reads.extend(rule.source_labels.iter().map(String::as_str));
            if matches!(rule.action, Action::KeepEqual | Action::DropEqual) {
                dep_reads.insert(rule.target_label.as_str());
            }
            rules.push(i);
            continue;
        }
        // A write to a dependent name would override (or be overridden by) the targets'
        // own values, even where it changes nothing in the group's layer; a write to a
        // name an earlier per-target rule read would change what that rule saw.
        if rule
            .writes(lb)
            .iter()
            .any(|n| dep.contains(n.as_str()) || dep_reads.contains(n.as_str()))
        {
            return None;
        }
        if !relabel::apply_one(rule, lb) {
            drop = Some(i);
            break;
        }
    }
    let mut start = lb.save();
    start.retain_meta(|n| dep_reads.contains(n));
    Some(Partial {
        start,
        rules,
        drop,
        own,
    })
}
