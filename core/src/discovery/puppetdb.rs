//! `puppetdb_sd_configs`: the resources a PQL query returns from PuppetDB, asked for
//! every `refresh_interval`. Validation follows 3.x's `discovery/puppetdb`
//! `SDConfig.UnmarshalYAML`; the refresh its `NewDiscovery` and `Discovery.refresh`:
//! one `POST <url>/pdb/query/v4` (the URL's path joined and cleaned as Go's
//! `path.Join` does, its query and fragment kept) of `{"query":"<query>"}` as Go's
//! `encoding/json` writes it, with `Accept` and `Content-Type: application/json`. Only
//! a 200 whose `Content-Type` is `application/json` (with at most a UTF-8 charset) is
//! read, as a JSON array of resources: a target per resource at its certname and
//! `port`, with 3.x's `__meta_puppetdb_*` labels (and the parameters flattened as 3.x's
//! `Parameters.toLabels` does when `include_parameters` is set); one group whose source
//! is the URL, `?query=` and the query. A failure keeps the last group.
//!
//! Where trawl differs: JSON keys are matched as written (Go's decoder also takes them
//! in another case), and parameters whose names collide once sanitised resolve in the
//! order of their names (Go's map order is random).

use serde::Deserialize;

use super::groups::{
    TargetGroup, go_port, go_status, header, join_host_port, label_set, nul, sanitize, surrounded,
};
use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, flag, whole};
use super::paged::{self, Call, Pages, Step};
use crate::common::http::HttpClientConfig;
use crate::common::http::with_http_client;
use crate::common::yaml::{Bool11, LenientString, Nullable};
use crate::duration::PromDuration;
use crate::labels::Labels;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct PuppetDb;

with_http_client! {
    /// `puppetdb_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawPuppetDbSd {
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        url: LenientString,
        #[serde(default)]
        query: LenientString,
        #[serde(default)]
        include_parameters: Nullable<Bool11>,
        #[serde(default)]
        port: Nullable<i64>,
    }
}

/// PuppetDB discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PuppetDbSdConfig {
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// PuppetDB's URL.
    pub url: String,
    /// The PQL query.
    pub query: String,
    /// Expose the resources' parameters as labels.
    pub include_parameters: bool,
    /// Port of the targets (default 80).
    pub port: i64,
    /// Client options.
    pub http_client: HttpClientConfig,
}

impl Mechanism for PuppetDb {
    const KEY: &'static str = "puppetdb_sd_configs";
    const NAME: &'static str = "puppetdb";
    const GO_TYPE: &'static str = "puppetdb.plain";
    const RUNS: bool = true;
    const EXAMPLE: Option<&'static str> = Some(
        "{url: 'http://puppetdb:8080', query: 'resources { type = \"Class\" and title = \"Prometheus::Node_exporter\" }', port: 9100}",
    );
    type Raw = RawPuppetDbSd;
    type Config = PuppetDbSdConfig;

    fn validate(mut raw: RawPuppetDbSd, cx: &SdContext<'_>) -> Result<PuppetDbSdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        super::http::check_url(&raw.url.0).map_err(|e| (at("url"), e))?;
        if raw.query.0.is_empty() {
            return Err((at("query"), "query missing".into()));
        }
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(PuppetDbSdConfig {
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            url: raw.url.0,
            query: raw.query.0,
            include_parameters: flag(raw.include_parameters, false),
            port: raw.port.onto(80),
            http_client,
        })
    }

    fn machine(cfg: &PuppetDbSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        let url = endpoint(&cfg.url);
        let body = format!(r#"{{"query":{}}}"#, go_json_string(&cfg.query));
        let pages = Query {
            source: format!("{url}?query={}", cfg.query),
            url,
            body: std::sync::Arc::from(body.into_bytes()),
            query: cfg.query.clone(),
            parameters: cfg.include_parameters,
            port: cfg.port,
            head: None,
        };
        Some(paged::machine(
            pages,
            &cfg.http_client,
            &[
                ("Accept", "application/json"),
                ("Content-Type", "application/json"),
            ],
            cfg.refresh_interval.to_std(),
            0,
            cx,
        ))
    }
}

/// 3.x's `d.url`: the configured URL with `pdb/query/v4` joined to its path (`path.Join`
/// cleans it: no trailing `/`, no `.` or `..`), re-escaped as Go's `URL.String` does;
/// the scheme lower-cased, the rest kept.
fn endpoint(url: &str) -> String {
    let (main, fragment) = match url.split_once('#') {
        Some((m, f)) => (m, Some(f)),
        None => (url, None),
    };
    let (main, query) = match main.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (main, None),
    };
    // Validation took the URL: `<scheme>://<authority>[/path]`.
    let (scheme, rest) = main.split_once("://").unwrap_or(("http", main));
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let decoded = crate::gourl::path_unescape(path).unwrap_or_else(|_| path.to_owned());
    let joined = if decoded.is_empty() {
        "pdb/query/v4".to_owned()
    } else {
        format!("{decoded}/pdb/query/v4")
    };
    let mut out = format!("{}://{authority}", scheme.to_ascii_lowercase());
    let clean = crate::common::paths::clean_path(&joined);
    if !clean.starts_with('/') {
        out.push('/');
    }
    crate::gourl::path_escape(&clean, &mut out);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(q);
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// A string as Go's `encoding/json` writes it (quoted; HTML characters and the line
/// and paragraph separators escaped, control characters as `\u00XX` but for the short
/// forms).
fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// 3.x's `matchContentType`: `application/json`, perhaps with `charset=utf-8` (any case,
/// quoted or not), and nothing else.
fn json_content_type(ct: &str) -> bool {
    let lower = ct.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("application/json") else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(param) = rest.strip_prefix(';') else {
        return false;
    };
    let param = param.trim_start_matches([' ', '\t', '\n', '\u{c}', '\r']);
    matches!(param, "charset=utf-8" | "charset=\"utf-8\"")
}

/// 3.x's `Resource` (the fields discovery reads).
#[derive(Debug, Default, Deserialize)]
struct Resource {
    #[serde(default, deserialize_with = "nul")]
    certname: String,
    #[serde(default, deserialize_with = "nul")]
    resource: String,
    #[serde(default, rename = "type", deserialize_with = "nul")]
    kind: String,
    #[serde(default, deserialize_with = "nul")]
    title: String,
    #[serde(default, deserialize_with = "nul")]
    exported: bool,
    #[serde(default, deserialize_with = "nul")]
    tags: Vec<String>,
    #[serde(default, deserialize_with = "nul")]
    file: String,
    #[serde(default, deserialize_with = "nul")]
    environment: String,
    #[serde(default, deserialize_with = "nul")]
    parameters: serde_json::Map<String, serde_json::Value>,
}

/// One value of a parameter (or of an array of them) as 3.x's `toLabels` writes it.
fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        // Go decodes every JSON number into a float64.
        serde_json::Value::Number(n) => n.as_f64().map(crate::goquote::format_go_float),
        _ => None,
    }
}

/// 3.x's `Parameters.toLabels`: `(name, value)` pairs, names sanitised and nested
/// objects flattened with `_`; empty values, empty arrays and `null` left out.
fn parameter_labels(
    params: &serde_json::Map<String, serde_json::Value>,
    out: &mut Vec<(String, String)>,
) {
    for (k, v) in params {
        let value = match v {
            serde_json::Value::Array(items) if items.is_empty() => continue,
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| scalar(i).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(","),
            serde_json::Value::Object(children) => {
                let prefix = sanitize(&format!("{k}_"));
                let mut nested = Vec::new();
                parameter_labels(children, &mut nested);
                out.extend(nested.into_iter().map(|(n, v)| (format!("{prefix}{n}"), v)));
                continue;
            }
            other => match scalar(other) {
                Some(s) => s,
                None => continue,
            },
        };
        if !value.is_empty() {
            out.push((sanitize(k), value));
        }
    }
}

const P: &str = "__meta_puppetdb_";

/// One answer of PuppetDB read into the group's targets.
pub(crate) fn targets_of(
    body: &[u8],
    query: &str,
    parameters: bool,
    port: i64,
) -> Result<Vec<Labels>, String> {
    let resources: Option<Vec<Resource>> =
        serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut targets = Vec::new();
    for r in resources.into_iter().flatten() {
        let mut l = vec![
            (
                "__address__".to_owned(),
                join_host_port(&r.certname, &go_port(port)),
            ),
            (format!("{P}query"), query.to_owned()),
            (format!("{P}certname"), r.certname),
            (format!("{P}environment"), r.environment),
            (format!("{P}exported"), r.exported.to_string()),
            (format!("{P}file"), r.file),
            (format!("{P}resource"), r.resource),
            (format!("{P}title"), r.title),
            (format!("{P}type"), r.kind),
        ];
        if !r.tags.is_empty() {
            l.push((format!("{P}tags"), surrounded(&r.tags)));
        }
        if parameters {
            let mut params = Vec::new();
            parameter_labels(&r.parameters, &mut params);
            l.extend(
                params
                    .into_iter()
                    .map(|(n, v)| (format!("{P}parameter_{n}"), v)),
            );
        }
        targets.push(label_set(l));
    }
    Ok(targets)
}

/// The refresh: one query.
#[derive(Debug)]
struct Query {
    url: String,
    body: std::sync::Arc<[u8]>,
    source: String,
    query: String,
    parameters: bool,
    port: i64,
    /// The answer's status line and `Content-Type`, from its head.
    head: Option<(String, String)>,
}

impl Pages for Query {
    fn first(&mut self) -> Result<Call, String> {
        self.head = None;
        Ok(Call {
            url: self.url.clone(),
            body: Some(self.body.clone()),
            headers: Vec::new(),
        })
    }

    fn head(&mut self, status: u16, reason: &str, headers: &[(&str, &str)]) {
        let ct = header(headers, "content-type").map_or("", str::trim);
        self.head = Some((go_status(status, reason), ct.to_owned()));
    }

    fn answer(&mut self, status: u16, body: &[u8], _url: &str) -> Result<Step, String> {
        let (line, ct) = self.head.take().unwrap_or_default();
        if status != 200 {
            return Err(format!("server returned HTTP status {line}"));
        }
        if !json_content_type(&ct) {
            return Err(format!("unsupported content type {ct}"));
        }
        let targets = targets_of(body, &self.query, self.parameters, self.port)?;
        Ok(Step::Done(vec![TargetGroup {
            targets,
            labels: Labels::empty(),
            source: self.source.clone(),
        }]))
    }

    fn failed(&self, e: String) -> String {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        Drive, block, drive_block, error, error_at, null_entry_is_refused, unknown_field_names,
    };
    use crate::io::{IoCommand, IoEvent, IoOp};

    const KEY: &str = "puppetdb_sd_configs";

    /// 3.x's `fixtures/vhosts.json` (`discovery/puppetdb`), one `Apache::Vhost`.
    const VHOSTS: &str = r#"[{"certname": "edinburgh.example.com", "environment": "prod", "exported": false,
        "file": "/etc/puppetlabs/code/environments/prod/modules/upstream/apache/manifests/init.pp", "line": 384,
        "parameters": {"access_log": true, "access_log_file": "ssl_access_log", "additional_includes": [ ],
            "directoryindex": "", "docroot": "/var/www/html", "ensure": "absent",
            "options": ["Indexes", "FollowSymLinks", "MultiViews"], "php_flags": { }, "labels": {"alias": "edinburgh"},
            "scriptaliases": [{"alias": "/cgi-bin", "path": "/var/www/cgi-bin"}], "port": 22, "pi": 3.141592653589793,
            "buckets": [0, 2, 5], "coordinates": [60.13464726551357, -2.0513768021728893]},
        "resource": "49af83866dc5a1518968b68e58a25319107afe11",
        "tags": ["roles::hypervisor", "apache", "apache::vhost", "class", "default-ssl", "profile_hypervisor", "vhost",
            "profile_apache", "hypervisor", "__node_regexp__edinburgh", "roles", "node"],
        "title": "default-ssl", "type": "Apache::Vhost"}]"#;

    const BASE: &str = r#"__address__="edinburgh.example.com:80", __meta_puppetdb_certname="edinburgh.example.com", __meta_puppetdb_environment="prod", __meta_puppetdb_exported="false", __meta_puppetdb_file="/etc/puppetlabs/code/environments/prod/modules/upstream/apache/manifests/init.pp""#;
    const REST: &str = r#"__meta_puppetdb_query="vhosts", __meta_puppetdb_resource="49af83866dc5a1518968b68e58a25319107afe11", __meta_puppetdb_tags=",roles::hypervisor,apache,apache::vhost,class,default-ssl,profile_hypervisor,vhost,profile_apache,hypervisor,__node_regexp__edinburgh,roles,node,", __meta_puppetdb_title="default-ssl", __meta_puppetdb_type="Apache::Vhost""#;

    fn drive(yaml: &str) -> Drive<Box<dyn SdMachine>> {
        drive_block::<PuppetDb>(yaml, None)
    }

    /// The body of the last request started.
    fn last_body(d: &Drive<Box<dyn SdMachine>>) -> String {
        d.io.queue
            .iter()
            .rev()
            .find_map(|c| match c {
                IoCommand::Start(_, IoOp::Http(r)) => r
                    .body
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .expect("a POST")
    }

    fn answer(
        d: &mut Drive<Box<dyn SdMachine>>,
        id: crate::io::RequestId,
        status: u16,
        reason: &str,
        ct: &str,
        body: &str,
    ) {
        let h = [("Content-Type", ct)];
        let headers: &[(&str, &str)] = if ct.is_empty() { &[] } else { &h };
        d.feed(
            id,
            IoEvent::HttpHead {
                status,
                reason,
                headers,
            },
        );
        d.feed(id, IoEvent::HttpBody(body.as_bytes()));
        d.feed(id, IoEvent::HttpEnd);
    }

    /// 3.x's `TestPuppetDBRefresh` and `TestPuppetDBRefreshWithParameters`.
    #[test]
    fn the_query_is_posted_and_resources_become_targets_as_in_3x() {
        let mut d = drive("url: 'http://puppetdb:8080/'\nquery: vhosts");
        let s = d.started();
        assert_eq!(s[0].1, "http://puppetdb:8080/pdb/query/v4");
        for h in [
            ("Accept", "application/json"),
            ("Content-Type", "application/json"),
        ] {
            assert!(s[0].2.contains(&(h.0.into(), h.1.into())), "{h:?}");
        }
        assert_eq!(last_body(&d), r#"{"query":"vhosts"}"#);
        answer(&mut d, s[0].0, 200, "OK", "application/json", VHOSTS);
        let g = &d.out.updates[0][0];
        assert_eq!(g.source, "http://puppetdb:8080/pdb/query/v4?query=vhosts");
        assert_eq!(g.targets[0].to_string(), format!("{{{BASE}, {REST}}}"));

        let mut d = drive("url: 'http://puppetdb:8080'\nquery: vhosts\ninclude_parameters: true");
        let (id, _) = d.one();
        answer(
            &mut d,
            id,
            200,
            "OK",
            "application/json; charset=utf-8",
            VHOSTS,
        );
        let params = r#"__meta_puppetdb_parameter_access_log="true", __meta_puppetdb_parameter_access_log_file="ssl_access_log", __meta_puppetdb_parameter_buckets="0,2,5", __meta_puppetdb_parameter_coordinates="60.13464726551357,-2.0513768021728893", __meta_puppetdb_parameter_docroot="/var/www/html", __meta_puppetdb_parameter_ensure="absent", __meta_puppetdb_parameter_labels_alias="edinburgh", __meta_puppetdb_parameter_options="Indexes,FollowSymLinks,MultiViews", __meta_puppetdb_parameter_pi="3.141592653589793", __meta_puppetdb_parameter_port="22""#;
        assert_eq!(
            d.out.updates[0][0].targets[0].to_string(),
            format!("{{{BASE}, {params}, {REST}}}")
        );
    }

    #[test]
    fn parameters_are_flattened_as_3x_does() {
        let body = r#"[{"certname": "h:1", "parameters": {"a-b": {"c.d": {"e": 1000000}}, "big": 1234567,
            "small": 0.00001, "mixed": ["x", null, true, 1.5, {"o": 1}, []], "one_object": [{"a": 1}],
            "nothing": null, "empty": "", "ü": "umlaut", "": "blank", "neg": -0.0}}]"#;
        let t = &targets_of(body.as_bytes(), "q", true, 9100).expect("targets")[0];
        assert_eq!(t.get("__address__"), Some("[h:1]:9100"));
        let p = |n: &str| {
            t.get(&format!("__meta_puppetdb_parameter_{n}"))
                .map(str::to_owned)
        };
        assert_eq!(p("a_b_c_d_e").as_deref(), Some("1e+06"));
        assert_eq!(p("big").as_deref(), Some("1.234567e+06"));
        assert_eq!(p("small").as_deref(), Some("1e-05"));
        assert_eq!(p("mixed").as_deref(), Some("x,,true,1.5,,"));
        assert_eq!(p("one_object"), None);
        assert_eq!(p("nothing"), None);
        assert_eq!(p("empty"), None);
        assert_eq!(p("_").as_deref(), Some("umlaut"));
        assert_eq!(
            t.get("__meta_puppetdb_parameter_")
                .map(str::to_owned)
                .as_deref(),
            Some("blank")
        );
        assert_eq!(p("neg").as_deref(), Some("-0"));
        // `null` and `[]` are answers with no resource: the targets go.
        for empty in ["null", "[]"] {
            assert!(
                targets_of(empty.as_bytes(), "q", true, 80)
                    .expect("empty")
                    .is_empty()
            );
        }
        // A resource of the wrong shape fails the refresh.
        assert!(targets_of(br#"[{"exported": "yes"}]"#, "q", false, 80).is_err());
        assert!(targets_of(b"{}", "q", false, 80).is_err());
    }

    /// 3.x's `TestPuppetDBInvalidCode` and `TestPuppetDBInvalidFormat`, and a transport
    /// failure: each keeps the last group.
    #[test]
    fn failures_are_worded_as_3x_and_keep_the_targets() {
        let mut d =
            drive("url: 'https://puppetdb:8081/pdb/'\nquery: vhosts\nrefresh_interval: 10s");
        let (id, url) = d.one();
        assert_eq!(url, "https://puppetdb:8081/pdb/pdb/query/v4");
        answer(&mut d, id, 400, "Bad Request", "application/json", "");
        let (id, _) = d.one_after_advance();
        answer(&mut d, id, 500, "", "application/json", "");
        let (id, _) = d.one_after_advance();
        answer(&mut d, id, 200, "OK", "text/plain; charset=utf-8", "{}\n");
        let (id, _) = d.one_after_advance();
        answer(&mut d, id, 200, "OK", "", "[]");
        let (id, _) = d.one_after_advance();
        answer(&mut d, id, 200, "OK", "application/json", "{}");
        let (id, _) = d.one_after_advance();
        d.feed(id, IoEvent::Failed("connection refused"));
        assert_eq!(
            d.out.failures,
            [
                "server returned HTTP status 400 Bad Request",
                "server returned HTTP status 500",
                "unsupported content type text/plain; charset=utf-8",
                "unsupported content type ",
                "invalid type: map, expected a sequence at line 1 column 0",
                r#"Post "https://puppetdb:8081/pdb/pdb/query/v4": connection refused"#,
            ]
        );
        assert!(d.out.updates.is_empty());
    }

    /// 3.x's `TestPuppetSlashInURL`, and the rest of Go's `path.Join` and `URL.String`.
    #[test]
    fn the_endpoint_is_the_url_joined_as_go_joins_it() {
        for (url, want) in [
            ("https://puppetserver", "https://puppetserver/pdb/query/v4"),
            ("https://puppetserver/", "https://puppetserver/pdb/query/v4"),
            (
                "http://puppetserver:8080/",
                "http://puppetserver:8080/pdb/query/v4",
            ),
            (
                "http://puppetserver:8080",
                "http://puppetserver:8080/pdb/query/v4",
            ),
            (
                "HTTPS://h/puppetdb//x/../",
                "https://h/puppetdb/pdb/query/v4",
            ),
            ("http://h/a%20b/?x=1#f", "http://h/a%20b/pdb/query/v4?x=1#f"),
            ("http://h?", "http://h/pdb/query/v4"),
        ] {
            assert_eq!(endpoint(url), want, "{url}");
        }
    }

    #[test]
    fn the_query_is_encoded_as_go_encodes_it() {
        assert_eq!(
            go_json_string(
                "resources { type = \"Package\" and title = \"a<b>&c\" }\n\u{1}\u{2028}\\é"
            ),
            r#""resources { type = \"Package\" and title = \"a\u003cb\u003e\u0026c\" }\n\u0001\u2028\\é""#
        );
        for (ct, ok) in [
            ("application/json", true),
            ("Application/JSON", true),
            ("application/json;charset=utf-8", true),
            ("application/json; charset=UTF-8", true),
            ("application/json; charset=\"utf-8\"", true),
            ("application/json ; charset=utf-8", false),
            ("application/json; charset=latin1", false),
            ("application/json; charset=utf-8; x=y", false),
            ("application/problem+json", false),
            ("", false),
        ] {
            assert_eq!(json_content_type(ct), ok, "{ct}");
        }
    }
    const VALID: &str = "url: https://puppetdb:8081\nquery: 'resources { type = \"Class\" }'";

    #[test]
    fn defaults_are_applied() {
        let c: PuppetDbSdConfig = block(KEY, VALID);
        assert_eq!(c.url, "https://puppetdb:8081");
        assert_eq!((c.port, c.include_parameters), (80, false));
        assert_eq!(c.refresh_interval, PromDuration::from_secs(60));
        assert_eq!(c.http_client, HttpClientConfig::default());
    }

    #[test]
    fn url_and_query_are_checked() {
        assert_eq!(error_at(KEY, "query: q"), (4, 9, "URL is missing".into()));
        assert_eq!(
            error_at(KEY, "url: 'http://p:8o81'\nquery: q"),
            (
                4,
                14,
                r#"parse "http://p:8o81": invalid port ":8o81" after host"#.into()
            )
        );
        assert_eq!(
            error(KEY, "url: puppetdb:8081\nquery: q"),
            "URL scheme must be 'http' or 'https'"
        );
        assert_eq!(
            error(KEY, "url: 'HTTPS:///pdb'\nquery: q"),
            "host is missing in URL"
        );
        assert_eq!(
            error_at(KEY, "url: http://p\nquery: ''"),
            (5, 16, "query missing".into())
        );
    }

    #[test]
    fn client_is_validated_with_resolved_paths() {
        assert_eq!(
            error(
                KEY,
                &format!("{VALID}\ntls_config: {{key: k, key_file: f}}")
            ),
            "at most one of key and key_file must be configured"
        );
        let c: PuppetDbSdConfig = block(
            KEY,
            &format!("{VALID}\ntls_config: {{cert_file: c.pem, key_file: k.pem}}"),
        );
        assert_eq!(c.http_client.tls_config.cert_file, "/etc/prometheus/c.pem");
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, VALID, "puppetdb.plain");
    }
}
