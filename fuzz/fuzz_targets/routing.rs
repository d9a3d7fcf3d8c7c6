//! The routing decision over a fixed table: any Host header, authority, tag header, path and
//! header values a rule looks at resolve to a target or a miss, never a panic.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sluice_router::endpoints::{RevisionEndpoints, RevisionKey};
use sluice_router::table::{
    HeaderMatch, PathMatch, Protocol, RouteConfig, RoutingTable, RuleConfig, TagConfig, Target, ValueMatch,
};

fn table() -> &'static RoutingTable {
    static TABLE: OnceLock<RoutingTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let target = |name: &str| Target {
            revision: RevisionEndpoints::new(RevisionKey::new("default", name)),
            timeout: Duration::from_secs(30), response_start: None, idle: None,
            protocol: Protocol::Http1,
        };
        let route = RouteConfig {
            namespace: "default".into(),
            name: "hello".into(),
            hosts: vec!["hello.default.localhost".into(), "hello.default".into(), "[::1]".into()],
            traffic: vec![(60, target("a")), (40, target("b"))],
            tags: vec![TagConfig { tag: "v2".into(), hosts: vec!["v2-hello.default".into()], target: target("b") }],
            tag_header_routing: true,
            http_protocol: None,
            rules: vec![
                RuleConfig {
                    name: Some("iphone".into()),
                    headers: vec![HeaderMatch {
                        name: "user-agent".into(),
                        value: ValueMatch::Regex("^(.*?;)?(iPhone)(;.*)?$".into()),
                    }],
                    path: Some(PathMatch::Prefix("/api".into())),
                    traffic: vec![(50, target("a")), (50, target("b"))],
                },
                RuleConfig {
                    name: None,
                    headers: vec![
                        HeaderMatch { name: "x-version".into(), value: ValueMatch::Exact("v2".into()) },
                        HeaderMatch { name: "x-tenant".into(), value: ValueMatch::Prefix("beta-".into()) },
                        HeaderMatch { name: "cookie".into(), value: ValueMatch::Present(false) },
                    ],
                    path: Some(PathMatch::Exact("/".into())),
                    traffic: vec![(100, target("b"))],
                },
            ],
        };
        RoutingTable::new(vec![route]).expect("a valid table")
    })
}

fuzz_target!(|data: &[u8]| {
    // Up to four parts split by NUL: Host header bytes, request target, tag header bytes, then
    // values for the headers the rules look at, split by newline (each may repeat).
    let mut parts = data.splitn(4, |b| *b == 0);
    let host = parts.next().unwrap_or_default();
    let uri = parts.next().unwrap_or_default();
    let tag = parts.next();
    let values = parts.next().unwrap_or_default();
    let mut req = http::Request::builder();
    if let Ok(uri) = std::str::from_utf8(uri).ok().and_then(|u| u.parse::<http::Uri>().ok()).ok_or(()) {
        req = req.uri(uri);
    }
    if let Ok(value) = http::HeaderValue::from_bytes(host) {
        req = req.header(http::header::HOST, value);
    }
    if let Some(Ok(value)) = tag.map(http::HeaderValue::from_bytes) {
        req = req.header("knative-serving-tag", value);
    }
    let names = ["user-agent", "x-version", "x-tenant", "cookie"];
    for (i, value) in values.split(|b| *b == b'\n').enumerate() {
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            req = req.header(names[i % names.len()], value);
        }
    }
    if let Ok(req) = req.body(()) {
        let _ = table().resolve(&req);
    }
});
