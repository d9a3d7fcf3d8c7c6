use http::StatusCode;

use super::text::{self, Sample};
use super::*;
use crate::endpoints::{Owners, RevisionKey};

#[test]
fn every_revision_exposes_its_families_with_knatives_labels() {
    let endpoints = Endpoints::new();
    let rev = endpoints.revision(&RevisionKey::new("default", "hello-00001"));
    rev.owners().set(Owners { configuration: "hello".into(), service: "hello".into() });
    for _ in 0..7 {
        rev.responses().record_timed(StatusCode::OK, std::time::Duration::from_millis(3));
    }
    rev.responses().record_timed(StatusCode::BAD_GATEWAY, std::time::Duration::from_micros(10));
    rev.responses().record_failure(crate::endpoints::Failure::Unreachable);
    rev.responses().add_request_bytes(11);
    rev.responses().add_request_bytes(4);
    rev.responses().add_response_bytes(1234);
    let _idle = endpoints.revision(&RevisionKey::new("other", "bare-00001"));
    let mut out = String::new();
    render(&endpoints, &RoutingTable::default(), &mut out);
    assert!(out.contains("# TYPE revision_request_count counter\n"), "{out}");
    assert!(out.contains("revision_request_count{namespace_name=\"default\",service_name=\"hello\",configuration_name=\"hello\",revision_name=\"hello-00001\",response_code=\"200\",response_code_class=\"2xx\"} 7\n"), "{out}");
    let samples = text::parse(&out).expect("parses");
    let of = |rev: &str, class: &str| {
        text::sum(&samples, REVISION_REQUEST_COUNT, &[("revision_name", rev), ("response_code_class", class)])
    };
    assert_eq!((of("hello-00001", "2xx"), of("hello-00001", "5xx"), of("hello-00001", "4xx")), (7.0, 1.0, 0.0));
    let hist = |name: &str, labels: &[(&str, &str)]| text::sum(&samples, name, labels);
    let hello = [("revision_name", "hello-00001")];
    assert_eq!(hist("revision_request_latencies_count", &hello), 8.0);
    assert_eq!(hist("revision_request_latencies_bucket", &[("revision_name", "hello-00001"), ("le", "0.05")]), 1.0);
    assert_eq!(hist("revision_request_latencies_bucket", &[("revision_name", "hello-00001"), ("le", "5")]), 8.0);
    assert_eq!(hist("revision_request_latencies_bucket", &[("revision_name", "hello-00001"), ("le", "+Inf")]), 8.0);
    assert!((hist("revision_request_latencies_sum", &hello) - 21.01).abs() < 1e-9);
    assert_eq!(hist("revision_queue_wait_latencies_count", &hello), 0.0);
    assert_eq!(hist("revision_request_concurrency", &[("revision_name", "bare-00001")]), 0.0);
    assert_eq!(hist("revision_queue_depth", &hello), 0.0);
    assert_eq!(
        hist(
            REVISION_PROXY_ERRORS_COUNT,
            &[("revision_name", "hello-00001"), ("reason", "unreachable"), ("response_code", "502")]
        ),
        1.0
    );
    assert_eq!(hist(REVISION_PROXY_ERRORS_COUNT, &[("revision_name", "bare-00001")]), 0.0);
    assert_eq!(samples.iter().filter(|s| s.name == REVISION_PROXY_ERRORS_COUNT).count(), 10, "{out}");
    assert!(out.contains("# TYPE revision_request_bytes_count counter\n"), "{out}");
    assert_eq!(hist(REVISION_REQUEST_BYTES_COUNT, &hello), 15.0);
    assert_eq!(hist(REVISION_RESPONSE_BYTES_COUNT, &hello), 1234.0);
    assert_eq!(hist(REVISION_RESPONSE_BYTES_COUNT, &[("revision_name", "bare-00001")]), 0.0);
}

#[test]
fn label_values_are_escaped_and_read_back() {
    let mut out = String::new();
    text::sample(&mut out, "m", &[("a", "quote\" back\\ nl\n")], 3);
    assert_eq!(out, "m{a=\"quote\\\" back\\\\ nl\\n\"} 3\n");
    let parsed = text::parse(&out).expect("parses");
    assert_eq!(
        parsed,
        vec![Sample { name: "m".into(), labels: vec![("a".into(), "quote\" back\\ nl\n".into())], value: 3.0 }]
    );
}

#[test]
fn malformed_lines_are_refused_with_their_line_number() {
    for (bad, want) in [
        ("ok 1\n9bad 1\n", "line 2: invalid metric name"),
        ("m{a=b} 1\n", "line 1: label a: value not quoted"),
        ("m{a=\"b\"} x\n", "line 1: m: value \"x\""),
        ("m{a=\"b} 1\n", "line 1: label a: unterminated value"),
        ("# TYPE m countr\n", "line 1: TYPE m: unknown type"),
        ("m 1 2 3\n", "line 1: m: unexpected"),
        ("m{a=\"1\",a=\"2\"} 1\n", "label a given twice"),
    ] {
        let err = text::parse(bad).expect_err(bad).to_string();
        assert!(err.starts_with(want) || err.contains(want), "{bad:?}: {err}");
    }
    assert_eq!(text::parse("m 1 1700000000000\nn +Inf\n").expect("timestamps and +Inf").len(), 2);
}

#[test]
fn route_families_come_from_the_table_in_force() {
    use crate::table::{Protocol, RouteConfig, RuleConfig, TagConfig, Target};
    let endpoints = Endpoints::new();
    let target = |name: &str| Target {
        revision: endpoints.revision(&RevisionKey::new("default", name)),
        timeout: std::time::Duration::from_secs(30),
        response_start: None,
        idle: None,
        protocol: Protocol::Http1,
    };
    let route = RouteConfig {
        namespace: "default".into(),
        name: "hello".into(),
        hosts: vec!["hello.default".into()],
        traffic: vec![(90, target("hello-00001")), (10, target("hello-00002")), (0, target("hello-00003"))],
        tags: vec![TagConfig {
            tag: "canary".into(),
            hosts: vec!["canary.default".into()],
            target: target("hello-00002"),
        }],
        rules: vec![RuleConfig {
            name: None,
            headers: Vec::new(),
            path: None,
            traffic: vec![(100, target("hello-00002"))],
        }],
        ..RouteConfig::default()
    };
    let table = RoutingTable::new(vec![route]).expect("table");
    let req = http::Request::builder().uri("/").header("host", "hello.default").body(()).expect("request");
    table.resolve(&req).expect("rule").picked();
    let mut out = String::new();
    render(&endpoints, &table, &mut out);
    let samples = text::parse(&out).expect("parses");
    let one = |name: &str, labels: &[(&str, &str)]| {
        let found: Vec<_> = samples
            .iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v)))
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?}:\n{out}");
        assert_eq!(found[0].labels.len(), labels.len(), "exactly these labels: {:?}", found[0].labels);
        found[0].value
    };
    let rev = |r| [("namespace_name", "default"), ("route_name", "hello"), ("revision_name", r)];
    assert_eq!(one(ROUTE_RULE_REQUEST_COUNT, &[&rev("hello-00002")[..], &[("rule", "rules[0]")]].concat()), 1.0);
    assert_eq!(one(ROUTE_TAG_REQUEST_COUNT, &[&rev("hello-00002")[..], &[("tag", "canary")]].concat()), 0.0);
    assert_eq!(one(ROUTE_TRAFFIC_PERCENT, &rev("hello-00001")), 90.0);
    assert_eq!(one(ROUTE_TRAFFIC_PERCENT, &rev("hello-00002")), 10.0);
    assert_eq!(one(ROUTE_TRAFFIC_PERCENT, &rev("hello-00003")), 0.0);
    assert!(out.contains("# TYPE route_rule_request_count counter\n"), "{out}");
    assert!(out.contains("# TYPE route_traffic_percent gauge\n"), "{out}");
}
