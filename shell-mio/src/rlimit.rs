//! The daemon's file-descriptor limit. Every scrape, API client and WAL segment takes a
//! descriptor, and the soft limit of a shell (often 1024) is far below what a fleet of
//! a few thousand targets needs. As Go's runtime does for Prometheus (since Go 1.19),
//! the daemon raises its soft `RLIMIT_NOFILE` to the hard limit at start.

/// Raises the soft limit on open files to the hard limit; `(before, after)`, or `None`
/// where this is not supported or the call failed (the limit then stays as it was).
pub fn raise_nofile() -> Option<(u64, u64)> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        raise()
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn raise() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a pointer to a live local of that
    // type; it reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads one `rlimit` through a pointer to a live local; raising
        // the soft limit up to the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return None;
        }
    }
    Some((before, lim.rlim_cur))
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn the_soft_limit_reaches_the_hard_one() {
        let (before, after) = super::raise_nofile().expect("getrlimit works on Linux");
        assert!(after >= before);
        let limits = std::fs::read_to_string("/proc/self/limits").expect("limits");
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .expect("the open files line");
        let f: Vec<&str> = line.split_whitespace().collect();
        // "Max open files <soft> <hard> files"
        assert_eq!(f[3], f[4], "{line}");
        assert_eq!(f[3], after.to_string());
    }
}
