//! Runs the fleet scenarios outside criterion, for profilers and memory figures:
//! `fleet_profile initial|update|memory [N]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use trawl_benches::fleet::{self, Shell};

/// Counts live heap bytes (for bytes per active target).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[allow(clippy::print_stdout)]
fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "memory".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    match what.as_str() {
        "initial" => {
            for _ in 0..n {
                let s = Shell::start();
                assert_eq!(s.agent.targets().len(), fleet::GROUPS * fleet::PER_GROUP);
            }
        }
        "update" => {
            let mut s = Shell::start();
            let changed: Vec<usize> = (0..10).map(|i| i * 97).collect();
            let versions: Vec<Vec<Vec<u8>>> = (0..2)
                .map(|v| changed.iter().map(|g| fleet::file(*g, 1 + v)).collect())
                .collect();
            let mut times = Vec::new();
            for i in 0..n {
                let t = std::time::Instant::now();
                s.rewrite(&changed, &versions[i % 2]);
                times.push(t.elapsed());
            }
            times.sort();
            if let (Some(min), Some(med)) = (times.first(), times.get(times.len() / 2)) {
                println!("update: min {min:?} median {med:?}");
            }
        }
        _ => {
            let files = (0..fleet::GROUPS)
                .map(|g| (fleet::name(g), fleet::file(g, 0)))
                .collect();
            let before = LIVE.load(Ordering::Relaxed);
            let s = Shell::start_with(files);
            let after = LIVE.load(Ordering::Relaxed);
            let targets = s.agent.targets().len();
            println!(
                "{} bytes live for {targets} active targets: {} bytes per target (file contents excluded)",
                after - before,
                (after - before) / targets as isize
            );
        }
    }
}
