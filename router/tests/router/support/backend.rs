//! In-test backends: a hyper server with a handler, and listeners that misbehave.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::{BoxError, TestBody, full};

/// An in-test hyper server (HTTP/1.1 and h2c) on 127.0.0.1:0; every response carries
/// `x-backend: <name>`. Stops when dropped.
pub struct Backend {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Backend {
    /// Serves `handler`.
    pub async fn start<F, Fut>(name: &'static str, handler: F) -> Backend
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
        let addr = listener.local_addr().expect("backend addr");
        let handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let handler = handler.clone();
                let svc = hyper::service::service_fn(move |req| {
                    let fut = handler(req);
                    async move {
                        let mut res = fut.await;
                        res.headers_mut().insert("x-backend", http::HeaderValue::from_static(name));
                        Ok::<_, Infallible>(res)
                    }
                });
                conns.spawn(async move {
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Backend { addr, task }
    }

    /// Answers with JSON describing the request: method, path, version, headers, body.
    pub async fn echo(name: &'static str) -> Backend {
        Self::start(name, move |req| async move { echo(name, req).await }).await
    }

    /// Streams the request body back as the response body.
    pub async fn mirror(name: &'static str) -> Backend {
        Self::start(name, |req: Request<Incoming>| async move {
            Response::new(req.into_body().map_err(BoxError::from).boxed_unsync())
        })
        .await
    }

    /// Passes every request through `gate` (arrival reported, then held until opened), then
    /// echoes it.
    pub async fn gated(name: &'static str, gate: GateHandle) -> Backend {
        Self::start(name, move |req| {
            let gate = gate.clone();
            async move {
                gate.pass().await;
                echo(name, req).await
            }
        })
        .await
    }

    /// Never answers (the request stays pending until the connection goes away).
    pub async fn silent(name: &'static str) -> Backend {
        Self::start(name, |_req| std::future::pending()).await
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(name: &str, req: Request<Incoming>) -> Response<TestBody> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<Value> =
            parts.headers.get_all(name).iter().map(|v| Value::from(String::from_utf8_lossy(v.as_bytes()))).collect();
        headers.insert(name.to_string(), Value::from(values));
    }
    let doc = json!({
        "backend": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or(""),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    Response::new(full(doc.to_string()))
}

/// A listener on 127.0.0.1 that accepts connections and closes them without answering.
pub async fn slammer() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    (addr, task)
}

/// An address nothing listens on: bound, then closed.
pub async fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

/// Holds requests in a backend until the test opens it; reports each arrival.
pub struct Gate {
    arrived: mpsc::UnboundedReceiver<()>,
    handle: GateHandle,
}

#[derive(Clone)]
pub struct GateHandle {
    arrived: mpsc::UnboundedSender<()>,
    open: watch::Sender<bool>,
}

impl Gate {
    pub fn new() -> Gate {
        let (tx, arrived) = mpsc::unbounded_channel();
        Gate { arrived, handle: GateHandle { arrived: tx, open: watch::Sender::new(false) } }
    }

    pub fn handle(&self) -> GateHandle {
        self.handle.clone()
    }

    /// Waits until a request has reached the backend.
    pub async fn arrived(&mut self) {
        self.arrived.recv().await.expect("gate handle alive");
    }

    /// Lets every held and future request through.
    pub fn open(&self) {
        self.handle.open.send_replace(true);
    }
}

impl GateHandle {
    async fn pass(&self) {
        let _ = self.arrived.send(());
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|o| *o).await;
    }
}

/// Answers every request with its body's length (`received N`), after reading all of it.
pub async fn counter(name: &'static str) -> Backend {
    Backend::start(name, |req: Request<Incoming>| async move {
        let mut body = req.into_body();
        let mut len = 0usize;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => len += frame.data_ref().map_or(0, |d| d.len()),
                Err(e) => return Response::new(super::full(format!("body failed after {len} bytes: {e}"))),
            }
        }
        Response::new(super::full(format!("received {len}")))
    })
    .await
}

/// The answer [`early_answerer`] sends.
pub const EARLY_ANSWER: &str = "request body too large; not reading it\n";

/// A raw HTTP/1.1 server that, as soon as it has a request head, answers
/// `413` with [`EARLY_ANSWER`] and `Connection: close`, then closes the connection without
/// reading the body (so the kernel resets it when body bytes are left unread). Counts heads.
pub async fn early_answerer() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>, JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let heads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = heads.clone();
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let heads = counted.clone();
            conns.spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                heads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answer = format!(
                    "HTTP/1.1 413 Payload Too Large\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{EARLY_ANSWER}",
                    EARLY_ANSWER.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.flush().await;
            });
        }
    });
    (addr, heads, task)
}

/// A raw HTTP/1.1 server that reads a request head and closes the connection without answering
/// or reading the body.
pub async fn head_then_hang_up() -> (SocketAddr, JoinHandle<()>) {
    raw_server(None).await
}

/// A raw HTTP/1.1 server that answers every request head it reads with `answer`, byte for
/// byte, keeping the connection open.
pub async fn scripted_backend(answer: &'static [u8]) -> (SocketAddr, JoinHandle<()>) {
    raw_server(Some(answer)).await
}

/// A raw HTTP/1.1 server reading request heads: with `answer`, it writes it for each head read;
/// without, it closes the connection after the first head.
async fn raw_server(answer: Option<&'static [u8]>) -> (SocketAddr, JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            conns.spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        let Some(answer) = answer else { return };
                        head.drain(..end + 4);
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
            });
        }
    });
    (addr, task)
}

/// A backend whose (single) response body is fed by the test.
pub async fn fed_backend() -> (Backend, mpsc::Sender<bytes::Bytes>) {
    let (tx, body) = super::Channel::pair();
    let body = Arc::new(parking_lot::Mutex::new(Some(body)));
    let backend = Backend::start("fed", move |_req| {
        let body = body.lock().take().unwrap_or_else(super::empty);
        async move { Response::new(body) }
    })
    .await;
    (backend, tx)
}
