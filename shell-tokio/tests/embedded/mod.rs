//! trawl-tokio as a [`Shell`] for the shared end-to-end scenarios
//! (`shell-mio/tests/common/scenario.rs`): the agent embedded in the test's process.
#![allow(dead_code)] // each test binary uses some of it

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::common::{Shell, active_from_json};
use tokio::sync::oneshot;
use trawl_tokio::{Agent, Handle, WalOptions, WriterOptions};

/// trawl-tokio as a [`Shell`]: the agent runs on its own runtime; calls go through its
/// [`Handle`].
pub(crate) struct Embedded {
    rt: tokio::runtime::Runtime,
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    run: Option<tokio::task::JoinHandle<trawl_tokio::Report>>,
    cfg: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    /// Report the test process's resident memory as the agent's (only where the process
    /// runs one agent at a time).
    own_rss: bool,
}

impl Embedded {
    pub(crate) fn start(dir: &Path, cfg: &Path, data: &Path) -> Embedded {
        let options = trawl_tokio::core::agent::AgentOptions {
            api_bases: crate::common::api_bases(dir).into_iter().collect(),
            ..Default::default()
        };
        Embedded::start_with(dir, cfg, data, options)
    }

    /// As [`Embedded::start`], with these agent options.
    pub(crate) fn start_with(
        dir: &Path,
        cfg: &Path,
        data: &Path,
        options: trawl_tokio::core::agent::AgentOptions,
    ) -> Embedded {
        Embedded::start_full(dir, cfg, data, options, trawl_tokio::HttpOptions::default())
    }

    /// [`Embedded::start_with`] with the HTTP client's options too.
    pub(crate) fn start_full(
        _dir: &Path,
        cfg: &Path,
        data: &Path,
        options: trawl_tokio::core::agent::AgentOptions,
        http: trawl_tokio::HttpOptions,
    ) -> Embedded {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let config = trawl_tokio::load_config(cfg).expect("config");
        let agent = Agent::builder(config)
            .options(options)
            .http(http)
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
            own_rss: false,
        }
    }

    fn note(&self, s: String) {
        if let Ok(mut l) = self.log.lock() {
            l.push(s);
        }
    }
}

/// Starts trawl-tokio as a [`Shell`] (the scenarios' `start`).
pub(crate) fn embedded(dir: &Path, cfg: &Path, data: &Path) -> Box<dyn Shell> {
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
        match trawl_tokio::load_config(&self.cfg) {
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
    fn rss(&self) -> Option<u64> {
        if !self.own_rss {
            return None;
        }
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    }
}

/// Starts trawl-tokio as a [`Shell`] whose memory is the test process's (for test
/// binaries that run one agent at a time).
pub(crate) fn embedded_alone(dir: &Path, cfg: &Path, data: &Path) -> Box<dyn Shell> {
    let mut e = Embedded::start(dir, cfg, data);
    e.own_rss = true;
    Box::new(e)
}
