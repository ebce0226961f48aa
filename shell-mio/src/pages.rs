//! The daemon's pages: `/targets`, `/service-discovery`, `/config`, `/flags`,
//! `/status`. Plain HTML rendered on the server, styles inline, no external assets;
//! filters are forms (`GET` parameters), so every page works without JavaScript. A few
//! lines of script only submit a filter when a menu changes.
//!
//! Large fleets stay fast: pools are `<details>` elements, closed when the page would
//! show more than [`OPEN_UP_TO`] targets, so the browser lays out only what is opened.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use trawl_core::agent::Agent;
use trawl_core::labels::Labels;
use trawl_core::metrics::Metrics;
use trawl_core::target::Health;

/// Pools start open when the page shows at most this many targets.
pub const OPEN_UP_TO: usize = 500;

/// HTML-escapes `s` into `out`.
fn esc(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn escaped(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    esc(&mut o, s);
    o
}

/// Percent-encodes `s` for a query value.
fn url_encode(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}\
nav{background:#23324a;padding:8px 16px}nav a,nav b{color:#fff;margin-right:18px;text-decoration:none}\
nav a.on{text-decoration:underline}main{padding:12px 16px}h1{font-size:20px;margin:8px 0 12px}\
h2{font-size:16px;margin:18px 0 8px}table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0 12px}\
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f0f2f5}\
details.pool{margin:6px 0;background:#fff;border:1px solid #ddd}details.pool>summary{padding:6px 8px;cursor:pointer;font-weight:600}\
.badge{display:inline-block;border-radius:3px;padding:0 6px;color:#fff;font-size:12px}.up{background:#2e7d32}\
.down{background:#c62828}.unknown{background:#757575}.chip{display:inline-block;background:#eef1f6;border-radius:3px;\
padding:0 4px;margin:1px 2px;font-family:monospace;font-size:12px}.error{color:#c62828;font-family:monospace}\
form.filter{margin:4px 0 10px}form.filter>*{margin-right:8px}pre{background:#fff;border:1px solid #ddd;padding:8px;overflow:auto}\
.dropped{color:#8a4b00}.muted{color:#757575}";

/// A page: title, the active nav entry and its body.
fn page(prefix: &str, active: &str, title: &str, body: &str) -> String {
    let p = if prefix == "/" { "" } else { prefix };
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>trawl · {}</title><style>{STYLE}</style></head><body><nav><b>trawl</b>",
        escaped(title)
    );
    for (path, name) in [
        ("/targets", "Targets"),
        ("/service-discovery", "Service discovery"),
        ("/config", "Configuration"),
        ("/flags", "Flags"),
        ("/status", "Status"),
    ] {
        let on = if path == active { " class=\"on\"" } else { "" };
        let _ = write!(out, "<a href=\"{p}{path}\"{on}>{name}</a>");
    }
    let _ = write!(
        out,
        "</nav><main><h1>{}</h1>{body}</main>\
         <script>for(const s of document.querySelectorAll('form.filter select'))s.addEventListener('change',()=>s.form.submit())</script>\
         </body></html>",
        escaped(title)
    );
    out
}

fn chips(out: &mut String, labels: &Labels) {
    for (k, v) in labels.iter() {
        out.push_str("<span class=\"chip\">");
        esc(out, k);
        out.push_str("=\"");
        esc(out, v);
        out.push_str("\"</span>");
    }
}

fn select(out: &mut String, name: &str, all: &str, options: &[&str], chosen: &str) {
    let _ = write!(
        out,
        "<select name=\"{name}\" id=\"{name}\"><option value=\"\">{all}</option>"
    );
    for o in options {
        let sel = if *o == chosen { " selected" } else { "" };
        let _ = write!(out, "<option value=\"{0}\"{sel}>{0}</option>", escaped(o));
    }
    out.push_str("</select>");
}

/// "3.2s ago" for a scrape at `at` (Unix ns), given the wall time now.
fn ago(at: Option<trawl_core::time::UnixNanos>, now_ns: i64) -> String {
    match at {
        None => "never".into(),
        Some(t) => {
            let ms = (now_ns - t.0).max(0) / 1_000_000;
            if ms < 1000 {
                format!("{ms}ms ago")
            } else if ms < 60_000 {
                format!("{:.1}s ago", ms as f64 / 1000.0)
            } else {
                format!("{}m{}s ago", ms / 60_000, (ms / 1000) % 60)
            }
        }
    }
}

fn seconds(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// `/targets?pool=…&health=…&search=…`: every pool and target with health, last error,
/// last scrape and its duration, and labels; filtered by pool, health and a text that
/// must appear in the URL or a label.
pub fn targets(agent: &Agent, q: &BTreeMap<String, String>, prefix: &str, now_ns: i64) -> String {
    let pool = q.get("pool").map_or("", String::as_str);
    let health = q.get("health").map_or("", String::as_str);
    let search = q.get("search").map_or("", String::as_str);
    let all = agent.targets();
    let jobs: Vec<String> = agent
        .config()
        .scrape_configs
        .iter()
        .map(|c| c.job_name.clone())
        .collect();
    let mut by_pool: BTreeMap<&str, Vec<(&trawl_core::scrape::TargetView, Labels, String)>> =
        BTreeMap::new();
    let (mut up, mut down, mut unknown) = (0, 0, 0);
    for t in &all {
        if !pool.is_empty() && &*t.job != pool {
            continue;
        }
        let h = t.health.as_str();
        if !health.is_empty() && h != health {
            continue;
        }
        let labels = t.target.public_labels();
        let url =
            trawl_core::gourl::redact_url(&t.target.url, trawl_core::gourl::REDACTED).into_owned();
        if !search.is_empty()
            && !url.contains(search)
            && !labels
                .iter()
                .any(|(k, v)| k.contains(search) || v.contains(search))
        {
            continue;
        }
        match t.health {
            Health::Up => up += 1,
            Health::Down => down += 1,
            Health::Unknown => unknown += 1,
        }
        by_pool.entry(&t.job).or_default().push((t, labels, url));
    }
    let shown: usize = by_pool.values().map(Vec::len).sum();
    let mut b = String::with_capacity(shown * 400 + 1024);
    b.push_str("<form class=\"filter\" method=\"get\">");
    let names: Vec<&str> = jobs.iter().map(String::as_str).collect();
    select(&mut b, "pool", "All pools", &names, pool);
    select(
        &mut b,
        "health",
        "Any health",
        &["up", "down", "unknown"],
        health,
    );
    let _ = write!(
        b,
        "<input type=\"search\" name=\"search\" id=\"search\" placeholder=\"URL or label text\" value=\"{}\">\
         <button type=\"submit\">Filter</button></form>",
        escaped(search)
    );
    let _ = write!(
        b,
        "<p id=\"summary\">{shown} targets in {} pools: {up} up, {down} down, {unknown} unknown{}</p>",
        by_pool.len(),
        if shown > OPEN_UP_TO {
            " (pools closed: open one to see its targets)"
        } else {
            ""
        }
    );
    let open = shown <= OPEN_UP_TO;
    for (job, rows) in &by_pool {
        let ups = rows.iter().filter(|r| r.0.health == Health::Up).count();
        let _ = write!(
            b,
            "<details class=\"pool\" id=\"pool-{0}\" data-pool=\"{0}\"{1}><summary>{0} <span class=\"muted\">({ups}/{2} up)</span></summary>\
             <table><thead><tr><th>Endpoint</th><th>State</th><th>Labels</th><th>Last scrape</th><th>Duration</th><th>Error</th></tr></thead><tbody>",
            escaped(job),
            if open { " open" } else { "" },
            rows.len()
        );
        for (t, labels, url) in rows {
            let h = t.health.as_str();
            let _ = write!(
                b,
                "<tr class=\"target\" data-health=\"{h}\"><td><a href=\"{0}\">{0}</a></td><td><span class=\"badge {h}\">{1}</span></td><td>",
                escaped(url),
                h.to_ascii_uppercase()
            );
            chips(&mut b, labels);
            let _ = write!(
                b,
                "</td><td>{}</td><td>{}</td><td class=\"error\">",
                ago(t.last_scrape, now_ns),
                seconds(t.last_scrape_duration)
            );
            esc(&mut b, &t.last_error);
            b.push_str("</td></tr>");
        }
        b.push_str("</tbody></table></details>");
    }
    page(prefix, "/targets", "Targets", &b)
}

/// `/service-discovery?pool=…[&labels=…]`: per job, the discovered labels beside the
/// target labels, the dropped targets with the rule that dropped them, and (with
/// `labels`, a JSON object) the relabel steps of those labels.
pub fn service_discovery(agent: &Agent, q: &BTreeMap<String, String>, prefix: &str) -> String {
    let p = if prefix == "/" { "" } else { prefix };
    let pool = q.get("pool").map_or("", String::as_str);
    let config = agent.config();
    let jobs: Vec<&str> = config
        .scrape_configs
        .iter()
        .map(|c| c.job_name.as_str())
        .collect();
    let mut b = String::new();
    b.push_str("<form class=\"filter\" method=\"get\">");
    select(&mut b, "pool", "All pools", &jobs, pool);
    b.push_str("<button type=\"submit\">Show</button></form>");

    // The relabel steps of one label set.
    if let (Some(labels), false) = (q.get("labels"), pool.is_empty()) {
        b.push_str("<section id=\"steps\"><h2>Relabel steps</h2>");
        let map: Result<BTreeMap<String, String>, _> = serde_json::from_str(labels);
        match (
            map,
            config.scrape_configs.iter().find(|c| c.job_name == pool),
        ) {
            (Ok(map), Some(job)) => {
                let input = Labels::from_pairs(map.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                b.push_str("<p>Discovered labels: ");
                chips(&mut b, &input);
                b.push_str("</p><table><thead><tr><th>#</th><th>Rule</th><th>Labels after it</th><th>Kept</th></tr></thead><tbody>");
                let steps = trawl_core::api::relabel_steps(&job.relabel_configs, &input);
                if steps.is_empty() {
                    b.push_str("<tr><td colspan=\"4\" class=\"muted\">The job has no relabel_configs.</td></tr>");
                }
                for (i, step) in steps.iter().enumerate() {
                    let kept = step["keep"].as_bool().unwrap_or(false);
                    let _ = write!(
                        b,
                        "<tr class=\"step\" data-keep=\"{kept}\"><td>relabel_configs[{i}]</td><td><code>"
                    );
                    esc(&mut b, &step["rule"].to_string());
                    b.push_str("</code></td><td>");
                    let out: BTreeMap<String, String> =
                        serde_json::from_value(step["output"].clone()).unwrap_or_default();
                    chips(
                        &mut b,
                        &Labels::from_pairs(out.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                    );
                    let _ = write!(
                        b,
                        "</td><td>{}</td></tr>",
                        if kept {
                            "yes"
                        } else {
                            "<b class=\"dropped\">dropped</b>"
                        }
                    );
                }
                b.push_str("</tbody></table>");
            }
            (Err(e), _) => {
                let _ = write!(
                    b,
                    "<p class=\"error\">labels: {}</p>",
                    escaped(&e.to_string())
                );
            }
            (_, None) => {
                let _ = write!(b, "<p class=\"error\">no job {}</p>", escaped(pool));
            }
        }
        b.push_str("</section>");
    }

    let targets = agent.targets();
    let dropped = agent.dropped_targets();
    let counts: BTreeMap<String, usize> = agent
        .pools()
        .into_iter()
        .map(|v| (v.job.to_string(), v.dropped))
        .collect();
    let shown = targets
        .iter()
        .filter(|t| pool.is_empty() || &*t.job == pool)
        .count()
        + dropped
            .iter()
            .filter(|d| pool.is_empty() || &*d.job == pool)
            .count();
    let open = shown <= OPEN_UP_TO;
    for job in jobs.iter().filter(|j| pool.is_empty() || **j == pool) {
        let cfg = config.scrape_configs.iter().find(|c| c.job_name == *job);
        let active: Vec<_> = targets.iter().filter(|t| &*t.job == *job).collect();
        let gone: Vec<_> = dropped.iter().filter(|d| &*d.job == *job).collect();
        let _ = write!(
            b,
            "<details class=\"pool\" id=\"sd-{0}\" data-pool=\"{0}\"{1}><summary>{0} <span class=\"muted\">({2} active, {3} dropped)</span></summary>\
             <table><thead><tr><th>Discovered labels</th><th>Target labels</th></tr></thead><tbody>",
            escaped(job),
            if open { " open" } else { "" },
            active.len(),
            counts.get(*job).copied().unwrap_or(gone.len())
        );
        for t in &active {
            b.push_str("<tr class=\"active\"><td>");
            chips(&mut b, &t.discovered_labels);
            b.push_str("</td><td>");
            chips(&mut b, &t.target.public_labels());
            b.push_str("</td></tr>");
        }
        for d in &gone {
            b.push_str("<tr class=\"dropped-target\"><td>");
            chips(&mut b, &d.discovered_labels);
            let json = serde_json::to_string(
                &d.discovered_labels.iter().collect::<BTreeMap<&str, &str>>(),
            )
            .unwrap_or_default();
            let rule = cfg
                .and_then(|c| c.relabel_configs.get(d.rule))
                .map(|r| {
                    format!(
                        "action: {}, source_labels: [{}], regex: {}",
                        r.action.as_str(),
                        r.source_labels.join(", "),
                        r.regex.as_str()
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                b,
                "</td><td class=\"dropped\">Dropped by <b class=\"rule\">relabel_configs[{}]</b> <code>{}</code> \
                 <a class=\"steps\" href=\"{p}/service-discovery?pool={}&amp;labels={}#steps\">relabel steps</a></td></tr>",
                d.rule,
                escaped(&rule),
                url_encode(job),
                url_encode(&json)
            );
        }
        b.push_str("</tbody></table></details>");
    }
    page(prefix, "/service-discovery", "Service discovery", &b)
}

/// `/config`: the configuration in force, secrets hidden.
pub fn config(text: &str, prefix: &str) -> String {
    let mut b = String::from("<pre id=\"config\">");
    esc(&mut b, &trawl_core::api::redacted_yaml(text));
    b.push_str("</pre>");
    page(prefix, "/config", "Configuration", &b)
}

fn table(b: &mut String, id: &str, rows: &[(String, String)]) {
    let _ = write!(b, "<table id=\"{id}\"><tbody>");
    for (k, v) in rows {
        let _ = write!(b, "<tr><th>{}</th><td>{}</td></tr>", escaped(k), escaped(v));
    }
    b.push_str("</tbody></table>");
}

/// `/flags`: every command-line flag and its value.
pub fn flags(flags: &BTreeMap<String, String>, prefix: &str) -> String {
    let rows: Vec<(String, String)> = flags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut b = String::new();
    table(&mut b, "flags", &rows);
    page(prefix, "/flags", "Command-line flags", &b)
}

/// `/status`: build and runtime information, the WAL, the remote-write queues (from
/// the self-metrics `m`).
pub fn status(
    build: &[(String, String)],
    runtime: &[(String, String)],
    m: &Metrics,
    prefix: &str,
) -> String {
    let mut b = String::from("<h2>Build</h2>");
    table(&mut b, "build", build);
    b.push_str("<h2>Runtime</h2>");
    table(&mut b, "runtime", runtime);
    b.push_str("<h2>WAL</h2>");
    let get = |name: &str| {
        m.value(name, &[])
            .map_or_else(|| "–".into(), |v| format!("{v}"))
    };
    table(
        &mut b,
        "wal",
        &[
            (
                "Segment being written".into(),
                get("prometheus_tsdb_wal_segment_current"),
            ),
            (
                "Size on disk (bytes)".into(),
                get("prometheus_tsdb_wal_storage_size_bytes"),
            ),
            (
                "Active series".into(),
                get("prometheus_agent_active_series"),
            ),
            (
                "Failed writes".into(),
                get("prometheus_tsdb_wal_writes_failed_total"),
            ),
            (
                "Corruptions repaired at start".into(),
                get("prometheus_tsdb_wal_corruptions_total"),
            ),
        ],
    );
    b.push_str("<h2>Remote write</h2>");
    let queues: Vec<(String, String)> = m
        .get("prometheus_remote_storage_shards")
        .map(|f| {
            f.series
                .iter()
                .map(|s| {
                    let l = |k: &str| {
                        s.labels
                            .iter()
                            .find(|(n, _)| *n == k)
                            .map_or(String::new(), |(_, v)| v.clone())
                    };
                    (l("remote_name"), l("url"))
                })
                .collect()
        })
        .unwrap_or_default();
    if queues.is_empty() {
        b.push_str("<p class=\"muted\" id=\"queues\">No remote_write in the configuration.</p>");
    } else {
        b.push_str("<table id=\"queues\"><thead><tr><th>Queue</th><th>URL</th><th>Shards (desired, min–max)</th>\
            <th>Pending samples</th><th>Sent</th><th>Retried</th><th>Failed</th><th>Dropped</th><th>Newest sent sample</th></tr></thead><tbody>");
        for (name, url) in &queues {
            let v = |metric: &str| {
                m.value(metric, &[("remote_name", name.as_str())])
                    .unwrap_or(f64::NAN)
            };
            let newest = v("prometheus_remote_storage_queue_highest_sent_timestamp_seconds");
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{} ({:.1}, {}–{})</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escaped(name),
                escaped(url),
                v("prometheus_remote_storage_shards"),
                v("prometheus_remote_storage_shards_desired"),
                v("prometheus_remote_storage_shards_min"),
                v("prometheus_remote_storage_shards_max"),
                v("prometheus_remote_storage_samples_pending"),
                v("prometheus_remote_storage_samples_total"),
                v("prometheus_remote_storage_samples_retried_total"),
                v("prometheus_remote_storage_samples_failed_total"),
                v("prometheus_remote_storage_samples_dropped_total"),
                if newest > 0.0 {
                    trawl_core::time::UnixNanos((newest * 1e9) as i64).to_rfc3339()
                } else {
                    "none yet".into()
                }
            );
        }
        b.push_str("</tbody></table>");
    }
    page(prefix, "/status", "Status", &b)
}
