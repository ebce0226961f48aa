//! Arbitrary bytes as a Kubernetes watch body and as a list body: decoding may fail,
//! never panic; a watch body gives the same events (and the same verdict) whether it
//! arrives whole or in pieces of any size; every event has an object; a list's items
//! are objects.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trawl_core::discovery::kubernetes::objects::Resource;
use trawl_core::discovery::kubernetes::watch::{EventType, WatchDecoder, WatchEvent, decode_list};

fuzz_target!(|data: &[u8]| {
    let Some((&size, body)) = data.split_first() else {
        return;
    };
    let whole = decode(body, body.len().max(1));
    let pieces = decode(body, usize::from(size).max(1));
    assert_eq!(whole, pieces);
    if let Ok(events) = &whole {
        assert!(events.iter().all(|(_, o)| o.starts_with('{')));
    }
    if let Ok(page) = decode_list(body) {
        assert!(page.items.iter().all(|i| i.get().starts_with('{')));
        // Every item decodes as every resource or fails with a message; never a panic.
        for item in &page.items {
            for r in Resource::ALL {
                let _ = r.decode(item);
            }
        }
    }
});

/// The events of `body` fed in pieces of `size`, each as (type, object text); every
/// object is also decoded as every resource (which may fail, never panic).
fn decode(body: &[u8], size: usize) -> Result<Vec<(EventType, String)>, String> {
    let mut d = WatchDecoder::new();
    let mut out = Vec::new();
    let mut on = |e: WatchEvent<'_>| {
        for r in Resource::ALL {
            let _ = r.decode(e.object);
        }
        out.push((e.kind, e.object.get().to_owned()));
    };
    for piece in body.chunks(size) {
        d.feed(piece, &mut on)?;
    }
    d.finish(&mut on)?;
    Ok(out)
}
