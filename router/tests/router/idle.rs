//! Connections that send nothing, or stop between requests, do not hold the router's sockets.

use std::time::Duration;

use sluice_router::RouterConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// How long the router under test lets a connection idle.
const IDLE: Duration = Duration::from_millis(300);

async fn proxy() -> (Proxy, Backend) {
    let backend = Backend::echo("hello").await;
    let config = RouterConfig { header_read_timeout: IDLE, idle_timeout: IDLE, ..config() };
    let proxy =
        Proxy::start_with(hello(&revision("hello-00001", &[backend.addr])), config, Duration::from_secs(5)).await;
    (proxy, backend)
}

/// Reads until the router closes the connection; fails if it is still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut seen)).await;
    assert!(read.is_ok(), "the connection was still open after {within:?}; read {:?}", String::from_utf8_lossy(&seen));
    seen
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let (proxy, _backend) = proxy().await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    let started = tokio::time::Instant::now();
    closed_within(&mut stream, IDLE * 10).await;
    assert!(started.elapsed() >= IDLE, "closed before the idle timeout: {:?}", started.elapsed());
}

#[tokio::test]
async fn a_keep_alive_connection_idle_after_a_request_is_closed() {
    let (proxy, _backend) = proxy().await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream.write_all(b"GET / HTTP/1.1\r\nHost: hello.default\r\n\r\n").await.expect("send");
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.expect("answer");
    assert_eq!(&head, b"HTTP/1.1 200");
    closed_within(&mut stream, IDLE * 10).await;
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_closed() {
    let (proxy, _backend) = proxy().await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream.write_all(b"GET / HTTP/1.1\r\nHost: hel").await.expect("send");
    closed_within(&mut stream, IDLE * 10).await;
}

#[tokio::test]
async fn an_idle_h2c_connection_is_closed() {
    let (proxy, _backend) = proxy().await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.expect("preface");
    closed_within(&mut stream, IDLE * 10).await;
}

#[tokio::test]
async fn a_request_in_flight_longer_than_the_idle_timeout_is_not_cut() {
    // The backend takes three idle timeouts to answer; the client's connection has a request
    // in flight all along, over HTTP/1.1 and over h2c.
    let slow = Backend::start("slow", |_req| async {
        tokio::time::sleep(IDLE * 3).await;
        http::Response::new(full("late but whole"))
    })
    .await;
    let config = RouterConfig { header_read_timeout: IDLE, idle_timeout: IDLE, ..config() };
    let proxy = Proxy::start_with(hello(&revision("hello-00001", &[slow.addr])), config, Duration::from_secs(5)).await;
    let mut h1 = H1::connect(proxy.addr).await;
    let reply = Reply::read(h1.send(get("hello.default")).await).await;
    assert_eq!((reply.status.as_u16(), reply.text()), (200, "late but whole"));
    let mut h2 = H2::connect(proxy.addr).await;
    let reply = Reply::read(h2.send(get("hello.default")).await).await;
    assert_eq!((reply.status.as_u16(), reply.text()), (200, "late but whole"));
}

/// A backend answering every request after 200 ms, counting its open connections now and at
/// most at once.
async fn counting_backend() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Open(Arc<AtomicUsize>);
    impl Drop for Open {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (counter, most) = (open.clone(), peak.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let now = counter.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            let guard = Open(counter.clone());
            tokio::spawn(async move {
                let _guard = guard;
                let svc = hyper::service::service_fn(|_req| async {
                    // Slow enough that a burst needs a connection per request.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok::<_, std::convert::Infallible>(http::Response::new(full("ok")))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, open, peak)
}

#[tokio::test]
async fn a_burst_leaves_at_most_the_configured_idle_connections_to_an_instance() {
    use std::sync::atomic::Ordering;

    let (addr, open, peak) = counting_backend().await;
    let config = RouterConfig { upstream_max_idle_per_instance: 8, ..config() };
    let proxy = Proxy::start_with(hello(&revision("hello-00001", &[addr])), config, Duration::from_secs(5)).await;
    // 100 concurrent streams on one h2c connection: the router needs ~100 upstream connections.
    let stream = TcpStream::connect(proxy.addr).await.expect("connect");
    let (h2, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2c");
    let conn = tokio::spawn(conn);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let mut h2 = h2.clone();
        tasks.push(tokio::spawn(async move {
            h2.ready().await.expect("ready");
            let res = h2.send_request(get("hello.default")).await.expect("response");
            Reply::read(res).await.status.as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), 200);
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak > 8, "the burst used {peak} connections at once; the test needs more than the idle bound");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while open.load(Ordering::SeqCst) > 8 {
        assert!(tokio::time::Instant::now() < deadline, "{} idle connections kept", open.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    conn.abort();
}

/// Longer than the router waits before it parks an idle HTTP/1.1 connection (1 s).
const PAST_PARKING: Duration = Duration::from_millis(1500);

/// One whole HTTP/1.1 response from `stream`: its head (lowercased) and body.
async fn response(stream: &mut TcpStream) -> (String, String) {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&seen).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let head = head.to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|n| n.trim().parse().ok())
                .expect("a content-length");
            if body.len() >= length {
                return (head, body.to_string());
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "closed mid-response: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn a_connection_parked_while_idle_serves_its_next_requests() {
    let backend = Backend::echo("hello").await;
    let proxy = Proxy::start(hello(&revision("hello-00001", &[backend.addr]))).await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    let request = b"GET / HTTP/1.1\r\nHost: hello.default\r\n\r\n";
    stream.write_all(request).await.expect("send");
    let (head, first) = response(&mut stream).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let echoed = |body: &str| body.contains(r#""backend":"hello""#) && body.contains(r#""path":"/""#);
    assert!(echoed(&first), "{first}");
    // Idle long enough to be parked: hyper's connection is gone, the socket kept.
    tokio::time::sleep(PAST_PARKING).await;
    stream.write_all(request).await.expect("send after parking");
    let (head, body) = response(&mut stream).await;
    assert!(head.starts_with("http/1.1 200") && !head.contains("connection: close"), "{head}");
    assert!(echoed(&body), "{body}");
    // Parked with half a request head already read: the next connection starts from it.
    let (start, rest) = request.split_at(20);
    stream.write_all(start).await.expect("half a head");
    tokio::time::sleep(PAST_PARKING).await;
    stream.write_all(rest).await.expect("the rest");
    let (head, body) = response(&mut stream).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(echoed(&body), "{body}");
    // Still kept alive after that (it no longer parks, so the head deadline was not reset).
    tokio::time::sleep(PAST_PARKING).await;
    stream.write_all(request).await.expect("send");
    assert!(response(&mut stream).await.0.starts_with("http/1.1 200"));
}

#[tokio::test]
async fn a_parked_connection_is_closed_when_its_keep_alive_ends() {
    let backend = Backend::echo("hello").await;
    // Keep-alive ends 2.5 s after the last response: parked after 1 s, closed 1.5 s later.
    let keep_alive = Duration::from_millis(2500);
    let config = RouterConfig { header_read_timeout: keep_alive, idle_timeout: keep_alive, ..config() };
    let proxy =
        Proxy::start_with(hello(&revision("hello-00001", &[backend.addr])), config, Duration::from_secs(5)).await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream.write_all(b"GET / HTTP/1.1\r\nHost: hello.default\r\n\r\n").await.expect("send");
    assert!(response(&mut stream).await.0.starts_with("http/1.1 200"));
    let idle = tokio::time::Instant::now();
    closed_within(&mut stream, keep_alive * 4).await;
    assert!(idle.elapsed() >= keep_alive - Duration::from_millis(100), "closed after {:?}", idle.elapsed());
}

#[tokio::test]
async fn the_header_read_timeout_holds_alone_when_the_idle_timeout_is_longer() {
    // The idle timeout is far off: only the header-read deadline can close these.
    let backend = Backend::echo("hello").await;
    let config = RouterConfig { header_read_timeout: IDLE, idle_timeout: Duration::from_secs(600), ..config() };
    let proxy =
        Proxy::start_with(hello(&revision("hello-00001", &[backend.addr])), config, Duration::from_secs(5)).await;
    // A head trickled in a byte at a time never ends in time.
    let mut slow = TcpStream::connect(proxy.addr).await.expect("connect");
    let started = tokio::time::Instant::now();
    let (mut read, mut write) = slow.split();
    let trickle = async {
        for byte in b"GET / HTTP/1.1\r\nHost: hello.default\r\nX-Slow: ".iter().cycle() {
            if write.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(IDLE / 10).await;
        }
    };
    let closed = async {
        let mut seen = Vec::new();
        let _ = read.read_to_end(&mut seen).await;
    };
    tokio::select! {
        () = trickle => {}
        () = closed => {}
        () = tokio::time::sleep(IDLE * 10) => panic!("a trickled head was not cut within {:?}", IDLE * 10),
    }
    assert!(started.elapsed() >= IDLE, "cut before the header read timeout: {:?}", started.elapsed());
    // A keep-alive connection is closed the header-read timeout after its last response, and
    // a request sent before that is answered.
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    for _ in 0..3 {
        stream.write_all(b"GET / HTTP/1.1\r\nHost: hello.default\r\n\r\n").await.expect("send");
        assert!(response(&mut stream).await.0.starts_with("http/1.1 200"));
        tokio::time::sleep(IDLE / 3).await;
    }
    let idle = tokio::time::Instant::now();
    closed_within(&mut stream, IDLE * 10).await;
    assert!(idle.elapsed() >= IDLE / 2, "closed after {:?}", idle.elapsed());
}
