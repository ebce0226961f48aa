//! A fake PuppetDB query API for the discovery tests' faults and the simulator, after
//! PuppetDB's API reference (`https://www.puppet.com/docs/puppetdb/7/api/query/v4/`):
//! `POST /pdb/query/v4` with a JSON body `{"query": "<PQL>"}` answers the resources the
//! query selects as a JSON array (`application/json; charset=utf-8`), each with
//! `certname`, `resource`, `type`, `title`, `exported`, `tags`, `file`, `line`,
//! `environment` and `parameters`. The end-to-end tests run a real PuppetDB; this fake
//! is what the simulator and the failure injections use.
//!
//! The PQL it understands is the resources entity with equality conditions joined by
//! `and`: `resources { type = "Class" and title = "Nginx" and exported = false }` (fields
//! `type`, `title`, `certname`, `environment`, `exported`); anything else is answered 400
//! with a plain-text message, as PuppetDB answers a query it cannot parse. It does not
//! emulate: the rest of PQL (other entities, `or`, `not`, regular expressions,
//! subqueries, projections), the AST query language, paging (`limit`, `offset`,
//! `order_by`), the other endpoints and authentication (PuppetDB takes client
//! certificates; a plain-HTTP port has none).

use serde_json::{Value, json};

use crate::cloud::{Api, Reply, Request};

/// One resource of one node's catalog.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    /// The node's certname.
    pub certname: String,
    /// The resource type (`Class`, `Apache::Vhost`).
    pub kind: String,
    /// The title.
    pub title: String,
    /// Exported (`@@`).
    pub exported: bool,
    /// The environment (`production`).
    pub environment: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Parameters (a JSON object).
    pub parameters: Value,
}

impl Resource {
    /// A class `title` of node `certname`, in `production`, with no parameters.
    pub fn class(certname: &str, title: &str) -> Resource {
        Resource {
            certname: certname.into(),
            kind: "Class".into(),
            title: title.into(),
            exported: false,
            environment: "production".into(),
            tags: vec!["class".into(), title.to_ascii_lowercase()],
            parameters: json!({}),
        }
    }

    /// With a parameter.
    pub fn param(mut self, k: &str, v: Value) -> Resource {
        if let Some(o) = self.parameters.as_object_mut() {
            o.insert(k.into(), v);
        }
        self
    }

    /// PuppetDB's resource hash: a SHA-1 of type and title; here a stable digest of
    /// both in its form (40 hex digits).
    fn hash(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.kind.bytes().chain([0]).chain(self.title.bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        format!(
            "{h:016x}{:016x}{:08x}",
            h.rotate_left(17),
            h as u32 ^ 0x5bd1_e995
        )
    }

    fn json(&self) -> Value {
        json!({
            "certname": self.certname, "resource": self.hash(), "type": self.kind,
            "title": self.title, "exported": self.exported, "tags": self.tags,
            "file": "/etc/puppetlabs/code/environments/production/manifests/site.pp",
            "line": 12, "environment": self.environment, "parameters": self.parameters
        })
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "type" => json!(self.kind),
            "title" => json!(self.title),
            "certname" => json!(self.certname),
            "environment" => json!(self.environment),
            "exported" => json!(self.exported),
            _ => return None,
        })
    }
}

/// The resources of every node's catalog.
#[derive(Clone, Debug, Default)]
pub struct Db {
    /// Every resource, in the order answers list them.
    pub resources: Vec<Resource>,
}

/// A query's conditions: (field, value) pairs that must all hold.
fn parse_pql(q: &str) -> Result<Vec<(String, Value)>, String> {
    let inner = q
        .trim()
        .strip_prefix("resources")
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix('{'))
        .and_then(|r| r.trim_end().strip_suffix('}'))
        .ok_or_else(|| format!("PQL parse error at line 1, column 1:\n\n{q}\n^"))?;
    let inner = inner.trim();
    if inner.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for cond in inner.split(" and ") {
        let (field, value) = cond
            .split_once('=')
            .ok_or_else(|| format!("PQL parse error: expected a comparison in '{cond}'"))?;
        let value = value.trim();
        let v = match value {
            "true" => json!(true),
            "false" => json!(false),
            v if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') => {
                json!(v[1..v.len() - 1].replace("\\\"", "\""))
            }
            v => return Err(format!("PQL parse error: unexpected value {v}")),
        };
        out.push((field.trim().to_owned(), v));
    }
    Ok(out)
}

fn text(status: u16, body: String) -> Reply {
    Reply {
        status,
        content_type: "text/plain; charset=utf-8".into(),
        headers: Vec::new(),
        body,
    }
}

impl Api for Db {
    fn answer(&self, req: &Request, _base: &str) -> Reply {
        if req.path != "/pdb/query/v4" {
            return text(404, "Not Found".into());
        }
        if req.method != "POST" {
            return text(405, "Method Not Allowed".into());
        }
        if !req
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
        {
            return text(415, "Unsupported Media Type".into());
        }
        let query = match serde_json::from_slice::<Value>(&req.body) {
            Ok(v) => match v["query"].as_str() {
                Some(q) => q.to_owned(),
                None => return text(400, "Missing required query parameter 'query'".into()),
            },
            Err(e) => return text(400, format!("Malformed JSON for query: {e}")),
        };
        let conds = match parse_pql(&query) {
            Ok(c) => c,
            Err(e) => return text(400, e),
        };
        for (f, _) in &conds {
            if Resource::class("", "").field(f).is_none() {
                return text(
                    400,
                    format!("'{f}' is not a queryable object for resources"),
                );
            }
        }
        let found: Vec<Value> = self
            .resources
            .iter()
            .filter(|r| conds.iter().all(|(f, v)| r.field(f).as_ref() == Some(v)))
            .map(Resource::json)
            .collect();
        Reply::json(200, &Value::Array(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(db: &Db, body: &str) -> Reply {
        let mut r =
            Request::new("POST", "/pdb/query/v4").header_set("Content-Type", "application/json");
        r.body = body.as_bytes().to_vec();
        db.answer(&r, "http://x")
    }

    #[test]
    fn resources_are_selected_by_the_query() {
        let db = Db {
            resources: vec![
                Resource::class("a.example.com", "Nginx").param("port", json!(80)),
                Resource::class("b.example.com", "Nginx"),
                Resource::class("b.example.com", "Ssh"),
            ],
        };
        let r = post(
            &db,
            r#"{"query": "resources { type = \"Class\" and title = \"Nginx\" }"}"#,
        );
        assert_eq!(
            (r.status, r.content_type.as_str()),
            (200, "application/json; charset=utf-8")
        );
        let v: Value = serde_json::from_str(&r.body).expect("JSON");
        assert_eq!(v.as_array().map(Vec::len), Some(2));
        assert_eq!(v[0]["parameters"]["port"], 80);
        assert_eq!(v[0]["resource"].as_str().map(str::len), Some(40));
        let r = post(&db, r#"{"query": "resources {}"}"#);
        assert_eq!(
            serde_json::from_str::<Value>(&r.body)
                .expect("JSON")
                .as_array()
                .map(Vec::len),
            Some(3)
        );
        let r = post(&db, r#"{"query": "nodes {}"}"#);
        assert_eq!(r.status, 400);
        assert!(r.body.starts_with("PQL parse error"), "{}", r.body);
        let r = post(&db, r#"{"query": "resources { color = \"x\" }"}"#);
        assert_eq!(r.status, 400);
    }
}
