//! A slow sink: while it holds one batch, later ones lose their samples (counted), but
//! every series they declare still reaches the sink, in order, so no sample the sink
//! gets refers to a series it was not told about; and the agent's accounting balances
//! (every batch emitted is reported on exactly once).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trawl_core::config::{Config, ParseOptions};
use trawl_tokio::{Agent, Batch, Outcome, Sink};

/// An exporter on 127.0.0.1 exposing one new series per scrape (`m{i="<n>"}`).
async fn exporter() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let n = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let n = n.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => got.extend_from_slice(&buf[..k]),
                    }
                }
                let i = n.fetch_add(1, Ordering::SeqCst);
                let body = format!("m{{i=\"{i}\"}} 1\n");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

/// Holds each batch until the gate opens; records what it got.
struct Slow {
    gate: Arc<tokio::sync::Notify>,
    open: Arc<std::sync::atomic::AtomicBool>,
    got: Arc<Mutex<Vec<Batch>>>,
}

impl Sink for Slow {
    async fn append(&mut self, batch: Batch) -> Outcome {
        while !self.open.load(Ordering::SeqCst) {
            self.gate.notified().await;
        }
        if let Ok(mut g) = self.got.lock() {
            g.push(batch);
        }
        Outcome::Stored
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sink_costs_samples_never_series() {
    let addr = exporter().await;
    let yaml = format!(
        "scrape_configs: [{{job_name: slow, scrape_interval: 100ms, scrape_timeout: 100ms, static_configs: [{{targets: ['{addr}']}}]}}]"
    );
    let config = Config::parse(&yaml, &ParseOptions::default()).expect("config");
    let sink = Slow {
        gate: Arc::default(),
        open: Arc::default(),
        got: Arc::default(),
    };
    let (gate, open, got) = (sink.gate.clone(), sink.open.clone(), sink.got.clone());
    let agent = Agent::builder(config).sink(sink).max_pending(2).build();
    let handle = agent.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    // Closed for 2 s: about 20 scrapes, each declaring a new series.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let metrics = handle.metrics().await.expect("metrics");
    let lost = metrics
        .lines()
        .find(|l| l.starts_with("trawl_storage_samples_lost_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        lost > 0.0,
        "samples lost while the sink was stuck:\n{metrics}"
    );
    open.store(true, Ordering::SeqCst);
    gate.notify_waiters();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop.send(());
    let report = run.await.expect("agent task");
    let st = &report.stats.storage;
    assert_eq!(
        st.pending_batches(),
        0,
        "every batch reported on once: {st:?}"
    );
    assert_eq!(st.appended_batches, st.reported_batches, "{st:?}");
    let got = got.lock().expect("got").clone();
    let mut declared = BTreeSet::new();
    let mut names = BTreeSet::new();
    for b in &got {
        for (r, l) in &b.series {
            declared.insert(r.0);
            if let Some(i) = l.get("i") {
                names.insert(i.parse::<u64>().expect("i"));
            }
        }
        for p in &b.samples {
            assert!(
                declared.contains(&p.series.0),
                "a sample of an undeclared series"
            );
        }
    }
    // Every scrape's new series reached the sink, none skipped.
    let max = names.iter().max().copied().unwrap_or(0);
    assert!(max >= 15, "scrapes seen: {max}");
    assert_eq!(names.len() as u64, max + 1, "series declared: {names:?}");
}
