//! Arbitrary bytes as a scrape body, in both formats (OpenMetrics also strict): parsing
//! never panics; streaming is invisible (the body fed whole and in chunks gives the same
//! entries and the same error); the carry buffer stays within one entry plus one chunk;
//! whatever the strict OpenMetrics parser accepts, the scrape parser accepts too. The
//! first byte also picks the histogram options (native, converted, classic kept); every
//! histogram entry validates without panicking and survives a WAL record round trip.
use trawl_core::batch::{HistogramPoint, SeriesRef};
use trawl_core::exposition::{BodyParser, Entry, FeedError, Format, HistogramOptions};
use trawl_core::wal::record;

const MAX_LINE: usize = 4096;

fn parse(
    body: &[u8],
    format: Format,
    strict: bool,
    chunk: usize,
    opts: HistogramOptions,
) -> Result<Vec<String>, String> {
    let mut p = BodyParser::new(format).max_line(MAX_LINE).histograms(opts);
    if strict {
        p = p.strict();
    }
    let mut out = Vec::new();
    let mut sink = |e: Entry<'_>| -> Result<(), ()> {
        if let Entry::Sample(s) = &e {
            let labels: Vec<_> = s.labels().collect();
            out.push(format!("{e:?} {labels:?} {:x}", s.value.to_bits()));
        } else if let Entry::Histogram(h) = &e {
            let _ = h.histogram.validate();
            let p = HistogramPoint {
                series: SeriesRef(1),
                t: 2,
                h: h.histogram.clone(),
            };
            let mut rec = Vec::new();
            record::histograms(&mut rec, record::histogram_kind(&p.h), [&p]);
            let back = record::decode_histograms(&rec).expect("a written record decodes");
            assert_eq!(back, vec![p], "histogram record round trip");
            out.push(format!("{e:?} {}", h.histogram));
        } else {
            out.push(format!("{e:?}"));
        }
        Ok(())
    };
    let show = |e: FeedError<()>| match e {
        FeedError::Parse(p) => p.to_string(),
        FeedError::Sink(()) => "sink".into(),
    };
    for c in body.chunks(chunk.max(1)) {
        p.feed(c, &mut sink).map_err(show)?;
        assert!(p.buffered() <= MAX_LINE + c.len(), "carry {} > bound", p.buffered());
    }
    p.finish(&mut sink).map_err(show)?;
    Ok(out)
}

/// Checks `data` (a chunk-size byte, then the body) under the given parsers.
pub fn check(data: &[u8], parsers: &[(Format, bool)]) {
    let Some((&k, body)) = data.split_first() else {
        return;
    };
    let chunk = 1 + usize::from(k) % 64;
    let opts = HistogramOptions {
        native: k & 0x40 != 0,
        nhcb: k & 0x80 != 0,
        keep_classic: k & 1 != 0,
        start_timestamps: k & 2 != 0,
    };
    for &(format, strict) in parsers {
        let whole = parse(body, format, strict, body.len().max(1), opts);
        let split = parse(body, format, strict, chunk, opts);
        // A line longer than the bound may fail in chunks and pass whole (the bound only
        // applies to what is held back); otherwise the two agree exactly.
        if body.len() <= MAX_LINE {
            assert_eq!(whole, split, "{format:?} strict {strict}, chunk {chunk}");
        }
    }
    if parsers.iter().any(|p| p.0 == Format::OpenMetrics) {
        let strict_ok = parse(body, Format::OpenMetrics, true, body.len().max(1), opts).is_ok();
        let lax_ok = parse(body, Format::OpenMetrics, false, body.len().max(1), opts).is_ok();
        assert!(!strict_ok || lax_ok, "strict accepted what the scrape parser refused");
    }
}
