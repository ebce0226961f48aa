//! gzip + parse: arbitrary bytes as a gzip body never panic the decoder or the parser,
//! and a body compressed here decodes, in any chunking, to exactly what it was.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use trawl_core::exposition::gzip::Gunzip;
use trawl_core::exposition::{BodyParser, Entry, Format};

fn gunzip(data: &[u8], chunk: usize) -> Result<Vec<u8>, String> {
    let mut g = Gunzip::new();
    let mut out = Vec::new();
    let mut sink = |b: &[u8]| -> Result<(), ()> {
        out.extend_from_slice(b);
        Ok(())
    };
    for c in data.chunks(chunk.max(1)) {
        g.feed(c, &mut sink).map_err(|e| format!("{e:?}"))?;
    }
    g.finish(&mut sink).map_err(|e| format!("{e:?}"))?;
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, body)) = data.split_first() else {
        return;
    };
    let chunk = 1 + usize::from(k) % 97;
    // Arbitrary bytes as a compressed body.
    if let Ok(plain) = gunzip(body, chunk) {
        let mut p = BodyParser::new(Format::PromText);
        let mut sink = |_: Entry<'_>| -> Result<(), ()> { Ok(()) };
        let _ = p.feed(&plain, &mut sink).and_then(|()| p.finish(&mut sink));
    }
    // A real compressed body round-trips.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(body).unwrap();
    let z = e.finish().unwrap();
    assert_eq!(gunzip(&z, chunk).as_deref(), Ok(body));
});
