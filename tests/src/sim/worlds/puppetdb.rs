//! PuppetDB discovery's world: the fake PuppetDB (`crate::puppetdb::Db`) in the generic
//! cloud world ([`super::cloud`]), one query a refresh. A node's `Class[Node_exporter]`
//! carries the address to scrape in its `listen` parameter and its state in `ensure`;
//! the job asks for that class with parameters and keeps the resources whose `ensure`
//! is `running`.

use serde_json::json;

use crate::cloud::Request;
use crate::puppetdb::{Db, Resource};

use super::cloud::CloudModel;

const TITLE: &str = "Node_exporter";

impl CloudModel for Db {
    const KEY: &'static str = "puppetdb_sd_configs";
    const NAME: &'static str = "puppetdb";
    const JOB: &'static str = "puppetdb";

    fn job() -> String {
        // The URL is the world's: the test-only API base does not apply to PuppetDB,
        // whose URL is the block's own.
        "    puppetdb_sd_configs: [{url: 'http://puppetdb.sim', query: 'resources { type = \"Class\" and title = \"Node_exporter\" }', include_parameters: true, refresh_interval: 30s}]\n    relabel_configs:\n      - {source_labels: [__meta_puppetdb_parameter_ensure], regex: running, action: keep}\n      - {source_labels: [__meta_puppetdb_parameter_listen], target_label: __address__}\n".into()
    }

    fn create(&mut self, n: u64, addr: &str) {
        let node = format!("node-{n}.example.com");
        self.resources.push(
            Resource::class(&node, TITLE)
                .param("ensure", json!("running"))
                .param("listen", json!(addr)),
        );
        // Other resources the query must leave out.
        self.resources.push(Resource::class(&node, "Ssh"));
    }

    fn ids(&self) -> Vec<u64> {
        self.resources
            .iter()
            .filter(|r| r.title == TITLE)
            .filter_map(|r| {
                r.certname
                    .strip_prefix("node-")?
                    .split('.')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    }

    fn delete(&mut self, id: u64) {
        let node = format!("node-{id}.example.com");
        self.resources.retain(|r| r.certname != node);
    }

    fn toggle(&mut self, id: u64) {
        let node = format!("node-{id}.example.com");
        for r in self
            .resources
            .iter_mut()
            .filter(|r| r.certname == node && r.title == TITLE)
        {
            let running = r.parameters["ensure"] == "running";
            r.parameters["ensure"] = json!(if running { "stopped" } else { "running" });
        }
    }

    fn carry(&mut self, id: u64, addr: &str) {
        let node = format!("node-{id}.example.com");
        for r in self
            .resources
            .iter_mut()
            .filter(|r| r.certname == node && r.title == TITLE)
        {
            r.parameters["listen"] = json!(addr);
        }
    }

    fn addresses(&self) -> Vec<String> {
        let s: std::collections::BTreeSet<String> = self
            .resources
            .iter()
            .filter(|r| r.title == TITLE && r.parameters["ensure"] == "running")
            .filter_map(|r| r.parameters["listen"].as_str().map(str::to_owned))
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
        (403, r#"{"error":"Permission denied"}"#.into())
    }
}
