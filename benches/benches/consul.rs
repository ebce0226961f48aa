//! Consul discovery's core cost (issue 21), through the real Agent against the fake
//! agent's catalog model answered inline, 1,000 services × 10 instances (10,000 targets):
//!
//! * `initial_sync_1000_services_x_10` — the catalog answer, 1,000 health answers
//!   decoded, 1,000 groups built, 10,000 targets relabeled and their loops scheduled;
//! * `one_service_check_flips` — one instance's check changes: its service's blocking
//!   query answers, the 10-instance group is decoded and rebuilt, diffed and delivered,
//!   one target replaced (goal: under 1 ms of core time);
//! * `one_instance_comes_or_goes` — an instance of one service registered, or
//!   deregistered again (alternately): the catalog's and the service's queries answer
//!   (the catalog's whole list of 1,000 services is decoded and compared), one target
//!   added or removed.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use trawl_benches::consul_sd::{Run, catalog};
use trawl_tests::consul::Instance;

const SERVICES: usize = 1_000;
const PER: usize = 10;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("consul_sd");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    let base = catalog(SERVICES, PER);
    g.bench_function("initial_sync_1000_services_x_10", |b| {
        b.iter(|| {
            let mut r = Run::new(base.clone(), "");
            assert_eq!(r.settle(), SERVICES * PER + 1);
            r
        })
    });
    let mut r = Run::new(base.clone(), "");
    assert_eq!(r.settle(), SERVICES * PER + 1);
    // Every watch is now blocked on its index.
    r.tick(2);
    assert_eq!(r.held(), SERVICES + 2);
    g.sample_size(50);
    g.measurement_time(Duration::from_secs(10));
    let mut flip = false;
    g.bench_function("one_service_check_flips", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // The service's next watch starts a refresh interval later (untimed).
                r.tick(2);
                flip = !flip;
                let status = if flip { "critical" } else { "passing" };
                let answers = r.wake(|c| {
                    c.set_check("node-0", "svc-0-0", "service:svc-0-0", status);
                });
                assert_eq!(answers.len(), 1);
                let t = Instant::now();
                let n = r.deliver(&answers);
                total += t.elapsed();
                assert_eq!(n, SERVICES * PER + 1);
            }
            total
        })
    });
    let mut present = false;
    g.bench_function("one_instance_comes_or_goes", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                r.tick(2);
                present = !present;
                let answers = r.wake(|c| {
                    if present {
                        c.register(Instance::new(
                            "node-1",
                            "svc-1",
                            "extra",
                            "127.200.0.1",
                            9100,
                        ));
                    } else {
                        c.deregister("node-1", "extra");
                    }
                });
                assert_eq!(answers.len(), 2, "the catalog's and svc-1's");
                let t = Instant::now();
                let n = r.deliver(&answers);
                total += t.elapsed();
                assert_eq!(n, SERVICES * PER + 1 + usize::from(present));
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
