//! ZooKeeper-based discovery: `serverset_sd_configs` (Finagle/Aurora serversets) and
//! `nerve_sd_configs` (Airbnb Nerve registrations), both watching the children of
//! ZooKeeper paths. Validation follows 3.x's `discovery/zookeeper`
//! (`ServersetSDConfig.UnmarshalYAML`, `NerveSDConfig.UnmarshalYAML`); neither block has
//! HTTP client options. trawl validates them but does not run them yet.

use serde::Deserialize;

use super::mechanism::{Invalid, MachineContext, Mechanism, SdContext, SdMachine, at, texts};
use crate::common::yaml::{LenientString, Nullable};
use crate::duration::PromDuration;

/// A `serverset_sd_configs` or `nerve_sd_configs` entry as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawZookeeperSd {
    #[serde(default)]
    servers: Option<Vec<LenientString>>,
    #[serde(default)]
    paths: Option<Vec<LenientString>>,
    #[serde(default)]
    timeout: Nullable<PromDuration>,
}

/// ZooKeeper discovery (serverset or Nerve).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZookeeperSdConfig {
    /// ZooKeeper servers (`host:port`).
    pub servers: Vec<String>,
    /// Paths whose children are the registrations.
    pub paths: Vec<String>,
    /// Session timeout (default 10s).
    pub timeout: PromDuration,
}

/// `serverset_sd_configs` entries.
pub type ServersetSdConfig = ZookeeperSdConfig;
/// `nerve_sd_configs` entries.
pub type NerveSdConfig = ZookeeperSdConfig;

impl RawZookeeperSd {
    /// The checks both blocks make, with `what` naming the block in the messages.
    fn check(self, what: &str) -> Result<ZookeeperSdConfig, Invalid> {
        let servers = texts(self.servers);
        if servers.is_empty() {
            return Err((
                at("servers"),
                format!("{what} SD config must contain at least one Zookeeper server"),
            ));
        }
        let paths = texts(self.paths);
        if paths.is_empty() {
            return Err((
                at("paths"),
                format!("{what} SD config must contain at least one path"),
            ));
        }
        if let Some(i) = paths.iter().position(|p| !p.starts_with('/')) {
            return Err((
                at("paths").index(i),
                format!("{what} SD config paths must begin with '/': {}", paths[i]),
            ));
        }
        Ok(ZookeeperSdConfig {
            servers,
            paths,
            timeout: self.timeout.onto(PromDuration::from_secs(10)),
        })
    }
}

/// `serverset_sd_configs`.
#[derive(Debug)]
pub(crate) struct Serverset;

impl Mechanism for Serverset {
    const KEY: &'static str = "serverset_sd_configs";
    const NAME: &'static str = "serverset";
    const GO_TYPE: &'static str = "zookeeper.plain";
    const RUNS: bool = false;
    type Raw = RawZookeeperSd;
    type Config = ServersetSdConfig;

    fn validate(raw: RawZookeeperSd, _: &SdContext<'_>) -> Result<ServersetSdConfig, Invalid> {
        raw.check("serverset")
    }

    fn machine(_: &ServersetSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

/// `nerve_sd_configs`.
#[derive(Debug)]
pub(crate) struct Nerve;

impl Mechanism for Nerve {
    const KEY: &'static str = "nerve_sd_configs";
    const NAME: &'static str = "nerve";
    const GO_TYPE: &'static str = "zookeeper.plain";
    const RUNS: bool = false;
    type Raw = RawZookeeperSd;
    type Config = NerveSdConfig;

    fn validate(raw: RawZookeeperSd, _: &SdContext<'_>) -> Result<NerveSdConfig, Invalid> {
        raw.check("nerve")
    }

    fn machine(_: &NerveSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mechanism::test_support::{
        block, error, error_at, null_entry_is_refused, unknown_field_names,
    };

    const BOTH: [(&str, &str); 2] = [
        ("serverset_sd_configs", "serverset"),
        ("nerve_sd_configs", "nerve"),
    ];

    #[test]
    fn defaults_are_applied() {
        for (key, _) in BOTH {
            let c: ZookeeperSdConfig = block(key, "servers: ['zk:2181']\npaths: [/services]");
            assert_eq!(c.servers, ["zk:2181"]);
            assert_eq!(c.paths, ["/services"]);
            assert_eq!(c.timeout, PromDuration::from_secs(10), "{key}");
            let c: ZookeeperSdConfig = block(key, "servers: [zk]\npaths: [/a]\ntimeout: ~");
            assert_eq!(c.timeout, PromDuration::ZERO);
        }
    }

    #[test]
    fn servers_and_paths_are_checked() {
        for (key, what) in BOTH {
            assert_eq!(
                error_at(key, "paths: [/a]"),
                (
                    4,
                    9,
                    format!("{what} SD config must contain at least one Zookeeper server")
                )
            );
            assert_eq!(
                error(key, "servers: [zk]\npaths: ~"),
                format!("{what} SD config must contain at least one path")
            );
            assert_eq!(
                error_at(key, "servers: [zk]\npaths: [/a, b/c]"),
                (
                    5,
                    21,
                    format!("{what} SD config paths must begin with '/': b/c")
                )
            );
        }
    }

    #[test]
    fn null_entries_and_unknown_fields() {
        for (key, _) in BOTH {
            null_entry_is_refused(key);
            unknown_field_names(key, "servers: [zk]\npaths: [/a]", "zookeeper.plain");
            assert_eq!(
                error(key, "servers: [zk]\npaths: [/a]\nbearer_token: x"),
                "field bearer_token not found in type zookeeper.plain"
            );
        }
    }
}
