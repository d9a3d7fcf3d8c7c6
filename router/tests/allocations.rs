//! The routing decision allocates nothing per request, rules included, nor does recording its
//! response or keeping its `traceparent` (generating one is one header value): the whole test
//! binary counts its allocations (its own binary, since a global allocator is process-wide).

use std::alloc::System;
use std::time::Duration;

use http::Request;
use sluice_router::endpoints::{RevisionEndpoints, RevisionKey};
use sluice_router::table::{
    HeaderMatch, PathMatch, Protocol, RouteConfig, RoutingTable, RuleConfig, TagConfig, Target, ValueMatch, Via,
};
use sluice_router::trace;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations and reallocations while `f` runs, from the fewest of three runs. The count is
/// process-wide, and the test harness's main thread allocates its bookkeeping for a test right
/// after starting the test's thread: on a loaded machine that can land in the first run (seen:
/// 4 allocations, 900 bytes, none freed). Code that allocates does so in every run.
fn fewest_allocations(mut f: impl FnMut()) -> (usize, usize) {
    (0..3)
        .map(|_| {
            let region = Region::new(GLOBAL);
            f();
            let change = region.change();
            (change.allocations, change.reallocations)
        })
        .min()
        .unwrap_or_default()
}

fn target(name: &str) -> Target {
    Target {
        revision: RevisionEndpoints::new(RevisionKey::new("default", name)),
        timeout: Duration::from_secs(30),
        response_start: None,
        idle: None,
        protocol: Protocol::Http1,
    }
}

fn rule(headers: Vec<HeaderMatch>, path: Option<PathMatch>, to: &str) -> RuleConfig {
    RuleConfig { name: Some(to.into()), headers, path, traffic: vec![(50, target(to)), (50, target("other"))] }
}

fn header(name: &str, value: ValueMatch) -> HeaderMatch {
    HeaderMatch { name: name.into(), value }
}

fn table() -> RoutingTable {
    let rules = vec![
        rule(vec![header("x-version", ValueMatch::Exact("v2".into()))], None, "exact"),
        rule(vec![header("x-tenant", ValueMatch::Prefix("beta-".into()))], None, "prefix"),
        rule(vec![header("cookie", ValueMatch::Present(false))], Some(PathMatch::Exact("/anon".into())), "absent"),
        rule(vec![header("User-Agent", ValueMatch::Regex(".*iPhone.*".into()))], None, "regex"),
        rule(vec![], Some(PathMatch::Prefix("/api".into())), "path"),
    ];
    let route = RouteConfig {
        namespace: "default".into(),
        name: "hello".into(),
        hosts: vec!["hello.default.localhost".into()],
        traffic: vec![(90, target("v1")), (10, target("v2"))],
        tags: vec![TagConfig { tag: "canary".into(), hosts: vec!["canary-hello.default".into()], target: target("c") }],
        tag_header_routing: true,
        rules,
        ..RouteConfig::default()
    };
    RoutingTable::new(vec![route]).expect("table")
}

fn request(path: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut req = Request::get(path).header("host", "Hello.Default.Localhost:8080");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(()).expect("request")
}

#[test]
fn resolving_a_request_allocates_nothing_whichever_way_it_is_decided() {
    let table = table();
    let agent = ("user-agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)");
    let cookie = ("cookie", "session=1");
    let cases = [
        (
            request("/", &[cookie, ("x-version", "v1"), ("x-version", "v2")]),
            Via::Rule { index: 0, name: Some("exact") },
        ),
        (request("/", &[cookie, ("x-tenant", "beta-acme")]), Via::Rule { index: 1, name: Some("prefix") }),
        (request("/anon?x=1", &[]), Via::Rule { index: 2, name: Some("absent") }),
        (request("/", &[cookie, agent]), Via::Rule { index: 3, name: Some("regex") }),
        (request("/api/items", &[cookie]), Via::Rule { index: 4, name: Some("path") }),
        (request("/", &[cookie, ("user-agent", "curl/8")]), Via::Split),
        (request("/", &[cookie, agent, ("knative-serving-tag", "canary")]), Via::TagHeader),
    ];
    // Once each first: a regex's first use on a thread makes its search cache.
    for (req, via) in &cases {
        assert_eq!(table.decide(req).expect("routed").via, *via);
    }
    let change = fewest_allocations(|| {
        for _ in 0..1000 {
            for (req, _) in &cases {
                std::hint::black_box(table.resolve(std::hint::black_box(req)).expect("routed"));
            }
        }
    });
    assert_eq!(change, (0, 0), "allocations, reallocations");

    // Nor does recording the response for the metrics (in this test, not one of its own: the
    // count is process-wide and tests run in parallel).
    let rev = RevisionEndpoints::new(RevisionKey::new("default", "metrics"));
    let change = fewest_allocations(|| {
        for i in 0..1000u16 {
            let responses = rev.responses();
            let status = http::StatusCode::from_u16(100 + i % 900).expect("status");
            responses.record_timed(status, Duration::from_micros(u64::from(i) * 97));
            responses.record_queue_wait(Duration::from_millis(u64::from(i)));
            responses.record_failure(sluice_router::endpoints::Failure::QueueFull);
        }
    });
    assert_eq!(change, (0, 0), "allocations, reallocations");
    assert_eq!(rev.responses().total(), 3000);

    // A client's valid `traceparent` is read in place; a generated one is its one header
    // value (the map has room for it, as a request's has after `X-Forwarded-*` went in).
    let valid = http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    let mut sent = http::HeaderMap::new();
    sent.insert(&trace::TRACEPARENT, valid);
    let mut fresh = http::HeaderMap::new();
    // First use: the thread's random generator, and the map's room.
    trace::ensure(&mut fresh, true).expect("generated");
    let change = fewest_allocations(|| {
        for _ in 0..1000 {
            std::hint::black_box(trace::ensure(std::hint::black_box(&mut sent), true).expect("kept"));
        }
    });
    assert_eq!(change, (0, 0), "kept: allocations, reallocations");
    let change = fewest_allocations(|| {
        for _ in 0..1000 {
            fresh.remove(&trace::TRACEPARENT);
            std::hint::black_box(trace::ensure(std::hint::black_box(&mut fresh), true).expect("generated"));
        }
    });
    assert_eq!(change, (1000, 0), "generated: allocations, reallocations");
}
