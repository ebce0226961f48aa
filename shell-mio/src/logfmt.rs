//! Log lines as Prometheus writes them by default: logfmt, `ts=… level=… msg="…" k=v`.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The logfmt event format.
pub struct Logfmt;

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

struct Fields {
    msg: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, f: &Field, v: &str) {
        if f.name() == "message" {
            self.msg = v.to_owned();
        } else {
            self.rest.push(' ');
            self.rest.push_str(f.name());
            self.rest.push('=');
            value(&mut self.rest, v);
        }
    }
    fn record_debug(&mut self, f: &Field, v: &dyn fmt::Debug) {
        self.record_str(f, &format!("{v:?}"));
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
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        // Milliseconds, as Prometheus's logs have them.
        let ts = trawl_core::time::UnixNanos(now - now % 1_000_000).to_rfc3339();
        let mut f = Fields {
            msg: String::new(),
            rest: String::new(),
        };
        e.record(&mut f);
        let mut line = format!(
            "ts={ts} level={}",
            e.metadata().level().as_str().to_ascii_lowercase()
        );
        line.push_str(" msg=");
        value(&mut line, &f.msg);
        line.push_str(&f.rest);
        writeln!(w, "{line}")
    }
}

#[cfg(test)]
mod tests {
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
}
