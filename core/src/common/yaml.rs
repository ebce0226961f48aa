//! The YAML layer: the one place that calls `serde_yaml`, Go yaml.v2 compatibility
//! (YAML 1.1 booleans, merge keys, scalars into strings), and mapping errors to a
//! position in the file.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde::{Deserialize, Deserializer};

/// A field that distinguishes "not written" from "written as null" from a value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Nullable<T> {
    /// The key is absent.
    #[default]
    Absent,
    /// The key is present with a null value (`key:` or `key: null`).
    Null,
    /// The key has a value.
    Value(T),
}

impl<T> Nullable<T> {
    /// The value, if any.
    pub fn value(self) -> Option<T> {
        match self {
            Nullable::Value(v) => Some(v),
            _ => None,
        }
    }
}

impl<T: Default> Nullable<T> {
    /// What Go's yaml.v2 leaves in a field that held `default` before the document was
    /// decoded into it: `default` when the key is absent, the zero value when the key is
    /// written as null (the field's own decoding is skipped), else the value.
    pub fn onto(self, default: T) -> T {
        match self {
            Nullable::Absent => default,
            Nullable::Null => T::default(),
            Nullable::Value(v) => v,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Nullable<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            None => Nullable::Null,
            Some(v) => Nullable::Value(v),
        })
    }
}

struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
}

/// A scalar read as a string: strings, numbers and booleans are accepted (Go's yaml.v2
/// stores any scalar into a string field); null gives the empty string. Also the input
/// of types parsed from a scalar (durations, sizes).
pub fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(ScalarVisitor)
}

/// A string field that also accepts YAML numbers and booleans, as Go's yaml.v2 does for
/// string fields (`port: 8080` in a label map is the string "8080").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LenientString(pub String);

impl<'de> Deserialize<'de> for LenientString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient_string(d).map(LenientString)
    }
}

/// A boolean as YAML 1.1 (Go's yaml.v2) reads it: `true/false`, `yes/no`, `on/off`,
/// `y/n` in their lower, title and upper case spellings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bool11(pub bool);

impl<'de> Deserialize<'de> for Bool11 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bool11;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Bool11, E> {
                Ok(Bool11(v))
            }
            // Null leaves Go's zero value, false.
            fn visit_unit<E: de::Error>(self) -> Result<Bool11, E> {
                Ok(Bool11(false))
            }
            fn visit_none<E: de::Error>(self) -> Result<Bool11, E> {
                Ok(Bool11(false))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bool11, E> {
                match v {
                    "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True"
                    | "TRUE" => Ok(Bool11(true)),
                    "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False"
                    | "FALSE" => Ok(Bool11(false)),
                    _ => Err(E::custom(format!("cannot unmarshal !!str `{v}` into bool"))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bool11, E> {
                Err(E::custom(format!("cannot unmarshal !!int `{v}` into bool")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bool11, E> {
                Err(E::custom(format!("cannot unmarshal !!int `{v}` into bool")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Bool11, E> {
                Err(E::custom(format!(
                    "cannot unmarshal !!float `{v}` into bool"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// `source_labels`: a list of label names (null means "not written").
pub fn label_names_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let v: Option<Vec<LenientName>> = Option::deserialize(d)?;
    Ok(v.map(|v| v.into_iter().map(|n| n.0).collect()))
}

struct LenientName(String);

impl<'de> Deserialize<'de> for LenientName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = lenient_string(d)?;
        if s.is_empty() {
            return Err(de::Error::custom(format!(
                "{} is not a valid label name",
                crate::goquote::quote(&s)
            )));
        }
        Ok(LenientName(s))
    }
}

/// One step of a path into the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path into the YAML document, e.g. `scrape_configs[2].relabel_configs[0]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(pub Vec<Seg>);

impl Path {
    /// This path extended by a key.
    pub fn key(&self, k: &str) -> Path {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_owned()));
        p
    }
    /// This path extended by an index.
    pub fn index(&self, i: usize) -> Path {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
    /// This path extended by another (relative) one.
    pub fn join(&self, rest: &Path) -> Path {
        let mut p = self.clone();
        p.0.extend(rest.0.iter().cloned());
        p
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

const LOCATE_MARK: &str = "\u{1}trawl-locate\u{1}";

struct Locate<'p>(&'p [Seg]);

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("anything")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.0.split_first() else {
            return Err(de::Error::custom(LOCATE_MARK));
        };
        while let Some(key) = map.next_key::<KeyText>()? {
            if matches!(first, Seg::Key(k) if *k == key.0) {
                map.next_value_seed(Locate(rest))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.0.split_first() else {
            return Err(de::Error::custom(LOCATE_MARK));
        };
        let mut i = 0;
        loop {
            if matches!(first, Seg::Index(n) if *n == i) {
                if seq.next_element_seed(Locate(rest))?.is_none() {
                    return Ok(());
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
}

impl Locate<'_> {
    fn scalar<E: de::Error>(self) -> Result<(), E> {
        if self.0.is_empty() {
            Err(E::custom(LOCATE_MARK))
        } else {
            Ok(())
        }
    }
}

struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Keys that are not scalars (rare) are consumed and compared as empty.
        match lenient_string(d) {
            Ok(s) => Ok(KeyText(s)),
            Err(e) => Err(e),
        }
    }
}

/// Line and column (1-based) of the node at `path` in `text`; if the node does not exist
/// (e.g. a key that was never written, or one that came from a merge key), the nearest
/// existing ancestor.
pub fn locate(text: &str, path: &Path) -> Option<(usize, usize)> {
    locate_exact(text, path).map(|(pos, _)| pos)
}

/// Like [`locate`], also telling whether the node itself (rather than an ancestor) was
/// found.
fn locate_exact(text: &str, path: &Path) -> Option<((usize, usize), bool)> {
    let mut segs: &[Seg] = &path.0;
    loop {
        let de = serde_yaml::Deserializer::from_str(text);
        if let Err(e) = Locate(segs).deserialize(de) {
            if e.to_string().contains(LOCATE_MARK) {
                let exact = segs.len() == path.0.len();
                return e.location().map(|l| ((l.line(), l.column()), exact));
            }
            return None;
        }
        let (_, parent) = segs.split_last()?;
        segs = parent;
    }
}

/// A failed parse: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    /// The path of the offending node, when known.
    pub path: Path,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// The message (with Prometheus's wording where it has one).
    pub message: String,
}

/// The local tag `!!binary` is renamed to before serde_yaml reads a document.
const BINARY_TAG: &str = "!trawl.binary";

/// `b` as Go's `%q` shows a string holding these bytes: UTF-8 text quoted as usual,
/// every byte that is not part of valid UTF-8 as `\xNN`.
fn go_quote_bytes(b: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in b.utf8_chunks() {
        let q = crate::goquote::quote(chunk.valid());
        out.push_str(&q[1..q.len() - 1]);
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out.push('"');
    out
}

/// Replaces every `!!binary` scalar (renamed [`BINARY_TAG`]) by the text it encodes, as
/// Go's yaml.v2 decodes one into a string field (base64, whitespace ignored; bytes that
/// are not UTF-8 are refused), with yaml.v2's error for one that is not base64; the
/// renaming is undone in every string.
fn decode_binary(v: &mut serde_yaml::Value) -> Result<(), String> {
    use serde_yaml::Value as Y;
    let restore = |s: &str| s.replace(BINARY_TAG, "!!binary");
    match v {
        Y::String(s) if s.contains(BINARY_TAG) => {
            *s = restore(s);
            Ok(())
        }
        Y::Tagged(t) if t.tag == BINARY_TAG[1..] => {
            let Y::String(s) = &t.value else {
                return Err("!!binary value contains invalid base64 data".into());
            };
            let bytes = crate::bytes::base64_decode(s)
                .ok_or("!!binary value contains invalid base64 data")?;
            // Go keeps the bytes as they are, and refuses them wherever text must be
            // UTF-8 (label names and values: `"\xff" is not a valid label name`); trawl
            // holds text as UTF-8, so it refuses them everywhere.
            let text = String::from_utf8(bytes).map_err(|e| {
                format!(
                    "!!binary value {} is not valid UTF-8",
                    go_quote_bytes(e.as_bytes())
                )
            })?;
            *v = Y::String(text);
            Ok(())
        }
        Y::Tagged(t) => decode_binary(&mut t.value),
        Y::Mapping(m) => {
            let mut out = serde_yaml::Mapping::with_capacity(m.len());
            for (mut k, mut x) in std::mem::take(m) {
                decode_binary(&mut k)?;
                decode_binary(&mut x)?;
                out.insert(k, x);
            }
            *m = out;
            Ok(())
        }
        Y::Sequence(s) => s.iter_mut().try_for_each(decode_binary),
        _ => Ok(()),
    }
}

fn has_merge_keys(v: &serde_yaml::Value) -> bool {
    match v {
        serde_yaml::Value::Mapping(m) => m
            .iter()
            .any(|(k, v)| k.as_str() == Some("<<") || has_merge_keys(v)),
        serde_yaml::Value::Sequence(s) => s.iter().any(has_merge_keys),
        serde_yaml::Value::Tagged(t) => has_merge_keys(&t.value),
        _ => false,
    }
}

fn convert_path(p: &serde_path_to_error::Path) -> Path {
    use serde_path_to_error::Segment;
    Path(
        p.iter()
            .filter_map(|s| match s {
                Segment::Map { key } => Some(Seg::Key(key.clone())),
                Segment::Seq { index } => Some(Seg::Index(*index)),
                Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
                Segment::Unknown => None,
            })
            .collect(),
    )
}

/// Strips what serde_yaml adds to a message (`path: ` prefix, ` at line L column C`).
fn bare_message(e: &serde_yaml::Error) -> String {
    let mut msg = e.to_string();
    if let Some(loc) = e.location() {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(i) = msg.rfind(&suffix) {
            msg.truncate(i);
        }
    }
    // serde_yaml prefixes "<path>: " when the error is below the root.
    if let Some(i) = msg.find(": ") {
        let head = &msg[..i];
        if !head.is_empty()
            && !head.contains(' ')
            && head
                .chars()
                .all(|c| c.is_alphanumeric() || "_.[]-<>".contains(c))
        {
            msg = msg[i + 2..].to_owned();
        }
    }
    msg
}

/// Rewrites serde's wording for unknown and duplicate keys into Go yaml.v2's, naming the
/// Go type Prometheus would name.
fn go_wording(msg: String, path: &Path, type_name: &dyn Fn(&Path) -> &'static str) -> String {
    // The path may end at the offending key itself; the type is its parent's.
    let owner = |field: &str| {
        let mut p = path.clone();
        if matches!(p.0.last(), Some(Seg::Key(k)) if k == field) {
            p.0.pop();
        }
        type_name(&p)
    };
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some(end) = rest.find('`')
    {
        let field = &rest[..end];
        return format!("field {field} not found in type {}", owner(field));
    }
    if let Some(rest) = msg.strip_prefix("duplicate field `")
        && let Some(end) = rest.find('`')
    {
        let field = &rest[..end];
        return format!("field {field} already set in type {}", owner(field));
    }
    if let Some(rest) = msg.strip_prefix("duplicate entry with key ") {
        return format!("mapping key {rest} already defined");
    }
    msg
}

/// What aliases may expand a YAML document to, at least: scalar bytes plus one per node,
/// counted as a deserializer would see them, every alias replayed in full. A document may
/// always expand to twice its own size; past both bounds it is refused before anything
/// is built from it (a 1 MiB string referenced 3,000 times would otherwise become 3 GiB
/// of strings). serde_yaml's own guard counts replayed events, not bytes.
pub const MAX_EXPANSION: usize = 16 << 20;

const EXPANSION_MARK: &str = "YAML aliases expand the document to more than";

/// Refuses a document whose aliases expand it past [`MAX_EXPANSION`] (or twice its size,
/// if larger), with the position where the bound was crossed. Documents without aliases
/// (no `*`) are not parsed at all; a document that does not parse passes, for the real
/// parse to report. The walk allocates nothing and stops at the bound, so a "billion
/// laughs" document costs at most the bound in time.
pub fn check_expansion(text: &str) -> Result<(), YamlError> {
    if !text.contains('*') {
        return Ok(());
    }
    let limit = MAX_EXPANSION.max(text.len().saturating_mul(2));
    for doc in serde_yaml::Deserializer::from_str(text) {
        let mut left = limit;
        if let Err(e) = (Expansion { left: &mut left }).deserialize(doc) {
            let position = e.location().map(|l| (l.line(), l.column()));
            if e.to_string().contains(EXPANSION_MARK) {
                return Err(YamlError {
                    path: Path::default(),
                    position,
                    message: format!("{EXPANSION_MARK} {limit} bytes"),
                });
            }
            if text.contains('&') {
                // With anchors, a document the walk cannot finish is not let through
                // unchecked (whatever stopped the walk, the typed parse might accept).
                return Err(YamlError {
                    path: Path::default(),
                    position,
                    message: format!(
                        "YAML with aliases that could not be checked for their expansion: {}",
                        bare_message(&e)
                    ),
                });
            }
            // No anchor, so nothing can expand: the real parse reports the error (with
            // Prometheus's wording).
            return Ok(());
        }
    }
    Ok(())
}

/// Walks a YAML node, spending one unit a node and one a scalar byte.
struct Expansion<'b> {
    left: &'b mut usize,
}

impl Expansion<'_> {
    fn spend<E: de::Error>(&mut self, n: usize) -> Result<(), E> {
        match self.left.checked_sub(n.saturating_add(1)) {
            Some(l) => {
                *self.left = l;
                Ok(())
            }
            None => Err(E::custom(EXPANSION_MARK)),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Expansion<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Expansion<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_bool<E: de::Error>(mut self, _: bool) -> Result<(), E> {
        self.spend(1)
    }
    fn visit_i64<E: de::Error>(mut self, _: i64) -> Result<(), E> {
        self.spend(8)
    }
    fn visit_u64<E: de::Error>(mut self, _: u64) -> Result<(), E> {
        self.spend(8)
    }
    fn visit_i128<E: de::Error>(mut self, _: i128) -> Result<(), E> {
        self.spend(16)
    }
    fn visit_u128<E: de::Error>(mut self, _: u128) -> Result<(), E> {
        self.spend(16)
    }
    fn visit_f64<E: de::Error>(mut self, _: f64) -> Result<(), E> {
        self.spend(8)
    }
    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<(), E> {
        self.spend(v.len())
    }
    fn visit_bytes<E: de::Error>(mut self, v: &[u8]) -> Result<(), E> {
        self.spend(v.len())
    }
    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.spend(0)
    }
    fn visit_none<E: de::Error>(mut self) -> Result<(), E> {
        self.spend(0)
    }
    fn visit_some<D: Deserializer<'de>>(mut self, d: D) -> Result<(), D::Error> {
        self.spend(0)?;
        d.deserialize_any(self)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(mut self, d: D) -> Result<(), D::Error> {
        self.spend(0)?;
        d.deserialize_any(self)
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.spend(0)?;
        while map
            .next_key_seed(Expansion {
                left: &mut *self.left,
            })?
            .is_some()
        {
            map.next_value_seed(Expansion {
                left: &mut *self.left,
            })?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.spend(0)?;
        while seq
            .next_element_seed(Expansion {
                left: &mut *self.left,
            })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(mut self, data: A) -> Result<(), A::Error> {
        // A tagged node (`!tag value`): the tag, then the value.
        use serde::de::VariantAccess;
        self.spend(0)?;
        let ((), v) = data.variant_seed(Expansion {
            left: &mut *self.left,
        })?;
        v.newtype_variant_seed(self)
    }
}

/// Deserializes `text` into `T`, applying merge keys (`<<`) when the document uses them.
/// Errors carry the path and the position of the offending node.
pub fn from_yaml<T: DeserializeOwned>(
    text: &str,
    type_name: &dyn Fn(&Path) -> &'static str,
) -> Result<T, YamlError> {
    check_expansion(text)?;
    let mut merged = None;
    // serde_yaml reads `!!binary` as a plain string: the tag is renamed to a local one
    // it keeps, decoded, and any other occurrence (in a string) put back.
    let binary = text.contains("!!binary") && !text.contains(BINARY_TAG);
    let marked;
    let source = if binary {
        marked = text.replace("!!binary", BINARY_TAG);
        marked.as_str()
    } else {
        text
    };
    if (text.contains("<<") || binary)
        && let Ok(mut v) = serde_yaml::from_str::<serde_yaml::Value>(source)
        && (has_merge_keys(&v) || binary)
    {
        if binary && let Err(message) = decode_binary(&mut v) {
            return Err(YamlError {
                path: Path::default(),
                position: None,
                message,
            });
        }
        if let Err(e) = v.apply_merge() {
            return Err(YamlError {
                path: Path::default(),
                position: e.location().map(|l| (l.line(), l.column())),
                message: bare_message(&e),
            });
        }
        merged = Some(v);
    }
    let result = match merged {
        Some(v) => serde_path_to_error::deserialize::<_, T>(v),
        None => {
            // An empty document is an empty mapping, as for Prometheus.
            let text = if text.trim().is_empty() { "{}" } else { text };
            serde_path_to_error::deserialize::<_, T>(serde_yaml::Deserializer::from_str(text))
        }
    };
    result.map_err(|e| {
        let path = convert_path(e.path());
        let inner = e.inner();
        let bare = bare_message(inner);
        // serde_yaml places unknown and duplicate keys exactly; errors raised by a field's
        // own parser (durations, sizes) it places at the enclosing mapping, so those are
        // looked up by path.
        let key_error = bare.starts_with("unknown field") || bare.starts_with("duplicate field");
        let message = go_wording(bare, &path, type_name);
        let serde_pos = inner.location().map(|l| (l.line(), l.column()));
        let position = match (key_error, serde_pos, locate_exact(text, &path)) {
            (true, Some(p), _) => Some(p),
            (_, _, Some((p, true))) => Some(p),
            (_, Some(p), _) => Some(p),
            (_, None, found) => found.map(|(p, _)| p),
        };
        YamlError {
            path,
            position,
            message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_finds_nodes() {
        let text = "a:\n  - x: 1\n  - x: 2\n    y: [3, 4]\nb: c\n";
        let p = |segs: Vec<Seg>| locate(text, &Path(segs));
        assert_eq!(p(vec![Seg::Key("b".into())]), Some((5, 4)));
        assert_eq!(p(vec![Seg::Key("a".into()), Seg::Index(1)]), Some((3, 5)));
        assert_eq!(
            p(vec![
                Seg::Key("a".into()),
                Seg::Index(1),
                Seg::Key("y".into()),
                Seg::Index(1)
            ]),
            Some((4, 12))
        );
        // Missing leaf: nearest ancestor.
        assert_eq!(
            p(vec![
                Seg::Key("a".into()),
                Seg::Index(0),
                Seg::Key("zz".into())
            ]),
            Some((2, 5))
        );
    }

    /// One large string referenced many times: refused with its position, whatever the
    /// alias count serde_yaml would allow.
    fn bomb(size: usize, refs: usize) -> String {
        let mut t = format!("a: &big \"{}\"\nb:\n", "x".repeat(size));
        for _ in 0..refs {
            t.push_str("  - *big\n");
        }
        t
    }

    #[test]
    fn alias_expansion_is_bounded_in_bytes() {
        // 1 MiB referenced 3,000 times (3 GiB expanded): refused.
        let e = check_expansion(&bomb(1 << 20, 3000)).unwrap_err();
        assert!(e.message.contains(EXPANSION_MARK), "{}", e.message);
        assert!(e.position.is_some_and(|(l, _)| l >= 1), "{e:?}");
        // Through the typed parse too.
        let r: Result<serde_yaml::Value, _> = from_yaml(&bomb(1 << 20, 3000), &|_| "x");
        assert!(r.unwrap_err().message.contains(EXPANSION_MARK));
        // Ordinary sharing passes: 1 KiB referenced 100 times.
        check_expansion(&bomb(1024, 100)).unwrap();
        let v: serde_yaml::Value = from_yaml(&bomb(1024, 100), &|_| "x").unwrap();
        assert_eq!(v["b"].as_sequence().map(Vec::len), Some(100));
        // Billion laughs: nested aliases, each level ten times the last.
        let mut t = String::from(
            "l0: &l0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n",
        );
        for i in 1..10 {
            let p = i - 1;
            t.push_str(&format!(
                "l{i}: &l{i} [*l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}]\n"
            ));
        }
        // (serde_yaml's own count of replayed events or this bound refuses it first.)
        let r: Result<serde_yaml::Value, _> = from_yaml(&t, &|_| "x");
        assert!(r.is_err());
        // Not YAML, and no anchor: left to the real parse.
        check_expansion("a: *nowhere\n").unwrap();
        check_expansion("a: [*\n").unwrap();
        // A 128-bit integer does not stop the walk short of the bomb behind it.
        let big = bomb(1 << 20, 3000).replacen("b:\n", "n: 99999999999999999999\nb:\n", 1);
        let e = check_expansion(&big).unwrap_err();
        assert!(e.message.contains(EXPANSION_MARK), "{}", e.message);
    }

    #[test]
    fn yaml11_booleans() {
        #[derive(Deserialize)]
        struct S {
            v: Bool11,
        }
        for (t, want) in [
            ("yes", true),
            ("On", true),
            ("n", false),
            ("OFF", false),
            ("true", true),
        ] {
            let s: S = serde_yaml::from_str(&format!("v: {t}")).unwrap();
            assert_eq!(s.v.0, want, "{t}");
        }
        assert!(serde_yaml::from_str::<S>("v: maybe").is_err());
    }
}
