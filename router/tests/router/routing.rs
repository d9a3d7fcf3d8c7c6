//! Host routing, tags and the weighted split.

use std::collections::HashMap;

use sluice_router::table::TagConfig;

use crate::support::*;

#[tokio::test]
async fn requests_reach_the_revision_of_their_host_whatever_its_case_or_port() {
    let (a, b) = (Backend::echo("a").await, Backend::echo("b").await);
    let t = table(vec![
        route("hello", vec![(100, target(&revision("hello-00001", &[a.addr])))]),
        route("world", vec![(100, target(&revision("world-00001", &[b.addr])))]),
    ]);
    let proxy = Proxy::start(t).await;
    let mut client = H1::connect(proxy.addr).await;
    for host in [
        "hello.default.localhost",
        "HELLO.Default.LocalHost",
        "hello.default.localhost:8080",
        "hello.default.localhost.",
        "hello.default",
        "hello.default.svc",
        "hello.default.svc.cluster.local:80",
    ] {
        let reply = client.get(host).await;
        assert_eq!((reply.status.as_u16(), reply.backend()), (200, "a"), "{host}");
    }
    let reply = client.get("world.default.localhost").await;
    assert_eq!(reply.backend(), "b");
}

#[tokio::test]
async fn a_tag_host_reaches_only_its_revision_even_at_zero_percent() {
    let (v1, v2) = (Backend::echo("v1").await, Backend::echo("v2").await);
    let rev2 = revision("hello-00002", &[v2.addr]);
    let mut config = route("hello", vec![(100, target(&revision("hello-00001", &[v1.addr]))), (0, target(&rev2))]);
    config.tags.push(TagConfig {
        tag: "canary".into(),
        hosts: vec!["canary-hello.default.localhost".into()],
        target: target(&rev2),
    });
    let proxy = Proxy::start(table(vec![config])).await;
    let mut client = H1::connect(proxy.addr).await;
    for _ in 0..50 {
        assert_eq!(client.get("canary-hello.default.localhost").await.backend(), "v2");
        assert_eq!(client.get("hello.default.localhost").await.backend(), "v1");
    }
}

#[tokio::test]
async fn the_knative_serving_tag_header_routes_only_when_enabled() {
    let (v1, v2) = (Backend::echo("v1").await, Backend::echo("v2").await);
    let rev2 = revision("hello-00002", &[v2.addr]);
    let mut config = route("hello", vec![(100, target(&revision("hello-00001", &[v1.addr])))]);
    config.tags.push(TagConfig {
        tag: "canary".into(),
        hosts: vec!["canary-hello.default.localhost".into()],
        target: target(&rev2),
    });
    let tagged = |tag: &str| {
        http::Request::get("/")
            .header("host", "hello.default.localhost")
            .header("knative-serving-tag", tag)
            .body(empty())
            .expect("request")
    };

    let proxy = Proxy::start(table(vec![config.clone()])).await;
    let mut client = H1::connect(proxy.addr).await;
    assert_eq!(Reply::read(client.send(tagged("canary")).await).await.backend(), "v1", "off: header ignored");

    config.tag_header_routing = true;
    proxy.swap(table(vec![config]));
    assert_eq!(Reply::read(client.send(tagged("canary")).await).await.backend(), "v2", "on: tag's revision");
    assert_eq!(Reply::read(client.send(tagged("nope")).await).await.backend(), "v1", "unknown tag: default split");
    assert_eq!(client.get("hello.default.localhost").await.backend(), "v1", "no header: default split");
}

const REQUESTS: u32 = 2000;

/// Sends 2,000 requests, one after another, to `default/hello` split `a_percent`/rest between
/// backends a and b and returns how many reached a. The route walks its own golden-ratio
/// sequence, so a run of consecutive requests lands within two requests of the declared share
/// (the README's promise).
async fn hits_on_a(a_percent: u32) -> u32 {
    let (a, b) = (Backend::echo("a").await, Backend::echo("b").await);
    let traffic = vec![
        (a_percent, target(&revision("hello-00001", &[a.addr]))),
        (100 - a_percent, target(&revision("hello-00002", &[b.addr]))),
    ];
    let proxy = Proxy::start(table(vec![route("hello", traffic)])).await;
    let mut client = H1::connect(proxy.addr).await;
    let mut counts: HashMap<String, u32> = HashMap::new();
    for _ in 0..REQUESTS {
        let reply = client.get("hello.default.localhost").await;
        assert_eq!(reply.status, 200);
        *counts.entry(reply.backend().to_string()).or_default() += 1;
    }
    assert_eq!(counts.values().sum::<u32>(), REQUESTS, "every answer came from a or b: {counts:?}");
    counts.get("a").copied().unwrap_or(0)
}

fn assert_within_two_requests(a_percent: u32, hits: u32) {
    let want = REQUESTS * a_percent / 100;
    assert!(hits.abs_diff(want) <= 2, "a got {hits} of {REQUESTS} (want {want} ±2)");
}

#[tokio::test]
async fn a_50_50_split_lands_within_two_requests() {
    assert_within_two_requests(50, hits_on_a(50).await);
}

#[tokio::test]
async fn a_90_10_split_lands_within_two_requests() {
    assert_within_two_requests(90, hits_on_a(90).await);
}

#[tokio::test]
async fn a_100_0_split_sends_every_request_to_the_full_revision() {
    assert_eq!(hits_on_a(100).await, REQUESTS);
}

#[tokio::test]
async fn a_0_100_split_never_reaches_the_zero_percent_revision() {
    assert_eq!(hits_on_a(0).await, 0);
}
