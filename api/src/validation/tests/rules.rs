//! `spec.rules` of Routes and Services: every refusal with its message and field path.

use serde_json::{Value, json};

use super::{DNS1035, accepted, rejected, route, service, with};
use crate::kinds::Kind;

/// A Route with tags `stable` and `alpha` and the given rules.
fn route_rules(rules: Value) -> Value {
    let traffic = json!([
        {"revisionName": "rev-1", "percent": 100, "tag": "stable"},
        {"revisionName": "rev-2", "percent": 0, "tag": "alpha"},
    ]);
    with(with(route(), "/spec/traffic", traffic), "/spec/rules", rules)
}

fn refused(rules: Value) -> String {
    rejected(Kind::Route, route_rules(rules))
}

/// A rule with one header condition, going to `alpha`.
fn header_rule(header: Value) -> Value {
    json!([{"match": {"headers": [header]}, "traffic": [{"tag": "alpha", "percent": 100}]}])
}

#[test]
fn a_full_rule_set_is_accepted_and_stored_as_written() {
    let rules = json!([
        {"name": "iphone-alpha",
         "match": {"headers": [{"name": "User-Agent", "regex": "^(.*?;)?(iPhone)(;.*)?$"}], "path": {"prefix": "/api"}},
         "traffic": [{"tag": "alpha", "percent": 100}]},
        {"match": {"headers": [{"name": "x-canary", "present": true}, {"name": "x-env", "exact": "dev"},
                               {"name": "cookie", "prefix": "beta="}]},
         "traffic": [{"revisionName": "rev-1", "percent": 50}, {"configurationName": "cfg", "percent": 50}]},
        {"match": {"path": {"exact": "/healthz"}}, "traffic": [{"tag": "stable", "percent": 100}]},
    ]);
    let stored = accepted(Kind::Route, route_rules(rules.clone()));
    assert_eq!(stored["spec"]["rules"], rules);
}

#[test]
fn a_service_rule_may_name_its_latest_revision_implicitly() {
    let svc = with(
        service(),
        "/spec/rules",
        json!([{"match": {"headers": [{"name": "x", "present": false}]}, "traffic": [{"percent": 100}]}]),
    );
    accepted(Kind::Service, svc);
}

#[test]
fn a_bad_regex_is_refused_with_the_regex_error() {
    let msg = refused(header_rule(json!({"name": "user-agent", "regex": "(iPhone"})));
    assert!(
        msg.starts_with("invalid value: \"(iPhone\": spec.rules[0].match.headers[0].regex\nregex parse error:"),
        "{msg}"
    );
    assert!(msg.contains("unclosed group"), "{msg}");
    assert!(msg.contains("\n    (iPhone\n    ^\n"), "the error points into the regex as written: {msg}");
    let msg = refused(header_rule(json!({"name": "user-agent", "regex": "a)|(b"})));
    assert!(msg.contains("unopened group"), "valid only once wrapped, so refused: {msg}");
}

#[test]
fn a_regex_that_compiles_too_big_is_refused() {
    let msg = refused(header_rule(json!({"name": "user-agent", "regex": "\\w{1000}"})));
    assert!(msg.starts_with("invalid value: \"\\\\w{1000}\": spec.rules[0].match.headers[0].regex\n"), "{msg}");
    assert!(msg.contains("exceeds size limit"), "{msg}");
}

#[test]
fn an_empty_match_is_refused() {
    let msg = refused(json!([{"match": {}, "traffic": [{"tag": "alpha", "percent": 100}]}]));
    assert_eq!(msg, "empty match: expected headers, path or both: spec.rules[0].match");
    let msg = refused(json!([{"traffic": [{"tag": "alpha", "percent": 100}]}]));
    assert_eq!(msg, "empty match: expected headers, path or both: spec.rules[0].match");
}

#[test]
fn a_header_needs_exactly_one_condition() {
    let msg = refused(header_rule(json!({"name": "x"})));
    assert_eq!(
        msg,
        "expected exactly one, got neither: spec.rules[0].match.headers[0].exact, spec.rules[0].match.headers[0].prefix, spec.rules[0].match.headers[0].present, spec.rules[0].match.headers[0].regex"
    );
    let msg = refused(header_rule(json!({"name": "x", "exact": "a", "present": true})));
    assert_eq!(
        msg,
        "expected exactly one, got both: spec.rules[0].match.headers[0].exact, spec.rules[0].match.headers[0].present"
    );
}

#[test]
fn a_path_needs_exactly_one_of_exact_and_prefix_starting_with_a_slash() {
    let rule = |path: Value| json!([{"match": {"path": path}, "traffic": [{"tag": "alpha", "percent": 100}]}]);
    assert_eq!(
        refused(rule(json!({}))),
        "expected exactly one, got neither: spec.rules[0].match.path.exact, spec.rules[0].match.path.prefix"
    );
    assert_eq!(
        refused(rule(json!({"exact": "/a", "prefix": "/b"}))),
        "expected exactly one, got both: spec.rules[0].match.path.exact, spec.rules[0].match.path.prefix"
    );
    assert_eq!(
        refused(rule(json!({"prefix": "api"}))),
        "invalid value: \"api\": spec.rules[0].match.path.prefix\na path starts with '/'"
    );
    assert_eq!(
        refused(rule(json!({"exact": "/a?b=1"}))),
        "invalid value: \"/a?b=1\": spec.rules[0].match.path.exact\na path has no spaces, control characters, '?' or '#' (the query is not matched)"
    );
}

#[test]
fn a_tag_not_defined_in_traffic_is_refused() {
    let msg = refused(json!([{"match": {"path": {"prefix": "/"}}, "traffic": [{"tag": "beta", "percent": 100}]}]));
    assert_eq!(
        msg,
        "invalid value: \"beta\": spec.rules[0].traffic[0].tag\na rule's target may name a tag of spec.traffic; its tags are \"stable\", \"alpha\""
    );
}

#[test]
fn a_tag_reference_names_nothing_else() {
    let msg = refused(json!([{"match": {"path": {"prefix": "/"}},
        "traffic": [{"tag": "alpha", "revisionName": "rev-1", "latestRevision": false, "percent": 100}]}]));
    assert_eq!(
        msg,
        "must not set the field(s): spec.rules[0].traffic[0].latestRevision, spec.rules[0].traffic[0].revisionName\na target naming a tag goes to the tag's revision"
    );
}

#[test]
fn percents_within_a_rule_must_sum_to_100() {
    let msg = refused(json!([{"match": {"path": {"prefix": "/"}},
        "traffic": [{"tag": "alpha", "percent": 60}, {"tag": "stable", "percent": 30}]}]));
    assert_eq!(msg, "Traffic targets sum to 90, want 100: spec.rules[0].traffic");
    let msg = refused(json!([{"match": {"path": {"prefix": "/"}}}]));
    assert_eq!(msg, "Traffic targets sum to 0, want 100: spec.rules[0].traffic");
}

#[test]
fn untagged_rule_targets_are_validated_as_spec_traffic_targets() {
    let msg = refused(json!([{"match": {"path": {"prefix": "/"}}, "traffic": [{"percent": 100}]}]));
    assert_eq!(
        msg,
        "expected exactly one, got neither: spec.rules[0].traffic[0].configurationName, spec.rules[0].traffic[0].revisionName"
    );
}

#[test]
fn duplicate_rule_names_name_both_rules() {
    let one =
        json!({"name": "same", "match": {"path": {"prefix": "/"}}, "traffic": [{"tag": "alpha", "percent": 100}]});
    let msg = refused(json!([one, {"name": "other", "match": {"path": {"prefix": "/"}},
        "traffic": [{"tag": "alpha", "percent": 100}]}, one]));
    assert_eq!(msg, "Multiple definitions for \"same\": spec.rules[0].name, spec.rules[2].name");
}

#[test]
fn a_rule_name_is_a_dns_label() {
    let msg = refused(json!([{"name": "Not_DNS", "match": {"path": {"prefix": "/"}},
        "traffic": [{"tag": "alpha", "percent": 100}]}]));
    assert_eq!(msg, format!("invalid value: not a DNS 1035 label: {DNS1035}: spec.rules[0].name"));
}

#[test]
fn a_header_name_must_be_an_http_token() {
    let msg = refused(header_rule(json!({"name": "user agent", "present": true})));
    assert_eq!(
        msg,
        "invalid value: \"user agent\": spec.rules[0].match.headers[0].name\na header name is an HTTP token: letters, digits and !#$%&'*+-.^_`|~"
    );
    let msg = refused(header_rule(json!({"present": true})));
    assert_eq!(msg, "missing field(s): spec.rules[0].match.headers[0].name");
    let msg = refused(header_rule(json!({"name": "x", "exact": "a\nb"})));
    assert_eq!(
        msg,
        "invalid value: \"a\\nb\": spec.rules[0].match.headers[0].exact\na header value has no control characters"
    );
}

#[test]
fn caps_on_rules_headers_and_lengths_are_enforced() {
    let rule = json!({"match": {"path": {"prefix": "/"}}, "traffic": [{"tag": "alpha", "percent": 100}]});
    let msg = refused(Value::Array(vec![rule; 65]));
    assert_eq!(msg, "at most 64 rules are allowed, got 65: spec.rules");
    let headers: Vec<Value> = (0..17).map(|i| json!({"name": format!("x-{i}"), "present": true})).collect();
    let msg = refused(json!([{"match": {"headers": headers}, "traffic": [{"tag": "alpha", "percent": 100}]}]));
    assert_eq!(msg, "at most 16 header matches are allowed in a rule, got 17: spec.rules[0].match.headers");
    let msg = refused(header_rule(json!({"name": "x", "prefix": "a".repeat(1025)})));
    assert_eq!(msg, "longer than 1024 bytes (1025 bytes): spec.rules[0].match.headers[0].prefix");
    let msg = refused(header_rule(json!({"name": "x", "regex": "a".repeat(2000)})));
    assert_eq!(msg, "longer than 1024 bytes (2000 bytes): spec.rules[0].match.headers[0].regex");
    // Regexes are capped per route, across its rules: 2 rules of 9 regexes each.
    let regexes: Vec<Value> = (0..9).map(|i| json!({"name": format!("x-{i}"), "regex": "a.*"})).collect();
    let rule = json!({"match": {"headers": regexes}, "traffic": [{"tag": "alpha", "percent": 100}]});
    let msg = refused(json!([rule.clone(), rule.clone()]));
    assert_eq!(msg, "at most 16 header regexes are allowed in one route's rules, got 18: spec.rules");
    accepted(Kind::Route, route_rules(json!([rule])));
}

#[test]
fn service_rules_are_validated_at_the_same_paths() {
    let svc = with(
        service(),
        "/spec/rules",
        json!([{"match": {"headers": [{"name": "x", "regex": "["}]}, "traffic": [{"tag": "nope", "percent": 100}]}]),
    );
    let msg = rejected(Kind::Service, svc);
    assert!(msg.contains("spec.rules[0].match.headers[0].regex"), "{msg}");
    assert!(msg.contains("invalid value: \"nope\": spec.rules[0].traffic[0].tag\na rule's target may name a tag of spec.traffic; its tags are none"), "{msg}");
}
