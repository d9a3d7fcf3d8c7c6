//! HTTP as written on the wire, for what the pooled [`Client`](crate::http::Client) will not
//! do: a raw HTTP/1.1 exchange (a `CONNECT`, an exact status line), a request over HTTP/2 with
//! prior knowledge (h2c), and a body read line by line as it arrives (a watch).

use std::time::Duration;

use anyhow::{Context, anyhow};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// A response read off the socket.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status line, e.g. `HTTP/1.1 405 Method Not Allowed`.
    pub status_line: String,
    /// The header lines, as sent.
    pub headers: Vec<String>,
    /// The body (as many bytes as `Content-Length` says, else up to the close).
    pub body: String,
}

/// Writes `request` to `addr` as given and reads one response, until the body is complete or
/// the server closes; fails after `deadline`.
pub async fn exchange(addr: &str, request: &str, deadline: Duration) -> anyhow::Result<RawResponse> {
    tokio::time::timeout(deadline, async {
        let mut stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(res) = parse(&buf) {
                return Ok(res);
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return parse_closed(&buf);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .map_err(|_| anyhow!("no complete response from {addr} within {deadline:?}"))?
}

/// A response whose body is complete by its `Content-Length`; None while more is needed.
fn parse(buf: &[u8]) -> Option<RawResponse> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let (status_line, headers) = head(&buf[..end]);
    let length = headers.iter().find_map(|h| {
        let (name, value) = h.split_once(':')?;
        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
    })?;
    let body = buf.get(end + 4..end + 4 + length)?;
    Some(RawResponse { status_line, headers, body: String::from_utf8_lossy(body).into_owned() })
}

/// The response when the server closed: everything after the head is the body.
fn parse_closed(buf: &[u8]) -> anyhow::Result<RawResponse> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("connection closed before a response head: {:?}", String::from_utf8_lossy(buf)))?;
    let (status_line, headers) = head(&buf[..end]);
    Ok(RawResponse { status_line, headers, body: String::from_utf8_lossy(&buf[end + 4..]).into_owned() })
}

fn head(bytes: &[u8]) -> (String, Vec<String>) {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split("\r\n").map(str::to_string);
    let status_line = lines.next().unwrap_or_default();
    (status_line, lines.collect())
}

/// `GET http://{authority}{path}` over one new HTTP/2 prior-knowledge connection to `addr`
/// (the authority travels as `:authority`, which the router routes on); status and body.
pub async fn h2c_get(addr: &str, authority: &str, path: &str) -> anyhow::Result<(StatusCode, String)> {
    let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let req = Request::get(format!("http://{authority}{path}")).body(Empty::<Bytes>::new())?;
    let res = sender.send_request(req).await;
    drop(sender);
    let result = match res {
        Ok(res) => {
            let status = res.status();
            let body = res.into_body().collect().await?.to_bytes();
            Ok((status, String::from_utf8_lossy(&body).into_owned()))
        }
        Err(e) => Err(e.into()),
    };
    conn.abort();
    result
}

/// The `Authorization` header line (with its CRLF) that shows the API server `token`, for a
/// raw request given to [`exchange`].
pub fn authorization(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

/// `GET url`, with the body handed over line by line as it arrives (a watch stream), sending
/// `token` as a bearer token when given: the status, and a receiver that ends with the body.
/// The reading task stops when the receiver is dropped.
pub async fn lines(url: &str, token: Option<&str>) -> anyhow::Result<(StatusCode, mpsc::Receiver<String>)> {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut req = Request::get(url);
    if let Some(token) = token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let res = client.request(req.body(Empty::new())?).await?;
    let status = res.status();
    let mut body = res.into_body();
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut pending = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else { continue };
            pending.extend_from_slice(&data);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if tx.send(String::from_utf8_lossy(&line[..end]).into_owned()).await.is_err() {
                    return;
                }
            }
        }
        // A body that is not a stream (a `Status` refusing the watch) has no final newline.
        if !pending.is_empty() {
            let _ = tx.send(String::from_utf8_lossy(&pending).into_owned()).await;
        }
    });
    Ok((status, rx))
}
