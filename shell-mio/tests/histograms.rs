//! Native histograms end to end through the daemon: a protobuf target (nginx on
//! loopback serving a body built here with prost from `metrics.proto`) scraped with
//! `scrape_native_histograms`, its integer and float (gauge) histograms written to the
//! WAL and sent by remote write, the histogram stale marker when the series goes, and
//! Prometheus 2.42 (`--enable-feature=native-histograms`) reading them back both as a
//! remote-write receiver and as a server replaying trawl's WAL.

mod common;

#[path = "../../tests/tests/support/metrics_proto.rs"]
mod metrics_proto;

use std::path::Path;
use std::time::Duration;

use common::receivers::*;
use common::*;
use metrics_proto::{BucketSpan, CT, Gauge, Histogram, Metric, MetricFamily, lp};

fn pb(f: &[MetricFamily]) -> Vec<u8> {
    metrics_proto::body(f)
}

/// nginx on `addr` serving `dir/www/pb` as a delimited protobuf body.
fn target(dir: &Path, addr: &str) -> Proc {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).expect("www");
    let conf = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  types {{ }}\n\
         default_type \"{CT}\";\n  server {{ listen {addr}; root {w}; }}\n}}\n",
        d = dir.display(),
        w = www.display(),
    );
    start_nginx(dir, &conf, &[addr])
}

/// Prometheus 2.42 with native histograms: a remote-write receiver, or (with `data`) a
/// server on a copy of a data directory.
fn prometheus(dir: &Path, port: u16, data: Option<&Path>) -> Proc {
    prometheus_server(dir, port, data, "native-histograms")
}

/// The histograms of `name` over the last hour, by series: (time s, count, sum,
/// buckets as `[lower,upper]:count`) as Prometheus's query API renders them.
fn histograms(port: u16, name: &str) -> Vec<(f64, String, String, Vec<String>)> {
    let q = query_escape(&format!("{name}[1h]"));
    let Some((200, body)) = http_get(port, &format!("/api/v1/query?query={q}")) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let mut out = Vec::new();
    for r in v["data"]["result"].as_array().into_iter().flatten() {
        for h in r["histograms"].as_array().into_iter().flatten() {
            let t = h[0].as_f64().unwrap_or(0.0);
            let x = &h[1];
            let buckets = x["buckets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    format!(
                        "[{},{}]:{}",
                        b[1].as_str().unwrap_or(""),
                        b[2].as_str().unwrap_or(""),
                        b[3].as_str().unwrap_or("")
                    )
                })
                .collect();
            out.push((
                t,
                x["count"].as_str().unwrap_or("").to_owned(),
                x["sum"].as_str().unwrap_or("").to_owned(),
                buckets,
            ));
        }
    }
    out
}

/// True if an instant query for `name` finds nothing now (the series went stale).
fn gone(port: u16, name: &str) -> bool {
    let q = query_escape(name);
    http_get(port, &format!("/api/v1/query?query={q}")).is_some_and(|(s, body)| {
        s == 200
            && serde_json::from_str::<serde_json::Value>(&body)
                .is_ok_and(|v| v["data"]["result"].as_array().is_some_and(Vec::is_empty))
    })
}

fn families() -> Vec<MetricFamily> {
    vec![
        MetricFamily {
            name: "rpc_latency_seconds".into(),
            help: "RPC latency.".into(),
            r#type: 4,
            unit: String::new(),
            metric: vec![Metric {
                label: vec![lp("method", "get")],
                histogram: Some(Histogram {
                    sample_count: 6,
                    sample_sum: 3.25,
                    schema: 0,
                    zero_threshold: 0.001,
                    zero_count: 1,
                    // Buckets (0.5,1]:2 and (1,2]:3 (indices 0 and 1 at schema 0).
                    positive_span: vec![BucketSpan {
                        offset: 0,
                        length: 2,
                    }],
                    positive_delta: vec![2, 1],
                    ..Default::default()
                }),
                ..Default::default()
            }],
        },
        MetricFamily {
            name: "queue_depth".into(),
            help: String::new(),
            r#type: 5,
            unit: String::new(),
            metric: vec![Metric {
                histogram: Some(Histogram {
                    sample_count_float: 2.5,
                    sample_sum: 10.0,
                    schema: 0,
                    zero_threshold: 0.001,
                    positive_span: vec![BucketSpan {
                        offset: 2,
                        length: 1,
                    }],
                    positive_count: vec![2.5],
                    ..Default::default()
                }),
                ..Default::default()
            }],
        },
    ]
}

#[test]
fn native_histograms_reach_the_wal_and_a_receiver_and_go_stale() {
    let d = TempDir::new("histograms");
    let addr = format!("127.0.0.1:{}", free_port());
    let www = d.0.join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("pb"), pb(&families())).expect("body");
    let _nginx = target(&d.0, &addr);
    let rport = free_port();
    let _receiver = prometheus(&d.0.join("receiver"), rport, None);
    let cfg = d.0.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\n\
             remote_write: [{{url: 'http://127.0.0.1:{rport}/api/v1/write', send_native_histograms: true}}]\n\
             scrape_configs:\n  - job_name: h\n    metrics_path: /pb\n    scrape_native_histograms: true\n\
             \x20   static_configs: [{{targets: ['{addr}']}}]\n"
        ),
    )
    .expect("config");
    let web = free_port();
    let data = d.0.join("data");
    let mut t = trawl(&d.0, &cfg, &data, web);
    eventually(
        Duration::from_secs(30),
        "histograms at the receiver",
        || {
            let h = histograms(rport, "rpc_latency_seconds");
            let g = histograms(rport, "queue_depth");
            !h.is_empty() && !g.is_empty()
        },
    );
    let h = histograms(rport, "rpc_latency_seconds");
    let (_, count, sum, buckets) = &h[0];
    assert_eq!((count.as_str(), sum.as_str()), ("6", "3.25"));
    // The zero bucket, then (0.5,1] and (1,2] at schema 0.
    assert_eq!(
        buckets,
        &vec![
            "[-0.001,0.001]:1".to_owned(),
            "[0.5,1]:2".to_owned(),
            "[1,2]:3".to_owned()
        ],
        "{h:?}"
    );
    let g = histograms(rport, "queue_depth");
    assert_eq!((g[0].1.as_str(), g[0].2.as_str()), ("2.5", "10"));
    assert_eq!(g[0].3, vec!["[2,4]:2.5".to_owned()], "{g:?}");
    // No classic series of them.
    assert!(gone(rport, "rpc_latency_seconds_count"));

    // The histograms leave the body: their series end with histogram stale markers.
    std::fs::write(
        www.join("pb"),
        pb(&[MetricFamily {
            name: "other".into(),
            help: String::new(),
            r#type: 1,
            unit: String::new(),
            metric: vec![Metric {
                gauge: Some(Gauge { value: 1.0 }),
                ..Default::default()
            }],
        }]),
    )
    .expect("body");
    eventually(
        Duration::from_secs(30),
        "the histograms stale at the receiver",
        || gone(rport, "rpc_latency_seconds") && gone(rport, "queue_depth"),
    );
    let before = histograms(rport, "rpc_latency_seconds").len();
    assert!(before > 0);
    stop_proc(&mut t);

    // promtool 2.42 dumps only float samples: it reads past the histogram records and
    // prints the rest of the WAL.
    let dumped = dump(&data);
    assert!(
        dumped.keys().any(|k| k.starts_with("{__name__=\"other\"")),
        "{:?}",
        dumped.keys().collect::<Vec<_>>()
    );
    assert!(!dumped.keys().any(|k| k.contains("rpc_latency_seconds")));

    // A Prometheus server replaying trawl's WAL finds the same histograms.
    let sport = free_port();
    let _server = prometheus(&d.0.join("server"), sport, Some(&data));
    let replayed = histograms(sport, "rpc_latency_seconds");
    assert_eq!(replayed.len(), before, "{replayed:?}");
    assert!(replayed.iter().all(|x| x.1 == "6" && x.2 == "3.25"));
    let g = histograms(sport, "queue_depth");
    assert!(!g.is_empty() && g.iter().all(|x| x.1 == "2.5"));
    assert!(gone(sport, "rpc_latency_seconds"), "stale after replay too");
}
