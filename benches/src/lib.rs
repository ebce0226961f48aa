//! Shared fixtures for trawl's benchmarks.

pub mod k8s {
    //! One Kubernetes-style pod target: about 40 `__meta_*` labels and ten typical
    //! rules (keep on annotation, address from annotation port, path and scheme from
    //! annotations, labelmap of pod labels, namespace/pod/container to labels, drop by
    //! phase, labeldrop). `naive` does the same work the straightforward way (a
    //! `BTreeMap<String, String>` per target, the regex engine for every rule, owned
    //! strings throughout) as an in-run reference point.

    use std::collections::BTreeMap;

    /// The job: ten typical Kubernetes pod relabel rules.
    pub const CONFIG: &str = r#"
    scrape_configs:
      - job_name: kubernetes-pods
        relabel_configs:
          - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
            action: keep
            regex: "true"
          - source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
            action: replace
            regex: '([^:]+)(?::\d+)?;(\d+)'
            replacement: $1:$2
            target_label: __address__
          - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path]
            action: replace
            regex: (.+)
            target_label: __metrics_path__
          - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scheme]
            action: replace
            regex: (https?)
            target_label: __scheme__
          - action: labelmap
            regex: __meta_kubernetes_pod_label_(.+)
          - source_labels: [__meta_kubernetes_namespace]
            action: replace
            target_label: namespace
          - source_labels: [__meta_kubernetes_pod_name]
            action: replace
            target_label: pod
          - source_labels: [__meta_kubernetes_pod_container_name]
            action: replace
            target_label: container
          - source_labels: [__meta_kubernetes_pod_phase]
            action: drop
            regex: Pending|Succeeded|Failed|Completed
          - action: labeldrop
            regex: pod_template_hash|controller_revision_hash
        static_configs:
          - targets: []
    "#;

    /// The discovered labels of one pod target, sorted by name.
    pub fn pod_labels() -> Vec<(String, String)> {
        let mut l: Vec<(String, String)> = vec![
            ("__address__", "10.1.2.3:8080"),
            ("__meta_kubernetes_namespace", "payments"),
            ("__meta_kubernetes_pod_name", "checkout-7d9f8b6c5-x2k4p"),
            (
                "__meta_kubernetes_pod_uid",
                "3f2a1c0e-9b8d-4e7f-a6b5-c4d3e2f1a0b9",
            ),
            ("__meta_kubernetes_pod_ip", "10.1.2.3"),
            ("__meta_kubernetes_pod_ready", "true"),
            ("__meta_kubernetes_pod_phase", "Running"),
            (
                "__meta_kubernetes_pod_node_name",
                "node-17.eu-west-1.compute.internal",
            ),
            ("__meta_kubernetes_pod_host_ip", "172.20.4.17"),
            ("__meta_kubernetes_pod_container_name", "checkout"),
            (
                "__meta_kubernetes_pod_container_id",
                "containerd://8c1f9e2d7b6a5c4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e",
            ),
            (
                "__meta_kubernetes_pod_container_image",
                "registry.example.com/payments/checkout:v2.31.4",
            ),
            ("__meta_kubernetes_pod_container_init", "false"),
            ("__meta_kubernetes_pod_container_port_name", "http-metrics"),
            ("__meta_kubernetes_pod_container_port_number", "8080"),
            ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
            ("__meta_kubernetes_pod_controller_kind", "ReplicaSet"),
            (
                "__meta_kubernetes_pod_controller_name",
                "checkout-7d9f8b6c5",
            ),
            (
                "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
                "true",
            ),
            (
                "__meta_kubernetes_pod_annotationpresent_prometheus_io_scrape",
                "true",
            ),
            (
                "__meta_kubernetes_pod_annotation_prometheus_io_port",
                "9102",
            ),
            (
                "__meta_kubernetes_pod_annotationpresent_prometheus_io_port",
                "true",
            ),
            (
                "__meta_kubernetes_pod_annotation_prometheus_io_path",
                "/metrics",
            ),
            (
                "__meta_kubernetes_pod_annotationpresent_prometheus_io_path",
                "true",
            ),
            (
                "__meta_kubernetes_pod_annotation_kubectl_kubernetes_io_restartedAt",
                "2026-11-20T08:15:00Z",
            ),
            (
                "__meta_kubernetes_pod_annotationpresent_kubectl_kubernetes_io_restartedAt",
                "true",
            ),
            (
                "__meta_kubernetes_pod_annotation_checksum_config",
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            ),
            (
                "__meta_kubernetes_pod_annotationpresent_checksum_config",
                "true",
            ),
            ("__meta_kubernetes_pod_label_app", "checkout"),
            ("__meta_kubernetes_pod_labelpresent_app", "true"),
            (
                "__meta_kubernetes_pod_label_app_kubernetes_io_name",
                "checkout",
            ),
            (
                "__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name",
                "true",
            ),
            (
                "__meta_kubernetes_pod_label_app_kubernetes_io_version",
                "v2.31.4",
            ),
            (
                "__meta_kubernetes_pod_labelpresent_app_kubernetes_io_version",
                "true",
            ),
            ("__meta_kubernetes_pod_label_pod_template_hash", "7d9f8b6c5"),
            (
                "__meta_kubernetes_pod_labelpresent_pod_template_hash",
                "true",
            ),
            ("__meta_kubernetes_pod_label_team", "payments"),
            ("__meta_kubernetes_pod_labelpresent_team", "true"),
            ("__meta_kubernetes_pod_label_tier", "backend"),
            ("__meta_kubernetes_pod_labelpresent_tier", "true"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        l.sort();
        l
    }

    /// The straightforward implementation, for an in-run reference.
    pub mod naive {
        use super::*;
        use regex::Regex;

        /// One rule of the straightforward implementation.
        pub enum Rule {
            /// Keep if the joined sources match.
            Keep(Vec<String>, Regex),
            /// Drop if the joined sources match.
            Drop(Vec<String>, Regex),
            /// Replace: sources, regex, target, replacement.
            Replace(Vec<String>, Regex, String, String),
            /// Copy labels whose names match under a new name.
            LabelMap(Regex, String),
            /// Remove labels whose names match.
            LabelDrop(Regex),
        }

        fn anchored(p: &str) -> Regex {
            Regex::new(&format!("^(?s:{p})$")).expect("valid")
        }

        fn s(v: &[&str]) -> Vec<String> {
            v.iter().map(|x| (*x).to_owned()).collect()
        }

        /// The same ten rules as [`super::CONFIG`].
        pub fn rules() -> Vec<Rule> {
            vec![
                Rule::Keep(
                    s(&["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]),
                    anchored("true"),
                ),
                Rule::Replace(
                    s(&[
                        "__address__",
                        "__meta_kubernetes_pod_annotation_prometheus_io_port",
                    ]),
                    anchored(r"([^:]+)(?::\d+)?;(\d+)"),
                    "__address__".into(),
                    "$1:$2".into(),
                ),
                Rule::Replace(
                    s(&["__meta_kubernetes_pod_annotation_prometheus_io_path"]),
                    anchored("(.+)"),
                    "__metrics_path__".into(),
                    "$1".into(),
                ),
                Rule::Replace(
                    s(&["__meta_kubernetes_pod_annotation_prometheus_io_scheme"]),
                    anchored("(https?)"),
                    "__scheme__".into(),
                    "$1".into(),
                ),
                Rule::LabelMap(anchored("__meta_kubernetes_pod_label_(.+)"), "$1".into()),
                Rule::Replace(
                    s(&["__meta_kubernetes_namespace"]),
                    anchored("(.*)"),
                    "namespace".into(),
                    "$1".into(),
                ),
                Rule::Replace(
                    s(&["__meta_kubernetes_pod_name"]),
                    anchored("(.*)"),
                    "pod".into(),
                    "$1".into(),
                ),
                Rule::Replace(
                    s(&["__meta_kubernetes_pod_container_name"]),
                    anchored("(.*)"),
                    "container".into(),
                    "$1".into(),
                ),
                Rule::Drop(
                    s(&["__meta_kubernetes_pod_phase"]),
                    anchored("Pending|Succeeded|Failed|Completed"),
                ),
                Rule::LabelDrop(anchored("pod_template_hash|controller_revision_hash")),
            ]
        }

        fn value(l: &BTreeMap<String, String>, src: &[String]) -> String {
            src.iter()
                .map(|n| l.get(n).cloned().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(";")
        }

        /// Relabels and finalises one target; `None` if dropped.
        pub fn process(
            input: &[(String, String)],
            rules: &[Rule],
        ) -> Option<(BTreeMap<String, String>, String)> {
            let mut l: BTreeMap<String, String> = input.iter().cloned().collect();
            for (k, v) in [
                ("job", "kubernetes-pods"),
                ("__scrape_interval__", "1m"),
                ("__scrape_timeout__", "10s"),
                ("__metrics_path__", "/metrics"),
                ("__scheme__", "http"),
            ] {
                l.entry(k.into()).or_insert_with(|| v.into());
            }
            for r in rules {
                match r {
                    Rule::Keep(src, re) => {
                        if !re.is_match(&value(&l, src)) {
                            return None;
                        }
                    }
                    Rule::Drop(src, re) => {
                        if re.is_match(&value(&l, src)) {
                            return None;
                        }
                    }
                    Rule::Replace(src, re, target, rep) => {
                        let v = value(&l, src);
                        if let Some(c) = re.captures(&v) {
                            let mut out = String::new();
                            c.expand(rep, &mut out);
                            if out.is_empty() {
                                l.remove(target);
                            } else {
                                l.insert(target.clone(), out);
                            }
                        }
                    }
                    Rule::LabelMap(re, rep) => {
                        let mut add = Vec::new();
                        for (n, v) in &l {
                            if re.is_match(n) {
                                add.push((re.replace_all(n, rep.as_str()).into_owned(), v.clone()));
                            }
                        }
                        l.extend(add);
                    }
                    Rule::LabelDrop(re) => l.retain(|n, _| !re.is_match(n)),
                }
            }
            l.retain(|n, _| !n.starts_with("__meta_"));
            let addr = l.get("__address__")?.clone();
            l.entry("instance".into()).or_insert(addr.clone());
            let url = format!("{}://{}{}", l["__scheme__"], addr, l["__metrics_path__"]);
            Some((l, url))
        }
    }
}

pub mod fleet {
    //! A fleet of 100 000 targets in 1 000 file SD groups: each group one JSON file with
    //! 100 pod addresses and the ~39 Kubernetes `__meta_*` labels of the [`super::k8s`]
    //! fixture (namespace and pod name varying per group), scraped by a job with the ten
    //! Kubernetes relabel rules of that fixture. [`Shell`] drives a real [`Agent`] over it,
    //! answering its file operations from memory, with the clock standing still (the
    //! coalescing window is zero, so each change is delivered as soon as it is read).

    use std::collections::BTreeMap;

    use trawl_core::agent::{Agent, AgentOptions, Input, Output};
    use trawl_core::config::{Config, ParseOptions};
    use trawl_core::io::{IoEvent, IoOp, RequestId};
    use trawl_core::time::{Instant, Now, UnixNanos};

    /// Groups (files) in the fleet.
    pub const GROUPS: usize = 1_000;
    /// Targets per group.
    pub const PER_GROUP: usize = 100;
    /// The SD directory.
    pub const DIR: &str = "/fleet/sd";

    /// The job: the Kubernetes rules, targets from the fleet's files.
    pub fn config() -> Config {
        let yaml = super::k8s::CONFIG.replace(
            "        static_configs:\n          - targets: []",
            &format!("        file_sd_configs:\n          - files: ['{DIR}/*.json']"),
        );
        match Config::parse(&yaml, &ParseOptions::for_path("/fleet/prometheus.yml")) {
            Ok(c) => c,
            Err(e) => panic!("fleet config: {e}"),
        }
    }

    /// The file of group `g` in `version` (a new version moves every pod of the group
    /// to new addresses, i.e. changes all its 100 targets).
    pub fn file(g: usize, version: usize) -> Vec<u8> {
        let mut labels: Vec<(String, String)> = super::k8s::pod_labels()
            .into_iter()
            .filter(|(n, _)| n != "__address__")
            .collect();
        for (n, v) in &mut labels {
            match n.as_str() {
                "__meta_kubernetes_namespace" => *v = format!("ns-{}", g % 37),
                "__meta_kubernetes_pod_name" => *v = format!("checkout-{g}-x2k4p"),
                _ => {}
            }
        }
        let labels: Vec<String> = labels
            .iter()
            .map(|(n, v)| format!("{n:?}: {v:?}"))
            .collect();
        let targets: Vec<String> = (0..PER_GROUP)
            .map(|k| format!("\"10.{}.{}.{k}:8080\"", version % 50 * 4 + g / 256, g % 256))
            .collect();
        format!(
            "[{{\"targets\": [{}], \"labels\": {{{}}}}}]",
            targets.join(","),
            labels.join(",")
        )
        .into_bytes()
    }

    /// The name of group `g`'s file.
    pub fn name(g: usize) -> String {
        format!("g{g:04}.json")
    }

    /// A scripted shell around an agent on the fleet.
    pub struct Shell {
        /// The agent.
        pub agent: Agent,
        /// File contents by name.
        pub files: BTreeMap<String, Vec<u8>>,
        now: Now,
        watch: Option<RequestId>,
        pending: Vec<(RequestId, IoOp)>,
    }

    impl Shell {
        /// A fresh agent: every file listed, read and synced.
        pub fn start() -> Shell {
            let files = (0..GROUPS).map(|g| (name(g), file(g, 0))).collect();
            Shell::start_with(files)
        }

        /// A fresh agent over `files`.
        pub fn start_with(files: BTreeMap<String, Vec<u8>>) -> Shell {
            let now = Now::new(Instant(1), UnixNanos(1_700_000_000_000_000_000));
            let options = AgentOptions {
                coalesce_window: std::time::Duration::ZERO,
                updatert: std::time::Duration::ZERO,
                ..AgentOptions::default()
            };
            let agent = Agent::new(config(), options, now);
            let mut s = Shell {
                agent,
                files,
                now,
                watch: None,
                pending: Vec::new(),
            };
            s.settle();
            s
        }

        /// Answers file operations until none are left.
        pub fn settle(&mut self) {
            loop {
                while let Some(o) = self.agent.poll_output() {
                    if let Output::Start { id, op } = o {
                        match op {
                            IoOp::Watch { .. } => self.watch = Some(id),
                            IoOp::ListDir { .. } | IoOp::ReadFile { .. } => {
                                self.pending.push((id, op))
                            }
                            // Scrapes are never answered: the clock stands still.
                            IoOp::Http(_) => {}
                        }
                    }
                }
                if self.pending.is_empty() {
                    return;
                }
                for (id, op) in std::mem::take(&mut self.pending) {
                    match op {
                        IoOp::ListDir { .. } => {
                            let names: Vec<&str> = self.files.keys().map(String::as_str).collect();
                            self.agent.handle_input(
                                self.now,
                                Input::Io {
                                    id,
                                    event: IoEvent::DirEntries(&names),
                                },
                            );
                        }
                        IoOp::ReadFile { path, .. } => {
                            let name = path.rsplit('/').next().unwrap_or("");
                            let event = match self.files.get(name) {
                                Some(data) => IoEvent::FileData(data),
                                None => IoEvent::NotFound,
                            };
                            self.agent.handle_input(self.now, Input::Io { id, event });
                        }
                        _ => {}
                    }
                }
            }
        }

        /// Replaces the files of `groups` with `contents` (made beforehand, outside any
        /// timing) and reports each change to the agent as inotify would, then settles.
        pub fn rewrite(&mut self, groups: &[usize], contents: &[Vec<u8>]) {
            let watch = self.watch.expect("the agent watches the SD directory");
            for (g, c) in groups.iter().zip(contents) {
                let n = name(*g);
                self.files.insert(n.clone(), c.clone());
                self.agent.handle_input(
                    self.now,
                    Input::Io {
                        id: watch,
                        event: IoEvent::Changed { name: Some(&n) },
                    },
                );
            }
            self.settle();
        }

        /// Applies a configuration.
        pub fn reload(&mut self, config: Config) {
            self.agent
                .handle_input(self.now, Input::Config(Box::new(config)));
            self.settle();
        }
    }
}
