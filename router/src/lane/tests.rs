use std::sync::Arc;

use arc_swap::ArcSwap;

use super::*;
use crate::config::HttpsListener;
use crate::proxy::Router;
use crate::table::RoutingTable;

/// A service whose requests take the header-map path (an HTTPS listener makes the lines path
/// step aside for redirects), to see what `take` splits off.
fn map_service() -> RouterService {
    let table = Arc::new(ArcSwap::from_pointee(RoutingTable::new(Vec::new()).expect("empty table")));
    let https = Some(HttpsListener { port: 8443, domain: "example.com".into() });
    let router = Router::new(table, RouterConfig { https, ..RouterConfig::default() });
    router.service("127.0.0.1:1".parse().expect("addr"))
}

fn scanned(head: &str) -> Scan {
    let mut spans = [Span::default(); MAX_FIELDS];
    scan(head.as_bytes(), &mut spans)
}

fn takes(head: &str) -> bool {
    matches!(scanned(head), Scan::Take { .. })
}

#[test]
fn the_lane_takes_plain_bodiless_gets_and_heads() {
    assert!(takes("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(takes("HEAD /x?y=z HTTP/1.1\r\nhost: a\r\nAccept: */*\r\n\r\n"));
    assert!(takes("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"));
    assert!(takes("GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nKeep-Alive: timeout=5\r\n\r\n"));
    assert!(matches!(
        scanned("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, close\r\n\r\n"),
        Scan::Take { close: true, fields: 2, .. }
    ));
}

#[test]
fn anything_more_goes_to_hyper() {
    for head in [
        "POST / HTTP/1.1\r\nHost: a\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: x-custom\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
        "NOT HTTP AT ALL\r\n\r\n",
    ] {
        assert!(matches!(scanned(head), Scan::Hyper), "{head:?}");
    }
    let many: String = (0..MAX_FIELDS).map(|i| format!("X-{i}: v\r\n")).collect();
    assert!(matches!(scanned(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")), Scan::Hyper));
}

#[test]
fn a_head_not_yet_whole_is_partial() {
    assert!(matches!(scanned("GET / HTTP/1.1\r\nHost: a\r\n"), Scan::Partial));
    assert!(matches!(scanned("GE"), Scan::Partial));
}

#[test]
fn take_splits_the_head_off_and_keeps_what_follows() {
    let mut buf = BytesMut::from(&b"GET /a HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\nGET /b"[..]);
    let Taken::Request(head, req, close) = take(&mut buf, &map_service()) else { panic!("not taken") };
    assert_eq!(head.len(), 36);
    assert_eq!((req.method(), req.uri().path(), close), (&Method::GET, "/a", false));
    assert_eq!(req.headers()["host"], "h");
    assert_eq!(req.headers()["x-a"], "1");
    assert_eq!(&buf[..], b"GET /b");
    assert!(matches!(take(&mut buf, &map_service()), Taken::Partial));
}

#[test]
fn a_head_for_hyper_is_handed_over_with_every_byte() {
    let bytes = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhiGET /";
    let mut buf = BytesMut::from(&bytes[..]);
    let Taken::Hyper(all) = take(&mut buf, &map_service()) else { panic!("taken") };
    assert_eq!(&all[..], &bytes[..]);
    assert!(buf.is_empty());
}

fn head_of(
    status: StatusCode,
    headers: &HeaderMap,
    head_only: bool,
    exact: Option<u64>,
    close: bool,
) -> (String, Framing) {
    let mut out = Vec::new();
    let framing = write_head(&mut out, status, headers, head_only, exact, close);
    (String::from_utf8(out).expect("ascii"), framing)
}

#[test]
fn heads_carry_their_framing() {
    let mut headers = HeaderMap::new();
    headers.insert("x-a", HeaderValue::from_static("1"));
    let (head, framing) = head_of(StatusCode::OK, &headers, false, Some(5), false);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\nx-a: 1\r\ndate: "), "{head}");
    assert!(head.ends_with("GMT\r\ncontent-length: 5\r\n\r\n"), "{head}");
    assert_eq!(framing, Framing::Length(5));

    let (head, framing) = head_of(StatusCode::OK, &headers, false, None, true);
    assert!(head.ends_with("connection: close\r\ntransfer-encoding: chunked\r\n\r\n"), "{head}");
    assert_eq!(framing, Framing::Chunked);

    headers.insert(CONTENT_LENGTH, HeaderValue::from_static("12"));
    headers.insert(DATE, HeaderValue::from_static("Tue, 01 Dec 2026 00:00:00 GMT"));
    let (head, framing) = head_of(StatusCode::OK, &headers, false, None, false);
    assert_eq!(head, "HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 12\r\ndate: Tue, 01 Dec 2026 00:00:00 GMT\r\n\r\n");
    assert_eq!(framing, Framing::Length(12));

    // HEAD keeps the length it was given and sends no body; so do 204 and 304.
    assert_eq!(head_of(StatusCode::OK, &headers, true, Some(0), false).1, Framing::None);
    assert_eq!(head_of(StatusCode::NO_CONTENT, &HeaderMap::new(), false, Some(0), false).1, Framing::None);
    assert_eq!(head_of(StatusCode::NOT_MODIFIED, &HeaderMap::new(), false, None, false).1, Framing::None);
    let (head, _) = head_of(StatusCode::from_u16(599).expect("status"), &HeaderMap::new(), false, Some(0), false);
    assert!(head.starts_with("HTTP/1.1 599 \r\n"), "{head}");
}

#[test]
fn bodies_are_framed_and_large_frames_written_on_their_own() {
    let mut out = Vec::new();
    let mut framing = Framing::Chunked;
    assert!(encode(&mut out, &mut framing, Bytes::from_static(b"hello")).expect("encode").is_none());
    assert!(encode(&mut out, &mut framing, Bytes::new()).expect("encode").is_none(), "an empty frame is no chunk");
    assert_eq!(out, b"5\r\nhello\r\n");

    out.clear();
    let large = Bytes::from(vec![b'x'; COALESCE + 1]);
    let given = encode(&mut out, &mut framing, large.clone()).expect("encode");
    assert_eq!((out.as_slice(), given), (format!("{:x}\r\n", COALESCE + 1).as_bytes(), Some(large)));

    out.clear();
    let mut framing = Framing::Length(4);
    assert!(encode(&mut out, &mut framing, Bytes::from_static(b"abc")).expect("encode").is_none());
    assert_eq!((out.as_slice(), framing), (&b"abc"[..], Framing::Length(1)));
    assert!(encode(&mut out, &mut framing, Bytes::from_static(b"de")).is_err(), "longer than its length");
}

#[test]
fn connection_values() {
    assert_eq!(connection_close(b"keep-alive"), Some(false));
    assert_eq!(connection_close(b"Close"), Some(true));
    assert_eq!(connection_close(b" keep-alive , close "), Some(true));
    assert_eq!(connection_close(b""), Some(false));
    assert_eq!(connection_close(b"upgrade"), None);
    assert_eq!(connection_close(b"keep-alive, x-foo"), None);
}
