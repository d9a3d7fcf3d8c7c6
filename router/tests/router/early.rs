//! Request bodies from 0 to 10 MiB, over HTTP/1.1 (keep-alive and not) and h2c: an instance
//! that reads its body answers every request, and one that answers early (413 after the head,
//! then closes without reading the body) has its answer relayed to every client, not a 502.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::Request;

use crate::support::*;

const SIZES: [usize; 5] = [0, 1024, 64 * 1024, 1024 * 1024, 10 * 1024 * 1024];
const ROUNDS: usize = 3;
const HOST: &str = "hello.default.localhost";
/// Generous bound on a run that could otherwise hang.
const HANG: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// One HTTP/1.1 connection, reused while the router keeps it open.
    KeepAlive,
    /// A new HTTP/1.1 connection per request, with `Connection: close`.
    Close,
    /// Concurrent streams on one h2c connection.
    H2c,
}

const MODES: [Mode; 3] = [Mode::KeepAlive, Mode::Close, Mode::H2c];

fn payload() -> Bytes {
    Bytes::from((0..SIZES[SIZES.len() - 1]).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
}

fn post(body: Bytes, mode: Mode) -> Request<TestBody> {
    let mut req = Request::post("/upload").header("host", HOST);
    if mode == Mode::Close {
        req = req.header("connection", "close");
    }
    if mode == Mode::H2c {
        req = req.uri(format!("http://{HOST}/upload"));
    }
    req.body(full(body)).expect("request")
}

/// Sends every size `ROUNDS` times in `mode`; returns each size with its reply, and how many
/// HTTP/1.1 connections the keep-alive client needed.
async fn run(proxy: &Proxy, mode: Mode) -> (Vec<(usize, Reply)>, usize) {
    let payload = payload();
    let mut replies = Vec::new();
    match mode {
        Mode::KeepAlive => {
            let mut client = H1::connect(proxy.addr).await;
            let mut connections = 1;
            let mut said_close = false;
            for n in SIZES {
                for _ in 0..ROUNDS {
                    // The router closes a connection only after saying so: otherwise a client
                    // could send its next request into a closing connection.
                    assert_eq!(client.ready().await, !said_close, "{n} bytes: connection open unless told");
                    if said_close {
                        client = H1::connect(proxy.addr).await;
                        connections += 1;
                    }
                    let res = client.try_send(post(payload.slice(..n), mode)).await;
                    let res = res.unwrap_or_else(|e| panic!("{n} bytes over keep-alive: {e}"));
                    let reply = Reply::read(res).await;
                    said_close = reply.headers.get("connection").is_some_and(|v| v == "close");
                    replies.push((n, reply));
                }
            }
            (replies, connections)
        }
        Mode::Close => {
            for n in SIZES {
                for _ in 0..ROUNDS {
                    let mut client = H1::connect(proxy.addr).await;
                    let res = client.try_send(post(payload.slice(..n), mode)).await;
                    let res = res.unwrap_or_else(|e| panic!("{n} bytes with connection close: {e}"));
                    replies.push((n, Reply::read(res).await));
                }
            }
            (replies, SIZES.len() * ROUNDS)
        }
        Mode::H2c => {
            let client = H2::connect(proxy.addr).await;
            let mut streams = Vec::new();
            for n in SIZES {
                for _ in 0..ROUNDS {
                    let mut sender = client.sender.clone();
                    let req = post(payload.slice(..n), mode);
                    streams.push(tokio::spawn(async move {
                        sender.ready().await.expect("h2c connection ready");
                        let res = sender.send_request(req).await;
                        let res = res.unwrap_or_else(|e| panic!("{n} bytes over h2c: {e}"));
                        (n, Reply::read(res).await)
                    }));
                }
            }
            for stream in streams {
                replies.push(stream.await.expect("h2c stream task"));
            }
            (replies, 1)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_reading_its_body_answers_every_size_in_every_mode() {
    let backend = counter("counter").await;
    let proxy = Proxy::start(hello(&revision("hello-00001", &[backend.addr]))).await;
    for mode in MODES {
        let (replies, connections) = tokio::time::timeout(HANG, run(&proxy, mode)).await.expect("no hang");
        assert_eq!(replies.len(), SIZES.len() * ROUNDS);
        for (n, reply) in replies {
            assert_eq!((reply.status.as_u16(), reply.text()), (200, format!("received {n}").as_str()), "{mode:?}");
        }
        if mode == Mode::KeepAlive {
            assert_eq!(connections, 1, "every request on one keep-alive connection");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_answer_reaches_the_client_for_every_size_in_every_mode() {
    let (addr, heads, _task) = early_answerer().await;
    let proxy = Proxy::start(hello(&revision("hello-00001", &[addr]))).await;
    let mut sent = 0;
    for mode in MODES {
        let (replies, _) = tokio::time::timeout(HANG, run(&proxy, mode)).await.expect("no hang");
        sent += replies.len();
        for (n, reply) in replies {
            assert_eq!(
                (reply.status.as_u16(), reply.text()),
                (413, EARLY_ANSWER),
                "{n} bytes, {mode:?}: the instance's answer, not the router's"
            );
        }
    }
    assert_eq!(heads.load(Ordering::SeqCst), sent, "each request reached the instance once");
}

#[tokio::test]
async fn an_instance_closing_under_a_large_body_without_answering_gets_502() {
    let (addr, _task) = head_then_hang_up().await;
    let proxy = Proxy::start(hello(&revision("hello-00001", &[addr]))).await;
    for mode in [Mode::KeepAlive, Mode::H2c] {
        let req = post(payload().slice(..4 * 1024 * 1024), mode);
        let res = match mode {
            Mode::H2c => H2::connect(proxy.addr).await.send(req).await,
            _ => H1::connect(proxy.addr).await.send(req).await,
        };
        let reply = Reply::read(res).await;
        assert_eq!(reply.status.as_u16(), 502, "{mode:?}: {}", reply.text());
        assert_eq!(reply.text(), "revision default/hello-00001 closed the connection before responding\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_answer_from_an_h2c_instance_reaches_the_client_in_every_mode() {
    // hyper's h2 server resets the stream (NO_ERROR) once the answer is out and the body dropped.
    let backend = Backend::start("early-h2c", |_req| async {
        let mut res = http::Response::new(full(EARLY_ANSWER));
        *res.status_mut() = http::StatusCode::PAYLOAD_TOO_LARGE;
        res
    })
    .await;
    let rev = revision("hello-00001", &[backend.addr]);
    let mut t = target(&rev);
    t.protocol = sluice_router::table::Protocol::H2c;
    let proxy = Proxy::start(table(vec![route("hello", vec![(100, t)])])).await;
    for mode in MODES {
        let (replies, _) = tokio::time::timeout(HANG, run(&proxy, mode)).await.expect("no hang");
        for (n, reply) in replies {
            assert_eq!((reply.status.as_u16(), reply.text()), (413, EARLY_ANSWER), "{n} bytes, {mode:?}");
        }
    }
}
