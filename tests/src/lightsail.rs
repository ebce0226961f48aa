//! A fake Amazon Lightsail API for the discovery tests (moto has no Lightsail), after
//! Lightsail's API reference and botocore's service model (`lightsail/2016-11-28`):
//! AWS's JSON 1.1 protocol — `POST /` with `X-Amz-Target:
//! Lightsail_20161128.<Operation>` and a JSON body — for `GetInstances`, answered a
//! page at a time (`pageToken` in, `nextPageToken` out) with each instance's `name`,
//! `arn`, `supportCode`, `createdAt`, `location`, `resourceType`, `tags`,
//! `blueprintId`, `blueprintName`, `bundleId`, `isStaticIp`, `privateIpAddress`,
//! `publicIpAddress`, `ipv6Addresses` and `state`. Another operation is answered 400
//! `InvalidAction`, a malformed body 400 `SerializationException`, as AWS answers.
//!
//! What it does not emulate: SigV4 (the tests put botocore's checking front before it),
//! every other operation, the instances' networking, hardware and add-on fields,
//! throttling.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

/// One instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Its name (unique).
    pub name: String,
    /// `privateIpAddress` (`None`: not set yet).
    pub private_ip: Option<String>,
    /// `publicIpAddress`.
    pub public_ip: Option<String>,
    /// `state.name` (`running`, `stopped`, `pending`…).
    pub state: String,
    /// `location.availabilityZone`.
    pub zone: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

impl Instance {
    /// A running instance with a private address.
    pub fn new(name: &str, private_ip: &str) -> Instance {
        Instance {
            name: name.into(),
            private_ip: Some(private_ip.into()),
            public_ip: None,
            state: "running".into(),
            zone: "us-east-1a".into(),
            tags: BTreeMap::new(),
        }
    }

    /// With a tag.
    pub fn tag(mut self, k: &str, v: &str) -> Instance {
        self.tags.insert(k.into(), v.into());
        self
    }

    fn json(&self, n: usize) -> Value {
        let mut v = json!({
            "name": self.name,
            "arn": format!("arn:aws:lightsail:us-east-1:111122223333:Instance/{:08x}-sim", n),
            "supportCode": format!("111122223333/i-{:017x}", n),
            "createdAt": 1.7e9,
            "location": {"availabilityZone": self.zone, "regionName": "us-east-1"},
            "resourceType": "Instance",
            "tags": self.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
            "blueprintId": "debian_12",
            "blueprintName": "Debian",
            "bundleId": "nano_3_0",
            "isStaticIp": false,
            "ipv6Addresses": [],
            "state": {"code": if self.state == "running" { 16 } else { 80 }, "name": self.state},
        });
        if let Some(ip) = &self.private_ip {
            v["privateIpAddress"] = json!(ip);
        }
        if let Some(ip) = &self.public_ip {
            v["publicIpAddress"] = json!(ip);
        }
        v
    }
}

/// The account's instances.
#[derive(Clone, Debug, Default)]
pub struct Fleet {
    instances: BTreeMap<String, Instance>,
    /// Instances a page.
    pub page_size: usize,
}

fn aws_error(kind: &str, message: &str) -> (u16, String) {
    (400, json!({"__type": kind, "message": message}).to_string())
}

impl Fleet {
    /// No instances; two a page.
    pub fn new() -> Fleet {
        Fleet {
            instances: BTreeMap::new(),
            page_size: 2,
        }
    }

    /// Adds or replaces an instance (by name).
    pub fn put(&mut self, i: Instance) {
        self.instances.insert(i.name.clone(), i);
    }

    /// Deletes an instance.
    pub fn remove(&mut self, name: &str) -> bool {
        self.instances.remove(name).is_some()
    }

    /// Every instance, by name.
    pub fn all(&self) -> impl Iterator<Item = &Instance> {
        self.instances.values()
    }

    /// Answers a call: the operation (from `X-Amz-Target`) and its JSON body; the
    /// status and the JSON answer. Page tokens are the index of the page's first
    /// instance.
    pub fn answer(&self, target: Option<&str>, body: &[u8]) -> (u16, String) {
        let Some(op) = target.and_then(|t| t.strip_prefix("Lightsail_20161128.")) else {
            return aws_error("MissingAction", "Missing Action");
        };
        if op != "GetInstances" {
            return aws_error("InvalidAction", &format!("Unknown operation {op}"));
        }
        let Ok(req) = serde_json::from_slice::<Value>(body) else {
            return aws_error(
                "SerializationException",
                "Start of structure or map found where not expected.",
            );
        };
        let from = match req.get("pageToken") {
            None | Some(Value::Null) => 0,
            Some(Value::String(t)) => match t.parse::<usize>() {
                Ok(n) => n,
                Err(_) => return aws_error("InvalidInputException", "Invalid pageToken"),
            },
            Some(_) => return aws_error("SerializationException", "pageToken is not a string"),
        };
        let all: Vec<&Instance> = self.instances.values().collect();
        let size = self.page_size.max(1);
        let end = (from + size).min(all.len());
        let page: Vec<Value> = all
            .get(from..end)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, x)| x.json(from + i))
            .collect();
        let mut v = json!({ "instances": page });
        if end < all.len() {
            v["nextPageToken"] = json!(end.to_string());
        }
        (200, v.to_string())
    }
}

type State = (Fleet, Vec<(u16, String)>, Vec<(Option<String>, String)>);

#[derive(Debug)]
struct Shared {
    inner: Mutex<State>,
    stop: AtomicBool,
}

/// A running fake Lightsail endpoint; stops when dropped.
#[derive(Debug)]
pub struct LightsailServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl LightsailServer {
    /// Starts on `127.0.0.1` at a port the OS picks.
    pub fn start(fleet: Fleet) -> LightsailServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake Lightsail");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            inner: Mutex::new((fleet, Vec::new(), Vec::new())),
            stop: AtomicBool::new(false),
        });
        crate::accept_loop(
            listener,
            shared.clone(),
            |s| s.stop.load(Ordering::SeqCst),
            serve,
        );
        LightsailServer { addr, shared }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a server thread panicked: the test fails anyway.
        self.shared.inner.lock().expect("fake Lightsail lock")
    }

    /// Runs `f` on the fleet.
    pub fn with<R>(&self, f: impl FnOnce(&mut Fleet) -> R) -> R {
        f(&mut self.lock().0)
    }

    /// The next calls answer these (status, body) instead.
    pub fn fail_next(&self, answers: &[(u16, &str)]) {
        self.lock()
            .1
            .extend(answers.iter().map(|(s, b)| (*s, (*b).to_owned())));
    }

    /// Every call so far: its `X-Amz-Target` and body.
    pub fn calls(&self) -> Vec<(Option<String>, String)> {
        self.lock().2.clone()
    }
}

impl Drop for LightsailServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve(conn: TcpStream, s: &Shared) {
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    loop {
        let Some((method, _target, headers)) = crate::read_request(&mut r) else {
            return;
        };
        let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len.min(1 << 20)];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let target = header("x-amz-target");
        let mut inner = s.inner.lock().expect("fake Lightsail lock");
        inner
            .2
            .push((target.clone(), String::from_utf8_lossy(&body).into_owned()));
        let (status, text) = if method != "POST" {
            (405, String::new())
        } else if !inner.1.is_empty() {
            inner.1.remove(0)
        } else {
            inner.0.answer(target.as_deref(), &body)
        };
        drop(inner);
        let head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: sim-1\r\nContent-Length: {}\r\n\r\n",
            crate::reason(status),
            text.len()
        );
        if w.write_all(head.as_bytes()).is_err() || w.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_paged_and_errors_are_aws_shaped() {
        let mut f = Fleet::new();
        for n in 0..5 {
            f.put(Instance::new(&format!("i{n}"), &format!("172.26.0.{n}")).tag("k", "v"));
        }
        let t = Some("Lightsail_20161128.GetInstances");
        let (s, b) = f.answer(t, b"{}");
        assert_eq!(s, 200);
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["instances"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["nextPageToken"], "2");
        assert_eq!(
            v["instances"][0]["tags"][0],
            json!({"key": "k", "value": "v"})
        );
        let (_, b) = f.answer(t, br#"{"pageToken":"4"}"#);
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["instances"][0]["name"], "i4");
        assert!(v.get("nextPageToken").is_none());
        assert_eq!(
            f.answer(Some("Lightsail_20161128.GetBundles"), b"{}").0,
            400
        );
        assert!(f.answer(t, b"nope").1.contains("SerializationException"));
    }
}
