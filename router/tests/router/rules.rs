//! Header and path rules over real sockets: each kind of match, rule order, how rules compose
//! with tags and the `Knative-Serving-Tag` header, a rule's own split, and rule changes under
//! load.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http::{HeaderValue, Request};
use sluice_router::table::{HeaderMatch, PathMatch, RouteConfig, RuleConfig, TagConfig, Target, ValueMatch};
use tokio::task::JoinSet;

use crate::support::*;

const HOST: &str = "hello.default.localhost";

fn header(name: &str, value: ValueMatch) -> HeaderMatch {
    HeaderMatch { name: name.into(), value }
}

fn rule(headers: Vec<HeaderMatch>, path: Option<PathMatch>, to: &Target) -> RuleConfig {
    RuleConfig { name: None, headers, path, traffic: vec![(100, to.clone())] }
}

/// Request headers as (name, raw value bytes), repeats kept.
type Headers<'a> = &'a [(&'a str, &'a [u8])];

/// A request for `path` on the default host carrying `headers`.
fn request(path: &str, headers: Headers<'_>) -> Request<TestBody> {
    let mut req = Request::get(path).header("host", HOST);
    for (name, value) in headers {
        req = req.header(*name, HeaderValue::from_bytes(value).expect("header value"));
    }
    req.body(empty()).expect("request")
}

/// Echo backends named `names` and a target for each, by name.
async fn backends(names: &[&'static str]) -> (Vec<Backend>, HashMap<&'static str, Target>) {
    let mut servers = Vec::new();
    let mut targets = HashMap::new();
    for name in names {
        let server = Backend::echo(name).await;
        targets.insert(*name, target(&revision(&format!("hello-{name}"), &[server.addr])));
        servers.push(server);
    }
    (servers, targets)
}

/// `default/hello`: its default split all to `t["default"]`, and `rules`.
fn hello_with(t: &HashMap<&str, Target>, rules: Vec<RuleConfig>) -> RouteConfig {
    let mut config = route("hello", vec![(100, t["default"].clone())]);
    config.rules = rules;
    config
}

/// Sends `req` and returns which backend answered, checking it answered 200.
async fn answered(client: &mut H1, req: Request<TestBody>) -> String {
    let reply = Reply::read(client.send(req).await).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.backend().to_string()
}

#[tokio::test]
async fn exact_prefix_regex_present_and_absent_headers_pick_their_rules_revision() {
    let (_servers, t) = backends(&["default", "exact", "prefix", "iphone", "debug", "anonymous"]).await;
    let rules = vec![
        rule(vec![header("x-version", ValueMatch::Exact("v2".into()))], None, &t["exact"]),
        rule(vec![header("x-tenant", ValueMatch::Prefix("beta-".into()))], None, &t["prefix"]),
        rule(vec![header("user-agent", ValueMatch::Regex("^(.*?;)?(iPhone)(;.*)?$".into()))], None, &t["iphone"]),
        rule(vec![header("X-Debug", ValueMatch::Present(true))], None, &t["debug"]),
        rule(vec![header("cookie", ValueMatch::Present(false))], None, &t["anonymous"]),
    ];
    let proxy = Proxy::start(table(vec![hello_with(&t, rules)])).await;
    let mut client = H1::connect(proxy.addr).await;
    let cookie: (&str, &[u8]) = ("cookie", b"session=1");
    let cases: [(Headers<'_>, &str); 9] = [
        (&[cookie, ("x-version", b"v2")], "exact"),
        (&[cookie, ("x-version", b"v22")], "default"),
        (&[cookie, ("x-tenant", b"beta-acme")], "prefix"),
        (&[cookie, ("x-tenant", b"gamma-beta-")], "default"),
        (&[cookie, ("user-agent", b"Mozilla/5.0;iPhone;CPU OS 17")], "iphone"),
        (&[cookie, ("user-agent", b"Mozilla/5.0 (Linux; Android 14)")], "default"),
        (&[cookie, ("x-debug", b"")], "debug"),
        (&[], "anonymous"),
        (&[cookie], "default"),
    ];
    for (headers, want) in cases {
        assert_eq!(answered(&mut client, request("/", headers)).await, want, "{headers:?}");
    }

    // The same over h2c, where header names arrive lowercased and the host as :authority.
    let mut h2 = H2::connect(proxy.addr).await;
    let req = Request::get(format!("http://{HOST}/"))
        .header("user-agent", "Mozilla/5.0;iPhone")
        .header("cookie", "a=1")
        .body(empty())
        .expect("request");
    assert_eq!(Reply::read(h2.send(req).await).await.backend(), "iphone");
}

#[tokio::test]
async fn a_header_sent_several_times_matches_on_any_value_even_one_that_is_not_utf8() {
    let (_servers, t) = backends(&["default", "flag", "latin1"]).await;
    let rules = vec![
        rule(vec![header("x-flag", ValueMatch::Exact("on".into()))], None, &t["flag"]),
        rule(vec![header("x-name", ValueMatch::Regex(r"caf(?-u:\xE9)".into()))], None, &t["latin1"]),
    ];
    let proxy = Proxy::start(table(vec![hello_with(&t, rules)])).await;
    let mut client = H1::connect(proxy.addr).await;
    assert_eq!(answered(&mut client, request("/", &[("x-flag", b"off"), ("x-flag", b"on")])).await, "flag");
    assert_eq!(answered(&mut client, request("/", &[("x-flag", b"off"), ("x-flag", b"no")])).await, "default");
    assert_eq!(answered(&mut client, request("/", &[("x-name", b"cafe"), ("x-name", b"caf\xe9")])).await, "latin1");
    assert_eq!(answered(&mut client, request("/", &[("x-name", b"caf\xe9\xe9")])).await, "default");
}

#[tokio::test]
async fn path_rules_match_exactly_or_by_prefix_whatever_the_query() {
    let (_servers, t) = backends(&["default", "health", "api"]).await;
    let rules = vec![
        rule(vec![], Some(PathMatch::Exact("/healthz".into())), &t["health"]),
        rule(vec![], Some(PathMatch::Prefix("/api".into())), &t["api"]),
    ];
    let proxy = Proxy::start(table(vec![hello_with(&t, rules)])).await;
    let mut client = H1::connect(proxy.addr).await;
    for (path, want) in [
        ("/healthz", "health"),
        ("/healthz?full=1", "health"),
        ("/healthz/x", "default"),
        ("/api", "api"),
        ("/api/v1/items?page=2", "api"),
        ("/apiary", "api"),
        ("/v1/api", "default"),
        ("/", "default"),
    ] {
        assert_eq!(answered(&mut client, request(path, &[])).await, want, "{path}");
    }
}

#[tokio::test]
async fn rules_are_tried_in_order_and_the_first_that_holds_wins() {
    let (_servers, t) = backends(&["default", "first", "second"]).await;
    let both = header("x-debug", ValueMatch::Present(true));
    let rules = vec![
        rule(vec![both.clone(), header("x-team", ValueMatch::Exact("a".into()))], None, &t["first"]),
        rule(vec![both], Some(PathMatch::Prefix("/".into())), &t["second"]),
    ];
    let proxy = Proxy::start(table(vec![hello_with(&t, rules.clone())])).await;
    let mut client = H1::connect(proxy.addr).await;
    let debug_a: Headers<'_> = &[("x-debug", b"1"), ("x-team", b"a")];
    assert_eq!(answered(&mut client, request("/", debug_a)).await, "first");
    assert_eq!(answered(&mut client, request("/", &[("x-debug", b"1")])).await, "second");

    let reversed = rules.into_iter().rev().collect();
    proxy.swap(table(vec![hello_with(&t, reversed)]));
    assert_eq!(answered(&mut client, request("/", debug_a)).await, "second", "now the broader rule is first");
}

#[tokio::test]
async fn the_tag_header_comes_before_rules_and_tag_hosts_bypass_them() {
    let (_servers, t) = backends(&["default", "ruled", "canary"]).await;
    let mut config = hello_with(&t, vec![rule(vec![header("x-debug", ValueMatch::Present(true))], None, &t["ruled"])]);
    config.tags.push(TagConfig {
        tag: "canary".into(),
        hosts: vec!["canary-hello.default.localhost".into()],
        target: t["canary"].clone(),
    });
    config.tag_header_routing = true;
    let proxy = Proxy::start(table(vec![config.clone()])).await;
    let mut client = H1::connect(proxy.addr).await;
    let tagged = |tag: &'static [u8]| request("/", &[("x-debug", b"1"), ("knative-serving-tag", tag)]);
    assert_eq!(answered(&mut client, tagged(b"canary")).await, "canary", "a known tag wins over the rule");
    assert_eq!(answered(&mut client, tagged(b"nope")).await, "ruled", "an unknown tag: the rules");
    assert_eq!(answered(&mut client, request("/", &[])).await, "default");
    let on_tag_host = Request::get("/")
        .header("host", "canary-hello.default.localhost")
        .header("x-debug", "1")
        .body(empty())
        .expect("request");
    assert_eq!(answered(&mut client, on_tag_host).await, "canary", "a tag host bypasses rules");

    config.tag_header_routing = false;
    proxy.swap(table(vec![config]));
    assert_eq!(answered(&mut client, tagged(b"canary")).await, "ruled", "tag header off: the rule");
}

#[tokio::test]
async fn a_rules_own_split_lands_within_its_percents() {
    let (_servers, t) = backends(&["default", "a", "b"]).await;
    let canary = RuleConfig {
        name: Some("canary".into()),
        headers: vec![header("x-canary", ValueMatch::Present(true))],
        path: None,
        traffic: vec![(30, t["a"].clone()), (70, t["b"].clone())],
    };
    let proxy = Proxy::start(table(vec![hello_with(&t, vec![canary])])).await;
    let mut client = H1::connect(proxy.addr).await;
    let mut counts: HashMap<String, u32> = HashMap::new();
    for i in 0..1000 {
        // Requests the rule does not take, in between, leave its sequence alone.
        if i % 4 == 0 {
            assert_eq!(answered(&mut client, request("/", &[])).await, "default");
        }
        *counts.entry(answered(&mut client, request("/", &[("x-canary", b"1")])).await).or_default() += 1;
    }
    // Any run of up to 1,000 requests through one sequence is within 3.5 of its share.
    assert!(counts["a"].abs_diff(300) <= 3, "{counts:?}");
    assert!(counts["b"].abs_diff(700) <= 3, "{counts:?}");
}

/// Version `i` of the rules (cycling): `x-canary: 1` goes to b by `exact`, to c by `regex`, or
/// by the default split when there is no rule.
fn canary_rules(t: &HashMap<&str, Target>, i: usize) -> Vec<RuleConfig> {
    let canary = header("x-canary", ValueMatch::Exact("1".into()));
    match i % 3 {
        0 => vec![rule(vec![canary], None, &t["b"])],
        1 => vec![rule(vec![header("x-canary", ValueMatch::Regex("[0-9]+".into()))], None, &t["c"])],
        _ => vec![],
    }
}

#[tokio::test]
async fn changing_rules_under_load_fails_no_request() {
    let (_servers, t) = backends(&["default", "b", "c"]).await;
    let proxy = Proxy::start(table(vec![hello_with(&t, canary_rules(&t, 0))])).await;
    let (stop, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let mut clients = JoinSet::new();
    for _ in 0..4 {
        let (addr, stop, done) = (proxy.addr, stop.clone(), done.clone());
        clients.spawn(async move {
            let mut client = H1::connect(addr).await;
            let mut seen: HashMap<String, usize> = HashMap::new();
            while !stop.load(Ordering::Relaxed) {
                let reply = Reply::read(client.send(request("/", &[("x-canary", b"1")])).await).await;
                assert_eq!(reply.status, 200, "{}", reply.text());
                *seen.entry(reply.backend().to_string()).or_default() += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            seen
        });
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for i in 1..=60 {
        // Wait for some requests under the current rules before changing them again.
        let before = done.load(Ordering::Relaxed);
        while done.load(Ordering::Relaxed) < before + 8 {
            assert!(tokio::time::Instant::now() < deadline, "clients stalled after {i} rebuilds");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let rebuilt = proxy.table.load().rebuild(vec![hello_with(&t, canary_rules(&t, i))]).expect("rebuilt");
        proxy.swap(rebuilt);
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen: HashMap<String, usize> = HashMap::new();
    while let Some(client) = clients.join_next().await {
        for (backend, n) in client.expect("client saw only 200s") {
            *seen.entry(backend).or_default() += n;
        }
    }
    for backend in ["default", "b", "c"] {
        assert!(seen.get(backend).copied().unwrap_or(0) > 0, "each rules version served requests: {seen:?}");
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
}
