//! `gce_sd_configs`: Google Compute Engine instances of one project and zone, listed
//! every `refresh_interval` with the application default credentials. Validation follows
//! 3.x's `discovery/gce` `SDConfig.UnmarshalYAML` (no HTTP client options). trawl
//! validates the block but does not run it yet.

use serde::Deserialize;

use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, text};
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Gce;

/// `gce_sd_configs` entry as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGceSd {
    #[serde(default)]
    project: LenientString,
    #[serde(default)]
    zone: LenientString,
    #[serde(default)]
    filter: LenientString,
    #[serde(default)]
    refresh_interval: Nullable<PromDuration>,
    #[serde(default)]
    port: Nullable<i64>,
    #[serde(default)]
    tag_separator: Nullable<LenientString>,
}

/// GCE discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GceSdConfig {
    /// The project.
    pub project: String,
    /// The zone.
    pub zone: String,
    /// `instances.list` filter.
    pub filter: String,
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// Joins the tags in `__meta_gce_tags` (default `,`).
    pub tag_separator: String,
}

impl Mechanism for Gce {
    const KEY: &'static str = "gce_sd_configs";
    const NAME: &'static str = "gce";
    const GO_TYPE: &'static str = "gce.plain";
    const RUNS: bool = false;
    type Raw = RawGceSd;
    type Config = GceSdConfig;

    fn validate(raw: RawGceSd, _: &SdContext<'_>) -> Result<GceSdConfig, Invalid> {
        if raw.project.0.is_empty() {
            return Err((
                at("project"),
                "GCE SD configuration requires a project".into(),
            ));
        }
        if raw.zone.0.is_empty() {
            return Err((at("zone"), "GCE SD configuration requires a zone".into()));
        }
        Ok(GceSdConfig {
            project: raw.project.0,
            zone: raw.zone.0,
            filter: raw.filter.0,
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            port: raw.port.onto(80),
            tag_separator: text(raw.tag_separator, ","),
        })
    }

    fn machine(_: &GceSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "gce_sd_configs";

    #[test]
    fn defaults_are_applied() {
        let c: GceSdConfig = block(KEY, "project: p\nzone: europe-west1-b");
        assert_eq!(
            (c.project.as_str(), c.zone.as_str()),
            ("p", "europe-west1-b")
        );
        assert_eq!((c.port, c.tag_separator.as_str()), (80, ","));
        assert_eq!(c.refresh_interval, PromDuration::from_secs(60));
        let c: GceSdConfig = block(KEY, "project: p\nzone: z\ntag_separator:\nport: ~");
        assert_eq!((c.port, c.tag_separator.as_str()), (0, ""));
    }

    #[test]
    fn project_and_zone_are_required() {
        assert_eq!(
            error_at(KEY, "zone: z"),
            (4, 9, "GCE SD configuration requires a project".into())
        );
        assert_eq!(
            error_at(KEY, "project: p\nzone: ''"),
            (5, 15, "GCE SD configuration requires a zone".into())
        );
    }

    #[test]
    fn no_client_options() {
        assert_eq!(
            error(KEY, "project: p\nzone: z\ntls_config: {}"),
            "field tls_config not found in type gce.plain"
        );
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, "project: p\nzone: z", "gce.plain");
    }
}
