//! Linode discovery's world: the fake Linode account (`crate::linode::Account`, two
//! items a page, a manual clock that moves a second with every change and every call) in the generic
//! cloud world ([`super::cloud`]). A refresh is an event poll or a full listing
//! (instances, addresses, IPv6 ranges); the world snapshots the account at either's
//! first call, so a poll sees every change made since; a poll that finds events must be
//! followed by a full listing at once. An instance carries the address
//! to scrape in an `addr=` tag; the job keeps running instances and relabels them to it.

use crate::cloud::Request;
use crate::linode::{Account, Instance};

use super::cloud::CloudModel;

fn addr_of(i: &Instance) -> Option<String> {
    i.tags
        .iter()
        .find_map(|t| t.strip_prefix("addr="))
        .map(str::to_owned)
}

impl CloudModel for Account {
    const KEY: &'static str = "linode_sd_configs";
    const NAME: &'static str = "linode";
    const JOB: &'static str = "linode";

    fn job() -> String {
        "    linode_sd_configs: [{authorization: {credentials: LINODETESTTOKEN}, refresh_interval: 30s}]\n    relabel_configs:\n      - {source_labels: [__meta_linode_status], regex: running, action: keep}\n      - {source_labels: [__meta_linode_tags], regex: '.*,addr=([^,]+),.*', target_label: __address__}\n".into()
    }

    fn create(&mut self, n: u64, addr: &str) {
        self.max_page_size = 2;
        // The world's own clock, never the wall's: runs repeat byte for byte.
        self.clock.get_or_insert(1_700_000_000);
        self.put(
            Instance::new(
                n as i64,
                &format!("vm-{n}"),
                &format!("198.51.{}.{}", n / 250, 1 + n % 250),
            )
            .tag("sim")
            .tag(&format!("addr={addr}")),
        );
    }

    fn ids(&self) -> Vec<u64> {
        self.instances().map(|i| i.id as u64).collect()
    }

    fn delete(&mut self, id: u64) {
        self.remove(id as i64);
    }

    fn toggle(&mut self, id: u64) {
        let found = self.instances().find(|i| i.id == id as i64).cloned();
        if let Some(mut i) = found {
            i.status = if i.status == "running" {
                "offline"
            } else {
                "running"
            }
            .into();
            self.put(i);
        }
    }

    fn carry(&mut self, id: u64, addr: &str) {
        let found = self.instances().find(|i| i.id == id as i64).cloned();
        if let Some(mut i) = found {
            i.tags.retain(|t| !t.starts_with("addr="));
            i.tags.push(format!("addr={addr}"));
            self.put(i);
        }
    }

    fn addresses(&self) -> Vec<String> {
        let s: std::collections::BTreeSet<String> = self
            .instances()
            .filter(|i| i.status == "running")
            .filter_map(addr_of)
            .collect();
        s.into_iter().collect()
    }

    fn is_first(req: &Request) -> bool {
        req.path.ends_with("/account/events")
            || (req.path.ends_with("/linode/instances") && req.param("page") == Some("1"))
    }

    fn is_last(req: &Request, body: &str) -> bool {
        req.path.ends_with("/networking/ipv6/ranges")
            && serde_json::from_str::<serde_json::Value>(body)
                .map(|v| v["page"] == v["pages"])
                .unwrap_or(false)
    }

    fn answering(&mut self) {
        // The API's clock (its answers' `Date`) moves a second with every call too.
        if let Some(c) = &mut self.clock {
            *c += 1;
        }
    }

    fn answered(&mut self, req: &Request, body: &str) {
        let found = || {
            serde_json::from_str::<serde_json::Value>(body)
                .map(|v| v["results"].as_u64().unwrap_or(0))
                .unwrap_or(0)
        };
        let now = self.now();
        let t = &mut self.sim;
        if req.path.ends_with("/account/events") {
            t.start = Some(now);
            t.events_found = found() > 0;
            if !t.events_found {
                // A quiet poll ends its refresh (or a tenth poll's listing does, with
                // the same start).
                t.completed = t.start;
            }
            return;
        }
        if req.path.ends_with("/linode/instances")
            && req.param("page") == Some("1")
            && !t.events_found
        {
            t.start = Some(now);
        }
        t.events_found = false;
        if Self::is_last(req, body) {
            t.completed = t.start;
        }
    }

    fn may_ask(&self, req: &Request) -> Result<(), String> {
        // A poll asks for the events since the last completed refresh began (less a
        // second): no later, or it misses changes.
        if !req.path.ends_with("/account/events") {
            return Ok(());
        }
        let (Some(done), Some(filter)) = (self.sim.completed, req.header("x-filter")) else {
            return Ok(());
        };
        let since = serde_json::from_str::<serde_json::Value>(filter)
            .ok()
            .and_then(|v| v["created"]["+gte"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let bound = crate::cloud::datetime(done - 1);
        if since > bound {
            return Err(format!(
                "the poll asks for events since {since}, after {bound} (the last completed refresh began at {})",
                crate::cloud::datetime(done)
            ));
        }
        Ok(())
    }

    fn may_follow(last: Option<(&Request, &str)>, req: &Request) -> Result<(), String> {
        // An event poll that found events is followed by a full listing at once.
        let Some((poll, body)) = last.filter(|(r, _)| r.path.ends_with("/account/events")) else {
            return Ok(());
        };
        let events = serde_json::from_str::<serde_json::Value>(body)
            .map(|v| v["results"].as_u64().unwrap_or(0))
            .unwrap_or(0);
        if events > 0
            && !(req.path.ends_with("/linode/instances") && req.param("page") == Some("1"))
        {
            return Err(format!(
                "the poll {} found {events} events, but the next call is {}, not a full listing",
                poll.line(),
                req.line()
            ));
        }
        Ok(())
    }

    fn denied() -> (u16, String) {
        // 403, not 401: a 401 on the event poll turns polling off for good (3.x), and
        // the world is to exercise it.
        (
            403,
            r#"{"errors":[{"reason":"You do not have permission to access this resource"}]}"#
                .into(),
        )
    }
}
