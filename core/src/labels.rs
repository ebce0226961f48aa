//! Label sets: a compact, immutable, sorted [`Labels`] and a [`LabelsBuilder`] to edit one.
//!
//! A `Labels` is one reference-counted string holding every name and value, each
//! preceded by its length, sorted by name. Cloning is a reference-count increment;
//! building allocates once. Names are unique.
//!
//! The hashes Prometheus uses to place targets are here too: [`Labels::hash`] (3.x,
//! "stringlabels") and [`Labels::hash_slicelabels`] (2.42).

use std::borrow::Cow;
use std::cell::Cell;
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use xxhash_rust::xxh64::xxh64;

/// The reserved label for the metric name.
pub const METRIC_NAME: &str = "__name__";
/// Target address (`host:port`).
pub const ADDRESS: &str = "__address__";
/// Target scheme.
pub const SCHEME: &str = "__scheme__";
/// Target metrics path.
pub const METRICS_PATH: &str = "__metrics_path__";
/// Per-target scrape interval.
pub const SCRAPE_INTERVAL: &str = "__scrape_interval__";
/// Per-target scrape timeout.
pub const SCRAPE_TIMEOUT: &str = "__scrape_timeout__";
/// Prefix of URL parameter labels.
pub const PARAM_PREFIX: &str = "__param_";
/// Prefix of discovery metadata labels, removed after relabeling.
pub const META_PREFIX: &str = "__meta_";
/// Prefix of labels reserved for internal use; never attached to series.
pub const RESERVED_PREFIX: &str = "__";
/// The job label.
pub const JOB: &str = "job";
/// The instance label.
pub const INSTANCE: &str = "instance";
/// 3.x histogram flag label: scrape native histograms.
pub const SCRAPE_NATIVE_HISTOGRAMS: &str = "__scrape_native_histograms__";
/// 3.x histogram flag label: always scrape classic histograms.
pub const ALWAYS_SCRAPE_CLASSIC_HISTOGRAMS: &str = "__always_scrape_classic_histograms__";
/// 3.x histogram flag label: convert classic histograms to NHCB.
pub const CONVERT_CLASSIC_HISTOGRAMS_TO_NHCB: &str = "__convert_classic_histograms_to_nhcb__";

/// How label and metric names are validated (`metric_name_validation_scheme`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NameValidation {
    /// Prometheus 3.x default: any non-empty UTF-8 string.
    #[default]
    Utf8,
    /// `[a-zA-Z_][a-zA-Z0-9_]*`.
    Legacy,
}

impl NameValidation {
    /// True if `name` is a valid label name under this scheme.
    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            NameValidation::Utf8 => !name.is_empty(),
            NameValidation::Legacy => is_legacy_label_name(name),
        }
    }

    /// True if `name` is a valid metric name under this scheme (legacy:
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`).
    pub fn is_valid_metric_name(self, name: &str) -> bool {
        match self {
            NameValidation::Utf8 => !name.is_empty(),
            NameValidation::Legacy => {
                let b = name.as_bytes();
                !b.is_empty()
                    && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
                    && b[1..]
                        .iter()
                        .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
            }
        }
    }
}

/// True if `name` matches `^[a-zA-Z_][a-zA-Z0-9_]*$`.
pub fn is_legacy_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

pub use crate::bytes::{cmp_bytes, eq_bytes};

/// A 128-bit identity hash: two values are taken to be equal when their keys are.
///
/// Used where memory matters more than keeping the value itself: the series cache keys
/// series by the key of their exposed text, and the WAL writer indexes label sets by
/// [`Labels::key`]. Among a billion distinct values the odds of any collision are about
/// 10^-21. Not Prometheus's hash (that is [`Labels::hash`]) and never written anywhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key128(pub u64, pub u64);

impl Key128 {
    /// The key of `bytes`.
    #[inline]
    pub fn of(bytes: &[u8]) -> Key128 {
        let h = xxhash_rust::xxh3::xxh3_128(bytes);
        Key128(h as u64, (h >> 64) as u64)
    }
}

impl std::hash::Hash for Key128 {
    /// One word: the key is already uniformly distributed.
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u64(self.0);
    }
}

/// An immutable, sorted set of labels with unique names, stored in one allocation.
///
/// Layout: for each label in name order, `len(name) name len(value) value`, where a
/// length is written in 6-bit little-endian groups as ASCII bytes (`0x40` marks a
/// continuation), so the whole buffer is a valid `str`.
#[derive(Clone)]
pub struct Labels(Arc<str>);

fn push_len(buf: &mut String, mut n: usize) {
    while n >= 0x40 {
        // Both arms produce values below 0x80, so the byte is ASCII.
        buf.push(char::from(0x40 | (n & 0x3f) as u8));
        n >>= 6;
    }
    buf.push(char::from(n as u8));
}

#[inline]
fn read_len(b: &[u8], pos: &mut usize) -> usize {
    let first = b[*pos];
    if first & 0x40 == 0 {
        *pos += 1;
        return first as usize;
    }
    let mut n = 0usize;
    let mut shift = 0;
    loop {
        let byte = b[*pos];
        *pos += 1;
        n |= ((byte & 0x3f) as usize) << shift;
        if byte & 0x40 == 0 {
            return n;
        }
        shift += 6;
    }
}

/// Iterator over `(name, value)` pairs of a [`Labels`], in name order.
#[derive(Clone, Debug)]
pub struct LabelsIter<'a> {
    data: &'a str,
    pos: usize,
}

impl<'a> Iterator for LabelsIter<'a> {
    type Item = (&'a str, &'a str);
    #[inline]
    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        if self.pos >= self.data.len() {
            return None;
        }
        let b = self.data.as_bytes();
        let nl = read_len(b, &mut self.pos);
        let name = &self.data[self.pos..self.pos + nl];
        self.pos += nl;
        let vl = read_len(b, &mut self.pos);
        let value = &self.data[self.pos..self.pos + vl];
        self.pos += vl;
        Some((name, value))
    }
}

impl Labels {
    /// The empty label set.
    pub fn empty() -> Labels {
        Labels(Arc::from(""))
    }

    /// The set with one label (empty if `value` is empty), encoded directly.
    pub fn single(name: &str, value: &str) -> Labels {
        if value.is_empty() {
            return Labels::empty();
        }
        let mut buf = String::with_capacity(name.len() + value.len() + 4);
        push_len(&mut buf, name.len());
        buf.push_str(name);
        push_len(&mut buf, value.len());
        buf.push_str(value);
        Labels(Arc::from(buf))
    }

    /// Builds a label set from pairs in any order. Later duplicates replace earlier
    /// ones; pairs with an empty value are left out (an empty value means "absent").
    pub fn from_pairs<'a, I, N, V>(pairs: I) -> Labels
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<Cow<'a, str>>,
        V: Into<Cow<'a, str>>,
    {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            b.set(n, v);
        }
        b.labels()
    }

    /// Builds a label set from pairs already sorted by name, without duplicates;
    /// pairs with an empty value are left out (an empty value means "absent").
    /// `buf` is scratch space, reused across calls.
    pub(crate) fn from_sorted<'s>(
        pairs: impl Iterator<Item = (&'s str, &'s str)>,
        buf: &mut String,
    ) -> Labels {
        Labels::encode_into(pairs.filter(|(_, v)| !v.is_empty()), buf)
    }

    fn encode_sorted<'s>(pairs: impl Iterator<Item = (&'s str, &'s str)> + Clone) -> Labels {
        let mut buf = String::new();
        Labels::encode_into(pairs, &mut buf)
    }

    /// Encodes into `buf` (cleared first, reused across calls), then copies the result
    /// into the one shared allocation.
    fn encode_into<'s>(
        pairs: impl Iterator<Item = (&'s str, &'s str)>,
        buf: &mut String,
    ) -> Labels {
        buf.clear();
        for (n, v) in pairs {
            push_len(buf, n.len());
            buf.push_str(n);
            push_len(buf, v.len());
            buf.push_str(v);
        }
        Labels(Arc::from(buf.as_str()))
    }

    /// The canonical encoding (equal sets, equal bytes): a cheap total order for
    /// containers that need one but not the label order.
    pub(crate) fn encoded(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Iterates `(name, value)` in name order.
    pub fn iter(&self) -> LabelsIter<'_> {
        LabelsIter {
            data: &self.0,
            pos: 0,
        }
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True if there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        for (n, v) in self.iter() {
            match cmp_bytes(n, name) {
                Ordering::Less => continue,
                Ordering::Equal => return Some(v),
                Ordering::Greater => return None,
            }
        }
        None
    }

    /// A builder starting from these labels, borrowing them.
    pub fn builder(&self) -> LabelsBuilder<'_> {
        let mut b = LabelsBuilder::new();
        b.reset_from(self);
        b
    }

    /// The set's [`Key128`], hashed over its encoding (which is unique per set).
    #[inline]
    pub fn key(&self) -> Key128 {
        Key128::of(self.0.as_bytes())
    }

    /// Prometheus 3.x label hash (official builds, "stringlabels"): xxHash64 of, per label,
    /// `len(name) name len(value) value`, each length one byte if below 255, else the byte
    /// 255 and the length in 3 little-endian bytes.
    pub fn hash(&self) -> u64 {
        // Where every name and value is shorter than 64 bytes, this set's own encoding
        // (one length byte each) is byte for byte Prometheus's: hash it in place.
        if self.lengths_below_64() {
            return xxh64(self.0.as_bytes(), 0);
        }
        self.hash_general()
    }

    /// [`Labels::hash`] by re-encoding in Prometheus's length format.
    fn hash_general(&self) -> u64 {
        let mut stack = [0u8; 1024];
        let mut heap = Vec::new();
        let size: usize = self.iter().map(|(n, v)| n.len() + v.len() + 8).sum();
        let buf: &mut [u8] = if size <= stack.len() {
            &mut stack
        } else {
            heap.resize(size, 0);
            &mut heap
        };
        let mut at = 0;
        let mut put = |bytes: &[u8], at: &mut usize| {
            buf[*at..*at + bytes.len()].copy_from_slice(bytes);
            *at += bytes.len();
        };
        let put_len = |n: usize| -> ([u8; 4], usize) {
            if n < 255 {
                ([n as u8, 0, 0, 0], 1)
            } else {
                let n = n as u32;
                ([255, n as u8, (n >> 8) as u8, (n >> 16) as u8], 4)
            }
        };
        for (n, v) in self.iter() {
            let (l, k) = put_len(n.len());
            put(&l[..k], &mut at);
            put(n.as_bytes(), &mut at);
            let (l, k) = put_len(v.len());
            put(&l[..k], &mut at);
            put(v.as_bytes(), &mut at);
        }
        xxh64(&buf[..at], 0)
    }

    /// True if every length in the encoding is one byte (below 64).
    fn lengths_below_64(&self) -> bool {
        let b = self.0.as_bytes();
        let mut pos = 0;
        while pos < b.len() {
            for _ in 0..2 {
                let len = b[pos];
                if len & 0x40 != 0 {
                    return false;
                }
                pos += 1 + len as usize;
            }
        }
        true
    }

    /// Prometheus 2.42 label hash ("slicelabels"): xxHash64 of `name 0xFF value 0xFF` for
    /// each label in order.
    pub fn hash_slicelabels(&self) -> u64 {
        let mut buf = Vec::with_capacity(self.0.len() + 2 * 16);
        for (n, v) in self.iter() {
            buf.extend_from_slice(n.as_bytes());
            buf.push(0xff);
            buf.extend_from_slice(v.as_bytes());
            buf.push(0xff);
        }
        xxh64(&buf, 0)
    }

    /// The labels whose names do not start with `__`, i.e. those attached to series.
    pub fn without_reserved(&self) -> Labels {
        Labels::encode_sorted(self.iter().filter(|(n, _)| !n.starts_with(RESERVED_PREFIX)))
    }

    /// Go's `labels.Labels.String()`: `{a="1", b="2"}` with Go-quoted values; names that
    /// are not legacy-valid are quoted too (3.x).
    pub fn to_go_string(&self) -> String {
        let mut out = String::from("{");
        for (i, (n, v)) in self.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if is_legacy_label_name(n) {
                out.push_str(n);
            } else {
                out.push_str(&crate::goquote::quote(n));
            }
            out.push('=');
            out.push_str(&crate::goquote::quote(v));
        }
        out.push('}');
        out
    }
}

impl Default for Labels {
    fn default() -> Self {
        Labels::empty()
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Labels) -> bool {
        // The encoding is canonical: equal sets have equal bytes.
        self.0 == other.0
    }
}

impl Eq for Labels {}

impl std::hash::Hash for Labels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Ord for Labels {
    /// Lexicographic over `(name, value)` pairs, as Prometheus's `labels.Compare`.
    fn cmp(&self, other: &Labels) -> Ordering {
        self.iter().cmp(other.iter())
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Labels) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_go_string())
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_go_string())
    }
}

impl serde::Serialize for Labels {
    /// A JSON object in name order, as in Prometheus's API.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m: std::collections::BTreeMap<String, String> = serde::Deserialize::deserialize(d)?;
        Ok(Labels::from_pairs(m))
    }
}

type Pair<'a> = (Cow<'a, str>, Cow<'a, str>);

fn find_in(v: &[Pair<'_>], name: &str) -> Result<usize, usize> {
    v.binary_search_by(|(n, _)| cmp_bytes(n, name))
}

#[inline]
fn is_meta(name: &str) -> bool {
    // A fixed-size comparison the compiler turns into two integer compares.
    name.as_bytes()
        .first_chunk::<7>()
        .is_some_and(|p| p == b"__meta_")
}

/// How many lookups per relabeling pass remember where they found their label.
const HINTS: usize = 64;

/// A mutable label set that borrows from its sources where it can. Setting a label to
/// the empty string deletes it.
///
/// Discovered targets are dominated by `__meta_*` labels, which relabeling mostly reads
/// and finalisation removes wholesale. They are kept in their own sorted vector, apart
/// from the other labels: lookups, inserts and merges of the other labels stay small,
/// and dropping all `__meta_*` labels is one `clear`. All `__meta_*` names sort
/// contiguously, so the name order of the whole set is: other labels before `__meta_`,
/// the meta block, the remaining other labels.
#[derive(Clone, Debug)]
pub struct LabelsBuilder<'a> {
    other: Vec<Pair<'a>>,
    meta: Vec<Pair<'a>>,
    // Scratch storage for merges, kept to reuse its allocation.
    spare: Vec<Pair<'a>>,
    // Lookup hints: targets of one job carry the same labels and are relabeled by the
    // same rules, so the k-th lookup after a reset usually lands where the k-th lookup
    // landed last time (a found index or an insertion point). A hint is only a guess,
    // checked against the names; a miss falls back to binary search.
    hints: [Cell<u32>; HINTS],
    hint_pos: Cell<usize>,
    /// Scratch buffers for relabeling, kept to reuse their allocations.
    pub(crate) scratch: crate::goregex::ReplaceScratch,
    // Encoding buffer for `labels()`.
    encode_buf: std::cell::RefCell<String>,
    // Pairs collected by a rule before they are set.
    batch: Vec<Pair<'a>>,
    /// Buffer for building a target URL, kept to reuse its allocation.
    pub(crate) url_buf: String,
}

impl Default for LabelsBuilder<'_> {
    fn default() -> Self {
        LabelsBuilder {
            other: Vec::new(),
            meta: Vec::new(),
            spare: Vec::new(),
            hints: std::array::from_fn(|_| Cell::new(0)),
            hint_pos: Cell::new(0),
            scratch: crate::goregex::ReplaceScratch::default(),
            encode_buf: std::cell::RefCell::new(String::new()),
            batch: Vec::new(),
            url_buf: String::new(),
        }
    }
}

/// A saved builder state (see [`LabelsBuilder::save`]): the labels a group's targets
/// share, layered once per group instead of once per target.
#[derive(Clone, Debug, Default)]
pub struct SavedLabels<'a> {
    other: Vec<Pair<'a>>,
    meta: Vec<Pair<'a>>,
}

impl<'a> SavedLabels<'a> {
    /// Keeps only the `__meta_*` labels for which `keep(name)` is true (the others are
    /// untouched).
    pub(crate) fn retain_meta(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.meta.retain(|(n, _)| keep(n));
    }
}

impl<'a> LabelsBuilder<'a> {
    /// Saves the current labels (borrowed pairs are copied as references).
    pub fn save(&self) -> SavedLabels<'a> {
        SavedLabels {
            other: self.other.clone(),
            meta: self.meta.clone(),
        }
    }

    /// Replaces the contents with a saved state, reusing this builder's buffers.
    pub fn restore(&mut self, saved: &SavedLabels<'a>) {
        self.other.clone_from(&saved.other);
        self.meta.clone_from(&saved.meta);
        self.hint_pos.set(0);
    }

    /// An empty builder.
    pub fn new() -> LabelsBuilder<'a> {
        LabelsBuilder::default()
    }

    /// An empty builder with room for `n` labels.
    pub fn with_capacity(n: usize) -> LabelsBuilder<'a> {
        LabelsBuilder {
            other: Vec::with_capacity(n.min(32)),
            meta: Vec::with_capacity(n),
            spare: Vec::with_capacity(n.min(32)),
            ..LabelsBuilder::default()
        }
    }

    fn part_mut(&mut self, name: &str) -> &mut Vec<Pair<'a>> {
        if is_meta(name) {
            &mut self.meta
        } else {
            &mut self.other
        }
    }

    /// Replaces the contents with `labels` (borrowed, no copying of names or values).
    pub fn reset_from(&mut self, labels: &'a Labels) {
        self.other.clear();
        self.meta.clear();
        self.hint_pos.set(0);
        let data: &'a str = &labels.0;
        let b = data.as_bytes();
        let mut pos = 0;
        while pos < b.len() {
            let nl = read_len(b, &mut pos);
            let name = &data[pos..pos + nl];
            pos += nl;
            let vl = read_len(b, &mut pos);
            let value = &data[pos..pos + vl];
            pos += vl;
            // Sorted input: each part receives its names in order.
            let part = if is_meta(name) {
                &mut self.meta
            } else {
                &mut self.other
            };
            part.push((Cow::Borrowed(name), Cow::Borrowed(value)));
        }
    }

    /// Replaces the contents with `base`, plus the pairs of `extra` whose names `base`
    /// lacks, plus the pairs of `defaults` (sorted by name) whose names neither has.
    /// Pairs with empty values are skipped.
    pub fn reset_layered(
        &mut self,
        base: &'a Labels,
        extra: &'a Labels,
        defaults: &'a [(String, String)],
    ) {
        // Merge the two sorted sets in one pass (`base` wins on equal names); each part
        // receives its names in order.
        self.other.clear();
        self.meta.clear();
        self.hint_pos.set(0);
        let mut a = base.iter().peekable();
        let mut b = extra.iter().peekable();
        loop {
            let take_a = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => match cmp_bytes(x.0, y.0) {
                    Ordering::Less => true,
                    Ordering::Equal => {
                        b.next();
                        true
                    }
                    Ordering::Greater => false,
                },
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_a { a.next() } else { b.next() };
            let Some((n, v)) = next else { break };
            let part = if is_meta(n) {
                &mut self.meta
            } else {
                &mut self.other
            };
            part.push((Cow::Borrowed(n), Cow::Borrowed(v)));
        }
        // Merge the sorted defaults into the other labels in one pass; a default named
        // `__meta_*` (not produced by configuration) is set the slow way.
        let mut out = std::mem::take(&mut self.spare);
        out.clear();
        out.reserve(self.other.len() + defaults.len());
        let mut j = 0;
        let mut meta_defaults = Vec::new();
        let mut push_default = |out: &mut Vec<Pair<'a>>, (n, v): &'a (String, String)| {
            if v.is_empty() {
            } else if is_meta(n) {
                meta_defaults.push((n.as_str(), v.as_str()));
            } else {
                out.push((Cow::Borrowed(n.as_str()), Cow::Borrowed(v.as_str())));
            }
        };
        for e in self.other.drain(..) {
            while j < defaults.len() {
                match cmp_bytes(&defaults[j].0, &e.0) {
                    Ordering::Less => {
                        push_default(&mut out, &defaults[j]);
                        j += 1;
                    }
                    Ordering::Equal => {
                        j += 1;
                        break;
                    }
                    Ordering::Greater => break,
                }
            }
            out.push(e);
        }
        for d in &defaults[j..] {
            push_default(&mut out, d);
        }
        self.spare = std::mem::replace(&mut self.other, out);
        for (n, v) in meta_defaults {
            self.set_if_absent(n, v);
        }
    }

    /// Binary search in one part, starting from the next hint: a hinted index is
    /// accepted only if the name there is `name` (found) or the names around it bracket
    /// `name` (insertion point); otherwise the full search runs and refreshes the hint.
    fn find_hinted_in(&self, meta: bool, name: &str) -> Result<usize, usize> {
        let part = if meta { &self.meta } else { &self.other };
        let k = self.hint_pos.get();
        self.hint_pos.set(k + 1);
        let hint = self.hints.get(k);
        if let Some(h) = hint {
            let raw = h.get();
            let i = (raw >> 1) as usize;
            if raw & 1 == 0 {
                if let Some((n, _)) = part.get(i)
                    && eq_bytes(n, name)
                {
                    return Ok(i);
                }
            } else if i <= part.len()
                && (i == 0 || cmp_bytes(&part[i - 1].0, name) == Ordering::Less)
                && (i == part.len() || cmp_bytes(&part[i].0, name) == Ordering::Greater)
            {
                return Err(i);
            }
        }
        let r = find_in(part, name);
        if let Some(h) = hint {
            h.set(match r {
                Ok(i) => (i as u32) << 1,
                Err(i) => ((i as u32) << 1) | 1,
            });
        }
        r
    }

    fn find_hinted(&self, name: &str) -> (&Vec<Pair<'a>>, Option<usize>) {
        let meta = is_meta(name);
        let i = self.find_hinted_in(meta, name).ok();
        (if meta { &self.meta } else { &self.other }, i)
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        let (part, i) = self.find_hinted(name);
        i.map(|i| part[i].1.as_ref())
    }

    /// The value of `name` as the builder holds it (cloning is free when borrowed).
    pub fn get_cow(&self, name: &str) -> Option<Cow<'a, str>> {
        let (part, i) = self.find_hinted(name);
        i.map(|i| part[i].1.clone())
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        let name = name.into();
        let value = value.into();
        let found = self.find_hinted_in(is_meta(&name), &name);
        let part = self.part_mut(&name);
        match found {
            Ok(i) if value.is_empty() => {
                part.remove(i);
            }
            Ok(i) => part[i].1 = value,
            Err(_) if value.is_empty() => {}
            Err(i) => part.insert(i, (name, value)),
        }
    }

    /// Sets `name` to `value` only if it is absent (or empty).
    pub fn set_if_absent(&mut self, name: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        let name = name.into();
        let part = self.part_mut(&name);
        if let Err(i) = find_in(part, &name) {
            let value = value.into();
            if !value.is_empty() {
                part.insert(i, (name, value));
            }
        }
    }

    /// Deletes `name`.
    pub fn del(&mut self, name: &str) {
        let part = self.part_mut(name);
        if let Ok(i) = find_in(part, name) {
            part.remove(i);
        }
    }

    /// Keeps only the labels for which `keep(name)` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.other.retain(|(n, _)| keep(n));
        self.meta.retain(|(n, _)| keep(n));
    }

    /// Keeps only the labels not named `__meta_*` for which `keep(name)` is true; the
    /// `__meta_*` labels are all kept (`keep_meta`) or all removed.
    pub fn retain_other(&mut self, keep: impl FnMut(&str) -> bool, keep_meta: bool) {
        let mut keep = keep;
        self.other.retain(|(n, _)| keep(n));
        if !keep_meta {
            self.meta.clear();
        }
    }

    /// Removes every `__meta_*` label.
    pub fn drop_meta(&mut self) {
        self.meta.clear();
    }

    fn split_point(&self) -> usize {
        self.other
            .partition_point(|(n, _)| cmp_bytes(n, META_PREFIX) == Ordering::Less)
    }

    /// Iterates the current pairs in name order, as the builder holds them (borrowed
    /// where possible).
    pub fn iter_cow(&self) -> impl Iterator<Item = &Pair<'a>> + Clone + '_ {
        let k = self.split_point();
        self.other[..k]
            .iter()
            .chain(self.meta.iter())
            .chain(self.other[k..].iter())
    }

    /// Iterates the current `(name, value)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + Clone + '_ {
        self.iter_cow().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    /// The labels whose names start with `prefix` (which must not start with `__meta_`),
    /// in name order.
    pub fn with_prefix<'s>(
        &'s self,
        prefix: &'s str,
    ) -> impl Iterator<Item = (&'s str, &'s str)> + 's {
        let start = find_in(&self.other, prefix).unwrap_or_else(|i| i);
        self.other[start..]
            .iter()
            .take_while(move |(n, _)| n.starts_with(prefix))
            .map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    /// The pairs whose names start with `prefix`, in name order, found by binary search
    /// rather than by testing every name.
    pub fn with_prefix_cow<'s>(
        &'s self,
        prefix: &'s str,
    ) -> Box<dyn Iterator<Item = &'s Pair<'a>> + 's> {
        let range = |v: &'s [Pair<'a>]| {
            let start = find_in(v, prefix).unwrap_or_else(|i| i);
            v[start..]
                .iter()
                .take_while(move |(n, _)| n.starts_with(prefix))
        };
        if is_meta(prefix) {
            Box::new(range(&self.meta))
        } else if META_PREFIX.starts_with(prefix) {
            // "", "__", "__me"…: the range spans both parts.
            Box::new(self.iter_cow().filter(move |(n, _)| n.starts_with(prefix)))
        } else {
            Box::new(range(&self.other))
        }
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.other.len() + self.meta.len()
    }

    /// True if there are no labels.
    pub fn is_empty(&self) -> bool {
        self.other.is_empty() && self.meta.is_empty()
    }

    /// Removes every label.
    pub fn clear(&mut self) {
        self.other.clear();
        self.meta.clear();
    }

    /// The current labels as an immutable [`Labels`] (one allocation).
    pub fn labels(&self) -> Labels {
        match self.encode_buf.try_borrow_mut() {
            Ok(mut buf) => Labels::encode_into(self.iter(), &mut buf),
            // Not reachable (the buffer is only borrowed here), but never worth a panic.
            Err(_) => Labels::encode_sorted(self.iter()),
        }
    }

    /// Takes the batch vector (empty), to collect pairs without allocating.
    pub(crate) fn take_batch(&mut self) -> Vec<Pair<'a>> {
        let mut v = std::mem::take(&mut self.batch);
        v.clear();
        v
    }

    /// Returns a vector taken with [`LabelsBuilder::take_batch`], for reuse.
    pub(crate) fn put_batch(&mut self, batch: Vec<Pair<'a>>) {
        self.batch = batch;
    }

    /// The current labels whose names do not start with `__`.
    pub fn public_labels(&self) -> Labels {
        Labels::encode_sorted(self.iter().filter(|(n, _)| !n.starts_with(RESERVED_PREFIX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sorted_unique_and_empty_values_dropped() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", ""), ("a", "3")]);
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![("a", "3"), ("b", "2")]);
        assert_eq!(l.get("a"), Some("3"));
        assert_eq!(l.get("c"), None);
        assert_eq!(l.len(), 2);
        assert_eq!(l.to_go_string(), r#"{a="3", b="2"}"#);
    }

    #[test]
    fn long_values_round_trip() {
        let long = "x".repeat(100_000);
        let l = Labels::from_pairs([("k", long.as_str()), ("a", "")]);
        assert_eq!(l.get("k"), Some(long.as_str()));
    }

    #[test]
    fn hash_fast_path_equals_the_general_encoding() {
        use proptest::prelude::*;
        let lens = prop_oneof![0usize..8, 60usize..70, 250usize..260];
        let pair = (lens.clone(), lens).prop_map(|(n, v)| ("n".repeat(n.max(1)), "v".repeat(v)));
        proptest!(|(pairs in proptest::collection::vec(pair, 0..6), tag in 0u8..26)| {
            let pairs: Vec<(String, String)> = pairs
                .into_iter()
                .enumerate()
                .map(|(i, (n, v))| (format!("{}{i}{n}", char::from(b'a' + tag)), v))
                .collect();
            let l = Labels::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            prop_assert_eq!(l.hash(), l.hash_general());
        });
    }

    #[test]
    fn hash_vectors_from_prometheus_semantics() {
        // §3.5 worked example: job `node`, target localhost:9100, defaults.
        let v2 = Labels::from_pairs([
            ("__address__", "localhost:9100"),
            ("__metrics_path__", "/metrics"),
            ("__scheme__", "http"),
            ("__scrape_interval__", "1m"),
            ("__scrape_timeout__", "10s"),
            ("instance", "localhost:9100"),
            ("job", "node"),
        ]);
        assert_eq!(v2.hash_slicelabels(), 14808249574301025142);
        let mut b = v2.builder();
        b.set(SCRAPE_NATIVE_HISTOGRAMS, "false");
        b.set(ALWAYS_SCRAPE_CLASSIC_HISTOGRAMS, "false");
        b.set(CONVERT_CLASSIC_HISTOGRAMS_TO_NHCB, "false");
        assert_eq!(b.labels().hash(), 9527888252110227897);
        assert_eq!(xxh64(b"", 0), 0xef46db3751d8e999);
        assert_eq!(xxh64(b"abc", 0), 0x44bc2cf5ad770999);
    }

    #[test]
    fn go_string_quotes_utf8_names() {
        let l = Labels::from_pairs([("utf-8.label", "a\"b"), ("ok", "x")]);
        assert_eq!(l.to_go_string(), r#"{ok="x", "utf-8.label"="a\"b"}"#);
    }

    fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec(
            (
                prop_oneof!["[a-z_]{1,4}", "__meta_[a-c]{0,3}", "__m[a-z]{0,3}"],
                "[a-zé\n]{0,70}",
            ),
            0..12,
        )
    }

    proptest! {
        /// A Labels equals the BTreeMap model with empty values removed.
        #[test]
        fn matches_btreemap_model(p in pairs()) {
            let mut model = std::collections::BTreeMap::new();
            for (n, v) in &p {
                if v.is_empty() { model.remove(n); } else { model.insert(n.clone(), v.clone()); }
            }
            let l = Labels::from_pairs(p.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let got: Vec<(String, String)> =
                l.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
            let want: Vec<(String, String)> = model.clone().into_iter().collect();
            prop_assert_eq!(got, want);
            for (n, v) in &model {
                prop_assert_eq!(l.get(n), Some(v.as_str()));
            }
        }

        /// Any sequence of builder operations matches a BTreeMap model, including the name
        /// order of iteration across the `__meta_*` split.
        #[test]
        fn builder_matches_btreemap_model(
            base in pairs(),
            ops in proptest::collection::vec(
                (0u8..6, prop::sample::select(vec!["__meta_a", "__meta_b", "__a", "__z", "a", "job", "__meta_", "__met", "__metz", "z"]), "[a-c]{0,2}"),
                0..24,
            ),
        ) {
            let base_labels = Labels::from_pairs(base.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let mut model: std::collections::BTreeMap<String, String> =
                base_labels.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
            let mut b = base_labels.builder();
            for (op, name, value) in &ops {
                match op {
                    0 => {
                        b.set(*name, value.clone());
                        if value.is_empty() { model.remove(*name); } else { model.insert((*name).into(), value.clone()); }
                    }
                    1 => { b.del(name); model.remove(*name); }
                    2 => {
                        b.set_if_absent(*name, value.clone());
                        if !value.is_empty() { model.entry((*name).into()).or_insert(value.clone()); }
                    }
                    3 => { b.drop_meta(); model.retain(|n, _| !n.starts_with(META_PREFIX)); }
                    4 => { b.retain(|n| n.len() % 2 == 0); model.retain(|n, _| n.len() % 2 == 0); }
                    _ => { b.retain_other(|n| n != *name, true); model.retain(|n, _| n.starts_with(META_PREFIX) || n != name); }
                }
                prop_assert_eq!(b.get(name), model.get(*name).map(String::as_str));
            }
            let got: Vec<(String, String)> = b.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
            let want: Vec<(String, String)> = model.into_iter().collect();
            prop_assert_eq!(&got, &want);
            let rebuilt: Vec<(String, String)> = b.labels().iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
            prop_assert_eq!(rebuilt, want);
        }

        /// Layered reset equals "base, then extra where absent, then defaults where absent".
        #[test]
        fn reset_layered_matches_model(base in pairs(), extra in pairs(), defaults in pairs()) {
            let bl = Labels::from_pairs(base.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let el = Labels::from_pairs(extra.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let mut d: Vec<(String, String)> = Labels::from_pairs(defaults.iter().map(|(n, v)| (n.as_str(), v.as_str())))
                .iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
            d.push(("__meta_default".into(), "m".into()));
            d.sort();
            let mut model: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
            for l in [&bl, &el] {
                for (n, v) in l.iter() { model.entry(n.to_owned()).or_insert(v.to_owned()); }
            }
            for (n, v) in &d { model.entry(n.clone()).or_insert(v.clone()); }
            let mut b = LabelsBuilder::new();
            b.reset_layered(&bl, &el, &d);
            let got: Vec<(String, String)> = b.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
            prop_assert_eq!(got, model.into_iter().collect::<Vec<_>>());
        }

        /// Ordering of Labels equals ordering of their pair lists.
        #[test]
        fn ord_matches_pairs(a in pairs(), b in pairs()) {
            let la = Labels::from_pairs(a.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let lb = Labels::from_pairs(b.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let va: Vec<_> = la.iter().collect();
            let vb: Vec<_> = lb.iter().collect();
            prop_assert_eq!(la.cmp(&lb), va.cmp(&vb));
            prop_assert_eq!(la == lb, va == vb);
        }
    }
}
