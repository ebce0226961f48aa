//! What Prometheus 3.x scrapes, end to end through the daemon: OpenMetrics exemplars
//! into the WAL and through remote write (checked by Prometheus 2.42 with exemplar
//! storage, as a receiver and as a server replaying trawl's WAL), UTF-8 names
//! negotiated with `escaping=allow-utf-8`, `le` values stored as 3.x stores them, gzip
//! bodies of several members, and the protobuf format (bodies built here with prost from
//! `metrics.proto`). Targets are nginx on loopback serving fixed files.

mod common;

use std::path::Path;
use std::time::Duration;

use common::receivers::*;
use common::*;

/// nginx on `addr` serving `dir/www`: `/om` as OpenMetrics, `/utf8` as text 1.0.0 with
/// UTF-8 names, `/gz` as a pre-compressed body (`Content-Encoding: gzip`), anything else
/// as text 0.0.4.
fn targets(dir: &Path, addr: &str) -> Proc {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).expect("www");
    let conf = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  types {{ }}\n  default_type \"text/plain; version=0.0.4\";\n\
         server {{ listen {addr}; root {w};\n\
         location = /om {{ default_type \"application/openmetrics-text; version=1.0.0; charset=utf-8\"; }}\n\
         location = /utf8 {{ default_type \"text/plain; version=1.0.0; escaping=allow-utf-8; charset=utf-8\"; }}\n\
         location = /gz {{ add_header Content-Encoding gzip; }}\n\
         location = /pb {{ default_type \"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited\"; }}\n\
         }}\n}}\n",
        d = dir.display(),
        w = www.display(),
    );
    start_nginx(dir, &conf, &[addr])
}

fn config(dir: &Path, addr: &str, path: &str, extra: &str) -> std::path::PathBuf {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\n{extra}scrape_configs:\n  - job_name: t\n    metrics_path: {path}\n    static_configs: [{{targets: ['{addr}']}}]\n"
        ),
    )
    .expect("config");
    cfg
}

/// Prometheus 2.42 with exemplar storage: a remote-write receiver, or (with `data`) a
/// server on a copy of a data directory.
fn prometheus_with_exemplars(dir: &Path, port: u16, data: Option<&Path>) -> Proc {
    prometheus_server(dir, port, data, "exemplar-storage")
}

/// `/api/v1/query_exemplars` for `query` over all time: (series name, exemplar labels
/// as `k=v,…`, value) for each exemplar.
fn exemplars(port: u16, query: &str) -> Vec<(String, String, f64)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 60;
    let Some((200, body)) = http_get(
        port,
        &format!(
            "/api/v1/query_exemplars?query={}&start=0&end={now}",
            query_escape(query)
        ),
    ) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let mut out = Vec::new();
    for s in v["data"].as_array().into_iter().flatten() {
        let name = s["seriesLabels"]["__name__"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        for e in s["exemplars"].as_array().into_iter().flatten() {
            let mut l: Vec<String> = e["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            l.sort();
            let value = e["value"]
                .as_str()
                .unwrap_or("")
                .parse()
                .unwrap_or(f64::NAN);
            out.push((name.clone(), l.join(","), value));
        }
    }
    out.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    out
}

const OM_BODY: &str = "# TYPE rq counter\n\
rq_total{code=\"200\"} 10 # {trace_id=\"abc\"} 0.5 1700000000.5\n\
# TYPE lat histogram\n\
lat_bucket{le=\"0.1\"} 1 # {trace_id=\"def\"} 0.07\n\
lat_bucket{le=\"1\"} 2\n\
lat_bucket{le=\"+Inf\"} 2\n\
lat_count 2\n\
lat_sum 0.9\n\
# TYPE temp gauge\n\
temp 21.5 # {trace_id=\"ghi\",empty=\"\"} 21.5\n\
# EOF\n";

#[test]
fn exemplars_reach_the_wal_and_a_receiver_with_exemplar_storage() {
    let d = TempDir::new("exemplars");
    let addr = format!("127.0.0.1:{}", free_port());
    std::fs::create_dir_all(d.0.join("www")).expect("www");
    std::fs::write(d.0.join("www/om"), OM_BODY).expect("body");
    let _nginx = targets(&d.0, &addr);
    let rport = free_port();
    let _receiver = prometheus_with_exemplars(&d.0.join("receiver"), rport, None);
    let cfg = config(
        &d.0,
        &addr,
        "/om",
        &format!(
            "remote_write: [{{url: 'http://127.0.0.1:{rport}/api/v1/write', send_exemplars: true}}]\n"
        ),
    );
    let web = free_port();
    let data = d.0.join("data");
    let mut t = trawl(&d.0, &cfg, &data, web);
    // Every exemplar, on any series type (3.x), empty labels left out.
    let want = vec![
        ("lat_bucket".to_owned(), "trace_id=def".to_owned(), 0.07),
        ("rq_total".to_owned(), "trace_id=abc".to_owned(), 0.5),
        ("temp".to_owned(), "trace_id=ghi".to_owned(), 21.5),
    ];
    let dedup = |mut v: Vec<(String, String, f64)>| {
        v.dedup();
        v
    };
    eventually(
        Duration::from_secs(30),
        "the receiver has every exemplar",
        || dedup(exemplars(rport, "{job=\"t\"}")) == want,
    );
    // The exemplar with a timestamp is stored once however often it is scraped; the
    // others take their scrape's time.
    let got = exemplars(rport, "rq_total");
    assert_eq!(got.len(), 1, "{got:?}");
    let m = api(web, "GET", "/metrics").expect("metrics").1;
    assert!(
        m.lines().any(
            |l| l.starts_with("prometheus_remote_storage_exemplars_total{") && !l.ends_with(" 0")
        ),
        "{m}"
    );
    stop_proc(&mut t);
    // A Prometheus server replaying trawl's WAL finds the same exemplars.
    let sport = free_port();
    let _server = prometheus_with_exemplars(&d.0.join("server"), sport, Some(&data));
    eventually(
        Duration::from_secs(30),
        "the server replayed every exemplar",
        || dedup(exemplars(sport, "{job=\"t\"}")) == want,
    );
}

#[test]
fn utf8_names_normalised_buckets_and_multi_member_gzip_are_scraped() {
    let d = TempDir::new("utf8");
    let addr = format!("127.0.0.1:{}", free_port());
    let www = d.0.join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(
        www.join("utf8"),
        "# TYPE \"my.metric\" gauge\n{\"my.metric\",\"label.name\"=\"v\"} 1\n\
         # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 1\n",
    )
    .expect("utf8 body");
    // Two gzip members, as some exporters' middleware writes them.
    let mut gz = Vec::new();
    for part in ["first_part 1\n", "second_part 2\n"] {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, part.as_bytes()).expect("gzip");
        gz.extend(e.finish().expect("gzip"));
    }
    std::fs::write(www.join("gz"), gz).expect("gz body");
    let _nginx = targets(&d.0, &addr);
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:\n\
             \x20 - job_name: utf8\n    metrics_path: /utf8\n    static_configs: [{{targets: ['{addr}']}}]\n\
             \x20 - job_name: gz\n    metrics_path: /gz\n    static_configs: [{{targets: ['{addr}']}}]\n"
        ),
    )
    .expect("config");
    let web = free_port();
    let data = d.0.join("data");
    let mut t = trawl(&d.0, &cfg, &data, web);
    eventually(Duration::from_secs(20), "both targets up", || {
        let a = active(web);
        a.len() == 2 && a.iter().all(|x| x.2 == "up")
    });
    std::thread::sleep(Duration::from_millis(1500));
    stop_proc(&mut t);
    let dump = dump(&data);
    let has = |k: &str| dump.keys().any(|l| l.starts_with(k));
    assert!(
        has("{__name__=\"my.metric\", instance="),
        "{:?}",
        dump.keys().collect::<Vec<_>>()
    );
    assert!(dump.keys().any(|l| l.contains("label.name=\"v\"")));
    // `le="1"` is stored as 3.x stores it.
    assert!(
        dump.keys()
            .any(|l| l.starts_with("{__name__=\"h_bucket\"") && l.contains("le=\"1.0\""))
    );
    assert!(!dump.keys().any(|l| l.contains("le=\"1\"")));
    assert!(has("{__name__=\"first_part\"") && has("{__name__=\"second_part\""));
}

// `io.prometheus.client` (metrics.proto): what the protobuf test target serves.
#[derive(Clone, PartialEq, prost::Message)]
struct LabelPair {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PbExemplar {
    #[prost(message, repeated, tag = "1")]
    label: Vec<LabelPair>,
    #[prost(double, tag = "2")]
    value: f64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Value {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(message, optional, tag = "2")]
    exemplar: Option<PbExemplar>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Bucket {
    #[prost(uint64, tag = "1")]
    cumulative_count: u64,
    #[prost(double, tag = "2")]
    upper_bound: f64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Histogram {
    #[prost(uint64, tag = "1")]
    sample_count: u64,
    #[prost(double, tag = "2")]
    sample_sum: f64,
    #[prost(message, repeated, tag = "3")]
    bucket: Vec<Bucket>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Metric {
    #[prost(message, repeated, tag = "1")]
    label: Vec<LabelPair>,
    #[prost(message, optional, tag = "2")]
    gauge: Option<Value>,
    #[prost(message, optional, tag = "3")]
    counter: Option<Value>,
    #[prost(message, optional, tag = "7")]
    histogram: Option<Histogram>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct MetricFamily {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    help: String,
    #[prost(int32, tag = "3")]
    r#type: i32,
    #[prost(message, repeated, tag = "4")]
    metric: Vec<Metric>,
}

#[test]
fn a_protobuf_target_is_scraped_into_the_wal() {
    use prost::Message as _;
    let d = TempDir::new("protobuf");
    let addr = format!("127.0.0.1:{}", free_port());
    let www = d.0.join("www");
    std::fs::create_dir_all(&www).expect("www");
    let lp = |n: &str, v: &str| LabelPair {
        name: n.into(),
        value: v.into(),
    };
    let fams = [
        MetricFamily {
            name: "pb_requests_total".into(),
            help: "Requests.".into(),
            r#type: 0,
            metric: vec![Metric {
                label: vec![lp("code", "200")],
                counter: Some(Value {
                    value: 12.0,
                    exemplar: Some(PbExemplar {
                        label: vec![lp("trace_id", "pb1")],
                        value: 0.25,
                    }),
                }),
                ..Default::default()
            }],
        },
        MetricFamily {
            name: "pb.temperature".into(),
            help: String::new(),
            r#type: 1,
            metric: vec![Metric {
                gauge: Some(Value {
                    value: 21.5,
                    exemplar: None,
                }),
                ..Default::default()
            }],
        },
        MetricFamily {
            name: "pb_latency".into(),
            help: String::new(),
            r#type: 4,
            metric: vec![Metric {
                histogram: Some(Histogram {
                    sample_count: 3,
                    sample_sum: 1.5,
                    bucket: vec![Bucket {
                        cumulative_count: 2,
                        upper_bound: 1.0,
                    }],
                }),
                ..Default::default()
            }],
        },
    ];
    let mut pb = Vec::new();
    for f in &fams {
        f.encode_length_delimited(&mut pb).expect("encode");
    }
    std::fs::write(www.join("pb"), pb).expect("body");
    let _nginx = targets(&d.0, &addr);
    let rport = free_port();
    let _receiver = prometheus_with_exemplars(&d.0.join("receiver"), rport, None);
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\n\
             remote_write: [{{url: 'http://127.0.0.1:{rport}/api/v1/write', send_exemplars: true}}]\n\
             scrape_configs:\n  - job_name: pb\n    metrics_path: /pb\n    scrape_protocols: [PrometheusProto]\n\
             \x20   static_configs: [{{targets: ['{addr}']}}]\n"
        ),
    )
    .expect("config");
    let web = free_port();
    let data = d.0.join("data");
    let mut t = trawl(&d.0, &cfg, &data, web);
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while !active(web).iter().any(|x| x.2 == "up") {
        assert!(
            std::time::Instant::now() < end,
            "the target is not up: {:?}\n{}",
            api(web, "GET", "/api/v1/targets"),
            log_of(&d.0)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eventually(
        Duration::from_secs(30),
        "the protobuf exemplar at the receiver",
        || {
            exemplars(rport, "pb_requests_total")
                .first()
                .is_some_and(|e| e.1 == "trace_id=pb1" && e.2 == 0.25)
        },
    );
    stop_proc(&mut t);
    let dump = dump(&data);
    let keys: Vec<&String> = dump.keys().collect();
    for want in [
        "{__name__=\"pb_requests_total\", code=\"200\"",
        "{__name__=\"pb.temperature\"",
        "{__name__=\"pb_latency_count\"",
        "{__name__=\"pb_latency_sum\"",
    ] {
        assert!(
            keys.iter().any(|k| k.starts_with(want)),
            "{want} in {keys:?}"
        );
    }
    for le in ["1.0", "+Inf"] {
        assert!(
            keys.iter()
                .any(|k| k.starts_with("{__name__=\"pb_latency_bucket\"")
                    && k.contains(&format!("le=\"{le}\""))),
            "le {le} in {keys:?}"
        );
    }
    let temp = dump
        .iter()
        .find(|(k, _)| k.starts_with("{__name__=\"pb.temperature\""))
        .map(|(_, v)| v[0].0.clone());
    assert_eq!(temp.as_deref(), Some("21.5"));
}
