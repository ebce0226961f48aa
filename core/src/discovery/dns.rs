//! `dns_sd_configs`: targets from DNS records (SRV by default, A, AAAA, MX, NS), looked up
//! every `refresh_interval`, as 3.x's `discovery/dns` does.

use serde::Deserialize;

use super::mechanism::{Counter, Invalid, MachineContext, Mechanism, SdContext, SdMachine};
use crate::config::yaml::{Nullable, Path};
use crate::duration::PromDuration;

/// The mechanism.
#[derive(Debug)]
pub(crate) struct Dns;

impl Mechanism for Dns {
    const KEY: &'static str = "dns_sd_configs";
    const NAME: &'static str = "dns";
    const GO_TYPE: &'static str = "dns.plain";
    const RUNS: bool = false;
    const COUNTERS: &'static [Counter] = &[];
    type Raw = RawDnsSd;
    type Config = DnsSdConfig;

    fn validate(raw: RawDnsSd, _: &SdContext<'_>) -> Result<DnsSdConfig, Invalid> {
        raw.validate().map_err(|e| (Path::default(), e))
    }

    fn machine(_: &DnsSdConfig, _: &MachineContext<'_>) -> Option<Box<dyn SdMachine>> {
        None
    }
}

/// DNS record type for DNS SD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DnsRecordType {
    /// SRV records (default): host and port from the record.
    Srv,
    /// IPv4 addresses, with the configured port.
    A,
    /// IPv6 addresses, with the configured port.
    Aaaa,
    /// Mail exchangers, with the configured port.
    Mx,
    /// Name servers, with the configured port.
    Ns,
}

/// `dns_sd_configs` entry as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDnsSd {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    refresh_interval: Nullable<PromDuration>,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    port: u16,
}

/// DNS-based discovery.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsSdConfig {
    /// Names to resolve.
    pub names: Vec<String>,
    /// Refresh period (default 30s).
    pub refresh_interval: PromDuration,
    /// Record type.
    pub kind: DnsRecordType,
    /// Port for A, AAAA, MX and NS records.
    pub port: u16,
}

impl RawDnsSd {
    fn validate(self) -> Result<DnsSdConfig, String> {
        if self.names.is_empty() {
            return Err("DNS-SD config must contain at least one SRV record name".into());
        }
        let kind = match self.kind.to_ascii_uppercase().as_str() {
            "" | "SRV" => DnsRecordType::Srv,
            "A" => DnsRecordType::A,
            "AAAA" => DnsRecordType::Aaaa,
            "MX" => DnsRecordType::Mx,
            "NS" => DnsRecordType::Ns,
            _ => return Err(format!("invalid DNS-SD records type {}", self.kind)),
        };
        if kind != DnsRecordType::Srv && self.port == 0 {
            return Err(
                "a port is required in DNS-SD configs for all record types except SRV".into(),
            );
        }
        Ok(DnsSdConfig {
            names: self.names,
            refresh_interval: self
                .refresh_interval
                .value()
                .unwrap_or(PromDuration::from_secs(30)),
            kind,
            port: self.port,
        })
    }
}
