//! The Kubernetes API's list and watch bodies, decoded as they arrive.
//!
//! A watch response is a stream of JSON objects, one per line (`{"type": "ADDED",
//! "object": {...}}`), sent with chunked transfer encoding for as long as the watch
//! lasts: the body is never whole. [`WatchDecoder`] takes the body's pieces as the shell
//! reads them and hands out each complete event, holding at most one line's bytes (bounded
//! by [`MAX_EVENT_BYTES`]). A list response ([`decode_list`]) is one object whose
//! `metadata.resourceVersion` is where the following watch starts.
//!
//! Event types follow the API's `watch.EventType`: `ADDED`, `MODIFIED`, `DELETED`,
//! `BOOKMARK` (only the new resourceVersion matters) and `ERROR` (the object is a
//! `Status`; code 410 means the version is too old and the caller lists again).

use serde::Deserialize;
use serde_json::value::RawValue;

/// Most bytes one event may take (the API server refuses objects over about 1.5 MB;
/// this leaves room for large annotations). A longer line fails the watch.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// What a watch event says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// The object was created (or is there at the start of the watch).
    Added,
    /// The object changed.
    Modified,
    /// The object is gone (the event carries its last state).
    Deleted,
    /// Nothing changed; the watch has seen everything up to the object's
    /// `metadata.resourceVersion`.
    Bookmark,
    /// The watch failed; the object is a `Status`.
    Error,
}

/// One watch event: its type and the object's JSON text, borrowed from the decoder's
/// buffer (the caller decodes what it needs, once).
#[derive(Clone, Copy, Debug)]
pub struct WatchEvent<'a> {
    /// What happened.
    pub kind: EventType,
    /// The object (a `Status` for [`EventType::Error`]).
    pub object: &'a RawValue,
}

impl WatchEvent<'_> {
    /// The object's `metadata.resourceVersion` (empty if it has none).
    pub fn resource_version(&self) -> String {
        resource_version(self.object)
    }

    /// For an [`EventType::Error`]: the status code (410 when the version is too old).
    pub fn status_code(&self) -> Option<u64> {
        (self.kind == EventType::Error)
            .then(|| super::objects::Status::decode(self.object.get()).code)
            .filter(|c| *c != 0)
            .map(u64::from)
    }
}

/// An object's `metadata.resourceVersion` (empty if it has none or is not an object).
pub fn resource_version(object: &RawValue) -> String {
    #[derive(Deserialize)]
    struct Meta {
        #[serde(rename = "resourceVersion")]
        resource_version: Option<String>,
    }
    #[derive(Deserialize)]
    struct Obj {
        metadata: Option<Meta>,
    }
    serde_json::from_str::<Obj>(object.get())
        .ok()
        .and_then(|o| o.metadata?.resource_version)
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    object: &'a RawValue,
}

/// Decodes a watch body as it arrives.
#[derive(Debug, Default)]
pub struct WatchDecoder {
    /// Bytes of the line not yet complete.
    partial: Vec<u8>,
}

impl WatchDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> WatchDecoder {
        WatchDecoder::default()
    }

    /// Takes the next piece of the body; `on` gets each event completed by it, in order.
    /// An error (a line that is not an event, or one longer than [`MAX_EVENT_BYTES`])
    /// ends the watch: the caller starts a new one.
    pub fn feed(&mut self, piece: &[u8], on: &mut dyn FnMut(WatchEvent<'_>)) -> Result<(), String> {
        let mut rest = piece;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let (line, after) = rest.split_at(i);
            rest = &after[1..];
            if self.partial.is_empty() {
                // The same bound whether a line came in one piece or in many.
                if line.len() > MAX_EVENT_BYTES {
                    return Err(format!("watch event longer than {MAX_EVENT_BYTES} bytes"));
                }
                Self::line(line, on)?;
            } else {
                self.grow(line)?;
                let whole = std::mem::take(&mut self.partial);
                Self::line(&whole, on)?;
            }
        }
        self.grow(rest)
    }

    /// The body ended: a last line without its newline is an event too.
    pub fn finish(&mut self, on: &mut dyn FnMut(WatchEvent<'_>)) -> Result<(), String> {
        let last = std::mem::take(&mut self.partial);
        Self::line(&last, on)
    }

    /// Bytes held for an incomplete line.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    fn grow(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.partial.len() + bytes.len() > MAX_EVENT_BYTES {
            self.partial = Vec::new();
            return Err(format!("watch event longer than {MAX_EVENT_BYTES} bytes"));
        }
        self.partial.extend_from_slice(bytes);
        Ok(())
    }

    fn line(line: &[u8], on: &mut dyn FnMut(WatchEvent<'_>)) -> Result<(), String> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let raw: RawEvent<'_> = serde_json::from_slice(line)
            .map_err(|e| format!("unable to decode a watch event: {e}"))?;
        let kind = match &*raw.kind {
            "ADDED" => EventType::Added,
            "MODIFIED" => EventType::Modified,
            "DELETED" => EventType::Deleted,
            "BOOKMARK" => EventType::Bookmark,
            "ERROR" => EventType::Error,
            other => return Err(format!("unknown watch event type {other:?}")),
        };
        if !raw.object.get().starts_with('{') {
            return Err("watch event without an object".into());
        }
        on(WatchEvent {
            kind,
            object: raw.object,
        });
        Ok(())
    }
}

/// A list response: its items (JSON text borrowed from the body), the version to watch
/// from, and the token for the next page (empty on the last).
#[derive(Clone, Debug)]
pub struct ListPage<'a> {
    /// The objects.
    pub items: Vec<&'a RawValue>,
    /// `metadata.resourceVersion`.
    pub resource_version: String,
    /// `metadata.continue`.
    pub continue_token: String,
}

/// Decodes a whole list response body.
pub fn decode_list(body: &[u8]) -> Result<ListPage<'_>, String> {
    #[derive(Deserialize)]
    struct Meta {
        #[serde(default, rename = "resourceVersion")]
        resource_version: Option<String>,
        #[serde(default, rename = "continue")]
        continue_token: Option<String>,
    }
    #[derive(Deserialize)]
    struct Raw<'a> {
        metadata: Option<Meta>,
        #[serde(default, borrow)]
        items: Option<Vec<&'a RawValue>>,
    }
    let raw: Raw<'_> =
        serde_json::from_slice(body).map_err(|e| format!("unable to decode a list: {e}"))?;
    let meta = raw.metadata.ok_or("list without metadata")?;
    let items = raw.items.unwrap_or_default();
    if let Some(bad) = items.iter().position(|i| !i.get().starts_with('{')) {
        return Err(format!("list item {bad} is not an object"));
    }
    Ok(ListPage {
        items,
        resource_version: meta.resource_version.unwrap_or_default(),
        continue_token: meta.continue_token.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = concat!(
        r#"{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"10"}}}"#,
        "\n",
        r#"{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"11"}}}"#,
        "\n",
        r#"{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"15"}}}"#,
        "\n",
        r#"{"type":"DELETED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"16"}}}"#,
        "\n",
        r#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 1 (16)"}}"#,
        "\n"
    );

    /// Decoded events as (type, version, status code).
    type Seen = Vec<(EventType, String, Option<u64>)>;

    fn collect(out: &mut Seen) -> impl FnMut(WatchEvent<'_>) + '_ {
        |e| out.push((e.kind, e.resource_version(), e.status_code()))
    }

    #[test]
    fn events_come_out_whatever_the_pieces() {
        let want = vec![
            (EventType::Added, "10".to_owned()),
            (EventType::Modified, "11".to_owned()),
            (EventType::Bookmark, "15".to_owned()),
            (EventType::Deleted, "16".to_owned()),
            (EventType::Error, String::new()),
        ];
        for size in [1, 2, 7, 64, 1000, STREAM.len()] {
            let mut d = WatchDecoder::new();
            let mut out = Seen::new();
            for piece in STREAM.as_bytes().chunks(size) {
                d.feed(piece, &mut collect(&mut out)).expect("valid stream");
            }
            d.finish(&mut collect(&mut out)).expect("ends on a newline");
            let kinds: Vec<_> = out.iter().map(|(k, v, _)| (*k, v.clone())).collect();
            assert_eq!(kinds, want, "pieces of {size}");
            assert_eq!(out[4].2, Some(410));
            assert_eq!(out[0].2, None);
        }
    }

    #[test]
    fn a_last_line_without_newline_and_blank_lines() {
        let mut d = WatchDecoder::new();
        let mut out = Seen::new();
        d.feed(
            b"\n  \n{\"type\":\"ADDED\",\"object\":{}}",
            &mut collect(&mut out),
        )
        .expect("valid");
        assert!(out.is_empty(), "not complete yet");
        assert_eq!(d.pending(), 28);
        d.finish(&mut collect(&mut out)).expect("valid");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, "");
    }

    #[test]
    fn bad_lines_end_the_watch_with_a_reason() {
        for (line, why) in [
            ("not json\n", "unable to decode a watch event"),
            (
                "{\"type\":\"SHRUG\",\"object\":{}}\n",
                "unknown watch event type \"SHRUG\"",
            ),
            (
                "{\"type\":\"ADDED\",\"object\":3}\n",
                "watch event without an object",
            ),
            ("{\"object\":{}}\n", "unable to decode a watch event"),
        ] {
            let e = WatchDecoder::new()
                .feed(line.as_bytes(), &mut |_| {})
                .expect_err(line);
            assert!(e.contains(why), "{line}: {e}");
        }
    }

    #[test]
    fn a_line_is_bounded() {
        let mut d = WatchDecoder::new();
        let chunk = vec![b'x'; 1 << 20];
        let mut failed = None;
        for i in 0..8 {
            if let Err(e) = d.feed(&chunk, &mut |_| {}) {
                failed = Some((i, e));
                break;
            }
        }
        let (i, e) = failed.expect("refused past the bound");
        assert_eq!(i, 4, "after {MAX_EVENT_BYTES} bytes");
        assert!(e.contains("longer than"), "{e}");
        assert!(
            d.partial.capacity() <= MAX_EVENT_BYTES,
            "the buffer is released"
        );
    }

    #[test]
    fn lists_give_items_and_the_version_to_watch_from() {
        let page = decode_list(
            br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"42","continue":"abc"},"items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]}"#,
        )
        .expect("valid list");
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.resource_version, "42");
        assert_eq!(page.continue_token, "abc");
        let empty = decode_list(br#"{"metadata":{"resourceVersion":"7"},"items":null}"#)
            .expect("null items");
        assert!(empty.items.is_empty());
        assert!(decode_list(br#"{"items":[]}"#).is_err());
        assert!(decode_list(br#"{"metadata":{},"items":[1]}"#).is_err());
    }
}
