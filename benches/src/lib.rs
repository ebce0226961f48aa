//! Shared fixtures for trawl's benchmarks.

pub mod live_heap {
    //! A global allocator that tracks the live heap in bytes, for the memory examples
    //! (`#[global_allocator] static A: LiveHeap = LiveHeap;`, then [`live`]).

    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicI64, Ordering};

    /// Forwards to the system allocator, counting live bytes.
    pub struct LiveHeap;

    static LIVE: AtomicI64 = AtomicI64::new(0);

    /// Live heap bytes now.
    pub fn live() -> i64 {
        LIVE.load(Ordering::Relaxed)
    }

    // SAFETY: forwards to the system allocator unchanged; only counts bytes.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for LiveHeap {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
            // SAFETY: same layout contract as the caller's.
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
            // SAFETY: `p` came from `alloc` with this layout.
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            LIVE.fetch_add(new as i64 - l.size() as i64, Ordering::Relaxed);
            // SAFETY: `p` came from `alloc` with layout `l`.
            unsafe { System.realloc(p, l, new) }
        }
    }
}

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

pub mod consul_sd;
pub mod kube_sd;
pub mod zk_sd;

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
                            IoOp::Http(_) | IoOp::Dns(_) | IoOp::Stream(_) => {}
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

pub mod bodies {
    //! Scrape bodies for the exposition benches: a node_exporter-like body (about 1 000
    //! series in ~45 families with HELP and TYPE, counters with labels, gauges, a
    //! histogram, a summary) and a flat body of 100 000 series. Deterministic: the same
    //! bytes every run.

    use std::fmt::Write;

    /// A node_exporter-like body in the text format.
    pub fn node_exporter() -> String {
        let mut b = String::new();
        let fam = |b: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(b, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        fam(
            &mut b,
            "node_cpu_seconds_total",
            "counter",
            "Seconds the CPUs spent in each mode.",
        );
        for cpu in 0..8 {
            for mode in [
                "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
            ] {
                let _ = writeln!(
                    b,
                    "node_cpu_seconds_total{{cpu=\"{cpu}\",mode=\"{mode}\"}} {}.{:02}",
                    123_456 + cpu * 1000,
                    cpu * 7 % 100
                );
            }
        }
        for m in [
            "avail_bytes",
            "files",
            "files_free",
            "free_bytes",
            "readonly",
            "size_bytes",
        ] {
            let name = format!("node_filesystem_{m}");
            fam(&mut b, &name, "gauge", "Filesystem information.");
            for (i, mp) in [
                "/", "/boot", "/home", "/var", "/tmp", "/run", "/srv", "/opt", "/data", "/mnt",
            ]
            .iter()
            .enumerate()
            {
                let _ = writeln!(
                    b,
                    "{name}{{device=\"/dev/nvme0n1p{i}\",fstype=\"ext4\",mountpoint=\"{mp}\"}} {}",
                    1.5e10 + i as f64 * 1.25e8
                );
            }
        }
        for m in [
            "receive_bytes_total",
            "receive_packets_total",
            "receive_errs_total",
            "receive_drop_total",
            "receive_fifo_total",
            "receive_frame_total",
            "receive_compressed_total",
            "receive_multicast_total",
            "transmit_bytes_total",
            "transmit_packets_total",
            "transmit_errs_total",
            "transmit_drop_total",
            "transmit_fifo_total",
            "transmit_colls_total",
            "transmit_carrier_total",
            "transmit_compressed_total",
        ] {
            let name = format!("node_network_{m}");
            fam(&mut b, &name, "counter", "Network device statistic.");
            for dev in ["eth0", "eth1", "lo", "docker0", "veth1a2b3c", "wlan0"] {
                let _ = writeln!(b, "{name}{{device=\"{dev}\"}} {}", dev.len() * 987_654_321);
            }
        }
        for m in [
            "reads_completed_total",
            "reads_merged_total",
            "read_bytes_total",
            "read_time_seconds_total",
            "writes_completed_total",
            "writes_merged_total",
            "written_bytes_total",
            "write_time_seconds_total",
            "io_now",
            "io_time_seconds_total",
            "io_time_weighted_seconds_total",
            "discards_completed_total",
        ] {
            let name = format!("node_disk_{m}");
            fam(&mut b, &name, "counter", "Disk statistic.");
            for d in 0..8 {
                let _ = writeln!(b, "{name}{{device=\"nvme{d}n1\"}} {}", 4_242_424 + d * 17);
            }
        }
        fam(
            &mut b,
            "http_request_duration_seconds",
            "histogram",
            "Request latency.",
        );
        for h in 0..20 {
            let mut cum = 0;
            for le in [
                "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
                "+Inf",
            ] {
                cum += 3 + h;
                let _ = writeln!(
                    b,
                    "http_request_duration_seconds_bucket{{handler=\"/api/v1/h{h}\",le=\"{le}\"}} {cum}"
                );
            }
            let _ = writeln!(
                b,
                "http_request_duration_seconds_sum{{handler=\"/api/v1/h{h}\"}} {}.25",
                h * 3
            );
            let _ = writeln!(
                b,
                "http_request_duration_seconds_count{{handler=\"/api/v1/h{h}\"}} {cum}"
            );
        }
        fam(
            &mut b,
            "go_gc_duration_seconds",
            "summary",
            "A summary of the GC pause durations.",
        );
        for q in ["0", "0.25", "0.5", "0.75", "1"] {
            let _ = writeln!(b, "go_gc_duration_seconds{{quantile=\"{q}\"}} 2.6e-05");
        }
        let _ = writeln!(
            b,
            "go_gc_duration_seconds_sum 0.123\ngo_gc_duration_seconds_count 4096"
        );
        for i in 0..200 {
            let name = format!("node_vmstat_stat_{i}");
            fam(&mut b, &name, "untyped", "/proc/vmstat information.");
            let _ = writeln!(b, "{name} {}", i * 31_337);
        }
        for i in 0..150 {
            let name = format!("node_memory_field{i}_bytes");
            fam(&mut b, &name, "gauge", "Memory information field.");
            let _ = writeln!(b, "{name} {}", 1_073_741_824 + i * 4096);
        }
        b
    }

    /// `n` series of 100 families, two labels each, in the text format.
    pub fn flat(n: usize) -> String {
        let mut b = String::with_capacity(n * 64);
        for i in 0..n {
            if i % 1000 == 0 {
                let _ = writeln!(
                    b,
                    "# HELP app_metric_{} An application metric.\n# TYPE app_metric_{} gauge",
                    i / 1000,
                    i / 1000
                );
            }
            let _ = writeln!(
                b,
                "app_metric_{}{{pod=\"app-{}\",shard=\"{}\"}} {}",
                i / 1000,
                i % 1000,
                i % 16,
                i as f64 * 0.5
            );
        }
        b
    }

    /// Number of samples in a text body (lines not starting with `#`).
    pub fn samples(body: &str) -> usize {
        body.lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count()
    }

    /// The same body with UTF-8 metric names (the first `_` of each name a `.`), quoted
    /// in the braces and in `# HELP`/`# TYPE` as 3.x's text format 1.0.0 writes them.
    pub fn utf8_names(body: &str) -> String {
        let dotted = |n: &str| n.replacen('_', ".", 1);
        let mut out = String::with_capacity(body.len() + body.len() / 8);
        for line in body.lines() {
            if let Some(rest) = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
            {
                let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
                let _ = writeln!(out, "{} \"{}\" {text}", &line[..6], dotted(name));
            } else if line.is_empty() || line.starts_with('#') {
                let _ = writeln!(out, "{line}");
            } else {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                let (name, rest) = line.split_at(end);
                match rest.strip_prefix('{') {
                    Some(labels) if !labels.starts_with('}') => {
                        let _ = writeln!(out, "{{\"{}\",{labels}", dotted(name));
                    }
                    Some(labels) => {
                        let _ = writeln!(out, "{{\"{}\"{labels}", dotted(name));
                    }
                    None => {
                        let _ = writeln!(out, "{{\"{}\"}}{rest}", dotted(name));
                    }
                }
            }
        }
        out
    }

    /// The same body as OpenMetrics (`unknown` for `untyped`, and `# EOF`).
    pub fn openmetrics(body: &str) -> String {
        let mut b = String::with_capacity(body.len() + 6);
        for line in body.lines() {
            // OpenMetrics says `unknown` where the text format says `untyped`.
            match line.strip_suffix(" untyped") {
                Some(head) if line.starts_with("# TYPE ") => {
                    b.push_str(head);
                    b.push_str(" unknown");
                }
                _ => b.push_str(line),
            }
            b.push('\n');
        }
        b.push_str("# EOF\n");
        b
    }

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn field(out: &mut Vec<u8>, tag: u64, payload: &[u8]) {
        varint(out, tag << 3 | 2);
        varint(out, payload.len() as u64);
        out.extend_from_slice(payload);
    }

    /// The same samples as a protobuf body (delimited `MetricFamily` messages): each
    /// sample name one family of gauges (its counters as counters), one metric per
    /// sample with its labels, as an exporter that writes no summaries or histograms
    /// would send them.
    pub fn protobuf(body: &str) -> Vec<u8> {
        use trawl_core::exposition::{BodyParser, Entry, Format};
        let mut families: Vec<(String, bool, Vec<Vec<u8>>)> = Vec::new();
        let mut p = BodyParser::new(Format::PromText);
        let mut sink = |e: Entry<'_>| -> Result<(), ()> {
            if let Entry::Sample(s) = e {
                let mut m = Vec::new();
                for (n, v) in s.labels() {
                    let mut pair = Vec::new();
                    field(&mut pair, 1, n.as_bytes());
                    field(&mut pair, 2, v.as_bytes());
                    field(&mut m, 1, &pair);
                }
                let counter = s.name.ends_with("_total");
                let mut value = vec![0x09];
                value.extend_from_slice(&s.value.to_le_bytes());
                field(&mut m, if counter { 3 } else { 2 }, &value);
                match families.last_mut() {
                    Some((name, _, ms)) if *name == *s.name => ms.push(m),
                    _ => families.push((s.name.clone().into_owned(), counter, vec![m])),
                }
            }
            Ok(())
        };
        let _ = p.feed(body.as_bytes(), &mut sink);
        let _ = p.finish(&mut sink);
        let mut out = Vec::new();
        for (name, counter, metrics) in families {
            let mut f = Vec::new();
            field(&mut f, 1, name.as_bytes());
            field(&mut f, 2, b"A metric.");
            f.push(3 << 3);
            f.push(if counter { 0 } else { 1 });
            for m in metrics {
                field(&mut f, 4, &m);
            }
            varint(&mut out, f.len() as u64);
            out.extend_from_slice(&f);
        }
        out
    }
}

pub mod histograms {
    //! One set of observations per series, exposed two ways: as classic histograms
    //! (Prometheus's default buckets, `_count`, `_sum`, 12 `_bucket` series) and as
    //! native histograms (schema 3, the buckets the same observations fill), both as
    //! delimited protobuf bodies, so the pipeline and the WAL can be compared on the
    //! same data.

    /// Prometheus's default classic buckets (`prometheus.DefBuckets`).
    const BOUNDS: [f64; 11] = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn zigzag(v: i64) -> u64 {
        ((v << 1) ^ (v >> 63)) as u64
    }

    fn field(out: &mut Vec<u8>, tag: u64, payload: &[u8]) {
        varint(out, tag << 3 | 2);
        varint(out, payload.len() as u64);
        out.extend_from_slice(payload);
    }

    fn double(out: &mut Vec<u8>, tag: u64, v: f64) {
        varint(out, tag << 3 | 1);
        out.extend_from_slice(&v.to_le_bytes());
    }

    fn uint(out: &mut Vec<u8>, tag: u64, v: u64) {
        varint(out, tag << 3);
        varint(out, v);
    }

    /// `n` latency-like observations of series `k` (deterministic, spread over four
    /// decades).
    fn observations(k: usize, n: usize) -> Vec<f64> {
        let mut x = (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                0.001 * 10f64.powf(4.0 * u)
            })
            .collect()
    }

    fn family(name: &str, metrics: Vec<Vec<u8>>, out: &mut Vec<u8>) {
        let mut f = Vec::new();
        field(&mut f, 1, name.as_bytes());
        field(&mut f, 2, b"Request latency.");
        uint(&mut f, 3, 4);
        for m in metrics {
            field(&mut f, 4, &m);
        }
        varint(out, f.len() as u64);
        out.extend_from_slice(&f);
    }

    fn metric(k: usize, histogram: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        let mut pair = Vec::new();
        field(&mut pair, 1, b"path");
        field(&mut pair, 2, format!("/api/v1/item/{k}").as_bytes());
        field(&mut m, 1, &pair);
        field(&mut m, 7, histogram);
        m
    }

    /// `series` histograms of 1,000 observations each, as classic histograms.
    pub fn classic(series: usize) -> Vec<u8> {
        let metrics = (0..series)
            .map(|k| {
                let obs = observations(k, 1000);
                let mut h = Vec::new();
                uint(&mut h, 1, obs.len() as u64);
                double(&mut h, 2, obs.iter().sum());
                for b in BOUNDS {
                    let mut bucket = Vec::new();
                    uint(
                        &mut bucket,
                        1,
                        obs.iter().filter(|&&v| v <= b).count() as u64,
                    );
                    double(&mut bucket, 2, b);
                    field(&mut h, 3, &bucket);
                }
                metric(k, &h)
            })
            .collect();
        let mut out = Vec::new();
        family("http_request_duration_seconds", metrics, &mut out);
        out
    }

    /// The same observations as native histograms of schema 3.
    pub fn native(series: usize) -> Vec<u8> {
        let metrics = (0..series)
            .map(|k| {
                let obs = observations(k, 1000);
                // Bucket index at schema 3: the smallest i with v <= 2^(i/8).
                let mut counts = std::collections::BTreeMap::<i32, u64>::new();
                for v in &obs {
                    *counts.entry((v.log2() * 8.0).ceil() as i32).or_default() += 1;
                }
                let mut h = Vec::new();
                uint(&mut h, 1, obs.len() as u64);
                double(&mut h, 2, obs.iter().sum());
                varint(&mut h, 5 << 3);
                varint(&mut h, zigzag(3));
                double(&mut h, 6, 1e-128);
                // Spans over runs of adjacent indices, deltas between counts.
                let mut spans: Vec<(i32, u32)> = Vec::new();
                let mut next = i32::MIN;
                let mut deltas = Vec::new();
                let mut prev = 0i64;
                for (&i, &c) in &counts {
                    match spans.last_mut() {
                        Some(s) if i == next => s.1 += 1,
                        Some(_) => spans.push((i - next, 1)),
                        None => spans.push((i, 1)),
                    }
                    next = i + 1;
                    varint(&mut deltas, zigzag(c as i64 - prev));
                    prev = c as i64;
                }
                for (o, l) in spans {
                    let mut s = Vec::new();
                    varint(&mut s, 1 << 3);
                    varint(&mut s, zigzag(i64::from(o)));
                    uint(&mut s, 2, u64::from(l));
                    field(&mut h, 12, &s);
                }
                field(&mut h, 13, &deltas);
                metric(k, &h)
            })
            .collect();
        let mut out = Vec::new();
        family("http_request_duration_seconds", metrics, &mut out);
        out
    }
}

pub mod scrape {
    //! One target's pipeline, driven directly (no Agent around it): what the exposition
    //! benches and the allocation count share.

    use std::sync::Arc;

    use trawl_core::config::{Config, ParseOptions, ScrapeConfig};
    use trawl_core::exposition::{BodyParser, Entry, Format, HistogramOptions};
    use trawl_core::labels::Labels;
    use trawl_core::scrape::pipeline::{Refs, RunResult, ScrapeContext, ScrapeRun, SeriesCache};

    /// A scrape target's pipeline state.
    pub struct Target {
        cfg: ScrapeConfig,
        job: Arc<str>,
        url: Arc<str>,
        labels: Labels,
        cache: SeriesCache,
        refs: Refs,
        t: i64,
    }

    impl Default for Target {
        fn default() -> Self {
            Target::new()
        }
    }

    impl Target {
        /// A target of a default job.
        pub fn new() -> Target {
            Target::with_job("")
        }

        /// A target of a job with `extra` settings (YAML lines indented for the job).
        pub fn with_job(extra: &str) -> Target {
            let cfg = Config::parse(
                &format!("scrape_configs:\n  - job_name: j\n{extra}"),
                &ParseOptions::for_path("b.yml"),
            )
            .map(|mut c| c.scrape_configs.remove(0))
            .unwrap_or_else(|e| panic!("static bench config: {e}"));
            Target {
                cfg,
                job: "j".into(),
                url: "http://h:1/metrics".into(),
                labels: Labels::from_pairs([("instance", "h:1"), ("job", "j")]),
                cache: SeriesCache::new(),
                refs: Refs::new(),
                t: 1_700_000_000_000,
            }
        }

        /// One scrape of a text body, ten seconds after the last.
        pub fn scrape(&mut self, body: &[u8]) -> RunResult {
            self.scrape_as(Format::PromText, body)
        }

        /// One scrape of a body in `format`, histograms taken as the job says.
        pub fn scrape_as(&mut self, format: Format, body: &[u8]) -> RunResult {
            self.t += 10_000;
            let ctx = ScrapeContext {
                job: &self.job,
                url: &self.url,
                loop_id: 1,
                cfg: &self.cfg,
                target_labels: &self.labels,
                append_time: self.t,
                max_time: self.t + 600_000,
                start_timestamps: false,
            };
            let cache = &mut self.cache;
            let refs = &mut self.refs;
            let mut run = ScrapeRun::new(cache, self.t);
            let hist = HistogramOptions {
                native: self.cfg.scrape_native_histograms,
                keep_classic: self.cfg.always_scrape_classic_histograms,
                nhcb: self.cfg.convert_classic_histograms_to_nhcb,
                start_timestamps: false,
            };
            let mut p = BodyParser::new(format).histograms(hist);
            let mut sink = |e: Entry<'_>| run.entry(cache, &ctx, refs, e);
            let r = p
                .feed(body, &mut sink)
                .and_then(|()| p.finish(&mut sink))
                .map_err(|_| "parse error".to_owned());
            run.body_bytes = body.len() as i64;
            run.finish(cache, &ctx, refs, std::time::Duration::ZERO, r)
        }
    }
}
