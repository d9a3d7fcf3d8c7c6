//! The per-request cost of the data-plane metrics: what a response adds on the request path
//! (`Responses::record_timed`: the code's atomic, the latency bucket's search and two atomics,
//! plus the two clock reads that time it), against the count-only `record` that came before,
//! alone and with two threads recording on the same revision (the shared cache lines).
//!
//! Run: `cargo bench -p sluice-router --bench record`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::StatusCode;
use sluice_router::endpoints::{RevisionEndpoints, RevisionKey};

fn record(c: &mut Criterion) {
    let rev = RevisionEndpoints::new(RevisionKey::new("default", "bench"));
    let mut g = c.benchmark_group("record");
    g.bench_function("count_only", |b| b.iter(|| rev.responses().record(black_box(StatusCode::OK))));
    g.bench_function("code_and_latency", |b| {
        b.iter(|| rev.responses().record_timed(black_box(StatusCode::OK), black_box(Duration::from_micros(730))))
    });
    g.bench_function("clocks_code_and_latency", |b| {
        b.iter(|| {
            let arrived = tokio::time::Instant::now();
            rev.responses().record_timed(black_box(StatusCode::OK), arrived.elapsed());
        })
    });
    g.bench_function("clocks_code_and_latency_two_threads", |b| {
        b.iter_custom(|iters| {
            let start = tokio::time::Instant::now();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        for _ in 0..iters {
                            let arrived = tokio::time::Instant::now();
                            rev.responses().record_timed(black_box(StatusCode::OK), arrived.elapsed());
                        }
                    });
                }
            });
            // Per request: two threads did `iters` each.
            start.elapsed() / 2
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = record
}
criterion_main!(benches);
