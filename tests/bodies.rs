//! Request bodies of every size reach the sample app through the router and are answered:
//! 0 B to 10 MiB, over HTTP/1.1 with keep-alive and without, and over h2c. (The sample app
//! used to answer without reading the body and close, so the kernel reset the connection
//! under the router's write and clients got 502 for a good share of large POSTs.) An app that
//! does answer early (the sample's `/early`, a 413) has that answer relayed to every client.

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

const EARLY: &str = "request body too large; not reading it\n";

fn post(path: &str, body: Bytes, close: bool) -> Request<Full<Bytes>> {
    let mut req = Request::post(path).header("host", HOST).body(Full::new(body)).expect("request");
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

/// Every size, three times each, to `path`: over one HTTP/1.1 keep-alive connection (a new one
/// only after the router said `Connection: close`), over a new connection per request with
/// `Connection: close`, and as concurrent streams on one h2c connection. Each answer comes
/// with its size and a label.
async fn every_way(router: &str, path: &str) -> Vec<(usize, &'static str, (StatusCode, String))> {
    let payload = |n: usize| Bytes::from((0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let mut answers = Vec::new();
    let h1 = async || {
        let stream = TcpStream::connect(router).await.expect("connect");
        let (h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("h1");
        (h1, tokio::spawn(conn))
    };

    let (mut keep, mut conn) = h1().await;
    let mut told_close = false;
    for &n in SIZES {
        for _ in 0..3 {
            assert_eq!(keep.ready().await.is_ok(), !told_close, "{n} bytes: the connection is open unless told");
            if told_close {
                let _ = conn.await;
                (keep, conn) = h1().await;
            }
            let res = keep.send_request(post(path, payload(n), false)).await.expect("response");
            told_close = res.headers().get("connection").is_some_and(|v| v == "close");
            answers.push((n, "keep-alive", read(res).await));
        }
    }
    drop(keep);
    let _ = conn.await;

    for &n in SIZES {
        for _ in 0..3 {
            let (mut h1, conn) = h1().await;
            answers.push((
                n,
                "connection close",
                read(h1.send_request(post(path, payload(n), true)).await.expect("response")).await,
            ));
            drop(h1);
            let _ = conn.await;
        }
    }

    let stream = TcpStream::connect(router).await.expect("connect");
    let (h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.expect("h2c");
    let conn = tokio::spawn(conn);
    let mut streams = Vec::new();
    for &n in SIZES {
        for _ in 0..3 {
            let mut h2 = h2.clone();
            let mut req = post(path, payload(n), false);
            *req.uri_mut() = format!("http://{HOST}{path}").parse().expect("uri");
            streams.push(tokio::spawn(async move {
                h2.ready().await.expect("h2 ready");
                (n, "h2c", read(h2.send_request(req).await.expect("response")).await)
            }));
        }
    }
    for stream in streams {
        answers.push(stream.await.expect("stream task"));
    }
    drop(h2);
    conn.abort();
    answers
}

async fn serving() -> (Sluice, String) {
    let s = Sluice::start(BIN).expect("start sluice");
    let router = s.http.clone().expect("router");
    apply(BIN, &s, &sample(ROOT, "helloworld-go.service.yaml", "").expect("sample")).expect("apply");
    Traffic::new(&router).wait_for(HOST, WAIT, |b| b == ANSWER).await.expect("served");
    (s, router)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_from_empty_to_ten_mib_are_answered_over_http1_and_h2c() {
    let (_s, router) = serving().await;
    let answers = every_way(&router, "/").await;
    assert_eq!(answers.len(), SIZES.len() * 3 * 3);
    for (n, way, got) in answers {
        assert_eq!(got, (StatusCode::OK, ANSWER.to_string()), "{n} bytes, {way}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_answering_before_it_reads_the_body_has_its_answer_relayed_not_502() {
    let (_s, router) = serving().await;
    let answers = every_way(&router, "/early").await;
    assert_eq!(answers.len(), SIZES.len() * 3 * 3);
    for (n, way, got) in answers {
        assert_eq!(got, (StatusCode::PAYLOAD_TOO_LARGE, EARLY.to_string()), "{n} bytes, {way}");
    }
}
