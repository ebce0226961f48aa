//! The daemon's end-to-end scenarios against `trawl-tokio`: the same test bodies
//! (`shell-mio/tests/common/scenario.rs`), the same nginx fleet on loopback and the same
//! checks of the WAL with `promtool tsdb dump`, with the agent embedded in this process
//! (a multi-threaded runtime, the WAL sink on `trawl-mio`'s writer) instead of the
//! `trawl` process.

#[path = "../../shell-mio/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{Shell, TempDir, active_from_json, scenario};
use tokio::sync::oneshot;
use trawl_tokio::{Agent, Handle, WalOptions, WriterOptions};

/// trawl-tokio as a [`Shell`]: the agent runs on its own runtime; calls go through its
/// [`Handle`].
struct Embedded {
    rt: tokio::runtime::Runtime,
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    run: Option<tokio::task::JoinHandle<trawl_tokio::Report>>,
    cfg: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl Embedded {
    fn start(_dir: &Path, cfg: &Path, data: &Path) -> Embedded {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let config = trawl_mio::daemon::load_config(cfg).expect("config");
        let agent = Agent::builder(config)
            .wal(data, WalOptions::default(), WriterOptions::default())
            .expect("WAL")
            .build();
        let handle = agent.handle();
        let (stop, stopped) = oneshot::channel::<()>();
        let run = rt.spawn(agent.run(async move {
            let _ = stopped.await;
        }));
        Embedded {
            rt,
            handle,
            stop: Some(stop),
            run: Some(run),
            cfg: cfg.to_owned(),
            log: Arc::default(),
        }
    }

    fn note(&self, s: String) {
        if let Ok(mut l) = self.log.lock() {
            l.push(s);
        }
    }
}

/// Starts trawl-tokio as a [`Shell`] (the scenarios' `start`).
fn embedded(dir: &Path, cfg: &Path, data: &Path) -> Box<dyn Shell> {
    Box::new(Embedded::start(dir, cfg, data))
}

impl Shell for Embedded {
    fn active(&self) -> Vec<(String, String, String)> {
        match self.rt.block_on(self.handle.targets_json()) {
            Ok(j) => active_from_json(&j),
            Err(e) => {
                self.note(e.to_string());
                Vec::new()
            }
        }
    }
    fn targets_json(&self) -> String {
        self.rt
            .block_on(self.handle.targets_json())
            .unwrap_or_default()
    }
    fn metrics(&self) -> String {
        self.rt.block_on(self.handle.metrics()).unwrap_or_default()
    }
    fn reload(&mut self) {
        match trawl_mio::daemon::load_config(&self.cfg) {
            Ok(c) => {
                if let Err(e) = self.rt.block_on(self.handle.reload(c)) {
                    self.note(e.to_string());
                }
            }
            Err(e) => self.note(e),
        }
    }
    fn stop(&mut self) -> Result<(), String> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.run.take() {
            Some(r) => self
                .rt
                .block_on(r)
                .map(|report| self.note(format!("{report:?}")))
                .map_err(|e| format!("the agent's task: {e}")),
            None => Err("already stopped".into()),
        }
    }
    fn log(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

#[test]
fn static_and_file_targets_are_scraped_stored_and_marked_stale_after_a_reload() {
    let d = TempDir::new("tokio-sd");
    scenario::discovery_reload_and_shutdown(&d.0, &mut embedded, &mut |_: &dyn Shell| {});
}

#[test]
fn https_targets_are_verified_against_the_configured_ca() {
    let d = TempDir::new("tokio-tls");
    let _ = scenario::https_targets_are_verified(&d.0, &mut embedded);
}

#[test]
fn every_sample_in_the_wal_reaches_victoriametrics_and_prometheus() {
    let d = TempDir::new("tokio-rw");
    scenario::remote_write_reaches_both_receivers(&d.0, &mut embedded);
}

#[test]
fn errors_are_retried_and_a_refused_batch_is_the_only_loss() {
    let d = TempDir::new("tokio-rw-faults");
    scenario::errors_are_retried_and_a_refused_batch_is_the_only_loss(&d.0, &mut embedded);
}

#[test]
fn metadata_goes_out_in_metadata_only_requests() {
    let d = TempDir::new("tokio-rw-meta");
    scenario::metadata_goes_out_in_metadata_only_requests(&d.0, &mut embedded);
}

#[test]
fn targets_go_through_a_plain_http_proxy() {
    let d = TempDir::new("tokio-proxy");
    let _ = scenario::targets_go_through_a_plain_http_proxy(&d.0, &mut embedded);
}

#[test]
fn three_instances_share_a_fleet_of_300_targets() {
    let d = TempDir::new("tokio-rw-scale");
    scenario::three_instances_share_a_fleet_of_300_targets(&d.0, &mut embedded);
}

#[test]
fn both_receivers_stopped_for_a_minute_get_everything_and_memory_stays_flat() {
    let d = TempDir::new("tokio-rw-minute");
    scenario::both_receivers_stopped_for_a_minute_get_everything_and_memory_stays_flat(
        &d.0,
        &mut embedded,
    );
}
