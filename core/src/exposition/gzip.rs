//! gzip bodies (`Content-Encoding: gzip`), decompressed in the core: compressed bytes in,
//! decompressed pieces out, never more than [`PIECE`] input bytes' worth at a time.

use std::io::Write;

use flate2::write::MultiGzDecoder;

/// Compressed bytes handed to the decoder per step: deflate expands at most about
/// 1 032:1, so one step yields at most about half a megabyte.
pub const PIECE: usize = 512;

/// What stopped decompression.
#[derive(Debug, PartialEq, Eq)]
pub enum GzipError<E> {
    /// The compressed stream is invalid or truncated.
    Invalid(String),
    /// The consumer of the decompressed bytes refused them.
    Sink(E),
}

/// A streaming gzip decoder for one body: every member of a multi-member stream, one
/// after another, as Go's `gzip.Reader` (multistream by default) gives them to
/// Prometheus.
pub struct Gunzip {
    dec: MultiGzDecoder<Vec<u8>>,
    out: u64,
}

impl std::fmt::Debug for Gunzip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gunzip").field("out", &self.out).finish()
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
            dec: MultiGzDecoder::new(Vec::new()),
            out: 0,
        }
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
        for piece in input.chunks(PIECE) {
            self.dec
                .write_all(piece)
                .map_err(|e| GzipError::Invalid(format!("decompressing gzip body: {e}")))?;
            self.drain(sink)?;
        }
        Ok(())
    }

    /// Like [`Gunzip::feed`], but stops once `budget` decompressed bytes came out (a
    /// step more at most: about half a megabyte); the number of input bytes taken. The
    /// caller keeps the rest for later, so a decompression bomb is inflated in slices.
    pub fn feed_some<E>(
        &mut self,
        input: &[u8],
        budget: u64,
        sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<usize, GzipError<E>> {
        let start = self.out;
        let mut used = 0;
        for piece in input.chunks(PIECE) {
            if self.out - start >= budget {
                break;
            }
            self.dec
                .write_all(piece)
                .map_err(|e| GzipError::Invalid(format!("decompressing gzip body: {e}")))?;
            used += piece.len();
            self.drain(sink)?;
        }
        Ok(used)
    }

    /// Ends the body: the stream must be complete.
    pub fn finish<E>(
        &mut self,
        sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), GzipError<E>> {
        self.dec
            .try_finish()
            .map_err(|e| GzipError::Invalid(format!("decompressing gzip body: {e}")))?;
        self.drain(sink)
    }

    fn drain<E>(
        &mut self,
        sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), GzipError<E>> {
        let buf = self.dec.get_mut();
        if buf.is_empty() {
            return Ok(());
        }
        self.out += buf.len() as u64;
        let r = sink(buf);
        buf.clear();
        r.map_err(GzipError::Sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

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
}
