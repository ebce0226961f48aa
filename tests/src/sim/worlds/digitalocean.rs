//! DigitalOcean discovery's world: the fake DigitalOcean account
//! (`crate::digitalocean::Account`, two droplets a page) in the generic cloud world
//! ([`super::cloud`]). A droplet carries the address to scrape in an `addr:` tag
//! (`addr:127_0_0_5:9100`; tags may hold letters, digits, `:`, `-` and `_`), the job
//! keeps active droplets and relabels them to it; every call must carry the account's
//! token.

use crate::cloud::Request;
use crate::digitalocean::{Account, Droplet};

use super::cloud::CloudModel;

fn tag_of(addr: &str) -> String {
    format!("addr:{}", addr.replace('.', "_"))
}

fn addr_of(d: &Droplet) -> Option<String> {
    d.tags
        .iter()
        .find_map(|t| t.strip_prefix("addr:"))
        .map(|a| a.replace('_', "."))
}

impl CloudModel for Account {
    const KEY: &'static str = "digitalocean_sd_configs";
    const NAME: &'static str = "digitalocean";
    const JOB: &'static str = "digitalocean";

    fn job() -> String {
        "    digitalocean_sd_configs: [{bearer_token: dop_v1_test, refresh_interval: 30s}]\n    relabel_configs:\n      - {source_labels: [__meta_digitalocean_status], regex: active, action: keep}\n      - {source_labels: [__meta_digitalocean_tags], regex: '.*,addr:(\\d+)_(\\d+)_(\\d+)_(\\d+):(\\d+),.*', target_label: __address__, replacement: '$1.$2.$3.$4:$5'}\n".into()
    }

    fn create(&mut self, n: u64, addr: &str) {
        // Two a page, so that refreshes page.
        self.per_page = 2;
        let id = n as i64;
        self.put(
            Droplet::new(
                id,
                &format!("vm-{n}"),
                &format!("198.51.{}.{}", n / 250, 1 + n % 250),
                &format!("10.108.{}.{}", n / 250, 1 + n % 250),
            )
            .tag("sim")
            .tag(&tag_of(addr)),
        );
    }

    fn ids(&self) -> Vec<u64> {
        self.droplets().map(|d| d.id as u64).collect()
    }

    fn delete(&mut self, id: u64) {
        self.remove(id as i64);
    }

    fn toggle(&mut self, id: u64) {
        let found = self.droplets().find(|d| d.id == id as i64).cloned();
        if let Some(mut d) = found {
            d.status = if d.status == "active" {
                "off"
            } else {
                "active"
            }
            .into();
            self.put(d);
        }
    }

    fn carry(&mut self, id: u64, addr: &str) {
        let found = self.droplets().find(|d| d.id == id as i64).cloned();
        if let Some(mut d) = found {
            d.tags.retain(|t| !t.starts_with("addr:"));
            d.tags.push(tag_of(addr));
            self.put(d);
        }
    }

    fn addresses(&self) -> Vec<String> {
        let s: std::collections::BTreeSet<String> = self
            .droplets()
            .filter(|d| d.status == "active")
            .filter_map(addr_of)
            .collect();
        s.into_iter().collect()
    }

    fn is_first(req: &Request) -> bool {
        req.path == "/v2/droplets" && req.param("page").is_none()
    }

    fn is_last(_req: &Request, body: &str) -> bool {
        serde_json::from_str::<serde_json::Value>(body)
            .map(|v| v["links"]["pages"].get("next").is_none())
            .unwrap_or(false)
    }

    fn denied() -> (u16, String) {
        (
            401,
            r#"{"id":"Unauthorized","message":"Unable to authenticate you"}"#.into(),
        )
    }
}
