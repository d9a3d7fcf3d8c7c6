//! Every failure is a response with a one-line plain-text reason.

use std::sync::Arc;
use std::time::Duration;

use http::Request;
use sluice_router::RouterConfig;
use sluice_router::endpoints::{AdmissionSettings, Instance, RevisionEndpoints, RevisionKey};
use sluice_router::table::RoutingTable;

use crate::support::*;

fn assert_reason(reply: &Reply, status: u16, text: &str) {
    assert_eq!(reply.status.as_u16(), status, "body: {}", reply.text());
    assert_eq!(reply.text(), format!("{text}\n"));
    assert_eq!(reply.headers["content-type"], "text/plain; charset=utf-8");
}

#[tokio::test]
async fn an_unknown_host_gets_404_naming_it() {
    let proxy = Proxy::start(hello(&revision("hello-00001", &[]))).await;
    let reply = fetch(proxy.addr, "x.default.localhost").await;
    assert_reason(&reply, 404, r#"no route for host "x.default.localhost""#);
    assert!(reply.headers.get("retry-after").is_none());
}

#[tokio::test]
async fn a_request_without_a_host_gets_400() {
    let proxy = Proxy::start(hello(&revision("hello-00001", &[]))).await;
    let mut client = H1::connect(proxy.addr).await;
    let reply = Reply::read(client.send(Request::get("/").body(empty()).expect("request")).await).await;
    assert_reason(&reply, 400, "request names no host");
}

#[tokio::test]
async fn two_host_headers_get_400_and_reach_no_route() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let backend = Backend::echo("hello").await;
    let rev = revision("hello-00001", &[backend.addr]);
    let proxy = Proxy::start(hello(&rev)).await;
    for hosts in ["Host: hello.default\r\nHost: other.default", "Host: other.default\r\nHost: hello.default"] {
        let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.expect("connect");
        let request = format!("GET / HTTP/1.1\r\n{hosts}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        assert!(answer.ends_with("\r\n\r\nrequest has more than one Host header\n"), "{answer}");
    }
    assert_eq!(rev.requests(), 0, "nothing reached the revision");
}

/// `hello` with `revision` behind a route whose timeout is `timeout`.
fn hello_within(revision: &Arc<RevisionEndpoints>, timeout: Duration) -> RoutingTable {
    let mut target = target(revision);
    target.timeout = timeout;
    table(vec![route("hello", vec![(100, target)])])
}

#[tokio::test]
async fn a_revision_without_ready_instances_gets_504_once_its_timeout_ran_out_waiting() {
    let timeout = Duration::from_millis(300);
    let proxy = Proxy::start(hello_within(&revision("hello-00001", &[]), timeout)).await;
    let started = tokio::time::Instant::now();
    let reply = fetch(proxy.addr, "hello.default.localhost").await;
    assert_reason(
        &reply,
        504,
        "no instance of revision default/hello-00001 could take the request within its timeout of 300ms",
    );
    assert!(started.elapsed() >= timeout, "waited {:?}", started.elapsed());
    assert_eq!(reply.headers["retry-after"], "1");
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after_at_once() {
    let rev = RevisionEndpoints::with_admission(
        RevisionKey::new("default", "hello-00001"),
        AdmissionSettings { queue_depth: 1 },
        None,
    );
    let proxy = Proxy::start(hello(&rev)).await;
    let baseline = Arc::strong_count(&rev);
    let first = tokio::spawn(fetch(proxy.addr, "hello.default.localhost"));
    until_held(&rev, baseline).await;
    assert_eq!(rev.gate().waiting(), 1);
    let reply = fetch(proxy.addr, "hello.default.localhost").await;
    assert_reason(&reply, 503, "too many requests are waiting for revision default/hello-00001; retry later");
    assert_eq!(reply.headers["retry-after"], "1");
    // The one in the queue is served once an instance appears.
    let backend = Backend::echo("late").await;
    rev.add(Instance::new(9_000_002, backend.addr));
    let reply = first.await.expect("task");
    assert_eq!((reply.status.as_u16(), reply.backend()), (200, "late"), "body: {}", reply.text());
}

/// Polls until the router holds a request for `rev`: a waiting request keeps its own reference
/// to the revision's endpoints (above the `baseline` the test and the table hold) while no
/// instance has been claimed.
async fn until_held(rev: &Arc<RevisionEndpoints>, baseline: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while Arc::strong_count(rev) <= baseline || rev.gate().waiting() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the request never started waiting");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(rev.requests(), 0, "held, not proxied: no instance was claimed");
}

#[tokio::test]
async fn a_request_is_held_until_an_instance_is_ready() {
    let backend = Backend::echo("late").await;
    let rev = revision("hello-00001", &[]);
    let proxy = Proxy::start(hello(&rev)).await;
    let baseline = Arc::strong_count(&rev);
    let pending = tokio::spawn(fetch(proxy.addr, "hello.default.localhost"));
    until_held(&rev, baseline).await;
    assert!(!pending.is_finished(), "still pending when the instance appears");
    rev.add(Instance::new(9_000_001, backend.addr));
    let reply = tokio::time::timeout(Duration::from_secs(10), pending).await.expect("answered").expect("task");
    assert_eq!((reply.status.as_u16(), reply.backend()), (200, "late"), "body: {}", reply.text());
    assert_eq!(rev.requests(), 1, "proxied once, to the added instance");
}

#[tokio::test]
async fn a_held_request_keeps_the_target_its_split_picked_across_a_routing_edit() {
    let (blue_backend, green_backend) = (Backend::echo("blue").await, Backend::echo("green").await);
    let blue = revision("hello-00001", &[]);
    let green = revision("hello-00002", &[green_backend.addr]);
    let proxy = Proxy::start(hello(&blue)).await;
    let baseline = Arc::strong_count(&blue);
    let pending = tokio::spawn(fetch(proxy.addr, "hello.default.localhost"));
    until_held(&blue, baseline).await;
    proxy.swap(hello(&green));
    let fresh = fetch(proxy.addr, "hello.default.localhost").await;
    assert_eq!(fresh.backend(), "green", "new requests follow the edit");
    assert!(!pending.is_finished(), "the held one is not split again");
    blue.add(Instance::new(9_000_003, blue_backend.addr));
    let reply = tokio::time::timeout(Duration::from_secs(10), pending).await.expect("answered").expect("task");
    assert_eq!((reply.status.as_u16(), reply.backend()), (200, "blue"), "body: {}", reply.text());
}

#[tokio::test]
async fn a_client_that_gives_up_leaves_the_queue_at_once() {
    let rev = revision("hello-00001", &[]);
    let proxy = Proxy::start(hello(&rev)).await;
    let baseline = Arc::strong_count(&rev);
    let pending = tokio::spawn(fetch(proxy.addr, "hello.default.localhost"));
    until_held(&rev, baseline).await;
    pending.abort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while rev.gate().waiting() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "still queued after its client went away");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_route_without_traffic_gets_503() {
    let proxy = Proxy::start(table(vec![route("hello", vec![])])).await;
    let reply = fetch(proxy.addr, "hello.default.localhost").await;
    assert_reason(&reply, 503, "route default/hello has no traffic target");
    assert_eq!(reply.headers["retry-after"], "1");
}

#[tokio::test]
async fn a_refused_connection_gets_502_naming_the_revision() {
    let rev = revision("hello-00001", &[refused_addr().await]);
    let proxy = Proxy::start(hello(&rev)).await;
    let reply = fetch(proxy.addr, "hello.default.localhost").await;
    assert_reason(&reply, 502, "could not connect to revision default/hello-00001");
    assert_eq!(rev.inflight(), 0, "the claim was released");
}

#[tokio::test]
async fn an_instance_closing_before_responding_gets_502() {
    let (addr, _slammer) = slammer().await;
    let proxy = Proxy::start(hello(&revision("hello-00001", &[addr]))).await;
    let reply = fetch(proxy.addr, "hello.default.localhost").await;
    assert_reason(&reply, 502, "revision default/hello-00001 closed the connection before responding");
}

#[tokio::test]
async fn no_response_head_within_the_timeout_gets_504() {
    let silent = Backend::silent("silent").await;
    let rev = revision("hello-00001", &[silent.addr]);
    let mut t = target(&rev);
    t.timeout = Duration::from_millis(200);
    let proxy = Proxy::start(table(vec![route("hello", vec![(100, t)])])).await;
    let reply = fetch(proxy.addr, "hello.default.localhost").await;
    assert_reason(&reply, 504, "revision default/hello-00001 did not respond within 200ms");
}

fn with_headers(count: usize, value_len: usize) -> Request<TestBody> {
    let mut req = get("hello.default.localhost");
    let value = http::HeaderValue::from_str(&"v".repeat(value_len)).expect("value");
    for i in 0..count {
        let name = http::HeaderName::from_bytes(format!("x-h{i}").as_bytes()).expect("name");
        req.headers_mut().insert(name, value.clone());
    }
    req
}

#[tokio::test]
async fn too_many_headers_get_431_with_a_reason() {
    let backend = Backend::echo("a").await;
    // Below the backend's own limit of 100, which the added X-Forwarded-* headers count against.
    let config = RouterConfig { max_headers: 50, ..config() };
    let proxy =
        Proxy::start_with(hello(&revision("hello-00001", &[backend.addr])), config, Duration::from_secs(1)).await;
    let mut client = H1::connect(proxy.addr).await;
    let reply = Reply::read(client.send(with_headers(49, 1)).await).await;
    assert_eq!(reply.status, 200, "Host and 49 others are at the limit: {}", reply.text());
    let reply = Reply::read(client.send(with_headers(50, 1)).await).await;
    assert_reason(&reply, 431, "request has more than 50 headers");
}

#[tokio::test]
async fn more_than_100_headers_get_431_over_http1_and_h2() {
    let proxy = Proxy::start(hello(&revision("hello-00001", &[]))).await;
    let reply = Reply::read(H1::connect(proxy.addr).await.send(with_headers(100, 1)).await).await;
    assert_eq!(reply.status, 431, "hyper's own limit over HTTP/1");
    let mut req = with_headers(101, 1);
    *req.uri_mut() = "http://hello.default.localhost/".parse().expect("uri");
    req.headers_mut().remove("host");
    let reply = Reply::read(H2::connect(proxy.addr).await.send(req).await).await;
    assert_reason(&reply, 431, "request has more than 100 headers");
}

#[tokio::test]
async fn oversized_headers_get_431_with_a_reason_over_http1_and_h2() {
    let backend = Backend::echo("a").await;
    let proxy = Proxy::start(hello(&revision("hello-00001", &[backend.addr]))).await;
    let reply = Reply::read(H1::connect(proxy.addr).await.send(with_headers(1, 70 * 1024)).await).await;
    assert_reason(&reply, 431, "request headers exceed 65536 bytes");

    let mut h2 = H2::connect(proxy.addr).await;
    let mut req = with_headers(1, 70 * 1024);
    *req.uri_mut() = "http://hello.default.localhost/".parse().expect("uri");
    req.headers_mut().remove("host");
    let reply = Reply::read(h2.send(req).await).await;
    assert_reason(&reply, 431, "request headers exceed 65536 bytes");
}

#[tokio::test]
async fn headers_beyond_the_hard_limit_get_431_from_hyper() {
    let config = RouterConfig { max_header_bytes: 16 * 1024, ..config() };
    let proxy = Proxy::start_with(hello(&revision("hello-00001", &[])), config, Duration::from_secs(1)).await;
    let reply = Reply::read(H1::connect(proxy.addr).await.send(with_headers(1, 40 * 1024)).await).await;
    assert_eq!(reply.status, 431);
}

#[tokio::test]
async fn a_malformed_chunked_request_body_gets_400_not_502() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let backend = Backend::mirror("hello").await;
    let proxy = Proxy::start(hello(&revision("hello-00001", &[backend.addr]))).await;
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.expect("connect");
    let request =
        "POST /echo HTTP/1.1\r\nHost: hello.default\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n";
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer)).await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.ends_with("\r\n\r\nrequest body is malformed or incomplete\n"), "{answer}");
}

#[tokio::test]
async fn a_request_waiting_for_a_deleted_revision_is_routed_again() {
    let rev = revision("hello-00001", &[]);
    let proxy = Proxy::start(hello(&rev)).await;
    let baseline = Arc::strong_count(&rev);
    let pending = tokio::spawn(fetch(proxy.addr, "hello.default.localhost"));
    until_held(&rev, baseline).await;
    // The service is deleted: its route leaves the table and the revision's endpoints are
    // forgotten (which closes its gate).
    proxy.swap(table(vec![]));
    rev.gate().close();
    let reply = tokio::time::timeout(Duration::from_secs(5), pending).await.expect("promptly").expect("task");
    assert_reason(&reply, 404, r#"no route for host "hello.default.localhost""#);
}

#[tokio::test]
async fn a_request_waiting_on_a_host_that_leaves_the_table_gets_404() {
    let rev = revision("hello-00001", &[]);
    let proxy = Proxy::start(hello(&rev)).await;
    let baseline = Arc::strong_count(&rev);
    let pending = tokio::spawn(fetch(proxy.addr, "hello.default.localhost"));
    until_held(&rev, baseline).await;
    // The route is removed; the revision (not yet deleted) keeps its endpoints.
    proxy.swap(table(vec![]));
    let reply = tokio::time::timeout(Duration::from_secs(5), pending).await.expect("promptly").expect("task");
    assert_reason(&reply, 404, r#"no route for host "hello.default.localhost""#);
    assert_eq!(rev.gate().waiting(), 0, "it left the queue");
}
