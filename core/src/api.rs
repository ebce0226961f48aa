//! What the shells' HTTP APIs serve, rendered from the agent's views (pure, so both
//! shells and the tests render the same bytes): `/api/v1/targets` in Prometheus's JSON
//! shape, the configuration shown; `/metrics` is [`crate::metrics`].

use std::collections::BTreeMap;

use serde_json::json;

use crate::agent::Agent;
use crate::target::Health;
use crate::time::UnixNanos;

/// Which targets `/api/v1/targets` lists (its `state` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetState {
    /// Active and dropped (`any`, the default).
    Any,
    /// Active only.
    Active,
    /// Dropped only.
    Dropped,
}

impl TargetState {
    /// The parameter's value (anything unknown is `any`, as in Prometheus).
    pub fn parse(s: &str) -> TargetState {
        match s.to_ascii_lowercase().as_str() {
            "active" => TargetState::Active,
            "dropped" => TargetState::Dropped,
            _ => TargetState::Any,
        }
    }
}

/// A label set as a JSON object, serialized in place.
struct LabelsJson<'a>(&'a crate::labels::Labels);

impl serde::Serialize for LabelsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter())
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ActiveJson<'a> {
    discovered_labels: LabelsJson<'a>,
    labels: LabelsJson<'a>,
    scrape_pool: &'a str,
    scrape_url: &'a str,
    global_url: &'a str,
    last_error: &'a str,
    last_scrape: String,
    last_scrape_duration: f64,
    health: &'static str,
    scrape_interval: String,
    scrape_timeout: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DroppedJson<'a> {
    discovered_labels: LabelsJson<'a>,
    scrape_pool: &'a str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TargetsData<'a> {
    active_targets: Vec<ActiveJson<'a>>,
    dropped_targets: Vec<DroppedJson<'a>>,
    dropped_target_counts: BTreeMap<&'a str, usize>,
    /// trawl's addition: per job, the discovery blocks it validated but does not run
    /// (absent when there are none, so the body is Prometheus's otherwise).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    discovery_not_run: BTreeMap<&'a str, &'a [String]>,
}

#[derive(serde::Serialize)]
struct TargetsBody<'a> {
    status: &'static str,
    data: TargetsData<'a>,
}

/// The body of `/api/v1/targets?state=…&scrapePool=…`.
///
/// Serialized from borrowed views straight into the output (no JSON tree: for thousands
/// of targets the tree would be the daemon's largest allocation).
pub fn targets_json(agent: &Agent, state: TargetState, pool: Option<&str>) -> String {
    let in_pool = |job: &str| pool.is_none_or(|p| p == job);
    let active = if state != TargetState::Dropped {
        agent.targets()
    } else {
        Vec::new()
    };
    let public: Vec<_> = active.iter().map(|t| t.target.public_labels()).collect();
    let dropped = if state != TargetState::Active {
        agent.dropped_targets()
    } else {
        Vec::new()
    };
    let pools = agent.pools();
    let body = TargetsBody {
        status: "success",
        data: TargetsData {
            active_targets: active
                .iter()
                .zip(&public)
                .filter(|(t, _)| in_pool(&t.job))
                .map(|(t, public)| ActiveJson {
                    discovered_labels: LabelsJson(&t.discovered_labels),
                    labels: LabelsJson(public),
                    scrape_pool: &t.job,
                    scrape_url: &t.target.url,
                    global_url: &t.target.url,
                    last_error: &t.last_error,
                    // Go's zero time for a target never scraped.
                    last_scrape: t
                        .last_scrape
                        .map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), UnixNanos::to_rfc3339),
                    last_scrape_duration: t.last_scrape_duration.as_secs_f64(),
                    health: match t.health {
                        Health::Unknown => "unknown",
                        Health::Up => "up",
                        Health::Down => "down",
                    },
                    // 3.x shows the labels' values as written (`90s`, not `1m30s`).
                    scrape_interval: t
                        .target
                        .labels
                        .get("__scrape_interval__")
                        .map_or_else(|| t.target.interval.to_string(), str::to_owned),
                    scrape_timeout: t
                        .target
                        .labels
                        .get("__scrape_timeout__")
                        .map_or_else(|| t.target.timeout.to_string(), str::to_owned),
                })
                .collect(),
            dropped_targets: dropped
                .iter()
                .filter(|d| in_pool(&d.job))
                .map(|d| DroppedJson {
                    discovered_labels: LabelsJson(&d.discovered_labels),
                    scrape_pool: &d.job,
                })
                .collect(),
            dropped_target_counts: pools
                .iter()
                .filter(|p| in_pool(&p.job))
                .map(|p| (&*p.job, p.dropped))
                .collect(),
            discovery_not_run: agent
                .config()
                .scrape_configs
                .iter()
                .filter(|j| !j.unsupported_sd.is_empty() && in_pool(&j.job_name))
                .map(|j| (&*j.job_name, j.unsupported_sd.as_slice()))
                .collect(),
        },
    };
    // Serializing plain structs, string-keyed maps and finite or non-finite floats
    // (serde_json writes those as null) cannot fail.
    serde_json::to_string(&body).unwrap_or_default()
}

/// An API error: the HTTP status and Prometheus's JSON body
/// (`{"status":"error","errorType":…,"error":…}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status (400 for `bad_data`).
    pub status: u16,
    /// The body.
    pub body: String,
}

/// A `bad_data` error (HTTP 400), as 3.x's `errorBadData`.
pub fn bad_data(message: &str) -> ApiError {
    ApiError {
        status: 400,
        body: json!({"status": "error", "errorType": "bad_data", "error": message}).to_string(),
    }
}

/// A successful answer holding `data`.
pub fn success(data: serde_json::Value) -> String {
    json!({"status": "success", "data": data}).to_string()
}

/// The body of `/api/v1/scrape_pools` (3.x's `scrapePools`): the jobs, sorted.
pub fn scrape_pools_json(agent: &Agent) -> String {
    let mut names: Vec<&str> = agent
        .config()
        .scrape_configs
        .iter()
        .map(|c| c.job_name.as_str())
        .collect();
    names.sort_unstable();
    success(json!({ "scrapePools": names }))
}

/// The body of `/api/v1/targets/metadata?match_target=…&metric=…&limit=…` (3.x's
/// `targetMetadata`): the metadata of the active targets' last scrapes, per target,
/// for one metric or all.
pub fn target_metadata_json(
    agent: &Agent,
    match_target: Option<&str>,
    metric: Option<&str>,
    limit: Option<&str>,
) -> Result<String, ApiError> {
    let limit: Option<usize> = match limit.filter(|l| !l.is_empty()) {
        None => None,
        Some(l) => match l.parse::<i64>() {
            // A negative limit is no limit, as in 3.x.
            Ok(n) => usize::try_from(n).ok(),
            Err(_) => return Err(bad_data("limit must be a number")),
        },
    };
    let matchers = match match_target.filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => Some(
            crate::selector::parse(m)
                .map_err(|e| bad_data(&format!("invalid parameter \"match_target\": {e}")))?,
        ),
    };
    let metric = metric.filter(|m| !m.is_empty());
    let mut out = Vec::new();
    'targets: for (labels, meta) in agent.target_metadata() {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        if let Some(m) = &matchers
            && !crate::selector::matches_all(m, &labels)
        {
            continue;
        }
        let target = serde_json::to_value(LabelsJson(&labels)).unwrap_or_default();
        for (family, kind, help, unit) in meta {
            match metric {
                Some(want) if want != family => continue,
                Some(_) => {
                    out.push(json!({"target": target, "type": kind.as_str(), "help": help, "unit": unit}));
                    continue 'targets;
                }
                None => out.push(json!({
                    "target": target,
                    "metric": family,
                    "type": kind.as_str(),
                    "help": help,
                    "unit": unit,
                })),
            }
        }
    }
    Ok(success(serde_json::Value::Array(out)))
}

/// One relabel rule as 3.x's `relabel.Config` marshals to JSON.
#[derive(serde::Serialize)]
struct RuleJson<'a> {
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    source_labels: &'a [String],
    separator: &'a str,
    regex: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    modulus: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    target_label: &'a str,
    replacement: &'a str,
    action: &'static str,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The body of `/api/v1/targets/relabel_steps?scrapePool=…&labels=…` (3.x's
/// `targetRelabelSteps`): the pool's `relabel_configs` applied one by one to `labels`
/// (a JSON object), each with its output and whether the target is still kept.
pub fn relabel_steps_json(
    agent: &Agent,
    pool: Option<&str>,
    labels: Option<&str>,
) -> Result<String, ApiError> {
    let pool = pool
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad_data("no scrapePool parameter provided"))?;
    let labels = labels
        .filter(|l| !l.is_empty())
        .ok_or_else(|| bad_data("no labels parameter provided"))?;
    let map: BTreeMap<String, String> = serde_json::from_str(labels)
        .map_err(|e| bad_data(&format!("error parsing labels: {e}")))?;
    let labels =
        crate::labels::Labels::from_pairs(map.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let config = agent.config();
    let job = config
        .scrape_configs
        .iter()
        .find(|c| c.job_name == pool)
        .ok_or_else(|| {
            bad_data(&format!(
                "error retrieving scrape config: scrape pool {pool:?} not found"
            ))
        })?;
    Ok(success(
        json!({ "steps": relabel_steps(&job.relabel_configs, &labels) }),
    ))
}

/// Each rule of `rules` applied in turn to `labels`: the rule, the labels after it
/// (empty once dropped) and whether the target is still kept.
pub fn relabel_steps(
    rules: &[crate::relabel::RelabelConfig],
    labels: &crate::labels::Labels,
) -> Vec<serde_json::Value> {
    let mut lb = crate::labels::LabelsBuilder::new();
    lb.reset_from(labels);
    let mut keep = true;
    rules
        .iter()
        .map(|rule| {
            if keep {
                keep = crate::relabel::apply_one(rule, &mut lb);
            }
            let out = if keep {
                lb.labels()
            } else {
                crate::labels::Labels::default()
            };
            json!({
                "rule": RuleJson {
                    source_labels: &rule.source_labels,
                    separator: &rule.separator,
                    regex: rule.regex.as_str(),
                    modulus: rule.modulus,
                    target_label: &rule.target_label,
                    replacement: &rule.replacement,
                    action: rule.action.as_str(),
                },
                "output": serde_json::to_value(LabelsJson(&out)).unwrap_or_default(),
                "keep": keep,
            })
        })
        .collect()
}

/// Keys whose values are secrets in a Prometheus configuration (Prometheus's `Secret`
/// fields); `proxy_connect_header` and the `secrets` of `http_headers` hold lists of them.
const SECRET_KEYS: &[&str] = &[
    "password",
    "bearer_token",
    "credentials",
    "client_secret",
    "secret_key",
    "token",
    "auth_token",
    "api_key",
    "secrets",
    "proxy_connect_header",
];

/// Keys whose values are URLs (Prometheus's `config.URL`, shown `Redacted`: the
/// password of `user:password@` as `xxxxx`), beside any key ending in `_url`.
const URL_KEYS: &[&str] = &["url", "api_server", "server", "endpoint"];

/// Hides secrets below `v`; `parent` is the key `v` is the value of.
fn redact(v: &mut serde_yaml::Value, parent: &str) {
    use serde_yaml::Value as Y;
    match v {
        Y::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                let key = k.as_str().unwrap_or("");
                // `tls_config.key` is an inline private key (a `Secret`); elsewhere a key
                // named `key` is no secret (e.g. a header name).
                let secret = SECRET_KEYS.contains(&key) || (key == "key" && parent == "tls_config");
                if secret {
                    hide(val);
                } else if URL_KEYS.contains(&key) || key.ends_with("_url") {
                    if let Y::String(u) = val
                        && let std::borrow::Cow::Owned(r) =
                            crate::gourl::redact_url(u, crate::gourl::REDACTED)
                    {
                        *u = r;
                    }
                } else {
                    redact(val, key);
                }
            }
        }
        Y::Sequence(s) => s.iter_mut().for_each(|x| redact(x, parent)),
        Y::Tagged(t) => redact(&mut t.value, parent),
        _ => {}
    }
}

fn hide(v: &mut serde_yaml::Value) {
    use serde_yaml::Value as Y;
    match v {
        Y::Mapping(m) => m.iter_mut().for_each(|(_, x)| hide(x)),
        Y::Sequence(s) => s.iter_mut().for_each(hide),
        Y::Null => {}
        other => *other = Y::String("<secret>".into()),
    }
}

/// The body of `/api/v1/status/config`: the configuration file in force with every
/// secret replaced by `<secret>`, as Prometheus shows it. (Prometheus shows its parsed
/// configuration with defaults filled in; this is the file as written.)
pub fn config_json(text: &str) -> String {
    json!({"status": "success", "data": {"yaml": redacted_yaml(text)}}).to_string()
}

/// The configuration file `text` as YAML with every secret hidden (what
/// `/api/v1/status/config` and the configuration page show).
pub fn redacted_yaml(text: &str) -> String {
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(mut v) => {
            redact(&mut v, "");
            serde_yaml::to_string(&v).unwrap_or_default()
        }
        // It parsed when it was loaded; never shown unredacted.
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 17 (§2): a block whose mechanism does not run is visible per job in
    /// `/api/v1/targets` (`discoveryNotRun`), and the body is Prometheus's without one.
    #[test]
    fn blocks_not_run_are_listed_per_job() {
        let text = "scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs: [{role: pod}]\n    kuma_sd_configs: [{server: 'http://kuma:5676'}]\n    static_configs: [{targets: ['127.0.0.1:9']}]\n  - job_name: s\n    static_configs: [{targets: ['127.0.0.1:9']}]\n";
        let c = crate::config::Config::parse(text, &crate::config::ParseOptions::default())
            .expect("valid");
        let now = crate::time::Now::new(
            crate::time::Instant(0),
            crate::time::UnixNanos(1_700_000_000_000_000_000),
        );
        let agent = Agent::new(c, crate::agent::AgentOptions::default(), now);
        let all: serde_json::Value =
            serde_json::from_str(&targets_json(&agent, TargetState::Any, None)).expect("JSON");
        assert_eq!(
            all["data"]["discoveryNotRun"],
            serde_json::json!({"k": ["kuma_sd_configs"]})
        );
        let s: serde_json::Value =
            serde_json::from_str(&targets_json(&agent, TargetState::Any, Some("s"))).expect("JSON");
        assert!(s["data"].get("discoveryNotRun").is_none(), "{s}");
    }

    #[test]
    fn the_config_shown_hides_every_secret() {
        let text = "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password: hunter2}\n    authorization: {credentials: sekrit9}\n    oauth2: {client_id: c, client_secret: s3, token_url: 'http://x'}\n    http_headers:\n      X-Key: {secrets: [k1, k2], values: [public]}\n    proxy_connect_header: {Auth: [p1]}\n";
        let out = config_json(text);
        for secret in ["hunter2", "sekrit9", "s3", "k1", "k2", "p1"] {
            assert!(!out.contains(secret), "{secret} shown: {out}");
        }
        for kept in ["username: u", "client_id: c", "public", "job_name: a"] {
            assert!(out.contains(kept), "{kept} missing: {out}");
        }
        assert!(out.contains("<secret>"));
    }

    /// Issue 16, defect 4: an inline TLS key and the passwords in URLs (`proxy_url`,
    /// HTTP SD's `url`, remote write's `url`) are shown as Prometheus shows them.
    #[test]
    fn the_config_shown_hides_inline_keys_and_url_passwords() {
        let text = "scrape_configs:\n  - job_name: a\n    proxy_url: http://pu:proxypw@proxy:3128\n    tls_config: {cert_file: /c.pem, key: PRIVATEKEY}\n    http_headers:\n      key: {values: [visible]}\n    http_sd_configs:\n      - url: https://su:sdpw@sd.example/targets\nremote_write:\n  - url: https://ru:rwpw@rw.example/api/v1/write\n    tls_config: {key: RWKEY}\n";
        let out = config_json(text);
        for secret in ["PRIVATEKEY", "RWKEY", "proxypw", "sdpw", "rwpw"] {
            assert!(!out.contains(secret), "{secret} shown: {out}");
        }
        for kept in [
            "http://pu:xxxxx@proxy:3128",
            "https://su:xxxxx@sd.example/targets",
            "https://ru:xxxxx@rw.example/api/v1/write",
            "cert_file: /c.pem",
            "visible",
        ] {
            assert!(out.contains(kept), "{kept} missing: {out}");
        }
    }
}
