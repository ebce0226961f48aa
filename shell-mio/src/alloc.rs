//! Allocator tuning for the daemon's process (glibc only; elsewhere a no-op).
//!
//! glibc's malloc raises its mmap threshold as soon as a mapped block is freed, up to
//! 32 MiB on 64-bit machines. From then on the agent's large tables, which grow by
//! doubling (a target's series cache, the WAL writer's index, a remote-write queue's
//! series table), come from the heap, and the space they leave behind when they move
//! stays resident. With both thresholds fixed at 128 KiB, blocks that large are mapped
//! and unmapped on their own, and free space at the top of the heap beyond 128 KiB goes
//! back to the system: about 10 % less resident memory in the remote-write benchmark
//! (`benches/README.md`), for no CPU cost we could measure.
//!
//! A threshold set through glibc's environment variables (`MALLOC_MMAP_THRESHOLD_`,
//! `MALLOC_TRIM_THRESHOLD_`) is left as the operator set it.

/// The mmap and trim thresholds the daemon sets.
pub const THRESHOLD: usize = 128 << 10;

/// Sets the thresholds (once, at start, before the threads are spawned).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        for (param, var) in [
            (libc::M_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_"),
            (libc::M_TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_"),
        ] {
            if std::env::var_os(var).is_none() {
                set(param);
            }
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set(param: libc::c_int) {
    // SAFETY: mallopt takes two integers and only changes malloc's own parameters; it is
    // documented as callable at any time, and 128 KiB is within both parameters' range.
    // A refusal (return 0) leaves glibc's defaults, which are correct, only larger.
    let _ = unsafe { libc::mallopt(param, THRESHOLD as libc::c_int) };
}
