//! PromQL series selectors as the HTTP API takes them (`match_target` of
//! `/api/v1/targets/metadata`): `{job="a", instance=~"b.*"}`, `up{job!="x"}`.
//!
//! Follows 3.x's `parser.ParseMetricSelector` for what a selector may hold: label
//! matchers `=`, `!=`, `=~`, `!~` with double-quoted, single-quoted or backtick strings
//! (Go's escapes in the quoted ones), an optional metric name before the braces
//! (`__name__="…"`), a trailing comma; a selector must have a matcher that does not
//! match the empty string.

use crate::goregex::GoRegex;
use crate::labels::Labels;

/// How a matcher compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

/// One label matcher.
#[derive(Clone, Debug)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value or pattern as written (unquoted).
    pub value: String,
    regex: Option<GoRegex>,
}

impl Matcher {
    /// True if `value` (empty for an absent label) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }
}

/// True if `labels` satisfy every matcher (3.x's `matchLabels`).
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

/// Parses a selector; the error is 3.x's wording where it has one.
pub fn parse(input: &str) -> Result<Vec<Matcher>, String> {
    let mut p = P {
        s: input.as_bytes(),
        text: input,
        i: 0,
    };
    let mut out = Vec::new();
    p.ws();
    if let Some(name) = p.ident() {
        out.push(matcher("__name__".into(), MatchOp::Equal, name)?);
        p.ws();
    }
    if p.eat(b'{') {
        loop {
            p.ws();
            if p.eat(b'}') {
                break;
            }
            let name = match p.peek() {
                Some(b'"' | b'\'' | b'`') => p.string()?,
                _ => p
                    .ident()
                    .ok_or_else(|| p.error("unexpected character inside braces"))?,
            };
            p.ws();
            let op = if p.eat_str("=~") {
                MatchOp::Regex
            } else if p.eat_str("!~") {
                MatchOp::NotRegex
            } else if p.eat_str("!=") {
                MatchOp::NotEqual
            } else if p.eat(b'=') {
                MatchOp::Equal
            } else {
                return Err(p.error("expected label matching operator"));
            };
            p.ws();
            let value = p.string()?;
            out.push(matcher(name, op, value)?);
            p.ws();
            if p.eat(b',') {
                continue;
            }
            if p.eat(b'}') {
                break;
            }
            return Err(p.error("unexpected character in label matching"));
        }
    } else if out.is_empty() {
        return Err(p.error("unexpected input, expected a selector"));
    }
    p.ws();
    if p.i < p.s.len() {
        return Err(p.error("unexpected input after the selector"));
    }
    if out.iter().all(|m| m.matches("")) {
        return Err("vector selector must contain at least one non-empty matcher".to_owned());
    }
    Ok(out)
}

fn matcher(name: String, op: MatchOp, value: String) -> Result<Matcher, String> {
    let regex = match op {
        MatchOp::Regex | MatchOp::NotRegex => Some(
            GoRegex::new(&value)
                .map_err(|e| format!("invalid regular expression {value:?}: {e}"))?,
        ),
        _ => None,
    };
    Ok(Matcher {
        name,
        op,
        value,
        regex,
    })
}

struct P<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl P<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_str(&mut self, t: &str) -> bool {
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    fn error(&self, what: &str) -> String {
        format!("1:{}: parse error: {what}", self.i + 1)
    }

    /// A metric or label name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
    fn ident(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            let ok = c.is_ascii_alphabetic()
                || c == b'_'
                || c == b':'
                || (self.i > start && c.is_ascii_digit());
            if !ok {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| self.text[start..self.i].to_owned())
    }

    /// A quoted string: `"…"` and `'…'` with Go's escapes, `` `…` `` raw.
    fn string(&mut self) -> Result<String, String> {
        let Some(q) = self.peek().filter(|c| matches!(c, b'"' | b'\'' | b'`')) else {
            return Err(self.error("expected a string"));
        };
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.text[self.i..].chars().next() else {
                return Err(self.error("unterminated quoted string"));
            };
            self.i += c.len_utf8();
            if c as u32 == u32::from(q) {
                return Ok(out);
            }
            if c != '\\' || q == b'`' {
                out.push(c);
                continue;
            }
            let Some(e) = self.text[self.i..].chars().next() else {
                return Err(self.error("unterminated quoted string"));
            };
            self.i += e.len_utf8();
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'v' => out.push('\x0b'),
                '\\' | '"' | '\'' => out.push(e),
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex = self
                        .text
                        .get(self.i..self.i + n)
                        .ok_or_else(|| self.error("invalid escape sequence"))?;
                    let v = u32::from_str_radix(hex, 16)
                        .map_err(|_| self.error("invalid escape sequence"))?;
                    self.i += n;
                    out.push(
                        char::from_u32(v).ok_or_else(|| self.error("invalid escape sequence"))?,
                    );
                }
                _ => return Err(self.error("unknown escape sequence")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn matchers_select_as_promql_does() {
        let l = labels(&[("job", "node"), ("instance", "a:9100")]);
        for (sel, want) in [
            (r#"{job="node"}"#, true),
            (r#"{job!="node", instance=~".+"}"#, false),
            (r#"{job!="other", instance=~".+"}"#, true),
            (r#"{instance=~"a:.*"}"#, true),
            (r#"{instance=~"a"}"#, false),
            (r#"{job="node", instance!~'b.*',}"#, true),
            ("{job=`node`}", true),
            (r#"{job="node",absent=""}"#, true),
            (r#"{"job"="node"}"#, true),
        ] {
            let m = parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(matches_all(&m, &l), want, "{sel}");
        }
        let m = parse(r#"up{job="a\"b\u00e9"}"#).expect("valid");
        assert_eq!(m[0].name, "__name__");
        assert_eq!(m[1].value, "a\"bé");
    }

    #[test]
    fn bad_selectors_are_refused_with_the_place() {
        for (sel, want) in [
            ("{job=}", "expected a string"),
            ("{job~\"a\"}", "expected label matching operator"),
            ("{job=\"a\"", "unexpected character"),
            ("{job=\"a", "unterminated quoted string"),
            ("{job=~\"(\"}", "invalid regular expression"),
            ("{job=\"\"}", "at least one non-empty matcher"),
            ("", "expected a selector"),
            ("{a=\"b\"} x", "after the selector"),
        ] {
            let e = parse(sel).err().unwrap_or_else(|| panic!("{sel} accepted"));
            assert!(e.contains(want), "{sel}: {e}");
        }
    }
}
