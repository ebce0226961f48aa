//! Relabeling (`relabel_configs`, `metric_relabel_configs`): the eleven Prometheus actions,
//! their validation, and [`process`], which applies a rule list to a label builder.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use md5::{Digest, Md5};
use serde::Deserialize;

use crate::common::yaml::{LenientString, Nullable};
use crate::goquote::quote;
use crate::goregex::{Captures, GoRegex, ReplaceScratch, Template};
use crate::labels::{LabelsBuilder, META_PREFIX, NameValidation};

/// A relabel action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Set `target_label` to the expanded `replacement` if `regex` matches.
    Replace,
    /// Drop unless `regex` matches.
    Keep,
    /// Drop if `regex` matches.
    Drop,
    /// Drop unless the value of `target_label` equals the source value.
    KeepEqual,
    /// Drop if the value of `target_label` equals the source value.
    DropEqual,
    /// Set `target_label` to `md5(value) mod modulus`.
    HashMod,
    /// Copy labels whose names match `regex` to names built from `replacement`.
    LabelMap,
    /// Remove labels whose names match `regex`.
    LabelDrop,
    /// Remove labels whose names do not match `regex`.
    LabelKeep,
    /// Set `target_label` to the lower-cased source value.
    Lowercase,
    /// Set `target_label` to the upper-cased source value.
    Uppercase,
}

impl Action {
    /// The action's name as written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Parses an action name, case-insensitively.
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The default regex `(.*)`.
pub const DEFAULT_REGEX: &str = "(.*)";
/// The default separator `;`.
pub const DEFAULT_SEPARATOR: &str = ";";
/// The default replacement `$1`.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// One relabel rule as written in YAML, before validation. `None` means "not written",
/// so validation can tell a default from an explicit value as Prometheus does.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelabelConfig {
    #[serde(default, deserialize_with = "crate::common::yaml::label_names_opt")]
    source_labels: Option<Vec<String>>,
    #[serde(default)]
    separator: Nullable<LenientString>,
    #[serde(default)]
    regex: Nullable<LenientString>,
    #[serde(default)]
    modulus: Nullable<u64>,
    #[serde(default)]
    target_label: Nullable<LenientString>,
    #[serde(default)]
    replacement: Nullable<LenientString>,
    #[serde(default)]
    action: Nullable<LenientString>,
}

/// A validated relabel rule, ready to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelabelConfig {
    /// Labels whose values are joined to form the input value.
    pub source_labels: Vec<String>,
    /// Separator between source values.
    pub separator: String,
    /// The anchored regex.
    pub regex: GoRegex,
    /// Modulus for `hashmod`.
    pub modulus: u64,
    /// Target label (may contain `$` templates for `replace`).
    pub target_label: String,
    /// Replacement template.
    pub replacement: String,
    /// The action.
    pub action: Action,
    /// Name validation applied to expanded target labels.
    pub scheme: NameValidation,
    target_template: Template,
    replacement_template: Template,
}

/// Compiles each distinct regex pattern once.
#[derive(Debug, Default)]
pub struct RegexCache {
    compiled: BTreeMap<String, GoRegex>,
}

impl RegexCache {
    /// Returns the compiled regex for `pattern`, compiling it on first use.
    pub fn get(&mut self, pattern: &str) -> Result<GoRegex, String> {
        if let Some(r) = self.compiled.get(pattern) {
            return Ok(r.clone());
        }
        let r = GoRegex::new(pattern).map_err(|e| e.to_string())?;
        self.compiled.insert(pattern.to_owned(), r.clone());
        Ok(r)
    }

    /// Number of distinct compiled patterns.
    pub fn len(&self) -> usize {
        self.compiled.len()
    }

    /// True if nothing was compiled.
    pub fn is_empty(&self) -> bool {
        self.compiled.is_empty()
    }
}

fn var_in_template(s: &str) -> bool {
    // Prometheus: `\$[{]?[a-zA-Z0-9_]+`... simplified to "has a $ followed by a name".
    let b = s.as_bytes();
    b.iter().enumerate().any(|(i, c)| {
        *c == b'$' && {
            let rest = &b[i + 1..];
            let rest = rest.strip_prefix(b"{").unwrap_or(rest);
            rest.first()
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        }
    })
}

/// `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`: a legacy label name that may contain
/// `$1`, `${1}`, `$name` templates.
fn is_legacy_template_name(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    // The first unit must be a letter/underscore or a $ reference; after that the
    // pattern allows any mix of word characters and $ references.
    let mut first = true;
    while i < b.len() {
        if b[i] == b'$' {
            i += 1;
            if b.get(i) == Some(&b'{') {
                let st = i + 1;
                let mut j = st;
                while j < b.len() && word(b[j]) {
                    j += 1;
                }
                if j == st || b.get(j) != Some(&b'}') {
                    return false;
                }
                i = j + 1;
            } else {
                let st = i;
                while i < b.len() && word(b[i]) {
                    i += 1;
                }
                if i == st {
                    return false;
                }
            }
        } else if (first && !(b[i].is_ascii_alphabetic() || b[i] == b'_')) || !word(b[i]) {
            return false;
        } else {
            i += 1;
        }
        first = false;
    }
    true
}

impl RelabelConfig {
    /// Validates a raw rule under `scheme`, compiling its regex through `cache`. Errors
    /// carry Prometheus's texts.
    pub fn from_raw(
        raw: RawRelabelConfig,
        scheme: NameValidation,
        cache: &mut RegexCache,
    ) -> Result<RelabelConfig, String> {
        let str_or = |n: Nullable<LenientString>, default: &str| match n {
            Nullable::Absent => default.to_owned(),
            Nullable::Null => String::new(),
            Nullable::Value(v) => v.0,
        };
        let action_str = str_or(raw.action, "replace");
        if action_str.is_empty() {
            return Err("relabel action cannot be empty".into());
        }
        let Some(action) = Action::parse(&action_str) else {
            return Err(format!("unknown relabel action {}", quote(&action_str)));
        };
        let regex_written = !matches!(raw.regex, Nullable::Absent);
        let pattern = str_or(raw.regex, DEFAULT_REGEX);
        let regex = cache.get(&pattern)?;
        let modulus = match raw.modulus {
            Nullable::Value(m) => m,
            _ => 0,
        };
        let separator = str_or(raw.separator, DEFAULT_SEPARATOR);
        let target_label = str_or(raw.target_label, "");
        let replacement = str_or(raw.replacement, DEFAULT_REPLACEMENT);
        let source_set = raw.source_labels.is_some();
        let source_labels = raw.source_labels.unwrap_or_default();

        use Action::*;
        let valid_name = |s: &str| scheme.is_valid_label_name(s);
        let valid_with_vars = |s: &str| match scheme {
            NameValidation::Utf8 => !s.is_empty(),
            NameValidation::Legacy => is_legacy_template_name(s),
        };
        if modulus == 0 && action == HashMod {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        if matches!(
            action,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        ) && target_label.is_empty()
        {
            return Err(format!(
                "relabel configuration for {action} action requires 'target_label' value"
            ));
        }
        if action == Replace
            && ((!var_in_template(&target_label) && !valid_name(&target_label))
                || (var_in_template(&target_label) && !valid_with_vars(&target_label)))
        {
            return Err(format!(
                "{} is invalid 'target_label' for {action} action",
                quote(&target_label)
            ));
        }
        let equal_or_case = matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual);
        if equal_or_case && !valid_name(&target_label) {
            return Err(format!(
                "{} is invalid 'target_label' for {action} action",
                quote(&target_label)
            ));
        }
        if equal_or_case && replacement != DEFAULT_REPLACEMENT {
            return Err(format!("'replacement' can not be set for {action} action"));
        }
        if action == LabelMap && !valid_with_vars(&replacement) {
            return Err(format!(
                "{} is invalid 'replacement' for {action} action",
                quote(&replacement)
            ));
        }
        if action == HashMod && !valid_name(&target_label) {
            return Err(format!(
                "{} is invalid 'target_label' for {action} action",
                quote(&target_label)
            ));
        }
        if matches!(action, KeepEqual | DropEqual)
            && (regex_written
                || modulus != 0
                || separator != DEFAULT_SEPARATOR
                || replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{action} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(action, LabelDrop | LabelKeep)
            && (source_set
                || !target_label.is_empty()
                || modulus != 0
                || separator != DEFAULT_SEPARATOR
                || replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{action} action requires only 'regex', and no other fields"
            ));
        }
        let target_template = Template::new(&target_label, &regex);
        let replacement_template = Template::new(&replacement, &regex);
        Ok(RelabelConfig {
            source_labels,
            separator,
            regex,
            modulus,
            target_label,
            replacement,
            action,
            scheme,
            target_template,
            replacement_template,
        })
    }

    /// The target label when it has no `$` template (the one name a `replace` can set).
    pub(crate) fn literal_target(&self) -> Option<&str> {
        self.target_template.as_literal()
    }

    /// The names this rule would write (set or delete) if applied to `lb` now, whether or
    /// not the write changes anything; `labeldrop`/`labelkeep` give the present names they
    /// would remove.
    pub(crate) fn writes(&self, lb: &LabelsBuilder<'_>) -> Vec<String> {
        let mut caps = Captures::default();
        match self.action {
            Action::Keep | Action::Drop | Action::KeepEqual | Action::DropEqual => Vec::new(),
            Action::HashMod | Action::Lowercase | Action::Uppercase => {
                vec![self.target_label.clone()]
            }
            Action::Replace => {
                if let Some(t) = self.literal_target() {
                    return vec![t.to_owned()];
                }
                let mut val = String::new();
                join_sources(self, lb, &mut val);
                if !self.regex.captures(&val, &mut caps) {
                    return Vec::new();
                }
                let mut t = String::new();
                self.target_template.expand(&val, &caps, &mut t);
                vec![t]
            }
            Action::LabelMap => {
                let mut out = Vec::new();
                for (n, _) in lb.iter() {
                    if self.regex.captures(n, &mut caps) {
                        let mut name = String::new();
                        self.replacement_template.expand(n, &caps, &mut name);
                        out.push(name);
                    }
                }
                out
            }
            Action::LabelDrop => lb
                .iter()
                .filter(|(n, _)| self.regex.is_match(n))
                .map(|(n, _)| n.to_owned())
                .collect(),
            Action::LabelKeep => lb
                .iter()
                .filter(|(n, _)| !self.regex.is_match(n))
                .map(|(n, _)| n.to_owned())
                .collect(),
        }
    }

    /// A rule with defaults for everything but `action`; for tests and programmatic use.
    pub fn builder(action: Action) -> RelabelConfigBuilder {
        RelabelConfigBuilder {
            raw: RawRelabelConfig {
                action: Nullable::Value(LenientString(action.as_str().into())),
                ..RawRelabelConfig::default()
            },
        }
    }
}

/// Builds a [`RelabelConfig`] in code, with the same validation as YAML.
#[derive(Clone, Debug)]
pub struct RelabelConfigBuilder {
    raw: RawRelabelConfig,
}

impl RelabelConfigBuilder {
    /// Sets `source_labels`.
    pub fn source_labels(mut self, names: &[&str]) -> Self {
        self.raw.source_labels = Some(names.iter().map(|s| (*s).to_owned()).collect());
        self
    }
    /// Sets `separator`.
    pub fn separator(mut self, s: &str) -> Self {
        self.raw.separator = Nullable::Value(LenientString(s.into()));
        self
    }
    /// Sets `regex`.
    pub fn regex(mut self, s: &str) -> Self {
        self.raw.regex = Nullable::Value(LenientString(s.into()));
        self
    }
    /// Sets `modulus`.
    pub fn modulus(mut self, m: u64) -> Self {
        self.raw.modulus = Nullable::Value(m);
        self
    }
    /// Sets `target_label`.
    pub fn target_label(mut self, s: &str) -> Self {
        self.raw.target_label = Nullable::Value(LenientString(s.into()));
        self
    }
    /// Sets `replacement`.
    pub fn replacement(mut self, s: &str) -> Self {
        self.raw.replacement = Nullable::Value(LenientString(s.into()));
        self
    }
    /// Validates (UTF-8 name scheme) and compiles.
    pub fn build(self) -> Result<RelabelConfig, String> {
        RelabelConfig::from_raw(self.raw, NameValidation::Utf8, &mut RegexCache::default())
    }
}

/// What [`process`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every rule ran; the builder holds the result.
    Keep,
    /// The rule at this index dropped the label set.
    Dropped {
        /// Index of the dropping rule in the list.
        rule: usize,
    },
}

/// `md5(value)`, bytes 8..16 as a big-endian integer, modulo `modulus` (Go's `sum64`).
pub fn hashmod(value: &str, modulus: u64) -> u64 {
    let digest = Md5::digest(value.as_bytes());
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&digest[8..16]);
    u64::from_be_bytes(tail) % modulus
}

/// Applies `rules` in order to `lb`. Stops at the first rule that drops.
///
/// Target labels for `labelmap` are visited in name order, so when two labels map to the
/// same new name the last in name order wins (Prometheus 2.42's order; 3.x leaves it to
/// map iteration).
pub fn process<'a>(rules: &'a [RelabelConfig], lb: &mut LabelsBuilder<'a>) -> Outcome {
    with_scratch(lb, |lb, s| run_rules(rules.iter().enumerate(), lb, s))
}

/// [`process`] over the rules at the given indices only (ascending), for the per-target
/// part of a group plan. A drop reports the rule's index in `rules`.
pub(crate) fn process_selected<'a>(
    rules: &'a [RelabelConfig],
    which: &[usize],
    lb: &mut LabelsBuilder<'a>,
) -> Outcome {
    with_scratch(lb, |lb, s| {
        run_rules(
            which.iter().filter_map(|&i| Some((i, rules.get(i)?))),
            lb,
            s,
        )
    })
}

/// Applies one rule; false if it drops.
pub(crate) fn apply_one<'a>(rule: &'a RelabelConfig, lb: &mut LabelsBuilder<'a>) -> bool {
    with_scratch(lb, |lb, s| {
        run_rules(std::iter::once((0, rule)), lb, s) == Outcome::Keep
    })
}

fn with_scratch<'a, R>(
    lb: &mut LabelsBuilder<'a>,
    f: impl FnOnce(&mut LabelsBuilder<'a>, &mut ReplaceScratch) -> R,
) -> R {
    let mut scratch = std::mem::take(&mut lb.scratch);
    let r = f(lb, &mut scratch);
    lb.scratch = scratch;
    r
}

/// The rule's input: its source labels' values joined by its separator.
fn join_sources(rule: &RelabelConfig, lb: &LabelsBuilder<'_>, val: &mut String) {
    for (k, name) in rule.source_labels.iter().enumerate() {
        if k > 0 {
            val.push_str(&rule.separator);
        }
        val.push_str(lb.get(name).unwrap_or(""));
    }
}

fn run_rules<'a>(
    rules: impl Iterator<Item = (usize, &'a RelabelConfig)>,
    lb: &mut LabelsBuilder<'a>,
    s: &mut ReplaceScratch,
) -> Outcome {
    let ReplaceScratch {
        val,
        caps,
        out: scratch,
    } = s;
    for (i, rule) in rules {
        val.clear();
        // With one source, keep its value as the builder holds it: a rule copying it
        // whole then needs no second lookup and no allocation.
        let mut single = None;
        if let [name] = rule.source_labels.as_slice() {
            let v = lb.get_cow(name);
            val.push_str(v.as_deref().unwrap_or(""));
            single = Some(v);
        } else {
            join_sources(rule, lb, val);
        }
        if !apply(rule, lb, val, single, caps, scratch) {
            return Outcome::Dropped { rule: i };
        }
    }
    Outcome::Keep
}

/// Applies one rule; false if it drops. `single` is the value of the rule's only source
/// label, when it has exactly one.
fn apply<'a>(
    rule: &'a RelabelConfig,
    lb: &mut LabelsBuilder<'a>,
    val: &str,
    single: Option<Option<Cow<'a, str>>>,
    caps: &mut Captures,
    scratch: &mut String,
) -> bool {
    match rule.action {
        Action::Drop => !rule.regex.is_match(val),
        Action::Keep => rule.regex.is_match(val),
        Action::KeepEqual => lb.get(&rule.target_label).unwrap_or("") == val,
        Action::DropEqual => lb.get(&rule.target_label).unwrap_or("") != val,
        Action::Replace => {
            if !rule.regex.captures(val, caps) {
                return true;
            }
            let target: Cow<'a, str> = match rule.target_template.as_literal() {
                Some(literal) => Cow::Borrowed(literal),
                None => {
                    let mut t = String::new();
                    rule.target_template.expand(val, caps, &mut t);
                    Cow::Owned(t)
                }
            };
            if !rule.scheme.is_valid_label_name(&target) {
                return true;
            }
            // `$1` of a whole single source value (the common "copy a label" rule): reuse
            // the source's value instead of allocating.
            if let Some(source) = single
                && rule
                    .replacement_template
                    .single_group()
                    .is_some_and(|g| caps.span(g) == Some((0, val.len())))
            {
                match source {
                    Some(v) => lb.set(target, v),
                    None => lb.del(&target),
                }
                return true;
            }
            scratch.clear();
            rule.replacement_template.expand(val, caps, scratch);
            if scratch.is_empty() {
                lb.del(&target);
            } else {
                lb.set(target, scratch.clone());
            }
            true
        }
        Action::HashMod => {
            let m = hashmod(val, rule.modulus);
            lb.set(rule.target_label.as_str(), m.to_string());
            true
        }
        Action::LabelMap => {
            let mut add = lb.take_batch();
            // Only names with the regex's literal prefix can match: visit just those.
            let candidates = match rule.regex.literal_prefix() {
                Some(p) => lb.with_prefix_cow(p),
                None => Box::new(lb.iter_cow()),
            };
            for (name, value) in candidates {
                if rule.regex.captures(name, caps) {
                    // `$1` naming a part of a borrowed name: borrow that part.
                    if let (Cow::Borrowed(whole), Some(g)) =
                        (name, rule.replacement_template.single_group())
                    {
                        let (s, e) = caps.span(g).unwrap_or((0, 0));
                        add.push((Cow::Borrowed(&whole[s..e]), value.clone()));
                        continue;
                    }
                    let mut n = String::new();
                    rule.replacement_template.expand(name, caps, &mut n);
                    add.push((Cow::Owned(n), value.clone()));
                }
            }
            for (n, v) in add.drain(..) {
                lb.set(n, v);
            }
            lb.put_batch(add);
            true
        }
        // When the regex cannot match any `__meta_*` name, the meta block is kept
        // (labeldrop) or removed (labelkeep) without testing each name.
        Action::LabelDrop => {
            if rule.regex.may_match_prefix(META_PREFIX) {
                lb.retain(|n| !rule.regex.is_match(n));
            } else {
                lb.retain_other(|n| !rule.regex.is_match(n), true);
            }
            true
        }
        Action::LabelKeep => {
            if rule.regex.may_match_prefix(META_PREFIX) {
                lb.retain(|n| rule.regex.is_match(n));
            } else {
                lb.retain_other(|n| rule.regex.is_match(n), false);
            }
            true
        }
        Action::Lowercase => {
            lb.set(rule.target_label.as_str(), val.to_lowercase());
            true
        }
        Action::Uppercase => {
            lb.set(rule.target_label.as_str(), val.to_uppercase());
            true
        }
    }
}

#[cfg(test)]
mod tests;
