//! Log lines in Prometheus 3.x's shape (its `slog` handlers through `promslog`):
//!
//! * logfmt: `time=2026-12-06T13:04:10.334Z level=INFO source=daemon.rs:412 msg="WAL
//!   replayed" dir=data segments=3`;
//! * JSON, flat: `{"time":"…","level":"INFO","source":"daemon.rs:412","msg":"WAL
//!   replayed","dir":"data","segments":3}`.
//!
//! Values are written as people read them: strings as they are (quoted in logfmt only
//! when needed), numbers and booleans plain.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The two output formats of `--log.format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `key=value` pairs.
    Logfmt,
    /// One flat JSON object per line.
    Json,
}

/// The event format for `tracing_subscriber`.
#[derive(Clone, Copy, Debug)]
pub struct Logfmt(pub Format);

/// Quotes a value when logfmt needs it (spaces, `=`, quotes or nothing at all).
fn value(out: &mut String, v: &str) {
    if !v.is_empty()
        && !v
            .bytes()
            .any(|b| b <= b' ' || b == b'=' || b == b'"' || b == 0x7f)
    {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A field's value: text, or a number or boolean written bare.
enum Val {
    Text(String),
    Bare(String),
}

#[derive(Default)]
struct Fields {
    msg: String,
    rest: Vec<(&'static str, Val)>,
}

impl Fields {
    fn put(&mut self, f: &Field, v: Val) {
        if f.name() == "message" {
            self.msg = match v {
                Val::Text(s) | Val::Bare(s) => s,
            };
        } else {
            self.rest.push((f.name(), v));
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, f: &Field, v: &str) {
        self.put(f, Val::Text(v.to_owned()));
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.put(f, Val::Bare(v.to_string()));
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.put(f, Val::Bare(v.to_string()));
    }
    fn record_f64(&mut self, f: &Field, v: f64) {
        let s = trawl_core::goquote::format_go_float(v);
        // JSON has no NaN or infinities: those go as text.
        self.put(
            f,
            if v.is_finite() {
                Val::Bare(s)
            } else {
                Val::Text(s)
            },
        );
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.put(f, Val::Bare(v.to_string()));
    }
    fn record_error(&mut self, f: &Field, v: &(dyn std::error::Error + 'static)) {
        self.put(f, Val::Text(v.to_string()));
    }
    fn record_debug(&mut self, f: &Field, v: &dyn fmt::Debug) {
        // `%x` fields arrive here as their Display text.
        self.put(f, Val::Text(format!("{v:?}")));
    }
}

/// The time as 3.x writes it: RFC 3339, milliseconds, UTC.
fn time_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let s = trawl_core::time::UnixNanos(now * 1_000_000).to_rfc3339();
    // Always three decimals (`.000`), as Go's `.000` layout.
    let (base, frac) = s
        .trim_end_matches('Z')
        .split_once('.')
        .map_or((s.trim_end_matches('Z'), ""), |(b, f)| (b, f));
    format!("{base}.{frac:0<3}Z")
}

/// Renders one line (without the newline).
fn render(format: Format, level: &str, source: &str, f: &Fields, time: &str) -> String {
    match format {
        Format::Logfmt => {
            let mut line = format!("time={time} level={level} source=");
            value(&mut line, source);
            line.push_str(" msg=");
            value(&mut line, &f.msg);
            for (k, v) in &f.rest {
                line.push(' ');
                line.push_str(k);
                line.push('=');
                match v {
                    Val::Text(s) | Val::Bare(s) => value(&mut line, s),
                }
            }
            line
        }
        Format::Json => {
            // In slog's order: time, level, source, msg, then the fields as given.
            let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
            let mut line = format!(
                "{{\"time\":{},\"level\":{},\"source\":{},\"msg\":{}",
                q(time),
                q(level),
                q(source),
                q(&f.msg)
            );
            for (k, v) in &f.rest {
                line.push(',');
                line.push_str(&q(k));
                line.push(':');
                match v {
                    // Numbers and booleans as JSON has them (a float such as `1e+21` is
                    // valid JSON as written).
                    Val::Bare(s) if serde_json::from_str::<serde_json::Value>(s).is_ok() => {
                        line.push_str(s)
                    }
                    Val::Text(s) | Val::Bare(s) => line.push_str(&q(s)),
                }
            }
            line.push('}');
            line
        }
    }
}

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        e: &Event<'_>,
    ) -> fmt::Result {
        let mut f = Fields::default();
        e.record(&mut f);
        let meta = e.metadata();
        let file = meta.file().unwrap_or("");
        let file = file.rsplit('/').next().unwrap_or(file);
        let source = format!("{file}:{}", meta.line().unwrap_or(0));
        let level = meta.level().as_str();
        writeln!(w, "{}", render(self.0, level, &source, &f, &time_now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_only_when_needed() {
        let q = |v: &str| {
            let mut s = String::new();
            super::value(&mut s, v);
            s
        };
        assert_eq!(q("plain"), "plain");
        assert_eq!(q("two words"), "\"two words\"");
        assert_eq!(q("a=b"), "\"a=b\"");
        assert_eq!(q(""), "\"\"");
        assert_eq!(q("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
    }

    #[test]
    fn lines_take_prometheus_3_shape_in_both_formats() {
        let f = Fields {
            msg: "WAL replayed".into(),
            rest: vec![
                ("dir", Val::Text("my data".into())),
                ("segments", Val::Bare("3".into())),
                ("ok", Val::Bare("true".into())),
            ],
        };
        let t = "2026-12-06T13:04:10.334Z";
        assert_eq!(
            render(Format::Logfmt, "INFO", "daemon.rs:412", &f, t),
            "time=2026-12-06T13:04:10.334Z level=INFO source=daemon.rs:412 msg=\"WAL replayed\" dir=\"my data\" segments=3 ok=true"
        );
        let line = render(Format::Json, "INFO", "daemon.rs:412", &f, t);
        assert!(
            line.starts_with(
                "{\"time\":\"2026-12-06T13:04:10.334Z\",\"level\":\"INFO\",\"source\""
            ),
            "{line}"
        );
        let json: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(
            json,
            serde_json::json!({"time": t, "level": "INFO", "source": "daemon.rs:412",
                "msg": "WAL replayed", "dir": "my data", "segments": 3, "ok": true})
        );
    }

    #[test]
    fn the_time_has_three_decimals() {
        let t = time_now();
        assert_eq!(t.len(), "2026-12-06T13:04:10.334Z".len(), "{t}");
        assert!(t.ends_with('Z'));
    }
}
