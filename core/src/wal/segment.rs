//! The page layer of a segment: 32 KiB pages; each record split into fragments (full, or
//! first/middle/last) that never cross a page; a 7-byte header per fragment (type, big-
//! endian length, big-endian CRC-32C of the fragment's data); pages padded with zeros
//! when fewer than 7 bytes remain.

/// Page size.
pub const PAGE: usize = 32 * 1024;
/// Fragment header size.
pub const HEADER: usize = 7;

/// Fragment types (low three bits of the type byte).
pub mod fragment {
    /// The rest of the page is zero.
    pub const PAD: u8 = 0;
    /// A whole record.
    pub const FULL: u8 = 1;
    /// The first fragment of a record.
    pub const FIRST: u8 = 2;
    /// A middle fragment.
    pub const MIDDLE: u8 = 3;
    /// The last fragment.
    pub const LAST: u8 = 4;
}

/// Appends records to a segment. The page layout depends only on the position in the
/// segment, so the writer keeps that position and the bytes not yet taken: the shell
/// takes them ([`SegmentWriter::take`]) and writes them to the file, and a segment of
/// 128 MiB is never held in memory.
#[derive(Debug, Default)]
pub struct SegmentWriter {
    /// Bytes of the segment before `buf` (already taken).
    taken: u64,
    buf: Vec<u8>,
    /// Reused for compressed records.
    zbuf: Vec<u8>,
    encoder: Option<snap::raw::Encoder>,
}

impl SegmentWriter {
    /// An empty segment.
    pub fn new() -> SegmentWriter {
        SegmentWriter::default()
    }

    /// Continues a segment that already holds `len` bytes (after recovery).
    pub fn resume(len: u64) -> SegmentWriter {
        SegmentWriter {
            taken: len,
            ..SegmentWriter::default()
        }
    }

    /// The bytes appended and not yet taken (for a segment never taken from: all of it).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Takes the bytes appended so far, for the shell to write out.
    pub fn take(&mut self) -> Vec<u8> {
        self.taken += self.buf.len() as u64;
        std::mem::take(&mut self.buf)
    }

    /// Hands the bytes appended so far to `write`; if it succeeds they count as taken
    /// (and the buffer is kept for the next records), if it fails they are dropped and
    /// the segment continues at [`SegmentWriter::taken`] (the shell truncates its file
    /// back there).
    pub fn flush<E>(&mut self, write: impl FnOnce(&[u8]) -> Result<(), E>) -> Result<usize, E> {
        let n = self.buf.len();
        let r = write(&self.buf);
        if r.is_ok() {
            self.taken += n as u64;
        }
        self.buf.clear();
        r.map(|()| n)
    }

    /// Gives back buffer space beyond `keep` bytes (after a rare large record, such as
    /// the series of a first scrape, so the buffers do not keep its size for good).
    /// Only call with nothing appended since the last flush.
    pub fn trim(&mut self, keep: usize) {
        if self.buf.capacity() > keep && self.buf.is_empty() {
            self.buf = Vec::new();
        }
        if self.zbuf.capacity() > keep {
            self.zbuf = Vec::new();
        }
    }

    /// Bytes already taken.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// The segment's length so far, taken or not.
    pub fn len(&self) -> u64 {
        self.taken + self.buf.len() as u64
    }

    /// True if nothing was ever appended.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An upper bound of the bytes a record of `n` bytes adds to the segment (headers of
    /// every fragment and page padding included), to decide on rotation before writing.
    pub fn bound(n: usize) -> u64 {
        let fragments = n / (PAGE - HEADER) + 2;
        (n + fragments * 2 * HEADER) as u64
    }

    fn pos(&self) -> usize {
        // Only the position within the page matters.
        ((self.taken % PAGE as u64) as usize + self.buf.len()) % PAGE
    }

    /// Appends one record, snappy-compressed when that makes it strictly shorter (as
    /// Prometheus does with WAL compression on).
    pub fn append_compressed(&mut self, record: &[u8]) {
        let mut z = std::mem::take(&mut self.zbuf);
        z.resize(snap::raw::max_compress_len(record.len()), 0);
        let enc = self.encoder.get_or_insert_with(snap::raw::Encoder::new);
        match enc.compress(record, &mut z) {
            Ok(n) if n < record.len() => self.write(&z[..n], 0x08),
            _ => self.write(record, 0),
        }
        self.zbuf = z;
    }

    /// Appends one record (uncompressed).
    pub fn append(&mut self, record: &[u8]) {
        self.write(record, 0);
    }

    fn write(&mut self, record: &[u8], flags: u8) {
        let mut rest = record;
        let mut first = true;
        loop {
            let left = PAGE - self.pos();
            if left < HEADER {
                // Too little room for a header: pad to the page end.
                self.buf.resize(self.buf.len() + left, 0);
                continue;
            }
            let room = left - HEADER;
            let n = rest.len().min(room);
            let last = n == rest.len();
            let ty = match (first, last) {
                (true, true) => fragment::FULL,
                (true, false) => fragment::FIRST,
                (false, false) => fragment::MIDDLE,
                (false, true) => fragment::LAST,
            };
            let data = &rest[..n];
            self.buf.push(ty | flags);
            // `n` is below a page, so it fits in 16 bits.
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
            self.buf
                .extend_from_slice(&crc32c::crc32c(data).to_be_bytes());
            self.buf.extend_from_slice(data);
            rest = &rest[n..];
            first = false;
            if last {
                return;
            }
        }
    }

    /// Zero-fills the current page to its end (as on close or rotation).
    pub fn pad_page(&mut self) {
        let r = self.pos();
        if r != 0 {
            self.buf.resize(self.buf.len() + PAGE - r, 0);
        }
    }
}

/// One record read back from a segment: its bytes (reassembled, still compressed if the
/// flag says so) and whether the snappy flag was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRecord {
    /// The record's bytes.
    pub data: Vec<u8>,
    /// The fragments carried the snappy flag.
    pub snappy: bool,
    /// Offset of the record's first fragment in the segment.
    pub offset: usize,
    /// Offset just past the record's last fragment.
    pub end: usize,
}

/// Why reading stopped before the end of a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// A fragment's checksum does not match its data.
    Checksum {
        /// Offset of the fragment.
        offset: usize,
    },
    /// A fragment type that cannot come here (a middle without a first, a bad type).
    Sequence {
        /// Offset of the fragment.
        offset: usize,
    },
    /// A padding area holds non-zero bytes.
    Padding {
        /// Offset of the padding.
        offset: usize,
    },
    /// The segment ends inside a record (its last fragment is missing or cut).
    Torn {
        /// Offset of the torn record's first fragment.
        offset: usize,
    },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Checksum { offset } => write!(f, "checksum mismatch at offset {offset}"),
            ReadError::Sequence { offset } => {
                write!(f, "unexpected fragment type at offset {offset}")
            }
            ReadError::Padding { offset } => write!(f, "non-zero padding at offset {offset}"),
            ReadError::Torn { offset } => {
                write!(f, "the segment ends inside the record at offset {offset}")
            }
        }
    }
}

impl ReadRecord {
    /// The record's payload, decompressed if it was compressed.
    pub fn payload(&self) -> Option<Vec<u8>> {
        if self.snappy {
            snap::raw::Decoder::new().decompress_vec(&self.data).ok()
        } else {
            Some(self.data.clone())
        }
    }
}

/// Reads every whole record of a segment, stopping at the first problem. The records
/// before the problem are returned with it: that is what recovery keeps.
pub fn read_segment(b: &[u8]) -> (Vec<ReadRecord>, Option<ReadError>) {
    read_segment_from(b, 0)
}

/// [`read_segment`] of the part of a segment that starts at byte `base` (a record
/// boundary): for reading a few known records without the rest. Offsets are reported
/// relative to `b`.
pub fn read_segment_from(b: &[u8], base: usize) -> (Vec<ReadRecord>, Option<ReadError>) {
    let mut out = Vec::new();
    let mut i = 0;
    let mut cur: Option<ReadRecord> = None;
    while i < b.len() {
        let left = PAGE - (base + i) % PAGE;
        if left < HEADER {
            if b[i..(i + left).min(b.len())].iter().any(|&c| c != 0) {
                return (out, Some(ReadError::Padding { offset: i }));
            }
            i += left;
            continue;
        }
        let ty = b[i];
        let kind = ty & 0x07;
        if kind == fragment::PAD {
            let end = (i + left).min(b.len());
            if b[i..end].iter().any(|&c| c != 0) {
                return (out, Some(ReadError::Padding { offset: i }));
            }
            i = end;
            continue;
        }
        if i + HEADER > b.len() {
            let offset = cur.map_or(i, |c| c.offset);
            return (out, Some(ReadError::Torn { offset }));
        }
        let n = u16::from_be_bytes([b[i + 1], b[i + 2]]) as usize;
        let crc = u32::from_be_bytes([b[i + 3], b[i + 4], b[i + 5], b[i + 6]]);
        let start = i + HEADER;
        if n > left - HEADER || ty & 0xE0 != 0 {
            return (out, Some(ReadError::Sequence { offset: i }));
        }
        if start + n > b.len() {
            let offset = cur.map_or(i, |c| c.offset);
            return (out, Some(ReadError::Torn { offset }));
        }
        let data = &b[start..start + n];
        if crc32c::crc32c(data) != crc {
            return (out, Some(ReadError::Checksum { offset: i }));
        }
        let snappy = ty & 0x08 != 0;
        match (kind, cur.take()) {
            (fragment::FULL, None) => out.push(ReadRecord {
                data: data.to_vec(),
                snappy,
                offset: i,
                end: start + n,
            }),
            (fragment::FIRST, None) => {
                cur = Some(ReadRecord {
                    data: data.to_vec(),
                    snappy,
                    offset: i,
                    end: 0,
                })
            }
            (fragment::MIDDLE, Some(mut r)) => {
                r.data.extend_from_slice(data);
                cur = Some(r);
            }
            (fragment::LAST, Some(mut r)) => {
                r.data.extend_from_slice(data);
                r.end = start + n;
                out.push(r);
            }
            _ => return (out, Some(ReadError::Sequence { offset: i })),
        }
        i = start + n;
    }
    match cur {
        Some(r) => (out, Some(ReadError::Torn { offset: r.offset })),
        None => (out, None),
    }
}

/// Where a segment's whole records end: what recovery truncates a damaged segment to.
pub fn valid_len(records: &[ReadRecord]) -> usize {
    records.last().map_or(0, |r| r.end)
}
