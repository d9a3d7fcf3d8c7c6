//! The router's memory per route: heap bytes still held after programming routes as the
//! embedded router holds them (each route's spec as the publisher keeps it, its revision's
//! endpoints and counters in the registry, and the compiled table), over a fixed base. Each
//! route is a Knative Service's: its four hosts and one revision at 100 %. The whole test
//! binary counts its allocations (its own binary, since a global allocator is process-wide).
//!
//! The target is at most 1 KiB per route beyond the base; it is not met yet (4.4 KiB
//! measured, from 11.2 KiB before a revision's status counters shrank from 900 slots to a few
//! inline ones). The bound below keeps what was won: see [`BOUND`].

use std::alloc::System;
use std::sync::Arc;
use std::time::Duration;

use sluice_router::endpoints::{Endpoints, RevisionKey};
use sluice_router::publish::RouteSpec;
use sluice_router::table::{Protocol, RouteConfig, RoutingTable, Target};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// What a route may cost today: what it costs (4,465 bytes with malloc's overhead) and some
/// room, so a regression fails. The target (1,024) is the next step: the spec the
/// publisher keeps (~520 bytes), the revision's counters and gate (~1,300), and the table's
/// own share (~1,900: six error bodies formatted per backend, four host keys, the route).
const BOUND: usize = 5 * 1024;

/// The Service `svc-{i}` as the controller describes its route.
fn spec(i: usize) -> RouteSpec {
    let name = format!("svc-{i}");
    RouteConfig {
        namespace: "default".into(),
        hosts: vec![
            format!("{name}.default.localhost"),
            format!("{name}.default"),
            format!("{name}.default.svc"),
            format!("{name}.default.svc.cluster.local"),
        ],
        traffic: vec![(
            100,
            Target {
                revision: RevisionKey::new("default", format!("{name}-00001")),
                timeout: Duration::from_secs(300),
                response_start: None,
                idle: None,
                protocol: Protocol::Http1,
            },
        )],
        name,
        ..RouteConfig::default()
    }
}

/// What the router holds for `n` routes.
struct Programmed {
    _specs: Vec<RouteSpec>,
    _endpoints: Arc<Endpoints>,
    _table: RoutingTable,
}

fn program(n: usize) -> Programmed {
    let endpoints = Endpoints::new();
    let specs: Vec<RouteSpec> = (0..n).map(spec).collect();
    let configs = specs.iter().cloned().map(|s| s.map(|key| endpoints.revision(&key))).collect();
    let table = RoutingTable::new(configs).expect("a valid table");
    Programmed { _specs: specs, _endpoints: endpoints, _table: table }
}

/// Bytes and allocations `f`'s result holds while alive, per route of `n`, over a base of 10.
fn per_route<T>(n: usize, f: impl Fn(usize) -> T) -> (isize, isize) {
    let measure = |n| {
        let region = Region::new(GLOBAL);
        let kept = f(n);
        let change = region.change();
        drop(kept);
        (
            change.bytes_allocated as isize - change.bytes_deallocated as isize,
            change.allocations as isize - change.deallocations as isize,
        )
    };
    let ((b0, n0), (b1, n1)) = (measure(10), measure(n + 10));
    ((b1 - b0) / n as isize, (n1 - n0) / n as isize)
}

/// Where it goes: the publisher's copy of the spec, the revision's endpoints (counters, gate,
/// registry entry), and the rest (the compiled table), printed for the record.
fn breakdown() {
    let n = 2_000;
    let specs = per_route(n, |n| (0..n).map(spec).collect::<Vec<_>>());
    let endpoints = per_route(n, |n| {
        let e = Endpoints::new();
        for i in 0..n {
            e.revision(&spec(i).traffic[0].1.revision);
        }
        e
    });
    let everything = per_route(n, program);
    println!("per route (bytes, allocations): spec {specs:?}, endpoints {endpoints:?}, all {everything:?}");
}

/// What malloc spends beyond the bytes asked for, per allocation (glibc: an 8-byte header and
/// rounding to 16), counted so the figure is what the process pays, not only what it asked.
const MALLOC_OVERHEAD: isize = 16;

/// Heap bytes and allocations held by what `program(n)` returns, while it is alive.
fn held(n: usize) -> (isize, isize) {
    let region = Region::new(GLOBAL);
    let programmed = program(n);
    let change = region.change();
    drop(programmed);
    let bytes = change.bytes_allocated as isize - change.bytes_deallocated as isize;
    let blocks = change.allocations as isize - change.deallocations as isize;
    (bytes, blocks)
}

/// One test, so that no other test's allocations are counted with it.
#[test]
fn a_route_costs_at_most_5_kib_beyond_the_base() {
    breakdown();
    let (small, large) = (10, 2_010);
    let ((b0, n0), (b1, n1)) = (held(small), held(large));
    let routes = (large - small) as isize;
    let (bytes, blocks) = ((b1 - b0) / routes, (n1 - n0) / routes);
    let paid = bytes + blocks * MALLOC_OVERHEAD;
    println!(
        "router memory per route: {bytes} bytes asked in {blocks} allocations, {paid} bytes with malloc's overhead"
    );
    assert!(bytes > 0, "the measurement counts something");
    assert!(paid <= BOUND as isize, "{paid} bytes per route; the bound is {BOUND}");
}
