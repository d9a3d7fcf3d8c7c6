//! The per-request routing decision (`RoutingTable::resolve`): a percent-only route against
//! one with 10 header rules (none matching, so all are tried; the last matching) and one with a
//! single regex rule, beside the naive alternative of compiling the regex per request.
//!
//! Run: `cargo bench -p sluice-router --bench resolve`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use sluice_router::endpoints::{RevisionEndpoints, RevisionKey};
use sluice_router::table::{HeaderMatch, Protocol, RouteConfig, RoutingTable, RuleConfig, Target, ValueMatch, Via};

/// The issue's example (Istio's cookie idiom): whole-value, so it needs `;` around `iPhone`.
const IPHONE: &str = "^(.*?;)?(iPhone)(;.*)?$";
/// What matches a real iPhone user agent, whose `iPhone` follows `(`.
const IPHONE_ANYWHERE: &str = ".*iPhone.*";
const DESKTOP_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const IPHONE_AGENT: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15";

/// Headers the 10 rules look at; each is present in the requests, so every rule finds its
/// header and compares its value.
const RULE_HEADERS: [&str; 5] = ["user-agent", "accept", "accept-language", "cookie", "x-tenant"];

fn target(name: &str) -> Target {
    Target {
        revision: RevisionEndpoints::new(RevisionKey::new("default", name)),
        timeout: Duration::from_secs(300),
        response_start: None,
        idle: None,
        protocol: Protocol::Http1,
    }
}

/// `default/hello` split 90/10, with `rules`, among 99 other routes.
fn table(rules: Vec<RuleConfig>) -> RoutingTable {
    let mut routes: Vec<RouteConfig> = (0..99)
        .map(|i| RouteConfig {
            namespace: "default".into(),
            name: format!("other{i}"),
            hosts: vec![format!("other{i}.default.localhost")],
            traffic: vec![(100, target(&format!("other{i}-00001")))],
            ..RouteConfig::default()
        })
        .collect();
    routes.push(RouteConfig {
        namespace: "default".into(),
        name: "hello".into(),
        hosts: vec!["hello.default.localhost".into(), "hello.default".into()],
        traffic: vec![(90, target("hello-00001")), (10, target("hello-00002"))],
        rules,
        ..RouteConfig::default()
    });
    RoutingTable::new(routes).expect("a valid table")
}

fn rule(header: &str, value: ValueMatch, to: &str) -> RuleConfig {
    RuleConfig {
        name: None,
        headers: vec![HeaderMatch { name: header.into(), value }],
        path: None,
        traffic: vec![(100, target(to))],
    }
}

/// 10 rules over the headers of [`RULE_HEADERS`], exact and prefix alternately; only the last
/// can match (`x-tenant: tenant-9`).
fn ten_rules() -> Vec<RuleConfig> {
    (0..10)
        .map(|i| {
            let header = RULE_HEADERS[i % RULE_HEADERS.len()];
            let value = match i {
                9 => ValueMatch::Exact("tenant-9".into()),
                i if i % 2 == 0 => ValueMatch::Exact(format!("no-match-{i}")),
                i => ValueMatch::Prefix(format!("no-match-{i}")),
            };
            rule(header, value, &format!("rule{i}"))
        })
        .collect()
}

/// A browser-like request for the route, with `tenant` and `agent`.
fn request(tenant: &str, agent: &str) -> Request<()> {
    Request::get("/api/items?page=2")
        .header("host", "hello.default.localhost")
        .header("user-agent", agent)
        .header("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
        .header("accept-language", "en-GB,en;q=0.9")
        .header("accept-encoding", "gzip, deflate, br")
        .header("cookie", "session=0123456789abcdef; theme=dark")
        .header("x-request-id", "5f1c6b8e-9a0d-4c1e-8f57-3b2d1e0a9c44")
        .header("x-tenant", tenant)
        .body(())
        .expect("request")
}

fn resolve(c: &mut Criterion) {
    let mut group = c.benchmark_group("resolve");
    let cases = [
        ("percent_only", table(vec![]), request("tenant-0", DESKTOP_AGENT)),
        ("10_rules_none_match", table(ten_rules()), request("tenant-0", DESKTOP_AGENT)),
        ("10_rules_last_matches", table(ten_rules()), request("tenant-9", DESKTOP_AGENT)),
        ("1_regex_rule_no_match", table(vec![regex_rule(IPHONE)]), request("tenant-0", DESKTOP_AGENT)),
        ("1_regex_rule_matches", table(vec![regex_rule(IPHONE_ANYWHERE)]), request("tenant-0", IPHONE_AGENT)),
    ];
    // Each case measures what it says: checked once before timing.
    let picked: Vec<Via> = cases.iter().map(|(_, t, r)| t.decide(r).expect("routed").via).collect();
    assert_eq!(picked[0..2], [Via::Split, Via::Split]);
    assert_eq!(picked[2..4], [Via::Rule { index: 9, name: None }, Via::Split]);
    assert_eq!(picked[4], Via::Rule { index: 0, name: None });
    for (name, table, req) in &cases {
        group.bench_function(*name, |b| b.iter(|| black_box(table.resolve(black_box(req)).is_ok())));
    }
    // The naive alternative: the same regex compiled for each request.
    let req = request("tenant-0", DESKTOP_AGENT);
    group.bench_function("naive_regex_compiled_per_request", |b| {
        b.iter(|| {
            let re = regex::bytes::Regex::new(&format!("^(?:{IPHONE})$")).expect("compiles");
            let agent = black_box(&req).headers().get("user-agent").map(|v| v.as_bytes()).unwrap_or_default();
            black_box(re.is_match(agent))
        })
    });
    group.finish();
}

fn regex_rule(pattern: &str) -> RuleConfig {
    rule("user-agent", ValueMatch::Regex(pattern.into()), "iphone")
}

criterion_group!(benches, resolve);
criterion_main!(benches);
