//! IONOS Cloud discovery's world: one datacenter of the fake IONOS Cloud API
//! (`crate::ionos::Cloud`) in the generic cloud world ([`super::cloud`]). A server
//! carries the address to scrape after an `@` in its name (its NIC addresses are the
//! world's and never dialled), the job keeps running servers and relabels them to it;
//! every call must carry the account's token.

use crate::cloud::Request;
use crate::ionos::{Cloud, Server};

use super::cloud::CloudModel;

const DC: &str = "8feda53f-15f0-447f-badf-ebe32dad2fc0";

impl CloudModel for Cloud {
    const KEY: &'static str = "ionos_sd_configs";
    const NAME: &'static str = "ionos";
    const JOB: &'static str = "ionos";

    fn job() -> String {
        format!(
            "    ionos_sd_configs: [{{datacenter_id: {DC}, bearer_token: ionos-test-token, refresh_interval: 30s}}]\n    relabel_configs:\n      - {{source_labels: [__meta_ionos_server_state], regex: RUNNING, action: keep}}\n      - {{source_labels: [__meta_ionos_server_name], regex: '.*@(.+)', target_label: __address__}}\n"
        )
    }

    fn create(&mut self, n: u64, addr: &str) {
        self.put(
            DC,
            Server::new(
                n as u32,
                &format!("vm-{n}@{addr}"),
                &format!("198.51.{}.{}", n / 250, 1 + n % 250),
            ),
        );
    }

    fn ids(&self) -> Vec<u64> {
        (0..self.servers(DC).len() as u64).collect()
    }

    fn delete(&mut self, id: u64) {
        if let Some(s) = self.servers(DC).get(id as usize) {
            self.remove(DC, &s.id);
        }
    }

    fn toggle(&mut self, id: u64) {
        if let Some(mut s) = self.servers(DC).get(id as usize).cloned() {
            s.vm_state = if s.vm_state == "RUNNING" {
                "SHUTOFF"
            } else {
                "RUNNING"
            }
            .into();
            self.put(DC, s);
        }
    }

    fn carry(&mut self, id: u64, addr: &str) {
        if let Some(mut s) = self.servers(DC).get(id as usize).cloned() {
            let stem = s.name.split('@').next().unwrap_or_default().to_owned();
            s.name = format!("{stem}@{addr}");
            self.put(DC, s);
        }
    }

    fn addresses(&self) -> Vec<String> {
        let s: std::collections::BTreeSet<String> = self
            .servers(DC)
            .into_iter()
            .filter(|s| s.vm_state == "RUNNING")
            .filter_map(|s| s.name.split_once('@').map(|(_, a)| a.to_owned()))
            .collect();
        s.into_iter().collect()
    }

    fn is_first(_req: &Request) -> bool {
        true
    }

    fn is_last(_req: &Request, _body: &str) -> bool {
        true
    }

    fn denied() -> (u16, String) {
        (
            401,
            r#"{"httpStatus":401,"messages":[{"errorCode":"315","message":"Unauthorized"}]}"#
                .into(),
        )
    }
}
