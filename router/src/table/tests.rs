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

/// What a table answers, as lines to compare: for each host, the target of each roll with and
/// without the tag header, a matching rule's pick and the host's `http-protocol`; each route's
/// percents; the rule and tag counters; the number of routes.
fn view(table: &RoutingTable) -> Vec<String> {
    let mut lines = Vec::new();
    let mut hosts: Vec<&str> = table.hosts().collect();
    hosts.sort_unstable();
    for host in hosts {
        for tag in [None, Some("canary")] {
            for roll in [0, 50, 69, 70, 99] {
                let t = table.target(host, tag, roll).map(|t| (t.revision.key.name.clone(), t.timeout));
                lines.push(format!("{host} {tag:?} {roll}: {t:?}"));
            }
        }
        let req = http::Request::builder().uri("/rule/x").header("host", host).body(()).expect("request");
        if let Ok(Resolved { backend, via: via @ Via::Rule { .. } }) = table.decide(&req) {
            lines.push(format!("{host} rule: {} {via:?}", backend.target.revision.key.name));
        }
        lines.push(format!("{host} protocol: {:?}", table.served_host(&request(host)).map(|(_, p)| p)));
    }
    let mut percents: Vec<String> = table.traffic_percents().map(|p| format!("percent {p:?}")).collect();
    percents.sort_unstable();
    let mut choices: Vec<String> = table
        .choices()
        .map(|c| format!("choice {}/{} {:?} {} {}", c.namespace, c.route, c.kind, c.name, c.revision))
        .collect();
    choices.sort_unstable();
    lines.extend(percents);
    lines.extend(choices);
    lines.push(format!("{} routes", table.len()));
    lines
}

/// Each route's split sequence, by name.
fn rollers(table: &RoutingTable) -> HashMap<String, Arc<Roller>> {
    table.routes.iter().map(|r| (table.hosts.text(r.name).to_string(), r.roller.clone())).collect()
}

/// Route `name` with its two hosts, a tag `canary` and a rule on `/rule`.
fn full_route(name: &str, split: Vec<(u32, Target)>, tag: &Target, rule: &Target) -> RouteConfig {
    RouteConfig {
        tags: vec![TagConfig {
            tag: "canary".into(),
            hosts: vec![format!("canary-{name}.default")],
            target: tag.clone(),
        }],
        tag_header_routing: true,
        http_protocol: Some(HttpProtocol::Redirected),
        rules: vec![RuleConfig { traffic: vec![(100, rule.clone())], ..rule_to(Some("r"), "/rule", "unused") }],
        ..route(name, split)
    }
}

#[test]
fn an_edit_answers_as_a_whole_rebuild_and_shares_every_other_route() {
    let (a, b, c) = (target("a"), target("b"), target("c"));
    let mut configs: Vec<RouteConfig> = (0..50)
        .map(|i| {
            let name = format!("r{i}");
            if i % 3 == 0 {
                full_route(&name, vec![(70, a.clone()), (30, b.clone())], &c, &b)
            } else {
                route(&name, vec![(100, a.clone())])
            }
        })
        .collect();
    let table = RoutingTable::new(configs.clone()).expect("table");
    let before = rollers(&table);
    let backend = |t: &RoutingTable, host: &str, roll| {
        t.lookup(host, || None, |_| false, |_| roll).expect("routed").backend.clone()
    };

    // Replace: a split edit of one route.
    configs[9] = full_route("r9", vec![(20, a.clone()), (80, b.clone())], &c, &b);
    let edited = table.with_route(configs[9].clone()).expect("valid").expect("edited alone");
    assert_eq!(view(&edited), view(&RoutingTable::new(configs.clone()).expect("whole")));
    assert!(rollers(&edited).iter().all(|(name, r)| Arc::ptr_eq(r, &before[name])), "every sequence carried");
    assert!(
        Arc::ptr_eq(&backend(&table, "r9.default", 0), &backend(&edited, "r9.default", 0)),
        "an unchanged target's backend kept"
    );
    assert!(
        Arc::ptr_eq(&backend(&table, "r10.default", 0), &backend(&edited, "r10.default", 0)),
        "another route shared"
    );

    // Add, then remove one in the middle (the last route takes its place).
    configs.push(full_route("new", vec![(100, c.clone())], &a, &a));
    let added = edited.with_route(configs[50].clone()).expect("valid").expect("edited alone");
    assert_eq!(view(&added), view(&RoutingTable::new(configs.clone()).expect("whole")));
    let gone = configs.remove(3);
    let removed = added.without_route(&gone.namespace, &gone.name).expect("served");
    assert_eq!(view(&removed), view(&RoutingTable::new(configs.clone()).expect("whole")));
    assert!(removed.target("r3.default", None, 0).is_none() && removed.target("canary-r3.default", None, 0).is_none());
    assert!(removed.without_route("default", "r3").is_none(), "not served any more");
    let after = rollers(&removed);
    assert!(after.iter().all(|(name, r)| Arc::ptr_eq(r, &rollers(&added)[name])));
}

#[test]
fn an_edit_carries_the_route_s_counters_and_drops_its_old_hosts() {
    let (a, b, c) = (target("a"), target("b"), target("c"));
    let table = RoutingTable::new(vec![
        full_route("hello", vec![(100, a.clone())], &c, &b),
        route("other", vec![(100, a.clone())]),
    ])
    .expect("table");
    table.resolve(&request("canary-hello.default")).expect("routed").picked();
    let req = http::Request::builder().uri("/rule").header("host", "hello.default").body(()).expect("request");
    table.resolve(&req).expect("routed").picked();
    let mut moved = full_route("hello", vec![(100, a.clone())], &c, &b);
    moved.hosts = vec!["hello.example.com".into()];
    let edited = table.with_route(moved).expect("valid").expect("edited alone");
    let mut got: Vec<(ChoiceKind, u64)> = edited.choices().map(|c| (c.kind, c.count())).collect();
    got.sort();
    assert_eq!(got, [(ChoiceKind::Rule, 1), (ChoiceKind::Tag, 1)], "both counters carried");
    assert!(edited.target("hello.default", None, 0).is_none(), "the old host is gone");
    assert!(edited.target("hello.example.com", None, 0).is_some());
    let no_tag = edited.with_route(route("hello", vec![(100, a)])).expect("valid").expect("alone");
    assert_eq!(no_tag.choices().count(), 0, "the route's counters go with its rule and tag");
    assert!(no_tag.target("canary-hello.default", None, 0).is_none());
    assert!(no_tag.target("other.default", None, 0).is_some());
}

#[test]
fn an_edit_fails_as_a_rebuild_would_and_leaves_the_table_as_it_was() {
    let table =
        RoutingTable::new(vec![route("hello", vec![(100, target("a"))]), route("other", vec![(100, target("o"))])])
            .expect("table");
    let mut taken = route("third", vec![(100, target("t"))]);
    taken.hosts.push("HELLO.default.".into());
    match table.with_route(taken) {
        Err(TableError::DuplicateHost { host, first, second }) => {
            assert_eq!(
                (host.as_str(), first.as_str(), second.as_str()),
                ("hello.default", "default/hello", "default/third")
            );
        }
        other => panic!("not refused as taken: {other:?}"),
    }
    let mut steal = route("other", vec![(100, target("o"))]);
    steal.hosts.push("hello.default".into());
    assert!(
        matches!(table.with_route(steal), Err(TableError::DuplicateHost { .. })),
        "an edit may not take another's host"
    );
    let bad = route("hello", vec![(50, target("a"))]);
    assert!(matches!(table.with_route(bad), Err(TableError::PercentSum { .. })));
    // A route may keep its own hosts when edited, and the others are untouched.
    let kept = table.with_route(route("hello", vec![(100, target("b"))])).expect("valid").expect("alone");
    assert_eq!(reached(&kept, "hello.default", None, 0).as_deref(), Some("b"));
    assert_eq!(reached(&kept, "other.default", None, 0).as_deref(), Some("o"));
}

#[test]
fn the_host_text_is_compacted_once_dead_bytes_outweigh_live_ones() {
    let mut table =
        RoutingTable::new((0..20).map(|i| route(&format!("r{i}"), vec![(100, target("a"))])).collect()).expect("table");
    let (live, _) = table.hosts.sizes();
    for i in 0..200 {
        let name = format!("r{}", i % 20);
        let mut config = route(&name, vec![(100, target("a"))]);
        config.hosts.push(format!("{name}-{i}.example"));
        table = table.with_route(config).expect("valid").expect("alone");
        let (len, dead) = table.hosts.sizes();
        assert!(dead <= len - dead, "edit {i}: {dead} dead bytes of {len}");
        assert!(len <= 3 * live, "edit {i}: {len} bytes, {live} at first");
        assert_eq!(reached(&table, &format!("{name}-{i}.example"), None, 0).as_deref(), Some("a"));
    }
    for i in 0..20 {
        assert_eq!(reached(&table, &format!("r{i}.default"), None, 0).as_deref(), Some("a"), "r{i}");
        assert_eq!(reached(&table, &format!("r{i}-{}.example", 180 + i), None, 0).as_deref(), Some("a"));
        assert!(reached(&table, &format!("r{i}-{}.example", 160 + i), None, 0).is_none(), "an old host is gone");
    }
    let names: Vec<String> = table.traffic_percents().map(|(ns, r, ..)| format!("{ns}/{r}")).collect();
    assert_eq!(names.len(), 20);
    assert!(names.iter().all(|n| n.starts_with("default/r")), "names moved with their regions: {names:?}");
}

#[test]
fn edits_removing_most_routes_give_back_the_slots_room() {
    let configs: Vec<RouteConfig> = (0..200).map(|i| route(&format!("r{i}"), vec![(100, target("a"))])).collect();
    let mut table = RoutingTable::new(configs).expect("table");
    let full = table.hosts.room();
    for i in 0..190 {
        table = table.without_route("default", &format!("r{i}")).expect("served");
    }
    assert!(table.hosts.room() * 8 <= full, "room for {} hosts, {full} at first", table.hosts.room());
    let (len, dead) = table.hosts.sizes();
    assert!(dead <= len - dead);
    for i in 190..200 {
        assert_eq!(reached(&table, &format!("r{i}.default"), None, 0).as_deref(), Some("a"));
    }
    assert_eq!(table.len(), 10);
}

/// One step of the property test: route `r{name}` set (hosts from a small pool, some equal
/// but for case, so routes collide; `split` 3 sums to 90 and is refused) or removed.
#[derive(Clone, Debug)]
enum Step {
    Set { name: u8, hosts: Vec<u8>, split: u8, tag: Option<u8>, rule: bool },
    Remove { name: u8 },
}

const POOL: [&str; 6] = ["h0.default", "H0.default", "h1.default", "h2.default", "h3.default", "h4.default"];

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (0u8..6, proptest::collection::vec(0u8..6, 1..3), 0u8..4, proptest::option::of(0u8..6), any::<bool>())
            .prop_map(|(name, hosts, split, tag, rule)| Step::Set { name, hosts, split, tag, rule }),
        1 => (0u8..6).prop_map(|name| Step::Remove { name }),
    ]
}

fn step_route(name: u8, hosts: &[u8], split: u8, tag: Option<u8>, rule: bool, revs: &[Target; 3]) -> RouteConfig {
    let [a, b, c] = revs;
    let traffic = match split {
        0 => vec![(100, a.clone())],
        1 => vec![(70, a.clone()), (30, b.clone())],
        2 => vec![(100, b.clone()), (0, c.clone())],
        _ => vec![(50, a.clone()), (40, b.clone())],
    };
    RouteConfig {
        namespace: "default".into(),
        name: format!("r{name}"),
        hosts: hosts.iter().map(|h| POOL[*h as usize].to_string()).collect(),
        traffic,
        tags: tag
            .map(|t| TagConfig { tag: "canary".into(), hosts: vec![POOL[t as usize].to_string()], target: c.clone() })
            .into_iter()
            .collect(),
        tag_header_routing: name.is_multiple_of(2),
        http_protocol: name.is_multiple_of(3).then_some(HttpProtocol::Disabled),
        rules: if rule {
            vec![RuleConfig { traffic: vec![(100, c.clone())], ..rule_to(None, "/rule", "unused") }]
        } else {
            vec![]
        },
    }
}

proptest::proptest! {
    /// Any sequence of route sets and removals, colliding hosts and refused routes included,
    /// made as edits gives the table a whole build of the same routes gives, or fails where
    /// the whole build fails; each route's split sequence is carried.
    #[test]
    fn edits_answer_as_whole_builds(steps in proptest::collection::vec(step(), 1..40)) {
        let revs = [target("a"), target("b"), target("c")];
        let mut configs: Vec<RouteConfig> = Vec::new();
        let mut table = RoutingTable::default();
        for step in steps {
            let mut next = configs.clone();
            let edited = match &step {
                Step::Set { name, hosts, split, tag, rule } => {
                    let config = step_route(*name, hosts, *split, *tag, *rule, &revs);
                    match next.iter_mut().find(|c| c.name == config.name) {
                        Some(place) => *place = config.clone(),
                        None => next.push(config.clone()),
                    }
                    table.with_route(config).map(|t| t.expect("no counter cap here"))
                }
                Step::Remove { name } => {
                    let name = format!("r{name}");
                    let served = next.iter().any(|c| c.name == name);
                    next.retain(|c| c.name != name);
                    let edited = table.without_route("default", &name);
                    proptest::prop_assert_eq!(edited.is_some(), served);
                    match edited {
                        Some(edited) => Ok(edited),
                        None => continue,
                    }
                }
            };
            let whole = RoutingTable::new(next.clone());
            match edited {
                Ok(edited) => {
                    let whole = whole.expect("the whole build succeeds too");
                    proptest::prop_assert_eq!(view(&edited), view(&whole), "after {:?}", step);
                    let before = rollers(&table);
                    for (name, roller) in rollers(&edited) {
                        if let Some(kept) = before.get(&name) {
                            proptest::prop_assert!(Arc::ptr_eq(kept, &roller), "{} carried", name);
                        }
                    }
                    let (len, dead) = edited.hosts.sizes();
                    proptest::prop_assert!(dead <= len - dead);
                    table = edited;
                    configs = next;
                }
                Err(e) => proptest::prop_assert!(whole.is_err(), "edit refused ({}), whole build not", e),
            }
        }
    }
}

#[test]
fn the_routes_naming_a_revision_are_found_by_split_percent_tag_or_rule() {
    let (a, b, c, d) = (target("a"), target("b"), target("c"), target("d"));
    let table = RoutingTable::new(vec![
        route("split", vec![(100, a.clone())]),
        route("zero", vec![(100, b.clone()), (0, a.clone())]),
        full_route("tag", vec![(100, b.clone())], &a, &c),
        full_route("rule", vec![(100, b.clone())], &c, &a),
        full_route("neither", vec![(100, b)], &c, &c),
    ])
    .expect("table");
    let mut naming = table.routes_naming(&a.revision.key);
    naming.sort_unstable();
    assert_eq!(naming, [("default", "rule"), ("default", "split"), ("default", "tag"), ("default", "zero")]);
    assert!(table.routes_naming(&d.revision.key).is_empty());
}
