//! Member nodes' data, decoded as 3.x's `parseServersetMember` and `parseNerveMember`
//! decode it with Go's `encoding/json`: object keys match field names case-insensitively
//! (a later key wins over an earlier one for the same field), unknown keys are ignored,
//! `null` leaves a field at its zero value, a port or shard must be an integer literal,
//! and any value of the wrong type refuses the whole member.
//!
//! Differences from Go: keys fold ASCII case only (Go also folds `ſ` to `s` and the
//! Kelvin sign to `k`); inside an endpoint object, keys that differ only in case are
//! taken in sorted order rather than document order; and data that is not UTF-8 is
//! refused (Go replaces bad bytes).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::super::groups::{join_host_port, sanitize};
use crate::labels::Labels;

/// A JSON object's entries in document order (`None`: the document is `null`).
struct Ordered(Option<Vec<(String, Value)>>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ordered, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Ordered, E> {
                Ok(Ordered(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ordered, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<String, Value>()? {
                    v.push((k, val));
                }
                Ok(Ordered(Some(v)))
            }
        }
        d.deserialize_any(V)
    }
}

fn decode(data: &[u8]) -> Result<Vec<(String, Value)>, String> {
    let o: Ordered = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    Ok(o.0.unwrap_or_default())
}

/// The entries of a nested object, in key order (`serde_json::Value` keeps the last of
/// duplicate keys, as Go does; keys differing only in case come in sorted order).
fn entries(v: &Value) -> Result<Vec<(&str, &Value)>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Object(m) => Ok(m.iter().map(|(k, v)| (k.as_str(), v)).collect()),
        other => Err(format!("cannot unmarshal {} into an object", kind(other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A Go `string` field.
fn string(into: &mut String, v: &Value, field: &str) -> Result<(), String> {
    match v {
        Value::Null => Ok(()),
        Value::String(s) => {
            into.clone_from(s);
            Ok(())
        }
        other => Err(format!(
            "cannot unmarshal {} into field {field} of type string",
            kind(other)
        )),
    }
}

/// A Go `int` field: an integer literal within 64 bits.
fn int(into: &mut i64, v: &Value, field: &str) -> Result<(), String> {
    match v {
        Value::Null => Ok(()),
        Value::Number(n) => match n.as_i64() {
            Some(i) => {
                *into = i;
                Ok(())
            }
            None => Err(format!(
                "cannot unmarshal number {n} into field {field} of type int"
            )),
        },
        other => Err(format!(
            "cannot unmarshal {} into field {field} of type int",
            kind(other)
        )),
    }
}

#[derive(Debug, Default, Clone)]
struct Endpoint {
    host: String,
    port: i64,
}

fn endpoint(v: &Value, field: &str) -> Result<Endpoint, String> {
    let mut e = Endpoint::default();
    for (k, v) in entries(v)? {
        if k.eq_ignore_ascii_case("host") {
            string(&mut e.host, v, &format!("{field}.Host"))?;
        } else if k.eq_ignore_ascii_case("port") {
            int(&mut e.port, v, &format!("{field}.Port"))?;
        }
    }
    Ok(e)
}

/// `parseServersetMember`.
pub(super) fn serverset(data: &[u8], path: &str) -> Result<Labels, String> {
    let err = |e: String| format!("error unmarshaling serverset member {path:?}: {e}");
    let mut main = Endpoint::default();
    let mut extra: Option<Vec<(String, Endpoint)>> = None;
    let mut status = String::new();
    let mut shard = 0i64;
    for (k, v) in decode(data).map_err(err)? {
        if k.eq_ignore_ascii_case("serviceEndpoint") {
            main = endpoint(&v, "serversetMember.ServiceEndpoint").map_err(err)?;
        } else if k.eq_ignore_ascii_case("additionalEndpoints") {
            // A map field: null leaves it nil, an object adds to it.
            if v.is_null() {
                continue;
            }
            let list = extra.get_or_insert_with(Vec::new);
            for (name, e) in entries(&v).map_err(err)? {
                let e = endpoint(e, "serversetMember.AdditionalEndpoints").map_err(err)?;
                list.retain(|(n, _)| n != name);
                list.push((name.to_owned(), e));
            }
        } else if k.eq_ignore_ascii_case("status") {
            string(&mut status, &v, "serversetMember.status").map_err(err)?;
        } else if k.eq_ignore_ascii_case("shard") {
            int(&mut shard, &v, "serversetMember.shard").map_err(err)?;
        }
    }
    let mut pairs: Vec<(String, String)> = vec![
        ("__meta_serverset_path".into(), path.to_owned()),
        (
            "__address__".into(),
            join_host_port(&main.host, &main.port.to_string()),
        ),
        ("__meta_serverset_endpoint_host".into(), main.host.clone()),
        (
            "__meta_serverset_endpoint_port".into(),
            main.port.to_string(),
        ),
    ];
    for (name, e) in extra.unwrap_or_default() {
        let clean = sanitize(&name);
        pairs.push((format!("__meta_serverset_endpoint_host_{clean}"), e.host));
        pairs.push((
            format!("__meta_serverset_endpoint_port_{clean}"),
            e.port.to_string(),
        ));
    }
    pairs.push(("__meta_serverset_status".into(), status));
    pairs.push(("__meta_serverset_shard".into(), shard.to_string()));
    Ok(labels(pairs))
}

/// `parseNerveMember`.
pub(super) fn nerve(data: &[u8], path: &str) -> Result<Labels, String> {
    let err = |e: String| format!("error unmarshaling nerve member {path:?}: {e}");
    let mut host = String::new();
    let mut port = 0i64;
    let mut name = String::new();
    for (k, v) in decode(data).map_err(err)? {
        if k.eq_ignore_ascii_case("host") {
            string(&mut host, &v, "nerveMember.host").map_err(err)?;
        } else if k.eq_ignore_ascii_case("port") {
            int(&mut port, &v, "nerveMember.port").map_err(err)?;
        } else if k.eq_ignore_ascii_case("name") {
            string(&mut name, &v, "nerveMember.name").map_err(err)?;
        }
    }
    Ok(labels(vec![
        ("__meta_nerve_path".into(), path.to_owned()),
        (
            "__address__".into(),
            join_host_port(&host, &port.to_string()),
        ),
        ("__meta_nerve_endpoint_host".into(), host),
        ("__meta_nerve_endpoint_port".into(), port.to_string()),
        ("__meta_nerve_endpoint_name".into(), name),
    ]))
}

fn labels(pairs: Vec<(String, String)>) -> Labels {
    Labels::from_pairs(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(l: &Labels) -> Vec<(String, String)> {
        l.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_serverset_member_as_3x_decodes_it() {
        // 3.x's TestServersetMember shape: Finagle's keys, an additional endpoint whose
        // name needs sanitizing.
        let d = br#"{"serviceEndpoint":{"host":"10.0.0.1","port":8080},
            "additionalEndpoints":{"admin-http":{"host":"10.0.0.1","port":9990}},
            "status":"ALIVE","shard":3}"#;
        let l = serverset(d, "/services/web/member_0000000001").unwrap();
        assert_eq!(
            pairs(&l),
            [
                ("__address__", "10.0.0.1:8080"),
                ("__meta_serverset_endpoint_host", "10.0.0.1"),
                ("__meta_serverset_endpoint_host_admin_http", "10.0.0.1"),
                ("__meta_serverset_endpoint_port", "8080"),
                ("__meta_serverset_endpoint_port_admin_http", "9990"),
                ("__meta_serverset_path", "/services/web/member_0000000001"),
                ("__meta_serverset_shard", "3"),
                ("__meta_serverset_status", "ALIVE"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn keys_fold_case_and_the_later_key_wins() {
        let d = br#"{"SERVICEENDPOINT":{"Host":"a","PORT":1},"serviceendpoint":{"host":"b","port":2},"Status":"x"}"#;
        let l = serverset(d, "/p").unwrap();
        assert_eq!(l.get("__address__"), Some("b:2"));
        assert_eq!(l.get("__meta_serverset_status"), Some("x"));
        assert_eq!(l.get("__meta_serverset_shard"), Some("0"));
        // IPv6 hosts get brackets; null leaves zero values.
        let l = nerve(br#"{"host":"::1","port":9100,"name":null}"#, "/n/a").unwrap();
        assert_eq!(l.get("__address__"), Some("[::1]:9100"));
        assert_eq!(l.get("__meta_nerve_endpoint_port"), Some("9100"));
        assert_eq!(l.get("__meta_nerve_path"), Some("/n/a"));
        // `null` as the whole document is an empty member, as in Go.
        let l = nerve(b"null", "/n/b").unwrap();
        assert_eq!(l.get("__address__"), Some(":0"));
    }

    #[test]
    fn wrong_types_refuse_the_member() {
        for bad in [
            &br#"{"host":"a","port":"80"}"#[..],
            br#"{"host":"a","port":80.5}"#,
            br#"{"host":"a","port":1e2}"#,
            br#"{"host":7,"port":80}"#,
            br#"[1,2]"#,
            b"",
            br#"{"host":"a""#,
            br#"{"port":99999999999999999999}"#,
        ] {
            let e = nerve(bad, "/n/x").unwrap_err();
            assert!(
                e.starts_with("error unmarshaling nerve member \"/n/x\": "),
                "{e}"
            );
        }
        let e = serverset(br#"{"additionalEndpoints":[1]}"#, "/s").unwrap_err();
        assert!(e.contains("serverset member"), "{e}");
        let e = serverset(br#"{"shard":"1"}"#, "/s").unwrap_err();
        assert!(e.contains("shard"), "{e}");
    }
}
