//! Amazon Web Services discovery: `ec2_sd_configs`, `ecs_sd_configs`,
//! `elasticache_sd_configs`, `lightsail_sd_configs`, `msk_sd_configs` and
//! `rds_sd_configs` list instances, tasks, cache nodes, brokers or databases through the
//! AWS APIs every `refresh_interval`; `aws_sd_configs` is the generic block whose `role`
//! selects one of them. Validation follows 3.x's `discovery/aws` (`SDConfig`,
//! `EC2SDConfig`, `ECSSDConfig`, `ElasticacheSDConfig`, `LightsailSDConfig`,
//! `MSKSDConfig` and `RDSSDConfig`, each `UnmarshalYAML` and `SetDirectory`).
//!
//! trawl runs EC2 ([`ec2`]: `ec2_sd_configs`, and `aws_sd_configs` with `role: ec2`)
//! and Lightsail ([`lightsail`]: `lightsail_sd_configs`, `role: lightsail`); it
//! validates the other roles' blocks but does not run them yet. Nor does it run a
//! block with a `role_arn`: assuming a role needs STS, which trawl does not speak yet;
//! such a block is reported (at load, by `trawl check config`, in
//! `prometheus_sd_failed_configs`) with that reason, and its job keeps its other
//! blocks.

pub(crate) mod ec2;
pub(crate) mod lightsail;

use serde::Deserialize;

use super::mechanism::{
    Invalid, MachineContext, Mechanism, RawFilter, SdContext, SdFilter, SdMachine, at, filters,
    go_enum, texts,
};
use crate::common::http::HttpClientConfig;
use crate::common::http::{Secret, with_http_client};
use crate::common::yaml::{LenientString, Nullable, Path};
use crate::duration::PromDuration;

/// Port and refresh interval every role-specific block starts from.
const DEFAULT_PORT: i64 = 80;
const DEFAULT_REFRESH: PromDuration = PromDuration::from_secs(60);

go_enum! {
    /// `role` of `aws_sd_configs`.
    pub struct AwsRole: ["ec2", "ecs", "elasticache", "lightsail", "msk", "rds"]
        else "unknown AWS SD role {}";
}

/// What every AWS block holds: where and as whom to call the API, and how often.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsSettings {
    /// The region (empty: from the environment or the instance metadata at run time).
    pub region: String,
    /// A custom API endpoint.
    pub endpoint: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: Secret,
    /// Named profile of the shared credentials file.
    pub profile: String,
    /// Role to assume.
    pub role_arn: String,
    /// External id when assuming the role.
    pub external_id: String,
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// Client options of the API calls.
    pub http_client: HttpClientConfig,
}

/// Declares the raw struct of an AWS block: the fields all of them share, the block's
/// own, and the HTTP client options.
macro_rules! aws_block {
    ($(#[$m:meta])* struct $name:ident { $($extra:tt)* }) => {
        with_http_client! {
            $(#[$m])*
            #[derive(Clone, Debug, Default, Deserialize)]
            #[serde(deny_unknown_fields)]
            pub(crate) struct $name {
                #[serde(default)]
                region: LenientString,
                #[serde(default)]
                endpoint: LenientString,
                #[serde(default)]
                access_key: LenientString,
                #[serde(default)]
                secret_key: Secret,
                #[serde(default)]
                profile: LenientString,
                #[serde(default)]
                role_arn: LenientString,
                #[serde(default)]
                external_id: LenientString,
                #[serde(default)]
                refresh_interval: Nullable<PromDuration>,
                #[serde(default)]
                port: Nullable<i64>,
                $($extra)*
            }
        }

        impl $name {
            /// The shared fields with the role-specific defaults applied.
            fn settings(&mut self, http_client: HttpClientConfig) -> AwsSettings {
                AwsSettings {
                    region: std::mem::take(&mut self.region.0),
                    endpoint: std::mem::take(&mut self.endpoint.0),
                    access_key: std::mem::take(&mut self.access_key.0),
                    secret_key: std::mem::take(&mut self.secret_key),
                    profile: std::mem::take(&mut self.profile.0),
                    role_arn: std::mem::take(&mut self.role_arn.0),
                    external_id: std::mem::take(&mut self.external_id.0),
                    refresh_interval: std::mem::take(&mut self.refresh_interval)
                        .onto(DEFAULT_REFRESH),
                    port: std::mem::take(&mut self.port).onto(DEFAULT_PORT),
                    http_client,
                }
            }
        }
    };
}

aws_block! {
    /// `ec2_sd_configs` entry as written.
    struct RawEc2 {
        #[serde(default)]
        filters: Option<Vec<Option<RawFilter>>>,
    }
}

aws_block! {
    /// `ecs_sd_configs`, `elasticache_sd_configs` and `msk_sd_configs` entries as
    /// written.
    struct RawClusters {
        #[serde(default)]
        clusters: Option<Vec<LenientString>>,
        #[serde(default)]
        request_concurrency: Nullable<i64>,
    }
}

aws_block! {
    /// `lightsail_sd_configs` entry as written.
    struct RawLightsail {}
}

aws_block! {
    /// `rds_sd_configs` entry as written.
    struct RawRds {
        #[serde(default)]
        clusters: Option<Vec<LenientString>>,
        #[serde(default)]
        filters: Option<Vec<Option<RawFilter>>>,
        #[serde(default)]
        request_concurrency: Nullable<i64>,
    }
}

aws_block! {
    /// `aws_sd_configs` entry as written (no defaults: unset fields keep the role's).
    struct RawAws {
        #[serde(default)]
        role: Option<AwsRole>,
        #[serde(default)]
        filters: Option<Vec<Option<RawFilter>>>,
        #[serde(default)]
        clusters: Option<Vec<LenientString>>,
    }
}

/// EC2 instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ec2SdConfig {
    /// Region, credentials, refresh, port and client options.
    pub aws: AwsSettings,
    /// `DescribeInstances` filters.
    pub filters: Vec<SdFilter>,
}

/// ECS tasks, ElastiCache nodes or MSK brokers: a block with `clusters` and a request
/// concurrency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClustersSdConfig {
    /// Region, credentials, refresh, port and client options.
    pub aws: AwsSettings,
    /// Clusters to list (all when empty).
    pub clusters: Vec<String>,
    /// Most API requests in flight (default 20 for ECS, 10 for the others).
    pub request_concurrency: i64,
}

/// ECS tasks.
pub type EcsSdConfig = ClustersSdConfig;
/// ElastiCache cache nodes.
pub type ElasticacheSdConfig = ClustersSdConfig;
/// MSK brokers.
pub type MskSdConfig = ClustersSdConfig;

/// Lightsail instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LightsailSdConfig {
    /// Region, credentials, refresh, port and client options.
    pub aws: AwsSettings,
}

/// RDS database instances and clusters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RdsSdConfig {
    /// Region, credentials, refresh, port and client options.
    pub aws: AwsSettings,
    /// Clusters to list (all when empty).
    pub clusters: Vec<String>,
    /// `DescribeDBInstances` filters.
    pub filters: Vec<SdFilter>,
    /// Most API requests in flight (default 10).
    pub request_concurrency: i64,
}

/// `aws_sd_configs`: the role's block, built from the role's defaults and what the
/// generic block sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AwsSdConfig {
    /// `role: ec2`.
    Ec2(Ec2SdConfig),
    /// `role: ecs`.
    Ecs(EcsSdConfig),
    /// `role: elasticache`.
    Elasticache(ElasticacheSdConfig),
    /// `role: lightsail`.
    Lightsail(LightsailSdConfig),
    /// `role: msk`.
    Msk(MskSdConfig),
    /// `role: rds`.
    Rds(RdsSdConfig),
}

/// Checks a role-specific block's `filters` as `EC2SDConfig.UnmarshalYAML` does: every
/// filter needs values. (A null entry makes Prometheus crash; it is refused here with
/// the same message.)
fn check_ec2_filters(raw: &Option<Vec<Option<RawFilter>>>) -> Result<(), Invalid> {
    for (i, f) in raw.iter().flatten().enumerate() {
        if f.as_ref()
            .is_none_or(|f| f.values.as_ref().is_none_or(Vec::is_empty))
        {
            return Err((
                at("filters").index(i),
                "EC2 SD configuration filter values cannot be empty".into(),
            ));
        }
    }
    Ok(())
}

/// What trawl does not run of a block of `key` it otherwise runs: one with a
/// `role_arn` (STS is not built).
fn with_role(key: &str, aws: &AwsSettings) -> Option<String> {
    (!aws.role_arn.is_empty()).then(|| {
        format!("{key} with role_arn (assuming a role through STS; give the role's credentials through access_key/secret_key, a profile or the environment)")
    })
}

/// The HTTP client of a role-specific block: `HTTPClientConfig.Validate`, then
/// `SetDirectory`.
fn http(
    raw: crate::common::http::RawHttpClient,
    cx: &SdContext<'_>,
) -> Result<HttpClientConfig, Invalid> {
    raw.validate(&cx.paths).map_err(|e| (Path::default(), e))
}

fn tls(raw: &crate::common::http::RawHttpClient) -> Result<(), Invalid> {
    raw.check_tls().map_err(|e| (Path::default(), e))
}

impl RawClusters {
    fn finish(mut self, cx: &SdContext<'_>, concurrency: i64) -> Result<ClustersSdConfig, Invalid> {
        let client = self.take_http_client();
        tls(&client)?;
        let http_client = http(client, cx)?;
        Ok(ClustersSdConfig {
            aws: self.settings(http_client),
            clusters: texts(self.clusters),
            request_concurrency: self.request_concurrency.onto(concurrency),
        })
    }
}

/// `ec2_sd_configs`.
#[derive(Debug)]
pub(crate) struct Ec2;

impl Mechanism for Ec2 {
    const KEY: &'static str = "ec2_sd_configs";
    const NAME: &'static str = "ec2";
    const GO_TYPE: &'static str = "aws.plain";
    const RUNS: bool = true;
    const EXAMPLE: Option<&'static str> = Some(
        "{region: us-east-1, endpoint: 'http://127.0.0.1:5000', access_key: AK, secret_key: SK}",
    );
    type Raw = RawEc2;
    type Config = Ec2SdConfig;

    fn nested_go_type(key: &str) -> Option<&'static str> {
        (key == "filters").then_some("aws.Filter")
    }

    fn validate(mut raw: RawEc2, cx: &SdContext<'_>) -> Result<Ec2SdConfig, Invalid> {
        let client = raw.take_http_client();
        tls(&client)?;
        check_ec2_filters(&raw.filters)?;
        let http_client = http(client, cx)?;
        let aws = raw.settings(http_client);
        Ok(Ec2SdConfig {
            aws,
            filters: filters(raw.filters.take()),
        })
    }

    fn unsupported(cfg: &Ec2SdConfig) -> Option<String> {
        with_role(Self::KEY, &cfg.aws)
    }

    fn machine(cfg: &Ec2SdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        Some(Box::new(ec2::Ec2Sd::new(cfg, cx)))
    }
}

/// `ecs_sd_configs`.
#[derive(Debug)]
pub(crate) struct Ecs;

impl Mechanism for Ecs {
    const KEY: &'static str = "ecs_sd_configs";
    const NAME: &'static str = "ecs";
    const GO_TYPE: &'static str = "aws.plain";
    const RUNS: bool = false;
    type Raw = RawClusters;
    type Config = EcsSdConfig;

    fn validate(raw: RawClusters, cx: &SdContext<'_>) -> Result<EcsSdConfig, Invalid> {
        raw.finish(cx, 20)
    }

    fn machine(_: &EcsSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

/// `elasticache_sd_configs`.
#[derive(Debug)]
pub(crate) struct Elasticache;

impl Mechanism for Elasticache {
    const KEY: &'static str = "elasticache_sd_configs";
    const NAME: &'static str = "elasticache";
    const GO_TYPE: &'static str = "aws.plain";
    const RUNS: bool = false;
    type Raw = RawClusters;
    type Config = ElasticacheSdConfig;

    fn validate(raw: RawClusters, cx: &SdContext<'_>) -> Result<ElasticacheSdConfig, Invalid> {
        raw.finish(cx, 10)
    }

    fn machine(_: &ElasticacheSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

/// `lightsail_sd_configs`.
#[derive(Debug)]
pub(crate) struct Lightsail;

impl Mechanism for Lightsail {
    const KEY: &'static str = "lightsail_sd_configs";
    const NAME: &'static str = "lightsail";
    const GO_TYPE: &'static str = "aws.plain";
    const RUNS: bool = true;
    const EXAMPLE: Option<&'static str> = Some(
        "{region: us-east-1, endpoint: 'http://127.0.0.1:5000', access_key: AK, secret_key: SK}",
    );
    type Raw = RawLightsail;
    type Config = LightsailSdConfig;

    fn validate(mut raw: RawLightsail, cx: &SdContext<'_>) -> Result<LightsailSdConfig, Invalid> {
        let client = raw.take_http_client();
        tls(&client)?;
        let http_client = http(client, cx)?;
        let aws = raw.settings(http_client);
        Ok(LightsailSdConfig { aws })
    }

    fn unsupported(cfg: &LightsailSdConfig) -> Option<String> {
        with_role(Self::KEY, &cfg.aws)
    }

    fn machine(cfg: &LightsailSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        Some(Box::new(lightsail::LightsailSd::new(cfg, cx)))
    }
}

/// `msk_sd_configs`.
#[derive(Debug)]
pub(crate) struct Msk;

impl Mechanism for Msk {
    const KEY: &'static str = "msk_sd_configs";
    const NAME: &'static str = "msk";
    const GO_TYPE: &'static str = "aws.plain";
    const RUNS: bool = false;
    type Raw = RawClusters;
    type Config = MskSdConfig;

    fn validate(raw: RawClusters, cx: &SdContext<'_>) -> Result<MskSdConfig, Invalid> {
        raw.finish(cx, 10)
    }

    fn machine(_: &MskSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

/// `rds_sd_configs`.
#[derive(Debug)]
pub(crate) struct Rds;

impl Mechanism for Rds {
    const KEY: &'static str = "rds_sd_configs";
    const NAME: &'static str = "rds";
    const GO_TYPE: &'static str = "aws.plain";
    const RUNS: bool = false;
    type Raw = RawRds;
    type Config = RdsSdConfig;

    fn nested_go_type(key: &str) -> Option<&'static str> {
        (key == "filters").then_some("aws.Filter")
    }

    fn validate(mut raw: RawRds, cx: &SdContext<'_>) -> Result<RdsSdConfig, Invalid> {
        let client = raw.take_http_client();
        tls(&client)?;
        let http_client = http(client, cx)?;
        Ok(RdsSdConfig {
            aws: raw.settings(http_client),
            clusters: texts(raw.clusters.take()),
            filters: filters(raw.filters.take()),
            request_concurrency: std::mem::take(&mut raw.request_concurrency).onto(10),
        })
    }

    fn machine(_: &RdsSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

/// `aws_sd_configs`.
#[derive(Debug)]
pub(crate) struct Aws;

impl Mechanism for Aws {
    const KEY: &'static str = "aws_sd_configs";
    const NAME: &'static str = "aws";
    const GO_TYPE: &'static str = "aws.plain";
    const RUNS: bool = false;
    type Raw = RawAws;
    type Config = AwsSdConfig;

    fn nested_go_type(key: &str) -> Option<&'static str> {
        (key == "filters").then_some("aws.Filter")
    }

    fn validate(mut raw: RawAws, cx: &SdContext<'_>) -> Result<AwsSdConfig, Invalid> {
        // The generic block decodes onto zero values (no defaults, not even the HTTP
        // client's) and calls no `Validate`; only the decoding checks apply. Whatever it
        // sets overrides the role's defaults: region and client always, the other
        // strings when not empty, port and refresh interval when not zero.
        let client = raw.take_http_client();
        let Some(role) = raw.role.take() else {
            return Err((at("role"), r#"unknown AWS SD role """#.into()));
        };
        let mut http_client = client.unchecked(true).map_err(|e| (Path::default(), e))?;
        http_client.set_directory(cx.paths.dir);
        let mut aws = raw.settings(http_client);
        if aws.refresh_interval.is_zero() {
            aws.refresh_interval = DEFAULT_REFRESH;
        }
        if aws.port == 0 {
            aws.port = DEFAULT_PORT;
        }
        let clusters = |default: i64| ClustersSdConfig {
            aws: aws.clone(),
            clusters: texts(raw.clusters.clone()),
            request_concurrency: default,
        };
        Ok(match role.as_str() {
            "ec2" => AwsSdConfig::Ec2(Ec2SdConfig {
                aws: aws.clone(),
                filters: filters(raw.filters.clone()),
            }),
            "ecs" => AwsSdConfig::Ecs(clusters(20)),
            "elasticache" => AwsSdConfig::Elasticache(clusters(10)),
            "lightsail" => AwsSdConfig::Lightsail(LightsailSdConfig { aws: aws.clone() }),
            "msk" => AwsSdConfig::Msk(clusters(10)),
            _ => AwsSdConfig::Rds(RdsSdConfig {
                aws: aws.clone(),
                clusters: texts(raw.clusters.clone()),
                filters: filters(raw.filters.clone()),
                request_concurrency: 10,
            }),
        })
    }

    fn unsupported(cfg: &AwsSdConfig) -> Option<String> {
        match cfg {
            AwsSdConfig::Ec2(c) => with_role("aws_sd_configs", &c.aws),
            AwsSdConfig::Lightsail(c) => with_role("aws_sd_configs", &c.aws),
            AwsSdConfig::Ecs(_) => Some("aws_sd_configs with role: ecs".into()),
            AwsSdConfig::Elasticache(_) => Some("aws_sd_configs with role: elasticache".into()),
            AwsSdConfig::Msk(_) => Some("aws_sd_configs with role: msk".into()),
            AwsSdConfig::Rds(_) => Some("aws_sd_configs with role: rds".into()),
        }
    }

    fn machine(cfg: &AwsSdConfig, cx: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        match cfg {
            AwsSdConfig::Ec2(c) => Some(Box::new(ec2::Ec2Sd::new(c, cx))),
            AwsSdConfig::Lightsail(c) => Some(Box::new(lightsail::LightsailSd::new(c, cx))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const ALL: [&str; 7] = [
        "aws_sd_configs",
        "ec2_sd_configs",
        "ecs_sd_configs",
        "elasticache_sd_configs",
        "lightsail_sd_configs",
        "msk_sd_configs",
        "rds_sd_configs",
    ];

    #[test]
    fn role_blocks_apply_their_defaults() {
        let c: Ec2SdConfig = block("ec2_sd_configs", "region: eu-west-1");
        assert_eq!(c.aws.region, "eu-west-1");
        assert_eq!(c.aws.port, 80);
        assert_eq!(c.aws.refresh_interval, PromDuration::from_secs(60));
        assert_eq!(c.aws.http_client, HttpClientConfig::default());
        assert!(c.filters.is_empty());
        let c: EcsSdConfig = block("ecs_sd_configs", "clusters: [a, b]");
        assert_eq!(c.request_concurrency, 20);
        assert_eq!(c.clusters, ["a", "b"]);
        for key in ["elasticache_sd_configs", "msk_sd_configs"] {
            let c: ClustersSdConfig = block(key, "{}");
            assert_eq!((c.request_concurrency, c.aws.port), (10, 80), "{key}");
        }
        let c: RdsSdConfig = block("rds_sd_configs", "port: 5432\nrefresh_interval: 5m");
        assert_eq!(c.request_concurrency, 10);
        assert_eq!(c.aws.port, 5432);
        assert_eq!(c.aws.refresh_interval, PromDuration::from_secs(300));
        let c: LightsailSdConfig = block("lightsail_sd_configs", "secret_key: s3cret");
        assert_eq!(c.aws.secret_key.expose(), "s3cret");
        // Null replaces a default with Go's zero value.
        let c: Ec2SdConfig = block("ec2_sd_configs", "port:\nrefresh_interval: ~");
        assert_eq!(
            (c.aws.port, c.aws.refresh_interval),
            (0, PromDuration::ZERO)
        );
    }

    #[test]
    fn ec2_filters_need_values() {
        let body = "filters:\n  - name: tag:env\n    values: [prod]\n  - name: x";
        assert_eq!(
            error_at("ec2_sd_configs", body),
            (
                7,
                13,
                "EC2 SD configuration filter values cannot be empty".into()
            )
        );
        let body = "filters:\n  - name: x\n    values: []";
        assert_eq!(
            error("ec2_sd_configs", body),
            "EC2 SD configuration filter values cannot be empty"
        );
        // A null entry crashes Prometheus; it is refused with the same message.
        assert_eq!(
            error("ec2_sd_configs", "filters: [~]"),
            "EC2 SD configuration filter values cannot be empty"
        );
        let c: Ec2SdConfig = block(
            "ec2_sd_configs",
            "filters:\n  - name: tag:env\n    values: [prod, dev]",
        );
        assert_eq!(
            c.filters,
            [SdFilter {
                name: "tag:env".into(),
                values: vec!["prod".into(), "dev".into()]
            }]
        );
        // RDS does not check its filters.
        let c: RdsSdConfig = block("rds_sd_configs", "filters: [{name: engine}]");
        assert!(c.filters[0].values.is_empty());
    }

    #[test]
    fn decoding_and_client_checks() {
        // The TLS block is checked while decoding, before the filters.
        let body = "tls_config: {ca: x, ca_file: y}\nfilters: [{name: x}]";
        assert_eq!(
            error("ec2_sd_configs", body),
            "at most one of ca, ca_file & ca_ref must be configured"
        );
        for key in &ALL[1..] {
            assert_eq!(
                error(key, "bearer_token: a\nbearer_token_file: b"),
                "at most one of bearer_token & bearer_token_file must be configured",
                "{key}"
            );
        }
    }

    #[test]
    fn generic_block_needs_a_known_role() {
        assert_eq!(
            error_at("aws_sd_configs", "region: x"),
            (4, 9, r#"unknown AWS SD role """#.into())
        );
        assert_eq!(
            error("aws_sd_configs", "role: ~"),
            r#"unknown AWS SD role """#
        );
        assert_eq!(
            error_at("aws_sd_configs", "region: x\nrole: EC2"),
            (5, 15, r#"unknown AWS SD role "EC2""#.into())
        );
    }

    #[test]
    fn generic_block_builds_the_role_block() {
        let c: AwsSdConfig = block(
            "aws_sd_configs",
            "role: ec2\nregion: us-east-1\nport: 9100\nfilters: [{name: x}]",
        );
        let AwsSdConfig::Ec2(e) = c else {
            panic!("{c:?}")
        };
        assert_eq!((e.aws.region.as_str(), e.aws.port), ("us-east-1", 9100));
        assert_eq!(e.aws.refresh_interval, PromDuration::from_secs(60));
        // No empty-filter check, no client validation, and the client starts from Go's
        // zero values rather than the usual defaults.
        assert!(e.filters[0].values.is_empty());
        assert!(!e.aws.http_client.follow_redirects && !e.aws.http_client.enable_http2);
        let c: AwsSdConfig = block(
            "aws_sd_configs",
            "role: rds\nbearer_token: a\nbearer_token_file: b\nport: 0\nclusters: [c]",
        );
        let AwsSdConfig::Rds(r) = c else {
            panic!("{c:?}")
        };
        assert_eq!((r.aws.port, r.request_concurrency), (80, 10));
        assert_eq!(r.clusters, ["c"]);
        let c: AwsSdConfig = block("aws_sd_configs", "role: ecs\nfollow_redirects: true");
        let AwsSdConfig::Ecs(e) = c else {
            panic!("{c:?}")
        };
        assert_eq!(e.request_concurrency, 20);
        assert!(e.aws.http_client.follow_redirects);
        // Its own keys only: the role blocks' request_concurrency is not one.
        assert_eq!(
            error("aws_sd_configs", "role: ecs\nrequest_concurrency: 5"),
            "field request_concurrency not found in type aws.plain"
        );
        // Decoding checks still apply.
        assert_eq!(
            error(
                "aws_sd_configs",
                "role: ec2\ntls_config: {cert: x, cert_file: y}"
            ),
            "at most one of cert, cert_file & cert_ref must be configured"
        );
    }

    #[test]
    fn relative_paths_are_resolved() {
        let c: Ec2SdConfig = block("ec2_sd_configs", "tls_config: {ca_file: certs/ca.pem}");
        assert_eq!(
            c.aws.http_client.tls_config.ca_file,
            "/etc/prometheus/certs/ca.pem"
        );
        let c: AwsSdConfig = block("aws_sd_configs", "role: msk\nbearer_token_file: tok");
        let AwsSdConfig::Msk(m) = c else {
            panic!("{c:?}")
        };
        let auth = m.aws.http_client.authorization.expect("bearer token file");
        assert_eq!(auth.credentials_file, "/etc/prometheus/tok");
    }

    #[test]
    fn null_entries_and_unknown_fields() {
        for key in ALL {
            null_entry_is_refused(key);
        }
        unknown_field_names("ec2_sd_configs", "region: x", "aws.plain");
        unknown_field_names("rds_sd_configs", "region: x", "aws.plain");
        unknown_field_names("aws_sd_configs", "role: ec2", "aws.plain");
        assert_eq!(
            error("ec2_sd_configs", "filters: [{name: x, value: y}]"),
            "field value not found in type aws.Filter"
        );
        assert_eq!(
            error("ec2_sd_configs", "clusters: [a]"),
            "field clusters not found in type aws.plain"
        );
    }
}
