//! Kubernetes discovery driven through the real [`Agent`] against the fake API server's
//! cluster (`trawl_tests::kube::Cluster`, the one the end-to-end tests serve), answered
//! inline: a fleet of pods in many namespaces, listed in pages, then watched. List
//! pages are rendered once and replayed, and churn batches are rendered before they
//! are timed, so what a benchmark measures is the core's work.

use std::collections::BTreeMap;

use trawl_core::agent::{Agent, AgentOptions, Event, Input, Output};
use trawl_core::config::{Config, ParseOptions};
use trawl_core::io::{IoEvent, IoOp, RequestId};
use trawl_core::time::{Instant, Now, UnixNanos};
use trawl_tests::kube::{Cluster, Reply};

/// The API server in the configuration (answered inline, never dialled).
pub const API: &str = "http://127.0.0.1:6443";

/// A pod as a controller makes them (`trawl_tests::kube::fleet_pod`), at a 10.x address
/// (the benchmarks answer inline; nothing is dialled).
pub fn pod(i: usize, namespaces: usize, ports: usize, version: &str) -> serde_json::Value {
    let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    trawl_tests::kube::fleet_pod(i, namespaces, ports, version, &ip)
}

/// A cluster of `pods` pods with `ports` ports each across `namespaces` namespaces.
pub fn cluster(pods: usize, namespaces: usize, ports: usize) -> Cluster {
    let mut c = Cluster::new();
    c.window = 1 << 30;
    for i in 0..pods {
        c.apply(pod(i, namespaces, ports, "v1"));
    }
    c
}

/// The agent with one `role: pod` job on the cluster, and what it has been answered.
pub struct Run {
    /// The agent.
    pub agent: Agent,
    /// Its clock.
    pub now: Now,
    /// List answers, by URL (rendered once).
    pages: BTreeMap<String, Vec<u8>>,
    /// The watch the agent holds open.
    pub watch: Option<RequestId>,
}

impl Run {
    /// An agent whose job discovers `role: pod` from the whole cluster (coalescing off:
    /// the core's work only).
    pub fn new(c: &Cluster) -> Run {
        Run::with_job(c, "")
    }

    /// As [`Run::new`], with more lines for the job (indented two spaces).
    pub fn with_job(c: &Cluster, extra: &str) -> Run {
        let yaml = format!(
            "scrape_configs:\n- job_name: pods\n  scrape_interval: 1h\n  kubernetes_sd_configs: [{{role: pod, api_server: '{API}'}}]\n{extra}"
        );
        let config = Config::parse(&yaml, &ParseOptions::for_path("/p.yml")).expect("config");
        let now = Now::new(Instant(1), UnixNanos(1_700_000_000_000_000_000));
        let options = AgentOptions {
            coalesce_window: std::time::Duration::ZERO,
            updatert: std::time::Duration::ZERO,
            ..AgentOptions::default()
        };
        let mut pages = BTreeMap::new();
        // Render every page the informer will ask for.
        let mut url = format!("{API}/api/v1/pods?limit=500");
        loop {
            let Reply::Whole { body, .. } = c.handle(url.trim_start_matches(API)) else {
                panic!("a list");
            };
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            pages.insert(url.clone(), body);
            match v["metadata"]["continue"].as_str() {
                Some(t) => {
                    url = format!(
                        "{API}/api/v1/pods?continue={}&limit=500",
                        trawl_core::gourl::query_escape(t)
                    )
                }
                None => break,
            }
        }
        Run {
            agent: Agent::new(config, options, now),
            now,
            pages,
            watch: None,
        }
    }

    /// Answers until the agent has delivered the whole list to the pools (initial
    /// sync); returns the number of active targets.
    pub fn sync(&mut self) -> usize {
        loop {
            let mut delivered = false;
            let mut any = false;
            while let Some(o) = self.agent.poll_output() {
                any = true;
                match o {
                    Output::Start {
                        id,
                        op: IoOp::Http(r),
                    } => {
                        if r.url.contains("watch=true") {
                            self.watch = Some(id);
                            let head = IoEvent::HttpHead {
                                status: 200,
                                reason: "OK",
                                headers: &[],
                            };
                            self.agent
                                .handle_input(self.now, Input::Io { id, event: head });
                            continue;
                        }
                        let body = self.pages.get(&r.url).expect("a rendered page").clone();
                        for event in [
                            IoEvent::HttpHead {
                                status: 200,
                                reason: "OK",
                                headers: &[],
                            },
                            IoEvent::HttpBody(&body),
                            IoEvent::HttpEnd,
                        ] {
                            self.agent.handle_input(self.now, Input::Io { id, event });
                        }
                    }
                    Output::Event(Event::Delivered { .. }) => delivered = true,
                    _ => {}
                }
            }
            self.run_due();
            if delivered && self.watch.is_some() && self.agent.stats().sd.received_updates > 0 {
                return self.agent.targets().len();
            }
            if !any {
                match self.agent.poll_timeout() {
                    Some(t) if t <= self.now.mono => {
                        self.agent.handle_input(self.now, Input::Timeout)
                    }
                    _ => return self.agent.targets().len(),
                }
            }
        }
    }

    /// Runs what is due now (coalescing, a large sync spread over turns).
    fn run_due(&mut self) {
        while self
            .agent
            .poll_timeout()
            .is_some_and(|t| t <= self.now.mono)
        {
            self.agent.handle_input(self.now, Input::Timeout);
            while self.agent.poll_output().is_some() {}
        }
    }

    /// Feeds one piece of the watch stream and runs until the pools have it.
    pub fn feed_watch(&mut self, chunk: &[u8]) {
        let id = self.watch.expect("a watch");
        self.agent.handle_input(
            self.now,
            Input::Io {
                id,
                event: IoEvent::HttpBody(chunk),
            },
        );
        while self.agent.poll_output().is_some() {}
        self.run_due();
    }
}

/// A watch body: `n` pods (from `first`) relabeled to `version`, as `MODIFIED` events.
pub fn churn(
    c: &mut Cluster,
    first: usize,
    n: usize,
    namespaces: usize,
    ports: usize,
    version: &str,
) -> Vec<u8> {
    let mut w = trawl_tests::kube::Watch {
        query: trawl_tests::kube::Query {
            res: trawl_tests::kube::Res::of_kind("Pod").expect("pods"),
            namespace: String::new(),
            labels: Default::default(),
            fields: Default::default(),
        },
        rv: c.resource_version(),
        bookmarks: false,
        timeout_secs: None,
    };
    for i in first..first + n {
        c.apply(pod(i, namespaces, ports, version));
    }
    c.poll(&mut w).expect("events").concat().into_bytes()
}
