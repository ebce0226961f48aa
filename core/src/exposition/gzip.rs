//! gzip bodies (`Content-Encoding: gzip`), decompressed in the core: compressed bytes in,
//! decompressed pieces out, never more than [`OUT`] bytes at a time.
//!
//! The gzip framing (RFC 1952: header, trailer, members one after another) is read here,
//! as Go's `compress/gzip.Reader` reads it for Prometheus 3.x's `scrapeLoop`
//! (`readResponse` resets one reader per loop and copies through it); the deflate stream
//! inside goes to zlib-rs through `flate2::Decompress`. A decoder is reset and used again
//! for the next body ([`Gunzip::reset`]): its inflate state, window and output buffer are
//! allocated once. Output goes straight from the output buffer to the consumer (the
//! parser); the CRC-32 of every member is checked as Go checks it.

use flate2::{Crc, Decompress, FlushDecompress, Status};

/// Decompressed bytes handed to the consumer per step at most.
pub const OUT: usize = 16 << 10;

/// Go's `gzip.ErrHeader`.
const ERR_HEADER: &str = "gzip: invalid header";
/// Go's `gzip.ErrChecksum`.
const ERR_CHECKSUM: &str = "gzip: invalid checksum";
/// Go's `io.ErrUnexpectedEOF`.
const ERR_UNEXPECTED_EOF: &str = "unexpected EOF";

/// What stopped decompression.
#[derive(Debug, PartialEq, Eq)]
pub enum GzipError<E> {
    /// The compressed stream is invalid or truncated.
    Invalid(String),
    /// The consumer of the decompressed bytes refused them.
    Sink(E),
}

/// Header flags (RFC 1952 2.3.1).
const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;
/// The reserved bits, which Go's `readHeader` does not look at (nor does trawl).
#[cfg(test)]
const RESERVED: u8 = 0b1110_0000;

/// Where the reader stands in the member's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    /// The fixed 10 bytes, `n` of them read.
    Fixed(u8),
    /// The length of the extra field, `n` of its 2 bytes read.
    ExtraLen(u8),
    /// Bytes of the extra field still to skip.
    Extra(u16),
    /// The file name, `n` bytes read (Go reads at most 511 and the NUL).
    Name(u16),
    /// The comment, as the name.
    Comment(u16),
    /// The header's CRC-16, `n` of its 2 bytes read.
    Crc(u8),
    /// The header is complete.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a member's header (`first`: the body's first member, where an empty body is
    /// Go's `io.EOF`; later, no more bytes is the clean end of a multi-member stream).
    Header { at: Head, first: bool, seen: bool },
    /// In the deflate stream.
    Deflate,
    /// In the 8-byte trailer, `n` bytes read.
    Trailer(u8),
    /// After a member's trailer: the end, or the next member's header.
    Between,
    /// An error was returned; every later call returns it again.
    Failed,
}

/// A streaming gzip decoder for one body at a time: every member of a multi-member
/// stream, one after another, as Go's `gzip.Reader` (multistream by default) gives them
/// to Prometheus.
pub struct Gunzip {
    inflate: Decompress,
    state: State,
    /// The flags, the fixed header bytes and the header's running CRC (for `FHCRC`).
    flags: u8,
    fixed: [u8; 10],
    head_crc: Crc,
    /// The extra field's length bytes, then the trailer's bytes.
    small: [u8; 8],
    /// The member's CRC-32 and size (mod 2^32) of what it decompressed to so far
    /// (zlib-rs's CRC, vectorised where the CPU allows).
    crc: Crc,
    buf: Box<[u8]>,
    out: u64,
    error: Option<String>,
}

impl std::fmt::Debug for Gunzip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gunzip")
            .field("state", &self.state)
            .field("out", &self.out)
            .finish()
    }
}

impl Default for Gunzip {
    fn default() -> Self {
        Gunzip::new()
    }
}

impl Gunzip {
    /// A decoder at the start of a body.
    pub fn new() -> Gunzip {
        Gunzip {
            inflate: Decompress::new(false),
            state: State::Header {
                at: Head::Fixed(0),
                first: true,
                seen: false,
            },
            flags: 0,
            fixed: [0; 10],
            head_crc: Crc::new(),
            small: [0; 8],
            crc: Crc::new(),
            buf: vec![0; OUT].into_boxed_slice(),
            out: 0,
            error: None,
        }
    }

    /// Back at the start of a body, keeping what was allocated.
    pub fn reset(&mut self) {
        self.inflate.reset(false);
        self.state = State::Header {
            at: Head::Fixed(0),
            first: true,
            seen: false,
        };
        self.out = 0;
        self.crc.reset();
        self.error = None;
    }

    /// Decompressed bytes produced so far.
    pub fn produced(&self) -> u64 {
        self.out
    }

    /// Decompresses `input`, handing the output to `sink` piece by piece.
    pub fn feed<E>(
        &mut self,
        input: &[u8],
        sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), GzipError<E>> {
        let used = self.feed_some(input, u64::MAX, sink)?;
        debug_assert_eq!(used, input.len(), "an unbounded feed takes everything");
        Ok(())
    }

    /// Like [`Gunzip::feed`], but stops once `budget` decompressed bytes came out (a
    /// step more at most: [`OUT`] bytes); the number of input bytes taken. The caller
    /// keeps the rest for later, so a decompression bomb is inflated in slices.
    pub fn feed_some<E>(
        &mut self,
        input: &[u8],
        budget: u64,
        sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<usize, GzipError<E>> {
        let start = self.out;
        let mut pos = 0;
        loop {
            if self.out - start >= budget {
                return Ok(pos);
            }
            match self.state {
                State::Failed => return Err(self.failed()),
                State::Header { .. } | State::Between if pos == input.len() => return Ok(pos),
                State::Trailer(_) if pos == input.len() => return Ok(pos),
                State::Between => {
                    self.state = State::Header {
                        at: Head::Fixed(0),
                        first: false,
                        seen: false,
                    };
                }
                State::Header { .. } => {
                    pos += self.header(&input[pos..]).map_err(|e| self.fail(e))?;
                }
                State::Trailer(n) => {
                    let take = (8 - n as usize).min(input.len() - pos);
                    self.small[n as usize..n as usize + take]
                        .copy_from_slice(&input[pos..pos + take]);
                    pos += take;
                    let n = n + take as u8;
                    self.state = State::Trailer(n);
                    if n == 8 {
                        let [a, b, c, d, e, f, g, h] = self.small;
                        if u32::from_le_bytes([a, b, c, d]) != self.crc.sum()
                            || u32::from_le_bytes([e, f, g, h]) != self.crc.amount()
                        {
                            return Err(self.fail(ERR_CHECKSUM.to_owned()));
                        }
                        self.state = State::Between;
                    }
                }
                State::Deflate => {
                    let (used, made) = self.inflate_step(&input[pos..], sink)?;
                    pos += used;
                    if used == 0 && made == 0 {
                        // Needs more input.
                        return Ok(pos);
                    }
                }
            }
        }
    }

    /// Ends the body: the stream must be complete.
    pub fn finish<E>(
        &mut self,
        sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), GzipError<E>> {
        loop {
            match self.state {
                State::Failed => return Err(self.failed()),
                State::Between => return Ok(()),
                State::Header {
                    first: false,
                    seen: false,
                    ..
                } => {
                    // No bytes after a member: the end of a multi-member stream.
                    self.state = State::Between;
                    return Ok(());
                }
                State::Header {
                    first: true,
                    seen: false,
                    ..
                } => return Err(self.fail("EOF".to_owned())),
                State::Header { .. } | State::Trailer(_) => {
                    return Err(self.fail(ERR_UNEXPECTED_EOF.to_owned()));
                }
                State::Deflate => {
                    // What the inflater still holds, then the stream must have ended.
                    let (_, made) = self.inflate_step(&[], sink)?;
                    if made == 0 && self.state == State::Deflate {
                        return Err(self.fail(ERR_UNEXPECTED_EOF.to_owned()));
                    }
                }
            }
        }
    }

    fn fail<E>(&mut self, e: String) -> GzipError<E> {
        self.state = State::Failed;
        self.error = Some(e.clone());
        GzipError::Invalid(e)
    }

    fn failed<E>(&self) -> GzipError<E> {
        GzipError::Invalid(self.error.clone().unwrap_or_default())
    }

    /// One inflate call: input bytes taken and bytes handed to `sink`.
    fn inflate_step<E>(
        &mut self,
        input: &[u8],
        sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(usize, usize), GzipError<E>> {
        let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
        let st = self
            .inflate
            .decompress(input, &mut self.buf, FlushDecompress::None);
        // Bounded by the slices' lengths, which are `usize`.
        let used = (self.inflate.total_in() - in0) as usize;
        let made = (self.inflate.total_out() - out0) as usize;
        match st {
            Err(_) => {
                // Go's `flate.CorruptInputError`, at the compressed stream's offset.
                let at = self.inflate.total_in();
                return Err(self.fail(format!("flate: corrupt input before offset {at}")));
            }
            Ok(Status::StreamEnd) => self.state = State::Trailer(0),
            Ok(Status::Ok | Status::BufError) => {}
        }
        if made > 0 {
            let b = &self.buf[..made];
            self.crc.update(b);
            self.out += made as u64;
            sink(b).map_err(GzipError::Sink)?;
        }
        Ok((used, made))
    }

    /// Reads header bytes from `input`; the number taken.
    fn header(&mut self, input: &[u8]) -> Result<usize, String> {
        let State::Header { mut at, first, .. } = self.state else {
            return Ok(0);
        };
        let mut pos = 0;
        let done = loop {
            if at == Head::Done {
                break true;
            }
            let Some(&b) = input.get(pos) else {
                break false;
            };
            match at {
                Head::Fixed(n) => {
                    self.fixed[n as usize] = b;
                    pos += 1;
                    if n == 9 {
                        let f = self.fixed;
                        if f[0] != 0x1f || f[1] != 0x8b || f[2] != 8 {
                            return Err(ERR_HEADER.to_owned());
                        }
                        self.flags = f[3];
                        self.head_crc.reset();
                        self.head_crc.update(&f);
                        at = self.next_field(None);
                    } else {
                        at = Head::Fixed(n + 1);
                    }
                }
                Head::ExtraLen(n) => {
                    self.small[n as usize] = b;
                    pos += 1;
                    if n == 1 {
                        self.head_crc.update(&self.small[..2]);
                        let len = u16::from_le_bytes([self.small[0], self.small[1]]);
                        at = if len > 0 {
                            Head::Extra(len)
                        } else {
                            self.next_field(Some(FEXTRA))
                        };
                    } else {
                        at = Head::ExtraLen(1);
                    }
                }
                Head::Extra(left) => {
                    let take = (left as usize).min(input.len() - pos);
                    self.head_crc.update(&input[pos..pos + take]);
                    pos += take;
                    // At most `left`, a u16.
                    let left = left - take as u16;
                    at = if left > 0 {
                        Head::Extra(left)
                    } else {
                        self.next_field(Some(FEXTRA))
                    };
                }
                Head::Name(n) | Head::Comment(n) => {
                    let is_name = matches!(at, Head::Name(_));
                    // Go's `readString`: the string and its NUL in 512 bytes.
                    if n >= 512 {
                        return Err(ERR_HEADER.to_owned());
                    }
                    self.head_crc.update(&[b]);
                    pos += 1;
                    if b == 0 {
                        at = self.next_field(Some(if is_name { FNAME } else { FCOMMENT }));
                    } else if is_name {
                        at = Head::Name(n + 1);
                    } else {
                        at = Head::Comment(n + 1);
                    }
                }
                Head::Crc(n) => {
                    self.small[n as usize] = b;
                    pos += 1;
                    if n == 1 {
                        let want = u16::from_le_bytes([self.small[0], self.small[1]]);
                        // The low 16 bits of the header's CRC-32.
                        if want != self.head_crc.sum() as u16 {
                            return Err(ERR_HEADER.to_owned());
                        }
                        at = Head::Done;
                    } else {
                        at = Head::Crc(1);
                    }
                }
                // Handled before a byte is taken.
                Head::Done => break true,
            }
        };
        if done {
            self.inflate.reset(false);
            self.crc.reset();
            self.state = State::Deflate;
        } else {
            self.state = State::Header {
                at,
                first,
                seen: true,
            };
        }
        Ok(pos)
    }

    /// The header field after `after` (`None`: after the fixed bytes) that the flags
    /// announce; [`Head::Done`] once the header is complete.
    fn next_field(&self, after: Option<u8>) -> Head {
        let order = [
            (FEXTRA, Head::ExtraLen(0)),
            (FNAME, Head::Name(0)),
            (FCOMMENT, Head::Comment(0)),
            (FHCRC, Head::Crc(0)),
        ];
        let from = match after {
            None => 0,
            Some(f) => order.iter().position(|(x, _)| *x == f).map_or(4, |i| i + 1),
        };
        order[from..]
            .iter()
            .find(|(f, _)| self.flags & f != 0)
            .map_or(Head::Done, |(_, h)| *h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn gunzip_in_chunks(data: &[u8], chunk: usize) -> Result<Vec<u8>, GzipError<()>> {
        let mut g = Gunzip::new();
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| -> Result<(), ()> {
            out.extend_from_slice(b);
            Ok(())
        };
        for c in data.chunks(chunk.max(1)) {
            g.feed(c, &mut sink)?;
        }
        g.finish(&mut sink)?;
        Ok(out)
    }

    #[test]
    fn round_trip_in_any_chunking() {
        let body: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("m{{i=\"{i}\"}} {i}\n").into_bytes())
            .collect();
        let z = gz(&body);
        for chunk in [1, 7, 512, 4096, z.len()] {
            assert_eq!(gunzip_in_chunks(&z, chunk).unwrap(), body, "chunk {chunk}");
        }
    }

    #[test]
    fn every_member_of_a_multi_member_body_decodes() {
        let mut z = gz(b"a 1\nb 2\n");
        z.extend(gz(b"c 3\n"));
        z.extend(gz(b""));
        z.extend(gz(b"d 4\n"));
        for chunk in [1, 3, 10, z.len()] {
            assert_eq!(
                gunzip_in_chunks(&z, chunk).unwrap(),
                b"a 1\nb 2\nc 3\nd 4\n",
                "chunk {chunk}"
            );
        }
        // Garbage after a member is an error (Go: invalid header), and so is a second
        // member cut short.
        let mut bad = gz(b"a 1\n");
        bad.extend_from_slice(b"junk");
        assert!(matches!(
            gunzip_in_chunks(&bad, 5),
            Err(GzipError::Invalid(_))
        ));
        let mut cut = gz(b"a 1\n");
        let second = gz(b"b 2\n");
        cut.extend_from_slice(&second[..second.len() - 4]);
        assert!(matches!(
            gunzip_in_chunks(&cut, 5),
            Err(GzipError::Invalid(_))
        ));
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        assert!(matches!(
            gunzip_in_chunks(b"not gzip at all", 4),
            Err(GzipError::Invalid(_))
        ));
        let z = gz(b"a 1\nb 2\n");
        let cut = &z[..z.len() - 9];
        assert!(
            matches!(gunzip_in_chunks(cut, 3), Err(GzipError::Invalid(_))),
            "{:?}",
            gunzip_in_chunks(cut, 3)
        );
    }

    fn err_text(r: Result<Vec<u8>, GzipError<()>>) -> String {
        match r {
            Err(GzipError::Invalid(e)) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn errors_read_as_go_words_them() {
        assert_eq!(err_text(gunzip_in_chunks(b"", 1)), "EOF");
        assert_eq!(
            err_text(gunzip_in_chunks(b"not gzip at all", 3)),
            "gzip: invalid header"
        );
        // Fewer than the header's 10 bytes: io.ReadFull's error.
        assert_eq!(err_text(gunzip_in_chunks(b"not gzip", 3)), "unexpected EOF");
        let z = gz(b"a 1\n");
        assert_eq!(err_text(gunzip_in_chunks(&z[..5], 2)), "unexpected EOF");
        assert_eq!(
            err_text(gunzip_in_chunks(&z[..z.len() - 3], 2)),
            "unexpected EOF"
        );
        // The checksum and the size in the trailer are both checked.
        for at in [z.len() - 8, z.len() - 1] {
            let mut bad = z.clone();
            bad[at] ^= 1;
            assert_eq!(
                err_text(gunzip_in_chunks(&bad, 4)),
                "gzip: invalid checksum"
            );
        }
        // A deflate block of reserved type 3.
        let mut bad = z[..10].to_vec();
        bad.extend_from_slice(&[0x07, 0, 0, 0]);
        assert!(
            err_text(gunzip_in_chunks(&bad, 4)).starts_with("flate: corrupt input before offset")
        );
    }

    #[test]
    fn optional_header_fields_are_read_and_the_header_crc_checked() {
        let body = b"m 1\nn 2\n";
        let mut e = flate2::GzBuilder::new()
            .filename("metrics.txt")
            .comment("a comment")
            .extra(vec![1, 2, 3, 4, 5])
            .write(Vec::new(), Compression::default());
        e.write_all(body).unwrap();
        let z = e.finish().unwrap();
        // flate2 does not write FHCRC: set it and insert the CRC-16 by hand.
        let header_len = z.len() - {
            let mut p = gz(body);
            p.drain(..10);
            p.len()
        };
        let mut with = z[..header_len].to_vec();
        with[3] |= FHCRC;
        let mut c = Crc::new();
        c.update(&with);
        with.extend_from_slice(&(c.sum() as u16).to_le_bytes());
        with.extend_from_slice(&z[header_len..]);
        for chunk in [1, 2, 5, with.len()] {
            assert_eq!(gunzip_in_chunks(&z, chunk).unwrap(), body);
            assert_eq!(
                gunzip_in_chunks(&with, chunk).unwrap(),
                body,
                "chunk {chunk}"
            );
        }
        let mut bad = with.clone();
        bad[header_len] ^= 0xff;
        assert_eq!(err_text(gunzip_in_chunks(&bad, 3)), "gzip: invalid header");
        // Go reads a name of at most 511 bytes.
        for (len, ok) in [(511, true), (512, false)] {
            let mut e = flate2::GzBuilder::new()
                .filename(vec![b'x'; len])
                .write(Vec::new(), Compression::default());
            e.write_all(body).unwrap();
            let z = e.finish().unwrap();
            assert_eq!(gunzip_in_chunks(&z, 64).is_ok(), ok, "name of {len}");
        }
    }

    #[test]
    fn a_reset_decoder_decodes_the_next_body_and_forgets_an_error() {
        let mut g = Gunzip::new();
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| -> Result<(), ()> {
            out.extend_from_slice(b);
            Ok(())
        };
        assert!(g.feed(b"not gzip at all", &mut sink).is_err());
        assert!(
            g.feed(&gz(b"a 1\n"), &mut sink).is_err(),
            "failed stays failed"
        );
        for body in [&b"a 1\n"[..], b"b 2\nc 3\n"] {
            g.reset();
            g.feed(&gz(body), &mut sink).unwrap();
            g.finish(&mut sink).unwrap();
            assert_eq!(g.produced(), body.len() as u64);
        }
        assert_eq!(out, b"a 1\nb 2\nc 3\n");
    }

    #[test]
    fn a_budget_bounds_each_slice() {
        let body = vec![b'x'; 1 << 20];
        let z = gz(&body);
        let mut g = Gunzip::new();
        let mut got = 0usize;
        let mut sink = |b: &[u8]| -> Result<(), ()> {
            got += b.len();
            Ok(())
        };
        let mut rest = &z[..];
        let mut slices = 0;
        while !rest.is_empty() {
            let before = g.produced();
            let used = g.feed_some(rest, 64 << 10, &mut sink).unwrap();
            assert!(g.produced() - before <= (64 << 10) + OUT as u64);
            rest = &rest[used..];
            slices += 1;
        }
        g.finish(&mut sink).unwrap();
        assert_eq!(got, body.len());
        assert!(slices >= 16, "{slices} slices");
    }

    /// flate2's own multi-member decoder as the reference.
    fn reference(data: &[u8]) -> Option<Vec<u8>> {
        let mut d = flate2::write::MultiGzDecoder::new(Vec::new());
        d.write_all(data).ok()?;
        d.try_finish().ok()?;
        Some(std::mem::take(d.get_mut()))
    }

    #[test]
    fn reserved_flag_bits_are_ignored_as_go_does() {
        let body = b"up 1\n".repeat(50);
        let mut z = gz(&body);
        z[3] |= RESERVED;
        assert!(reference(&z).is_none(), "flate2 refuses reserved bits");
        assert_eq!(gunzip_in_chunks(&z, 7), Ok(body));
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_flate2_on_members_and_damage(
            bodies in proptest::collection::vec(proptest::collection::vec(0u8..8, 0..300), 1..4),
            chunk in 1usize..64,
            damage in proptest::option::of((0usize..10_000, 0u8..=255)),
            cut in proptest::option::of(0usize..10_000),
        ) {
            let mut z = Vec::new();
            let mut flags = Vec::new();
            for b in &bodies {
                flags.push(z.len() + 3);
                z.extend(gz(b));
            }
            let mut damaged = None;
            if let Some((at, x)) = damage {
                let n = z.len();
                z[at % n] ^= x;
                damaged = Some(at % n);
            }
            if let Some(c) = cut {
                let n = z.len();
                z.truncate(c % (n + 1));
            }
            let ours = gunzip_in_chunks(&z, chunk).ok();
            // Go's `readHeader` ignores FLG's reserved bits (flate2 refuses them, as RFC
            // 1952 asks): the reference reads the body with them cleared.
            // Only a damaged flag byte can have them (flate2 writes none).
            let mut go = z.clone();
            if let Some(at) = damaged
                && flags.contains(&at)
                && let Some(f) = go.get_mut(at)
            {
                *f &= !RESERVED;
            }
            let want = if z.is_empty() { None } else { reference(&go) };
            proptest::prop_assert_eq!(ours, want);
        }
    }
}
