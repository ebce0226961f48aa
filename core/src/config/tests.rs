//! Configuration scenarios (`prometheus-semantics.md` §7, §9.8) and error positions.

use super::*;

fn opts() -> ParseOptions {
    ParseOptions {
        file_name: "prometheus.yml".into(),
        base_dir: "/etc/prometheus".into(),
        env: BTreeMap::from([("REGION".to_owned(), "eu-1".to_owned())]),
    }
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, &opts())
}

/// Parses `text`, expecting an error; returns (line, column, message).
fn fail(text: &str) -> (usize, usize, String) {
    let e = parse(text).expect_err("config should be rejected");
    (
        e.line.expect("line known"),
        e.column.expect("column known"),
        e.message,
    )
}

#[test]
fn s122_empty_file_and_empty_global_give_defaults() {
    for text in ["", "\n", "global:\n", "global: {}\n"] {
        let c = parse(text).unwrap();
        assert_eq!(c.global.scrape_interval, PromDuration::from_secs(60));
        assert_eq!(c.global.scrape_timeout, PromDuration::from_secs(10));
        assert_eq!(c.global.evaluation_interval, PromDuration::from_secs(60));
        assert!(c.scrape_configs.is_empty());
    }
}

#[test]
fn global_timeout_defaults_to_min_of_10s_and_interval() {
    let c = parse("global:\n  scrape_interval: 5s\n").unwrap();
    assert_eq!(c.global.scrape_timeout, PromDuration::from_secs(5));
    let c = parse("global:\n  scrape_interval: 30s\n").unwrap();
    assert_eq!(c.global.scrape_timeout, PromDuration::from_secs(10));
    assert_eq!(
        fail("global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n"),
        (
            3,
            19,
            "global scrape timeout greater than scrape interval".into()
        )
    );
}

#[test]
fn s116_job_name_missing_and_duplicate() {
    assert_eq!(
        fail("scrape_configs:\n  - scrape_interval: 5s\n"),
        (2, 5, "job_name is empty".into())
    );
    assert_eq!(
        fail("scrape_configs:\n  - job_name: prometheus\n  - job_name: prometheus\n"),
        (
            3,
            15,
            r#"found multiple scrape configs with job name "prometheus""#.into()
        )
    );
}

#[test]
fn s117_timeout_greater_than_interval() {
    let text = "scrape_configs:\n  - job_name: prometheus\n    scrape_interval: 5s\n    scrape_timeout: 6s\n";
    assert_eq!(
        fail(text),
        (
            4,
            21,
            r#"scrape timeout greater than scrape interval for scrape config with job name "prometheus""#
                .into()
        )
    );
    // Inherited interval: the global one.
    let text = "global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: j\n    scrape_timeout: 6s\n";
    assert_eq!(fail(text).0, 5);
    // Unset job timeout: min(global timeout, job interval).
    let c = parse("scrape_configs:\n  - job_name: j\n    scrape_interval: 3s\n").unwrap();
    assert_eq!(
        c.scrape_configs[0].scrape_timeout,
        PromDuration::from_secs(3)
    );
}

#[test]
fn s118_static_configs_errors() {
    assert_eq!(
        fail("scrape_configs:\n  - job_name: j\n    static_configs:\n      -\n"),
        (4, 8, "empty or null section in static_configs".into())
    );
    assert_eq!(
        fail("scrape_configs:\n  - job_name: j\n    static_configs:\n      - targets: ['http://bad']\n").2,
        r#""http://bad" is not a valid hostname"#
    );
    // With relabel rules the check moves to target creation.
    let c = parse(
        "scrape_configs:\n  - job_name: j\n    relabel_configs: [{target_label: x, replacement: y}]\n    static_configs:\n      - targets: ['http://bad']\n",
    );
    assert!(c.is_ok());
}

#[test]
fn s119_unknown_and_duplicate_keys() {
    assert_eq!(
        fail("scrape_configs:\n  - job_name: j\n    consult_sd_configs: []\n"),
        (
            3,
            5,
            "field consult_sd_configs not found in type config.plain".into()
        )
    );
    let (line, _, msg) = fail("scrape_configs: []\nscrape_configs: []\n");
    assert_eq!(msg, "field scrape_configs already set in type config.plain");
    assert!(line >= 1);
    let (line, col, msg) = fail(
        "scrape_configs:\n  - job_name: j\n    relabel_configs:\n      - action: keep\n        regexp: x\n",
    );
    assert_eq!((line, col), (5, 9));
    assert_eq!(msg, "field regexp not found in type relabel.plain");
    assert_eq!(
        fail("global:\n  scrape_intervall: 1s\n").2,
        "field scrape_intervall not found in type config.plain"
    );
}

#[test]
fn s120_body_size_limit_needs_unit() {
    let (line, col, msg) = fail("scrape_configs:\n  - job_name: j\n    body_size_limit: 100\n");
    assert_eq!((line, col), (3, 22));
    assert_eq!(msg, "units: unknown unit  in 100");
    let c = parse("scrape_configs:\n  - job_name: j\n    body_size_limit: 10MB\n").unwrap();
    assert_eq!(
        c.scrape_configs[0].limits.body_size_limit,
        ByteSize(10 << 20)
    );
}

#[test]
fn s121_http_sd_url_checks() {
    let base = "scrape_configs:\n  - job_name: j\n    http_sd_configs:\n      - url: ";
    assert_eq!(
        fail(&format!("{base}foo.com/sd\n")),
        (4, 9, "URL scheme must be 'http' or 'https'".into())
    );
    assert_eq!(
        fail(&format!("{base}ftp://x/sd\n")).2,
        "URL scheme must be 'http' or 'https'"
    );
    assert_eq!(
        fail(&format!("{base}http:///sd\n")).2,
        "host is missing in URL"
    );
    assert_eq!(
        fail(
            "scrape_configs:\n  - job_name: j\n    http_sd_configs:\n      - refresh_interval: 1m\n"
        )
        .2,
        "URL is missing"
    );
}

#[test]
fn bad_durations_are_placed() {
    let (line, col, msg) =
        fail("scrape_configs:\n  - job_name: j\n    scrape_interval: 2notseconds\n");
    assert_eq!((line, col), (3, 22));
    assert_eq!(
        msg,
        r#"unknown unit "notseconds" in duration "2notseconds""#
    );
    assert_eq!(
        fail("global:\n  scrape_interval: 1m1h\n").2,
        r#"not a valid duration string: "1m1h""#
    );
}

#[test]
fn bad_label_names_are_rejected() {
    assert_eq!(
        fail("global:\n  external_labels:\n    '': x\n").2,
        r#""" is not a valid label name"#
    );
    // Static label names are checked as `model.LabelName` decodes them, with the UTF-8
    // scheme Prometheus 3.x sets process-wide: under a legacy job `bad-name` loads (the
    // job's scheme applies to the scraped series), an empty name does not.
    let text = "global:\n  metric_name_validation_scheme: legacy\nscrape_configs:\n  - job_name: j\n    static_configs:\n      - targets: [a:1]\n        labels:\n          bad-name: x\n";
    parse(text).expect("bad-name is a valid UTF-8 label name");
    let (line, col, msg) = fail(&text.replace("bad-name", "''"));
    assert_eq!(msg, r#""" is not a valid label name"#);
    // The label's line (serde_yaml places the value).
    assert_eq!((line, col), (8, 15));
    assert_eq!(
        fail(
            "scrape_configs:\n  - job_name: j\n    relabel_configs:\n      - source_labels: ['']\n"
        )
        .2,
        r#""" is not a valid label name"#
    );
}

#[test]
fn null_sections_are_rejected() {
    assert_eq!(
        fail("scrape_configs:\n  -\n"),
        (2, 4, "empty or null scrape config section".into())
    );
    assert_eq!(
        fail("scrape_configs:\n  - job_name: j\n    relabel_configs:\n      -\n"),
        (
            4,
            8,
            "empty or null target relabeling rule in scrape config".into()
        )
    );
    assert_eq!(
        fail("scrape_configs:\n  - job_name: j\n    metric_relabel_configs: [null]\n").2,
        "empty or null metric relabeling rule in scrape config"
    );
    assert_eq!(
        fail("remote_write:\n  -\n").2,
        "empty or null remote write config section"
    );
}

#[test]
fn relabel_errors_are_placed_at_the_rule() {
    let text = "scrape_configs:\n  - job_name: j\n    relabel_configs:\n      - action: keep\n      - action: labelkeep\n        source_labels: [a]\n";
    assert_eq!(
        fail(text),
        (
            5,
            9,
            "labelkeep action requires only 'regex', and no other fields".into()
        )
    );
    let text = "scrape_configs:\n  - job_name: j\n    metric_relabel_configs:\n      - regex: 'abc(def'\n        target_label: x\n";
    let (line, _, msg) = fail(text);
    assert_eq!(line, 4);
    assert_eq!(msg, "error parsing regexp: missing closing ): `abc(def`");
}

#[test]
fn sd_block_errors() {
    let job = "scrape_configs:\n  - job_name: j\n";
    assert_eq!(
        fail(&format!("{job}    file_sd_configs:\n      - files: []\n")).2,
        "file service discovery config must contain at least one path name"
    );
    assert_eq!(
        fail(&format!(
            "{job}    file_sd_configs:\n      - files: ['a/*/b.json']\n"
        ))
        .2,
        r#"path name "a/*/b.json" is not valid for file discovery"#
    );
    assert_eq!(
        fail(&format!("{job}    dns_sd_configs:\n      - names: []\n")).2,
        "DNS-SD config must contain at least one SRV record name"
    );
    assert_eq!(
        fail(&format!(
            "{job}    dns_sd_configs:\n      - names: [x]\n        type: TXT\n"
        ))
        .2,
        "invalid DNS-SD records type TXT"
    );
    assert_eq!(
        fail(&format!(
            "{job}    dns_sd_configs:\n      - names: [x]\n        type: a\n"
        ))
        .2,
        "a port is required in DNS-SD configs for all record types except SRV"
    );
}

#[test]
fn http_client_errors() {
    let job = "scrape_configs:\n  - job_name: j\n";
    assert_eq!(
        fail(&format!(
            "{job}    bearer_token: a\n    bearer_token_file: b\n"
        ))
        .2,
        "at most one of bearer_token & bearer_token_file must be configured"
    );
    assert_eq!(
        fail(&format!(
            "{job}    bearer_token: a\n    basic_auth: {{username: u}}\n"
        ))
        .2,
        "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"
    );
    assert_eq!(
        fail(&format!(
            "{job}    authorization: {{type: Basic, credentials: x}}\n"
        ))
        .2,
        r#"authorization type cannot be set to "basic", use "basic_auth" instead"#
    );
    assert_eq!(
        fail(&format!("{job}    tls_config: {{cert_file: c.pem}}\n")).2,
        "exactly one of key or key_file must be configured when a client certificate is configured"
    );
}

#[test]
fn scrape_protocol_errors() {
    let job = "scrape_configs:\n  - job_name: j\n";
    assert_eq!(
        fail(&format!("{job}    scrape_protocols: [prometheusproto]\n")).2,
        r#"scrape_protocols: unknown scrape protocol prometheusproto, supported: [OpenMetricsText0.0.1 OpenMetricsText1.0.0 PrometheusProto PrometheusText0.0.4 PrometheusText1.0.0] for scrape config with job name "j""#
    );
    assert_eq!(
        fail(&format!(
            "{job}    scrape_protocols: [PrometheusProto, PrometheusProto]\n"
        ))
        .2,
        r#"duplicated protocol in scrape_protocols, got [PrometheusProto PrometheusProto] for scrape config with job name "j""#
    );
    assert_eq!(
        fail(&format!("{job}    scrape_protocols: []\n")).2,
        "scrape_protocols cannot be empty"
    );
    assert_eq!(
        fail(&format!("{job}    metric_name_validation_scheme: legacy\n    metric_name_escaping_scheme: allow-utf-8\n")).2,
        "utf8 metric names requested but validation scheme is not set to UTF8"
    );
}

#[test]
fn yaml11_booleans_and_merge_keys() {
    let text = r#"
scrape_configs:
  - job_name: base
    honor_labels: yes
    honor_timestamps: off
    scrape_interval: 15s
    params: &p
      module: [http_2xx]
    static_configs:
      - targets: ['a:1']
  - &defaults
    job_name: second
    scrape_interval: 30s
    metrics_path: /probe
  - <<: *defaults
    job_name: third
    enable_compression: No
"#;
    let c = parse(text).unwrap();
    assert!(c.scrape_configs[0].honor_labels);
    assert!(!c.scrape_configs[0].honor_timestamps);
    let third = c.job("third").unwrap();
    assert_eq!(third.scrape_interval, PromDuration::from_secs(30));
    assert_eq!(third.metrics_path, "/probe");
    assert!(!third.enable_compression);
    // Errors inside a document that uses merge keys are still placed.
    let bad =
        "scrape_configs:\n  - &d\n    job_name: a\n  - <<: *d\n    job_name: b\n    bogus: 1\n";
    let (line, _, msg) = fail(bad);
    assert_eq!(msg, "field bogus not found in type config.plain");
    assert!((4..=6).contains(&line), "line {line}");
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let text = r#"
scrape_configs:
  - job_name: j
    bearer_token_file: secrets/token
    tls_config:
      ca_file: ../ca.pem
    file_sd_configs:
      - files: ['targets/*.json', '/abs/x.yml']
"#;
    let c = parse(text).unwrap();
    let j = &c.scrape_configs[0];
    assert_eq!(
        j.http_client
            .authorization
            .as_ref()
            .unwrap()
            .credentials_file,
        "/etc/prometheus/secrets/token"
    );
    assert_eq!(j.http_client.tls_config.ca_file, "/etc/ca.pem");
    let Some(f) = j.sd_configs[0].get::<crate::config::FileSdConfig>() else {
        panic!("file sd")
    };
    assert_eq!(
        f.files,
        vec!["/etc/prometheus/targets/*.json", "/abs/x.yml"]
    );
    assert_eq!(f.refresh_interval, PromDuration::from_secs(300));
}

#[test]
fn secrets_are_never_printed() {
    let text = "scrape_configs:\n  - job_name: j\n    basic_auth: {username: u, password: hunter2}\nremote_write:\n  - url: http://rw:1/api\n    authorization: {credentials: tok3n}\n";
    let c = parse(text).unwrap();
    let dump = format!("{c:?}");
    assert!(
        !dump.contains("hunter2") && !dump.contains("tok3n"),
        "{dump}"
    );
    assert!(dump.contains("<secret>"));
    assert_eq!(
        c.scrape_configs[0]
            .http_client
            .basic_auth
            .as_ref()
            .unwrap()
            .password
            .expose(),
        "hunter2"
    );
}

#[test]
fn ignored_sections_are_reported() {
    // (A tracing block needs an endpoint: 3.x refuses `tracing: {}`.)
    let text = "rule_files: [a.yml]\nalerting:\n  alertmanagers: []\nremote_read:\n  - url: http://x\nstorage:\n  tsdb: {}\ntracing: {endpoint: localhost:4317}\n";
    let c = parse(text).unwrap();
    assert_eq!(
        c.ignored_sections,
        vec![
            "rule_files",
            "alerting",
            "remote_read",
            "storage",
            "tracing"
        ]
    );
}

#[test]
fn external_labels_expand_environment() {
    let c = parse(
        "global:\n  external_labels:\n    region: ${REGION}\n    cost: $$5\n    missing: a$NOPE\n",
    )
    .unwrap();
    assert_eq!(c.global.external_labels.get("region"), Some("eu-1"));
    assert_eq!(c.global.external_labels.get("cost"), Some("$5"));
    assert_eq!(c.global.external_labels.get("missing"), Some("a"));
}

#[test]
fn sd_order_is_prometheus_order_with_statics_coalesced_last() {
    let text = r#"
scrape_configs:
  - job_name: j
    static_configs:
      - targets: [a:1]
      - targets: [b:1, c:1]
        labels: {x: y}
    http_sd_configs:
      - url: http://sd/1
    file_sd_configs:
      - files: [a.json]
    dns_sd_configs:
      - names: [_x._tcp.example]
"#;
    let c = parse(text).unwrap();
    let j = &c.scrape_configs[0];
    let kinds: Vec<&str> = j.sd_configs.iter().map(|s| s.mechanism()).collect();
    assert_eq!(kinds, vec!["dns", "file", "http", "static"]);
    let Some(groups) = j.sd_configs[3].static_groups() else {
        panic!()
    };
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[1].source, "1");
    assert_eq!(groups[1].targets.len(), 2);
    assert_eq!(groups[1].labels.get("x"), Some("y"));
    assert!(j.unsupported_sd.is_empty());
}

/// One minimal valid block of each of the 37 kinds Prometheus 3.x registers, written in
/// no particular order: all load, the ones trawl does not run are reported, and the
/// blocks come in Prometheus's order (keys sorted, the coalesced statics last).
#[test]
fn every_registered_sd_kind_loads_in_prometheus_order() {
    let blocks = [
        ("vultr_sd_configs", "{}"),
        ("static_configs", "{targets: ['a:1']}"),
        ("aws_sd_configs", "{role: ec2}"),
        ("kubernetes_sd_configs", "{role: pod}"),
        (
            "azure_sd_configs",
            "{subscription_id: s, authentication_method: ManagedIdentity}",
        ),
        ("consul_sd_configs", "{}"),
        ("digitalocean_sd_configs", "{}"),
        ("dns_sd_configs", "{names: [x]}"),
        ("docker_sd_configs", "{host: 'unix:///var/run/docker.sock'}"),
        (
            "dockerswarm_sd_configs",
            "{host: 'unix:///var/run/docker.sock', role: nodes}",
        ),
        ("ec2_sd_configs", "{}"),
        ("ecs_sd_configs", "{}"),
        ("elasticache_sd_configs", "{}"),
        ("eureka_sd_configs", "{server: 'http://eureka:8761'}"),
        ("file_sd_configs", "{files: [a.json]}"),
        ("gce_sd_configs", "{project: p, zone: z}"),
        ("hetzner_sd_configs", "{role: hcloud}"),
        ("http_sd_configs", "{url: 'http://sd/targets'}"),
        ("ionos_sd_configs", "{datacenter_id: d}"),
        ("kuma_sd_configs", "{server: 'http://kuma:5676'}"),
        ("lightsail_sd_configs", "{}"),
        ("linode_sd_configs", "{}"),
        ("marathon_sd_configs", "{servers: ['http://m:8080']}"),
        ("msk_sd_configs", "{}"),
        (
            "nerve_sd_configs",
            "{servers: ['zk:2181'], paths: [/nerve]}",
        ),
        ("nomad_sd_configs", "{}"),
        ("oci_sd_configs", "{region: r, auth: instance_principal}"),
        ("openstack_sd_configs", "{role: instance, region: r}"),
        ("outscale_sd_configs", "{access_key: a, secret_key: s}"),
        (
            "ovhcloud_sd_configs",
            "{application_key: k, application_secret: s, consumer_key: c, service: vps}",
        ),
        (
            "puppetdb_sd_configs",
            "{url: 'http://puppetdb:8080', query: q}",
        ),
        ("rds_sd_configs", "{}"),
        (
            "scaleway_sd_configs",
            "{role: instance, project_id: 11111111-2222-3333-4444-555555555555, access_key: SCWABCDEFGHIJ0123456, secret_key: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee}",
        ),
        (
            "serverset_sd_configs",
            "{servers: ['zk:2181'], paths: [/serverset]}",
        ),
        ("stackit_sd_configs", "{}"),
        (
            "triton_sd_configs",
            "{account: a, dns_suffix: d, endpoint: e}",
        ),
        (
            "uyuni_sd_configs",
            "{server: 'https://uyuni', username: u, password: p}",
        ),
    ];
    assert_eq!(blocks.len(), 37);
    let mut text = String::from("scrape_configs:\n  - job_name: j\n");
    for (key, block) in blocks {
        text.push_str(&format!("    {key}:\n      - {block}\n"));
    }
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let j = &c.scrape_configs[0];

    let mut keys: Vec<&str> = blocks.iter().map(|(k, _)| *k).collect();
    keys.sort_unstable();
    let registered: Vec<&str> = crate::discovery::registry::MECHANISMS
        .iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(registered, keys, "the 37 keys of Prometheus 3.x, sorted");

    let mut order: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| *k != "static_configs")
        .collect();
    order.push("static_configs");
    let got: Vec<&str> = j.sd_configs.iter().map(|s| s.key()).collect();
    assert_eq!(got, order);

    let not_run: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| {
            !matches!(
                *k,
                // `aws_sd_configs` here has `role: ec2`, which runs.
                "aws_sd_configs"
                    | "consul_sd_configs"
                    | "digitalocean_sd_configs"
                    | "dns_sd_configs"
                    | "docker_sd_configs"
                    | "ec2_sd_configs"
                    | "dockerswarm_sd_configs"
                    | "eureka_sd_configs"
                    | "file_sd_configs"
                    | "hetzner_sd_configs"
                    | "lightsail_sd_configs"
                    | "http_sd_configs"
                    | "ionos_sd_configs"
                    | "kubernetes_sd_configs"
                    | "linode_sd_configs"
                    | "marathon_sd_configs"
                    | "nerve_sd_configs"
                    | "nomad_sd_configs"
                    | "puppetdb_sd_configs"
                    | "scaleway_sd_configs"
                    | "serverset_sd_configs"
                    | "static_configs"
                    | "vultr_sd_configs"
            )
        })
        .collect();
    assert_eq!(not_run.len(), 14);
    assert_eq!(j.unsupported_sd, not_run);
}

#[test]
fn limits_inherit_from_global() {
    let text = "global:\n  sample_limit: 100\n  body_size_limit: 1MB\n  keep_dropped_targets: 7\nscrape_configs:\n  - job_name: a\n  - job_name: b\n    sample_limit: 5\n";
    let c = parse(text).unwrap();
    assert_eq!(c.scrape_configs[0].limits.sample_limit, 100);
    assert_eq!(c.scrape_configs[0].limits.keep_dropped_targets, 7);
    assert_eq!(c.scrape_configs[1].limits.sample_limit, 5);
    assert_eq!(
        c.scrape_configs[1].limits.body_size_limit,
        ByteSize(1 << 20)
    );
}

#[test]
fn error_display_names_file_line_and_column() {
    let e = parse("scrape_configs:\n  - job_name: j\n    scrape_timeout: 2m\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"prometheus.yml:3:21: scrape_configs[0].scrape_timeout: scrape timeout greater than scrape interval for scrape config with job name "j""#
    );
    let e = parse("scrape_configs:\n  - job_name: [unclosed\n").unwrap_err();
    assert!(e.line.is_some(), "{e}");
}

/// A configuration using every option trawl models loads, and the values arrive.
#[test]
fn every_option_loads() {
    let text = include_str!("../../tests/data/every-option.yml");
    let c = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let g = &c.global;
    assert_eq!(g.scrape_interval, PromDuration::from_secs(15));
    assert_eq!(g.scrape_timeout, PromDuration::from_secs(5));
    assert_eq!(g.external_labels.get("replica"), Some("a"));
    assert_eq!(g.limits.label_limit, 64);
    assert_eq!(g.limits.keep_dropped_targets, 100);
    assert_eq!(
        g.scrape_protocols,
        vec![ScrapeProtocol::PrometheusText0_0_4]
    );
    let j = c.job("everything").unwrap();
    assert_eq!(j.metrics_path, "/custom");
    assert_eq!(j.scheme, "https");
    assert_eq!(j.params["module"], vec!["http_2xx".to_owned()]);
    assert!(j.honor_labels && !j.honor_timestamps && j.track_timestamps_staleness);
    assert_eq!(j.scrape_interval, PromDuration::from_secs(30));
    assert_eq!(j.scrape_timeout, PromDuration::from_secs(20));
    assert_eq!(
        j.scrape_protocols,
        vec![
            ScrapeProtocol::OpenMetricsText1_0_0,
            ScrapeProtocol::PrometheusText0_0_4
        ]
    );
    assert_eq!(
        j.fallback_scrape_protocol,
        Some(ScrapeProtocol::PrometheusText0_0_4)
    );
    assert!(!j.enable_compression);
    assert_eq!(j.limits.sample_limit, 1000);
    assert_eq!(j.limits.target_limit, 50);
    assert_eq!(j.limits.label_limit, 30);
    assert_eq!(j.limits.label_name_length_limit, 200);
    assert_eq!(j.limits.label_value_length_limit, 1024);
    assert_eq!(j.limits.body_size_limit, ByteSize(50 << 20));
    assert_eq!(j.relabel_configs.len(), 11);
    assert_eq!(j.metric_relabel_configs.len(), 1);
    assert!(!j.http_client.follow_redirects);
    assert_eq!(j.http_client.proxy_url, "http://proxy:3128");
    assert!(j.http_client.tls_config.insecure_skip_verify.0);
    assert_eq!(j.http_client.tls_config.server_name, "example.internal");
    assert_eq!(j.sd_configs.len(), 5);
    let a = c.job("authz").unwrap();
    let auth = a.http_client.authorization.as_ref().unwrap();
    assert_eq!(auth.kind, "Bearer");
    assert_eq!(auth.credentials.expose(), "t0ken");
    let rw = &c.remote_write[0];
    assert_eq!(rw.url, "https://vm.example:8428/api/v1/write");
    assert_eq!(rw.headers["X-Scope-OrgID"], "tenant-1");
    assert_eq!(rw.queue_config.max_shards, 10);
    assert_eq!(
        rw.queue_config.batch_send_deadline,
        PromDuration::from_secs(10)
    );
    assert_eq!(rw.write_relabel_configs.len(), 1);
    assert_eq!(
        rw.http_client.basic_auth.as_ref().unwrap().username,
        "writer"
    );
    assert_eq!(c.ignored_sections, vec!["rule_files", "alerting"]);
}

#[test]
fn join_dir_and_clean() {
    assert_eq!(join_dir("/etc/p", "a/../b/./c.json"), "/etc/p/b/c.json");
    assert_eq!(join_dir("/etc/p", "/x"), "/x");
    assert_eq!(join_dir("/etc/p", ""), "");
    assert_eq!(join_dir(".", "x.yml"), "x.yml");
    assert_eq!(join_dir("rel", "../../x"), "../x");
    assert_eq!(
        ParseOptions::for_path("/etc/prometheus/p.yml").base_dir,
        "/etc/prometheus"
    );
    assert_eq!(ParseOptions::for_path("p.yml").base_dir, ".");
}

/// Issue 16, defect 6: a URL whose port is not a number is refused as Go's `url.Parse`
/// refuses it (Prometheus fails to load such a configuration), with the password
/// hidden; ports that are numbers, empty, or follow an IPv6 address pass.
#[test]
fn urls_with_invalid_ports_are_refused() {
    let (line, _, msg) = fail("remote_write:\n  - url: http://u:pw@rw:abc/api/v1/write\n");
    assert_eq!(line, 2);
    assert_eq!(
        msg,
        r#"parse "http://u:xxxxx@rw:abc/api/v1/write": invalid port ":abc" after host"#
    );
    let msg =
        fail("scrape_configs:\n  - job_name: j\n    http_sd_configs: [{url: 'http://h:9x/'}]\n").2;
    assert!(msg.contains(r#"invalid port ":9x" after host"#), "{msg}");
    for ok in [
        "http://rw:9201/w",
        "http://rw/w",
        "http://rw:/w",
        "http://[::1]:9201/w",
    ] {
        parse(&format!("remote_write:\n  - url: '{ok}'\n")).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

/// Issue 17 (§2): remote write's `queue_config` is checked as 3.x's
/// `QueueConfig.Validate` checks it, with its messages.
#[test]
fn queue_config_limits_are_checked_as_in_3x() {
    let q = |body: &str| {
        fail(&format!(
            "remote_write:\n  - url: http://rw:9201/w\n    queue_config: {{{body}}}\n"
        ))
    };
    for (body, msg) in [
        (
            "max_shards: 0",
            "remote write queue max_shards must be positive",
        ),
        (
            "min_shards: 0",
            "remote write queue min_shards must be positive",
        ),
        (
            "min_shards: 5, max_shards: 4",
            "remote write queue min_shards must not be greater than max_shards",
        ),
        (
            "max_samples_per_send: 0",
            "remote write queue max_samples_per_send must be positive",
        ),
        (
            "capacity: 0",
            "remote write queue capacity must be positive",
        ),
        (
            "min_backoff: 10s, max_backoff: 1s",
            "remote write queue max_backoff must not be less than min_backoff",
        ),
    ] {
        let (line, _, m) = q(body);
        assert_eq!((line, m.as_str()), (2, msg), "{body}");
    }
    parse("remote_write:\n  - url: http://rw:9201/w\n    queue_config: {min_shards: 4, max_shards: 4, capacity: 1}\n")
        .expect("valid limits");
}

/// Issue 17 (§2): a `!!binary` scalar is the text it encodes, as Go's yaml.v2 decodes it
/// into a string (`/metrics` from `L21ldHJpY3M=`); one that is not base64 is refused.
#[test]
fn binary_scalars_decode_as_in_prometheus() {
    let c = parse("scrape_configs:\n  - job_name: !!binary YQ==\n    metrics_path: !!binary |\n      L21l\n      dHJpY3M=\n").unwrap();
    assert_eq!(&*c.scrape_configs[0].job_name, "a");
    assert_eq!(c.scrape_configs[0].metrics_path, "/metrics");
    let e = parse("scrape_configs:\n  - job_name: !!binary 'not base64!'\n").unwrap_err();
    assert!(
        e.message
            .contains("!!binary value contains invalid base64 data"),
        "{e}"
    );
    // The tag's name inside a string stays as written.
    let c = parse(
        "scrape_configs:\n  - job_name: '!!binary'\n    metrics_path: !!binary L21ldHJpY3M=\n",
    )
    .unwrap();
    assert_eq!(&*c.scrape_configs[0].job_name, "!!binary");
    assert_eq!(crate::bytes::base64_decode("aGk="), Some(b"hi".to_vec()));
    assert_eq!(crate::bytes::base64_decode("aGk"), None);
    // Bytes that are not UTF-8: 3.x refuses them as a label name or value
    // (config/testdata/labelname.bad.yml, labelvalue.bad.yml); trawl everywhere.
    for yaml in [
        "global:\n  external_labels:\n    !!binary \"/w==\": a\n",
        "global:\n  external_labels:\n    a: !!binary \"Yf8=\"\n",
    ] {
        let e = parse(yaml).unwrap_err();
        assert!(e.message.contains("is not valid UTF-8"), "{e}");
    }
    let e = parse("global:\n  external_labels:\n    a: !!binary \"Yf8=\"\n").unwrap_err();
    assert!(e.message.contains(r#""a\xff""#), "{e}");
}

/// Issue 17 (§2): `oauth2` and the secret references as prometheus/common v0.70 has
/// them (`HTTPClientConfig.Validate`, `TLSConfig.Validate`), loaded like 3.x loads
/// them and reported as not acted on.
#[test]
fn oauth2_and_secret_refs_as_common_v0_70() {
    let job = |http: &str| format!("scrape_configs:\n  - job_name: j\n    {http}\n");
    let jwt = "oauth2: {client_id: i, token_url: 'http://t/', grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', client_certificate_key_id: k, client_certificate_key_file: key.pem, signature_algorithm: RS384, iss: me, audience: you, claims: {a: 1, b: [x]}}";
    let c = parse(&job(jwt)).unwrap();
    let o = c.scrape_configs[0].http_client.oauth2.as_ref().unwrap();
    assert_eq!(o.client_certificate_key_file, "/etc/prometheus/key.pem");
    assert_eq!(o.claims.len(), 2);
    let w = c.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("job \"j\": oauth2 is validated"), "{w:?}");
    for (http, msg) in [
        (
            "oauth2: {client_id: i, token_url: u, grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', client_certificate_key: k, client_certificate_key_ref: r}",
            "at most one of oauth2 client_certificate_key, client_certificate_key_file & client_certificate_key_ref must be configured using grant-type=urn:ietf:params:oauth:grant-type:jwt-bearer",
        ),
        (
            "oauth2: {client_id: i, token_url: u, grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', signature_algorithm: HS256}",
            "valid signature algorithms are RS256, RS384 and RS512",
        ),
        (
            "oauth2: {client_id: i, token_url: u, client_secret: s, client_secret_ref: r}",
            "at most one of oauth2 client_secret, client_secret_file & client_secret_ref must be configured using grant-type=client_credentials",
        ),
        (
            "basic_auth: {username: u, password: p, password_ref: r}",
            "at most one of basic_auth password, password_file & password_ref must be configured",
        ),
        (
            "authorization: {credentials: c, credentials_ref: r}",
            "at most one of authorization credentials & credentials_file must be configured",
        ),
        (
            "tls_config: {ca_file: a, ca_ref: r}",
            "at most one of ca, ca_file & ca_ref must be configured",
        ),
        (
            "tls_config: {cert_ref: c}",
            "exactly one of key or key_file must be configured when a client certificate is configured",
        ),
    ] {
        let e = parse(&job(http)).unwrap_err();
        assert!(e.message.contains(msg), "{http}: {e}");
    }
    // A signature algorithm only matters for the JWT grant (3.x checks it only there).
    parse(&job(
        "oauth2: {client_id: i, token_url: u, signature_algorithm: HS256}",
    ))
    .unwrap();
    let c = parse(&job(
        "basic_auth: {username: u, password_ref: r}\n    tls_config: {cert_ref: c, key_ref: k}",
    ))
    .unwrap();
    let w = c.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("password_ref, cert_ref, key_ref name secrets in a secret manager"),
        "{w:?}"
    );
}

/// Issue 17 (§2): a remote-write URL is checked as Go's `url.Parse` checks it, no more
/// (3.x's `config.URL`): `localhost:9090` loads
/// (config/testdata/remote_write_retry_on_rate_limit.good.yml), with a warning that no
/// request can go there; what `url.Parse` refuses is refused.
#[test]
fn remote_write_urls_as_3x() {
    let c = parse("remote_write:\n  - url: localhost:9090\n").unwrap();
    assert_eq!(c.remote_write[0].url, "localhost:9090");
    let w = c.warnings();
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with("remote_write[0]: url \"localhost:9090\" has no http or https scheme")
            && w[0].contains(r#"(unsupported protocol scheme "localhost")"#),
        "{w:?}"
    );
    assert!(
        parse("remote_write:\n  - url: http://h:9090/api/v1/write\n")
            .unwrap()
            .warnings()
            .is_empty()
    );
    let e = parse("remote_write:\n  - url: 'http://h:port/'\n").unwrap_err();
    assert!(
        e.message.contains("invalid port \":port\" after host"),
        "{e}"
    );
}

/// Issue 17 (§2): remote-write headers as 3.14's `validateHeaders` checks them (its
/// reserved list, `Authorization` with its own message), and the protobuf message with
/// 3.x's words (config/testdata/remote_write_*.bad.yml).
#[test]
fn remote_write_headers_and_message_as_3_14() {
    let rw = |extra: &str| format!("remote_write:\n  - url: http://h/w\n    {extra}\n");
    for (extra, msg) in [
        (
            "headers: {Authorization: x}",
            "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter",
        ),
        (
            "headers: {X-Prometheus-Remote-Write-Version: '2'}",
            "X-Prometheus-Remote-Write-Version is a reserved header. It must not be changed",
        ),
        (
            "headers: {Connection: close}",
            "Connection is a reserved header. It must not be changed",
        ),
        (
            "headers: {X-Amz-Date: x}",
            "X-Amz-Date is a reserved header. It must not be changed",
        ),
        (
            "protobuf_message: io.prometheus.writet.v2.Request",
            "invalid protobuf_message value: unknown type for remote write protobuf message io.prometheus.writet.v2.Request, supported: prometheus.WriteRequest, io.prometheus.write.v2.Request",
        ),
    ] {
        let e = parse(&rw(extra)).unwrap_err();
        assert!(e.message.contains(msg), "{extra}: {e}");
    }
    // Not reserved in 3.14.
    parse(&rw(
        "headers: {X-Prometheus-Remote-Write-Tenant: a, X-Scope-OrgID: b}",
    ))
    .unwrap();
}

/// Native histograms scraped by a job but not sent by a remote write are said (3.x
/// drops them silently); the settings themselves are acted on.
#[test]
fn native_histograms_a_remote_write_will_not_send_are_reported() {
    let c = parse(
        "global: {scrape_native_histograms: true}\nremote_write:\n  - url: http://127.0.0.1:1/w\n  - url: http://127.0.0.1:2/w\n    send_native_histograms: true\nscrape_configs:\n  - job_name: j\n    convert_classic_histograms_to_nhcb: true\n  - job_name: k\n    scrape_native_histograms: false\n",
    )
    .unwrap();
    let w = c.warnings();
    assert_eq!(
        w,
        vec![
            "job \"j\": native histograms are scraped, but remote_write \"http://127.0.0.1:1/w\" has send_native_histograms: false and will not send them"
        ]
    );
    assert!(c.scrape_configs[0].scrape_native_histograms);
    assert!(c.scrape_configs[0].convert_classic_histograms_to_nhcb);
    assert!(!c.scrape_configs[1].scrape_native_histograms);
}

#[test]
fn docker_client_options_on_socket_hosts_are_reported() {
    let c = parse(
        "scrape_configs:\n  - job_name: d\n    docker_sd_configs: [{host: 'unix:///run/docker.sock', bearer_token: t}, {host: 'https://d:2376', bearer_token: t}]\n  - job_name: s\n    dockerswarm_sd_configs: [{host: 'tcp://m:2375', role: nodes, tls_config: {insecure_skip_verify: true}}, {host: 'https://m', role: nodes, oauth2: {client_id: c, client_secret: s, token_url: 'http://t'}}]\n",
    )
    .unwrap();
    let w = c.warnings();
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(
        w[0].starts_with(
            "job \"d\": docker_sd_configs: host \"unix:///run/docker.sock\" is not an http(s) URL"
        ),
        "{w:?}"
    );
    assert!(
        w[1].starts_with("job \"s\": dockerswarm_sd_configs: host \"tcp://m:2375\""),
        "{w:?}"
    );
    assert!(
        w[2].starts_with("job \"s\": dockerswarm_sd_configs: oauth2 is validated"),
        "{w:?}"
    );
}

/// Issue 23: `remote_write`'s `sigv4` block decodes and validates as
/// `github.com/prometheus/sigv4`'s `SigV4Config` does, one authentication at most
/// (3.x's `validateAuthConfigs`), and what trawl cannot do yet (assuming a role) is
/// refused with the reason, never ignored.
#[test]
fn remote_write_sigv4_as_3_x() {
    let rw = |extra: &str| format!("remote_write:\n  - url: http://h/w\n    {extra}\n");
    let c = parse(&rw(
        "sigv4: {region: eu-west-1, access_key: AK, secret_key: SK, service_name: aps}",
    ))
    .expect("valid");
    let s = c.remote_write[0].sigv4.as_ref().expect("sigv4");
    assert_eq!(
        (
            s.region.as_str(),
            s.access_key.as_str(),
            s.secret_key.expose()
        ),
        ("eu-west-1", "AK", "SK")
    );
    assert!(!format!("{s:?}").contains("SK\""), "the secret never shows");
    // An empty block signs with the default chain; a null one is no block.
    assert!(
        parse(&rw("sigv4: {}")).expect("valid").remote_write[0]
            .sigv4
            .is_some()
    );
    assert!(
        parse(&rw("sigv4:")).expect("valid").remote_write[0]
            .sigv4
            .is_none()
    );
    for (extra, msg) in [
        (
            "sigv4: {access_key: AK}",
            "must provide a AWS SigV4 Access key and Secret Key if credentials are specified in the SigV4 config",
        ),
        (
            "sigv4: {external_id: x}",
            "external_id can only be used with role_arn",
        ),
        (
            "sigv4: {regoin: x}",
            "field regoin not found in type sigv4.plain",
        ),
        (
            "sigv4: {role_arn: 'arn:aws:iam::1:role/r'}",
            "sigv4: role_arn (assuming a role through STS) is not supported by trawl yet",
        ),
        (
            "sigv4: {}\n    basic_auth: {username: u, password: p}",
            "at most one of basic_auth, authorization, oauth2, sigv4, azuread or google_iam must be configured. Currently configured: [basic_auth sigv4]",
        ),
        (
            "azuread: {cloud: AzurePublic}",
            "azuread authentication is not supported by trawl",
        ),
    ] {
        let e = parse(&rw(extra)).unwrap_err();
        assert!(e.message.contains(msg), "{extra}: {e}");
    }
}
