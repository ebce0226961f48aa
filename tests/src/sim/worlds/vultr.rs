//! Vultr discovery's world: the fake Vultr account (`crate::vultr::Account`, which
//! grants two instances a page) in the generic cloud world ([`super::cloud`]). An
//! instance carries the address to scrape in an `addr=` tag, the job keeps instances
//! whose server status is `ok` and relabels them to it; every call must carry the
//! account's key.

use crate::cloud::Request;
use crate::vultr::{Account, Instance};

use super::cloud::CloudModel;

fn addr_of(i: &Instance) -> Option<String> {
    i.tags
        .iter()
        .find_map(|t| t.strip_prefix("addr="))
        .map(str::to_owned)
}

impl CloudModel for Account {
    const KEY: &'static str = "vultr_sd_configs";
    const NAME: &'static str = "vultr";
    const JOB: &'static str = "vultr";

    fn job() -> String {
        "    vultr_sd_configs: [{bearer_token: VULTRTESTKEY, refresh_interval: 30s}]\n    relabel_configs:\n      - {source_labels: [__meta_vultr_instance_server_status], regex: ok, action: keep}\n      - {source_labels: [__meta_vultr_instance_tags], regex: '.*,addr=([^,]+),.*', target_label: __address__}\n".into()
    }

    fn create(&mut self, n: u64, addr: &str) {
        self.max_per_page = 2;
        self.put(
            Instance::new(
                n as u32,
                &format!("vm-{n}"),
                &format!("198.51.{}.{}", n / 250, 1 + n % 250),
            )
            .tag("sim")
            .tag(&format!("addr={addr}")),
        );
    }

    fn ids(&self) -> Vec<u64> {
        (0..self.instances().count() as u64).collect()
    }

    fn delete(&mut self, id: u64) {
        let found = self.instances().nth(id as usize).map(|i| i.id.clone());
        if let Some(i) = found {
            self.remove(&i);
        }
    }

    fn toggle(&mut self, id: u64) {
        let found = self.instances().nth(id as usize).cloned();
        if let Some(mut i) = found {
            i.server_status = if i.server_status == "ok" {
                "locked"
            } else {
                "ok"
            }
            .into();
            self.put(i);
        }
    }

    fn carry(&mut self, id: u64, addr: &str) {
        let found = self.instances().nth(id as usize).cloned();
        if let Some(mut i) = found {
            i.tags.retain(|t| !t.starts_with("addr="));
            i.tags.push(format!("addr={addr}"));
            self.put(i);
        }
    }

    fn addresses(&self) -> Vec<String> {
        let s: std::collections::BTreeSet<String> = self
            .instances()
            .filter(|i| i.server_status == "ok")
            .filter_map(addr_of)
            .collect();
        s.into_iter().collect()
    }

    fn is_first(req: &Request) -> bool {
        req.param("cursor").is_none()
    }

    fn is_last(_req: &Request, body: &str) -> bool {
        serde_json::from_str::<serde_json::Value>(body)
            .map(|v| v["meta"]["links"]["next"] == "")
            .unwrap_or(false)
    }

    fn denied() -> (u16, String) {
        (401, r#"{"error":"Invalid API token.","status":401}"#.into())
    }
}
