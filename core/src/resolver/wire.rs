//! The DNS message format (RFC 1035 §4, EDNS0 from RFC 6891): queries encoded, answers
//! decoded, nothing else. Decoding is bounded by the message: every count is checked
//! against the bytes left, a compression pointer must point before the label it stands
//! in (so a pointer loop cannot exist), and a name is at most 255 bytes.

use std::fmt::Write as _;

/// `A`: an IPv4 address.
pub const TYPE_A: u16 = 1;
/// `NS`: a name server.
pub const TYPE_NS: u16 = 2;
/// `CNAME`: an alias.
pub const TYPE_CNAME: u16 = 5;
/// `MX`: a mail exchanger.
pub const TYPE_MX: u16 = 15;
/// `AAAA`: an IPv6 address.
pub const TYPE_AAAA: u16 = 28;
/// `SRV`: a service location.
pub const TYPE_SRV: u16 = 33;
/// `OPT`: the EDNS0 pseudo-record.
const TYPE_OPT: u16 = 41;
/// The Internet class.
const CLASS_IN: u16 = 1;

/// Success.
pub const RCODE_NOERROR: u8 = 0;
/// The server failed.
pub const RCODE_SERVFAIL: u8 = 2;
/// The name does not exist.
pub const RCODE_NXDOMAIN: u8 = 3;

/// The UDP payload size announced with EDNS0 (miekg/dns's `DefaultMsgSize`, which 3.x
/// announces).
pub const EDNS_UDP_SIZE: u16 = 4096;

/// Longest name on the wire (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;

/// Encodes a recursive query for `name` (a fully qualified name, trailing dot optional)
/// of type `qtype`, with an EDNS0 record announcing [`EDNS_UDP_SIZE`] if `edns`.
pub fn encode_query(id: u16, name: &str, qtype: u16, edns: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(name.len() + 32);
    out.extend_from_slice(&id.to_be_bytes());
    // Flags: a standard query with recursion desired.
    out.extend_from_slice(&0x0100u16.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    out.extend_from_slice(&0u16.to_be_bytes()); // ANCOUNT
    out.extend_from_slice(&0u16.to_be_bytes()); // NSCOUNT
    out.extend_from_slice(&u16::from(edns).to_be_bytes()); // ARCOUNT
    encode_name(name, &mut out)?;
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    if edns {
        out.push(0); // root name
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&EDNS_UDP_SIZE.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes()); // extended rcode, version, flags
        out.extend_from_slice(&0u16.to_be_bytes()); // no options
    }
    Ok(out)
}

/// Writes `name` in wire form. Labels are separated by unescaped dots; `\.`, `\\` and
/// `\DDD` escapes are read as miekg/dns reads them.
fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    let bytes = name.as_bytes();
    if name != "." && !name.is_empty() {
        let mut label: Vec<u8> = Vec::new();
        let mut i = 0;
        let flush = |label: &mut Vec<u8>, out: &mut Vec<u8>, last: bool| {
            if label.is_empty() {
                if last {
                    return Ok(());
                }
                return Err(format!("invalid name {name:?}: empty label"));
            }
            if label.len() > 63 {
                return Err(format!("invalid name {name:?}: label longer than 63 bytes"));
            }
            out.push(label.len() as u8);
            out.append(label);
            Ok(())
        };
        while i < bytes.len() {
            match bytes[i] {
                b'.' => {
                    flush(&mut label, out, false)?;
                    i += 1;
                }
                b'\\' => {
                    let rest = &bytes[i + 1..];
                    if rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit) {
                        let v = u32::from(rest[0] - b'0') * 100
                            + u32::from(rest[1] - b'0') * 10
                            + u32::from(rest[2] - b'0');
                        let v = u8::try_from(v)
                            .map_err(|_| format!("invalid name {name:?}: bad escape"))?;
                        label.push(v);
                        i += 4;
                    } else if let Some(&c) = rest.first() {
                        label.push(c);
                        i += 2;
                    } else {
                        return Err(format!("invalid name {name:?}: trailing backslash"));
                    }
                }
                c => {
                    label.push(c);
                    i += 1;
                }
            }
        }
        flush(&mut label, out, true)?;
    }
    out.push(0);
    if out.len() - start > MAX_NAME {
        return Err(format!("invalid name {name:?}: longer than 255 bytes"));
    }
    Ok(())
}

/// The data of one answer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    /// An IPv4 address.
    A([u8; 4]),
    /// An IPv6 address.
    Aaaa([u8; 16]),
    /// An alias target.
    Cname(String),
    /// A name server.
    Ns(String),
    /// A mail exchanger.
    Mx {
        /// Preference.
        preference: u16,
        /// The exchanger's name.
        exchange: String,
    },
    /// A service location.
    Srv {
        /// Priority.
        priority: u16,
        /// Weight.
        weight: u16,
        /// Port.
        port: u16,
        /// The target host.
        target: String,
    },
    /// Another type, not decoded.
    Other(u16),
}

/// One resource record of the answer section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Owner name, fully qualified (trailing dot), in presentation form.
    pub name: String,
    /// Time to live, seconds.
    pub ttl: u32,
    /// The data.
    pub data: RData,
}

/// A decoded response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The message id.
    pub id: u16,
    /// The answer did not fit (TC bit): ask again over TCP.
    pub truncated: bool,
    /// The response code (low 4 bits of the header's; EDNS extended codes are not read).
    pub rcode: u8,
    /// The question echoed: name and type.
    pub question: Option<(String, u16)>,
    /// The answer section.
    pub answers: Vec<Record>,
}

struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.msg.len())
            .ok_or("message truncated")?;
        let s = &self.msg[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// Reads a possibly compressed name at the current position.
    fn name(&mut self) -> Result<String, String> {
        let (name, end) = read_name(self.msg, self.pos)?;
        self.pos = end;
        Ok(name)
    }
}

/// Reads the name at `pos`; returns it and the position after it (after the first
/// pointer, if compressed).
fn read_name(msg: &[u8], mut pos: usize) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut wire_len = 0usize;
    let mut end = None;
    // A pointer must go strictly backwards from the label it replaces: the walk
    // terminates, whatever the message holds.
    let mut limit = pos;
    loop {
        let len = *msg.get(pos).ok_or("name runs past the message")?;
        match len & 0xC0 {
            0x00 => {
                if len == 0 {
                    if out.is_empty() {
                        out.push('.');
                    }
                    return Ok((out, end.unwrap_or(pos + 1)));
                }
                let len = usize::from(len);
                let label = msg
                    .get(pos + 1..pos + 1 + len)
                    .ok_or("label runs past the message")?;
                wire_len += len + 1;
                if wire_len + 1 > MAX_NAME {
                    return Err("name longer than 255 bytes".into());
                }
                push_label(&mut out, label);
                out.push('.');
                pos += 1 + len;
            }
            0xC0 => {
                let lo = *msg.get(pos + 1).ok_or("pointer runs past the message")?;
                let target = (usize::from(len & 0x3F) << 8) | usize::from(lo);
                if target >= limit {
                    return Err("compression pointer does not point backwards".into());
                }
                end.get_or_insert(pos + 2);
                limit = target;
                pos = target;
            }
            _ => return Err("unsupported label type".into()),
        }
    }
}

/// Appends a label in presentation form, escaped as miekg/dns escapes it.
fn push_label(out: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'.' | b' ' | b'\'' | b'@' | b';' | b'(' | b')' | b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x21..=0x7E => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
}

/// Decodes a response; the answer section only (authority and additional records are
/// skipped unread).
pub fn decode(msg: &[u8]) -> Result<Reply, String> {
    let mut r = Reader { msg, pos: 0 };
    let id = r.u16()?;
    let flags = r.u16()?;
    if flags & 0x8000 == 0 {
        return Err("not a response".into());
    }
    let qdcount = r.u16()?;
    let ancount = r.u16()?;
    let _nscount = r.u16()?;
    let _arcount = r.u16()?;
    let mut question = None;
    for _ in 0..qdcount {
        let name = r.name()?;
        let qtype = r.u16()?;
        let _class = r.u16()?;
        question.get_or_insert((name, qtype));
    }
    // Each record takes at least 11 bytes: a count beyond what is left is a lie.
    let mut answers = Vec::with_capacity(usize::from(ancount).min((msg.len() - r.pos) / 11));
    for _ in 0..ancount {
        let name = r.name()?;
        let rtype = r.u16()?;
        let _class = r.u16()?;
        let ttl = r.u32()?;
        let rdlen = usize::from(r.u16()?);
        let start = r.pos;
        r.take(rdlen)?;
        let rd = &msg[start..start + rdlen];
        let data = match rtype {
            TYPE_A => RData::A(rd.try_into().map_err(|_| "A record of the wrong length")?),
            TYPE_AAAA => RData::Aaaa(
                rd.try_into()
                    .map_err(|_| "AAAA record of the wrong length")?,
            ),
            TYPE_CNAME | TYPE_NS => {
                let (n, end) = read_name(msg, start)?;
                if end != start + rdlen {
                    return Err("record data length does not match its name".into());
                }
                if rtype == TYPE_NS {
                    RData::Ns(n)
                } else {
                    RData::Cname(n)
                }
            }
            TYPE_MX => {
                if rdlen < 3 {
                    return Err("MX record too short".into());
                }
                let (exchange, end) = read_name(msg, start + 2)?;
                if end != start + rdlen {
                    return Err("record data length does not match its name".into());
                }
                RData::Mx {
                    preference: u16::from_be_bytes([rd[0], rd[1]]),
                    exchange,
                }
            }
            TYPE_SRV => {
                if rdlen < 7 {
                    return Err("SRV record too short".into());
                }
                let (target, end) = read_name(msg, start + 6)?;
                if end != start + rdlen {
                    return Err("record data length does not match its name".into());
                }
                RData::Srv {
                    priority: u16::from_be_bytes([rd[0], rd[1]]),
                    weight: u16::from_be_bytes([rd[2], rd[3]]),
                    port: u16::from_be_bytes([rd[4], rd[5]]),
                    target,
                }
            }
            other => RData::Other(other),
        };
        answers.push(Record { name, ttl, data });
    }
    Ok(Reply {
        id,
        truncated: flags & 0x0200 != 0,
        rcode: (flags & 0x000F) as u8,
        question,
        answers,
    })
}

/// True if two names are the same name (ASCII case-insensitive, trailing dot optional).
pub fn same_name(a: &str, b: &str) -> bool {
    let a = a.strip_suffix('.').unwrap_or(a);
    let b = b.strip_suffix('.').unwrap_or(b);
    a.eq_ignore_ascii_case(b)
}

/// A response to `query` (the question copied, the id echoed) with `rcode`, the TC bit
/// if `truncated`, and answer records `(type, rdata)` owned by the question's name. For
/// fake servers in tests and simulations; `None` if `query` is not a query.
pub fn response(
    query: &[u8],
    rcode: u8,
    truncated: bool,
    answers: &[(u16, Vec<u8>)],
) -> Option<Vec<u8>> {
    let (_, qend) = read_name(query, 12).ok()?;
    let question = query.get(12..qend + 4)?;
    let mut m = query.get(..2)?.to_vec();
    let flags: u16 = 0x8180 | u16::from(rcode & 0x0F) | if truncated { 0x0200 } else { 0 };
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&u16::try_from(answers.len()).ok()?.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(question);
    for (t, rd) in answers {
        m.extend_from_slice(&[0xC0, 12]); // owner: the question's name
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&CLASS_IN.to_be_bytes());
        m.extend_from_slice(&300u32.to_be_bytes());
        m.extend_from_slice(&u16::try_from(rd.len()).ok()?.to_be_bytes());
        m.extend_from_slice(rd);
    }
    Some(m)
}

/// The question of a query: its name (fully qualified) and type.
pub fn question(query: &[u8]) -> Option<(String, u16)> {
    let (name, end) = read_name(query, 12).ok()?;
    let t = query.get(end..end + 2)?;
    Some((name, u16::from_be_bytes([t[0], t[1]])))
}

/// Record data of an SRV record (for fakes).
pub fn srv_rdata(priority: u16, weight: u16, port: u16, target: &str) -> Result<Vec<u8>, String> {
    let mut v = Vec::new();
    v.extend_from_slice(&priority.to_be_bytes());
    v.extend_from_slice(&weight.to_be_bytes());
    v.extend_from_slice(&port.to_be_bytes());
    encode_name(target, &mut v)?;
    Ok(v)
}

/// Record data that is one name (NS, CNAME; MX after its preference), for fakes.
pub fn name_rdata(name: &str) -> Result<Vec<u8>, String> {
    let mut v = Vec::new();
    encode_name(name, &mut v)?;
    Ok(v)
}

/// An IPv6 address as Go's `net.IP.String` writes it: an IPv4-mapped address in dotted
/// form, else RFC 5952 (lower case, the longest run of two or more zero groups as `::`).
pub fn ipv6_text(a: &[u8; 16]) -> String {
    if a[..10].iter().all(|b| *b == 0) && a[10] == 0xFF && a[11] == 0xFF {
        return format!("{}.{}.{}.{}", a[12], a[13], a[14], a[15]);
    }
    let g: Vec<u16> = a
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    let (mut best, mut best_len) = (8, 0);
    let mut i = 0;
    while i < 8 {
        if g[i] == 0 {
            let start = i;
            while i < 8 && g[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best = 8;
    }
    let mut s = String::new();
    let mut i = 0;
    while i < 8 {
        if i == best {
            s.push_str("::");
            i += best_len;
            continue;
        }
        if !s.is_empty() && !s.ends_with(':') {
            s.push(':');
        }
        s.push_str(&format!("{:x}", g[i]));
        i += 1;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response_for(q: &[u8], rcode: u8, tc: bool, answers: &[(u16, Vec<u8>)]) -> Vec<u8> {
        response(q, rcode, tc, answers).unwrap()
    }

    fn name(n: &str) -> Vec<u8> {
        let mut v = Vec::new();
        encode_name(n, &mut v).unwrap();
        v
    }

    #[test]
    fn query_encoding() {
        let q = encode_query(0x1234, "_x._tcp.example.com", TYPE_SRV, true).unwrap();
        assert_eq!(&q[..12], &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
        let n = name("_x._tcp.example.com.");
        assert_eq!(&q[12..12 + n.len()], &n[..]);
        assert_eq!(n[0], 2);
        assert_eq!(&n[1..3], b"_x");
        // Type, class, then the OPT record announcing 4096 bytes.
        let rest = &q[12 + n.len()..];
        assert_eq!(rest, &[0, 33, 0, 1, 0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0]);
        let plain = encode_query(1, "a.", TYPE_A, false).unwrap();
        assert_eq!(plain.len(), 12 + 3 + 4);
        assert!(encode_query(1, "a..b", TYPE_A, false).is_err());
        assert!(encode_query(1, &format!("{}.com", "x".repeat(64)), TYPE_A, false).is_err());
        let long = vec!["x".repeat(60); 5].join(".");
        assert!(encode_query(1, &long, TYPE_A, false).is_err());
        // Escapes.
        assert_eq!(name("a\\.b.c"), b"\x03a.b\x01c\x00");
        assert_eq!(name("\\065"), b"\x01A\x00");
        assert_eq!(name("."), b"\x00");
    }

    #[test]
    fn answers_decode() {
        let q = encode_query(7, "_x._tcp.example.com.", TYPE_SRV, true).unwrap();
        let mut srv = vec![0, 1, 0, 2, 0x23, 0x82];
        srv.extend(name("host.example.com."));
        let mut mx = vec![0, 10];
        mx.extend(name("mail.example.com."));
        let r = response_for(
            &q,
            RCODE_NOERROR,
            false,
            &[
                (TYPE_SRV, srv),
                (TYPE_A, vec![127, 0, 0, 1]),
                (TYPE_AAAA, [0u8; 15].iter().copied().chain([1]).collect()),
                (TYPE_MX, mx),
                (TYPE_NS, name("ns1.example.com.")),
                (TYPE_CNAME, name("alias.example.com.")),
                (16, b"\x03txt".to_vec()),
            ],
        );
        let d = decode(&r).unwrap();
        assert_eq!(d.id, 7);
        assert!(!d.truncated);
        assert_eq!(d.rcode, RCODE_NOERROR);
        assert_eq!(d.question, Some(("_x._tcp.example.com.".into(), TYPE_SRV)));
        assert_eq!(d.answers.len(), 7);
        assert_eq!(d.answers[0].name, "_x._tcp.example.com.");
        assert_eq!(
            d.answers[0].data,
            RData::Srv {
                priority: 1,
                weight: 2,
                port: 9090,
                target: "host.example.com.".into()
            }
        );
        assert_eq!(d.answers[1].data, RData::A([127, 0, 0, 1]));
        assert!(matches!(d.answers[2].data, RData::Aaaa(a) if a[15] == 1));
        assert_eq!(
            d.answers[3].data,
            RData::Mx {
                preference: 10,
                exchange: "mail.example.com.".into()
            }
        );
        assert_eq!(d.answers[4].data, RData::Ns("ns1.example.com.".into()));
        assert_eq!(d.answers[5].data, RData::Cname("alias.example.com.".into()));
        assert_eq!(d.answers[6].data, RData::Other(16));
        let tc = decode(&response_for(&q, RCODE_SERVFAIL, true, &[])).unwrap();
        assert!(tc.truncated);
        assert_eq!(tc.rcode, RCODE_SERVFAIL);
    }

    #[test]
    fn hostile_messages_are_refused() {
        let q = encode_query(7, "a.example.", TYPE_A, false).unwrap();
        let good = response_for(&q, 0, false, &[(TYPE_A, vec![1, 2, 3, 4])]);
        // Every truncation of a good message fails cleanly.
        for n in 0..good.len() {
            assert!(decode(&good[..n]).is_err(), "{n}");
        }
        // A pointer to itself, and a pointer forwards.
        let mut looped = good.clone();
        let at = looped.len() - 16; // the answer's owner pointer
        assert_eq!(looped[at], 0xC0);
        looped[at + 1] = at as u8;
        assert!(decode(&looped).is_err());
        // A count claiming 65535 answers.
        let mut lie = good.clone();
        lie[6] = 0xFF;
        lie[7] = 0xFF;
        assert!(decode(&lie).is_err());
        // A query is not a response.
        assert!(decode(&q).is_err());
        // Labels with odd bytes come out escaped.
        let mut odd = String::new();
        push_label(&mut odd, b"a.b c\x01");
        assert_eq!(odd, "a\\.b\\ c\\001");
    }
}
