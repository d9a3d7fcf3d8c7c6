//! HTTPS: certificates by SNI, HTTP/2 or HTTP/1.1 by ALPN, TLS 1.2 and 1.3 only, the handshake
//! deadline, and plain HTTP redirected or refused by Knative's `http-protocol`.

use std::time::Duration;

use http::Request;
use sluice_router::RouterConfig;
use sluice_router::table::HttpProtocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

fn hello_routes(backend: &Backend) -> sluice_router::table::RoutingTable {
    hello(&revision("hello-00001", &[backend.addr]))
}

#[tokio::test]
async fn sni_chooses_the_certificate_given_for_the_host_then_the_wildcard_then_the_local_ca() {
    let backend = Backend::echo("a").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (exact, exact_root) = given_cert(dir.path(), "exact", "hello.default.localhost", &["hello.default.localhost"]);
    let (wild, wild_root) = given_cert(dir.path(), "wild", "*.prod.localhost", &["*.prod.localhost"]);
    let proxy = TlsProxy::start(hello_routes(&backend), config(), &[exact, wild]).await;
    let only = |root| TlsClient::new(&[root]);
    only(&exact_root).connect(proxy.tls, "hello.default.localhost").await.expect("the exact host's certificate");
    only(&wild_root).connect(proxy.tls, "api.prod.localhost").await.expect("the wildcard's certificate");
    only(&proxy.ca).connect(proxy.tls, "other.default.localhost").await.expect("one from the local CA");
    // Each client trusts one issuer only, so a wrong pick fails verification.
    only(&proxy.ca).connect(proxy.tls, "hello.default.localhost").await.expect_err("not the local CA's");
    only(&exact_root).connect(proxy.tls, "api.prod.localhost").await.expect_err("not the exact host's");
    only(&wild_root).connect(proxy.tls, "a.b.prod.localhost").await.expect_err("a wildcard covers one label");
    only(&proxy.ca).connect(proxy.tls, "a.b.prod.localhost").await.expect("deeper names get the local CA's");
}

#[tokio::test]
async fn h2_and_http11_by_alpn_reach_the_instance_as_https() {
    let backend = Backend::echo("a").await;
    let proxy = TlsProxy::start(hello_routes(&backend), config(), &[]).await;
    let client = TlsClient::new(&[&proxy.ca]);
    let req = || Request::get("https://hello.default.localhost/tls?x=1").body(empty()).expect("request");

    let tls = client.connect(proxy.tls, "hello.default.localhost").await.expect("handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut h2 = H2::over(tls).await;
    let res = h2.send(req()).await;
    assert_eq!(res.version(), http::Version::HTTP_2);
    let reply = Reply::read(res).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["path"], "/tls?x=1");
    assert_eq!(reply.json()["headers"]["x-forwarded-proto"][0], "https");

    let tls = TlsClient::new(&[&proxy.ca])
        .alpn(&[b"http/1.1"])
        .connect(proxy.tls, "hello.default.localhost")
        .await
        .expect("handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut h1 = H1::over(tls).await;
    let res = h1.send(get("hello.default.localhost")).await;
    assert_eq!(res.version(), http::Version::HTTP_11);
    let reply = Reply::read(res).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["headers"]["x-forwarded-proto"][0], "https");

    // No ALPN at all: HTTP/1.1.
    let tls =
        TlsClient::new(&[&proxy.ca]).alpn(&[]).connect(proxy.tls, "hello.default.localhost").await.expect("handshake");
    let reply = H1::over(tls).await.get("hello.default.localhost").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn tls12_and_tls13_clients_are_served_and_a_tls11_hello_is_refused() {
    let backend = Backend::echo("a").await;
    let proxy = TlsProxy::start(hello_routes(&backend), config(), &[]).await;
    static TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
    static TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    for (versions, expected) in [(TLS12, rustls::ProtocolVersion::TLSv1_2), (TLS13, rustls::ProtocolVersion::TLSv1_3)] {
        let tls = TlsClient::new(&[&proxy.ca])
            .alpn(&[b"http/1.1"])
            .versions(versions)
            .connect(proxy.tls, "hello.default.localhost")
            .await
            .expect("handshake");
        assert_eq!(tls.get_ref().1.protocol_version(), Some(expected));
        let reply = H1::over(tls).await.get("hello.default.localhost").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    // rustls cannot speak TLS 1.1, so its ClientHello is written by hand: the server must
    // answer with a fatal protocol_version alert.
    let mut tcp = TcpStream::connect(proxy.tls).await.expect("connect");
    tcp.write_all(&tls11_client_hello()).await.expect("send hello");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("read");
    assert_eq!(answer.first(), Some(&21), "an alert record: {answer:?}");
    assert_eq!(answer.get(5..7), Some(&[2, 70][..]), "fatal protocol_version: {answer:?}");
}

#[tokio::test]
async fn a_client_that_sends_nothing_or_half_a_handshake_is_closed_at_the_handshake_deadline() {
    let backend = Backend::echo("a").await;
    let deadline = Duration::from_millis(300);
    let proxy =
        TlsProxy::start(hello_routes(&backend), RouterConfig { header_read_timeout: deadline, ..config() }, &[]).await;
    let hello = tls11_client_hello();
    for sent in [&[][..], &hello[..20]] {
        let mut tcp = TcpStream::connect(proxy.tls).await.expect("connect");
        let start = tokio::time::Instant::now();
        tcp.write_all(sent).await.expect("send");
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await.expect("closed within 10 s");
        assert!(matches!(read, Ok(0) | Err(_)), "closed without an answer: {read:?}");
        assert!(
            start.elapsed() >= deadline - Duration::from_millis(50),
            "not before the deadline: {:?}",
            start.elapsed()
        );
    }
    // A prompt client is still served.
    let tls = TlsClient::new(&[&proxy.ca]).connect(proxy.tls, "hello.default.localhost").await.expect("handshake");
    let res =
        H2::over(tls).await.send(Request::get("https://hello.default.localhost/").body(empty()).expect("req")).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn plain_http_is_redirected_to_the_https_port_or_refused_as_http_protocol_says() {
    let backend = Backend::echo("a").await;
    let proxy = TlsProxy::start(hello_routes(&backend), config(), &[]).await;
    let with = |protocol| hello_routes(&backend).with_http_protocol(protocol);
    let plain = |path: &'static str| async move {
        let req = Request::get(path).header("host", "hello.default.localhost:8080").body(empty()).expect("request");
        Reply::read(H1::connect(proxy.plain).await.send(req).await).await
    };
    assert_eq!(plain("/").await.status, 200, "Enabled by default");

    proxy.table.store(with(HttpProtocol::Redirected).into());
    let reply = plain("/a?b=c").await;
    assert_eq!(reply.status, 301);
    let location = format!("https://hello.default.localhost:{}/a?b=c", proxy.tls.port());
    assert_eq!(reply.headers["location"], location.as_str());
    // Cluster-local hosts keep plain HTTP, and HTTPS is never redirected.
    assert_eq!(fetch(proxy.plain, "hello.default").await.status, 200);
    let tls = TlsClient::new(&[&proxy.ca])
        .alpn(&[b"http/1.1"])
        .connect(proxy.tls, "hello.default.localhost")
        .await
        .expect("tls");
    assert_eq!(H1::over(tls).await.get("hello.default.localhost").await.status, 200);

    proxy.table.store(with(HttpProtocol::Disabled).into());
    let reply = plain("/").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.text(), "host \"hello.default.localhost\" is served over HTTPS only\n");
}

/// A ClientHello offering TLS 1.1 at most (no supported_versions extension), otherwise fit
/// for the server's certificate (an ECDSA suite and signature scheme).
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend([7u8; 32]); // random
    body.push(0); // no session id
    body.extend([0x00, 0x02, 0xc0, 0x2b]); // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    body.extend([0x01, 0x00]); // null compression
    // signature_algorithms: ecdsa_secp256r1_sha256
    body.extend([0x00, 0x08, 0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03]);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend(u16::try_from(body.len()).expect("short").to_be_bytes());
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(u16::try_from(handshake.len()).expect("short").to_be_bytes());
    record.extend(handshake);
    record
}
