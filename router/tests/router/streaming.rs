//! Bodies stream both ways without being held whole, and the instance stays claimed exactly as
//! long as the response body.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;

use crate::support::*;

/// Generous bound on a test that could otherwise hang if something buffered a whole body.
const HANG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_64_mib_body_streams_through_both_ways_intact() {
    const LEN: u64 = 64 * 1024 * 1024;
    let backend = Backend::mirror("mirror").await;
    let proxy = Proxy::start(hello(&revision("hello-00001", &[backend.addr]))).await;
    let mut client = H1::connect(proxy.addr).await;
    let req = Request::post("/upload")
        .header("host", "hello.default.localhost")
        .body(Generated::new(LEN, 42).boxed_unsync())
        .expect("request");
    let res = client.send(req).await;
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    let mut got = Digest::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            got.update(&data);
        }
    }
    assert_eq!(got, Digest::of_generated(LEN, 42).await);
}

#[tokio::test]
async fn chunks_flow_one_at_a_time_in_both_directions() {
    let backend = Backend::mirror("mirror").await;
    let proxy = Proxy::start(hello(&revision("hello-00001", &[backend.addr]))).await;
    let mut client = H1::connect(proxy.addr).await;
    let (tx, body) = Channel::pair();
    let req = Request::post("/").header("host", "hello.default.localhost").body(body).expect("request");
    tokio::time::timeout(HANG, async move {
        let res = client.send(req).await;
        let mut body = res.into_body();
        // Each chunk comes back before the next is sent: neither direction waits for the end.
        for i in 0..5 {
            let chunk = Bytes::from(format!("ping-{i}"));
            tx.send(chunk.clone()).await.expect("send chunk");
            let frame = body.frame().await.expect("a frame").expect("ok frame");
            assert_eq!(frame.into_data().expect("data"), chunk);
        }
        drop(tx);
        assert!(body.frame().await.is_none(), "the body ends when the upload ends");
    })
    .await
    .expect("no whole-body buffering");
}

#[tokio::test]
async fn the_instance_stays_claimed_until_the_response_body_ends() {
    let (backend, tx) = fed_backend().await;
    let rev = revision("hello-00001", &[backend.addr]);
    let instance = rev.ready()[0].clone();
    let proxy = Proxy::start(hello(&rev)).await;
    let mut client = H1::connect(proxy.addr).await;
    let res = client.send(get("hello.default.localhost")).await;
    assert_eq!((rev.inflight(), instance.inflight()), (1, 1), "claimed while the head is out");
    let mut body = res.into_body();
    tx.send(Bytes::from_static(b"part")).await.expect("feed");
    assert_eq!(body.frame().await.expect("frame").expect("ok").into_data().expect("data"), "part");
    assert_eq!(instance.inflight(), 1, "claimed while the body streams");
    drop(tx);
    assert!(body.frame().await.is_none());
    assert!(instance.wait_idle(HANG).await, "released once the body ended");
    assert_eq!((rev.inflight(), rev.requests()), (0, 1));
}

#[tokio::test]
async fn a_client_leaving_mid_body_releases_the_instance() {
    let (backend, tx) = fed_backend().await;
    let rev = revision("hello-00001", &[backend.addr]);
    let instance = rev.ready()[0].clone();
    let proxy = Proxy::start(hello(&rev)).await;
    let mut client = H1::connect(proxy.addr).await;
    let res = client.send(get("hello.default.localhost")).await;
    assert_eq!(instance.inflight(), 1);
    drop(res);
    drop(client);
    // The router notices the client is gone when a write fails; the backend notices when the
    // router drops the upstream connection. Feed chunks until the whole chain has let go.
    let fed = tokio::time::timeout(HANG, async { while tx.send(Bytes::from(vec![b'x'; 16 * 1024])).await.is_ok() {} });
    fed.await.expect("the chain tears down");
    assert!(instance.wait_idle(HANG).await, "released when the client left");
}
