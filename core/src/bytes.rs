//! Byte-level helpers the rest of the core builds on: string comparison without a
//! call into `memcmp`, and standard base64.

use std::cmp::Ordering;

/// Compares two strings byte-wise (the order of `str::cmp`), eight bytes at a time.
/// Label names share long prefixes (`__meta_kubernetes_pod_…`); this avoids a call into
/// `memcmp` for every comparison of a binary search.
#[inline]
pub fn cmp_bytes(a: &str, b: &str) -> Ordering {
    cmp_slices(a.as_bytes(), b.as_bytes())
}

#[inline]
fn cmp_slices(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let mut x = [0u8; 8];
        let mut y = [0u8; 8];
        x.copy_from_slice(&a[i..i + 8]);
        y.copy_from_slice(&b[i..i + 8]);
        let (x, y) = (u64::from_be_bytes(x), u64::from_be_bytes(y));
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}

/// String equality without a call into `memcmp` (see [`cmp_bytes`]).
#[inline]
pub fn eq_bytes(a: &str, b: &str) -> bool {
    a.len() == b.len() && cmp_bytes(a, b) == Ordering::Equal
}

/// Standard base64 with padding (for `Authorization: Basic`).
pub fn base64_encode(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 decoded (Go's `base64.StdEncoding`, padding required where the
/// length needs it), whitespace ignored as YAML folds it; `None` if it is not base64.
pub fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let clean: Vec<u8> = input.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !clean.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    let quads = clean.len() / 4;
    for (i, q) in clean.chunks(4).enumerate() {
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != quads) {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        for (plain, coded) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"user:pass", "dXNlcjpwYXNz"),
        ] {
            assert_eq!(base64_encode(plain), coded);
            assert_eq!(base64_decode(coded).as_deref(), Some(plain));
        }
        assert_eq!(base64_decode("aGk"), None);
        assert_eq!(base64_decode("a=Gk"), None);
    }

    #[test]
    fn byte_order_is_str_order() {
        for (a, b) in [
            ("a", "b"),
            ("abcdefghi", "abcdefghj"),
            ("abc", "abcd"),
            ("", "x"),
        ] {
            assert_eq!(cmp_bytes(a, b), a.cmp(b));
            assert_eq!(cmp_bytes(b, a), b.cmp(a));
            assert!(!eq_bytes(a, b));
        }
        assert!(eq_bytes("__meta_kubernetes_pod", "__meta_kubernetes_pod"));
    }
}
