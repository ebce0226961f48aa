//! `scaleway_sd_configs`: Instance or Elastic Metal servers of a Scaleway project, listed
//! through its API every `refresh_interval`. Validation follows 3.x's
//! `discovery/scaleway` (`role.UnmarshalYAML`, `SDConfig.UnmarshalYAML`), including the
//! checks the Scaleway SDK's `scw.NewClient` makes on the profile it is given, and
//! `SetDirectory` resolves `secret_key_file` as well as the client's files. trawl
//! validates the block but does not run it yet.

use serde::Deserialize;

use super::mechanism::{
    Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, go_enum, text, texts, whole,
};
use crate::common::http::HttpClientConfig;
use crate::common::http::{Secret, with_http_client};
use crate::common::paths::join_dir;
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Scaleway;

go_enum! {
    /// `role` of `scaleway_sd_configs`.
    pub struct ScalewayRole: ["instance", "baremetal"] else "unknown role {}";
}

with_http_client! {
    /// `scaleway_sd_configs` entry as written.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawScalewaySd {
        #[serde(default)]
        project_id: LenientString,
        #[serde(default)]
        api_url: Nullable<LenientString>,
        #[serde(default)]
        zone: Nullable<LenientString>,
        #[serde(default)]
        access_key: LenientString,
        #[serde(default)]
        secret_key: Secret,
        #[serde(default)]
        secret_key_file: LenientString,
        #[serde(default)]
        name_filter: LenientString,
        #[serde(default)]
        tags_filter: Option<Vec<LenientString>>,
        #[serde(default)]
        refresh_interval: Nullable<PromDuration>,
        #[serde(default)]
        port: Nullable<i64>,
        #[serde(default)]
        role: Option<ScalewayRole>,
    }
}

/// Scaleway discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalewaySdConfig {
    /// The project.
    pub project_id: String,
    /// API URL (default `https://api.scaleway.com`).
    pub api_url: String,
    /// Zone (default `fr-par-1`).
    pub zone: String,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: Secret,
    /// File holding the secret key, resolved against the configuration's directory.
    pub secret_key_file: String,
    /// Only servers with this name.
    pub name_filter: String,
    /// Only servers with these tags.
    pub tags_filter: Vec<String>,
    /// Refresh period (default 60s).
    pub refresh_interval: PromDuration,
    /// Port of the targets (default 80).
    pub port: i64,
    /// `instance` or `baremetal`.
    pub role: ScalewayRole,
    /// Client options.
    pub http_client: HttpClientConfig,
}

const SDK: &str = "scaleway-sdk-go: ";
const ZONES: &str = "fr-par-1, fr-par-2, fr-par-3, nl-ams-1, nl-ams-2, nl-ams-3, pl-waw-1, pl-waw-2, pl-waw-3, it-mil-1";
const UUID_HINT: &str = "expected a UUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

/// `SCW` and 17 upper-case letters or digits.
fn is_access_key(s: &str) -> bool {
    s.len() == 20
        && s.starts_with("SCW")
        && s.bytes()
            .skip(3)
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hexadecimal digits of either case.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Two letters, three to seven letters and one or two digits (`fr-par-1`).
fn is_zone(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lower = |p: &str, min: usize, max: usize| {
        (min..=max).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase())
    };
    parts.len() == 3
        && lower(parts[0], 2, 2)
        && lower(parts[1], 3, 7)
        && (1..=2).contains(&parts[2].len())
        && parts[2].bytes().all(|b| b.is_ascii_digit())
}

/// The SDK's checks of the profile Prometheus builds (its region is never set). A
/// malformed secret key is not repeated in the message (Prometheus prints it).
fn check_profile(
    access_key: &str,
    secret_key: &str,
    project_id: &str,
    zone: &str,
    api_url: &str,
) -> Result<(), Invalid> {
    if !is_access_key(access_key) {
        return Err((
            at("access_key"),
            format!(
                "{SDK}invalid access key format '{access_key}', expected SCWXXXXXXXXXXXXXXXXX format"
            ),
        ));
    }
    if !is_uuid(secret_key) {
        return Err((
            at("secret_key"),
            format!("{SDK}invalid secret key format '<secret>', {UUID_HINT}"),
        ));
    }
    if !is_uuid(project_id) {
        return Err((
            at("project_id"),
            format!("{SDK}invalid project ID format '{project_id}', {UUID_HINT}"),
        ));
    }
    if zone.is_empty() {
        return Err((at("zone"), format!("{SDK}default zone cannot be empty")));
    }
    if !is_zone(zone) {
        return Err((
            at("zone"),
            format!("{SDK}invalid default zone format '{zone}', available zones are: {ZONES}"),
        ));
    }
    if api_url.is_empty() || crate::gourl::parse(api_url).is_err() {
        return Err((at("api_url"), format!("{SDK}invalid API url '{api_url}'")));
    }
    if api_url.ends_with('/') {
        return Err((
            at("api_url"),
            format!("{SDK}invalid API url '{api_url}' it should not have a trailing slash"),
        ));
    }
    Ok(())
}

impl Mechanism for Scaleway {
    const KEY: &'static str = "scaleway_sd_configs";
    const NAME: &'static str = "scaleway";
    const GO_TYPE: &'static str = "scaleway.plain";
    const RUNS: bool = false;
    type Raw = RawScalewaySd;
    type Config = ScalewaySdConfig;

    fn validate(mut raw: RawScalewaySd, cx: &SdContext<'_>) -> Result<ScalewaySdConfig, Invalid> {
        let client = raw.take_http_client();
        client.check_tls().map_err(whole)?;
        let Some(role) = raw.role.take() else {
            return Err((
                at("role"),
                "role missing (one of: instance, baremetal)".into(),
            ));
        };
        if raw.project_id.0.is_empty() {
            return Err((at("project_id"), "project_id is mandatory".into()));
        }
        let key = !raw.secret_key.is_empty();
        let key_file = !raw.secret_key_file.0.is_empty();
        if !key && !key_file {
            return Err(whole(
                "one of secret_key & secret_key_file must be configured".into(),
            ));
        }
        if key && key_file {
            return Err(whole(
                "at most one of secret_key & secret_key_file must be configured".into(),
            ));
        }
        if raw.access_key.0.is_empty() {
            return Err((at("access_key"), "access_key is mandatory".into()));
        }
        let zone = text(raw.zone, "fr-par-1");
        let api_url = text(raw.api_url, "https://api.scaleway.com");
        // With a key file, the SDK is handed a placeholder that passes its check.
        let secret = if key_file {
            "00000000-0000-0000-0000-000000000000"
        } else {
            raw.secret_key.expose()
        };
        check_profile(
            &raw.access_key.0,
            secret,
            &raw.project_id.0,
            &zone,
            &api_url,
        )?;
        let http_client = client.validate(&cx.paths).map_err(whole)?;
        Ok(ScalewaySdConfig {
            project_id: raw.project_id.0,
            api_url,
            zone,
            access_key: raw.access_key.0,
            secret_key: raw.secret_key,
            secret_key_file: join_dir(cx.paths.dir, &raw.secret_key_file.0),
            name_filter: raw.name_filter.0,
            tags_filter: texts(raw.tags_filter),
            refresh_interval: raw.refresh_interval.onto(PromDuration::from_secs(60)),
            port: raw.port.onto(80),
            role,
            http_client,
        })
    }

    fn machine(_: &ScalewaySdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const KEY: &str = "scaleway_sd_configs";
    const PROJECT: &str = "11111111-2222-3333-4444-555555555555";
    const SECRET: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

    fn valid(extra: &str) -> String {
        format!(
            "role: instance\nproject_id: {PROJECT}\naccess_key: SCWABCDEFGHIJ0123456\nsecret_key: {SECRET}{extra}"
        )
    }

    #[test]
    fn defaults_are_applied() {
        let c: ScalewaySdConfig = block(KEY, &valid(""));
        assert_eq!(c.role.as_str(), "instance");
        assert_eq!(c.api_url, "https://api.scaleway.com");
        assert_eq!(c.zone, "fr-par-1");
        assert_eq!(
            (c.port, c.refresh_interval),
            (80, PromDuration::from_secs(60))
        );
        assert_eq!(c.http_client, HttpClientConfig::default());
        let c: ScalewaySdConfig = block(
            KEY,
            &format!(
                "role: baremetal\nproject_id: {PROJECT}\naccess_key: SCWABCDEFGHIJ0123456\nsecret_key_file: keys/scw\ntags_filter: [a]"
            ),
        );
        assert_eq!(c.secret_key_file, "/etc/prometheus/keys/scw");
        assert_eq!(c.tags_filter, ["a"]);
    }

    #[test]
    fn own_checks_in_order() {
        assert_eq!(
            error_at(KEY, "project_id: p"),
            (4, 9, "role missing (one of: instance, baremetal)".into())
        );
        assert_eq!(
            error_at(KEY, "role: server"),
            (4, 15, r#"unknown role "server""#.into())
        );
        assert_eq!(error(KEY, "role: instance"), "project_id is mandatory");
        assert_eq!(
            error(KEY, "role: instance\nproject_id: p"),
            "one of secret_key & secret_key_file must be configured"
        );
        assert_eq!(
            error(
                KEY,
                "role: instance\nproject_id: p\nsecret_key: s\nsecret_key_file: f"
            ),
            "at most one of secret_key & secret_key_file must be configured"
        );
        assert_eq!(
            error(KEY, "role: instance\nproject_id: p\nsecret_key: s"),
            "access_key is mandatory"
        );
    }

    #[test]
    fn sdk_checks_in_order() {
        let sdk = |body: String| error(KEY, &body);
        assert_eq!(
            sdk(valid("").replace("SCWABCDEFGHIJ0123456", "SCWabc")),
            "scaleway-sdk-go: invalid access key format 'SCWabc', expected SCWXXXXXXXXXXXXXXXXX format"
        );
        assert_eq!(
            sdk(valid("").replace(SECRET, "not-a-uuid")),
            "scaleway-sdk-go: invalid secret key format '<secret>', expected a UUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
        );
        assert_eq!(
            sdk(valid("").replace(PROJECT, "p")),
            "scaleway-sdk-go: invalid project ID format 'p', expected a UUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
        );
        assert_eq!(
            sdk(valid("\nzone: ~")),
            "scaleway-sdk-go: default zone cannot be empty"
        );
        assert_eq!(
            sdk(valid("\nzone: paris")),
            "scaleway-sdk-go: invalid default zone format 'paris', available zones are: fr-par-1, fr-par-2, fr-par-3, nl-ams-1, nl-ams-2, nl-ams-3, pl-waw-1, pl-waw-2, pl-waw-3, it-mil-1"
        );
        // Any well-formed zone passes, listed or not.
        let _: ScalewaySdConfig = block(KEY, &valid("\nzone: xx-abcdefg-99"));
        assert_eq!(
            sdk(valid("\napi_url: ''")),
            "scaleway-sdk-go: invalid API url ''"
        );
        assert_eq!(
            sdk(valid("\napi_url: ':x'")),
            "scaleway-sdk-go: invalid API url ':x'"
        );
        assert_eq!(
            sdk(valid("\napi_url: 'https://api.example/'")),
            "scaleway-sdk-go: invalid API url 'https://api.example/' it should not have a trailing slash"
        );
        // The client comes last.
        assert_eq!(
            sdk(valid("\nbearer_token: a\nbearer_token_file: b")),
            "at most one of bearer_token & bearer_token_file must be configured"
        );
    }

    #[test]
    fn null_entry_and_unknown_field() {
        null_entry_is_refused(KEY);
        unknown_field_names(KEY, &valid(""), "scaleway.plain");
    }
}
