//! ZooKeeper discovery's core cost (issue 21), through the real Agent against the tests'
//! server model answered inline, one serverset path with 10,000 members:
//!
//! Times are the agent's: the server model's own time answering (encoding 10,000 names,
//! say) is measured and taken out.
//!
//! * `initial_sync_10000_members` — the session handshake, the path's data and its
//!   10,000 children, then every member's data and (empty) children read with watches,
//!   10,000 groups decoded, relabeled and their loops scheduled;
//! * `one_member_moves` — a member's data changes: its data watch fires, the member is
//!   read again, its group rebuilt and delivered, one target replaced;
//! * `one_member_comes_or_goes` — a member created, or deleted again (alternately): the
//!   path's child watch fires and the whole list of 10,000 children is read again and
//!   compared (the protocol gives no delta), the new member read, one target added or
//!   removed.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use trawl_benches::zk_sd::{Run, member, member_path, server};

const MEMBERS: usize = 10_000;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("zookeeper_sd");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("initial_sync_10000_members", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // The server model is built outside the timing.
                let mut r = Run::new(server(MEMBERS), "");
                let t = Instant::now();
                let n = r.settle();
                total += t.elapsed() - r.server_time;
                assert_eq!(n, MEMBERS);
            }
            total
        })
    });
    let mut r = Run::new(server(MEMBERS), "");
    assert_eq!(r.settle(), MEMBERS);
    g.sample_size(50);
    g.measurement_time(Duration::from_secs(10));
    let mut port = 9100u16;
    g.bench_function("one_member_moves", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                port = if port == 9100 { 9101 } else { 9100 };
                let notes = r.change(|s| s.set(&member_path(7), &member(7, port)).1);
                assert_eq!(notes.len(), 1);
                let model = r.server_time;
                let t = Instant::now();
                let n = r.deliver(&notes);
                total += t.elapsed() - (r.server_time - model);
                assert_eq!(n, MEMBERS);
            }
            total
        })
    });
    let mut present = false;
    g.bench_function("one_member_comes_or_goes", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                present = !present;
                let extra = member_path(MEMBERS + 1);
                let notes = r.change(|s| {
                    if present {
                        s.create(&extra, &member(MEMBERS + 1, 9100)).1
                    } else {
                        s.delete(&extra).1
                    }
                });
                assert!(!notes.is_empty());
                let model = r.server_time;
                let t = Instant::now();
                let n = r.deliver(&notes);
                total += t.elapsed() - (r.server_time - model);
                assert_eq!(n, MEMBERS + usize::from(present));
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
