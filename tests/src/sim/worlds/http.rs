//! HTTP discovery's world: one endpoint serving a JSON list of target groups that
//! changes now and then, and sometimes answers 500 (the agent keeps its last targets).

use std::collections::BTreeMap;
use std::time::Duration;

use trawl_core::io::{IoOp, Origin, OwnedIoEvent, RequestId};

use super::{Answer, Reply, SdWorld, WorldJob};
use crate::sim::Rng;

/// The endpoint.
pub(crate) const SD_URL: &str = "http://127.0.0.1:9000/sd";

/// The world.
#[derive(Debug, Default)]
pub(crate) struct HttpWorld {
    /// What the endpoint answers (`None`: 500), with the addresses it declares.
    doc: Option<(String, Vec<String>)>,
    /// Addresses of the last successful answer served.
    served: Vec<String>,
}

impl HttpWorld {
    fn new_doc(rng: &mut Rng, pool: &[String]) -> (String, Vec<String>) {
        let mut groups = Vec::new();
        let mut addrs = Vec::new();
        for g in 0..(1 + rng.below(3)) {
            let picked: Vec<String> = pool.iter().filter(|_| rng.chance(20)).cloned().collect();
            addrs.extend(picked.iter().cloned());
            let targets: Vec<String> = picked.iter().map(|a| format!("\"{a}\"")).collect();
            groups.push(format!(
                "{{\"targets\": [{}], \"labels\": {{\"group\": \"{g}\"}}}}",
                targets.join(", ")
            ));
        }
        (format!("[{}]", groups.join(", ")), addrs)
    }
}

impl SdWorld for HttpWorld {
    fn key(&self) -> &'static str {
        "http_sd_configs"
    }

    fn init(&mut self, rng: &mut Rng, pool: &[String]) {
        self.doc = Some(HttpWorld::new_doc(rng, pool));
    }

    fn jobs(&mut self, _rng: &mut Rng) -> Vec<WorldJob> {
        vec![WorldJob {
            name: "web",
            sd: format!("    http_sd_configs: [{{url: '{SD_URL}', refresh_interval: 1m}}]\n"),
            follows_variant: true,
        }]
    }

    fn answer(
        &mut self,
        _id: RequestId,
        op: &IoOp,
        rng: &mut Rng,
    ) -> Option<Result<Answer, String>> {
        let IoOp::Http(r) = op else { return None };
        if !matches!(r.origin, Origin::Discovery { .. }) || r.url != SD_URL {
            return None;
        }
        let events = match &self.doc {
            Some((d, addrs)) => {
                self.served = addrs.clone();
                vec![
                    Reply::head(200, "OK", "application/json", false),
                    Reply::body(d.clone().into_bytes()),
                    Reply::end(),
                ]
            }
            None => vec![Reply::head(
                500,
                "Internal Server Error",
                "text/plain",
                false,
            )],
        };
        Some(Ok(Answer::After(
            Duration::from_millis(1 + rng.below(300)),
            events,
        )))
    }

    fn change(
        &mut self,
        rng: &mut Rng,
        pool: &[String],
        _open: &BTreeMap<RequestId, IoOp>,
    ) -> Vec<(RequestId, OwnedIoEvent)> {
        self.doc = if rng.chance(80) {
            Some(HttpWorld::new_doc(rng, pool))
        } else {
            None
        };
        Vec::new()
    }

    fn addresses(&self) -> Vec<String> {
        self.served.clone()
    }

    fn settle(&self) -> Duration {
        // One refresh and the endpoint's latency.
        Duration::from_millis(60_300)
    }

    fn describe(&self) -> String {
        format!("http doc {:?}", self.doc)
    }
}
