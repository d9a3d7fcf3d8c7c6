//! The whole per-request routing decision at scale: host lookup, rules, the weighted pick and
//! admission (the gate's permit and the instance claim, released again as a response's end
//! would), in a table of 1 and of 10,000 routes, each route with the four hosts Knative gives a
//! service. Percent-only routes against routes with 10 header rules each (none matching, so all
//! ten are tried before the split). At 10,000 routes the requests also rotate over 1,024
//! routes, so the host map and the routes are not all in cache as they are for one host.
//!
//! Run: `cargo bench -p sluice-router --bench decision`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use sluice_router::endpoints::{Endpoints, Instance, RevisionEndpoints, RevisionKey};
use sluice_router::publish::{Publisher, RoutePublisher, RouteSpec};
use sluice_router::table::{HeaderMatch, Protocol, RouteConfig, RoutingTable, RuleConfig, Target, ValueMatch};

/// Headers the rules look at; all present in the requests, so each rule compares a value.
const RULE_HEADERS: [&str; 5] = ["user-agent", "accept", "accept-language", "cookie", "x-tenant"];
/// Distinct routes the rotating case cycles through.
const ROTATE: usize = 1024;

/// A revision with one ready instance and no concurrency limit, so admission succeeds.
fn revision(name: &str) -> Arc<RevisionEndpoints> {
    let rev = RevisionEndpoints::new(RevisionKey::new("default", name));
    rev.add(Instance::new(1, SocketAddr::from(([127, 0, 0, 1], 8080))));
    rev
}

fn target(revision: &Arc<RevisionEndpoints>) -> Target {
    Target {
        revision: revision.clone(),
        timeout: Duration::from_secs(300),
        response_start: None,
        idle: None,
        protocol: Protocol::Http1,
    }
}

/// 10 rules that cannot match the requests below, all sending to `to`.
fn ten_rules(to: &Arc<RevisionEndpoints>) -> Vec<RuleConfig> {
    (0..10)
        .map(|i| {
            let value = if i % 2 == 0 {
                ValueMatch::Exact(format!("no-match-{i}"))
            } else {
                ValueMatch::Prefix(format!("no-match-{i}"))
            };
            RuleConfig {
                name: None,
                headers: vec![HeaderMatch { name: RULE_HEADERS[i % RULE_HEADERS.len()].into(), value }],
                path: None,
                traffic: vec![(100, target(to))],
            }
        })
        .collect()
}

/// `n` services `svc{i}`, each split 90/10 over two revisions of its own, with `rules`.
fn table(n: usize, rules: bool) -> RoutingTable {
    let rule_target = revision("rules-target");
    let routes = (0..n)
        .map(|i| {
            let name = format!("svc{i}");
            RouteConfig {
                namespace: "default".into(),
                hosts: vec![
                    format!("{name}.default.localhost"),
                    format!("{name}.default"),
                    format!("{name}.default.svc"),
                    format!("{name}.default.svc.cluster.local"),
                ],
                traffic: vec![
                    (90, target(&revision(&format!("{name}-00001")))),
                    (10, target(&revision(&format!("{name}-00002")))),
                ],
                rules: if rules { ten_rules(&rule_target) } else { vec![] },
                name,
                ..RouteConfig::default()
            }
        })
        .collect();
    RoutingTable::new(routes).expect("a valid table")
}

fn request(route: usize) -> Request<()> {
    Request::get("/api/items?page=2")
        .header("host", format!("svc{route}.default.localhost"))
        .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)")
        .header("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
        .header("accept-language", "en-GB,en;q=0.9")
        .header("cookie", "session=0123456789abcdef; theme=dark")
        .header("x-tenant", "tenant-0")
        .body(())
        .expect("request")
}

/// One decision: the backend, then admission and an instance claim, released at once.
fn decide(table: &RoutingTable, req: &Request<()>) -> bool {
    match table.resolve(req) {
        Ok(backend) => backend.target.revision.pick().is_some(),
        Err(_) => false,
    }
}

fn decision(c: &mut Criterion) {
    let mut group = c.benchmark_group("decision");
    for (n, rules) in [(1, false), (1, true), (10_000, false), (10_000, true)] {
        let table = table(n, rules);
        let kind = if rules { "10_rules" } else { "percent_only" };
        // The last route: in a table of 10,000, no luckier than any other.
        let one = request(n - 1);
        assert!(decide(&table, &one), "each case routes and admits");
        group.bench_function(format!("{n}_routes/{kind}"), |b| b.iter(|| black_box(decide(&table, black_box(&one)))));
        if n >= ROTATE {
            let step = n / ROTATE;
            let requests: Vec<Request<()>> = (0..ROTATE).map(|i| request(i * step)).collect();
            assert!(requests.iter().all(|r| decide(&table, r)));
            let mut next = 0;
            group.bench_function(format!("{n}_routes/{kind}/rotating_{ROTATE}_hosts"), |b| {
                b.iter(|| {
                    next = (next + 1) % ROTATE;
                    black_box(decide(&table, black_box(&requests[next])))
                })
            });
        }
    }
    group.finish();
}

/// Rebuilding the table whole at 10,000 routes (each route looks up its predecessor's split
/// sequence), and editing one route of it (what a route's change costs).
fn rebuild(c: &mut Criterion) {
    let mut group = c.benchmark_group("rebuild");
    group.sample_size(10);
    let n = 10_000;
    let revisions: Vec<(Arc<RevisionEndpoints>, Arc<RevisionEndpoints>)> =
        (0..n).map(|i| (revision(&format!("svc{i}-00001")), revision(&format!("svc{i}-00002")))).collect();
    let configs = || -> Vec<RouteConfig> {
        revisions
            .iter()
            .enumerate()
            .map(|(i, (a, b))| RouteConfig {
                namespace: "default".into(),
                name: format!("svc{i}"),
                hosts: vec![format!("svc{i}.default.localhost"), format!("svc{i}.default")],
                traffic: vec![(90, target(a)), (10, target(b))],
                ..RouteConfig::default()
            })
            .collect()
    };
    let table = RoutingTable::new(configs()).expect("a valid table");
    group.bench_function("10000_routes", |b| {
        b.iter_batched(configs, |routes| black_box(table.rebuild(routes).is_ok()), criterion::BatchSize::LargeInput)
    });
    // One route's split edited (90/10 and 80/20 in turn) as an edit of the table: the route
    // compiled, every other shared. The new table is dropped within the measurement, as above.
    let (a, b) = &revisions[n / 2];
    let mut turn = 0;
    let mut edit = || {
        turn += 1;
        let p = if turn % 2 == 0 { 90 } else { 80 };
        RouteConfig {
            namespace: "default".into(),
            name: format!("svc{}", n / 2),
            hosts: vec![format!("svc{}.default.localhost", n / 2), format!("svc{}.default", n / 2)],
            traffic: vec![(p, target(a)), (100 - p, target(b))],
            ..RouteConfig::default()
        }
    };
    assert!(matches!(table.with_route(edit()), Ok(Some(_))), "edited alone");
    group.bench_function("one_route_of_10000", |bench| {
        bench.iter_batched(
            &mut edit,
            |route| black_box(matches!(table.with_route(route), Ok(Some(_)))),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// A route's change as the controller makes it at 10,000 routes: `Publisher::set_route` with
/// one route's split edited (90/10 and 80/20 in turn), from the spec to the table stored (the
/// spec encoded and compared, its revisions resolved, the table edited and swapped in, the old
/// one dropped).
fn publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("rebuild");
    group.sample_size(10);
    let n = 10_000;
    let publisher = Publisher::new(Arc::new(ArcSwap::from_pointee(RoutingTable::default())), Endpoints::new());
    let spec = |i: usize, p: u32| {
        let name = format!("svc{i}");
        let key = |r: &str| Target {
            revision: RevisionKey::new("default", format!("{name}-{r}")),
            timeout: Duration::from_secs(300),
            response_start: None,
            idle: None,
            protocol: Protocol::Http1,
        };
        RouteSpec {
            namespace: "default".into(),
            hosts: ["default.localhost", "default", "default.svc", "default.svc.cluster.local"]
                .iter()
                .map(|suffix| format!("{name}.{suffix}"))
                .collect(),
            traffic: vec![(p, key("00001")), (100 - p, key("00002"))],
            name,
            ..RouteSpec::default()
        }
    };
    for i in 0..n {
        publisher.set_route(&format!("uid-{i}"), spec(i, 90));
    }
    assert_eq!(publisher.table().load().len(), n);
    let mut turn = 0;
    group.bench_function("publisher_one_route_of_10000", |b| {
        b.iter(|| {
            turn += 1;
            publisher.set_route("uid-5000", spec(n / 2, if turn % 2 == 0 { 90 } else { 80 }));
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = decision, rebuild, publish
}
criterion_main!(benches);
