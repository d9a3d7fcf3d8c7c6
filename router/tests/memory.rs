//! The router's memory per route: heap bytes still held after programming routes as the
//! embedded router is programmed (the controller's `set_route` per Route into the
//! [`Publisher`], which keeps each spec and publishes the compiled table; the runtime naming
//! each revision's owners in the endpoints registry), over a fixed base. Each route is a
//! Knative Service's: its four hosts and one revision at 100 %, no instance (at zero), no
//! request served yet. The whole test binary counts its allocations (its own binary, since a
//! global allocator is process-wide).
//!
//! The target is at most 1 KiB per route beyond the base, and the test holds the router
//! to it ([`BOUND`]); the breakdown it prints says where the bytes go.

use std::alloc::System;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use sluice_router::endpoints::{Endpoints, Owners, RevisionKey};
use sluice_router::publish::{Publisher, RoutePublisher, RouteSpec};
use sluice_router::table::{Protocol, RouteConfig, RoutingTable, Target};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// What a route may cost, with malloc's overhead: the 1 KiB. It costs 1,001 bytes now.
/// Before: 11,425 bytes (every status code counted inline), 4,843 (error bodies formatted up
/// front, the rare counters inline), 2,616 (the spec kept as plain values beside the table's
/// copy, a map slot and an allocation per host key, every revision's response counters and
/// owners allocated up front). Where the 1,001 go (the breakdown): the revision's endpoints
/// ~435 (the endpoints themselves, the gate, its key's two strings, its owners' names), the
/// table ~395 (the route, its split's backend, its split sequence, four host slots and the
/// bytes of its hosts and name), the publisher's copy of the route ~175 (one encoding).
const BOUND: isize = 1024;

/// What malloc spends beyond the bytes asked for, per allocation (glibc: an 8-byte header and
/// rounding to 16), counted so the figure is what the process pays, not only what it asked.
const MALLOC_OVERHEAD: isize = 16;

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

/// The revision of `spec`, registered and labelled as the runtime does when it runs it.
fn register(endpoints: &Endpoints, spec: &RouteSpec) {
    let revision = endpoints.revision(&spec.traffic[0].1.revision);
    revision.owners().set(Owners { configuration: spec.name.clone(), service: spec.name.clone() });
}

/// What the embedded router holds for `n` routes, programmed one Route at a time.
fn programmed(n: usize) -> Publisher {
    let endpoints = Endpoints::new();
    let publisher = Publisher::new(Arc::new(ArcSwap::from_pointee(RoutingTable::default())), endpoints.clone());
    for i in 0..n {
        let spec = spec(i);
        register(&endpoints, &spec);
        // A Kubernetes uid: 36 characters.
        publisher.set_route(&format!("00000000-0000-4000-8000-{i:012}"), spec);
    }
    assert_eq!(publisher.table().load().len(), n, "every route published");
    publisher
}

/// Heap bytes and allocations `f(n)`'s result holds while alive, per route, over `f(10)`'s.
fn per_route<T>(n: usize, f: impl Fn(usize) -> T) -> Cost {
    let held = |n| {
        let region = Region::new(GLOBAL);
        let kept = f(n);
        let change = region.change();
        drop(kept);
        (
            change.bytes_allocated as isize - change.bytes_deallocated as isize,
            change.allocations as isize - change.deallocations as isize,
        )
    };
    let ((b0, n0), (b1, n1)) = (held(10), held(n + 10));
    let routes = n as isize;
    Cost { bytes: (b1 - b0) / routes, blocks: (n1 - n0) / routes }
}

/// Bytes asked for and allocations, per route.
#[derive(Clone, Copy, Debug)]
struct Cost {
    bytes: isize,
    blocks: isize,
}

impl Cost {
    /// What `self` costs beyond `other`.
    fn minus(self, other: Cost) -> Cost {
        Cost { bytes: self.bytes - other.bytes, blocks: self.blocks - other.blocks }
    }

    /// What the process pays: the bytes and malloc's overhead on each allocation.
    fn paid(self) -> isize {
        self.bytes + self.blocks * MALLOC_OVERHEAD
    }
}

impl std::fmt::Display for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes in {} allocations ({} paid)", self.bytes, self.blocks, self.paid())
    }
}

/// Where it goes: the revision's endpoints (counters, gate, registry entry, owners) and the
/// compiled table, each alone, and the publisher's own copy of each route (the rest of
/// `total`); printed for the record.
fn breakdown(n: usize, total: Cost) {
    let endpoints = per_route(n, |n| {
        let e = Endpoints::new();
        (0..n).for_each(|i| register(&e, &spec(i)));
        e
    });
    let with_table = per_route(n, |n| {
        let e = Endpoints::new();
        let configs = (0..n)
            .map(|i| {
                let spec = spec(i);
                register(&e, &spec);
                spec.map(|key| e.revision(&key))
            })
            .collect();
        (RoutingTable::new(configs).expect("a valid table"), e)
    });
    let table = with_table.minus(endpoints);
    let publisher = total.minus(with_table);
    println!("per route: the revision's endpoints {endpoints}; the table {table}; the publisher's own {publisher}");
}

/// One test, so that no other test's allocations are counted with it.
#[test]
fn a_route_costs_at_most_1_kib_beyond_the_base() {
    // 500 routes: each `set_route` rebuilds the whole table, as in the router.
    let n = 500;
    let cost = per_route(n, programmed);
    breakdown(n, cost);
    println!("router memory per route, through the publisher: {cost}");
    assert!(cost.bytes > 0, "the measurement counts something");
    assert!(cost.paid() <= BOUND, "{} bytes per route; the bound is {BOUND}", cost.paid());
}
