//! The API port's connections over real sockets: deadlines, TLS beside plain HTTP, the
//! plain-HTTP policy, and the idle timeout (which never closes a connection with a watch).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::DRAIN;
use crate::{ApiServer, PlainHttp, auth, store, tls};

/// A server over a fresh store (token `t`) and its listener on port 0, not yet serving;
/// the directory lives as long as the returned guard.
async fn test_server() -> (tempfile::TempDir, ApiServer, TcpListener, std::net::SocketAddr, CancellationToken) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(store::Store::open(&dir.path().join("db.redb"), store::DEFAULT_HISTORY).expect("store"));
    store.ensure_namespaces(store::BUILTIN_NAMESPACES).expect("namespaces");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let server = ApiServer::new(store, stop.clone(), auth::Token::parse("t").expect("token"));
    (dir, server, listener, addr, stop)
}

#[tokio::test]
async fn shutdown_closes_connections_it_could_not_drain() {
    let (_dir, server, listener, addr, stop) = test_server().await;
    let server = tokio::spawn(server.serve(listener));

    // A write whose body never finishes: its handler is still reading when shutdown starts.
    let mut client = TcpStream::connect(addr).await.expect("connect");
    let head = "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\
                Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"kind\":";
    client.write_all(head.as_bytes()).await.expect("send head");
    // Shutdown waits for this request; a simple GET on another connection proves the
    // server is up and the first connection has been accepted.
    let mut probe = TcpStream::connect(addr).await.expect("connect");
    probe.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("send");
    let mut answer = Vec::new();
    probe.read_to_end(&mut answer).await.expect("read");
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));

    stop.cancel();
    tokio::time::timeout(DRAIN + Duration::from_secs(2), server)
        .await
        .expect("serve returns after the drain deadline")
        .expect("serve task");
    // The connection task was owned and ended with `serve`, so the client sees the close
    // at once rather than a socket held open by a detached task.
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(1), client.read(&mut buf)).await;
    match read.expect("the connection is closed, not left hanging") {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("unexpected answer: {}", String::from_utf8_lossy(&buf[..n])),
    }
}

/// A TLS identity from a fresh local CA, and a connector that trusts that CA and offers `alpn`.
fn tls_pair(dir: &std::path::Path, alpn: &[&[u8]]) -> (tls::Identity, tokio_rustls::TlsConnector) {
    let identity = tls::Identity::local(dir, &[]).expect("local CA and certificate");
    let mut roots = rustls::RootCertStore::empty();
    for ca in identity.authority_certificates() {
        roots.add(ca).expect("root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    (identity, tokio_rustls::TlsConnector::from(Arc::new(config)))
}

fn loopback_name() -> rustls::pki_types::ServerName<'static> {
    rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name")
}

/// The status line of `GET /api/v1/configmaps` sent with `auth` (a header line or nothing),
/// over TLS when `tls` is given, else plain.
async fn status_line(addr: std::net::SocketAddr, tls: Option<&tokio_rustls::TlsConnector>, auth: &str) -> String {
    let request = format!("GET /api/v1/configmaps HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut answer = Vec::new();
    match tls {
        Some(connector) => {
            let mut tls = connector.connect(loopback_name(), tcp).await.expect("handshake, certificate verified");
            tls.write_all(request.as_bytes()).await.expect("send");
            let _ = tls.read_to_end(&mut answer).await;
        }
        None => {
            let mut tcp = tcp;
            tcp.write_all(request.as_bytes()).await.expect("send");
            let _ = tcp.read_to_end(&mut answer).await;
        }
    }
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn one_port_serves_plain_http_and_tls_with_the_token_required_on_both() {
    let (dir, server, listener, addr, stop) = test_server().await;
    let (identity, connector) = tls_pair(dir.path(), &[b"http/1.1"]);
    // A loopback listener under `sluice serve`'s policy still answers plain HTTP.
    tokio::spawn(server.tls(&identity).expect("tls").plain_http(PlainHttp::LoopbackOnly).serve(listener));
    for tls in [None, Some(&connector)] {
        assert_eq!(status_line(addr, tls, "").await, "HTTP/1.1 401 Unauthorized", "tls: {}", tls.is_some());
        assert_eq!(status_line(addr, tls, "Authorization: Bearer x\r\n").await, "HTTP/1.1 403 Forbidden");
        assert_eq!(status_line(addr, tls, "Authorization: Bearer t\r\n").await, "HTTP/1.1 200 OK");
    }
    stop.cancel();
}

#[tokio::test]
async fn where_tls_is_required_plain_http_gets_400_and_https_is_served() {
    let (dir, server, listener, addr, stop) = test_server().await;
    let (identity, connector) = tls_pair(dir.path(), &[b"http/1.1"]);
    tokio::spawn(server.tls(&identity).expect("tls").plain_http(PlainHttp::Refused).serve(listener));

    let mut plain = TcpStream::connect(addr).await.expect("connect");
    plain.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n").await.expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer))
        .await
        .expect("the refused connection is closed")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.0 400 Bad Request\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"), "{answer}");
    // h2 with prior knowledge is plain HTTP too.
    let mut h2c = TcpStream::connect(addr).await.expect("connect");
    h2c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.expect("send");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), h2c.read_to_end(&mut answer)).await.expect("closed");
    assert!(answer.starts_with(b"HTTP/1.0 400"), "{}", String::from_utf8_lossy(&answer));

    assert_eq!(status_line(addr, Some(&connector), "Authorization: Bearer t\r\n").await, "HTTP/1.1 200 OK");
    stop.cancel();
}

/// Reads `stream` until the server closes it; fails if that takes longer than `within`.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, within: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut seen)).await;
    assert!(read.is_ok(), "still open after {within:?}; read {:?}", String::from_utf8_lossy(&seen));
    seen
}

const IDLE: Duration = Duration::from_millis(300);

/// A server with a short idle timeout and long request-head and handshake deadlines, so only
/// the idle timer can close what the tests hold open.
async fn idle_server()
-> (tempfile::TempDir, std::net::SocketAddr, tokio_rustls::TlsConnector, tokio_rustls::TlsConnector, CancellationToken)
{
    let (dir, server, listener, addr, stop) = test_server().await;
    let (identity, h1) = tls_pair(dir.path(), &[b"http/1.1"]);
    let (_, h2) = tls_pair(dir.path(), &[b"h2"]);
    let server = server.tls(&identity).expect("tls").idle_timeout(IDLE).header_read_timeout(Duration::from_secs(60));
    tokio::spawn(server.tls_handshake_timeout(Duration::from_secs(60)).serve(listener));
    (dir, addr, h1, h2, stop)
}

#[tokio::test]
async fn a_tls_connection_that_sends_no_request_is_closed_after_the_idle_timeout() {
    let (_dir, addr, h1, h2, stop) = idle_server().await;
    for (alpn, connector) in [("http/1.1", &h1), ("h2", &h2)] {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let mut tls = connector.connect(loopback_name(), tcp).await.expect("handshake");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn.as_bytes()), "ALPN chose {alpn}");
        let started = tokio::time::Instant::now();
        closed_within(&mut tls, IDLE * 10).await;
        assert!(started.elapsed() >= IDLE / 2, "{alpn}: closed before the idle timeout: {:?}", started.elapsed());
    }
    stop.cancel();
}

#[tokio::test]
async fn an_h2c_connection_with_no_streams_gets_a_goaway_and_is_closed() {
    let (_dir, addr, _, _, stop) = idle_server().await;
    let mut h2c = TcpStream::connect(addr).await.expect("connect");
    // The preface and an empty SETTINGS frame; then nothing, not even the SETTINGS ack or a
    // PING answer, so the server must close it on its own.
    h2c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.expect("send");
    let seen = closed_within(&mut h2c, IDLE * 10).await;
    let mut frames = Vec::new();
    let mut rest = &seen[..];
    while rest.len() >= 9 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        frames.push(rest[3]);
        rest = &rest[(9 + len).min(rest.len())..];
    }
    assert!(frames.contains(&0x7), "no GOAWAY among the frames (types) {frames:?}");

    // A cooperative h2 client sees the connection end cleanly.
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let io = hyper_util::rt::TokioIo::new(tcp);
    let (_send, conn) = hyper::client::conn::http2::handshake::<_, _, http_body_util::Empty<bytes::Bytes>>(
        hyper_util::rt::TokioExecutor::new(),
        io,
    )
    .await
    .expect("h2 handshake");
    let ended = tokio::time::timeout(IDLE * 10, conn).await.expect("closed within the idle timeout");
    assert!(ended.is_ok(), "not a graceful close: {ended:?}");
    stop.cancel();
}

#[tokio::test]
async fn a_connection_with_a_watch_in_flight_is_not_closed_by_the_idle_timer() {
    let (_dir, addr, _, _, stop) = idle_server().await;
    let mut watch = TcpStream::connect(addr).await.expect("connect");
    let head =
        "GET /api/v1/namespaces/default/configmaps?watch=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n";
    watch.write_all(head.as_bytes()).await.expect("send");
    let mut buf = vec![0u8; 4096];
    let n = watch.read(&mut buf).await.expect("answer");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    // Several idle timeouts with nothing sent either way: the watch is in flight, so the
    // connection stays open (a read that times out, rather than ending).
    let quiet = tokio::time::timeout(IDLE * 5, watch.read(&mut buf)).await;
    assert!(quiet.is_err(), "the watch connection was closed or sent something: {quiet:?}");

    let mut writer = TcpStream::connect(addr).await.expect("connect");
    let body = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"seen"}}"#;
    let post = format!(
        "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    writer.write_all(post.as_bytes()).await.expect("send");
    let mut created = Vec::new();
    writer.read_to_end(&mut created).await.expect("read");
    assert!(created.starts_with(b"HTTP/1.1 201"), "{}", String::from_utf8_lossy(&created));
    let mut event = Vec::new();
    while !String::from_utf8_lossy(&event).contains("\"seen\"") {
        let n = tokio::time::timeout(Duration::from_secs(5), watch.read(&mut buf))
            .await
            .expect("the event arrives")
            .expect("read");
        assert!(n > 0, "the watch ended: {}", String::from_utf8_lossy(&event));
        event.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&event).contains("ADDED"), "{}", String::from_utf8_lossy(&event));
    stop.cancel();
}

#[tokio::test]
async fn a_tls_handshake_that_stalls_is_closed_at_its_deadline() {
    let (dir, server, listener, addr, stop) = test_server().await;
    let (identity, _) = tls_pair(dir.path(), &[]);
    let server = server.tls(&identity).expect("tls").header_read_timeout(Duration::from_secs(60));
    tokio::spawn(server.tls_handshake_timeout(IDLE).idle_timeout(Duration::from_secs(60)).serve(listener));
    let mut stalled = TcpStream::connect(addr).await.expect("connect");
    // The start of a ClientHello record, never finished.
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.expect("send");
    closed_within(&mut stalled, IDLE * 10).await;
    stop.cancel();
}

#[tokio::test]
async fn connections_that_send_nothing_or_stall_are_closed() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let (_dir, server, listener, addr, stop) = test_server().await;
    tokio::spawn(server.header_read_timeout(TIMEOUT).serve(listener));

    // Nothing at all: the version sniffing used to wait forever.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    closed_within(&mut silent, TIMEOUT * 10).await;
    // Half a request head.
    let mut stalled = TcpStream::connect(addr).await.expect("connect");
    stalled.write_all(b"GET /version HTTP/1.1\r\nHo").await.expect("send");
    closed_within(&mut stalled, TIMEOUT * 10).await;
    // Idle after a request on a keep-alive connection.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("send");
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).await.expect("answer");
    assert_eq!(&head, b"HTTP/1.1 200");
    closed_within(&mut idle, TIMEOUT * 10).await;
    stop.cancel();
}
