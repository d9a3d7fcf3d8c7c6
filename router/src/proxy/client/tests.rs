//! The pool against real instances on loopback: a connection is reused once its response body
//! has ended, never while it streams, never after `Connection: close`; a pooled connection the
//! instance closed is passed over; idle connections expire; and at most the configured number
//! stay idle per instance.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

use super::*;
use crate::body::UpstreamBody;
use crate::endpoints::{Instance, RevisionEndpoints, RevisionKey};

/// An instance answering every request 200 "ok" (or with `Connection: close` for path
/// `/close`), counting the connections it accepted.
async fn instance() -> (Arc<Instance>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let svc = hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                let mut res = Response::new(Full::new(Bytes::from_static(b"ok")));
                if req.uri().path() == "/close" {
                    res.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(res)
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc));
        }
    });
    (Instance::new(next_id(), addr), accepted)
}

fn next_id() -> u64 {
    static NEXT: AtomicUsize = AtomicUsize::new(1_000_000);
    NEXT.fetch_add(1, Ordering::Relaxed) as u64
}

fn upstream(idle_timeout: Duration, max_idle: usize) -> Upstream {
    let config = RouterConfig {
        upstream_idle_timeout: idle_timeout,
        upstream_max_idle_per_instance: max_idle,
        ..RouterConfig::default()
    };
    Upstream::new(&config)
}

/// A GET of `path` with an empty body (a real one: the client side of a loopback exchange).
async fn request(path: &str) -> Request<UpstreamBody> {
    let (body, _) = UpstreamBody::new(
        empty_incoming().await,
        false,
        None,
        RevisionEndpoints::new(RevisionKey::new("default", "pool")),
        None,
    );
    let mut req = Request::new(body);
    *req.uri_mut() = path.parse().expect("path");
    req.headers_mut().insert(HOST, http::HeaderValue::from_static("pool.default"));
    req
}

/// An empty `Incoming` body, which only hyper can make: a server's request body.
async fn empty_incoming() -> hyper::body::Incoming {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = parking_lot::Mutex::new(Some(tx));
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            if let Some(tx) = tx.lock().take() {
                let _ = tx.send(req.into_body());
            }
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
        });
        let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
    });
    let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
    client.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.expect("write");
    let body = rx.await.expect("body");
    // Keep the client side open until the body is taken; its answer is not needed.
    tokio::spawn(async move {
        let mut sink = [0u8; 256];
        let _ = client.read(&mut sink).await;
    });
    body
}

/// Which of the two HTTP/1.1 clients a test drives: hyper's (requests with a body) or the
/// router's own (bodiless `GET` and `HEAD`).
#[derive(Clone, Copy, Debug)]
enum Via {
    Hyper,
    Raw,
}

/// A GET of `path` through `via`.
async fn get(upstream: &Upstream, instance: &Instance, path: &str, via: Via) -> Response<InstanceBody> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut deadline = HeadDeadline::at(deadline);
    let attempt = match via {
        Via::Hyper => upstream.send(Protocol::Http1, instance, request(path).await, &mut deadline).await,
        Via::Raw => {
            let path: http::uri::PathAndQuery = path.parse().expect("path");
            let mut headers = http::HeaderMap::new();
            headers.insert(HOST, http::HeaderValue::from_static("pool.default"));
            let req = RequestHead {
                method: &http::Method::GET,
                path: &path,
                fields: super::raw::Fields::Map { headers: &headers, forwarded: None },
                pass_head: false,
            };
            upstream.send_bodiless(instance, &req, &mut deadline).await
        }
    };
    match attempt {
        Attempt::Response(res) => res,
        Attempt::TimedOut => panic!("timed out"),
        Attempt::Failed(e) => panic!("failed: {e}"),
    }
}

/// Reads the body to its end, which hands the connection back, as the router's response body
/// does.
async fn finish(res: Response<InstanceBody>) {
    let body = res.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"ok");
}

/// The idle connections of `instance` in the pool `via` uses.
fn idle_count(upstream: &Upstream, instance: &Instance, via: Via) -> usize {
    match via {
        Via::Hyper => upstream.http1.idle_count(instance.id),
        Via::Raw => upstream.raw.idle_count(instance.id),
    }
}

/// Runs a pool test once with each client.
macro_rules! both_clients {
    ($($name:ident => $case:ident;)*) => {
        mod via {
            $(
                mod $name {
                    #[tokio::test]
                    async fn hyper() {
                        super::super::$case(super::super::Via::Hyper).await;
                    }
                    #[tokio::test]
                    async fn raw() {
                        super::super::$case(super::super::Via::Raw).await;
                    }
                }
            )*
        }
    };
}

both_clients! {
    a_connection_is_reused_once_its_body_has_ended => reused_once_ended;
    a_streaming_response_keeps_its_connection_to_itself => streaming_keeps_its_own;
    a_connection_that_said_close_or_was_abandoned_is_not_reused => close_or_abandoned_not_reused;
    a_pooled_connection_the_instance_closed_is_passed_over => closed_pooled_passed_over;
    idle_connections_expire_and_are_capped_per_instance => expire_and_cap;
}

async fn reused_once_ended(via: Via) {
    let (instance, accepted) = instance().await;
    let upstream = upstream(Duration::from_secs(90), 32);
    for _ in 0..5 {
        finish(get(&upstream, &instance, "/", via).await).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "five requests one after another, one connection");
    assert_eq!(idle_count(&upstream, &instance, via), 1);
}

async fn streaming_keeps_its_own(via: Via) {
    let (instance, accepted) = instance().await;
    let upstream = upstream(Duration::from_secs(90), 32);
    let first = get(&upstream, &instance, "/", via).await;
    // The first response is still unread: the second request needs a connection of its own.
    let second = get(&upstream, &instance, "/", via).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    finish(first).await;
    finish(second).await;
    assert_eq!(idle_count(&upstream, &instance, via), 2);
}

async fn close_or_abandoned_not_reused(via: Via) {
    let (instance, accepted) = instance().await;
    let upstream = upstream(Duration::from_secs(90), 32);
    finish(get(&upstream, &instance, "/close", via).await).await;
    let res = get(&upstream, &instance, "/", via).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "the closed connection was not used again");
    // Dropped before its body ended: the connection closes rather than going back.
    drop(res);
    finish(get(&upstream, &instance, "/", via).await).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

async fn closed_pooled_passed_over(via: Via) {
    // An instance that answers one request per connection and then closes it, without saying
    // so: the pooled sender goes stale, and the next request must still be answered.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    let close = Arc::new(tokio::sync::Notify::new());
    let closing = close.clone();
    let closed = Arc::new(tokio::sync::Notify::new());
    let telling = closed.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let closing = closing.clone();
            let telling = telling.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
                // Closes once told to, after the connection has gone back to the pool.
                closing.notified().await;
                drop(stream);
                telling.notify_one();
            });
        }
    });
    let instance = Instance::new(next_id(), addr);
    let upstream = upstream(Duration::from_secs(90), 32);
    finish(get(&upstream, &instance, "/", via).await).await;
    assert_eq!(idle_count(&upstream, &instance, via), 1);
    close.notify_one();
    // The instance has closed its end.
    closed.notified().await;
    if let Via::Hyper = via {
        // Wait until the connection task has seen the close (the pooled sender reports
        // closed); the router's own client learns it only when it next uses the connection.
        let deadline = Instant::now() + Duration::from_secs(10);
        while upstream.http1.state.lock().by_instance[&instance.id].iter().any(|e| !e.conn.is_closed()) {
            assert!(Instant::now() < deadline, "the closed connection was never noticed");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    finish(get(&upstream, &instance, "/", via).await).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

async fn expire_and_cap(via: Via) {
    let (instance, accepted) = instance().await;
    let upstream = upstream(Duration::from_millis(50), 2);
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(get(&upstream, &instance, "/", via).await);
    }
    for res in open {
        finish(res).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    assert_eq!(idle_count(&upstream, &instance, via), 2, "the third went over the cap");
    tokio::time::sleep(Duration::from_millis(60)).await;
    let res = get(&upstream, &instance, "/", via).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 4, "expired connections are not used");
    finish(res).await;
    // The sweep on that return dropped the expired ones of every instance.
    assert_eq!(idle_count(&upstream, &instance, via), 1);
}

#[tokio::test]
async fn an_instance_that_refuses_connections_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let instance = Instance::new(next_id(), addr);
    let upstream = upstream(Duration::from_secs(90), 32);
    let deadline = Instant::now() + Duration::from_secs(10);
    match upstream.send(Protocol::Http1, &instance, request("/").await, &mut HeadDeadline::at(deadline)).await {
        Attempt::Failed(e) => assert!(e.is_connect(), "{e}"),
        _ => panic!("expected a connect error"),
    }
}

/// An h2c instance whose connections can all be cut at once (`cut`).
async fn h2c_instance() -> (Arc<Instance>, Arc<tokio::sync::Notify>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let cut = Arc::new(tokio::sync::Notify::new());
    let cutting = cut.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            });
            let conn = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc);
            let cutting = cutting.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = conn => {}
                    () = cutting.notified() => {}
                }
            });
        }
    });
    (Instance::new(next_id(), addr), cut)
}

#[tokio::test]
async fn closed_h2c_connections_are_forgotten_when_another_is_made() {
    let upstream = upstream(Duration::from_secs(90), 32);
    let deadline = || Instant::now() + Duration::from_secs(10);
    let (first, cut) = h2c_instance().await;
    let mut req = request("/").await;
    *req.uri_mut() = format!("http://{}/", first.addr).parse().expect("uri");
    match upstream.send(Protocol::H2c, &first, req, &mut HeadDeadline::at(deadline())).await {
        Attempt::Response(res) => assert_eq!(res.status(), 200),
        _ => panic!("expected an h2c response"),
    }
    // The instance goes away: its connection closes.
    cut.notify_waiters();
    let closed = Instant::now() + Duration::from_secs(10);
    while !upstream.h2c.senders.lock().get(&first.id).is_some_and(|s| s.is_closed()) {
        assert!(Instant::now() < closed, "the cut connection was never seen closed");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (second, _cut) = h2c_instance().await;
    let mut req = request("/").await;
    *req.uri_mut() = format!("http://{}/", second.addr).parse().expect("uri");
    assert!(matches!(
        upstream.send(Protocol::H2c, &second, req, &mut HeadDeadline::at(deadline())).await,
        Attempt::Response(..)
    ));
    let senders = upstream.h2c.senders.lock();
    assert_eq!(senders.keys().copied().collect::<Vec<_>>(), [second.id], "only the live connection is kept");
}
