//! The router's own HTTP/1.1 client against scripted instances on loopback: each answers with
//! exact bytes (written in pieces, to cross every parser boundary), so framing, trailers,
//! interim responses, limits and malformed answers are all exercised on a real socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::super::{Attempt, Upstream};
use super::*;
use crate::body::InstanceBody;
use crate::config::RouterConfig;
use crate::endpoints::Instance;
use crate::proxy::deadline::HeadDeadline;

/// An instance that, on each connection, reads one request head, sends it on `heads`, then
/// writes `answer` in pieces of `piece` bytes, and closes the connection if `close`.
async fn scripted(
    answer: &'static [u8],
    piece: usize,
    close: bool,
) -> (Arc<Instance>, mpsc::Receiver<String>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel(16);
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let _ = tx.send(String::from_utf8_lossy(&head).into_owned()).await;
                    for part in answer.chunks(piece) {
                        if stream.write_all(part).await.is_err() {
                            return;
                        }
                        let _ = stream.flush().await;
                        tokio::task::yield_now().await;
                    }
                    if close {
                        return;
                    }
                }
            });
        }
    });
    static NEXT: AtomicUsize = AtomicUsize::new(2_000_000);
    (Instance::new(NEXT.fetch_add(1, Ordering::Relaxed) as u64, addr), rx, accepted)
}

fn upstream() -> Upstream {
    Upstream::new(&RouterConfig::default())
}

async fn send(upstream: &Upstream, instance: &Instance, method: &Method, headers: &HeaderMap) -> Attempt {
    let path: PathAndQuery = "/a?b=c".parse().expect("path");
    let req = RequestHead { method, path: &path, fields: Fields::Map { headers, forwarded: None }, pass_head: false };
    let mut deadline = HeadDeadline::at(Instant::now() + Duration::from_secs(10));
    upstream.send_bodiless(instance, &req, &mut deadline).await
}

fn response(attempt: Attempt) -> http::Response<InstanceBody> {
    match attempt {
        Attempt::Response(res) => res,
        Attempt::TimedOut => panic!("timed out"),
        Attempt::Failed(e) => panic!("failed: {e}"),
    }
}

fn failure(attempt: Attempt) -> String {
    match attempt {
        Attempt::Failed(e) => e.to_string(),
        Attempt::TimedOut => panic!("timed out"),
        Attempt::Response(res) => panic!("expected a failure, got {}", res.status()),
    }
}

/// The body's data and trailers, or its error.
async fn read(res: http::Response<InstanceBody>) -> Result<(Bytes, Option<HeaderMap>), String> {
    let collected = res.into_body().collect().await.map_err(|e| e.to_string())?;
    let trailers = collected.trailers().cloned();
    Ok((collected.to_bytes(), trailers))
}

fn idle(upstream: &Upstream, instance: &Instance) -> usize {
    upstream.raw.idle_count(instance.id)
}

#[test]
fn the_head_is_written_with_host_added_only_when_missing() {
    let authority: http::uri::Authority = "10.0.0.1:8080".parse().expect("authority");
    let path: PathAndQuery = "/p?q=1".parse().expect("path");
    let mut headers = HeaderMap::new();
    headers.append("x-many", HeaderValue::from_static("one"));
    headers.append("x-many", HeaderValue::from_static("two"));
    let mut out = Vec::new();
    encode(
        &mut out,
        &RequestHead {
            method: &Method::HEAD,
            path: &path,
            fields: Fields::Map { headers: &headers, forwarded: None },
            pass_head: false,
        },
        &authority,
    );
    assert_eq!(out, b"HEAD /p?q=1 HTTP/1.1\r\nx-many: one\r\nx-many: two\r\nhost: 10.0.0.1:8080\r\n\r\n");
    headers.insert(HOST, HeaderValue::from_static("svc.example"));
    out.clear();
    encode(
        &mut out,
        &RequestHead {
            method: &Method::GET,
            path: &path,
            fields: Fields::Map { headers: &headers, forwarded: None },
            pass_head: false,
        },
        &authority,
    );
    let text = String::from_utf8(out).expect("text");
    assert_eq!(text.matches("host:").count(), 1, "{text}");
    assert!(text.contains("host: svc.example\r\n"), "{text}");
}

/// [`super::framing`] with what `headers` has noted from the map itself.
fn framing(method: &Method, status: StatusCode, headers: &HeaderMap) -> Result<(Framing, bool), ExchangeError> {
    super::framing(method, status, headers, Noted::of(headers))
}

#[test]
fn reading_a_head_notes_its_framing_and_connection_fields() {
    let head = Bytes::from_static(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: 1\r\nconnection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    let mut spans = [Span::default(); MAX_HEADERS];
    let (_, parsed) = scan_head(&head, &mut spans).expect("valid").expect("whole");
    for fields in 0..=parsed.fields {
        let (map, noted) = header_map(&head, &spans[..fields]).expect("valid");
        let whole = Noted::of(&map);
        assert_eq!(
            (noted.transfer_encoding, noted.content_lengths, noted.plain_length, noted.connection),
            (whole.transfer_encoding, whole.content_lengths, whole.plain_length, whole.connection),
            "{fields} fields"
        );
    }
    let (_, noted) = header_map(&head, &spans[..parsed.fields]).expect("valid");
    assert!(noted.transfer_encoding && noted.connection);
    assert_eq!((noted.content_lengths, noted.plain_length), (1, Some(3)));
}

#[test]
fn only_plain_digits_that_fit_are_read_in_passing() {
    assert_eq!(plain_digits(b"0"), Some(0));
    assert_eq!(plain_digits(b"0012"), Some(12));
    assert_eq!(plain_digits(b"18446744073709551615"), Some(u64::MAX));
    for other in [&b""[..], b"18446744073709551616", b"5, 5", b" 5", b"+5", b"-1", b"0x10", b"5a"] {
        assert_eq!(plain_digits(other), None, "{:?}", String::from_utf8_lossy(other));
    }
}

#[test]
fn framing_follows_rfc_9112() {
    let map = |pairs: &[(&'static str, &'static str)]| {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    };
    let get = &Method::GET;
    let ok = StatusCode::OK;
    let cl = |v| map(&[("content-length", v)]);
    assert_eq!(framing(&Method::HEAD, ok, &cl("12")).ok(), Some((Framing::Length(0), false)));
    assert_eq!(framing(get, StatusCode::NO_CONTENT, &map(&[])).ok(), Some((Framing::Length(0), false)));
    assert_eq!(framing(get, StatusCode::NOT_MODIFIED, &cl("7")).ok(), Some((Framing::Length(0), false)));
    assert_eq!(framing(get, ok, &cl("12")).ok(), Some((Framing::Length(12), false)));
    assert_eq!(framing(get, ok, &cl("5, 5")).ok(), Some((Framing::Length(5), false)));
    assert_eq!(framing(get, ok, &map(&[])).ok(), Some((Framing::Eof, false)));
    for bad in ["5, 6", "-1", "+5", "0x10", "", "99999999999999999999999"] {
        assert!(framing(get, ok, &cl(bad)).is_err(), "Content-Length {bad:?} was taken");
    }
    let te = |v| map(&[("transfer-encoding", v)]);
    assert_eq!(framing(get, ok, &te("chunked")).ok(), Some((Framing::Chunked(Chunk::Size), false)));
    assert_eq!(framing(get, ok, &te("gzip, Chunked")).ok(), Some((Framing::Chunked(Chunk::Size), false)));
    assert_eq!(framing(get, ok, &te("chunked, gzip")).ok(), Some((Framing::Eof, false)));
    let both = map(&[("transfer-encoding", "chunked"), ("content-length", "3")]);
    assert_eq!(framing(get, ok, &both).ok(), Some((Framing::Chunked(Chunk::Size), true)));
}

#[tokio::test]
async fn a_content_length_body_arrives_whole_and_its_connection_is_reused() {
    let answer =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 11\r\nx-two: a\r\nx-two: b\r\n\r\nhello world";
    let (instance, mut heads, accepted) = scripted(answer, 7, false).await;
    let upstream = upstream();
    let mut headers = HeaderMap::new();
    headers.insert("x-request", HeaderValue::from_static("1"));
    for _ in 0..3 {
        let res = response(send(&upstream, &instance, &Method::GET, &headers).await);
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-length"], "11");
        assert_eq!(res.headers().get_all("x-two").iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(read(res).await.expect("body").0, "hello world");
        let head = heads.recv().await.expect("head");
        assert!(head.starts_with("GET /a?b=c HTTP/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("host: {}\r\n", instance.addr)), "{head}");
        assert!(head.contains("x-request: 1\r\n"), "{head}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "three exchanges on one connection");
    assert_eq!(idle(&upstream, &instance), 1);
}

#[tokio::test]
async fn a_chunked_body_with_extensions_and_trailers_is_decoded_byte_by_byte() {
    let answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: abc\r\nx-more: 1\r\n\r\n";
    let (instance, _heads, _) = scripted(answer, 1, false).await;
    let upstream = upstream();
    let res = response(send(&upstream, &instance, &Method::GET, &HeaderMap::new()).await);
    let (body, trailers) = read(res).await.expect("body");
    assert_eq!(body, "hello world");
    let trailers = trailers.expect("trailers");
    assert_eq!(trailers["x-checksum"], "abc");
    assert_eq!(trailers["x-more"], "1");
    assert_eq!(idle(&upstream, &instance), 1, "a chunked body read to its end leaves the connection reusable");
}

#[tokio::test]
async fn a_chunked_body_without_trailers_ends_and_is_reused() {
    let answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let (instance, _heads, accepted) = scripted(answer, 4, false).await;
    let upstream = upstream();
    for _ in 0..2 {
        let res = response(send(&upstream, &instance, &Method::GET, &HeaderMap::new()).await);
        let (body, trailers) = read(res).await.expect("body");
        assert_eq!(body, "abc");
        assert!(trailers.is_none());
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn malformed_chunks_fail_the_body_and_close_the_connection() {
    for answer in [
        &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n",
    ] {
        let answer: &'static [u8] = Box::leak(answer.to_vec().into_boxed_slice());
        let (instance, _heads, _) = scripted(answer, 5, false).await;
        let upstream = upstream();
        let res = response(send(&upstream, &instance, &Method::GET, &HeaderMap::new()).await);
        let error = read(res).await.expect_err("a malformed body");
        assert!(error.contains("malformed"), "{error}");
        assert_eq!(idle(&upstream, &instance), 0);
    }
}

#[tokio::test]
async fn a_body_cut_short_is_an_error() {
    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this";
    let (instance, _heads, _) = scripted(answer, 64, true).await;
    let upstream = upstream();
    let res = response(send(&upstream, &instance, &Method::GET, &HeaderMap::new()).await);
    let error = read(res).await.expect_err("a short body");
    assert!(error.contains("closed the connection before its response body ended"), "{error}");
}

#[tokio::test]
async fn a_body_without_a_length_runs_to_the_connections_end_and_is_not_reused() {
    let answer = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end";
    let (instance, _heads, _) = scripted(answer, 3, true).await;
    let upstream = upstream();
    let res = response(send(&upstream, &instance, &Method::GET, &HeaderMap::new()).await);
    assert_eq!(read(res).await.expect("body").0, "until the end");
    assert_eq!(idle(&upstream, &instance), 0);
}

#[tokio::test]
async fn a_head_response_has_no_body_and_frees_its_connection_at_once() {
    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n";
    let (instance, mut heads, _) = scripted(answer, 64, false).await;
    let upstream = upstream();
    let res = response(send(&upstream, &instance, &Method::HEAD, &HeaderMap::new()).await);
    assert_eq!(res.headers()["content-length"], "1234", "the length a GET would have had stays");
    assert_eq!(idle(&upstream, &instance), 1, "back in the pool before the body is read");
    assert!(read(res).await.expect("body").0.is_empty());
    assert!(heads.recv().await.expect("head").starts_with("HEAD /a?b=c HTTP/1.1\r\n"));
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok";
    let (instance, _heads, _) = scripted(answer, 9, false).await;
    let upstream = upstream();
    let res = response(send(&upstream, &instance, &Method::GET, &HeaderMap::new()).await);
    assert_eq!(res.status(), 201);
    assert!(!res.headers().contains_key("link"));
    assert_eq!(read(res).await.expect("body").0, "ok");
}

#[tokio::test]
async fn connections_that_cannot_carry_another_exchange_are_not_pooled() {
    for answer in [
        &b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"[..],
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokEXTRA",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 99\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    ] {
        let answer: &'static [u8] = Box::leak(answer.to_vec().into_boxed_slice());
        let (instance, _heads, _) = scripted(answer, answer.len(), false).await;
        let upstream = upstream();
        let res = response(send(&upstream, &instance, &Method::GET, &HeaderMap::new()).await);
        assert!(!res.headers().contains_key("content-length") || !res.headers().contains_key("transfer-encoding"));
        assert_eq!(read(res).await.expect("body").0, "ok");
        assert_eq!(idle(&upstream, &instance), 0, "{}", String::from_utf8_lossy(answer));
    }
}

#[tokio::test]
async fn bad_heads_are_refused_with_the_reason() {
    let cases: [(&[u8], &str); 4] = [
        (b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\n", "101"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n", "conflicting Content-Length"),
        (b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n", "malformed"),
    ];
    for (answer, expected) in cases {
        let answer: &'static [u8] = Box::leak(answer.to_vec().into_boxed_slice());
        let (instance, _heads, _) = scripted(answer, 64, false).await;
        let error = failure(send(&upstream(), &instance, &Method::GET, &HeaderMap::new()).await);
        assert!(error.contains(expected), "{error} (expected {expected})");
    }
}

#[tokio::test]
async fn a_head_beyond_the_limits_is_refused() {
    let mut huge = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
    huge.resize(huge.len() + MAX_HEAD + 10, b'a');
    huge.extend_from_slice(b"\r\n\r\n");
    let huge: &'static [u8] = Box::leak(huge.into_boxed_slice());
    let (instance, _heads, _) = scripted(huge, 65536, false).await;
    let error = failure(send(&upstream(), &instance, &Method::GET, &HeaderMap::new()).await);
    assert!(error.contains("larger than"), "{error}");

    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        many.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"content-length: 0\r\n\r\n");
    let many: &'static [u8] = Box::leak(many.into_boxed_slice());
    let (instance, _heads, _) = scripted(many, 4096, false).await;
    let error = failure(send(&upstream(), &instance, &Method::GET, &HeaderMap::new()).await);
    assert!(error.contains("more than 100 header fields"), "{error}");
}

#[tokio::test]
async fn an_instance_that_closes_before_answering_fails_the_exchange() {
    let (instance, _heads, _) = scripted(b"", 1, true).await;
    let error = failure(send(&upstream(), &instance, &Method::GET, &HeaderMap::new()).await);
    assert!(error.contains("closed the connection before its response began"), "{error}");
}

#[tokio::test]
async fn an_idle_connection_the_instance_closed_is_found_out() {
    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    let (open, _heads, _) = scripted(answer, 64, false).await;
    let (closing, _heads2, _) = scripted(answer, 64, true).await;
    let upstream = upstream();
    for instance in [&open, &closing] {
        let res = response(send(&upstream, instance, &Method::GET, &HeaderMap::new()).await);
        assert_eq!(read(res).await.expect("body").0, "ok");
        assert_eq!(idle(&upstream, instance), 1);
    }
    let kept = upstream.raw.checkout(open.id).expect("the open instance's connection");
    assert!(kept.is_idle_and_open(), "a connection whose response ended is idle and open");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(kept.is_idle_and_open(), "and stays so while the instance keeps it");
    // Once the driver has seen the other instance close its connection, a checkout drops it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !upstream.raw.state.lock().by_instance[&closing.id].iter().any(|e| e.conn.has_news()) {
        assert!(Instant::now() < deadline, "the instance's close was never seen");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(upstream.raw.checkout(closing.id).is_none());
    assert_eq!(idle(&upstream, &closing), 0);
}

#[tokio::test]
async fn bytes_an_instance_sends_on_an_idle_connection_are_not_taken_for_the_next_response() {
    // The first connection answers once, then (when told) writes a stray 408 on the idle
    // connection and says so; any other connection answers "fresh".
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stray = Arc::new(tokio::sync::Notify::new());
    let (written_tx, written) = tokio::sync::oneshot::channel::<()>();
    let accepted = Arc::new(AtomicUsize::new(0));
    let (counted, telling) = (accepted.clone(), stray.clone());
    tokio::spawn(async move {
        let mut written_tx = Some(written_tx);
        while let Ok((mut stream, _)) = listener.accept().await {
            let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
            let (stray, written_tx) = (telling.clone(), if first { written_tx.take() } else { None });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let Ok(n) = stream.read(&mut buf).await else { return };
                if n == 0 {
                    return;
                }
                let body = if first { "first" } else { "fresh" };
                let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n{body}");
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                if let Some(tx) = written_tx {
                    stray.notified().await;
                    let _ = stream.write_all(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n").await;
                    let _ = tx.send(());
                }
                // Keeps the connection open, reading whatever comes.
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                }
            });
        }
    });
    let instance = Instance::new(3_000_000, addr);
    let upstream = upstream();
    let res = response(send(&upstream, &instance, &Method::GET, &HeaderMap::new()).await);
    assert_eq!(read(res).await.expect("body").0, "first");
    assert_eq!(idle(&upstream, &instance), 1);
    stray.notify_one();
    written.await.expect("the stray answer was written");
    // Wait until tokio's driver has seen it arrive (a test needs the event processed; the
    // router takes whatever the driver knows at checkout).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let noticed = upstream.raw.state.lock().by_instance[&instance.id].iter().any(|e| e.conn.has_news());
        if noticed {
            break;
        }
        assert!(Instant::now() < deadline, "the stray bytes never arrived");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let res = response(send(&upstream, &instance, &Method::GET, &HeaderMap::new()).await);
    assert_eq!(res.status(), 200, "the stray 408 was taken for the answer");
    assert_eq!(read(res).await.expect("body").0, "fresh");
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "the second request went on a new connection");
}

/// Feeds `wire` to the body decoder in `pieces` (sizes, cycled) as reads would, collecting
/// data and trailers until the body ends; `Err` with the decoder's error.
fn decode_in_pieces(
    mut framing: Framing,
    wire: &[u8],
    pieces: &[usize],
) -> Result<(Vec<u8>, Option<HeaderMap>), String> {
    let mut buf = BytesMut::new();
    let (mut data, mut trailers) = (Vec::new(), None);
    let mut fed = 0;
    let mut sizes = pieces.iter().cycle();
    loop {
        match decode(&mut framing, &mut buf) {
            Ok(Step::Frame(frame)) => match frame.into_data() {
                Ok(bytes) => data.extend_from_slice(&bytes),
                Err(frame) => trailers = frame.into_trailers().ok(),
            },
            Ok(Step::End) => return Ok((data, trailers)),
            Ok(Step::More) => {
                if fed == wire.len() {
                    return Err("the wire ended before the body".into());
                }
                let n = sizes.next().copied().unwrap_or(1).clamp(1, wire.len() - fed);
                buf.extend_from_slice(&wire[fed..fed + n]);
                fed += n;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

proptest::proptest! {
    /// Any body, chunked any way (with extensions and trailers or not) and read in any pieces,
    /// decodes to itself with its trailers; and a Content-Length body likewise.
    #[test]
    fn any_chunking_read_in_any_pieces_decodes_to_the_body(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
        chunks in proptest::collection::vec(1usize..700, 1..8),
        pieces in proptest::collection::vec(1usize..64, 1..8),
        extension in proptest::prelude::any::<bool>(),
        with_trailers in proptest::prelude::any::<bool>(),
    ) {
        let mut wire = Vec::new();
        let mut rest = &body[..];
        let mut sizes = chunks.iter().cycle();
        while !rest.is_empty() {
            let n = sizes.next().copied().unwrap_or(1).min(rest.len());
            let ext = if extension { ";name=\"v\"" } else { "" };
            wire.extend_from_slice(format!("{n:X}{ext}\r\n").as_bytes());
            wire.extend_from_slice(&rest[..n]);
            wire.extend_from_slice(b"\r\n");
            rest = &rest[n..];
        }
        wire.extend_from_slice(b"0\r\n");
        if with_trailers {
            wire.extend_from_slice(b"x-sum: 1\r\nx-more: two\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        let (data, trailers) = decode_in_pieces(Framing::Chunked(Chunk::Size), &wire, &pieces)
            .map_err(proptest::test_runner::TestCaseError::fail)?;
        proptest::prop_assert_eq!(&data, &body);
        proptest::prop_assert_eq!(trailers.is_some(), with_trailers);
        if let Some(trailers) = trailers {
            proptest::prop_assert_eq!(&trailers["x-more"], "two");
        }
        let (data, _) = decode_in_pieces(Framing::Length(body.len() as u64), &body, &pieces)
            .map_err(proptest::test_runner::TestCaseError::fail)?;
        proptest::prop_assert_eq!(&data, &body);
    }

    /// Cut anywhere before its end, a chunked body never decodes to an end.
    #[test]
    fn a_chunked_body_cut_short_never_ends(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..500),
        cut in proptest::prelude::any::<proptest::sample::Index>(),
    ) {
        let mut wire = format!("{:x}\r\n", body.len()).into_bytes();
        wire.extend_from_slice(&body);
        wire.extend_from_slice(b"\r\n0\r\n\r\n");
        let cut = cut.index(wire.len());
        proptest::prop_assert!(decode_in_pieces(Framing::Chunked(Chunk::Size), &wire[..cut], &[7]).is_err());
    }
}

#[test]
fn a_blank_line_is_found_across_reads_looking_at_new_bytes_only() {
    let wire = b"HTTP/1.1 200 OK\r\nx: 1\r\n\r\nbody";
    let mut searched = 0;
    let end = wire.windows(4).position(|w| w == b"\r\n\r\n").expect("a blank line") + 4;
    for len in 1..=wire.len() {
        let found = blank_line_since(&wire[..len], &mut searched);
        assert_eq!(found, len == end, "at {len} bytes: found once, when it is whole");
        assert_eq!(searched, len);
    }
    assert!(blank_line_since(b"a\n\nb", &mut 0));
    assert!(!blank_line_since(b"a\r\nb\r\n", &mut 0));
}

proptest::proptest! {
    /// The search answers as looking at every two and three bytes would, for any bytes and
    /// any place a previous search stopped.
    #[test]
    fn the_blank_line_search_agrees_with_a_plain_scan(
        buf in proptest::collection::vec(proptest::sample::select(b"\r\nab".to_vec()), 0..64),
        searched in 0usize..70,
    ) {
        let from = searched.saturating_sub(2);
        let tail = buf.get(from..).unwrap_or_default();
        let plain = tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n");
        let mut at = searched;
        proptest::prop_assert_eq!(blank_line_since(&buf, &mut at), plain);
        proptest::prop_assert_eq!(at, buf.len());
    }
}

/// A response head, parsed as the exchange parses it, passed through (or not) for the lane.
fn passed(head: &'static str, method: &Method) -> Option<(String, bool, Option<u64>, Framing, bool)> {
    let mut spans = [Span::default(); MAX_HEADERS];
    let (len, parsed) = scan_head(head.as_bytes(), &mut spans).expect("valid").expect("complete");
    let bytes = Bytes::from_static(head.as_bytes()).slice(..len);
    let (head, framing, close) = pass_head(&bytes, parsed.status, method, &spans[..parsed.fields])?;
    let text = String::from_utf8(head.bytes.to_vec()).expect("text");
    Some((text, head.date, head.length, framing, close))
}

#[test]
fn a_plain_response_head_is_passed_as_it_came_without_hop_by_hop_fields() {
    let (text, date, length, framing, close) = passed(
        "HTTP/1.1 200 Fine\r\nContent-Type: text/plain\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive, close\r\nX-Case: Kept\r\nDate: Tue, 01 Dec 2026 00:00:00 GMT\r\nContent-Length: 12\r\nUpgrade: h2c\r\nProxy-Authenticate: Basic\r\n\r\nbody",
        &Method::GET,
    )
    .expect("passed");
    assert_eq!(
        text,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Case: Kept\r\nDate: Tue, 01 Dec 2026 00:00:00 GMT\r\nContent-Length: 12\r\n"
    );
    assert_eq!((date, length, framing, close), (true, Some(12), Framing::Length(12), true));

    let (text, date, length, framing, close) = passed("HTTP/1.0 404 Not Found\r\n\r\n", &Method::GET).expect("passed");
    assert_eq!(
        (text.as_str(), date, length, framing, close),
        ("HTTP/1.1 404 Not Found\r\n", false, None, Framing::Eof, false)
    );

    let (_, _, length, framing, _) =
        passed("HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n", &Method::HEAD).expect("passed");
    assert_eq!((length, framing), (Some(99), Framing::Length(0)), "HEAD keeps its length and has no body");
    let (_, _, _, framing, _) = passed("HTTP/1.1 304 Not Modified\r\n\r\n", &Method::GET).expect("passed");
    assert_eq!(framing, Framing::Length(0));
}

#[test]
fn a_response_head_that_needs_the_long_way_is_not_passed() {
    for head in [
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nConnection: x-private\r\nX-Private: 1\r\n\r\n",
    ] {
        assert!(passed(head, &Method::GET).is_none(), "{head:?}");
    }
}

#[tokio::test]
async fn a_passed_head_leaves_the_header_map_empty_and_the_body_whole() {
    let (instance, _heads, _) =
        scripted(b"HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 5\r\n\r\nhello", 3, false).await;
    let upstream = upstream();
    let path: PathAndQuery = "/".parse().expect("path");
    let headers = HeaderMap::new();
    let req = RequestHead {
        method: &Method::GET,
        path: &path,
        fields: Fields::Map { headers: &headers, forwarded: None },
        pass_head: true,
    };
    for _ in 0..2 {
        let mut deadline = HeadDeadline::at(Instant::now() + Duration::from_secs(10));
        let mut res = response(upstream.send_bodiless(&instance, &req, &mut deadline).await);
        assert!(res.headers().is_empty());
        let InstanceBody::Raw(body) = res.body_mut() else { panic!("not the own client's body") };
        let head = body.take_passed_head().expect("passed");
        assert_eq!(&head.bytes[..], b"HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 5\r\n");
        assert_eq!(read(res).await.expect("body").0, "hello");
    }
    assert_eq!(idle(&upstream, &instance), 1, "the connection was reused");
}
