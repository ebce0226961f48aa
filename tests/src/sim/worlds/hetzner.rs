//! Hetzner Cloud discovery's world: the fake Hetzner project
//! (`crate::hetzner::Project`, which grants two servers a page) in the generic cloud
//! world ([`super::cloud`]). A server carries the address to scrape in its `addr` label
//! (`127.0.0.5_9100`: label values hold no `:`), the job keeps running servers with
//! `env=prod` (its label selector) and relabels them to it; every call must carry the
//! project's token.

use crate::cloud::Request;
use crate::hetzner::{CloudServer, Project};

use super::cloud::CloudModel;

impl CloudModel for Project {
    const KEY: &'static str = "hetzner_sd_configs";
    const NAME: &'static str = "hetzner";
    const JOB: &'static str = "hetzner";

    fn job() -> String {
        "    hetzner_sd_configs: [{role: hcloud, bearer_token: hcloud-test-token, label_selector: 'env=prod', refresh_interval: 30s}]\n    relabel_configs:\n      - {source_labels: [__meta_hetzner_server_status], regex: running, action: keep}\n      - {source_labels: [__meta_hetzner_hcloud_label_addr], regex: '(.+)_(\\d+)', target_label: __address__, replacement: '$1:$2'}\n".into()
    }

    fn create(&mut self, n: u64, addr: &str) {
        self.max_per_page = 2;
        self.networks.insert(1, "sim-net".into());
        // Every fifth server is out of the selector.
        let env = if n.is_multiple_of(5) { "dev" } else { "prod" };
        let mut s = CloudServer::new(
            n as i64,
            &format!("vm-{n}"),
            &format!("198.51.{}.{}", n / 250, 1 + n % 250),
        )
        .label("env", env)
        .label("addr", &addr.replace(':', "_"));
        s.private
            .push((1, format!("10.0.{}.{}", n / 250, 1 + n % 250)));
        self.put(s);
    }

    fn ids(&self) -> Vec<u64> {
        self.servers().map(|s| s.id as u64).collect()
    }

    fn delete(&mut self, id: u64) {
        self.remove(id as i64);
    }

    fn toggle(&mut self, id: u64) {
        let found = self.servers().find(|s| s.id == id as i64).cloned();
        if let Some(mut s) = found {
            s.status = if s.status == "running" {
                "off"
            } else {
                "running"
            }
            .into();
            self.put(s);
        }
    }

    fn carry(&mut self, id: u64, addr: &str) {
        let found = self.servers().find(|s| s.id == id as i64).cloned();
        if let Some(s) = found {
            self.put(s.label("addr", &addr.replace(':', "_")));
        }
    }

    fn addresses(&self) -> Vec<String> {
        let s: std::collections::BTreeSet<String> = self
            .servers()
            .filter(|s| s.status == "running")
            .filter(|s| s.labels.get("env").map(String::as_str) == Some("prod"))
            .filter_map(|s| s.labels.get("addr"))
            .filter_map(|a| a.rsplit_once('_').map(|(h, p)| format!("{h}:{p}")))
            .collect();
        s.into_iter().collect()
    }

    fn is_first(req: &Request) -> bool {
        req.path == "/servers" && req.param("page") == Some("1")
    }

    fn is_last(req: &Request, body: &str) -> bool {
        req.path == "/networks"
            && serde_json::from_str::<serde_json::Value>(body)
                .map(|v| v["meta"]["pagination"]["next_page"].is_null())
                .unwrap_or(false)
    }

    fn denied() -> (u16, String) {
        (
            401,
            r#"{"error":{"code":"unauthorized","message":"unable to authenticate","details":{}}}"#
                .into(),
        )
    }
}
