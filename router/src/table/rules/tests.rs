use std::collections::HashMap;
use std::time::Duration;

use http::{HeaderValue, Request};
use proptest::prelude::*;

use super::*;
use crate::endpoints::{RevisionEndpoints, RevisionKey};
use crate::table::{Protocol, RouteConfig, RoutingTable, TagConfig, Target, Via};

fn target(name: &str) -> Target {
    Target {
        revision: RevisionEndpoints::new(RevisionKey::new("default", name)),
        timeout: Duration::from_secs(300),
        response_start: None,
        idle: None,
        protocol: Protocol::Http1,
    }
}

fn header(name: &str, value: ValueMatch) -> HeaderMatch {
    HeaderMatch { name: name.into(), value }
}

/// A rule sending everything to revision `to`.
fn rule(name: Option<&str>, headers: Vec<HeaderMatch>, path: Option<PathMatch>, to: &str) -> RuleConfig {
    RuleConfig { name: name.map(Into::into), headers, path, traffic: vec![(100, target(to))] }
}

/// `default/hello` sending its default split to `v1`, with `rules`.
fn route(rules: Vec<RuleConfig>) -> RouteConfig {
    RouteConfig {
        namespace: "default".into(),
        name: "hello".into(),
        hosts: vec!["hello.default".into()],
        traffic: vec![(100, target("v1"))],
        rules,
        ..RouteConfig::default()
    }
}

fn table(rules: Vec<RuleConfig>) -> RoutingTable {
    RoutingTable::new(vec![route(rules)]).expect("table")
}

fn request(path: &str, headers: &[(&str, &[u8])]) -> Request<()> {
    let mut req = Request::builder().uri(path).header("host", "hello.default");
    for (name, value) in headers {
        req = req.header(*name, HeaderValue::from_bytes(value).expect("header value"));
    }
    req.body(()).expect("request")
}

/// The revision a request reaches.
fn reached(table: &RoutingTable, path: &str, headers: &[(&str, &[u8])]) -> String {
    table.resolve(&request(path, headers)).expect("routed").target.revision.key.name.clone()
}

fn compile_error(rules: Vec<RuleConfig>) -> String {
    RoutingTable::new(vec![route(rules)]).expect_err("refused").to_string()
}

#[test]
fn exact_prefix_regex_and_present_each_hold_only_for_their_values() {
    let t = table(vec![
        rule(None, vec![header("x-exact", ValueMatch::Exact("beta".into()))], None, "exact"),
        rule(None, vec![header("X-Prefix", ValueMatch::Prefix("be".into()))], None, "prefix"),
        rule(None, vec![header("user-agent", ValueMatch::Regex("^(.*?;)?(iPhone)(;.*)?$".into()))], None, "regex"),
        rule(None, vec![header("x-debug", ValueMatch::Present(true))], None, "present"),
    ]);
    assert_eq!(reached(&t, "/", &[("x-exact", b"beta")]), "exact");
    assert_eq!(reached(&t, "/", &[("x-exact", b"Beta")]), "v1", "values are compared byte for byte");
    assert_eq!(reached(&t, "/", &[("x-exact", b"betamax")]), "v1");
    assert_eq!(reached(&t, "/", &[("x-prefix", b"betamax")]), "prefix", "names are case-insensitive");
    assert_eq!(reached(&t, "/", &[("x-prefix", b"b")]), "v1");
    assert_eq!(reached(&t, "/", &[("user-agent", b"Mozilla/5.0;iPhone;CPU")]), "regex");
    assert_eq!(reached(&t, "/", &[("user-agent", b"iPhone")]), "regex");
    assert_eq!(reached(&t, "/", &[("user-agent", b"Mozilla/5.0 (Android)")]), "v1");
    assert_eq!(reached(&t, "/", &[("x-debug", b"")]), "present", "an empty value is present");
    assert_eq!(reached(&t, "/", &[]), "v1");
}

#[test]
fn a_regex_must_match_the_whole_value() {
    let t = table(vec![rule(None, vec![header("user-agent", ValueMatch::Regex("iPhone".into()))], None, "r")]);
    assert_eq!(reached(&t, "/", &[("user-agent", b"iPhone")]), "r");
    assert_eq!(reached(&t, "/", &[("user-agent", b"Mozilla iPhone")]), "v1");
    assert_eq!(reached(&t, "/", &[("user-agent", b"iPhone 15")]), "v1");
    let alternation = table(vec![rule(None, vec![header("x", ValueMatch::Regex("a|b".into()))], None, "r")]);
    assert_eq!(reached(&alternation, "/", &[("x", b"b")]), "r");
    assert_eq!(reached(&alternation, "/", &[("x", b"ab")]), "v1", "the anchors bind the whole alternation");
}

#[test]
fn a_pattern_that_does_not_parse_alone_cannot_escape_its_anchors() {
    let err = compile_error(vec![rule(Some("r"), vec![header("x", ValueMatch::Regex("a)|(b".into()))], None, "r")]);
    assert!(err.starts_with("route default/hello rules[0] (r): header x: invalid regex: "), "{err}");
    assert!(err.contains("unopened group"), "{err}");
}

#[test]
fn a_regex_too_large_to_compile_is_refused() {
    let err =
        compile_error(vec![rule(None, vec![header("x", ValueMatch::Regex(r"(?:\w{100}){100}".into()))], None, "r")]);
    assert!(err.starts_with("route default/hello rules[0]: header x: invalid regex: "), "{err}");
    assert!(err.contains("size limit"), "{err}");
}

#[test]
fn a_header_sent_several_times_matches_when_any_value_does() {
    let t = table(vec![
        rule(None, vec![header("x-flag", ValueMatch::Exact("on".into()))], None, "exact"),
        rule(None, vec![header("x-tier", ValueMatch::Regex("gold|silver".into()))], None, "regex"),
    ]);
    assert_eq!(reached(&t, "/", &[("x-flag", b"off"), ("x-flag", b"on")]), "exact");
    assert_eq!(reached(&t, "/", &[("x-flag", b"off"), ("x-flag", b"no")]), "v1");
    assert_eq!(reached(&t, "/", &[("x-tier", b"bronze"), ("x-tier", b"silver")]), "regex");
}

#[test]
fn present_false_holds_only_when_the_header_is_absent() {
    let t = table(vec![rule(None, vec![header("cookie", ValueMatch::Present(false))], None, "anonymous")]);
    assert_eq!(reached(&t, "/", &[]), "anonymous");
    assert_eq!(reached(&t, "/", &[("cookie", b"")]), "v1");
    assert_eq!(reached(&t, "/", &[("cookie", b"a=1"), ("cookie", b"b=2")]), "v1");
}

#[test]
fn values_that_are_not_utf8_are_matched_by_their_bytes() {
    let t = table(vec![
        rule(None, vec![header("x-name", ValueMatch::Regex(r"caf(?-u:\xE9)".into()))], None, "latin1"),
        rule(None, vec![header("x-name", ValueMatch::Prefix("caf".into()))], None, "prefix"),
    ]);
    assert_eq!(reached(&t, "/", &[("x-name", b"caf\xe9")]), "latin1");
    assert_eq!(reached(&t, "/", &[("x-name", b"caf\xe9s")]), "prefix");
    assert_eq!(reached(&t, "/", &[("x-name", b"\xff\xfe")]), "v1");
}

#[test]
fn paths_match_exactly_or_by_prefix_without_the_query() {
    let t = table(vec![
        rule(None, vec![], Some(PathMatch::Exact("/healthz".into())), "exact"),
        rule(None, vec![], Some(PathMatch::Prefix("/api".into())), "prefix"),
    ]);
    assert_eq!(reached(&t, "/healthz", &[]), "exact");
    assert_eq!(reached(&t, "/healthz?verbose=1", &[]), "exact");
    assert_eq!(reached(&t, "/healthz/", &[]), "v1");
    assert_eq!(reached(&t, "/api", &[]), "prefix");
    assert_eq!(reached(&t, "/apis/v1?x=/api", &[]), "prefix", "a string prefix, as Envoy's");
    assert_eq!(reached(&t, "/v1/api", &[]), "v1");
    assert_eq!(reached(&t, "http://hello.default/api/x", &[]), "prefix", "absolute form: the path alone");
}

#[test]
fn every_condition_of_a_rule_must_hold() {
    let both = vec![header("x-a", ValueMatch::Exact("1".into())), header("x-b", ValueMatch::Present(true))];
    let t = table(vec![rule(None, both, Some(PathMatch::Prefix("/api".into())), "r")]);
    assert_eq!(reached(&t, "/api", &[("x-a", b"1"), ("x-b", b"")]), "r");
    assert_eq!(reached(&t, "/", &[("x-a", b"1"), ("x-b", b"")]), "v1");
    assert_eq!(reached(&t, "/api", &[("x-a", b"1")]), "v1");
    assert_eq!(reached(&t, "/api", &[("x-b", b"")]), "v1");
}

#[test]
fn the_first_matching_rule_wins_and_says_so() {
    let t = table(vec![
        rule(Some("debug"), vec![header("x-debug", ValueMatch::Present(true))], None, "first"),
        rule(None, vec![], Some(PathMatch::Prefix("/".into())), "second"),
    ]);
    let decided = t.decide(&request("/", &[("x-debug", b"1")])).expect("routed");
    assert_eq!(decided.backend.target.revision.key.name, "first");
    assert_eq!(decided.via, Via::Rule { index: 0, name: Some("debug") });
    let decided = t.decide(&request("/", &[])).expect("routed");
    assert_eq!(decided.backend.target.revision.key.name, "second");
    assert_eq!(decided.via, Via::Rule { index: 1, name: None });
}

#[test]
fn tag_hosts_and_the_tag_header_come_before_rules() {
    let mut config = route(vec![rule(None, vec![header("x-debug", ValueMatch::Present(true))], None, "ruled")]);
    config.tags.push(TagConfig {
        tag: "canary".into(),
        hosts: vec!["canary-hello.default".into()],
        target: target("c"),
    });
    config.tag_header_routing = true;
    let t = RoutingTable::new(vec![config]).expect("table");
    let tagged = request("/", &[("x-debug", b"1"), ("knative-serving-tag", b"canary")]);
    let decided = t.decide(&tagged).expect("routed");
    assert_eq!((decided.backend.target.revision.key.name.as_str(), decided.via), ("c", Via::TagHeader));
    let unknown = request("/", &[("x-debug", b"1"), ("knative-serving-tag", b"nope")]);
    assert_eq!(t.resolve(&unknown).expect("routed").target.revision.key.name, "ruled", "unknown tag: rules next");
    let tag_host = Request::builder().uri("/").header("host", "canary-hello.default").header("x-debug", "1");
    let decided = t.decide(&tag_host.body(()).expect("request")).expect("routed");
    assert_eq!((decided.backend.target.revision.key.name.as_str(), decided.via), ("c", Via::TagHost));
    assert_eq!(t.decide(&request("/", &[])).expect("routed").via, Via::Split);
}

#[test]
fn a_rule_splits_by_its_own_percents_within_its_own_sequence() {
    let split = RuleConfig {
        name: Some("canary".into()),
        headers: vec![header("x-canary", ValueMatch::Present(true))],
        path: None,
        traffic: vec![(30, target("a")), (0, target("never")), (70, target("b"))],
    };
    let t = table(vec![split]);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for i in 0..1000 {
        // Requests the rule does not take, in between, must not disturb its shares.
        if i % 3 == 0 {
            assert_eq!(reached(&t, "/", &[]), "v1");
        }
        *counts.entry(reached(&t, "/", &[("x-canary", b"")])).or_default() += 1;
    }
    assert!(counts["a"].abs_diff(300) <= 3, "{counts:?}");
    assert!(counts["b"].abs_diff(700) <= 3, "{counts:?}");
    assert_eq!(counts.get("never"), None);
}

#[test]
fn a_rebuild_keeps_each_rules_sequence_and_compiled_match() {
    let canary = |to: &str| RuleConfig {
        name: Some("canary".into()),
        headers: vec![header("user-agent", ValueMatch::Regex(".*iPhone.*".into()))],
        path: None,
        traffic: vec![(50, target("a")), (50, target(to))],
    };
    let first = RoutingTable::new(vec![route(vec![canary("b")])]).expect("table");
    let second = first.rebuild(vec![route(vec![canary("b2")])]).expect("rebuilt");
    let (old, new) = (&first.routes[0].rules()[0], &second.routes[0].rules()[0]);
    assert!(Arc::ptr_eq(&old.roller, &new.roller), "the rule's split sequence goes on");
    assert!(Arc::ptr_eq(&old.matcher, &new.matcher), "unchanged conditions are not compiled again");
    let mut changed = canary("b");
    changed.headers[0].value = ValueMatch::Regex(".*iPad.*".into());
    let third = second.rebuild(vec![route(vec![changed])]).expect("rebuilt");
    let rule = &third.routes[0].rules()[0];
    assert!(Arc::ptr_eq(&new.roller, &rule.roller), "keyed by name");
    assert!(!Arc::ptr_eq(&new.matcher, &rule.matcher), "changed conditions are compiled");
    assert_eq!(reached(&third, "/", &[("user-agent", b"an iPhone")]), "v1");

    let mut hits = 0;
    let mut t = third;
    for _ in 0..400 {
        t = t.rebuild(vec![route(vec![canary("b")])]).expect("rebuilt");
        hits += usize::from(reached(&t, "/", &[("user-agent", b"iPhone")]) == "a");
    }
    assert!(hits.abs_diff(200) <= 3, "{hits} of 400 to a");
}

#[test]
fn bad_rules_are_refused_naming_the_route_and_rule() {
    let present = || vec![header("x", ValueMatch::Present(true))];
    let cases = [
        (
            vec![
                rule(None, present(), None, "a"),
                rule(Some("r"), vec![header("bad name", ValueMatch::Present(true))], None, "a"),
            ],
            "route default/hello rules[1] (r): \"bad name\" is not a valid HTTP header name",
        ),
        (
            vec![RuleConfig { name: None, headers: present(), path: None, traffic: vec![] }],
            "route default/hello rules[0]: traffic percents sum to 0, not 100",
        ),
        (
            vec![RuleConfig { name: None, headers: present(), path: None, traffic: vec![(0, target("a"))] }],
            "route default/hello rules[0]: traffic percents sum to 0, not 100",
        ),
        (
            vec![RuleConfig {
                name: None,
                headers: present(),
                path: None,
                traffic: vec![(60, target("a")), (60, target("b"))],
            }],
            "route default/hello rules[0]: traffic percents sum to 120, not 100",
        ),
        (
            vec![rule(Some("r"), present(), None, "a"), rule(Some("r"), present(), None, "b")],
            "route default/hello rules[1] (r): another rule has the same name",
        ),
        (
            vec![rule(None, vec![], Some(PathMatch::Prefix("api".into())), "a")],
            "route default/hello rules[0]: path \"api\" does not start with '/'",
        ),
    ];
    for (rules, want) in cases {
        assert_eq!(compile_error(rules), want);
    }
}

/// The reference: what a condition means, written the obvious way over the request's values
/// of that header (in order, possibly none).
fn naive(value: &ValueMatch, values: &[Vec<u8>]) -> bool {
    match value {
        ValueMatch::Exact(want) => values.iter().any(|v| v == want.as_bytes()),
        ValueMatch::Prefix(want) => values.iter().any(|v| v.len() >= want.len() && v[..want.len()] == *want.as_bytes()),
        ValueMatch::Regex(_) => unreachable!("the reference covers exact, prefix and present"),
        ValueMatch::Present(present) => values.is_empty() != *present,
    }
}

/// Header values over a small alphabet (so exact and prefix hits are common), with a byte
/// that is not UTF-8 among them.
fn values() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let byte = prop_oneof![Just(b'a'), Just(b'b'), Just(b' '), Just(b';'), Just(0xE9u8)];
    proptest::collection::vec(proptest::collection::vec(byte, 0..5), 0..4)
}

fn condition() -> impl Strategy<Value = ValueMatch> {
    let text = "[ab ;]{0,4}";
    prop_oneof![
        text.prop_map(ValueMatch::Exact),
        text.prop_map(ValueMatch::Prefix),
        any::<bool>().prop_map(ValueMatch::Present),
    ]
}

fn matcher(value: ValueMatch) -> Matcher {
    Matcher::compile(vec![header("x-h", value)], None).unwrap_or_else(|_| panic!("compiles"))
}

fn headers_with(values: &[Vec<u8>]) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert("x-other", HeaderValue::from_static("a"));
    for v in values {
        map.append("x-h", HeaderValue::from_bytes(v).expect("valid value"));
    }
    map
}

proptest! {
    /// Exact, prefix and present agree with the reference over any values, sent any number of
    /// times.
    #[test]
    fn conditions_agree_with_the_reference(value in condition(), values in values()) {
        let got = matcher(value.clone()).matches(&headers_with(&values), "/");
        prop_assert_eq!(got, naive(&value, &values));
    }

    /// A regex is anchored to the whole value: an escaped literal matches exactly where
    /// `exact` does, and the literal followed by "any bytes" exactly where `prefix` does.
    #[test]
    fn an_escaped_literal_regex_agrees_with_exact_and_prefix(text in "[ab ;.*]{0,4}", values in values()) {
        let headers = headers_with(&values);
        let literal = regex::escape(&text);
        prop_assert_eq!(
            matcher(ValueMatch::Regex(literal.clone())).matches(&headers, "/"),
            matcher(ValueMatch::Exact(text.clone())).matches(&headers, "/")
        );
        prop_assert_eq!(
            matcher(ValueMatch::Regex(format!("{literal}(?s-u:.)*"))).matches(&headers, "/"),
            matcher(ValueMatch::Prefix(text)).matches(&headers, "/")
        );
    }
}

#[test]
fn each_header_is_looked_up_once_and_names_past_the_cache_still_answer() {
    let names: Vec<HeaderName> =
        (0..SEEN + 4).map(|i| HeaderName::try_from(format!("x-h{i}")).expect("name")).collect();
    let mut headers = HeaderMap::new();
    for (i, name) in names.iter().enumerate() {
        headers.append(name.clone(), HeaderValue::try_from(format!("v{i}")).expect("value"));
    }
    headers.append(names[0].clone(), HeaderValue::from_static("again"));
    let mut seen = Seen::new(&headers);
    // Twice over every name: the second pass reads the kept lookups (and, past `SEEN`, looks up again).
    for _ in 0..2 {
        for (i, name) in names.iter().enumerate() {
            let got: Vec<String> =
                seen.values(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
            let want = if i == 0 { vec!["v0".to_string(), "again".to_string()] } else { vec![format!("v{i}")] };
            assert_eq!(got, want, "{name}");
        }
    }
    let absent = HeaderName::from_static("x-absent");
    assert_eq!(seen.values(&absent).count(), 0);
}
