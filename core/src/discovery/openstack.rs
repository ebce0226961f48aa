//! `openstack_sd_configs`: hypervisors, instances or load balancers of an OpenStack
//! cloud, listed through Nova or Octavia every `refresh_interval` after a Keystone login.
//! Validation follows 3.x's `discovery/openstack` (`Role.UnmarshalYAML`,
//! `SDConfig.UnmarshalYAML`): the block has its own `tls_config` and no other HTTP client
//! option, and `SetDirectory` resolves only the TLS files. trawl validates the block but
//! does not run it yet.

use serde::Deserialize;

use super::mechanism::{
    Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, flag, go_enum, text, whole,
};
use crate::common::http::{Secret, TlsConfig};
use crate::common::yaml::{Bool11, LenientString, Nullable};
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct OpenStack;

go_enum! {
    /// `role` of `openstack_sd_configs`.
    pub struct OpenStackRole: ["hypervisor", "instance", "loadbalancer"]
        else "unknown OpenStack SD role {}";
}

/// `openstack_sd_configs` entry as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOpenStackSd {
    #[serde(default)]
    identity_endpoint: LenientString,
    #[serde(default)]
    username: LenientString,
    #[serde(default)]
    userid: LenientString,
    #[serde(default)]
    password: Secret,
    #[serde(default)]
    project_name: LenientString,
    #[serde(default)]
    project_id: LenientString,
    #[serde(default)]
    domain_name: LenientString,
    #[serde(default)]
    domain_id: LenientString,
    #[serde(default)]
    application_credential_name: LenientString,
    #[serde(default)]
    application_credential_id: LenientString,
    #[serde(default)]
    application_credential_secret: Secret,
    #[serde(default)]
    role: Option<OpenStackRole>,
    #[serde(default)]
    region: LenientString,
    #[serde(default)]
    refresh_interval: Nullable<PromDuration>,
    #[serde(default)]
    port: Nullable<i64>,
    #[serde(default)]
    all_tenants: Nullable<Bool11>,
    #[serde(default)]
    tls_config: Option<TlsConfig>,
    #[serde(default)]
    availability: Nullable<LenientString>,
}

/// OpenStack discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenStackSdConfig {
    /// Keystone endpoint (from the environment when empty).
    pub identity_endpoint: String,
    /// User name.
    pub username: String,
    /// User id.
    pub userid: String,
    /// Password.
    pub password: Secret,
    /// Project name.
    pub project_name: String,
    /// Project id.
    pub project_id: String,
    /// Domain name.
    pub domain_name: String,
    /// Domain id.
    pub domain_id: String,
    /// Application credential name.
    pub application_credential_name: String,
    /// Application credential id.
    pub application_credential_id: String,
    /// Application credential secret.
    pub application_credential_secret: Secret,
    /// `hypervisor`, `instance` or `loadbalancer`.
    pub role: OpenStackRole,
    /// The region.
    pub region: String,
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// Instances of all projects (`instance` role).
    pub all_tenants: bool,
    /// TLS settings, files resolved against the configuration's directory.
    pub tls_config: TlsConfig,
    /// Endpoint interface: `public` (default), `internal` or `admin`.
    pub availability: String,
}

impl Mechanism for OpenStack {
    const KEY: &'static str = "openstack_sd_configs";
    const NAME: &'static str = "openstack";
    const GO_TYPE: &'static str = "openstack.plain";
    const RUNS: bool = false;
    type Raw = RawOpenStackSd;
    type Config = OpenStackSdConfig;

    fn validate(raw: RawOpenStackSd, cx: &SdContext<'_>) -> Result<OpenStackSdConfig, Invalid> {
        let mut tls_config = raw.tls_config.unwrap_or_default();
        tls_config.validate().map_err(whole)?;
        let availability = text(raw.availability, "public");
        if !matches!(availability.as_str(), "public" | "internal" | "admin") {
            return Err((
                at("availability"),
                format!(
                    "unknown availability {availability}, must be one of admin, internal or public"
                ),
            ));
        }
        let Some(role) = raw.role else {
            return Err((
                at("role"),
                "role missing (one of: instance, hypervisor, loadbalancer)".into(),
            ));
        };
        if raw.region.0.is_empty() {
            return Err((
                at("region"),
                "openstack SD configuration requires a region".into(),
            ));
        }
        tls_config.resolve(cx.paths.dir);
        Ok(OpenStackSdConfig {
            identity_endpoint: raw.identity_endpoint.0,
            username: raw.username.0,
            userid: raw.userid.0,
            password: raw.password,
            project_name: raw.project_name.0,
            project_id: raw.project_id.0,
            domain_name: raw.domain_name.0,
            domain_id: raw.domain_id.0,
            application_credential_name: raw.application_credential_name.0,
            application_credential_id: raw.application_credential_id.0,
            application_credential_secret: raw.application_credential_secret,
            role,
            region: raw.region.0,
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            port: raw.port.onto(80),
            all_tenants: flag(raw.all_tenants, false),
            tls_config,
            availability,
        })
    }

    fn machine(_: &OpenStackSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "openstack_sd_configs";

    #[test]
    fn defaults_are_applied_and_tls_files_resolved() {
        let c: OpenStackSdConfig = block(
            KEY,
            "role: instance\nregion: RegionOne\ntls_config: {ca_file: ca.pem}",
        );
        assert_eq!(
            (c.role.as_str(), c.region.as_str()),
            ("instance", "RegionOne")
        );
        assert_eq!((c.port, c.availability.as_str()), (80, "public"));
        assert_eq!(c.refresh_interval, PromDuration::from_secs(60));
        assert!(!c.all_tenants);
        assert_eq!(c.tls_config.ca_file, "/etc/prometheus/ca.pem");
        let c: OpenStackSdConfig = block(
            KEY,
            "role: hypervisor\nregion: r\navailability: admin\nall_tenants: true",
        );
        assert!(c.all_tenants);
        assert_eq!(c.availability, "admin");
    }

    #[test]
    fn checks_in_order() {
        assert_eq!(
            error_at(KEY, "availability: private"),
            (
                4,
                23,
                "unknown availability private, must be one of admin, internal or public".into()
            )
        );
        assert_eq!(
            error(KEY, "availability: ~"),
            "unknown availability , must be one of admin, internal or public"
        );
        assert_eq!(
            error_at(KEY, "region: r"),
            (
                4,
                9,
                "role missing (one of: instance, hypervisor, loadbalancer)".into()
            )
        );
        assert_eq!(
            error_at(KEY, "role: server"),
            (4, 15, r#"unknown OpenStack SD role "server""#.into())
        );
        assert_eq!(
            error(KEY, "role: instance"),
            "openstack SD configuration requires a region"
        );
        assert_eq!(
            error(KEY, "role: instance\ntls_config: {cert: c}"),
            "exactly one of key or key_file must be configured when a client certificate is configured"
        );
    }

    #[test]
    fn null_entry_and_unknown_fields() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "role: instance\nregion: r", "openstack.plain");
        // Its only client option is its own tls_config.
        assert_eq!(
            error(KEY, "role: instance\nregion: r\nbearer_token: x"),
            "field bearer_token not found in type openstack.plain"
        );
    }
}
