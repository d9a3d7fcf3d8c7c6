use std::net::SocketAddr;

use super::split::{Roller, Split};
use super::*;
use crate::endpoints::{Instance, RevisionKey};

fn target(name: &str) -> Target {
    Target {
        revision: RevisionEndpoints::new(RevisionKey::new("default", name)),
        timeout: Duration::from_secs(300),
        response_start: None,
        idle: None,
        protocol: Protocol::Http1,
    }
}

fn route(name: &str, traffic: Vec<(u32, Target)>) -> RouteConfig {
    RouteConfig {
        namespace: "default".into(),
        name: name.into(),
        hosts: vec![format!("{name}.default.localhost"), format!("{name}.default")],
        traffic,
        ..RouteConfig::default()
    }
}

fn request(host: &str) -> http::Request<()> {
    http::Request::builder().uri("/").header("host", host).body(()).expect("request")
}

/// The revision a request for `host` reaches through the route's own split sequence.
fn resolved(table: &RoutingTable, host: &str) -> String {
    table.resolve(&request(host)).expect("routed").target.revision.key.name.clone()
}

fn reached(table: &RoutingTable, host: &str, tag: Option<&str>, roll: u32) -> Option<String> {
    table.target(host, tag, roll).map(|t| t.revision.key.name.clone())
}

/// How often each of `split`'s targets is picked over `n` rolls of a generator seeded `seed`.
fn tally(split: &Split, n: usize, seed: u64) -> HashMap<String, usize> {
    let roller = Roller::new(seed);
    let mut counts = HashMap::new();
    for _ in 0..n {
        let backend = split.pick(roller.roll()).expect("non-empty split");
        *counts.entry(backend.target.revision.key.name.clone()).or_insert(0) += 1;
    }
    counts
}

fn split_of(weights: &[(u32, &str)]) -> Split {
    Split::new(weights.iter().map(|(p, n)| (*p, Backend::new(target(n), None))))
}

#[test]
fn cumulative_bounds_give_each_target_exactly_its_percent_of_the_rolls() {
    let split = split_of(&[(10, "a"), (0, "zero"), (60, "b"), (30, "c")]);
    let mut counts: HashMap<String, u32> = HashMap::new();
    for roll in 0..100 {
        let b = split.pick(roll).expect("picked");
        *counts.entry(b.target.revision.key.name.clone()).or_insert(0) += 1;
    }
    assert_eq!(counts.get("a"), Some(&10));
    assert_eq!(counts.get("b"), Some(&60));
    assert_eq!(counts.get("c"), Some(&30));
    assert_eq!(counts.get("zero"), None, "0% is never picked");
}

#[test]
fn every_run_of_consecutive_rolls_splits_within_two_requests_of_the_weights() {
    for seed in [0, 1, 42, 0xDEAD_BEEF, u64::MAX] {
        let roller = Roller::new(seed);
        let rolls: Vec<u32> = (0..3000).map(|_| roller.roll()).collect();
        for percent in [1, 10, 33, 50, 90] {
            for len in [100, 2000] {
                for start in (0..rolls.len() - len).step_by(97) {
                    let hits = rolls[start..start + len].iter().filter(|r| **r < percent).count() as f64;
                    let want = f64::from(percent) * len as f64 / 100.0;
                    assert!((hits - want).abs() <= 2.0, "seed {seed}, {percent}% of {len} from {start}: {hits}");
                }
            }
        }
    }
}

#[test]
fn a_zero_percent_target_is_never_picked() {
    let counts = tally(&split_of(&[(0, "old"), (100, "new")]), 10_000, 7);
    assert_eq!(counts.get("new"), Some(&10_000));
}

#[test]
fn rolls_cover_every_value_in_range() {
    let roller = Roller::new(3);
    let mut seen = [false; 100];
    for _ in 0..10_000 {
        let r = roller.roll();
        assert!(r < 100);
        seen[r as usize] = true;
    }
    assert!(seen.iter().all(|s| *s));
}

#[test]
fn hosts_are_matched_without_case_port_or_trailing_dot() {
    let table = RoutingTable::new(vec![route("hello", vec![(100, target("hello-00001"))])]).expect("table");
    for host in ["hello.default.localhost", "HELLO.Default.localhost:8080", "hello.default.", "hello.default:80"] {
        assert_eq!(reached(&table, host, None, 0).as_deref(), Some("hello-00001"), "{host}");
    }
    assert_eq!(reached(&table, "other.default", None, 0), None);
    assert_eq!(table.len(), 1);
}

#[test]
fn percents_must_sum_to_100() {
    let err = RoutingTable::new(vec![route("hello", vec![(50, target("a")), (40, target("b"))])]).expect_err("90%");
    assert_eq!(err.to_string(), "route default/hello: traffic percents sum to 90, not 100");
    let empty = RoutingTable::new(vec![route("hello", vec![])]).expect("no traffic is allowed");
    let err = empty.resolve(&request("hello.default")).expect_err("no traffic");
    assert_eq!(err, Miss::NoTraffic(Reason::new("route default/hello has no traffic target")));
    assert_eq!(empty.resolve(&request("nope.default")).expect_err("unknown"), Miss::UnknownHost("nope.default".into()));
    let no_host = http::Request::builder().uri("/").body(()).expect("request");
    assert_eq!(empty.resolve(&no_host).expect_err("no host"), Miss::MissingHost);
}

#[test]
fn a_host_claimed_twice_names_both_routes() {
    let mut b = route("b", vec![(100, target("b"))]);
    b.hosts.push("A.default.localhost".into());
    let err = RoutingTable::new(vec![route("a", vec![(100, target("a"))]), b]).expect_err("duplicate");
    assert_eq!(err.to_string(), "host \"a.default.localhost\" is claimed by both route default/a and route default/b");
}

#[test]
fn a_route_may_list_a_host_twice_but_not_for_a_tag_too() {
    let mut config = route("a", vec![(100, target("a"))]);
    config.hosts.push("A.default.".into());
    let table = RoutingTable::new(vec![config.clone()]).expect("same host, same purpose");
    assert_eq!(table.hosts().count(), 2);
    config.tags.push(TagConfig { tag: "t".into(), hosts: vec!["a.default".into()], target: target("b") });
    let err = RoutingTable::new(vec![config]).expect_err("a tag host equal to a default host");
    assert!(matches!(err, TableError::DuplicateHost { .. }), "{err}");
}

#[test]
fn tag_hosts_reach_their_target_even_at_zero_percent() {
    let mut config = route("hello", vec![(100, target("v1")), (0, target("v2"))]);
    config.tags.push(TagConfig {
        tag: "canary".into(),
        hosts: vec!["canary-hello.default".into()],
        target: target("v2"),
    });
    let table = RoutingTable::new(vec![config]).expect("table");
    for roll in 0..100 {
        assert_eq!(reached(&table, "hello.default", None, roll).as_deref(), Some("v1"));
        assert_eq!(reached(&table, "canary-hello.default", None, roll).as_deref(), Some("v2"));
    }
}

#[test]
fn the_tag_header_picks_a_tag_only_when_enabled() {
    let mut config = route("hello", vec![(100, target("v1"))]);
    config.tags.push(TagConfig {
        tag: "canary".into(),
        hosts: vec!["canary-hello.default".into()],
        target: target("v2"),
    });
    let off = RoutingTable::new(vec![config.clone()]).expect("table");
    assert_eq!(reached(&off, "hello.default", Some("canary"), 0).as_deref(), Some("v1"));
    config.tag_header_routing = true;
    let on = RoutingTable::new(vec![config]).expect("table");
    assert_eq!(reached(&on, "hello.default", Some("canary"), 0).as_deref(), Some("v2"));
    assert_eq!(reached(&on, "hello.default", Some("unknown"), 0).as_deref(), Some("v1"), "falls back to the split");
}

#[test]
fn a_duplicate_tag_is_an_error() {
    let mut config = route("hello", vec![(100, target("v1"))]);
    for host in ["x-hello.default", "y-hello.default"] {
        config.tags.push(TagConfig { tag: "x".into(), hosts: vec![host.into()], target: target("v1") });
    }
    let err = RoutingTable::new(vec![config]).expect_err("duplicate tag");
    assert_eq!(err.to_string(), "route default/hello has tag \"x\" twice");
}

#[test]
fn error_bodies_name_their_target_and_are_built_on_first_use() {
    let t = target("hello-00001");
    t.revision.add(Instance::new(1, SocketAddr::from(([127, 0, 0, 1], 1))));
    let backend = Backend::new(t, None);
    assert!(backend.reasons.get().is_none(), "nothing formatted before an error");
    assert_eq!(
        backend.queue_full().body().as_ref(),
        b"too many requests are waiting for revision default/hello-00001; retry later\n"
    );
    assert_eq!(
        backend.no_capacity().to_string(),
        "no instance of revision default/hello-00001 could take the request within its timeout of 300s"
    );
    assert_eq!(backend.timed_out().to_string(), "revision default/hello-00001 did not respond within 300s");
    let first = backend.reasons.get().map(|r| r.unreachable.body().as_ptr());
    assert_eq!(first, Some(backend.unreachable().body().as_ptr()), "formatted once, then shared");
}

#[test]
fn each_route_keeps_its_split_within_two_requests_under_interleaved_traffic() {
    let a = route("a", vec![(30, target("a1")), (70, target("a2"))]);
    let b = route("b", vec![(50, target("b1")), (50, target("b2"))]);
    let table = RoutingTable::new(vec![a, b]).expect("table");
    // Route a takes one request, then route b two, and so on; with one sequence shared by both
    // routes, each would see every third or two-of-three rolls and could drift from its shares.
    let (mut a1, mut b1) = (Vec::new(), Vec::new());
    for _ in 0..2000 {
        a1.push(resolved(&table, "a.default") == "a1");
        b1.push(resolved(&table, "b.default") == "b1");
        b1.push(resolved(&table, "b.default") == "b1");
    }
    for (hits, percent, name) in [(&a1, 30.0, "a"), (&b1, 50.0, "b")] {
        for len in [100, 1000] {
            for start in (0..hits.len() - len).step_by(37) {
                let got = hits[start..start + len].iter().filter(|h| **h).count() as f64;
                let want = percent * len as f64 / 100.0;
                assert!((got - want).abs() <= 2.0, "route {name}: {got} of {len} from {start}, want {want}");
            }
        }
    }
}

#[test]
fn a_rebuild_continues_each_routes_sequence() {
    let config = route("hello", vec![(50, target("v1")), (50, target("v2"))]);
    let mut table = RoutingTable::new(vec![config.clone()]).expect("table");
    let mut hits = Vec::new();
    for i in 0..400 {
        // Another route comes and goes every few requests: each rebuild keeps hello's place.
        let mut routes = vec![config.clone()];
        if i % 2 == 0 {
            routes.push(route(&format!("other{i}"), vec![(100, target("o"))]));
        }
        table = table.rebuild(routes).expect("rebuilt");
        hits.push(resolved(&table, "hello.default") == "v1");
    }
    for start in (0..300).step_by(10) {
        let got = hits[start..start + 100].iter().filter(|h| **h).count();
        assert!(got.abs_diff(50) <= 2, "{got} of 100 from {start}");
    }
}

#[test]
fn a_rebuild_keeps_an_unchanged_splits_backends_and_replaces_changed_ones() {
    let (v1, v2) = (target("v1"), target("v2"));
    let config = route("hello", vec![(90, v1.clone()), (10, v2.clone())]);
    let table = RoutingTable::new(vec![config.clone()]).expect("table");
    let backend = |t: &RoutingTable, roll| {
        t.lookup("hello.default", || None, |_| false, |_| roll).expect("routed").backend.clone()
    };
    let (a, b) = (backend(&table, 0), backend(&table, 95));
    let same = table.rebuild(vec![config.clone(), route("other", vec![(100, target("o"))])]).expect("rebuilt");
    assert!(Arc::ptr_eq(&a, &backend(&same, 0)) && Arc::ptr_eq(&b, &backend(&same, 95)), "kept, nothing rebuilt");
    let longer = Target { timeout: Duration::from_secs(5), ..v2.clone() };
    let edited = same.rebuild(vec![route("hello", vec![(90, v1), (10, longer)])]).expect("rebuilt");
    assert!(Arc::ptr_eq(&a, &backend(&edited, 0)));
    let b2 = backend(&edited, 95);
    assert!(!Arc::ptr_eq(&b, &b2), "a new timeout is a new backend");
    assert_eq!(b2.timed_out().to_string(), "revision default/v2 did not respond within 5s");
    let fresh = route("hello", vec![(90, target("v1")), (10, target("v2"))]);
    let renewed = edited.rebuild(vec![fresh]).expect("rebuilt");
    assert!(!Arc::ptr_eq(&a, &backend(&renewed, 0)), "new endpoints of the same name are another revision");
}

proptest::proptest! {
    /// The README's promise, over any split: in any run of up to 1,000 consecutive requests
    /// through one route, each target gets its share to within 3.5 requests. (An exhaustive
    /// search of every run of up to 1,000 from 60,000 starting points puts the sequence's worst
    /// at 3.45; this test once found a 51 % target 3.07 off in 443 requests.) (The golden-ratio sequence's discrepancy grows like log N: in runs of 2,000 and
    /// more a target can be three off, about once in a thousand runs for some percents.)
    #[test]
    fn any_split_holds_within_three_and_a_half_requests_over_any_run_of_up_to_a_thousand(
        cuts in proptest::collection::btree_set(1u32..100, 1..5),
        seed in proptest::prelude::any::<u64>(),
        skip in 0usize..3000,
        len in 1usize..=1000,
    ) {
        let mut bounds: Vec<u32> = cuts.into_iter().collect();
        bounds.push(100);
        let mut weights = Vec::new();
        let mut last = 0;
        for (i, b) in bounds.iter().enumerate() {
            weights.push((b - last, format!("t{i}")));
            last = *b;
        }
        let split = Split::new(weights.iter().map(|(p, n)| (*p, Backend::new(target(n), None))));
        let roller = Roller::new(seed);
        for _ in 0..skip {
            roller.roll();
        }
        let mut counts: HashMap<String, usize> = HashMap::new();
        for _ in 0..len {
            let backend = split.pick(roller.roll()).expect("non-empty split");
            *counts.entry(backend.target.revision.key.name.clone()).or_insert(0) += 1;
        }
        for (percent, name) in &weights {
            let got = *counts.get(name).unwrap_or(&0) as f64;
            let want = f64::from(*percent) * len as f64 / 100.0;
            // Within 3.5 requests either way of the exact share.
            proptest::prop_assert!((got - want).abs() < 3.5, "{name} ({percent}%) got {got} of {len}, want {want}");
        }
    }
}

fn counts(table: &RoutingTable) -> Vec<(ChoiceKind, String, String, u64)> {
    let mut all: Vec<_> =
        table.choices().map(|c| (c.kind, c.name.to_string(), c.revision.to_string(), c.count())).collect();
    all.sort();
    all
}

fn with_rules_and_tag(rules: Vec<RuleConfig>) -> RouteConfig {
    RouteConfig {
        tags: vec![TagConfig { tag: "canary".into(), hosts: vec!["canary-hello.default".into()], target: target("c") }],
        tag_header_routing: true,
        rules,
        ..route("hello", vec![(60, target("a")), (40, target("a"))])
    }
}

fn rule_to(name: Option<&str>, path: &str, to: &str) -> RuleConfig {
    RuleConfig {
        name: name.map(String::from),
        headers: Vec::new(),
        path: Some(PathMatch::Prefix(path.into())),
        traffic: vec![(100, target(to))],
    }
}

#[test]
fn rule_and_tag_counters_survive_a_rebuild_and_go_with_their_route() {
    let rules = || vec![rule_to(Some("beta"), "/beta", "b"), rule_to(None, "/api", "b")];
    let table = RoutingTable::new(vec![with_rules_and_tag(rules())]).expect("table");
    let pick = |t: &RoutingTable, host: &str, path: &str, tag: Option<&str>| {
        let mut req = http::Request::builder().uri(path).header("host", host);
        if let Some(tag) = tag {
            req = req.header("knative-serving-tag", tag);
        }
        let req = req.body(()).expect("request");
        t.resolve(&req).expect("routed").picked();
    };
    pick(&table, "hello.default", "/beta/x", None);
    pick(&table, "hello.default", "/api", None);
    pick(&table, "hello.default", "/api", None);
    pick(&table, "canary-hello.default", "/", None);
    pick(&table, "hello.default", "/", Some("canary"));
    pick(&table, "hello.default", "/", None);
    let want = |beta: u64, api: u64, canary: u64| {
        vec![
            (ChoiceKind::Rule, "beta".to_string(), "b".to_string(), beta),
            (ChoiceKind::Rule, "rules[1]".to_string(), "b".to_string(), api),
            (ChoiceKind::Tag, "canary".to_string(), "c".to_string(), canary),
        ]
    };
    assert_eq!(counts(&table), want(1, 2, 2), "the split's pick counts for no rule or tag");
    let percents: Vec<_> = table.traffic_percents().collect();
    assert_eq!(percents, vec![("default", "hello", "a", 100)], "a revision listed twice sums");

    let rebuilt =
        table.rebuild(vec![with_rules_and_tag(rules()), route("other", vec![(100, target("o"))])]).expect("r");
    assert_eq!(counts(&rebuilt), want(1, 2, 2), "carried over");
    let moved = vec![rule_to(Some("beta"), "/beta", "b2")];
    let changed = rebuilt.rebuild(vec![with_rules_and_tag(moved)]).expect("changed");
    assert_eq!(
        counts(&changed),
        vec![
            (ChoiceKind::Rule, "beta".to_string(), "b2".to_string(), 0),
            (ChoiceKind::Tag, "canary".to_string(), "c".to_string(), 2)
        ],
        "a rule sending elsewhere starts again; the unnamed rule is gone"
    );
    let gone = changed.rebuild(vec![route("other", vec![(100, target("o"))])]).expect("gone");
    assert_eq!(counts(&gone), vec![], "the route is gone, and its counters with it");
    assert_eq!(gone.traffic_percents().collect::<Vec<_>>(), vec![("default", "other", "o", 100)]);
}
