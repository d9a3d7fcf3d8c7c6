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

#[tokio::test]
async fn a_bodiless_get_is_rewritten_as_a_post_is() {
    // A GET without a body goes on the router's own HTTP/1.1 client, which writes the
    // forwarded headers itself: the instance must see exactly what hyper's client sends.
    let backend = Backend::echo("a").await;
    let proxy = Proxy::start(hello(&revision("hello-00001", &[backend.addr]))).await;
    let req = Request::get("/items?page=2")
        .header("host", "Hello.Default.localhost:8080")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "1")
        .header("te", "trailers")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-for", "198.51.100.2")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "spoofed.example")
        .header("x-end-to-end", "kept")
        .body(empty())
        .expect("request");
    let reply = Reply::read(H1::connect(proxy.addr).await.send(req).await).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = reply.json();
    let headers = &seen["headers"];
    for gone in ["connection", "x-hop"] {
        assert!(headers.get(gone).is_none(), "{gone} reached the instance: {headers}");
    }
    assert_eq!(headers["te"][0], "trailers");
    assert_eq!(headers["x-end-to-end"][0], "kept");
    assert_eq!(headers["host"][0], "Hello.Default.localhost:8080");
    assert_eq!(headers["x-forwarded-for"].as_array().map(Vec::len), Some(1), "one joined line: {headers}");
    assert_eq!(headers["x-forwarded-for"][0], "203.0.113.7, 198.51.100.2, 127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"].as_array().map(Vec::len), Some(1), "{headers}");
    assert_eq!(headers["x-forwarded-proto"][0], "http", "what the client claimed is replaced");
    assert_eq!(headers["x-forwarded-host"][0], "Hello.Default.localhost:8080");
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["path"], "/items?page=2");
    assert_eq!(seen["body"], "");
}

#[tokio::test]
async fn a_head_response_keeps_its_length_and_the_connection_stays_in_step() {
    let backend = Backend::start("a", |_req| async { Response::new(full(vec![b'x'; 1234])) }).await;
    let proxy = Proxy::start(hello(&revision("hello-00001", &[backend.addr]))).await;
    let mut client = H1::connect(proxy.addr).await;
    for _ in 0..3 {
        let req = Request::head("/").header("host", "hello.default.localhost").body(empty()).expect("request");
        let reply = Reply::read(client.send(req).await).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.headers["content-length"], "1234");
        assert!(reply.body.is_empty());
        let reply = client.get("hello.default.localhost").await;
        assert_eq!(reply.body.len(), 1234, "a GET after the HEAD on the same connections");
    }
}

#[tokio::test]
async fn trailers_reach_http2_clients_and_are_left_out_for_http1_ones() {
    use http_body_util::BodyExt;
    let answer: &'static [u8] =
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: 5d41\r\n\r\n";
    let (addr, _task) = scripted_backend(answer).await;
    let proxy = Proxy::start(hello(&revision("hello-00001", &[addr]))).await;
    // HTTP/1.1, through both upstream clients (a bodiless GET, a POST), with and without
    // `TE: trailers`: the body arrives whole, the connection stays usable, no trailers.
    let mut client = H1::connect(proxy.addr).await;
    for (post, te) in [(false, true), (true, true), (false, false), (true, false)] {
        let mut req = Request::builder().method(if post { "POST" } else { "GET" }).uri("/");
        req = req.header("host", "hello.default.localhost");
        if te {
            req = req.header("te", "trailers");
        }
        let body = if post { full("x") } else { empty() };
        let res = client.send(req.body(body).expect("request")).await;
        assert_eq!(res.status(), 200);
        let collected = res.into_body().collect().await.expect("a whole body");
        assert!(collected.trailers().is_none());
        assert_eq!(collected.to_bytes(), "hello", "post={post} te={te}");
    }
    // HTTP/2 carries them.
    let mut h2 = H2::connect(proxy.addr).await;
    let req = Request::get("http://hello.default.localhost/").body(empty()).expect("request");
    let res = h2.send(req).await;
    assert_eq!(res.status(), 200);
    let collected = res.into_body().collect().await.expect("body");
    assert_eq!(collected.trailers().cloned().expect("trailers")["x-checksum"], "5d41");
    assert_eq!(collected.to_bytes(), "hello");
}
