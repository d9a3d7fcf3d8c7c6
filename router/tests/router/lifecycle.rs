//! Table swaps, connect retries and graceful shutdown.

use std::time::Duration;

use http::Request;
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test]
async fn a_request_in_flight_finishes_on_its_revision_after_a_table_swap() {
    let mut gate = Gate::new();
    let a = Backend::gated("a", gate.handle()).await;
    let b = Backend::echo("b").await;
    let rev_a = revision("hello-00001", &[a.addr]);
    let proxy = Proxy::start(hello(&rev_a)).await;

    let addr = proxy.addr;
    let first = tokio::spawn(async move { fetch(addr, "hello.default.localhost").await });
    gate.arrived().await;
    proxy.swap(hello(&revision("hello-00002", &[b.addr])));
    assert_eq!(fetch(proxy.addr, "hello.default.localhost").await.backend(), "b", "new requests use the new table");
    assert_eq!(rev_a.inflight(), 1, "the old request still holds its instance");

    gate.open();
    let first = first.await.expect("join");
    assert_eq!((first.status.as_u16(), first.backend()), (200, "a"));
    assert!(rev_a.ready()[0].wait_idle(Duration::from_secs(60)).await);
}

#[tokio::test]
async fn a_refused_connect_is_retried_on_another_instance_with_the_body() {
    let live = Backend::echo("live").await;
    let rev = revision("hello-00001", &[refused_addr().await, live.addr]);
    let proxy = Proxy::start(hello(&rev)).await;
    let mut client = H1::connect(proxy.addr).await;
    for i in 0..10 {
        let req =
            Request::post("/").header("host", "hello.default.localhost").body(full(format!("body {i}"))).expect("req");
        let reply = Reply::read(client.send(req).await).await;
        assert_eq!((reply.status.as_u16(), reply.backend()), (200, "live"), "{}", reply.text());
        assert_eq!(reply.json()["body"], format!("body {i}"));
    }
    assert!(rev.requests() > 10, "some requests went to the dead instance first and were retried");
    assert!(rev.ready()[1].wait_idle(Duration::from_secs(60)).await);
    assert_eq!(rev.inflight(), 0);
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish_then_stops_listening() {
    let mut gate = Gate::new();
    let a = Backend::gated("a", gate.handle()).await;
    let mut proxy = Proxy::start(hello(&revision("hello-00001", &[a.addr]))).await;
    let addr = proxy.addr;
    let slow = tokio::spawn(async move { fetch(addr, "hello.default.localhost").await });
    gate.arrived().await;

    proxy.shutdown.cancel();
    gate.open();
    let reply = slow.await.expect("join");
    assert_eq!((reply.status.as_u16(), reply.backend()), (200, "a"), "finished during the drain");
    proxy.task.take().expect("serving").await.expect("serve returns");
    assert!(TcpStream::connect(addr).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn worker_threads_serve_connections_in_turn_and_drain_on_shutdown() {
    let mut gate = Gate::new();
    let a = Backend::gated("a", gate.handle()).await;
    let rev = revision("hello-00001", &[a.addr]);
    let (mut proxy, workers) = Proxy::start_on_workers(hello(&rev), 2).await;
    let addr = proxy.addr;
    // Two connections, one per worker; each request waits at the backend until the gate opens.
    let first = tokio::spawn(async move { fetch(addr, "hello.default.localhost").await });
    gate.arrived().await;
    let second = tokio::spawn(async move { fetch(addr, "hello.default.localhost").await });
    gate.arrived().await;
    assert_eq!(rev.inflight(), 2);

    proxy.shutdown.cancel();
    gate.open();
    for reply in [first.await.expect("join"), second.await.expect("join")] {
        assert_eq!((reply.status.as_u16(), reply.backend()), (200, "a"), "finished during the drain");
    }
    proxy.task.take().expect("serving").await.expect("serve returns");
    assert!(TcpStream::connect(addr).await.is_err(), "no longer accepting");
    assert!(rev.ready()[0].wait_idle(Duration::from_secs(60)).await);
    // Dropping the workers ends their threads (joined here, off the test's runtime thread).
    tokio::task::spawn_blocking(move || drop(workers)).await.expect("workers end");
}

#[tokio::test]
async fn shutdown_closes_requests_still_running_at_the_drain_deadline() {
    let mut gate = Gate::new();
    let a = Backend::gated("a", gate.handle()).await;
    let mut proxy =
        Proxy::start_with(hello(&revision("hello-00001", &[a.addr])), config(), Duration::from_millis(100)).await;
    let mut client = H1::connect(proxy.addr).await;
    let stuck = tokio::spawn(async move { client.try_send(get("hello.default.localhost")).await.map(|r| r.status()) });
    gate.arrived().await;

    proxy.shutdown.cancel();
    proxy.task.take().expect("serving").await.expect("serve returns although the request never finished");
    assert!(stuck.await.expect("join").is_err(), "the stuck request's connection was closed");
}
