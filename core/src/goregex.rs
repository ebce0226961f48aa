//! Go RE2 regular expressions on top of Rust's `regex`, anchored as Prometheus anchors
//! relabel regexes (`^(?s:RE)$`), with Go's template expansion.
//!
//! Go and Rust share RE2's design but differ in details that change what a pattern
//! matches. [`translate`] rewrites a Go pattern into an equivalent Rust one:
//!
//! * `\d \w \s \b` (and negations) are ASCII-only in Go; Rust's are Unicode-aware, so they
//!   become explicit ASCII classes. Go's `\s` is `[\t\n\f\r ]` (no `\v`).
//! * `\Q…\E` quoting (Go) becomes escaped literals; `\C` is rejected as Go rejects it.
//! * Inside `[...]` Rust treats `&&`, `--`, `~~` and a nested `[` as set syntax; Go treats
//!   them literally. Every class member is re-emitted as an explicit code point.
//! * Octal escapes (`\012`) become `\x{..}`; a `{` that is not a valid repetition is a
//!   literal, as in Go; repeat counts above 1000 and stacked repetition operators (`a**`)
//!   are errors, as in Go.
//! * Syntax Rust accepts but Go rejects (`\<`, `(?x)`, `(?R)`, names with `.`) is
//!   rejected with Go's message.

use std::fmt;

use regex::Regex;

use crate::bytes::eq_bytes;

/// A pattern Go's `regexp` would reject. `Display` follows Go's
/// ``error parsing regexp: <code>: `<expr>` ``.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegexError {
    /// Go's error code text, e.g. `missing closing )`.
    pub code: String,
    /// The offending part of the expression.
    pub expr: String,
}

impl fmt::Display for RegexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error parsing regexp: {}: `{}`", self.code, self.expr)
    }
}

impl std::error::Error for RegexError {}

fn err(code: &str, expr: impl Into<String>) -> RegexError {
    RegexError {
        code: code.to_owned(),
        expr: expr.into(),
    }
}

fn push_cp(out: &mut String, c: char) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(out, "\\x{{{:X}}}", c as u32);
}

fn push_literal(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() || c == '_' || c == ' ' || !c.is_ascii() {
        out.push(c);
    } else {
        push_cp(out, c);
    }
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }
    fn peek2(&self) -> Option<char> {
        let mut it = self.s[self.pos..].chars();
        it.next();
        it.next()
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }
    fn eat(&mut self, prefix: &str) -> bool {
        if self.rest().starts_with(prefix) {
            self.pos += prefix.len();
            true
        } else {
            false
        }
    }
}

/// What an escape outside or inside a class denotes.
enum Escape {
    /// One code point.
    Char(char),
    /// A class: its Rust form outside a class, and inside a class.
    Class(&'static str, &'static str),
    /// Any other Rust syntax to copy (assertions, Unicode classes).
    Raw(String),
    /// `\Q...\E` literal text.
    Quoted(String),
}

const SPACE_IN: &str = r"\x{9}\x{A}\x{C}\x{D}\x{20}";
const NOT_SPACE_IN: &str = r"\x{0}-\x{8}\x{B}\x{E}-\x{1F}\x{21}-\x{10FFFF}";

fn parse_escape(cur: &mut Cursor<'_>, in_class: bool) -> Result<Escape, RegexError> {
    let start = cur.pos;
    cur.bump(); // the backslash
    let Some(c) = cur.bump() else {
        return Err(err("trailing backslash at end of expression", ""));
    };
    let bad = |cur: &Cursor<'_>| err("invalid escape sequence", &cur.s[start..cur.pos]);
    Ok(match c {
        'd' => Escape::Class("[0-9]", "0-9"),
        'D' => Escape::Class("[^0-9]", "[:^digit:]"),
        'w' => Escape::Class("[0-9A-Za-z_]", "0-9A-Za-z_"),
        'W' => Escape::Class("[^0-9A-Za-z_]", "[:^word:]"),
        's' => Escape::Class("[\\x{9}\\x{A}\\x{C}\\x{D}\\x{20}]", SPACE_IN),
        'S' => Escape::Class("[^\\x{9}\\x{A}\\x{C}\\x{D}\\x{20}]", NOT_SPACE_IN),
        'b' | 'B' | 'A' | 'z' if !in_class => match c {
            'b' => Escape::Raw("(?-u:\\b)".into()),
            'B' => Escape::Raw("(?-u:\\B)".into()),
            'A' => Escape::Raw("\\A".into()),
            _ => Escape::Raw("\\z".into()),
        },
        'a' => Escape::Char('\u{7}'),
        'f' => Escape::Char('\u{c}'),
        't' => Escape::Char('\t'),
        'n' => Escape::Char('\n'),
        'r' => Escape::Char('\r'),
        'v' => Escape::Char('\u{b}'),
        'Q' if !in_class => {
            let rest = cur.rest();
            let (lit, used) = match rest.find("\\E") {
                Some(i) => (&rest[..i], i + 2),
                None => (rest, rest.len()),
            };
            let lit = lit.to_owned();
            cur.pos += used;
            Escape::Quoted(lit)
        }
        '0'..='7' => {
            // Go: a lone \1..\7 is a backreference (unsupported); \0 or up to 3 octal digits.
            if c != '0' && !matches!(cur.peek(), Some('0'..='7')) {
                return Err(bad(cur));
            }
            let mut v = c as u32 - '0' as u32;
            for _ in 0..2 {
                match cur.peek() {
                    Some(d @ '0'..='7') => {
                        cur.bump();
                        v = v * 8 + (d as u32 - '0' as u32);
                    }
                    _ => break,
                }
            }
            // At most 0o777, always a valid scalar.
            Escape::Char(char::from_u32(v).unwrap_or('\0'))
        }
        'x' => {
            if cur.eat("{") {
                let hs = cur.pos;
                while matches!(cur.peek(), Some(h) if h.is_ascii_hexdigit()) {
                    cur.bump();
                }
                let hex = &cur.s[hs..cur.pos];
                if hex.is_empty() || !cur.eat("}") {
                    return Err(bad(cur));
                }
                let v = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                match v {
                    Some(ch) if hex.len() <= 8 => Escape::Char(ch),
                    _ => return Err(bad(cur)),
                }
            } else {
                let mut v = 0u32;
                for _ in 0..2 {
                    match cur.bump() {
                        Some(h) if h.is_ascii_hexdigit() => {
                            v = v * 16 + h.to_digit(16).unwrap_or(0)
                        }
                        _ => return Err(bad(cur)),
                    }
                }
                Escape::Char(char::from_u32(v).unwrap_or('\0'))
            }
        }
        'p' | 'P' => {
            let mut negate = c == 'P';
            let name = if cur.eat("{") {
                let Some(end) = cur.rest().find('}') else {
                    return Err(err("invalid character class range", &cur.s[start..]));
                };
                let mut name = cur.rest()[..end].to_owned();
                cur.pos += end + 1;
                if let Some(n) = name.strip_prefix('^') {
                    negate = !negate;
                    name = n.to_owned();
                }
                name
            } else {
                match cur.bump() {
                    Some(ch) if ch.is_ascii_alphabetic() => ch.to_string(),
                    _ => return Err(err("invalid character class range", &cur.s[start..cur.pos])),
                }
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            {
                return Err(err("invalid character class range", &cur.s[start..cur.pos]));
            }
            Escape::Raw(format!("\\{}{{{}}}", if negate { 'P' } else { 'p' }, name))
        }
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Escape::Char(c),
        _ => return Err(bad(cur)),
    })
}

const POSIX_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

fn parse_class(cur: &mut Cursor<'_>, out: &mut String) -> Result<(), RegexError> {
    let start = cur.pos;
    cur.bump(); // '['
    out.push('[');
    if cur.eat("^") {
        out.push('^');
    }
    let mut first = true;
    loop {
        let Some(c) = cur.peek() else {
            return Err(err("missing closing ]", &cur.s[start..]));
        };
        if c == ']' && !first {
            cur.bump();
            out.push(']');
            return Ok(());
        }
        first = false;
        // POSIX named classes: [:alpha:] and [:^alpha:].
        if cur.rest().starts_with("[:")
            && let Some(end) = cur.rest()[2..].find(":]")
        {
            let inner = &cur.rest()[2..2 + end];
            let name = inner.strip_prefix('^').unwrap_or(inner);
            if POSIX_CLASSES.contains(&name) {
                out.push_str("[:");
                out.push_str(inner);
                out.push_str(":]");
                cur.pos += end + 4;
                continue;
            }
            return Err(err("invalid character class range", &cur.rest()[..end + 4]));
        }
        let item_start = cur.pos;
        let lo = if c == '\\' {
            match parse_escape(cur, true)? {
                Escape::Char(ch) => ch,
                Escape::Class(_, inner) => {
                    out.push_str(inner);
                    continue;
                }
                Escape::Raw(raw) => {
                    out.push_str(&raw);
                    continue;
                }
                Escape::Quoted(_) => unreachable!("\\Q is not recognised inside a class"),
            }
        } else {
            cur.bump();
            c
        };
        // A range `lo-hi`, unless the '-' is last before ']'.
        if cur.peek() == Some('-') && !matches!(cur.peek2(), Some(']') | None) {
            cur.bump();
            let hi = match cur.peek() {
                Some('\\') => match parse_escape(cur, true)? {
                    Escape::Char(ch) => ch,
                    _ => {
                        return Err(err(
                            "invalid character class range",
                            &cur.s[item_start..cur.pos],
                        ));
                    }
                },
                Some(ch) => {
                    cur.bump();
                    ch
                }
                None => return Err(err("missing closing ]", &cur.s[start..])),
            };
            if hi < lo {
                return Err(err(
                    "invalid character class range",
                    &cur.s[item_start..cur.pos],
                ));
            }
            push_cp(out, lo);
            out.push('-');
            push_cp(out, hi);
        } else {
            push_cp(out, lo);
        }
    }
}

/// Rewrites a Go RE2 pattern into a Rust `regex` pattern with the same meaning.
pub fn translate(pattern: &str) -> Result<String, RegexError> {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut cur = Cursor { s: pattern, pos: 0 };
    let mut depth = 0usize;
    // Text of the last repetition operator, to reject stacked ones (`a**`) as Go does.
    let mut last_repeat: Option<usize> = None;
    // Whether the `?` after the last repetition operator was already taken as "lazy".
    let mut lazy_done = false;
    // Whether something precedes that a repetition operator could apply to.
    let mut can_repeat = false;
    while let Some(c) = cur.peek() {
        let at = cur.pos;
        let mut is_repeat = false;
        let mut flag_only = false;
        match c {
            '\\' => match parse_escape(&mut cur, false)? {
                Escape::Char(ch) => push_literal(&mut out, ch),
                Escape::Class(outer, _) => out.push_str(outer),
                Escape::Raw(raw) => out.push_str(&raw),
                // Go pushes each quoted character as its own literal, so a following
                // repetition applies to the last one only.
                Escape::Quoted(lit) => lit.chars().for_each(|ch| push_literal(&mut out, ch)),
            },
            '[' => parse_class(&mut cur, &mut out)?,
            '(' => {
                cur.bump();
                depth += 1;
                if cur.eat("?") {
                    let rest = cur.rest();
                    let name_start = if rest.starts_with("P<") {
                        Some(2)
                    } else if rest.starts_with('<') {
                        Some(1)
                    } else {
                        None
                    };
                    if let Some(skip) = name_start {
                        let Some(end) = rest.find('>') else {
                            return Err(err("invalid named capture", &pattern[at..]));
                        };
                        let name = &rest[skip..end];
                        if name.is_empty()
                            || !name
                                .chars()
                                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                        {
                            return Err(err(
                                "invalid named capture",
                                &pattern[at..cur.pos + end + 1],
                            ));
                        }
                        out.push_str("(?P<");
                        out.push_str(name);
                        out.push('>');
                        cur.pos += end + 1;
                    } else {
                        // Flags: (?flags) or (?flags:...), flags from "imsU" with one '-'.
                        let mut seen_minus = false;
                        let mut any = false;
                        let mut flags = String::new();
                        loop {
                            match cur.bump() {
                                Some(f @ ('i' | 'm' | 's' | 'U')) => {
                                    flags.push(f);
                                    any = true;
                                }
                                Some('-') if !seen_minus => {
                                    seen_minus = true;
                                    flags.push('-');
                                    any = false;
                                }
                                Some(':') if any || !seen_minus => {
                                    out.push_str("(?");
                                    out.push_str(&flags);
                                    out.push(':');
                                    break;
                                }
                                Some(')') if any || !seen_minus => {
                                    // A flag-only group; `(?)` is accepted and does nothing.
                                    depth -= 1;
                                    if !flags.is_empty() {
                                        out.push_str("(?");
                                        out.push_str(&flags);
                                        out.push(')');
                                    }
                                    flag_only = true;
                                    break;
                                }
                                _ => {
                                    return Err(err(
                                        "invalid or unsupported Perl syntax",
                                        &pattern[at..cur.pos.min(pattern.len())],
                                    ));
                                }
                            }
                        }
                    }
                } else {
                    out.push('(');
                }
            }
            ')' => {
                cur.bump();
                if depth == 0 {
                    return Err(err("unexpected )", pattern));
                }
                depth -= 1;
                out.push(')');
            }
            '*' | '+' | '?' => {
                cur.bump();
                if let Some(prev) = last_repeat {
                    if c == '?' && !lazy_done {
                        // `*?`, `+?`, `??`: non-greedy modifier of the previous operator.
                        out.push('?');
                        lazy_done = true;
                        continue;
                    }
                    return Err(err(
                        "invalid nested repetition operator",
                        &pattern[prev..cur.pos],
                    ));
                }
                if !can_repeat {
                    return Err(err(
                        "missing argument to repetition operator",
                        &pattern[at..cur.pos],
                    ));
                }
                out.push(c);
                is_repeat = true;
            }
            '{' => {
                // A repetition {n}, {n,} or {n,m}; otherwise a literal '{'.
                let rest = cur.rest();
                let rep = parse_repeat(rest);
                match rep {
                    Some((len, lo, hi)) => {
                        if lo > 1000 || hi.is_some_and(|h| h > 1000 || h < lo) {
                            return Err(err("invalid repeat count", &rest[..len]));
                        }
                        if let Some(prev) = last_repeat {
                            return Err(err(
                                "invalid nested repetition operator",
                                &pattern[prev..cur.pos + len],
                            ));
                        }
                        if !can_repeat {
                            return Err(err(
                                "missing argument to repetition operator",
                                &rest[..len],
                            ));
                        }
                        out.push_str(&rest[..len]);
                        cur.pos += len;
                        is_repeat = true;
                        if cur.peek() == Some('?') {
                            cur.bump();
                            out.push('?');
                            last_repeat = Some(at);
                            lazy_done = true;
                            can_repeat = true;
                            continue;
                        }
                    }
                    None => {
                        cur.bump();
                        out.push_str("\\{");
                    }
                }
            }
            '}' => {
                cur.bump();
                out.push_str("\\}");
            }
            '.' | '^' | '$' | '|' => {
                cur.bump();
                out.push(c);
            }
            _ => {
                cur.bump();
                push_literal(&mut out, c);
            }
        }
        last_repeat = if is_repeat { Some(at) } else { None };
        lazy_done = false;
        can_repeat = !(flag_only || c == '(' || c == '|');
    }
    if depth > 0 {
        return Err(err("missing closing )", pattern));
    }
    Ok(out)
}

/// Parses `{n}`, `{n,}` or `{n,m}` at the start of `s`: (length, n, m).
fn parse_repeat(s: &str) -> Option<(usize, u32, Option<u32>)> {
    let b = s.as_bytes();
    let mut i = 1;
    let num = |i: &mut usize| -> Option<u32> {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i == st {
            return None;
        }
        // Absurdly long numbers saturate; they fail the >1000 check.
        Some(s[st..*i].parse().unwrap_or(u32::MAX))
    };
    let lo = num(&mut i)?;
    let hi = if b.get(i) == Some(&b',') {
        i += 1;
        if b.get(i) == Some(&b'}') {
            None
        } else {
            Some(num(&mut i)?)
        }
    } else {
        Some(lo)
    };
    if b.get(i) != Some(&b'}') {
        return None;
    }
    Some((i + 1, lo, hi))
}

fn rust_error(pattern: &str, translated: &str) -> RegexError {
    use regex_syntax::ast::ErrorKind as K;
    match regex_syntax::ast::parse::Parser::new().parse(translated) {
        Err(e) => {
            let code = match e.kind() {
                K::GroupUnclosed => "missing closing )",
                K::GroupUnopened => "unexpected )",
                K::ClassUnclosed => "missing closing ]",
                K::RepetitionMissing => "missing argument to repetition operator",
                K::RepetitionCountInvalid | K::RepetitionCountDecimalEmpty => {
                    "invalid repeat count"
                }
                K::ClassRangeInvalid | K::ClassRangeLiteral => "invalid character class range",
                K::GroupNameInvalid | K::GroupNameEmpty | K::GroupNameUnexpectedEof => {
                    "invalid named capture"
                }
                K::GroupNameDuplicate { .. } => "duplicate capture group name",
                K::FlagUnrecognized | K::FlagDuplicate { .. } | K::FlagRepeatedNegation { .. } => {
                    "invalid or unsupported Perl syntax"
                }
                K::EscapeUnrecognized | K::EscapeUnexpectedEof => "invalid escape sequence",
                _ => "invalid regular expression",
            };
            err(code, pattern)
        }
        Ok(_) => err("invalid character class range", pattern),
    }
}

/// How a pattern can be matched without running the regex engine. Most relabel rules use
/// one of these shapes; all give exactly the regex's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fast {
    /// No shortcut: run the regex.
    None,
    /// `prefix` followed by `.*` / `(.*)` (`min_rest` 0) or `.+` / `(.+)` (`min_rest` 1);
    /// the prefix may be empty. With `capture`, group 1 is the rest.
    Prefix {
        prefix: String,
        min_rest: usize,
        capture: bool,
    },
    /// A literal: the value must equal it.
    Literal(String),
    /// An alternation of literals (`a|b|c`): the value must equal one of them.
    Literals(Vec<String>),
    /// `([^:]+)(?::\d+)?;(\d+)`, the address rewrite of Prometheus's Kubernetes examples
    /// (joined `__address__;port`): group 1 the host, group 2 the port.
    HostPortRewrite,
}

/// The match of `([^:]+)(?::\d+)?;(\d+)` anchored at both ends, with the regex's
/// leftmost-first, greedy choices: (end of group 1, start of group 2).
fn host_port_rewrite(v: &str) -> Option<(usize, usize)> {
    let b = v.as_bytes();
    let all_digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    match b.iter().position(|&c| c == b':') {
        // No ':': group 1 runs to the last ';' (greedy), which must be followed by digits.
        None => {
            let semi = b.iter().rposition(|&c| c == b';')?;
            (semi > 0 && all_digits(&b[semi + 1..])).then_some((semi, semi + 1))
        }
        // The one ':' ends group 1; then digits, ';', digits to the end.
        Some(colon) => {
            let rest = &b[colon + 1..];
            let semi = colon + 1 + rest.iter().position(|&c| c == b';')?;
            (colon > 0 && all_digits(&b[colon + 1..semi]) && all_digits(&b[semi + 1..]))
                .then_some((colon, semi + 1))
        }
    }
}

fn is_go_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
    )
}

fn classify(pattern: &str) -> Fast {
    if matches!(
        pattern,
        r"([^:]+)(?::\d+)?;(\d+)" | r"([^:]+)(?::[0-9]+)?;([0-9]+)"
    ) {
        return Fast::HostPortRewrite;
    }
    // Without the `m` flag `^` and `$` only match at the ends of the text, which the full
    // anchoring already requires: `^foo$` means `foo`.
    let pattern = pattern.strip_prefix('^').unwrap_or(pattern);
    let pattern = match pattern.strip_suffix('$') {
        Some(p) if !p.ends_with('\\') => p,
        _ => pattern,
    };
    if pattern.contains('|') {
        let alts: Vec<&str> = pattern.split('|').collect();
        if alts.iter().all(|a| !a.chars().any(is_go_meta)) {
            return Fast::Literals(alts.into_iter().map(str::to_owned).collect());
        }
        return Fast::None;
    }
    for (tail, min_rest, capture) in [
        ("(.*)", 0, true),
        ("(.+)", 1, true),
        (".*", 0, false),
        (".+", 1, false),
    ] {
        if let Some(prefix) = pattern.strip_suffix(tail)
            && !prefix.chars().any(is_go_meta)
        {
            return Fast::Prefix {
                prefix: prefix.to_owned(),
                min_rest,
                capture,
            };
        }
    }
    if !pattern.chars().any(is_go_meta) {
        return Fast::Literal(pattern.to_owned());
    }
    Fast::None
}

/// A compiled, fully anchored Go regex (`^(?s:RE)$`), as used by relabeling.
#[derive(Clone, Debug)]
pub struct GoRegex {
    source: String,
    regex: Regex,
    fast: Fast,
}

/// Capture positions of one match: `(start, end)` per group, `None` if unmatched.
#[derive(Clone, Debug, Default)]
pub struct Captures {
    slots: Vec<Option<(usize, usize)>>,
}

impl Captures {
    /// The byte span of group `i`, if it matched.
    pub fn span(&self, i: usize) -> Option<(usize, usize)> {
        self.slots.get(i).copied().flatten()
    }

    /// The text of group `i` in `hay`, empty if absent.
    pub fn get<'h>(&self, hay: &'h str, i: usize) -> &'h str {
        match self.slots.get(i) {
            Some(Some((s, e))) => &hay[*s..*e],
            _ => "",
        }
    }
}

impl GoRegex {
    /// Compiles `pattern` with Go's syntax and Prometheus's anchoring.
    pub fn new(pattern: &str) -> Result<GoRegex, RegexError> {
        let translated = translate(pattern)?;
        let anchored = format!("^(?s:{translated})$");
        let regex = match Regex::new(&anchored) {
            Ok(r) => r,
            Err(regex::Error::CompiledTooBig(_)) => {
                return Err(err("expression too large", pattern));
            }
            Err(_) => return Err(rust_error(pattern, &translated)),
        };
        Ok(GoRegex {
            source: pattern.to_owned(),
            regex,
            fast: classify(pattern),
        })
    }

    /// The pattern as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Number of capture groups including group 0.
    pub fn captures_len(&self) -> usize {
        self.regex.captures_len()
    }

    /// The index of the first group named `name`.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.regex.capture_names().position(|n| n == Some(name))
    }

    /// A prefix every match starts with, when the pattern is a literal or a literal
    /// followed by `.*`/`.+`.
    pub fn literal_prefix(&self) -> Option<&str> {
        match &self.fast {
            Fast::Literal(l) => Some(l),
            Fast::Prefix { prefix, .. } => Some(prefix),
            _ => None,
        }
    }

    /// False only if no string starting with `p` can match (decided from the shortcut
    /// shapes; a general regex answers true).
    pub fn may_match_prefix(&self, p: &str) -> bool {
        match &self.fast {
            Fast::Literal(l) => l.starts_with(p),
            Fast::Literals(ls) => ls.iter().any(|l| l.starts_with(p)),
            Fast::Prefix { prefix, .. } => prefix.starts_with(p) || p.starts_with(prefix.as_str()),
            Fast::HostPortRewrite | Fast::None => true,
        }
    }

    /// True if the whole of `hay` matches.
    pub fn is_match(&self, hay: &str) -> bool {
        match &self.fast {
            Fast::Literal(l) => eq_bytes(hay, l),
            Fast::Literals(ls) => ls.iter().any(|l| eq_bytes(l, hay)),
            Fast::HostPortRewrite => host_port_rewrite(hay).is_some(),
            Fast::Prefix {
                prefix, min_rest, ..
            } => hay.len() >= prefix.len() + min_rest && hay.starts_with(prefix.as_str()),
            Fast::None => self.regex.is_match(hay),
        }
    }

    /// Matches the whole of `hay` and fills `caps`; false if it does not match.
    pub fn captures(&self, hay: &str, caps: &mut Captures) -> bool {
        caps.slots.clear();
        match &self.fast {
            Fast::Literal(l) => {
                if !eq_bytes(hay, l) {
                    return false;
                }
                caps.slots.push(Some((0, hay.len())));
                true
            }
            Fast::Literals(ls) => {
                if !ls.iter().any(|l| eq_bytes(l, hay)) {
                    return false;
                }
                caps.slots.push(Some((0, hay.len())));
                true
            }
            Fast::HostPortRewrite => {
                let Some((host_end, port_start)) = host_port_rewrite(hay) else {
                    return false;
                };
                caps.slots.push(Some((0, hay.len())));
                caps.slots.push(Some((0, host_end)));
                caps.slots.push(Some((port_start, hay.len())));
                true
            }
            Fast::Prefix {
                prefix,
                min_rest,
                capture,
            } => {
                if hay.len() < prefix.len() + min_rest || !hay.starts_with(prefix.as_str()) {
                    return false;
                }
                caps.slots.push(Some((0, hay.len())));
                if *capture {
                    caps.slots.push(Some((prefix.len(), hay.len())));
                }
                true
            }
            Fast::None => {
                let mut locs = self.regex.capture_locations();
                if self.regex.captures_read(&mut locs, hay).is_none() {
                    return false;
                }
                caps.slots.extend((0..locs.len()).map(|i| locs.get(i)));
                true
            }
        }
    }
}

impl PartialEq for GoRegex {
    fn eq(&self, other: &GoRegex) -> bool {
        self.source == other.source
    }
}

impl Eq for GoRegex {}

/// A replacement template (`$1`, `${1}`, `$name`, `${name}`, `$$`), pre-parsed against
/// one regex with Go's `Regexp.Expand` rules: `$name` takes the longest run of
/// `[A-Za-z0-9_]`; unknown or unmatched groups expand to nothing; a malformed `$` is
/// literal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Group(usize),
}

impl Template {
    /// Parses `template` for `regex` (group names are resolved now).
    pub fn new(template: &str, regex: &GoRegex) -> Template {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = template;
        while let Some(i) = rest.find('$') {
            lit.push_str(&rest[..i]);
            rest = &rest[i..];
            if let Some(r) = rest.strip_prefix("$$") {
                lit.push('$');
                rest = r;
                continue;
            }
            let (name, after) = if let Some(r) = rest.strip_prefix("${") {
                match r.find('}') {
                    Some(end)
                        if end > 0
                            && r[..end]
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
                    {
                        (&r[..end], &r[end + 1..])
                    }
                    _ => ("", rest),
                }
            } else {
                let r = &rest[1..];
                let end = r
                    .bytes()
                    .position(|b| !(b.is_ascii_alphanumeric() || b == b'_'))
                    .unwrap_or(r.len());
                (&r[..end], &r[end..])
            };
            if name.is_empty() {
                // Malformed: the '$' is literal.
                lit.push('$');
                rest = &rest[1..];
                continue;
            }
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            let group = if name.bytes().all(|b| b.is_ascii_digit()) {
                name.parse::<usize>().ok()
            } else {
                regex.group_index(name)
            };
            // Groups that do not exist expand to nothing.
            if let Some(g) = group.filter(|g| *g < regex.captures_len()) {
                parts.push(Part::Group(g));
            }
            rest = after;
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Template { parts }
    }

    /// The template's text if it has no group references.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Lit(l)] => Some(l),
            _ => None,
        }
    }

    /// The group index if the template is exactly one group reference (`$1`).
    pub fn single_group(&self) -> Option<usize> {
        match self.parts.as_slice() {
            [Part::Group(g)] => Some(*g),
            _ => None,
        }
    }

    /// Expands the template for a match of `hay`, appending to `out`.
    pub fn expand(&self, hay: &str, caps: &Captures, out: &mut String) {
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.push_str(l),
                Part::Group(g) => out.push_str(caps.get(hay, *g)),
            }
        }
    }
}

/// Buffers a rule that matches and expands a replacement reuses between calls: the
/// joined input, the captures and the expansion (relabeling keeps them in the
/// `LabelsBuilder`, so they are allocated once per builder).
#[derive(Clone, Debug, Default)]
pub struct ReplaceScratch {
    /// The input value.
    pub(crate) val: String,
    /// The captures of the last match.
    pub(crate) caps: Captures,
    /// The expanded replacement.
    pub(crate) out: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(p: &str, s: &str) -> bool {
        GoRegex::new(p).unwrap().is_match(s)
    }

    #[test]
    fn anchored_and_dot_matches_newline() {
        assert!(m("f.*", "foo"));
        assert!(!m("f|o", "foo"));
        assert!(m("line1.*line2", "line1\nline2"));
        assert!(!m("no-match", "foo"));
    }

    #[test]
    fn perl_classes_are_ascii() {
        assert!(m(r"\d+", "123"));
        assert!(!m(r"\d+", "٣"));
        assert!(!m(r"\w+", "é"));
        assert!(m(r"\W", "é"));
        assert!(m(r"[\d]+", "42"));
        assert!(!m(r"[\d]", "٣"));
        assert!(m(r"[\D]", "٣"));
        assert!(!m(r"\s", "\u{b}"));
        assert!(m(r"\S", "\u{b}"));
        assert!(m(r"a\b", "a"));
    }

    #[test]
    fn class_set_operators_are_literal() {
        assert!(m("[a&&b]", "&"));
        assert!(m("[a&&b]", "a"));
        assert!(m("[a~~b]", "~"));
        assert!(m("[+--]", ","));
        assert!(m("[a-]", "-"));
        assert!(m("[[]", "["));
        assert!(m("[]a]", "]"));
        assert!(m("[^]a]", "b"));
        assert!(m("[[:alpha:]]+", "abc"));
        assert!(!m("[[:^alpha:]]", "a"));
        assert!(m(r"[\p{Greek}]", "α"));
    }

    #[test]
    fn quoting_octal_and_braces() {
        assert!(m(r"\Qa.b*\E", "a.b*"));
        assert!(!m(r"\Qa.b\E", "axb"));
        assert!(m(r"\Qab\E+", "abb"));
        assert!(m(r"\101", "A"));
        assert!(m(r"\0", "\0"));
        assert!(m("a{,2}", "a{,2}"));
        assert!(m("a{2}", "aa"));
        assert!(m("x{", "x{"));
        assert!(m("(?i)abc", "ABC"));
        assert!(m("(?P<n>a)(?<m>b)", "ab"));
        assert!(m(r"\.\-\_", ".-_"));
    }

    #[test]
    fn go_errors() {
        let e = |p: &str| GoRegex::new(p).unwrap_err().to_string();
        assert_eq!(
            e("abc(def"),
            "error parsing regexp: missing closing ): `abc(def`"
        );
        assert_eq!(e("a)(b"), "error parsing regexp: unexpected ): `a)(b`");
        assert_eq!(e("[a"), "error parsing regexp: missing closing ]: `[a`");
        assert_eq!(
            e("a**"),
            "error parsing regexp: invalid nested repetition operator: `**`"
        );
        assert_eq!(
            e("a*?+"),
            "error parsing regexp: invalid nested repetition operator: `*?+`"
        );
        assert_eq!(
            e("*a"),
            "error parsing regexp: missing argument to repetition operator: `*`"
        );
        assert_eq!(
            e("(+)"),
            "error parsing regexp: missing argument to repetition operator: `+`"
        );
        assert!(GoRegex::new("(?)a").is_ok());
        assert!(GoRegex::new("(?i:A)b").is_ok());
        assert_eq!(
            e("(?-)a"),
            "error parsing regexp: invalid or unsupported Perl syntax: `(?-)`"
        );
        assert_eq!(
            e("a{1001}"),
            "error parsing regexp: invalid repeat count: `{1001}`"
        );
        assert_eq!(
            e(r"\C"),
            "error parsing regexp: invalid escape sequence: `\\C`"
        );
        // Go reads `\<` as a literal '<'; Rust would read a word-start assertion.
        assert!(m(r"\<a\>", "<a>"));
        assert_eq!(
            e(r"\1"),
            "error parsing regexp: invalid escape sequence: `\\1`"
        );
        assert_eq!(
            e("(?x)a"),
            "error parsing regexp: invalid or unsupported Perl syntax: `(?x`"
        );
        assert_eq!(
            e("(?P<a.b>x)"),
            "error parsing regexp: invalid named capture: `(?P<a.b>`"
        );
        assert_eq!(
            e("[z-a]"),
            "error parsing regexp: invalid character class range: `z-a`"
        );
        assert_eq!(
            e("a\\"),
            "error parsing regexp: trailing backslash at end of expression: ``"
        );
        assert!(GoRegex::new("a*?").is_ok());
        assert!(GoRegex::new("a{2}?").is_ok());
    }

    #[test]
    fn templates_follow_go_expand() {
        let re = GoRegex::new("(?P<first>f)(o+)").unwrap();
        let mut caps = Captures::default();
        assert!(re.captures("foo", &mut caps));
        let ex = |t: &str| {
            let mut out = String::new();
            Template::new(t, &re).expand("foo", &caps, &mut out);
            out
        };
        assert_eq!(ex("$1-$2"), "f-oo");
        assert_eq!(ex("${1}x"), "fx");
        assert_eq!(ex("$1x"), "");
        assert_eq!(ex("$first/${first}"), "f/f");
        assert_eq!(ex("$$1"), "$1");
        assert_eq!(ex("$3"), "");
        assert_eq!(ex("a$-b"), "a$-b");
        assert_eq!(ex("${"), "${");
        assert_eq!(ex("$"), "$");
    }

    #[test]
    fn fast_paths_agree_with_regex() {
        for p in [
            "(.*)",
            "(.+)",
            ".*",
            ".+",
            "abc",
            "__meta_(.+)",
            "x.*",
            "",
            "true",
        ] {
            assert_ne!(classify(p), Fast::None, "{p}");
        }
        assert_eq!(
            classify("a|b"),
            Fast::Literals(vec!["a".into(), "b".into()])
        );
        assert_eq!(classify("^metrics$"), Fast::Literal("metrics".into()));
        assert_eq!(classify("a|b.*"), Fast::None);
        assert_eq!(classify("(a|b)"), Fast::None);
    }

    /// The shortcut of `fast` (if any) answers exactly as the regex engine: match or not,
    /// and every capture span.
    fn same_as_engine(fast: &GoRegex, hay: &str) -> Result<(), TestCaseError> {
        let slow = Regex::new(&format!("^(?s:{})$", translate(fast.as_str()).unwrap())).unwrap();
        prop_assert_eq!(fast.is_match(hay), slow.is_match(hay));
        let mut caps = Captures::default();
        let want = slow.captures(hay);
        prop_assert_eq!(fast.captures(hay, &mut caps), want.is_some());
        if let Some(w) = want {
            for i in 0..w.len() {
                prop_assert_eq!(caps.span(i), w.get(i).map(|m| (m.start(), m.end())));
            }
        }
        Ok(())
    }

    proptest! {
        /// The shortcuts give exactly the engine's answer and captures.
        #[test]
        fn fast_path_equivalence(
            prefix in "[a-z_]{0,4}",
            tail in prop::sample::select(vec!["(.*)", "(.+)", ".*", ".+", "", "|b", "|ab|", "$"]),
            head in prop::sample::select(vec!["", "^"]),
            hay in "[a-z_\n]{0,8}",
        ) {
            let p = format!("{head}{prefix}{tail}");
            same_as_engine(&GoRegex::new(&p).unwrap(), &hay)?;
        }

        /// The host:port rewrite shortcut gives the engine's matches and captures.
        #[test]
        fn host_port_rewrite_equivalence(hay in "[a1:;\n\u{e9}]{0,10}", bracket in any::<bool>()) {
            let p = if bracket { r"([^:]+)(?::[0-9]+)?;([0-9]+)" } else { r"([^:]+)(?::\d+)?;(\d+)" };
            let fast = GoRegex::new(p).unwrap();
            prop_assert_eq!(&fast.fast, &Fast::HostPortRewrite);
            same_as_engine(&fast, &hay)?;
        }

        /// Translation never panics, and what it accepts compiles.
        #[test]
        fn translate_total(p in "[a-z\\\\\\[\\]\\(\\)\\{\\}\\*\\+\\?\\.\\^\\$\\|:&~,0-9QEdwsp-]{0,12}") {
            let _ = GoRegex::new(&p);
        }
    }
}
