//! The hashes Prometheus uses to spread scrapes over the interval.
//!
//! They pick *when* a target is scraped (its phase), never *which* target it is: trawl
//! keys targets by their full label set and URL.

/// SplitMix64: the next pseudo-random value from `state` (advanced). The core's one
/// generator: query ids, jitter and shuffles derive from the agent's seed through it, so
/// a run is reproducible.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a, 64 bit.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_extend(FNV1A64_START, bytes)
}

/// The FNV-1a-64 offset basis: the hash of no bytes.
pub const FNV1A64_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Continues an FNV-1a-64 hash `h` over more bytes.
pub fn fnv1a64_extend(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Prometheus's target hash: FNV-1a-64 of the label hash written as `%016d` followed by
/// the target URL.
pub fn target_hash(labels_hash: u64, url: &str) -> u64 {
    // `%016d` without allocating: at most 20 digits, left-padded with zeros to 16.
    let mut buf = [b'0'; 20];
    let mut n = labels_hash;
    let mut i = buf.len();
    while n > 0 {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let start = i.min(buf.len() - 16);
    let h = fnv1a64(&buf[start..]);
    fnv1a64_extend(h, url.as_bytes())
}

/// The per-agent offset seed: FNV-1a-64 of the host's FQDN followed by the external
/// labels in Go's `labels.String()` form (e.g. `prom1{}`).
pub fn offset_seed(fqdn: &str, external_labels: &crate::labels::Labels) -> u64 {
    let h = fnv1a64(fqdn.as_bytes());
    fnv1a64_extend(h, external_labels.to_go_string().as_bytes())
}

/// The phase of a target inside its interval, in nanoseconds: `(hash ^ seed) % interval`.
pub fn scrape_phase(target_hash: u64, seed: u64, interval_ns: u64) -> u64 {
    if interval_ns == 0 {
        return 0;
    }
    (target_hash ^ seed) % interval_ns
}

/// How long to wait from `now_unix_ns` before the first scrape, as Prometheus's
/// `Target.offset`: the next instant strictly after `now` that is congruent to the phase
/// modulo the interval (a full interval if `now` is exactly on the phase).
pub fn first_scrape_wait(target_hash: u64, seed: u64, interval_ns: u64, now_unix_ns: i64) -> u64 {
    if interval_ns == 0 {
        return 0;
    }
    let now_mod = now_unix_ns.rem_euclid(interval_ns as i64) as u64;
    let base = interval_ns - now_mod;
    let phase = scrape_phase(target_hash, seed, interval_ns);
    let mut wait = base + phase;
    if wait > interval_ns {
        wait -= interval_ns;
    }
    wait
}

#[cfg(test)]
mod tests {
    #[test]
    fn target_hash_pads_like_go() {
        for h in [
            0u64,
            7,
            123_456,
            9_999_999_999_999_999,
            u64::MAX,
            14_808_249_574_301_025_142,
        ] {
            let want = {
                let digits = format!("{h:016}");
                fnv1a64_extend(fnv1a64(digits.as_bytes()), b"http://x/metrics")
            };
            assert_eq!(target_hash(h, "http://x/metrics"), want, "{h}");
        }
    }

    use super::*;
    use crate::labels::Labels;
    use proptest::prelude::*;

    #[test]
    fn reference_vectors() {
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
    }

    #[test]
    fn worked_example_from_semantics_3_5() {
        let url = "http://localhost:9100/metrics";
        assert_eq!(target_hash(14808249574301025142, url), 9212960339362016226);
        assert_eq!(target_hash(9527888252110227897, url), 1970881574558607407);
        let seed = offset_seed("prom1", &Labels::empty());
        assert_eq!(seed, 15193980025471929738);
        assert_eq!(
            scrape_phase(9212960339362016226, seed, 60_000_000_000),
            24434675304
        );
    }

    #[test]
    fn offset_seed_depends_on_external_labels() {
        let a = offset_seed("h", &Labels::from_pairs([("prometheus", "ha1")]));
        let b = offset_seed("h", &Labels::from_pairs([("prometheus", "ha2")]));
        assert_ne!(a, b);
        assert_ne!(a, 0);
    }

    #[test]
    fn offsets_spread_evenly() {
        // §9.3 #43: 10 000 targets differing in one label, interval 10 s, seed 0: every
        // one-second bucket within ±15 % of the mean.
        let interval = 10_000_000_000u64;
        let mut buckets = [0u32; 10];
        for i in 0..10_000 {
            let l = Labels::from_pairs([("label", i.to_string())]);
            let h = target_hash(l.hash(), "");
            let phase = scrape_phase(h, 0, interval);
            assert!(phase < interval);
            buckets[(phase / 1_000_000_000) as usize] += 1;
        }
        for b in buckets {
            assert!((850..=1150).contains(&b), "{buckets:?}");
        }
    }

    proptest! {
        /// The first scrape lands in (now, now + interval], on the target's phase.
        #[test]
        fn first_wait_lands_on_phase(h: u64, seed: u64, interval in 1u64..3_600_000_000_000, now in 0i64..i64::MAX / 2) {
            let wait = first_scrape_wait(h, seed, interval, now);
            prop_assert!(wait > 0 && wait <= interval);
            let at = now as u64 + wait;
            prop_assert_eq!(at % interval, scrape_phase(h, seed, interval));
        }
    }
}
