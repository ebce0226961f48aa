//! The Prometheus text format 0.0.4, as Prometheus's own parser accepts it, with three
//! deliberate leniencies where Prometheus's tokenizer contradicts the format's
//! documentation: blanks before a sample line, CRLF line ends, and negative timestamps
//! are accepted (Prometheus 2.42 fails such scrapes; the documentation allows all three).
//!
//! Accepted as Prometheus does: blanks and tabs between tokens, a missing or trailing
//! comma in a label block, raw line ends inside label values, any escaped character
//! (only `\\`, `\"`, `\n` are decoded), comments of any form, `# HELP` with no text, a
//! missing final line end, and (3.x) quoted UTF-8 names: `{"my.metric","label.name"="v"}`,
//! `# HELP "my.metric" text`. Rejected as Prometheus does: a series without a metric
//! name, two metric names, `p`/`P`/`_` in numbers, a fractional timestamp, an unknown `# TYPE`, invalid UTF-8 in
//! label values and help texts.

use std::borrow::Cow;

use super::float::{parse_go_float, parse_go_int};
use super::{
    Entry, MetricType, Sample, Step, SyntaxError, quoted_end, quoted_text, syntax, unescape,
};

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_blank(b[i]) {
        i += 1;
    }
    i
}

/// Byte classes, one table lookup per byte in the hot scanning loops: bit 0 metric-name
/// character `[a-zA-Z0-9_:]`, bit 1 label-name character `[a-zA-Z0-9_]`, bit 2 a byte
/// that may end a value (blank, tab, `\n`, `{`, `\r`).
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let word = c.is_ascii_alphanumeric() || c == b'_';
        if word || c == b':' {
            t[b] |= 1;
        }
        if word {
            t[b] |= 2;
        }
        if matches!(c, b' ' | b'\t' | b'\n' | b'{' | b'\r') {
            t[b] |= 4;
        }
        b += 1;
    }
    t
};

pub(crate) fn is_name_start(b: u8) -> bool {
    CLASS[b as usize] & 1 != 0 && !b.is_ascii_digit()
}

#[inline]
pub(crate) fn is_name_char(b: u8) -> bool {
    CLASS[b as usize] & 1 != 0
}

pub(crate) fn is_label_start(b: u8) -> bool {
    CLASS[b as usize] & 2 != 0 && !b.is_ascii_digit()
}

#[inline]
pub(crate) fn is_label_char(b: u8) -> bool {
    CLASS[b as usize] & 2 != 0
}

/// Where the line starting at or after `i` ends: (end of its content without a `\r`
/// before the `\n`, start of the next line). `None` if the buffer ends first and more
/// may come.
fn line_end(b: &[u8], i: usize, eof: bool) -> Option<(usize, usize)> {
    match memchr::memchr(b'\n', &b[i..]) {
        Some(p) => {
            let nl = i + p;
            let end = if nl > i && b[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            Some((end, nl + 1))
        }
        None if eof => Some((b.len(), b.len())),
        None => None,
    }
}

/// `b` as text; an error names the first invalid byte (`offset` is where `b` starts).
fn as_str<'a>(b: &'a [u8], offset: usize, what: &str) -> Result<&'a str, SyntaxError> {
    std::str::from_utf8(b).or_else(|e| syntax(offset + e.valid_up_to(), what))
}

/// Parses the entry at the start of `b` (`eof`: no more bytes will follow).
pub(crate) fn next_entry(b: &[u8], eof: bool) -> Result<Step<'_>, SyntaxError> {
    // Blanks before anything are tolerated (see the module docs).
    let i = skip_blanks(b, 0);
    if i == b.len() {
        return Ok(if eof {
            Step::Entry {
                entry: Entry::Comment,
                len: b.len(),
                newlines: 0,
            }
        } else {
            Step::Incomplete
        });
    }
    match b[i] {
        b'\n' => Ok(Step::Entry {
            entry: Entry::Comment,
            len: i + 1,
            newlines: 1,
        }),
        b'\r' if b.get(i + 1) == Some(&b'\n') => Ok(Step::Entry {
            entry: Entry::Comment,
            len: i + 2,
            newlines: 1,
        }),
        b'\r' if i + 1 == b.len() && !eof => Ok(Step::Incomplete),
        b'#' => {
            let Some((end, next)) = line_end(b, i, eof) else {
                return Ok(Step::Incomplete);
            };
            let entry = comment(&b[i + 1..end], i + 1)?;
            Ok(Step::Entry {
                entry,
                len: next,
                newlines: u64::from(next > end),
            })
        }
        c if is_name_start(c) || c == b'{' => sample(b, i, eof),
        c => syntax(
            i,
            format!(
                "{} is not a valid start token",
                crate::goquote::quote(&String::from_utf8_lossy(&[c]))
            ),
        ),
    }
}

/// A line after its `#`; `base` is its offset in the entry.
fn comment(line: &[u8], base: usize) -> Result<Entry<'_>, SyntaxError> {
    if line.first().is_none_or(|&c| !is_blank(c)) {
        return Ok(Entry::Comment);
    }
    let k = skip_blanks(line, 0);
    let rest = &line[k..];
    let keyword = |w: &[u8]| rest.starts_with(w) && rest.get(w.len()).is_some_and(|&c| is_blank(c));
    let is_help = keyword(b"HELP");
    if !is_help && !keyword(b"TYPE") {
        return Ok(Entry::Comment);
    }
    let n0 = skip_blanks(line, k + 4);
    let mut n = n0;
    // The name is a metric-name word or (3.x) a quoted string, kept as written between
    // its quotes, as Prometheus's `Help()`/`Type()` give it.
    let (name_start, name_end) = if line.get(n) == Some(&b'"') {
        let mut nl = 0;
        match quoted_end(line, n + 1, &mut nl) {
            Some(close) => {
                n = close + 1;
                (n0 + 1, close)
            }
            None => (n0, n0),
        }
    } else {
        if n < line.len() && is_name_start(line[n]) {
            n += 1;
            while n < line.len() && is_name_char(line[n]) {
                n += 1;
            }
        }
        (n0, n)
    };
    if n == n0 {
        return syntax(
            base + n0,
            if is_help {
                "expected metric name after HELP"
            } else {
                "expected metric name after TYPE"
            },
        );
    }
    let name = as_str(
        &line[name_start..name_end],
        base + name_start,
        "invalid metric name",
    )?;
    // The byte after the name (normally the separating blank) is dropped; the rest of
    // the line is the text.
    let text = line.get(n + 1..).unwrap_or(b"");
    if is_help {
        let t = as_str(text, base + n + 1, "help text is not a valid utf8 string")?;
        let text = if t.contains('\\') {
            Cow::Owned(unescape(t, false))
        } else {
            Cow::Borrowed(t)
        };
        return Ok(Entry::Help { name, text });
    }
    let kind = match text {
        b"counter" => MetricType::Counter,
        b"gauge" => MetricType::Gauge,
        b"histogram" => MetricType::Histogram,
        b"summary" => MetricType::Summary,
        b"untyped" => MetricType::Unknown,
        other => {
            return syntax(
                base + n + 1,
                format!(
                    "invalid metric type {}",
                    crate::goquote::quote(&String::from_utf8_lossy(other))
                ),
            );
        }
    };
    Ok(Entry::Type { name, kind })
}

fn sample(b: &[u8], start: usize, eof: bool) -> Result<Step<'_>, SyntaxError> {
    let more = |i: usize| -> Result<Step<'_>, SyntaxError> {
        if eof {
            syntax(i, "unexpected end of input")
        } else {
            Ok(Step::Incomplete)
        }
    };
    let mut newlines = 0u64;
    let mut i = start;
    // The metric name's bytes (between the quotes if it was quoted in the braces).
    let mut name: Option<(usize, usize)> = None;
    let mut quoted_name = false;
    if is_name_start(b[start]) {
        i += 1;
        while i < b.len() && is_name_char(b[i]) {
            i += 1;
        }
        name = Some((start, i));
        i = skip_blanks(b, i);
        if i == b.len() && !eof {
            return Ok(Step::Incomplete);
        }
    }
    let mut series_end = name.map_or(start, |n| n.1);
    let mut block = (series_end, series_end);
    if b.get(i) == Some(&b'{') {
        let open = i;
        i += 1;
        // After `{` or a comma a label name (or `}`) must come; after a pair, a comma,
        // `}` or (tolerated) the next name. A quoted string followed by a comma or `}`
        // is the metric name (3.x, `parseLVals`); followed by `=`, a label name.
        let mut after_comma = true;
        loop {
            i = skip_blanks(b, i);
            let Some(&c) = b.get(i) else {
                return more(i);
            };
            let n0 = i;
            match c {
                b'}' => {
                    block = (open + 1, i);
                    i += 1;
                    break;
                }
                b',' if !after_comma => {
                    after_comma = true;
                    i += 1;
                    continue;
                }
                b',' => return syntax(i, "expected label name, got \",\""),
                b'"' => {
                    let Some(close) = quoted_end(b, i + 1, &mut newlines) else {
                        return more(b.len());
                    };
                    i = skip_blanks(b, close + 1);
                    match b.get(i) {
                        None => return more(i),
                        Some(b',' | b'}') => {
                            if name.is_some() {
                                return syntax(n0, "metric name already set");
                            }
                            name = Some((n0 + 1, close));
                            quoted_name = true;
                            if b[i] == b',' {
                                i += 1;
                                after_comma = true;
                            }
                            continue;
                        }
                        Some(b'=') => {}
                        Some(_) => return syntax(i, "expected equal"),
                    }
                }
                c if is_label_start(c) => {
                    while i < b.len() && is_label_char(b[i]) {
                        i += 1;
                    }
                    let n1 = i;
                    i = skip_blanks(b, i);
                    match b.get(i) {
                        None => return more(i),
                        Some(b'=') => {}
                        Some(_) => {
                            return syntax(
                                i,
                                format!(
                                    "expected \"=\" after label name {}",
                                    String::from_utf8_lossy(&b[n0..n1])
                                ),
                            );
                        }
                    }
                }
                _ => return syntax(i, "expected label name"),
            }
            // `i` is at the `=`.
            i = skip_blanks(b, i + 1);
            match b.get(i) {
                None => return more(i),
                Some(b'"') => i += 1,
                Some(_) => return syntax(i, "expected label value"),
            }
            // UTF-8 is checked once for the whole series, below.
            let Some(close) = quoted_end(b, i, &mut newlines) else {
                return more(b.len());
            };
            i = close + 1;
            after_comma = false;
        }
        series_end = i;
        i = skip_blanks(b, i);
    }
    let Some((name_start, name_end)) = name else {
        return syntax(start, "metric name not set");
    };
    // The value: a run up to a blank or the line end.
    let v0 = i;
    loop {
        while i < b.len() && CLASS[b[i] as usize] & 4 == 0 {
            i += 1;
        }
        // A `\r` ends the value only as the first half of a CRLF.
        if i < b.len() && b[i] == b'\r' {
            match b.get(i + 1) {
                Some(b'\n') => {}
                None if !eof => return Ok(Step::Incomplete),
                _ => {
                    i += 1;
                    continue;
                }
            }
        }
        break;
    }
    if i == b.len() && !eof {
        return Ok(Step::Incomplete);
    }
    if i == v0 {
        return syntax(v0, "expected value after metric");
    }
    let value = parse_go_float(&b[v0..i])
        .or_else(|e| syntax(v0, e.message(&String::from_utf8_lossy(&b[v0..i]))))?;
    i = skip_blanks(b, i);
    if pending_cr(b, i, eof) {
        return Ok(Step::Incomplete);
    }
    let mut timestamp = None;
    if !at_line_end(b, i) {
        let t0 = i;
        while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        if i == b.len() && !eof {
            return Ok(Step::Incomplete);
        }
        let token = &b[t0..i];
        // Only digits, with an optional minus (see the module docs).
        let digits = token.strip_prefix(b"-").unwrap_or(token);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return syntax(
                t0,
                format!(
                    "expected timestamp or new record, got {}",
                    crate::goquote::quote(&String::from_utf8_lossy(token))
                ),
            );
        }
        timestamp = Some(parse_go_int(token).or_else(|e| syntax(t0, e))?);
        i = skip_blanks(b, i);
        if pending_cr(b, i, eof) {
            return Ok(Step::Incomplete);
        }
        if !at_line_end(b, i) {
            return syntax(i, "expected next entry after timestamp");
        }
    }
    // `i` is at `\n`, `\r\n` or the end of the buffer.
    let len = match b.get(i) {
        Some(b'\n') => {
            newlines += 1;
            i + 1
        }
        Some(b'\r') => {
            newlines += 1;
            i + 2
        }
        _ if eof => i,
        _ => return Ok(Step::Incomplete),
    };
    let series = as_str(&b[start..series_end], start, "invalid UTF-8 label value")?;
    let raw_name = &series[name_start - start..name_end - start];
    let name = if quoted_name {
        quoted_text(raw_name)
    } else {
        Cow::Borrowed(raw_name)
    };
    let label_block = &series[block.0 - start..block.1 - start];
    Ok(Step::Entry {
        entry: Entry::Sample(Sample {
            series,
            name,
            label_block,
            value,
            timestamp,
            exemplar: None,
            kind: MetricType::Unknown,
            start: None,
            proto: false,
        }),
        len,
        newlines,
    })
}

/// A `\r` that ends the buffer may be the first half of a CRLF.
fn pending_cr(b: &[u8], i: usize, eof: bool) -> bool {
    !eof && i + 1 == b.len() && b[i] == b'\r'
}

fn at_line_end(b: &[u8], i: usize) -> bool {
    match b.get(i) {
        None | Some(b'\n') => true,
        Some(b'\r') => b.get(i + 1) == Some(&b'\n'),
        _ => false,
    }
}
