//! The target-group document of file and HTTP discovery:
//! `[{"targets": ["host:port", …], "labels": {"name": "value"}}, …]`, strict as in
//! Prometheus (unknown keys rejected, a `null` element is an error, label names checked).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::goquote::quote;
use crate::labels::{self, Labels};

/// A target group: targets (each a label set, usually just `__address__`), labels common
/// to all of them, and the source that identifies the group inside its provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetGroup {
    /// One label set per target.
    pub targets: Vec<Labels>,
    /// Labels shared by every target of the group.
    pub labels: Labels,
    /// Identifies the group within its provider (`"0"`, `"<file>:<i>"`, `"<url>:<i>"`).
    pub source: String,
}

/// 3.x's `strutil.SanitizeLabelName`: every character outside `[a-zA-Z0-9_]` becomes `_`.
pub(crate) fn sanitize(name: &str) -> String {
    name.chars().map(sanitize_char).collect()
}

/// One character of [`sanitize`].
pub(crate) fn sanitize_char(c: char) -> char {
    if c.is_ascii_alphanumeric() || c == '_' {
        c
    } else {
        '_'
    }
}

/// A JSON field decoded as Go decodes it into a plain value: `null` (and a missing key,
/// with `#[serde(default)]`) leaves the zero value; serde alone refuses `null` for a
/// `String` or a number.
pub(crate) fn nul<'de, D: serde::Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The label set of `pairs`, a later pair replacing an earlier one of the same name (as
/// 3.x's map assignments do), built in name order: however many tags an answer carries,
/// building the set stays `n log n`.
pub(crate) fn label_set(pairs: Vec<(String, String)>) -> Labels {
    let sorted: std::collections::BTreeMap<String, String> = pairs.into_iter().collect();
    Labels::from_pairs(sorted)
}

/// `ip` as Go's `net.IP` prints it after decoding it from text (`None`: Go refuses it):
/// an IPv4-mapped IPv6 address prints as IPv4.
pub(crate) fn go_ip(ip: &str) -> Option<String> {
    Some(match ip.parse::<core::net::IpAddr>().ok()? {
        core::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        v4 => v4.to_string(),
    })
}

/// The first value of response header `name` (any case), as Go's `Header.Get`.
pub(crate) fn header<'a>(headers: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// Go's `resp.Status`: the code and the reason phrase as sent, if any.
pub(crate) fn go_status(status: u16, reason: &str) -> String {
    match reason {
        "" => status.to_string(),
        r => format!("{status} {r}"),
    }
}

/// A port as 3.x's cloud mechanisms format it (`strconv.FormatUint(uint64(port), 10)`:
/// a negative port wraps).
pub(crate) fn go_port(port: i64) -> String {
    (port as u64).to_string()
}

/// `,a,b,`: a list joined with the separator around it too, as 3.x writes tags and
/// features, so that relabeling regexes need not care where an item stands.
pub(crate) fn surrounded(v: &[String]) -> String {
    format!(",{},", v.join(","))
}

/// [`surrounded`] for a list that is there and not empty (3.x sets no label otherwise).
pub(crate) fn surrounded_list(v: &Option<Vec<String>>) -> Option<String> {
    v.as_deref().filter(|v| !v.is_empty()).map(surrounded)
}

/// Go's `net.JoinHostPort`: a host holding a colon (IPv6) goes in brackets.
pub(crate) fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An empty group: sent for a source that is gone, so downstream drops it.
pub(crate) fn empty_group(source: String) -> TargetGroup {
    TargetGroup {
        source,
        ..TargetGroup::default()
    }
}

// Strings borrow from the document where the parser can (JSON without escapes): a
// target address is then copied once, into its label set.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup<'a> {
    #[serde(default, borrow)]
    targets: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    labels: Option<BTreeMap<Cow<'a, str>, Cow<'a, str>>>,
}

/// The syntax of a target-group document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocFormat {
    /// JSON (`*.json` files, HTTP SD).
    Json,
    /// YAML (`*.yml`, `*.yaml` files).
    Yaml,
}

impl DocFormat {
    /// The format a file SD path implies: `.json` (any case) is JSON, else YAML.
    pub fn for_path(path: &str) -> DocFormat {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".json") {
            DocFormat::Json
        } else {
            DocFormat::Yaml
        }
    }
}

/// Parses a document into groups with empty sources (the caller names them). Errors
/// carry the parser's position (`at line L column C`) where it has one.
pub fn parse_target_groups(data: &[u8], format: DocFormat) -> Result<Vec<TargetGroup>, String> {
    let raw: Vec<Option<RawGroup<'_>>> = match format {
        DocFormat::Json => serde_json::from_slice(data).map_err(|e| e.to_string())?,
        DocFormat::Yaml => {
            if data.iter().all(u8::is_ascii_whitespace) {
                Vec::new()
            } else {
                // Aliases are bounded in the bytes they expand to before anything is
                // built (a non-UTF-8 document fails in the parse below).
                if let Ok(text) = std::str::from_utf8(data) {
                    crate::common::yaml::check_expansion(text).map_err(|e| match e.position {
                        Some((l, c)) => format!("{} at line {l} column {c}", e.message),
                        None => e.message,
                    })?;
                }
                serde_yaml::from_slice(data).map_err(|e| e.to_string())?
            }
        }
    };
    let mut out = Vec::with_capacity(raw.len());
    for (i, g) in raw.into_iter().enumerate() {
        let Some(g) = g else {
            return Err(format!("nil target group item found (group {i})"));
        };
        let group_labels = g.labels.unwrap_or_default();
        for name in group_labels.keys() {
            if name.is_empty() {
                return Err(format!("{} is not a valid label name", quote(name)));
            }
        }
        let targets = g
            .targets
            .unwrap_or_default()
            .into_iter()
            .map(|t| Labels::single(labels::ADDRESS, &t))
            .collect();
        out.push(TargetGroup {
            targets,
            labels: Labels::from_pairs(group_labels),
            source: String::new(),
        });
    }
    Ok(out)
}

/// Names the groups of one document (`<origin>:<index>`) and adds the origin label
/// (`__meta_filepath` or `__meta_url`), which overrides a user label of that name.
pub(crate) fn name_groups(groups: &mut [TargetGroup], origin: &str, origin_label: &str) {
    for (i, g) in groups.iter_mut().enumerate() {
        g.source = format!("{origin}:{i}");
        let mut lb = g.labels.builder();
        lb.set(origin_label, origin);
        g.labels = lb.labels();
    }
}

/// Go's `filepath.Match` for one path component: `*`, `?`, `[…]` classes (with ranges
/// and `^` negation), `\` escapes. A malformed class never matches.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, chars consumed including ']').
        let mut i = 0;
        let negate = p.first() == Some(&'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        loop {
            let lo = *p.get(i)?;
            if lo == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            let (lo, next) = if lo == '\\' {
                (*p.get(i + 1)?, i + 2)
            } else {
                (lo, i + 1)
            };
            i = next;
            let mut hi = lo;
            if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|c| *c != ']') {
                hi = p[i + 1];
                i += 2;
                if hi == '\\' {
                    hi = *p.get(i)?;
                    i += 1;
                }
            }
            if lo <= c && c <= hi {
                matched = true;
            }
        }
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| go(&p[1..], &n[k..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => match (
                n.first(),
                class(&p[1..], n.first().copied().unwrap_or('\0')),
            ) {
                (Some(_), Some((true, used))) => go(&p[1 + used..], &n[1..]),
                _ => false,
            },
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    if pattern.is_ascii() && name.is_ascii() && !pattern.contains(['[', '\\']) {
        return ascii_match(pattern.as_bytes(), name.as_bytes());
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// `*` and `?` over ASCII without allocating (the common case: `*.json`).
fn ascii_match(p: &[u8], n: &[u8]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some(b'*') => (0..=n.len()).any(|k| ascii_match(&p[1..], &n[k..])),
        Some(b'?') => !n.is_empty() && ascii_match(&p[1..], &n[1..]),
        Some(c) => n.first() == Some(c) && ascii_match(&p[1..], &n[1..]),
    }
}

/// Splits a file SD pattern into its directory and its last component.
pub(crate) fn split_pattern(pattern: &str) -> (String, String) {
    match pattern.rfind('/') {
        Some(0) => ("/".into(), pattern[1..].into()),
        Some(i) => (pattern[..i].into(), pattern[i + 1..].into()),
        None => (".".into(), pattern.into()),
    }
}

/// `dir` joined with `name` as glob output would spell it.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir == "." {
        name.to_owned()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_document() {
        let doc =
            br#"[{"targets": ["localhost:9090", "example.org:443"], "labels": {"foo": "bar"}},
                       {"targets": ["my.domain"]}]"#;
        let mut g = parse_target_groups(doc, DocFormat::Json).unwrap();
        name_groups(&mut g, "/sd/a.json", "__meta_filepath");
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].source, "/sd/a.json:0");
        assert_eq!(g[0].targets.len(), 2);
        assert_eq!(g[0].labels.get("foo"), Some("bar"));
        assert_eq!(g[1].labels.get("__meta_filepath"), Some("/sd/a.json"));
        assert_eq!(g[1].targets[0].get("__address__"), Some("my.domain"));
    }

    #[test]
    fn strictness() {
        let e = parse_target_groups(b"[null]", DocFormat::Json).unwrap_err();
        assert!(e.starts_with("nil target group item found"), "{e}");
        let e = parse_target_groups(b"- null\n", DocFormat::Yaml).unwrap_err();
        assert!(e.starts_with("nil target group item found"), "{e}");
        let e =
            parse_target_groups(br#"[{"targets": [], "extra": 1}]"#, DocFormat::Json).unwrap_err();
        assert!(
            e.contains("unknown field `extra`") && e.contains("line 1"),
            "{e}"
        );
        let e = parse_target_groups(b"- targets\n", DocFormat::Yaml).unwrap_err();
        assert!(!e.is_empty());
        let e = parse_target_groups(br#"[{"labels": {"": "x"}}]"#, DocFormat::Json).unwrap_err();
        assert_eq!(e, r#""" is not a valid label name"#);
        assert_eq!(parse_target_groups(b"[]", DocFormat::Json).unwrap(), vec![]);
        assert_eq!(parse_target_groups(b"", DocFormat::Yaml).unwrap(), vec![]);
        let g = parse_target_groups(b"- targets: []\n", DocFormat::Yaml).unwrap();
        assert!(g[0].targets.is_empty());
    }

    #[test]
    fn yaml_alias_bombs_are_refused_with_their_position() {
        // One 1 MiB label value referenced 3,000 times (3 GiB if expanded).
        let mut doc = format!("- labels: {{a: &big \"{}\"}}\n", "x".repeat(1 << 20));
        for i in 0..3000 {
            doc.push_str(&format!("- targets: [h{i}:80]\n  labels: {{a: *big}}\n"));
        }
        let e = parse_target_groups(doc.as_bytes(), DocFormat::Yaml).unwrap_err();
        assert!(
            e.starts_with("YAML aliases expand the document to more than")
                && e.contains(" at line "),
            "{e}"
        );
        // Aliases within the bound are fine.
        let doc = "- labels: {a: &v x}\n  targets: [h:1]\n- labels: {a: *v}\n  targets: [h:2]\n";
        let g = parse_target_groups(doc.as_bytes(), DocFormat::Yaml).unwrap();
        assert_eq!(g[1].labels.get("a"), Some("x"));
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.json", "a.json"));
        assert!(!glob_match("*.json", "a.yml"));
        assert!(glob_match("foo*.yaml", "foo.yaml"));
        assert!(glob_match("a?c.json", "abc.json"));
        assert!(glob_match("[a-c]x.json", "bx.json"));
        assert!(!glob_match("[^a-c]x.json", "bx.json"));
        assert!(glob_match("plain.json", "plain.json"));
        assert!(!glob_match("[a-.json", "a.json"));
        assert_eq!(
            split_pattern("/etc/sd/*.json"),
            ("/etc/sd".into(), "*.json".into())
        );
        assert_eq!(split_pattern("a.json"), (".".into(), "a.json".into()));
        assert_eq!(join("/etc/sd", "x.json"), "/etc/sd/x.json");
    }
}
