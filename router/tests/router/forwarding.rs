//! What the instance sees and what the client gets back: hop-by-hop headers removed both
//! ways, `X-Forwarded-*` added, `Host` and the target kept.

use http::{Request, Response};

use crate::support::*;

#[tokio::test]
async fn hop_by_hop_headers_are_removed_and_forwarded_headers_added() {
    let backend = Backend::echo("a").await;
    let proxy = Proxy::start(hello(&revision("hello-00001", &[backend.addr]))).await;
    let req = Request::post("/items?page=2")
        .header("host", "Hello.Default.localhost:8080")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "1")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic eDp5")
        .header("proxy-connection", "keep-alive")
        .header("te", "trailers")
        .header("trailer", "x-checksum")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-end-to-end", "kept")
        .body(full("payload"))
        .expect("request");
    let reply = Reply::read(H1::connect(proxy.addr).await.send(req).await).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = reply.json();
    let headers = &seen["headers"];
    for gone in ["connection", "x-hop", "keep-alive", "proxy-authorization", "proxy-connection", "trailer", "upgrade"] {
        assert!(headers.get(gone).is_none(), "{gone} reached the instance: {headers}");
    }
    assert_eq!(headers["te"][0], "trailers");
    assert_eq!(headers["x-end-to-end"][0], "kept");
    assert_eq!(headers["host"][0], "Hello.Default.localhost:8080", "the original Host");
    assert_eq!(headers["x-forwarded-for"][0], "203.0.113.7, 127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"][0], "http");
    assert_eq!(headers["x-forwarded-host"][0], "Hello.Default.localhost:8080");
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/items?page=2");
    assert_eq!(seen["body"], "payload");
}

#[tokio::test]
async fn hop_by_hop_response_headers_do_not_reach_the_client() {
    let backend = Backend::start("a", |_req| async {
        Response::builder()
            .header("connection", "x-resp-hop")
            .header("x-resp-hop", "1")
            .header("keep-alive", "timeout=5")
            .header("proxy-authenticate", "Basic")
            .header("x-end-to-end", "kept")
            .body(full("ok"))
            .expect("response")
    })
    .await;
    let proxy = Proxy::start(hello(&revision("hello-00001", &[backend.addr]))).await;
    let reply = fetch(proxy.addr, "hello.default.localhost").await;
    assert_eq!((reply.status.as_u16(), reply.text()), (200, "ok"));
    for gone in ["x-resp-hop", "keep-alive", "proxy-authenticate"] {
        assert!(reply.headers.get(gone).is_none(), "{gone} reached the client");
    }
    assert_eq!(reply.headers["x-end-to-end"], "kept");
}

#[tokio::test]
async fn upstream_statuses_pass_through() {
    let backend = Backend::start("a", |_req| async {
        Response::builder().status(418).body(full("short and stout")).expect("response")
    })
    .await;
    let proxy = Proxy::start(hello(&revision("hello-00001", &[backend.addr]))).await;
    let reply = fetch(proxy.addr, "hello.default.localhost").await;
    assert_eq!((reply.status.as_u16(), reply.text()), (418, "short and stout"));
}
