//! Feeding a body to a parser chunk by chunk. Entries that lie wholly inside a chunk are
//! parsed in place; only an entry cut by a chunk boundary is copied, into a carry buffer
//! that never holds more than one entry plus the rest of one chunk. Memory is bounded by
//! the longest line (and `max_line`), not by the body.

use super::nhcb::Nhcb;
use super::openmetrics::Validator;
use super::protobuf::{self, ProtoError};
use super::{
    Entry, Format, HistogramOptions, MetricType, ParseError, Step, SyntaxError, openmetrics, text,
};

/// What stopped a feed: the body, or the consumer of its entries.
#[derive(Debug, PartialEq, Eq)]
pub enum FeedError<E> {
    /// The body does not parse.
    Parse(ParseError),
    /// The consumer refused an entry.
    Sink(E),
}

/// A streaming parser for one body.
#[derive(Debug)]
pub struct BodyParser {
    format: Format,
    carry: Vec<u8>,
    /// Line number of the next entry.
    line: u64,
    max_line: usize,
    seen_eof: bool,
    validator: Option<Validator>,
    failed: bool,
    /// The type the last `# TYPE` line gave (Prometheus's parser state `mtype`).
    kind: MetricType,
    /// Bytes of the body consumed before the current chunk's first entry (protobuf
    /// errors name byte offsets).
    offset: u64,
    /// Text the protobuf decoder writes its entries into.
    scratch: protobuf::Scratch,
    /// The validator's first objection when it only advises ([`BodyParser::advisory`]).
    advice: Option<ParseError>,
    advisory: bool,
    /// How histograms are taken.
    histograms: HistogramOptions,
    /// The conversion of text and OpenMetrics classic histograms, when asked for.
    nhcb: Option<Nhcb>,
}

/// The default bound on one metric family of a protobuf body (a family is one message,
/// so a family of many series is one large entry).
pub const DEFAULT_MAX_FAMILY: usize = 64 << 20;

/// The default bound on one entry (line) of a body.
pub const DEFAULT_MAX_LINE: usize = 16 << 20;

impl BodyParser {
    /// A parser for a body in `format`, syntax checks only (as Prometheus).
    pub fn new(format: Format) -> BodyParser {
        BodyParser {
            format,
            carry: Vec::new(),
            line: 1,
            max_line: DEFAULT_MAX_LINE,
            seen_eof: false,
            validator: None,
            failed: false,
            kind: MetricType::Unknown,
            offset: 0,
            scratch: protobuf::Scratch::default(),
            advice: None,
            advisory: false,
            histograms: HistogramOptions::default(),
            nhcb: None,
        }
        .bounded_for(format)
    }

    fn bounded_for(mut self, format: Format) -> BodyParser {
        if format == Format::Protobuf {
            self.max_line = DEFAULT_MAX_FAMILY;
        }
        self
    }

    /// Also checks the OpenMetrics specification's semantic rules
    /// ([`Validator`]); no effect on the text format.
    pub fn strict(mut self) -> BodyParser {
        if self.format == Format::OpenMetrics {
            self.validator = Some(Validator::new());
        }
        self
    }

    /// Runs the OpenMetrics specification's rules ([`Validator`]) without failing on
    /// them: the first rule an exposition breaks is kept ([`BodyParser::advice`]) and
    /// parsing goes on as a scrape's does. Real exporters break some of these rules
    /// (client_golang writes a `_sum` beside negative buckets), and Prometheus and trawl
    /// accept them.
    pub fn advisory(mut self) -> BodyParser {
        if self.format == Format::OpenMetrics {
            self.validator = Some(Validator::new());
            self.advisory = true;
        }
        self
    }

    /// Takes histograms as `opts` says (default: classic only, native parts ignored).
    pub fn histograms(mut self, opts: HistogramOptions) -> BodyParser {
        self.histograms = opts;
        // Protobuf bodies convert inside their decoder (3.x does the same).
        self.nhcb = (opts.nhcb && self.format != Format::Protobuf).then(|| Nhcb::new(opts));
        self
    }

    /// The first rule of the specification the body broke, in advisory mode.
    pub fn advice(&self) -> Option<&ParseError> {
        self.advice.as_ref()
    }

    /// Bounds the length of one entry (default [`DEFAULT_MAX_LINE`]; for protobuf, one
    /// metric family, default [`DEFAULT_MAX_FAMILY`]).
    pub fn max_line(mut self, bytes: usize) -> BodyParser {
        self.max_line = bytes;
        self
    }

    /// The format being parsed.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Bytes held back for an entry cut by a chunk boundary (never more than the
    /// longest entry plus one chunk).
    pub fn buffered(&self) -> usize {
        self.carry.len()
    }

    /// Parses the next chunk of the body, handing each complete entry to `sink`.
    pub fn feed<E>(
        &mut self,
        mut chunk: &[u8],
        sink: &mut impl FnMut(Entry<'_>) -> Result<(), E>,
    ) -> Result<(), FeedError<E>> {
        if self.failed {
            return Ok(());
        }
        if !self.carry.is_empty() {
            // Complete the cut entry with the bytes up to the next line end (all of the
            // chunk if the entry is still open after that: a quoted line end).
            let first = chunk
                .iter()
                .position(|&c| c == b'\n')
                .map_or(chunk.len(), |p| p + 1);
            for take in [first, usize::MAX] {
                let take = take.min(chunk.len());
                self.carry.extend_from_slice(&chunk[..take]);
                chunk = &chunk[take..];
                let carry = std::mem::take(&mut self.carry);
                let used = self.run(&carry, false, sink);
                self.carry = carry;
                let used = used?;
                self.carry.drain(..used);
                if self.carry.is_empty() {
                    break;
                }
                self.check_carry()?;
                if chunk.is_empty() {
                    return Ok(());
                }
            }
            if !self.carry.is_empty() {
                return Ok(());
            }
        }
        let used = self.run(chunk, false, sink)?;
        self.carry.extend_from_slice(&chunk[used..]);
        self.check_carry()
    }

    /// Ends the body: parses what is left and checks the format's end rules.
    pub fn finish<E>(
        &mut self,
        sink: &mut impl FnMut(Entry<'_>) -> Result<(), E>,
    ) -> Result<(), FeedError<E>> {
        if self.failed {
            return Ok(());
        }
        let carry = std::mem::take(&mut self.carry);
        let used = self.run(&carry, true, sink);
        self.carry = carry;
        let used = used?;
        self.carry.drain(..used);
        if let Some(n) = self.nhcb.as_mut()
            && let Err(e) = n.flush(sink)
        {
            self.failed = true;
            return Err(FeedError::Sink(e));
        }
        if self.format == Format::OpenMetrics && !self.seen_eof {
            return Err(self.fail(self.line, 1, "data does not end with # EOF".into()));
        }
        if let Some(v) = self.validator.as_mut()
            && let Err(e) = v.entry(&Entry::Eof)
        {
            if self.advisory {
                self.advise(self.line, e);
                return Ok(());
            }
            return Err(self.fail(self.line, 1, e));
        }
        Ok(())
    }

    /// Keeps the first objection; the validator stops there (its state after an
    /// objection would only produce echoes of it).
    fn advise(&mut self, line: u64, message: String) {
        self.validator = None;
        self.advice.get_or_insert(ParseError {
            line,
            column: 1,
            message,
        });
    }

    fn fail<E>(&mut self, line: u64, column: u64, message: String) -> FeedError<E> {
        self.failed = true;
        FeedError::Parse(ParseError {
            line,
            column,
            message,
        })
    }

    fn check_carry<E>(&mut self) -> Result<(), FeedError<E>> {
        if self.carry.len() > self.max_line {
            let max = self.max_line;
            return Err(self.fail(self.line, 1, format!("line longer than {max} bytes")));
        }
        Ok(())
    }

    /// Parses whole metric families from a protobuf `buf`; returns the bytes used.
    fn run_protobuf<E>(
        &mut self,
        buf: &[u8],
        eof: bool,
        sink: &mut impl FnMut(Entry<'_>) -> Result<(), E>,
    ) -> Result<usize, FeedError<E>> {
        let mut pos = 0;
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = loop {
            if pos >= buf.len() {
                break Ok(pos);
            }
            let max = self.max_line;
            let opts = self.histograms;
            match protobuf::next_family(&buf[pos..], eof, max, opts, &mut scratch, &mut |e| sink(e))
            {
                Ok(None) => break Ok(pos),
                Ok(Some(len)) => pos += len,
                Err(ProtoError::Syntax(SyntaxError { offset, message })) => {
                    let at = self.offset + (pos + offset) as u64 + 1;
                    break Err(self.fail(0, at, message));
                }
                Err(ProtoError::Sink(e)) => {
                    self.failed = true;
                    break Err(FeedError::Sink(e));
                }
            }
        };
        self.scratch = scratch;
        if let Ok(used) = result {
            self.offset += used as u64;
        }
        result
    }

    /// Parses whole entries from `buf`; returns the bytes used.
    fn run<E>(
        &mut self,
        buf: &[u8],
        eof: bool,
        sink: &mut impl FnMut(Entry<'_>) -> Result<(), E>,
    ) -> Result<usize, FeedError<E>> {
        if self.format == Format::Protobuf {
            return self.run_protobuf(buf, eof, sink);
        }
        let mut pos = 0;
        while pos < buf.len() {
            let rest = &buf[pos..];
            if self.seen_eof {
                return Err(self.fail(self.line, 1, "unexpected data after # EOF".into()));
            }
            let step = match self.format {
                Format::PromText => text::next_entry(rest, eof),
                Format::OpenMetrics => openmetrics::next_entry(rest, eof),
                // Protobuf bodies are parsed by `run_protobuf`, never here.
                Format::Protobuf => break,
            };
            match step {
                Ok(Step::Incomplete) => break,
                Ok(Step::Entry {
                    mut entry,
                    len,
                    newlines,
                }) => {
                    match &mut entry {
                        Entry::Eof => self.seen_eof = true,
                        Entry::Type { kind, .. } => self.kind = *kind,
                        Entry::Sample(s) => s.kind = self.kind,
                        _ => {}
                    }
                    if let Some(v) = self.validator.as_mut()
                        && !matches!(entry, Entry::Eof)
                        && let Err(e) = v.entry(&entry)
                    {
                        let line = self.line;
                        if !self.advisory {
                            return Err(self.fail(line, 1, e));
                        }
                        self.advise(line, e);
                    }
                    let delivered = match self.nhcb.as_mut() {
                        Some(n) => {
                            let blank = matches!(entry, Entry::Comment)
                                && !rest[..len.min(rest.len())].contains(&b'#');
                            n.push(entry, blank, sink)
                        }
                        None => sink(entry),
                    };
                    if let Err(e) = delivered {
                        self.failed = true;
                        return Err(FeedError::Sink(e));
                    }
                    pos += len;
                    self.line += newlines;
                }
                Err(SyntaxError { offset, message }) => {
                    let upto = &rest[..offset.min(rest.len())];
                    let nl = upto.iter().filter(|&&c| c == b'\n').count() as u64;
                    let col_start = upto.iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1);
                    let line = self.line + nl;
                    return Err(self.fail(line, (offset - col_start) as u64 + 1, message));
                }
            }
        }
        Ok(pos)
    }
}
