//! Request bodies of every size reach the sample app through the router and are answered:
//! 0 B to 10 MiB, over HTTP/1.1 with keep-alive and without, and over h2c. (The sample app
//! used to answer without reading the body and close, so the kernel reset the connection
//! under the router's write and clients got 502 for a good share of large POSTs.)

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sluice_test_support::traffic::Traffic;
use sluice_test_support::{Sluice, apply, sample};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const WAIT: Duration = Duration::from_secs(60);
const HOST: &str = "helloworld-go.default.localhost";
const SIZES: &[usize] = &[0, 1, 1024, 64 * 1024, 1024 * 1024, 10 * 1024 * 1024];
const ANSWER: &str = "Hello Go Sample v1!\n";

fn post(body: Bytes, close: bool) -> Request<Full<Bytes>> {
    let mut req = Request::post("/").header("host", HOST).body(Full::new(body)).expect("request");
    if close {
        req.headers_mut().insert("connection", http::HeaderValue::from_static("close"));
    }
    req
}

async fn read(res: hyper::Response<hyper::body::Incoming>) -> (StatusCode, String) {
    let status = res.status();
    let body = res.into_body().collect().await.expect("response body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_from_empty_to_ten_mib_are_answered_over_http1_and_h2c() {
    let s = Sluice::start(BIN).expect("start sluice");
    let router = s.http.clone().expect("router");
    apply(BIN, &s, &sample(ROOT, "helloworld-go.service.yaml", "").expect("sample")).expect("apply");
    Traffic::new(&router).wait_for(HOST, WAIT, |b| b == ANSWER).await.expect("served");
    let payload = |n: usize| Bytes::from((0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>());

    // HTTP/1.1 keep-alive: every size, three times each, on one connection.
    let stream = TcpStream::connect(&router).await.expect("connect");
    let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("h1");
    let conn = tokio::spawn(conn);
    for &n in SIZES {
        for round in 0..3 {
            h1.ready().await.expect("keep-alive connection ready");
            let got = read(h1.send_request(post(payload(n), false)).await.expect("response")).await;
            assert_eq!(got, (StatusCode::OK, ANSWER.to_string()), "{n} bytes, keep-alive round {round}");
        }
    }
    drop(h1);
    let _ = conn.await;

    // HTTP/1.1, a new connection for every request, closed after it.
    for &n in SIZES {
        for round in 0..3 {
            let stream = TcpStream::connect(&router).await.expect("connect");
            let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("h1");
            let conn = tokio::spawn(conn);
            let got = read(h1.send_request(post(payload(n), true)).await.expect("response")).await;
            assert_eq!(got, (StatusCode::OK, ANSWER.to_string()), "{n} bytes, connection close round {round}");
            drop(h1);
            let _ = conn.await;
        }
    }

    // h2c: every size, three times each, as concurrent streams on one connection.
    let stream = TcpStream::connect(&router).await.expect("connect");
    let (h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.expect("h2c");
    let conn = tokio::spawn(conn);
    let mut streams = Vec::new();
    for &n in SIZES {
        for _ in 0..3 {
            let mut h2 = h2.clone();
            let req = {
                let mut req = post(payload(n), false);
                *req.uri_mut() = format!("http://{HOST}/").parse().expect("uri");
                req
            };
            streams.push(tokio::spawn(async move {
                h2.ready().await.expect("h2 ready");
                (n, read(h2.send_request(req).await.expect("response")).await)
            }));
        }
    }
    for stream in streams {
        let (n, got) = stream.await.expect("stream task");
        assert_eq!(got, (StatusCode::OK, ANSWER.to_string()), "{n} bytes over h2c");
    }
    drop(h2);
    conn.abort();
}
