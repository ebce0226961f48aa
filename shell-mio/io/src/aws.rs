//! AWS credentials and region for `sigv4` blocks, found as the AWS SDK's default chain
//! finds them (the part of it that reads the environment and files; the signing itself
//! is [`trawl_core::auth::sigv4`]).
//!
//! Order, as aws-sdk-go-v2's `LoadDefaultConfig` resolves it for
//! `github.com/prometheus/sigv4`: the block's `access_key` and `secret_key`; else, when
//! a profile is named (the block's `profile`, or `AWS_PROFILE`), that profile of the
//! shared files; else `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `AWS_SESSION_TOKEN`; else the `default` profile. The shared credentials file is
//! `AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`, the config file
//! `AWS_CONFIG_FILE` or `~/.aws/config` (its sections named `profile NAME`, `default`
//! as it is). The region: the block's `region`, else `AWS_REGION`, else
//! `AWS_DEFAULT_REGION`, else the profile's `region` in the config file.
//!
//! Credentials from files are read again at most every [`REREAD`], so rotated keys are
//! used without a reload. Instance-role and container credentials (the metadata
//! endpoints) and assuming a role are not read: a block that needs them fails to load
//! with the chain's error, as Prometheus fails when no credentials are found.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use trawl_core::auth::sigv4::{Credentials, Scope};
use trawl_core::config::SigV4Config;

/// How long credentials read from files are used before the files are read again.
pub const REREAD: Duration = Duration::from_secs(5);

/// Largest shared file read (they hold a few profiles).
const FILE_LIMIT: u64 = 1 << 20;

/// The wall time now, as signatures carry it.
pub fn wall_now() -> trawl_core::time::UnixNanos {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    trawl_core::time::UnixNanos(i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
}

/// The region discovery uses when its block names none, as aws-sdk-go-v2's
/// `LoadDefaultConfig` finds it with no options (3.x's `loadRegion`): `AWS_REGION`,
/// else `AWS_DEFAULT_REGION`, else the `region` of the profile `AWS_PROFILE` names (or
/// `default`) in the shared config file. `None` when none is set (3.x would then ask
/// the instance metadata service, which trawl does not read).
pub fn default_region(env: &dyn Env) -> Option<String> {
    if let Some(r) = env
        .var("AWS_REGION")
        .or_else(|| env.var("AWS_DEFAULT_REGION"))
    {
        return Some(r);
    }
    let profile = env.var("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let config = read_ini(&home_file(env, "AWS_CONFIG_FILE", "config")).ok()?;
    config
        .get(&config_section(&profile))
        .and_then(|s| s.get("region"))
        .filter(|r| !r.is_empty())
        .cloned()
}

/// The environment the chain reads (a map in tests, the process's in the daemon).
pub trait Env {
    /// A variable's value, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process's environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

/// The sections of an INI-style shared file: section name → key → value.
type Ini = BTreeMap<String, BTreeMap<String, String>>;

fn parse_ini(text: &str) -> Ini {
    let mut out = Ini::new();
    let mut section: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_owned();
            out.entry(name.clone()).or_default();
            section = Some(name);
            continue;
        }
        if let (Some(s), Some((k, v))) = (&section, line.split_once('=')) {
            out.entry(s.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    out
}

fn home_file(env: &dyn Env, var: &str, name: &str) -> Option<PathBuf> {
    env.var(var).map(PathBuf::from).or_else(|| {
        env.var("HOME")
            .map(|h| PathBuf::from(h).join(".aws").join(name))
    })
}

fn read_ini(path: &Option<PathBuf>) -> Result<Ini, String> {
    let Some(p) = path else {
        return Ok(Ini::new());
    };
    match crate::files::read_limited(&p.to_string_lossy(), FILE_LIMIT) {
        Ok(Some(b)) => Ok(parse_ini(&String::from_utf8_lossy(&b))),
        Ok(None) => Err(format!(
            "read {}: larger than {FILE_LIMIT} bytes",
            p.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ini::new()),
        Err(e) => Err(format!("read {}: {e}", p.display())),
    }
}

fn keys_of(section: Option<&BTreeMap<String, String>>) -> Option<Credentials> {
    let s = section?;
    Some(Credentials {
        access_key: s
            .get("aws_access_key_id")
            .filter(|v| !v.is_empty())?
            .clone(),
        secret_key: s
            .get("aws_secret_access_key")
            .filter(|v| !v.is_empty())?
            .clone(),
        session_token: s
            .get("aws_session_token")
            .filter(|v| !v.is_empty())
            .cloned(),
    })
}

/// A profile's credentials from the shared files (the credentials file first).
fn profile_credentials(env: &dyn Env, profile: &str) -> Result<Option<Credentials>, String> {
    let creds = read_ini(&home_file(
        env,
        "AWS_SHARED_CREDENTIALS_FILE",
        "credentials",
    ))?;
    if let Some(c) = keys_of(creds.get(profile)) {
        return Ok(Some(c));
    }
    let config = read_ini(&home_file(env, "AWS_CONFIG_FILE", "config"))?;
    Ok(keys_of(config.get(&config_section(profile))))
}

fn config_section(profile: &str) -> String {
    if profile == "default" {
        "default".into()
    } else {
        format!("profile {profile}")
    }
}

/// Where a signer's credentials come from.
#[derive(Clone, Debug)]
enum Source {
    /// The block's keys.
    Static(Credentials),
    /// The chain, for this profile (named: files only; else the environment first).
    Chain { profile: String, named: bool },
}

/// One `sigv4` block's scope and credentials, ready to sign.
#[derive(Debug)]
pub struct SigV4 {
    /// The region and service signed for.
    pub scope: Scope,
    source: Source,
    cached: Option<(Credentials, Instant)>,
}

impl SigV4 {
    /// Resolves a block against `env` and the shared files, failing as Prometheus fails
    /// when the chain finds no credentials or no region.
    pub fn new(cfg: &SigV4Config, env: &dyn Env) -> Result<SigV4, String> {
        let named = cfg.profile.clone();
        let env_profile = env.var("AWS_PROFILE");
        let profile = if !named.is_empty() {
            named.clone()
        } else {
            env_profile.clone().unwrap_or_else(|| "default".into())
        };
        let source = if !cfg.access_key.is_empty() {
            Source::Static(Credentials {
                access_key: cfg.access_key.clone(),
                secret_key: cfg.secret_key.expose().to_owned(),
                session_token: None,
            })
        } else {
            Source::Chain {
                profile: profile.clone(),
                named: !named.is_empty() || env_profile.is_some(),
            }
        };
        let region = if !cfg.region.is_empty() {
            cfg.region.clone()
        } else if let Some(r) = env
            .var("AWS_REGION")
            .or_else(|| env.var("AWS_DEFAULT_REGION"))
        {
            r
        } else {
            let config = read_ini(&home_file(env, "AWS_CONFIG_FILE", "config"))?;
            config
                .get(&config_section(&profile))
                .and_then(|s| s.get("region"))
                .filter(|r| !r.is_empty())
                .cloned()
                .unwrap_or_default()
        };
        let mut s = SigV4 {
            scope: Scope {
                region,
                service: if cfg.service_name.is_empty() {
                    "aps".into()
                } else {
                    cfg.service_name.clone()
                },
            },
            source,
            cached: None,
        };
        // Prometheus retrieves the credentials once at start, then checks the region.
        s.credentials(env, Instant::now())
            .map_err(|e| format!("could not get SigV4 credentials: {e}"))?;
        if s.scope.region.is_empty() {
            return Err("region not configured in sigv4 or in default credentials chain".into());
        }
        Ok(s)
    }

    /// The credentials to sign with at `now`, from the files again once [`REREAD`] has
    /// passed since they were last read.
    pub fn credentials(&mut self, env: &dyn Env, now: Instant) -> Result<Credentials, String> {
        let (profile, named) = match &self.source {
            Source::Static(c) => return Ok(c.clone()),
            Source::Chain { profile, named } => (profile.clone(), *named),
        };
        if let Some((c, at)) = &self.cached
            && now.saturating_duration_since(*at) < REREAD
        {
            return Ok(c.clone());
        }
        let found = if named {
            profile_credentials(env, &profile)?
        } else if let (Some(a), Some(s)) = (
            env.var("AWS_ACCESS_KEY_ID"),
            env.var("AWS_SECRET_ACCESS_KEY"),
        ) {
            Some(Credentials {
                access_key: a,
                secret_key: s,
                session_token: env.var("AWS_SESSION_TOKEN"),
            })
        } else {
            profile_credentials(env, &profile)?
        };
        match found {
            Some(c) => {
                self.cached = Some((c.clone(), now));
                Ok(c)
            }
            // Keys read before go on serving while the files are being rewritten.
            None => match &self.cached {
                Some((c, _)) => Ok(c.clone()),
                None => Err(format!(
                    "no credentials in the environment or in profile {profile:?} of the shared files (instance-role and container credentials are not read by trawl)"
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_core::common::http::Secret;

    fn cfg() -> SigV4Config {
        SigV4Config {
            region: String::new(),
            access_key: String::new(),
            secret_key: Secret::new(""),
            profile: String::new(),
            role_arn: String::new(),
            external_id: String::new(),
            use_fips_sts_endpoint: false,
            service_name: String::new(),
        }
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_chain_is_followed_in_order_and_files_are_read_again() {
        let dir = std::env::temp_dir().join(format!("trawl-aws-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let creds = dir.join("credentials");
        let config = dir.join("config");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key = s1\n\n[prod]\naws_access_key_id=AKPROD\naws_secret_access_key=s2\naws_session_token=tok\n",
        )
        .expect("write");
        std::fs::write(
            &config,
            "[profile prod]\nregion = eu-west-1\n[default]\nregion=us-east-2\n",
        )
        .expect("write");
        let files = [
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                creds.to_str().expect("utf-8"),
            ),
            ("AWS_CONFIG_FILE", config.to_str().expect("utf-8")),
        ];
        // The environment's keys before the default profile.
        let mut e = env(&files);
        e.insert("AWS_ACCESS_KEY_ID".into(), "AKENV".into());
        e.insert("AWS_SECRET_ACCESS_KEY".into(), "s0".into());
        let mut s = SigV4::new(&cfg(), &e).expect("resolves");
        assert_eq!(s.scope.region, "us-east-2");
        assert_eq!(s.scope.service, "aps");
        let t0 = Instant::now();
        assert_eq!(s.credentials(&e, t0).expect("found").access_key, "AKENV");
        // A named profile (AWS_PROFILE) reads the files only, region from its section.
        e.insert("AWS_PROFILE".into(), "prod".into());
        let mut s = SigV4::new(&cfg(), &e).expect("resolves");
        // Read at `new`, a moment before this.
        let t0 = Instant::now();
        assert_eq!(s.scope.region, "eu-west-1");
        let c = s.credentials(&e, t0).expect("found");
        assert_eq!(
            (c.access_key.as_str(), c.session_token.as_deref()),
            ("AKPROD", Some("tok"))
        );
        // Rotated in the file: used once REREAD has passed, not before.
        std::fs::write(
            &creds,
            "[prod]\naws_access_key_id=AKROTATED\naws_secret_access_key=s3\n",
        )
        .expect("write");
        assert_eq!(
            s.credentials(&e, t0 + REREAD / 2)
                .expect("cached")
                .access_key,
            "AKPROD"
        );
        assert_eq!(
            s.credentials(&e, t0 + REREAD).expect("read").access_key,
            "AKROTATED"
        );
        // The block's region and keys win.
        let mut c = cfg();
        c.region = "ap-south-1".into();
        c.access_key = "AKSTATIC".into();
        c.secret_key = Secret::new("s4");
        c.service_name = "execute-api".into();
        let mut s = SigV4::new(&c, &e).expect("resolves");
        assert_eq!(
            (s.scope.region.as_str(), s.scope.service.as_str()),
            ("ap-south-1", "execute-api")
        );
        assert_eq!(
            s.credentials(&e, t0).expect("static").access_key,
            "AKSTATIC"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn discovery_finds_its_default_region_as_the_sdk_does() {
        let dir = std::env::temp_dir().join(format!("trawl-aws-region-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = dir.join("config");
        std::fs::write(
            &config,
            "[default]\nregion = us-east-2\n[profile prod]\nregion=eu-west-3\n",
        )
        .expect("write");
        let c = config.display().to_string();
        assert_eq!(
            default_region(&env(&[("AWS_REGION", "a"), ("AWS_DEFAULT_REGION", "b")])),
            Some("a".into())
        );
        assert_eq!(
            default_region(&env(&[
                ("AWS_DEFAULT_REGION", "b"),
                ("AWS_CONFIG_FILE", &c)
            ])),
            Some("b".into())
        );
        assert_eq!(
            default_region(&env(&[("AWS_CONFIG_FILE", &c)])),
            Some("us-east-2".into())
        );
        assert_eq!(
            default_region(&env(&[("AWS_CONFIG_FILE", &c), ("AWS_PROFILE", "prod")])),
            Some("eu-west-3".into())
        );
        assert_eq!(
            default_region(&env(&[("AWS_CONFIG_FILE", &c), ("AWS_PROFILE", "none")])),
            None
        );
        assert_eq!(default_region(&env(&[("HOME", "/nonexistent")])), None);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// A discovery request signed through its credentials block: `Host`, `X-Amz-Date`
    /// and the request's own `X-Amz-*` headers signed (not `User-Agent`) for the
    /// block's service and region, the URL kept.
    #[test]
    fn a_sigv4_block_signs_the_request_it_is_given() {
        let mut c = cfg();
        c.region = "us-east-1".into();
        c.service_name = "ec2".into();
        c.access_key = "AKIDEXAMPLE".into();
        c.secret_key = Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let f = trawl_core::io::CredentialsFile::SigV4(Box::new(c));
        let url = "http://127.0.0.1:5000/?Action=DescribeInstances&Version=2016-11-15";
        let sent = [
            ("User-Agent".to_owned(), "trawl/test".to_owned()),
            ("X-Amz-Target".to_owned(), "Svc.Op".to_owned()),
        ];
        let (signed_url, h) = crate::authorize(&f, "GET", url, &sent, b"").expect("signed");
        assert_eq!(signed_url, None, "the URL is sent as it is");
        let names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["X-Amz-Date", "Authorization"]);
        let auth = &h[1].1;
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                && auth.contains(
                    "/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature="
                ),
            "{auth}"
        );
        // The header-file kinds cannot go through `credentials` for SigV4.
        assert!(crate::credentials(&f).is_err());
    }

    /// Hostile shared files: one past the size bound, and a FIFO (which would block a
    /// reader until someone writes to it), fail with the file's name; nothing is read
    /// past the bound and nothing blocks.
    #[test]
    fn oversized_and_special_shared_files_are_refused_with_their_name() {
        let dir = std::env::temp_dir().join(format!("trawl-aws-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let big = dir.join("credentials");
        let mut text = String::from("[default]\naws_access_key_id=AK\naws_secret_access_key=s\n");
        text.push_str(&"#".repeat(FILE_LIMIT as usize + 1));
        std::fs::write(&big, text).expect("write");
        let e = env(&[("AWS_SHARED_CREDENTIALS_FILE", big.to_str().expect("utf-8"))]);
        let err = SigV4::new(&cfg(), &e).expect_err("too large");
        assert!(
            err.contains("larger than 1048576 bytes") && err.contains("credentials"),
            "{err}"
        );
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("no NUL");
        // SAFETY: mkfifo reads a NUL-terminated path and creates a node; no memory is shared.
        #[allow(unsafe_code)]
        let made = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(made, 0, "mkfifo");
        let e = env(&[("AWS_SHARED_CREDENTIALS_FILE", fifo.to_str().expect("utf-8"))]);
        let err = SigV4::new(&cfg(), &e).expect_err("a FIFO is no credentials file");
        assert!(err.contains("not a regular file"), "{err}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn no_credentials_or_no_region_fail_with_prometheus_words() {
        let e = env(&[
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/c"),
            ("AWS_CONFIG_FILE", "/nonexistent/f"),
        ]);
        let err = SigV4::new(&cfg(), &e).expect_err("no credentials");
        assert!(
            err.starts_with("could not get SigV4 credentials: "),
            "{err}"
        );
        let mut e2 = e.clone();
        e2.insert("AWS_ACCESS_KEY_ID".into(), "AK".into());
        e2.insert("AWS_SECRET_ACCESS_KEY".into(), "s".into());
        assert_eq!(
            SigV4::new(&cfg(), &e2).expect_err("no region"),
            "region not configured in sigv4 or in default credentials chain"
        );
        e2.insert("AWS_DEFAULT_REGION".into(), "sa-east-1".into());
        assert_eq!(
            SigV4::new(&cfg(), &e2).expect("resolves").scope.region,
            "sa-east-1"
        );
    }
}
