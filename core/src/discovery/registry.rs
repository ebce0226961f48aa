//! The one list of service-discovery mechanisms.
//!
//! Every mechanism trawl knows — run or only validated — is one line of
//! [`with_mechanisms!`], sorted by key (the order Prometheus 3.x reads a scrape config's
//! blocks in). From this list the scrape config gets one field per key (so a misspelt key
//! stays an error), the parser validates the blocks, the agent exports the counters, and
//! `trawl check config` lists what does not run.

use super::mechanism::{Counter, Mechanism};

/// Calls `$callback! { { args } key => Type, … }` with every registered mechanism.
///
/// **Adding a mechanism**: write its module under `core/src/discovery/` (a type
/// implementing [`Mechanism`]), add one line here, and one fake world to the simulator.
macro_rules! with_mechanisms {
    ($callback:ident { $($args:tt)* }) => {
        $callback! {
            { $($args)* }
            aws_sd_configs => $crate::discovery::aws::Aws,
            azure_sd_configs => $crate::discovery::azure::Azure,
            consul_sd_configs => $crate::discovery::consul::Consul,
            digitalocean_sd_configs => $crate::discovery::digitalocean::DigitalOcean,
            dns_sd_configs => $crate::discovery::dns::Dns,
            docker_sd_configs => $crate::discovery::moby::Docker,
            dockerswarm_sd_configs => $crate::discovery::moby::DockerSwarm,
            ec2_sd_configs => $crate::discovery::aws::Ec2,
            ecs_sd_configs => $crate::discovery::aws::Ecs,
            elasticache_sd_configs => $crate::discovery::aws::Elasticache,
            eureka_sd_configs => $crate::discovery::eureka::Eureka,
            file_sd_configs => $crate::discovery::file::File,
            gce_sd_configs => $crate::discovery::gce::Gce,
            hetzner_sd_configs => $crate::discovery::hetzner::Hetzner,
            http_sd_configs => $crate::discovery::http::Http,
            ionos_sd_configs => $crate::discovery::ionos::Ionos,
            kubernetes_sd_configs => $crate::discovery::kubernetes::Kubernetes,
            kuma_sd_configs => $crate::discovery::kuma::Kuma,
            lightsail_sd_configs => $crate::discovery::aws::Lightsail,
            linode_sd_configs => $crate::discovery::linode::Linode,
            marathon_sd_configs => $crate::discovery::marathon::Marathon,
            msk_sd_configs => $crate::discovery::aws::Msk,
            nerve_sd_configs => $crate::discovery::zookeeper::Nerve,
            nomad_sd_configs => $crate::discovery::nomad::Nomad,
            oci_sd_configs => $crate::discovery::oci::Oci,
            openstack_sd_configs => $crate::discovery::openstack::OpenStack,
            outscale_sd_configs => $crate::discovery::outscale::Outscale,
            ovhcloud_sd_configs => $crate::discovery::ovhcloud::OvhCloud,
            puppetdb_sd_configs => $crate::discovery::puppetdb::PuppetDb,
            rds_sd_configs => $crate::discovery::aws::Rds,
            scaleway_sd_configs => $crate::discovery::scaleway::Scaleway,
            serverset_sd_configs => $crate::discovery::zookeeper::Serverset,
            stackit_sd_configs => $crate::discovery::stackit::Stackit,
            static_configs => $crate::discovery::statics::Static,
            triton_sd_configs => $crate::discovery::triton::Triton,
            uyuni_sd_configs => $crate::discovery::uyuni::Uyuni,
            vultr_sd_configs => $crate::discovery::vultr::Vultr,
        }
    };
}
pub(crate) use with_mechanisms;

/// Adds one field per mechanism to a raw scrape config, and `take_sd_configs`, which
/// validates them in registry order (static, coalesced, last), then hands the struct to
/// `$next!` (the HTTP client fields).
macro_rules! sd_blocks_struct {
    (
        { $next:ident { $(#[$m:meta])* $vis:vis struct $name:ident { $($body:tt)* } } }
        $($key:ident => $ty:path,)*
    ) => {
        $next! {
            $(#[$m])*
            $vis struct $name {
                $($body)*
                $(
                    #[serde(default)]
                    $key: Vec<Option<<$ty as $crate::discovery::mechanism::Mechanism>::Raw>>,
                )*
            }
        }

        impl $name {
            /// Validates the service-discovery blocks, in Prometheus's order.
            fn take_sd_configs(
                &mut self,
                cx: &$crate::discovery::mechanism::SdContext<'_>,
                at: &$crate::common::yaml::Path,
            ) -> Result<Vec<$crate::discovery::mechanism::SdConfig>, $crate::discovery::mechanism::Invalid> {
                let mut out = Vec::new();
                let mut tail = Vec::new();
                $(
                    $crate::discovery::mechanism::take_blocks::<$ty>(
                        std::mem::take(&mut self.$key),
                        cx,
                        at,
                        &mut out,
                        &mut tail,
                    )?;
                )*
                out.extend(tail);
                Ok(out)
            }
        }
    };
}
pub(crate) use sd_blocks_struct;

/// What the rest of the program may know of a registered mechanism.
#[derive(Clone, Copy, Debug)]
pub struct MechanismInfo {
    /// Key in a scrape config (`dns_sd_configs`).
    pub key: &'static str,
    /// Name in provider names (`dns`).
    pub name: &'static str,
    /// trawl runs it (else its blocks are only validated).
    pub runs: bool,
    /// Its counters.
    pub counters: &'static [Counter],
    /// Its summaries of durations (seconds).
    pub summaries: &'static [Counter],
    /// A small valid block as YAML flow (every mechanism that runs has one).
    pub example: Option<&'static str>,
    pub(crate) go_type: &'static str,
    pub(crate) nested_go_type: fn(&str) -> Option<&'static str>,
}

macro_rules! registry_items {
    ({} $($key:ident => $ty:path,)*) => {
        /// Every registered mechanism, sorted by key.
        pub const MECHANISMS: &[MechanismInfo] = &[
            $(
                MechanismInfo {
                    key: <$ty as Mechanism>::KEY,
                    name: <$ty as Mechanism>::NAME,
                    runs: <$ty as Mechanism>::RUNS,
                    counters: <$ty as Mechanism>::COUNTERS,
                    summaries: <$ty as Mechanism>::SUMMARIES,
                    example: <$ty as Mechanism>::EXAMPLE,
                    go_type: <$ty as Mechanism>::GO_TYPE,
                    nested_go_type: <$ty as Mechanism>::nested_go_type,
                },
            )*
        ];

        /// The field names the list declares (checked against each `KEY`).
        #[cfg(test)]
        const FIELDS: &[&str] = &[$(stringify!($key),)*];
    };
}
with_mechanisms!(registry_items {});

/// The mechanism registered under `key`.
pub fn by_key(key: &str) -> Option<&'static MechanismInfo> {
    MECHANISMS.iter().find(|m| m.key == key)
}

/// Every counter of every mechanism, in registry order.
pub fn counters() -> impl Iterator<Item = &'static Counter> {
    MECHANISMS.iter().flat_map(|m| m.counters.iter())
}

/// Every summary of every mechanism, in registry order.
pub fn summaries() -> impl Iterator<Item = &'static Counter> {
    MECHANISMS.iter().flat_map(|m| m.summaries.iter())
}

/// The Go type yaml.v2 names for an unknown field at the end of `keys` (the mapping keys
/// of a path into a scrape config), if the path is inside a service-discovery block.
pub(crate) fn go_type(keys: &[&str]) -> Option<&'static str> {
    let (i, m) = keys
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, k)| by_key(k).map(|m| (i, m)))?;
    match &keys[i + 1..] {
        [] => Some(m.go_type),
        [.., last] => (m.nested_go_type)(last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_and_keys_match_fields() {
        let keys: Vec<&str> = MECHANISMS.iter().map(|m| m.key).collect();
        assert_eq!(keys, FIELDS, "a line's field name differs from its KEY");
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            keys, sorted,
            "keep the list sorted by key, without duplicates"
        );
        for m in MECHANISMS {
            if m.key != "static_configs" {
                assert_eq!(m.key, format!("{}_sd_configs", m.name));
            }
        }
        let names: std::collections::BTreeSet<_> = MECHANISMS.iter().map(|m| m.name).collect();
        assert_eq!(names.len(), MECHANISMS.len(), "names are unique");
    }

    #[test]
    fn every_running_mechanism_has_an_example_that_validates() {
        use crate::config::{Config, ParseOptions};
        for m in MECHANISMS {
            let Some(example) = m.example else {
                assert!(!m.runs, "{} runs but has no EXAMPLE", m.key);
                continue;
            };
            let yaml = format!(
                "scrape_configs:\n- {{job_name: j, {}: [{example}]}}\n",
                m.key
            );
            let c = Config::parse(&yaml, &ParseOptions::for_path("/etc/prometheus/p.yml"))
                .unwrap_or_else(|e| panic!("{}'s example: {e}", m.key));
            let sd = &c.scrape_configs[0].sd_configs;
            assert_eq!(sd.len(), 1, "{}", m.key);
            assert_eq!(sd[0].key(), m.key);
        }
    }
}
