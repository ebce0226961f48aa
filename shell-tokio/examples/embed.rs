//! A small service with trawl inside: it scrapes two targets and prints each committed
//! batch.
//!
//! ```sh
//! cargo run -p trawl-tokio --example embed                       # two built-in exporters
//! cargo run -p trawl-tokio --example embed -- 127.0.0.1:9100 127.0.0.1:9090
//! ```
//!
//! With no addresses it serves two tiny exporters of its own on loopback (ports the
//! system picks) and scrapes those. It stops after 6 batches.

// An example prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trawl_core::config::{Config, ParseOptions};
use trawl_tokio::{Agent, Batch, Outcome, Sink};

/// Prints each batch: its new series, then its samples.
struct Print {
    /// Batches still to print; the service stops at zero.
    left: usize,
    done: Option<tokio::sync::oneshot::Sender<()>>,
    /// Series names by ref, from the batches that declared them.
    names: std::collections::BTreeMap<u64, String>,
    /// Every sample printed, as `series value`.
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Sink for Print {
    async fn append(&mut self, batch: Batch) -> Outcome {
        for (r, labels) in &batch.series {
            self.names.insert(r.0, labels.to_string());
        }
        println!(
            "batch: {} new series, {} samples",
            batch.series.len(),
            batch.samples.len()
        );
        for p in &batch.samples {
            let name = self.names.get(&p.series.0).map_or("?", String::as_str);
            println!("  {name} {} @{}", p.value(), p.t);
            if let Ok(mut seen) = self.seen.lock() {
                seen.push(format!("{name} {}", p.value()));
            }
        }
        self.left = self.left.saturating_sub(1);
        if self.left == 0
            && let Some(tx) = self.done.take()
        {
            let _ = tx.send(());
        }
        Outcome::Stored
    }
}

/// An exporter on 127.0.0.1: every request gets `body` in the text format.
async fn exporter(body: &'static str) -> std::io::Result<String> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?.to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                // One request per connection is enough here: read the head, answer, close.
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    Ok(addr)
}

/// Runs the service until `batches` batches were printed; returns every
/// sample printed, as `series value`.
pub async fn serve(targets: Vec<String>, batches: usize) -> Result<Vec<String>, String> {
    let targets = if targets.is_empty() {
        let a = exporter("# TYPE jobs_done counter\njobs_done 42\nqueue_depth 3\n")
            .await
            .map_err(|e| format!("exporter: {e}"))?;
        let b = exporter("temperature_celsius{room=\"lab\"} 21.5\n")
            .await
            .map_err(|e| format!("exporter: {e}"))?;
        vec![a, b]
    } else {
        targets
    };
    let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let yaml = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: embedded\n    static_configs: [{{targets: [{}]}}]\n",
        list.join(", ")
    );
    let config = Config::parse(&yaml, &ParseOptions::default()).map_err(|e| e.to_string())?;
    let (done, finished) = tokio::sync::oneshot::channel();
    let sink = Print {
        left: batches,
        done: Some(done),
        names: Default::default(),
        seen: Default::default(),
    };
    let seen = sink.seen.clone();
    let agent = Agent::builder(config).sink(sink).build();
    let handle = agent.handle();
    // The host decides when the agent stops (here: once the sink has seen enough; a
    // service would also wait for its own shutdown signal).
    let run = tokio::spawn(agent.run(async move {
        let _ = finished.await;
    }));
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Ok(t) = handle.targets().await {
        for t in t {
            println!("target {} ({:?})", t.target.url, t.health);
        }
    }
    let report = run.await.map_err(|e| e.to_string())?;
    println!(
        "stopped after {} scrapes",
        report.stats.scrape.scrapes_started
    );
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(seen)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let targets: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = serve(targets, 6).await {
        eprintln!("embed: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_example_scrapes_its_two_exporters_and_stops() {
        let seen = super::serve(Vec::new(), 4).await.expect("the example runs");
        assert!(
            seen.iter()
                .any(|s| s.starts_with("{__name__=\"jobs_done\"") && s.ends_with(" 42")),
            "{seen:?}"
        );
        assert!(
            seen.iter()
                .any(|s| s.contains("temperature_celsius") && s.ends_with(" 21.5")),
            "{seen:?}"
        );
        let up: Vec<&String> = seen.iter().filter(|s| s.contains("\"up\"")).collect();
        assert!(
            !up.is_empty() && up.iter().all(|s| s.ends_with(" 1")),
            "{up:?}"
        );
    }
}
