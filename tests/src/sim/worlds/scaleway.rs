//! Scaleway discovery's world: the fake Scaleway project (`crate::scaleway::Project`,
//! two servers a page, the total in `X-Total-Count`) in the generic cloud world
//! ([`super::cloud`]), role `instance`. A server carries the address to scrape in an
//! `addr=` tag; the job keeps running servers and relabels them to it. The block's
//! `api_url` is the world's (Scaleway's API URL is the block's own).

use crate::cloud::{Reply, Request};
use crate::scaleway::{Project, Server};

use super::cloud::CloudModel;

fn addr_of(s: &Server) -> Option<String> {
    s.tags
        .iter()
        .find_map(|t| t.strip_prefix("addr="))
        .map(str::to_owned)
}

impl CloudModel for Project {
    const KEY: &'static str = "scaleway_sd_configs";
    const NAME: &'static str = "scaleway";
    const JOB: &'static str = "scaleway";

    fn job() -> String {
        "    scaleway_sd_configs: [{role: instance, api_url: 'http://scaleway.sim', project_id: cb334986-b054-4725-9d5a-30850fdc6015, access_key: SCWABCDEFGHIJ0123456, secret_key: 6d6579e5-a5b9-49fc-a35f-b4feb9b87301, refresh_interval: 30s}]\n    relabel_configs:\n      - {source_labels: [__meta_scaleway_instance_status], regex: running, action: keep}\n      - {source_labels: [__meta_scaleway_instance_tags], regex: '.*,addr=([^,]+),.*', target_label: __address__}\n".into()
    }

    fn create(&mut self, n: u64, addr: &str) {
        self.max_per_page = 2;
        self.put(
            Server::new(
                n as u32,
                &format!("vm-{n}"),
                &format!("198.51.{}.{}", n / 250, 1 + n % 250),
            )
            .tag("sim")
            .tag(&format!("addr={addr}")),
        );
    }

    fn ids(&self) -> Vec<u64> {
        (0..self.servers().count() as u64).collect()
    }

    fn delete(&mut self, id: u64) {
        let found = self.servers().nth(id as usize).map(|s| s.id.clone());
        if let Some(s) = found {
            self.remove(&s);
        }
    }

    fn toggle(&mut self, id: u64) {
        let found = self.servers().nth(id as usize).cloned();
        if let Some(mut s) = found {
            s.state = if s.state == "running" {
                "stopped"
            } else {
                "running"
            }
            .into();
            self.put(s);
        }
    }

    fn carry(&mut self, id: u64, addr: &str) {
        let found = self.servers().nth(id as usize).cloned();
        if let Some(mut s) = found {
            s.tags.retain(|t| !t.starts_with("addr="));
            s.tags.push(format!("addr={addr}"));
            self.put(s);
        }
    }

    fn addresses(&self) -> Vec<String> {
        let s: std::collections::BTreeSet<String> = self
            .servers()
            .filter(|s| s.state == "running")
            .filter_map(addr_of)
            .collect();
        s.into_iter().collect()
    }

    fn is_first(req: &Request) -> bool {
        req.param("page") == Some("1")
    }

    fn is_last(_req: &Request, _body: &str) -> bool {
        false
    }

    fn is_last_reply(req: &Request, reply: &Reply) -> bool {
        // The SDK stops at the page count the first page's size and the total give.
        let total: u64 = reply
            .headers
            .iter()
            .find(|(k, _)| k == "X-Total-Count")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let page: u64 = req.param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let n = serde_json::from_str::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v["servers"].as_array().map(|a| a.len() as u64))
            .unwrap_or(0);
        // Two a page in this world.
        n == 0 || page * 2 >= total
    }

    fn denied() -> (u16, String) {
        (
            401,
            r#"{"message":"authentication is denied","method":"api_key","reason":"not_found","type":"denied_authentication"}"#
                .into(),
        )
    }
}
