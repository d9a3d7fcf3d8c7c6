//! Knative's three request timeouts: `timeoutSeconds` caps the whole exchange (waiting, head and
//! body), `responseStartTimeoutSeconds` the wait for the response head, `idleTimeoutSeconds`
//! the gap between parts of the body. A head not started in time gets 504; a body is cut (the
//! client sees the response end in an error) and the instance is released.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::support::*;

const HANG: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_response_start_timeout_shorter_than_the_timeout_bounds_the_head() {
    let silent = Backend::silent("silent").await;
    let rev = revision("hello-00001", &[silent.addr]);
    let mut t = target(&rev);
    (t.timeout, t.response_start) = (Duration::from_secs(30), Some(Duration::from_millis(200)));
    let proxy = Proxy::start(table(vec![route("hello", vec![(100, t)])])).await;
    let started = Instant::now();
    let reply = tokio::time::timeout(HANG, fetch(proxy.addr, "hello.default.localhost")).await.expect("answered");
    assert_eq!(reply.status.as_u16(), 504, "{}", reply.text());
    assert_eq!(reply.text(), "revision default/hello-00001 did not respond within 200ms\n");
    assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_response_start_timeout_not_shorter_than_the_timeout_changes_nothing() {
    let silent = Backend::silent("silent").await;
    let rev = revision("hello-00001", &[silent.addr]);
    let mut t = target(&rev);
    (t.timeout, t.response_start) = (Duration::from_millis(200), Some(Duration::from_secs(30)));
    let proxy = Proxy::start(table(vec![route("hello", vec![(100, t)])])).await;
    let reply = tokio::time::timeout(HANG, fetch(proxy.addr, "hello.default.localhost")).await.expect("answered");
    assert_eq!(reply.text(), "revision default/hello-00001 did not respond within 200ms\n");
}

#[tokio::test]
async fn the_timeout_cuts_a_body_still_streaming_and_releases_the_instance() {
    let (backend, tx) = fed_backend().await;
    let rev = revision("hello-00001", &[backend.addr]);
    let instance = rev.ready()[0].clone();
    let mut t = target(&rev);
    t.timeout = Duration::from_millis(400);
    let proxy = Proxy::start(table(vec![route("hello", vec![(100, t)])])).await;
    let mut client = H1::connect(proxy.addr).await;
    let started = Instant::now();
    let res = client.send(get("hello.default.localhost")).await;
    assert_eq!(res.status(), 200, "the head came in time");
    let mut body = res.into_body();
    tx.send(Bytes::from_static(b"part")).await.expect("feed");
    assert_eq!(body.frame().await.expect("frame").expect("ok").into_data().expect("data"), "part");
    // The instance keeps the body open, sending nothing more.
    let end = tokio::time::timeout(HANG, body.frame()).await.expect("cut, not left hanging");
    assert!(matches!(end, Some(Err(_))), "the response ends in an error, not as if complete: {end:?}");
    assert!(started.elapsed() >= Duration::from_millis(400), "cut at {:?}", started.elapsed());
    assert!(instance.wait_idle(HANG).await, "the instance is released");
    drop(tx);
}

#[tokio::test]
async fn the_idle_timeout_cuts_a_body_that_stalls_but_not_one_that_flows() {
    let (backend, tx) = fed_backend().await;
    let rev = revision("hello-00001", &[backend.addr]);
    let mut t = target(&rev);
    (t.timeout, t.idle) = (Duration::from_secs(60), Some(Duration::from_secs(1)));
    let proxy = Proxy::start(table(vec![route("hello", vec![(100, t)])])).await;
    let mut client = H1::connect(proxy.addr).await;
    let res = client.send(get("hello.default.localhost")).await;
    let mut body = res.into_body();
    // Parts 100 ms apart for 2.5 s: longer than the idle timeout in all, never idle that long.
    for i in 0..25 {
        tx.send(Bytes::from(format!("part-{i}"))).await.expect("feed");
        let frame = body.frame().await.expect("frame").expect("not cut while it flows");
        assert_eq!(frame.into_data().expect("data"), format!("part-{i}"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stalled = Instant::now();
    let end = tokio::time::timeout(HANG, body.frame()).await.expect("cut, not left hanging");
    assert!(matches!(end, Some(Err(_))), "{end:?}");
    assert!(stalled.elapsed() >= Duration::from_millis(850), "cut after {:?} idle", stalled.elapsed());
    drop(tx);
}
