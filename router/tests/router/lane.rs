//! The fast lane (plain HTTP/1.1 `GET` and `HEAD` served without hyper's server), over raw
//! sockets: it answers as hyper's path does, byte for byte but for `Date`; it frames bodies
//! right; it serves pipelined requests in order; it hands what it does not take to hyper on
//! the same connection; and its deadlines hold however a head arrives.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use sluice_router::RouterConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// A response as read off the wire.
#[derive(Debug, PartialEq, Eq)]
struct Wire {
    status: u16,
    /// Field names lowercased, in the order sent; `date` left out (it differs by the second).
    fields: Vec<(String, String)>,
    /// The body, de-chunked.
    body: Vec<u8>,
    /// It was framed `chunked`.
    chunked: bool,
}

impl Wire {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A raw HTTP/1.1 client connection, keeping bytes read past one response for the next.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(proxy: &Proxy) -> Raw {
        Raw { stream: TcpStream::connect(proxy.addr).await.expect("connect"), buf: Vec::new() }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// More bytes, or false at the end of the stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
            .await
            .expect("the router answers within 10 s")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "the connection ended {} bytes short", n - self.buf.len());
        }
        self.buf.drain(..n).collect()
    }

    async fn line(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.take(end + 2).await;
                return String::from_utf8_lossy(&line[..end]).into_owned();
            }
            assert!(self.fill().await, "the connection ended inside a line");
        }
    }

    /// One response (to a `HEAD` when `head`).
    async fn response(&mut self, head: bool) -> Wire {
        let (status, fields, len) = loop {
            let mut fields = [httparse::EMPTY_HEADER; 64];
            let mut res = httparse::Response::new(&mut fields);
            if let httparse::Status::Complete(len) = res.parse(&self.buf).expect("a valid response head") {
                let status = res.code.expect("a status");
                let fields = res
                    .headers
                    .iter()
                    .map(|f| (f.name.to_ascii_lowercase(), String::from_utf8_lossy(f.value).into_owned()))
                    .collect::<Vec<_>>();
                break (status, fields, len);
            }
            assert!(self.fill().await, "the connection ended inside a response head");
        };
        self.buf.drain(..len);
        let length =
            fields.iter().find(|(n, _)| n == "content-length").map(|(_, v)| v.parse::<usize>().expect("a length"));
        let chunked = fields.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = if head || status == 204 || status == 304 {
            Vec::new()
        } else if chunked {
            let mut body = Vec::new();
            loop {
                let size = usize::from_str_radix(self.line().await.trim(), 16).expect("a chunk size");
                if size == 0 {
                    assert_eq!(self.line().await, "", "no trailers after the last chunk");
                    break body;
                }
                body.extend(self.take(size).await);
                assert_eq!(self.take(2).await, b"\r\n");
            }
        } else if let Some(n) = length {
            self.take(n).await
        } else {
            while self.fill().await {}
            std::mem::take(&mut self.buf)
        };
        let fields = fields.into_iter().filter(|(n, _)| n != "date").collect();
        Wire { status, fields, body, chunked }
    }

    /// True once the router has closed the connection (nothing more to read).
    async fn closed(&mut self) -> bool {
        !self.fill().await && self.buf.is_empty()
    }
}

/// A body of a few pieces, of no known length.
struct Pieces(Vec<&'static str>);

impl hyper::body::Body for Pieces {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BoxError>>> {
        std::task::Poll::Ready(self.0.pop().map(|s| Ok(hyper::body::Frame::data(Bytes::from(s)))))
    }
}

fn lane_config(fast_lane: bool) -> RouterConfig {
    // Random trace ids would differ between the two paths.
    RouterConfig { generate_traceparent: false, fast_lane, ..config() }
}

async fn proxy_with(backend: &Backend, fast_lane: bool) -> Proxy {
    let table = hello(&revision("hello-00001", &[backend.addr]));
    Proxy::start_with(table, lane_config(fast_lane), Duration::from_secs(5)).await
}

/// What a client sends, and what the two paths answer, compared field by field.
#[tokio::test]
async fn the_lane_answers_as_hyper_does() {
    let echo = Backend::echo("hello").await;
    let streamed = Backend::start("streamed", |_req| async {
        // No length known: framed `chunked` to the client.
        http::Response::new(Pieces(vec!["three", "two ", "one "]).boxed_unsync())
    })
    .await;
    let empty = Backend::start("empty", |_req| async {
        let mut res = http::Response::new(empty());
        *res.status_mut() = http::StatusCode::NO_CONTENT;
        res
    })
    .await;
    let requests: [(&str, bool); 8] = [
        ("GET /a/b?c=d HTTP/1.1\r\nHost: hello.default\r\nX-Custom: one\r\nX-Custom: two\r\n\r\n", false),
        ("HEAD / HTTP/1.1\r\nHost: hello.default\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: HELLO.default:80\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: hello.default\r\nConnection: close\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: hello.default\r\nX-Forwarded-For: 10.0.0.1\r\nTE: trailers\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: unknown.example\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: hello.default\r\nContent-Length: 0\r\n\r\n", false),
        ("POST / HTTP/1.1\r\nHost: hello.default\r\nContent-Length: 3\r\n\r\nabc", false),
    ];
    for backend in [&echo, &streamed, &empty] {
        let lane = proxy_with(backend, true).await;
        let hyper = proxy_with(backend, false).await;
        for (request, head) in requests {
            let mut answers = Vec::new();
            for proxy in [&lane, &hyper] {
                let mut raw = Raw::connect(proxy).await;
                raw.send(request.as_bytes()).await;
                answers.push(raw.response(head).await);
            }
            assert_eq!(answers[0], answers[1], "lane and hyper differ for {request:?}");
        }
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let echo = Backend::echo("hello").await;
    let proxy = proxy_with(&echo, true).await;
    let mut raw = Raw::connect(&proxy).await;
    raw.send(
        b"GET /1 HTTP/1.1\r\nHost: hello.default\r\n\r\n\
          HEAD /2 HTTP/1.1\r\nHost: hello.default\r\n\r\n\
          GET /3 HTTP/1.1\r\nHost: hello.default\r\n\r\n",
    )
    .await;
    assert_eq!(raw.response(false).await.json()["path"], "/1");
    let head = raw.response(true).await;
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert!(head.field("content-length").is_some(), "{head:?}");
    assert_eq!(raw.response(false).await.json()["path"], "/3");
}

#[tokio::test]
async fn requests_the_lane_does_not_take_go_to_hyper_on_the_same_connection() {
    let echo = Backend::echo("hello").await;
    for fast_lane in [true, false] {
        let proxy = proxy_with(&echo, fast_lane).await;
        let mut raw = Raw::connect(&proxy).await;
        one_connection_of_every_kind(&mut raw).await;
    }
}

/// Requests of every kind on one connection: each answered, in order.
async fn one_connection_of_every_kind(raw: &mut Raw) {
    let requests: [(&str, &str, &str); 5] = [
        ("GET /1 HTTP/1.1\r\nHost: hello.default\r\n\r\n", "GET", ""),
        ("POST /2 HTTP/1.1\r\nHost: hello.default\r\nContent-Length: 4\r\n\r\nbody", "POST", "body"),
        (
            "GET /3 HTTP/1.1\r\nHost: hello.default\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
            "GET",
            "hi",
        ),
        ("GET /4 HTTP/1.1\r\nHost: hello.default\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", "GET", ""),
        ("GET /5 HTTP/1.1\r\nHost: hello.default\r\n\r\n", "GET", ""),
    ];
    for (i, (request, method, body)) in requests.into_iter().enumerate() {
        raw.send(request.as_bytes()).await;
        let res = raw.response(false).await;
        assert_eq!(res.status, 200, "{request:?}: {res:?}");
        let doc = res.json();
        assert_eq!(doc["path"], format!("/{}", i + 1));
        assert_eq!((doc["method"].as_str(), doc["body"].as_str()), (Some(method), Some(body)));
    }
}

#[tokio::test]
async fn connection_close_is_answered_then_the_connection_closes() {
    let echo = Backend::echo("hello").await;
    let proxy = proxy_with(&echo, true).await;
    let mut raw = Raw::connect(&proxy).await;
    raw.send(b"GET / HTTP/1.1\r\nHost: hello.default\r\nConnection: close\r\n\r\n").await;
    let res = raw.response(false).await;
    assert_eq!((res.status, res.field("connection")), (200, Some("close")));
    assert!(raw.closed().await, "the connection stayed open");
}

#[tokio::test]
async fn large_bodies_arrive_whole_with_a_length_and_chunked() {
    const LEN: u64 = 3 * 1024 * 1024 + 17;
    let sized = Backend::start("sized", |_req| async {
        let mut res = http::Response::new(Generated::new(LEN, 7).boxed_unsync());
        res.headers_mut().insert("content-length", http::HeaderValue::from(LEN));
        res
    })
    .await;
    let streamed =
        Backend::start("streamed", |_req| async { http::Response::new(Generated::new(LEN, 7).boxed_unsync()) }).await;
    let want = Digest::of_generated(LEN, 7).await;
    for (backend, chunked) in [(&sized, false), (&streamed, true)] {
        let proxy = proxy_with(backend, true).await;
        let mut raw = Raw::connect(&proxy).await;
        for _ in 0..2 {
            raw.send(b"GET / HTTP/1.1\r\nHost: hello.default\r\n\r\n").await;
            let res = raw.response(false).await;
            assert_eq!((res.status, res.chunked), (200, chunked));
            let mut got = Digest::new();
            got.update(&res.body);
            assert_eq!(got, want);
        }
    }
}

#[tokio::test]
async fn a_body_cut_by_the_instance_cuts_the_connection() {
    // Says 100 bytes, sends 5, hangs up.
    let (addr, _task) = cut_backend().await;
    let table = hello(&revision("hello-00001", &[addr]));
    let proxy = Proxy::start_with(table, lane_config(true), Duration::from_secs(5)).await;
    let mut raw = Raw::connect(&proxy).await;
    raw.send(b"GET / HTTP/1.1\r\nHost: hello.default\r\n\r\n").await;
    let mut seen = Vec::new();
    while raw.fill().await {}
    seen.extend_from_slice(&raw.buf);
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let body = &seen[seen.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4..];
    assert_eq!(body, b"short", "the client sees the body cut, and the connection closed");
}

/// A backend that answers with `Content-Length: 100`, five bytes, and (a moment later) a hang-up.
async fn cut_backend() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort").await;
            // A pause, so the router passes on what it has before it sees the end.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_head_dribbled_in_does_not_outlive_the_header_read_timeout() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let echo = Backend::echo("hello").await;
    let table = hello(&revision("hello-00001", &[echo.addr]));
    let config = RouterConfig { header_read_timeout: TIMEOUT, ..lane_config(true) };
    let proxy = Proxy::start_with(table, config, Duration::from_secs(5)).await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    let started = tokio::time::Instant::now();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: hello.default\r\n").await.expect("send");
    // A field every 20 ms, for up to 20 timeouts: the router must cut it off.
    let mut cut = false;
    while started.elapsed() < TIMEOUT * 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if stream.write_all(b"X-Slow: yes\r\n").await.is_err() {
            cut = true;
            break;
        }
        let mut byte = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(1), stream.read(&mut byte)).await {
            cut = true;
            break;
        }
    }
    assert!(cut, "the router still read the head after {:?}", started.elapsed());
    assert!(started.elapsed() < TIMEOUT * 10, "cut only after {:?}", started.elapsed());
}

#[tokio::test]
async fn a_request_in_flight_at_shutdown_is_answered_with_connection_close() {
    let mut gate = Gate::new();
    let backend = Backend::gated("hello", gate.handle()).await;
    let proxy = proxy_with(&backend, true).await;
    let mut raw = Raw::connect(&proxy).await;
    raw.send(b"GET / HTTP/1.1\r\nHost: hello.default\r\n\r\n").await;
    gate.arrived().await;
    proxy.shutdown.cancel();
    gate.open();
    let res = raw.response(false).await;
    assert_eq!((res.status, res.field("connection")), (200, Some("close")));
    assert!(raw.closed().await, "the connection stayed open after shutdown");
}

#[tokio::test]
async fn a_client_that_closes_before_the_answer_frees_its_instance_at_once() {
    let mut gate = Gate::new();
    let backend = Backend::gated("hello", gate.handle()).await;
    let rev = revision("hello-00001", &[backend.addr]);
    for fast_lane in [true, false] {
        let proxy = Proxy::start_with(hello(&rev), lane_config(fast_lane), Duration::from_secs(5)).await;
        let mut raw = Raw::connect(&proxy).await;
        raw.send(b"GET / HTTP/1.1\r\nHost: hello.default\r\n\r\n").await;
        gate.arrived().await;
        assert_eq!(rev.inflight(), 1);
        drop(raw);
        // The backend never answers: only the client's going away can free the instance.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while rev.inflight() > 0 {
            assert!(tokio::time::Instant::now() < deadline, "the instance is still claimed (fast lane {fast_lane})");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[tokio::test]
async fn a_busy_connection_outlives_its_first_deadline_and_closes_a_timeout_after_its_last_request() {
    const IDLE: Duration = Duration::from_millis(300);
    let echo = Backend::echo("hello").await;
    let table = hello(&revision("hello-00001", &[echo.addr]));
    let config = RouterConfig { header_read_timeout: IDLE, idle_timeout: IDLE, ..lane_config(true) };
    let proxy = Proxy::start_with(table, config, Duration::from_secs(5)).await;
    let mut raw = Raw::connect(&proxy).await;
    let started = tokio::time::Instant::now();
    // A request every IDLE / 3 for four timeouts: the connection's timer, set when it opened,
    // fires while it is busy and must move on, not close it.
    while started.elapsed() < IDLE * 4 {
        raw.send(b"GET / HTTP/1.1\r\nHost: hello.default\r\n\r\n").await;
        assert_eq!(raw.response(false).await.status, 200, "closed while busy after {:?}", started.elapsed());
        tokio::time::sleep(IDLE / 3).await;
    }
    let last = tokio::time::Instant::now();
    assert!(raw.closed().await, "still open");
    let idle = last.elapsed();
    assert!(idle >= IDLE / 2 && idle < IDLE * 10, "closed {idle:?} after the last request");
}
