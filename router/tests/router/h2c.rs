//! h2c with prior knowledge, from the client and to the instance.

use http::Request;
use sluice_router::table::Protocol;

use crate::support::*;

#[tokio::test]
async fn an_h2c_client_reaches_an_http1_instance_with_its_authority_as_host() {
    let backend = Backend::echo("a").await;
    let proxy = Proxy::start(hello(&revision("hello-00001", &[backend.addr]))).await;
    let mut client = H2::connect(proxy.addr).await;
    for i in 0..3 {
        let req =
            Request::post("http://hello.default.localhost/h2?i=1").body(full(format!("body {i}"))).expect("request");
        let res = client.send(req).await;
        assert_eq!(res.version(), http::Version::HTTP_2);
        let reply = Reply::read(res).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let seen = reply.json();
        assert_eq!(seen["version"], "HTTP/1.1");
        assert_eq!(seen["headers"]["host"][0], "hello.default.localhost");
        assert_eq!(seen["headers"]["x-forwarded-host"][0], "hello.default.localhost");
        assert_eq!(seen["path"], "/h2?i=1");
        assert_eq!(seen["body"], format!("body {i}"));
    }
}

#[tokio::test]
async fn an_h2c_target_is_spoken_to_over_http2() {
    let backend = Backend::echo("a").await;
    let rev = revision("hello-00001", &[backend.addr]);
    let mut t = target(&rev);
    t.protocol = Protocol::H2c;
    let proxy = Proxy::start(table(vec![route("hello", vec![(100, t)])])).await;
    let mut client = H1::connect(proxy.addr).await;
    for _ in 0..3 {
        let reply = client.get("hello.default.localhost").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json()["version"], "HTTP/2.0");
    }
}

#[tokio::test]
async fn h2c_errors_are_one_line_reasons_too() {
    let proxy = Proxy::start(hello(&revision("hello-00001", &[]))).await;
    let mut client = H2::connect(proxy.addr).await;
    let reply =
        Reply::read(client.send(Request::get("http://nope.default.localhost/").body(empty()).expect("req")).await)
            .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.text(), "no route for host \"nope.default.localhost\"\n");
}
