//! Arbitrary bytes as a Kubernetes watch body and as a list body: decoding may fail,
//! never panic; a watch body gives the same events (and the same verdict) whether it
//! arrives whole or in pieces of any size; every event has an object; a list's items
//! are objects.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::discovery::kubernetes::watch::{WatchDecoder, decode_list};

fuzz_target!(|data: &[u8]| {
    let Some((&size, body)) = data.split_first() else {
        return;
    };
    let whole = decode(body, body.len().max(1));
    let pieces = decode(body, usize::from(size).max(1));
    assert_eq!(whole, pieces);
    if let Ok(events) = &whole {
        assert!(events.iter().all(|e| e.object.is_object()));
    }
    if let Ok(page) = decode_list(body) {
        assert!(page.items.iter().all(|i| i.is_object()));
    }
});

fn decode(
    body: &[u8],
    size: usize,
) -> Result<Vec<trawl_core::discovery::kubernetes::watch::WatchEvent>, String> {
    let mut d = WatchDecoder::new();
    let mut out = Vec::new();
    for piece in body.chunks(size) {
        d.feed(piece, &mut out)?;
    }
    d.finish(&mut out)?;
    Ok(out)
}
