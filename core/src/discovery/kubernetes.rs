//! `kubernetes_sd_configs`: nodes, pods, services, endpoints, endpoint slices or
//! ingresses of a Kubernetes cluster, listed and watched through its API server.
//! Validation follows 3.x's `discovery/kubernetes` (`Role.UnmarshalYAML`,
//! `SDConfig.UnmarshalYAML`, `SetDirectory`), with the selectors checked by the
//! apimachinery parsers it calls (`fields.ParseSelector`, `labels.Parse`), reimplemented
//! here with their messages.
//!
//! The running provider is built from: [`watch`] (list and watch bodies decoded as they
//! arrive), [`objects`] (the compact records kept per object), `informer` (one
//! resource listed and watched), `build` (the groups of each role, with 3.x's labels),
//! [`kubeconfig`] and `machine` (the provider: client settings, informers, joins).

mod build;
pub(crate) mod informer;
pub mod kubeconfig;
mod machine;
pub mod objects;
pub mod watch;

use serde::Deserialize;

use super::mechanism::{
    Counter, Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, flag, go_enum, texts,
    whole,
};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::paths::join_dir;
use crate::common::yaml::{Bool11, LenientString, Nullable};
use crate::goquote::quote;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Kubernetes;

go_enum! {
    /// A Kubernetes SD role (of the block or of a selector).
    pub struct KubernetesRole: ["node", "pod", "service", "endpoints", "endpointslice", "ingress"]
        else "unknown Kubernetes SD role {}";
}

/// `api_server`: a URL Go's `url.Parse` accepts, checked while decoding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ApiServer(String);

impl<'de> Deserialize<'de> for ApiServer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = crate::common::yaml::lenient_string(d)?;
        crate::gourl::parse(&s).map_err(serde::de::Error::custom)?;
        Ok(ApiServer(s))
    }
}

/// `namespaces` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNamespaces {
    #[serde(default)]
    own_namespace: Bool11,
    #[serde(default)]
    names: Option<Vec<LenientString>>,
}

/// A `selectors` entry as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSelector {
    #[serde(default)]
    role: Option<KubernetesRole>,
    #[serde(default)]
    label: LenientString,
    #[serde(default)]
    field: LenientString,
}

/// `attach_metadata` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAttachMetadata {
    #[serde(default)]
    node: Nullable<Bool11>,
    #[serde(default)]
    namespace: Nullable<Bool11>,
    #[serde(default)]
    deployment: Nullable<Bool11>,
    #[serde(default)]
    job: Nullable<Bool11>,
    #[serde(default)]
    cronjob: Nullable<Bool11>,
}

with_http_client! {
    /// `kubernetes_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawKubernetesSd {
        #[serde(default)]
        api_server: Option<ApiServer>,
        #[serde(default)]
        role: Option<KubernetesRole>,
        #[serde(default)]
        kubeconfig_file: LenientString,
        #[serde(default)]
        namespaces: Option<RawNamespaces>,
        #[serde(default)]
        selectors: Option<Vec<Option<RawSelector>>>,
        #[serde(default)]
        attach_metadata: Option<RawAttachMetadata>,
    }
}

/// Which namespaces to watch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubernetesNamespaces {
    /// The namespace Prometheus runs in.
    pub own_namespace: bool,
    /// These namespaces (all when empty and `own_namespace` is false).
    pub names: Vec<String>,
}

/// A label and field selector for the objects of one role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubernetesSelector {
    /// The role it applies to.
    pub role: String,
    /// Label selector.
    pub label: String,
    /// Field selector.
    pub field: String,
}

/// Metadata attached to the targets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubernetesAttachMetadata {
    /// The node's labels and annotations.
    pub node: bool,
    /// The namespace's labels and annotations.
    pub namespace: bool,
    /// The owning deployment's name.
    pub deployment: bool,
    /// The owning job's name.
    pub job: bool,
    /// The owning cron job's name.
    pub cronjob: bool,
}

/// Kubernetes discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubernetesSdConfig {
    /// API server URL (in-cluster configuration when absent).
    pub api_server: Option<String>,
    /// The role.
    pub role: KubernetesRole,
    /// A kubeconfig file, resolved against the configuration's directory.
    pub kubeconfig_file: String,
    /// Client options (only with `api_server`).
    pub http_client: HttpClientConfig,
    /// Namespaces to watch.
    pub namespaces: KubernetesNamespaces,
    /// Selectors, at most one per role.
    pub selectors: Vec<KubernetesSelector>,
    /// Metadata to attach.
    pub attach_metadata: KubernetesAttachMetadata,
}

/// The selector roles each block role allows.
fn allowed_selectors(role: &str) -> &'static [&'static str] {
    match role {
        "pod" => &["pod", "node"],
        "service" => &["service"],
        "endpointslice" => &["pod", "service", "endpointslice"],
        "endpoints" => &["pod", "service", "endpoints"],
        "node" => &["node"],
        _ => &["ingress"],
    }
}

/// One `prometheus_sd_kubernetes_events_total` series per (role, event), all exported
/// from the start at 0, as 3.x initialises them.
macro_rules! event_counters {
    ($($role:literal),*) => {
        [
            Counter {
                name: machine::FAILURES,
                labels: &[],
                help: "The number of failed WATCH/LIST requests.",
            },
            $(
                event_counters!(@one $role, "add"),
                event_counters!(@one $role, "delete"),
                event_counters!(@one $role, "update"),
            )*
        ]
    };
    (@one $role:literal, $event:literal) => {
        Counter {
            name: machine::EVENTS,
            labels: &[("event", $event), ("role", $role)],
            help: "The number of Kubernetes events handled.",
        }
    };
}

const KUBERNETES_COUNTERS: [Counter; 19] = event_counters!(
    "endpointslice",
    "endpoints",
    "node",
    "pod",
    "service",
    "ingress"
);

impl Mechanism for Kubernetes {
    const KEY: &'static str = "kubernetes_sd_configs";
    const NAME: &'static str = "kubernetes";
    const GO_TYPE: &'static str = "kubernetes.plain";
    const RUNS: bool = true;
    const EXAMPLE: Option<&'static str> = Some(
        "{role: endpointslice, api_server: 'http://127.0.0.1:6443', namespaces: {names: [default]}, selectors: [{role: pod, label: 'app=web'}], attach_metadata: {node: true}}",
    );
    const COUNTERS: &'static [Counter] = &KUBERNETES_COUNTERS;
    type Raw = RawKubernetesSd;
    type Config = KubernetesSdConfig;

    fn nested_go_type(key: &str) -> Option<&'static str> {
        match key {
            "namespaces" => Some("kubernetes.plain"),
            "selectors" => Some("kubernetes.SelectorConfig"),
            "attach_metadata" => Some("kubernetes.AttachMetadataConfig"),
            _ => None,
        }
    }

    fn validate(
        mut raw: RawKubernetesSd,
        cx: &SdContext<'_>,
    ) -> Result<KubernetesSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let Some(role) = raw.role.take() else {
            return Err((
                at("role"),
                "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)"
                    .into(),
            ));
        };
        let mut http_client = client.check().map_err(whole)?;
        // `reflect.DeepEqual` with `DefaultHTTPClientConfig` after validation: any
        // written `http_headers` (even empty) counts as a change too.
        let custom_client =
            http_client != HttpClientConfig::default() || raw._http_headers.is_some();
        let api_server = raw.api_server.take().map(|a| a.0);
        let kubeconfig = raw.kubeconfig_file.0;
        let namespaces = raw.namespaces.take().unwrap_or_default();
        let own_namespace = namespaces.own_namespace.0;
        if api_server.is_some() && !kubeconfig.is_empty() {
            return Err(whole(
                "cannot use 'kubeconfig_file' and 'api_server' simultaneously".into(),
            ));
        }
        if !kubeconfig.is_empty() && custom_client {
            return Err(whole(
                "cannot use a custom HTTP client configuration together with 'kubeconfig_file'"
                    .into(),
            ));
        }
        if api_server.is_none() && custom_client {
            return Err(whole(
                "to use custom HTTP client configuration please provide the 'api_server' URL explicitly"
                    .into(),
            ));
        }
        if api_server.is_some() && own_namespace {
            return Err(whole(
                "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously".into(),
            ));
        }
        if !kubeconfig.is_empty() && own_namespace {
            return Err(whole(
                "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously".into(),
            ));
        }
        let allowed = allowed_selectors(role.as_str());
        let mut selectors: Vec<KubernetesSelector> = Vec::new();
        for (i, s) in raw
            .selectors
            .take()
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let s = s.unwrap_or_default();
            let here = at("selectors").index(i);
            let selector_role = s.role.map(|r| r.0).unwrap_or_default();
            if selectors.iter().any(|o| o.role == selector_role) {
                return Err((here, format!("duplicated selector role: {selector_role}")));
            }
            if !allowed.contains(&selector_role.as_str()) {
                return Err((
                    here,
                    format!(
                        "{} role supports only {} selectors",
                        role.as_str(),
                        allowed.join(", ")
                    ),
                ));
            }
            parse_field_selector(&s.field.0).map_err(|e| (here.key("field"), e))?;
            parse_label_selector(&s.label.0).map_err(|e| (here.key("label"), e))?;
            selectors.push(KubernetesSelector {
                role: selector_role,
                label: s.label.0,
                field: s.field.0,
            });
        }
        http_client.set_directory(cx.paths.dir);
        let meta = raw.attach_metadata.take().unwrap_or_default();
        Ok(KubernetesSdConfig {
            api_server,
            role,
            kubeconfig_file: join_dir(cx.paths.dir, &kubeconfig),
            http_client,
            namespaces: KubernetesNamespaces {
                own_namespace,
                names: texts(namespaces.names),
            },
            selectors,
            attach_metadata: KubernetesAttachMetadata {
                node: flag(meta.node, false),
                namespace: flag(meta.namespace, false),
                deployment: flag(meta.deployment, false),
                job: flag(meta.job, false),
                cronjob: flag(meta.cronjob, false),
            },
        })
    }

    fn machine(cfg: &KubernetesSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        Some(Box::new(machine::KubernetesSd::new(cfg, cx)))
    }
}

// ---- Field selectors (apimachinery `fields.ParseSelector`) ----

/// Checks a field selector: comma-separated `field=value`, `field==value` or
/// `field!=value` terms (a backslash escapes `\`, `,` and `=` in values).
fn parse_field_selector(selector: &str) -> Result<(), String> {
    let mut terms = split_field_terms(selector);
    terms.sort_unstable();
    for term in terms {
        if term.is_empty() {
            continue;
        }
        let Some(value) = field_term_value(term) else {
            return Err(format!(
                "invalid selector: '{selector}'; can't understand '{term}'"
            ));
        };
        unescape_field_value(value)?;
    }
    Ok(())
}

/// The terms between the commas that are not escaped.
fn split_field_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// The value after the first operator (`!=`, `==` or `=`, tried in that order at each
/// position).
fn field_term_value(term: &str) -> Option<&str> {
    term.char_indices().find_map(|(i, _)| {
        ["!=", "==", "="]
            .iter()
            .find(|op| term[i..].starts_with(**op))
            .map(|op| &term[i + op.len()..])
    })
}

fn unescape_field_value(s: &str) -> Result<(), String> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(());
    }
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                ));
            }
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ));
            }
            _ => {}
        }
    }
    if escaped {
        return Err("invalid field selector: invalid escape sequence: \\".into());
    }
    Ok(())
}

// ---- Label selectors (apimachinery `labels.Parse`) ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn symbol_token(s: &[u8]) -> Option<Tok> {
    Some(match s {
        b")" => Tok::ClosedPar,
        b"," => Tok::Comma,
        b"!" => Tok::DoesNotExist,
        b"==" => Tok::DoubleEquals,
        b"=" => Tok::Equals,
        b">" => Tok::GreaterThan,
        b"<" => Tok::LessThan,
        b"!=" => Tok::NotEquals,
        b"(" => Tok::OpenPar,
        _ => return None,
    })
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The lexer's tokens, ending with `End` (a NUL byte ends the input, as in Go).
fn lex(s: &str) -> Vec<(Tok, String)> {
    let b = s.as_bytes();
    let mut pos = 0;
    // Go's reader: 0 at the end (without moving) or at a NUL byte (moving past it).
    let read = |pos: &mut usize| -> u8 {
        match b.get(*pos) {
            Some(&c) => {
                *pos += 1;
                c
            }
            None => 0,
        }
    };
    let mut out = Vec::new();
    loop {
        let mut c = read(&mut pos);
        while is_blank(c) {
            c = read(&mut pos);
        }
        if c == 0 {
            out.push((Tok::End, String::new()));
            return out;
        }
        pos -= 1;
        let start = pos;
        if is_special(c) {
            let mut last: Option<(Tok, usize)> = None;
            loop {
                let c = read(&mut pos);
                if c == 0 {
                    break;
                }
                if !is_special(c) {
                    pos -= 1;
                    break;
                }
                match symbol_token(&b[start..pos]) {
                    Some(t) => last = Some((t, pos)),
                    None if last.is_some() => {
                        pos -= 1;
                        break;
                    }
                    None => {}
                }
            }
            // Every single special character is a token, so `last` is always set.
            let (tok, end) = last.unwrap_or((Tok::Identifier, pos));
            out.push((tok, String::from_utf8_lossy(&b[start..end]).into_owned()));
        } else {
            let mut end = pos;
            loop {
                let c = read(&mut pos);
                if c == 0 {
                    break;
                }
                if is_special(c) || is_blank(c) {
                    pos -= 1;
                    break;
                }
                end = pos;
            }
            let word = String::from_utf8_lossy(&b[start..end]).into_owned();
            let tok = match word.as_str() {
                "in" => Tok::In,
                "notin" => Tok::NotIn,
                _ => Tok::Identifier,
            };
            out.push((tok, word));
        }
    }
}

/// Where the parser is reading: keys and operators, or values (where `in` and `notin`
/// are plain identifiers).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

struct LabelParser {
    items: Vec<(Tok, String)>,
    pos: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Exists,
    DoesNotExist,
    Set,
    Exact,
    Compare,
}

impl LabelParser {
    fn item(&self, i: usize, ctx: Ctx) -> (Tok, String) {
        let (tok, lit) = self
            .items
            .get(i)
            .cloned()
            .unwrap_or((Tok::End, String::new()));
        match tok {
            Tok::In | Tok::NotIn if ctx == Ctx::Values => (Tok::Identifier, lit),
            _ => (tok, lit),
        }
    }

    fn lookahead(&self, ctx: Ctx) -> (Tok, String) {
        self.item(self.pos, ctx)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        self.pos += 1;
        self.item(self.pos - 1, ctx)
    }

    fn parse(&mut self) -> Result<(), String> {
        loop {
            let (tok, lit) = self.lookahead(Ctx::Values);
            match tok {
                Tok::Identifier | Tok::DoesNotExist => {
                    self.requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::End => return Ok(()),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Tok::Identifier && t2 != Tok::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!("found '{l}', expected: ',' or 'end of string'"));
                        }
                    }
                }
                Tok::End => return Ok(()),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<(), String> {
        let mut op = None;
        let (mut tok, mut key) = self.consume(Ctx::Values);
        if tok == Tok::DoesNotExist {
            op = Some(Op::DoesNotExist);
            (tok, key) = self.consume(Ctx::Values);
        }
        if tok != Tok::Identifier {
            return Err(format!("found '{key}', expected: identifier"));
        }
        let details = label_key_errors(&key);
        if !details.is_empty() {
            return Err(format!(
                "<nil>: Invalid value: {}: {}",
                quote(&key),
                details.join("; ")
            ));
        }
        if matches!(self.lookahead(Ctx::Values).0, Tok::End | Tok::Comma) && op.is_none() {
            op = Some(Op::Exists);
        }
        if matches!(op, Some(Op::Exists | Op::DoesNotExist)) {
            return Ok(());
        }
        let (tok, lit) = self.consume(Ctx::KeyAndOperator);
        let op = match tok {
            Tok::In | Tok::NotIn => Op::Set,
            Tok::Equals | Tok::DoubleEquals | Tok::NotEquals => Op::Exact,
            Tok::GreaterThan | Tok::LessThan => Op::Compare,
            _ => {
                return Err(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        };
        let mut values = match op {
            Op::Set => self.set_values()?,
            _ => self.exact_value()?,
        };
        values.sort();
        values.dedup();
        check_requirement(&key, op, &values)
    }

    fn set_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Tok::Identifier | Tok::Comma => {
                let values = self.identifiers()?;
                if self.consume(Ctx::Values).0 != Tok::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(values)
            }
            Tok::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn identifiers(&mut self) -> Result<Vec<String>, String> {
        let mut values: Vec<String> = Vec::new();
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Tok::Identifier => {
                    values.push(lit);
                    let (t2, l2) = self.lookahead(Ctx::Values);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(values),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    match self.lookahead(Ctx::Values).0 {
                        Tok::ClosedPar => {
                            values.push(String::new());
                            return Ok(values);
                        }
                        Tok::Comma => values.push(String::new()),
                        _ => {}
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        if matches!(self.lookahead(Ctx::Values).0, Tok::End | Tok::Comma) {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Tok::Identifier {
            Ok(vec![lit])
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

/// `NewRequirement`'s checks of the values (sorted, without duplicates), aggregated as
/// apimachinery aggregates field errors.
fn check_requirement(key: &str, op: Op, values: &[String]) -> Result<(), String> {
    let mut errors: Vec<String> = Vec::new();
    if op == Op::Compare {
        for (i, v) in values.iter().enumerate() {
            if v.parse::<i64>().is_err() {
                errors.push(format!(
                    "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                    quote(v)
                ));
            }
        }
    }
    for (i, v) in values.iter().enumerate() {
        let details = label_value_errors(v);
        if !details.is_empty() {
            errors.push(format!(
                "values[{i}][{key}]: Invalid value: {}: {}",
                quote(v),
                details.join("; ")
            ));
        }
    }
    let mut unique: Vec<String> = Vec::new();
    for e in errors {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    match unique.len() {
        0 => Ok(()),
        1 => Err(unique.remove(0)),
        _ => Err(format!("[{}]", unique.join(", "))),
    }
}

/// Checks a label selector as apimachinery's `labels.Parse` does.
fn parse_label_selector(selector: &str) -> Result<(), String> {
    LabelParser {
        items: lex(selector),
        pos: 0,
    }
    .parse()
}

const NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";

/// apimachinery's `RegexError`: the message, examples, and the regex.
fn regex_error(msg: &str, re: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{re}')",
        examples.join(" or ")
    )
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`
fn is_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(f), Some(l)) => edge(f) && edge(l) && b.iter().all(|c| edge(c) || *c == b'-'),
            _ => false,
        }
    })
}

/// `content.IsLabelKey`: an optional DNS subdomain prefix and `/`, then a name.
fn label_key_errors(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_owned());
            } else {
                if prefix.len() > 253 {
                    errors.push("prefix part must be no more than 253 bytes".to_owned());
                }
                if !is_dns1123_subdomain(prefix) {
                    errors.push(format!(
                        "prefix part {}",
                        regex_error(
                            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                            SUBDOMAIN_FMT,
                            &["example.com"],
                        )
                    ));
                }
            }
            *name
        }
        _ => {
            errors.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(NAME_MSG, NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errors;
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 bytes".to_owned());
    }
    if !is_qualified_name(name) {
        errors.push(format!(
            "name part {}",
            regex_error(NAME_MSG, NAME_FMT, &["MyName", "my.name", "123-abc"])
        ));
    }
    errors
}

/// `content.IsLabelValue`: empty, or at most 63 bytes shaped like a name.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 bytes".to_owned());
    }
    if !value.is_empty() && !is_qualified_name(value) {
        errors.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?",
            &["MyValue", "my_value", "12345"],
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "kubernetes_sd_configs";

    #[test]
    fn defaults_are_applied() {
        let c: KubernetesSdConfig = block(KEY, "role: pod");
        assert_eq!(c.role.as_str(), "pod");
        assert_eq!(c.api_server, None);
        assert_eq!(c.kubeconfig_file, "");
        assert_eq!(c.http_client, HttpClientConfig::default());
        assert_eq!(c.namespaces, KubernetesNamespaces::default());
        assert_eq!(c.attach_metadata, KubernetesAttachMetadata::default());
        let c: KubernetesSdConfig = block(
            KEY,
            "role: endpoints\nnamespaces: {names: [a, b]}\nattach_metadata: {node: true, cronjob: yes}",
        );
        assert_eq!(c.namespaces.names, ["a", "b"]);
        assert!(c.attach_metadata.node && c.attach_metadata.cronjob && !c.attach_metadata.job);
    }

    #[test]
    fn role_is_required_and_checked() {
        assert_eq!(
            error_at(KEY, "namespaces: {own_namespace: true}"),
            (
                4,
                9,
                "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)"
                    .into()
            )
        );
        assert_eq!(
            error_at(KEY, "role: Pod"),
            (4, 15, r#"unknown Kubernetes SD role "Pod""#.into())
        );
        assert_eq!(
            error(KEY, "role: pod\nselectors: [{role: pods}]"),
            r#"unknown Kubernetes SD role "pods""#
        );
    }

    #[test]
    fn api_server_kubeconfig_and_client() {
        assert_eq!(
            error_at(KEY, "role: pod\napi_server: 'https://k:x'"),
            (
                5,
                21,
                r#"parse "https://k:x": invalid port ":x" after host"#.into()
            )
        );
        assert_eq!(
            error(KEY, "role: pod\napi_server: ''\nkubeconfig_file: kc"),
            "cannot use 'kubeconfig_file' and 'api_server' simultaneously"
        );
        assert_eq!(
            error(KEY, "role: pod\nkubeconfig_file: kc\nbearer_token: t"),
            "cannot use a custom HTTP client configuration together with 'kubeconfig_file'"
        );
        assert_eq!(
            error(KEY, "role: pod\ntls_config: {insecure_skip_verify: true}"),
            "to use custom HTTP client configuration please provide the 'api_server' URL explicitly"
        );
        assert_eq!(
            error(KEY, "role: pod\nhttp_headers: {}"),
            "to use custom HTTP client configuration please provide the 'api_server' URL explicitly"
        );
        // Options equal to the defaults are no custom configuration.
        let c: KubernetesSdConfig = block(
            KEY,
            "role: node\nkubeconfig_file: kube/config\nfollow_redirects: true\ntls_config: {}",
        );
        assert_eq!(c.kubeconfig_file, "/etc/prometheus/kube/config");
        // The client is validated before these checks.
        assert_eq!(
            error(
                KEY,
                "role: pod\nkubeconfig_file: kc\nbearer_token: a\nbearer_token_file: b"
            ),
            "at most one of bearer_token & bearer_token_file must be configured"
        );
        let c: KubernetesSdConfig = block(
            KEY,
            "role: service\napi_server: https://k8s:6443\nbearer_token_file: sa/token",
        );
        assert_eq!(c.api_server.as_deref(), Some("https://k8s:6443"));
        let auth = c.http_client.authorization.expect("bearer token file");
        assert_eq!(auth.credentials_file, "/etc/prometheus/sa/token");
        // A null api_server is no api_server.
        let c: KubernetesSdConfig = block(KEY, "role: pod\napi_server: ~\nkubeconfig_file: kc");
        assert_eq!(c.api_server, None);
    }

    #[test]
    fn own_namespace_conflicts() {
        assert_eq!(
            error(
                KEY,
                "role: pod\napi_server: http://k\nnamespaces: {own_namespace: true}"
            ),
            "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously"
        );
        assert_eq!(
            error(
                KEY,
                "role: pod\nkubeconfig_file: k\nnamespaces: {own_namespace: true}"
            ),
            "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously"
        );
        let c: KubernetesSdConfig = block(KEY, "role: pod\nnamespaces: {own_namespace: true}");
        assert!(c.namespaces.own_namespace);
    }

    #[test]
    fn selectors_roles() {
        let c: KubernetesSdConfig = block(
            KEY,
            "role: endpoints\nselectors:\n  - {role: pod, label: 'app=web'}\n  - {role: service, field: 'metadata.name=x'}",
        );
        assert_eq!(c.selectors.len(), 2);
        assert_eq!(
            error_at(
                KEY,
                "role: pod\nselectors:\n  - {role: node}\n  - {role: node}"
            ),
            (7, 13, "duplicated selector role: node".into())
        );
        assert_eq!(
            error(KEY, "role: endpointslice\nselectors: [{role: node}]"),
            "endpointslice role supports only pod, service, endpointslice selectors"
        );
        assert_eq!(
            error(KEY, "role: ingress\nselectors: [{label: a}]"),
            "ingress role supports only ingress selectors"
        );
        // A null entry is a selector without a role, which no role allows.
        assert_eq!(
            error(KEY, "role: node\nselectors: [~]"),
            "node role supports only node selectors"
        );
    }

    #[test]
    fn selector_syntax_errors_are_placed() {
        assert_eq!(
            error_at(
                KEY,
                "role: pod\nselectors:\n  - role: pod\n    field: 'a=b=c'"
            ),
            (
                7,
                20,
                "invalid field selector: unescaped character in value: 61".into()
            )
        );
        assert_eq!(
            error_at(
                KEY,
                "role: pod\nselectors:\n  - role: pod\n    label: 'a in b'"
            ),
            (
                7,
                20,
                "unable to parse requirement: found 'b' expected: '('".into()
            )
        );
    }

    fn field(s: &str) -> Result<(), String> {
        parse_field_selector(s)
    }

    #[test]
    fn field_selectors() {
        for ok in [
            "",
            ",",
            "a=b",
            "a==b,c!=d",
            "=x",
            r"a=b\,c",
            r"a=\=\\",
            "a=",
            "a=b,",
        ] {
            assert_eq!(field(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            field("b=1,a"),
            Err("invalid selector: 'b=1,a'; can't understand 'a'".into())
        );
        assert_eq!(
            field(r"a=\x"),
            Err(r"invalid field selector: invalid escape sequence: \x".into())
        );
        assert_eq!(
            field(r"a=b\"),
            Err(r"invalid field selector: invalid escape sequence: \".into())
        );
        assert_eq!(
            field("a!=b=c"),
            Err("invalid field selector: unescaped character in value: 61".into())
        );
        // Terms are checked in sorted order.
        assert_eq!(
            field(r"z=\q,a"),
            Err(r"invalid selector: 'z=\q,a'; can't understand 'a'".into())
        );
    }

    fn label(s: &str) -> Result<(), String> {
        parse_label_selector(s)
    }

    #[test]
    fn label_selectors_accepted() {
        for ok in [
            "",
            "a",
            "!a",
            "a=b",
            "a==b",
            "a!=b",
            "a=",
            "a in (b, c)",
            "a notin (b)",
            "a in ()",
            "a in (,)",
            "a in (b,,c)",
            "a>1,b<2",
            "example.com/app=web, tier in (front)",
            "in=notin",
            " a = b ",
        ] {
            assert_eq!(label(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn label_selector_grammar_errors() {
        for (bad, want) in [
            (
                "=a",
                "found '=', expected: !, identifier, or 'end of string'",
            ),
            (
                "a b",
                "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
            ),
            ("a,", "found '', expected: identifier after ','"),
            ("a,=", "found '=', expected: identifier after ','"),
            (
                "!=a",
                "found '!=', expected: !, identifier, or 'end of string'",
            ),
            (
                "! =a",
                "unable to parse requirement: found '=', expected: identifier",
            ),
            (
                "a (b)",
                "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt",
            ),
            (
                "a in b",
                "unable to parse requirement: found 'b' expected: '('",
            ),
            (
                "a in (=)",
                "unable to parse requirement: found '=', expected: ',', ')' or identifier",
            ),
            (
                "a in (b c)",
                "unable to parse requirement: found 'c', expected: ',' or ')'",
            ),
            (
                "a in (b,",
                "unable to parse requirement: found '', expected: ',', or identifier",
            ),
            (
                "a=(",
                "unable to parse requirement: found '(', expected: identifier",
            ),
            ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ] {
            assert_eq!(label(bad), Err(want.to_owned()), "{bad}");
        }
    }

    #[test]
    fn label_selector_key_and_value_errors() {
        let name = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        assert_eq!(
            label("-a"),
            Err(format!(
                r#"unable to parse requirement: <nil>: Invalid value: "-a": {name}"#
            ))
        );
        assert_eq!(
            label("/a"),
            Err(r#"unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty"#.into())
        );
        assert_eq!(
            label("a/"),
            Err(format!(
                r#"unable to parse requirement: <nil>: Invalid value: "a/": name part must be non-empty; {name}"#
            ))
        );
        assert!(label("a/b/c").unwrap_err().ends_with(
            "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ));
        assert!(
            label("Ex.com/a")
                .unwrap_err()
                .contains(": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
        );
        assert_eq!(
            label(&"k".repeat(64)),
            Err(format!(
                "unable to parse requirement: <nil>: Invalid value: \"{}\": name part must be no more than 63 bytes",
                "k".repeat(64)
            ))
        );
        let value = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
        assert_eq!(
            label("a in (x, -y)"),
            Err(format!(
                r#"unable to parse requirement: values[0][a]: Invalid value: "-y": {value}"#
            ))
        );
        assert_eq!(
            label("a>x"),
            Err(r#"unable to parse requirement: values[0]: Invalid value: "x": for 'Gt', 'Lt' operators, the value must be an integer"#.into())
        );
        assert_eq!(
            label("a<-x"),
            Err(format!(
                r#"unable to parse requirement: [values[0]: Invalid value: "-x": for 'Gt', 'Lt' operators, the value must be an integer, values[0][a]: Invalid value: "-x": {value}]"#
            ))
        );
    }

    #[test]
    fn null_entry_and_unknown_fields() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "role: pod", "kubernetes.plain");
        assert_eq!(
            error(KEY, "role: pod\nnamespaces: {name: [a]}"),
            "field name not found in type kubernetes.plain"
        );
        assert_eq!(
            error(KEY, "role: pod\nselectors: [{role: pod, labels: a}]"),
            "field labels not found in type kubernetes.SelectorConfig"
        );
        assert_eq!(
            error(KEY, "role: pod\nattach_metadata: {nodes: true}"),
            "field nodes not found in type kubernetes.AttachMetadataConfig"
        );
    }
}
