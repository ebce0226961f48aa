use super::*;
use proptest::prelude::*;

/// Feeds `bytes` split at `cuts`, then EOF if `eof`; returns the head, the body and
/// whether the end was seen, or the first error.
fn read(
    bytes: &[u8],
    cuts: &[usize],
    eof: bool,
) -> Result<(ResponseHead, Vec<u8>, bool, bool), HttpError> {
    let mut r = ResponseReader::new(false);
    let (mut head, mut body, mut end) = (None, Vec::new(), false);
    let mut sink = |e: ResponseEvent<'_>| match e {
        ResponseEvent::Head(h) => head = Some(h),
        ResponseEvent::Body(b) => body.extend_from_slice(b),
        ResponseEvent::End => end = true,
    };
    let mut at = 0;
    let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(bytes.len())).collect();
    points.sort_unstable();
    points.push(bytes.len());
    for p in points {
        if p < at {
            continue;
        }
        let used = r.feed(&bytes[at..p], &mut sink)?;
        assert!(used <= p - at);
        at = p;
    }
    if eof {
        r.eof(&mut sink)?;
    }
    let reusable = r.reusable();
    Ok((
        head.ok_or_else(|| HttpError("no head".into()))?,
        body,
        end,
        reusable,
    ))
}

#[test]
fn urls_split_as_a_client_needs_them() {
    let u = Url::parse("http://127.0.0.1:9100/metrics?x=1#frag").unwrap();
    assert_eq!(
        (u.host.as_str(), u.port, u.path_and_query.as_str()),
        ("127.0.0.1", 9100, "/metrics?x=1")
    );
    assert_eq!(u.authority(), "127.0.0.1:9100");
    let u = Url::parse("https://[::1]/").unwrap();
    assert_eq!(
        (u.host.as_str(), u.port, u.authority()),
        ("::1", 443, "[::1]".to_owned())
    );
    let u = Url::parse("http://user:pw@proxy:3128").unwrap();
    assert_eq!(u.userinfo.as_deref(), Some("user:pw"));
    assert_eq!(u.path_and_query, "/");
    assert!(Url::parse("ftp://h/").is_err());
    assert!(Url::parse("http://:80/").is_err());
    assert!(Url::parse("http://h:99999/").is_err());
    let base = Url::parse("http://h:1/a/b?q").unwrap();
    assert_eq!(base.join("/c").unwrap().to_string(), "http://h:1/c");
    assert_eq!(base.join("c?d").unwrap().to_string(), "http://h:1/a/c?d");
    assert_eq!(base.join("https://o/x").unwrap().to_string(), "https://o/x");
    assert_eq!(base.join("//o:2/y").unwrap().to_string(), "http://o:2/y");
}

#[test]
fn a_get_head_carries_host_and_the_headers_in_order() {
    let mut out = Vec::new();
    let u = Url::parse("http://h:8080/metrics").unwrap();
    write_get(
        &mut out,
        &u,
        &[
            ("Accept".into(), "text/plain".into()),
            ("User-Agent".into(), "trawl".into()),
        ],
        false,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "GET /metrics HTTP/1.1\r\nHost: h:8080\r\nAccept: text/plain\r\nUser-Agent: trawl\r\n\r\n"
    );
    let mut out = Vec::new();
    write_get(&mut out, &u, &[], true).unwrap();
    assert!(out.starts_with(b"GET http://h:8080/metrics HTTP/1.1\r\n"));
    // Header injection is refused.
    assert!(
        write_get(
            &mut Vec::new(),
            &u,
            &[("X".into(), "a\r\nB: c".into())],
            false
        )
        .is_err()
    );
}

#[test]
fn bodies_framed_every_way() {
    let (h, b, end, reuse) = read(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        &[],
        false,
    )
    .unwrap();
    assert_eq!(
        (h.status, h.reason.as_str(), b.as_slice(), end, reuse),
        (200, "OK", &b"hello"[..], true, true)
    );
    let (_, b, end, reuse) = read(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-T: 1\r\n\r\n",
        &[],
        false,
    )
    .unwrap();
    assert_eq!((b.as_slice(), end, reuse), (&b"hello!"[..], true, true));
    // Close-delimited: ends at EOF, never reused.
    let (_, b, end, reuse) = read(b"HTTP/1.0 200 OK\r\n\r\nabc", &[], true).unwrap();
    assert_eq!((b.as_slice(), end, reuse), (&b"abc"[..], true, false));
    // 100 Continue is skipped; 204 has no body.
    let (h, b, end, _) = read(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        &[],
        false,
    )
    .unwrap();
    assert_eq!((h.status, b.len(), end), (204, 0, true));
    // Connection: close and HTTP/1.0 without keep-alive are not reused.
    let (_, _, _, reuse) = read(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        &[],
        false,
    )
    .unwrap();
    assert!(!reuse);
    let (_, _, _, reuse) = read(
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
        &[],
        false,
    )
    .unwrap();
    assert!(reuse);
}

#[test]
fn broken_responses_are_errors_that_say_what_broke() {
    let e = |b: &[u8], eof: bool| read(b, &[], eof).unwrap_err().0;
    assert_eq!(
        e(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", true),
        "unexpected EOF"
    );
    assert_eq!(e(b"", true), "EOF");
    assert!(e(b"HTTX/1.1 200 OK\r\n\r\n", false).starts_with("malformed HTTP response"));
    assert_eq!(
        e(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            false
        ),
        "malformed chunked encoding"
    );
    assert_eq!(
        e(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            false
        ),
        "message cannot contain multiple Content-Length headers"
    );
    let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
    assert_eq!(e(&huge, false), "response head too large");
}

#[test]
fn bytes_after_the_response_are_not_taken_and_the_connection_not_reused() {
    let mut r = ResponseReader::new(false);
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
    let used = r.feed(input, &mut |_| {}).unwrap();
    assert_eq!(used, input.len() - 5);
    assert!(!r.reusable());
}

fn arb_response() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, bool)> {
    (
        proptest::collection::vec(any::<u8>(), 0..3000),
        0u8..3,
        proptest::collection::vec(1usize..700, 0..8),
    )
        .prop_map(|(body, framing, chunks)| {
            let mut r = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n".to_vec();
            let close = framing == 2;
            match framing {
                0 => {
                    r.extend_from_slice(
                        format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes(),
                    );
                    r.extend_from_slice(&body);
                }
                1 => {
                    r.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                    let mut rest = &body[..];
                    let mut sizes = chunks.iter().cycle();
                    while !rest.is_empty() {
                        let n = (*sizes.next().unwrap_or(&1)).min(rest.len());
                        r.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                        r.extend_from_slice(&rest[..n]);
                        r.extend_from_slice(b"\r\n");
                        rest = &rest[n..];
                    }
                    r.extend_from_slice(b"0\r\n\r\n");
                }
                _ => {
                    r.extend_from_slice(b"Connection: close\r\n\r\n");
                    r.extend_from_slice(&body);
                }
            }
            (r, body, close)
        })
}

proptest! {
    /// However the bytes arrive, the body comes out whole, once, and the end is seen.
    #[test]
    fn any_split_gives_the_same_body(
        (resp, body, close) in arb_response(),
        cuts in proptest::collection::vec(0usize..4000, 0..12),
    ) {
        let (h, got, end, _) = read(&resp, &cuts, close).unwrap();
        prop_assert_eq!(h.status, 200);
        prop_assert_eq!(got, body);
        prop_assert!(end);
    }

    /// Arbitrary bytes never panic the reader.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), cuts in proptest::collection::vec(0usize..600, 0..5)) {
        let _ = read(&bytes, &cuts, true);
    }
}

#[test]
fn url_passwords_are_masked_as_go_masks_them() {
    assert_eq!(
        redact_url("http://u:p@h:1/x", REDACTED),
        "http://u:xxxxx@h:1/x"
    );
    assert_eq!(
        redact_url("https://u:p%40q@h/", STRIPPED),
        "https://u:***@h/"
    );
    // A user alone, no userinfo, an `@` in the path, not a URL: unchanged.
    for s in ["http://u@h/", "http://h/a@b", "h:1", "http://h?x=a:b@c"] {
        assert_eq!(redact_url(s, REDACTED), s);
    }
    // Parse errors never show the password.
    let e = Url::parse("http://u:secret@h:port/").unwrap_err();
    assert!(!e.contains("secret") && e.contains("u:***@"), "{e}");
}

/// Issue 16, defect 6: credentials in a target's URL go as basic auth, as Go's client
/// sends them, unless the request has its own `Authorization`; the request line and
/// `Host` never carry them.
#[test]
fn url_credentials_are_sent_as_basic_auth() {
    let url = Url::parse("http://al%40ice:s3cr%3At@h:9100/metrics").unwrap();
    let mut out = Vec::new();
    write_get(&mut out, &url, &[], false).unwrap();
    let head = String::from_utf8(out).unwrap();
    // base64("al@ice:s3cr:t")
    assert!(
        head.contains("\r\nAuthorization: Basic YWxAaWNlOnMzY3I6dA==\r\n"),
        "{head}"
    );
    assert!(
        head.starts_with("GET /metrics HTTP/1.1\r\nHost: h:9100\r\n"),
        "{head}"
    );
    // Through a forwarding proxy the absolute URL has no credentials either.
    let mut out = Vec::new();
    write_get(&mut out, &url, &[], true).unwrap();
    assert!(
        String::from_utf8(out)
            .unwrap()
            .starts_with("GET http://h:9100/metrics HTTP/1.1")
    );
    // The request's own Authorization wins.
    let mut out = Vec::new();
    let own = [("authorization".to_owned(), "Bearer t".to_owned())];
    write_get(&mut out, &url, &own, false).unwrap();
    let head = String::from_utf8(out).unwrap();
    assert!(
        !head.contains("Basic") && head.contains("authorization: Bearer t"),
        "{head}"
    );
}
