//! The sample apps Knative's sample images resolve to locally; `autoscale.rs` has
//! `sluice sample autoscale` (Knative's `autoscale-go`).
//!
//! `sluice sample hello` is the app Knative's `helloworld-go` image resolves to locally. It
//! answers `Hello {TARGET}!` on `$PORT`, plus a few endpoints tests and demos use: `/echo`
//! (streams the request body back), `/sleep?ms=N`, `/status/N`, `/headers`,
//! `/version` (the HTTP version the request arrived in, e.g. `HTTP/2.0`: it speaks HTTP/1.1 and
//! h2c); and with `--test-endpoints` (Sluice's tests only) `/env/NAME`, `/crash?code=N`
//! (writes a line to stderr and exits with code N at once, like a crash), `/sicken` (from then on
//! `/healthz` answers 500, as a hung or broken app's health check does) and `/early` (answers
//! 413 with `Connection: close` without reading the request body, as a server refusing an
//! upload does); with `--test-endpoints`, `RESPONSE_STATUS=N` in its environment makes the greeting
//! answer with status N (a revision that fails its requests). Everywhere else it reads every request body to its end before it answers. Every response carries `K-Revision: $K_REVISION`
//! (when set), so a test can tell which revision answered even where the body does not say.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

type Body = BoxBody<Bytes, hyper::Error>;

/// Set by `/sicken`: `/healthz` answers 500 from then on.
static SICK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

mod autoscale;

pub use autoscale::autoscale;

/// Serves until SIGTERM/SIGINT, then lets open requests finish.
pub async fn hello(test_endpoints: bool) -> anyhow::Result<()> {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "World".to_string());
    let greeting = Bytes::from(format!("Hello {target}!\n"));
    // A revision that fails every request, for tests of rollouts that must be undone.
    let status = std::env::var("RESPONSE_STATUS")
        .ok()
        .filter(|_| test_endpoints)
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::OK);
    serve(move |req| handle(req, greeting.clone(), status, test_endpoints)).await
}

/// Serves `handler` on `127.0.0.1:$PORT` (HTTP/1.1 and h2c) until SIGTERM/SIGINT, then lets
/// open requests finish (for up to 30 s). Every response carries `K-Revision: $K_REVISION`.
async fn serve<F, Fut>(handler: F) -> anyhow::Result<()>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
{
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8080);
    // Loopback only: the router reaches it there, and nothing else should.
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let revision = std::env::var("K_REVISION").ok().and_then(|r| HeaderValue::try_from(r).ok());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let graceful = GracefulShutdown::new();
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(_) => continue,
            },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let _ = stream.set_nodelay(true);
        let (handler, revision) = (handler.clone(), revision.clone());
        let svc = hyper::service::service_fn(move |req| {
            let (handler, revision) = (handler.clone(), revision.clone());
            async move {
                let mut res = handler(req).await?;
                if let Some(revision) = revision {
                    res.headers_mut().insert("k-revision", revision);
                }
                Ok::<_, Infallible>(res)
            }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), svc).into_owned());
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => {}
    }
    Ok(())
}

async fn handle(
    req: Request<Incoming>,
    greeting: Bytes,
    status: StatusCode,
    test_endpoints: bool,
) -> Result<Response<Body>, Infallible> {
    if matches!(*req.method(), Method::POST | Method::PUT) && req.uri().path() == "/echo" {
        let ct = req.headers().get(http::header::CONTENT_TYPE).cloned();
        let mut res = Response::new(req.into_body().boxed());
        if let Some(ct) = ct {
            res.headers_mut().insert(http::header::CONTENT_TYPE, ct);
        }
        return Ok(res);
    }
    if test_endpoints && req.uri().path() == "/early" {
        let mut res = text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large; not reading it\n".into());
        res.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(res);
    }
    // Read the request body to its end (keeping none of it) before answering: a server that
    // answers and closes with body bytes unread makes the kernel reset the connection, and the
    // client (or the router in front) may lose the answer.
    let req = drained(req).await;
    let path = req.uri().path().to_string();
    let response = match (req.method(), path.as_str()) {
        (_, "/sleep") => {
            let ms = query(&req, "ms").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            text(StatusCode::OK, format!("slept {ms} ms\n"))
        }
        (_, "/headers") => {
            let map: serde_json::Map<String, serde_json::Value> = req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned().into()))
                .collect();
            text(StatusCode::OK, serde_json::Value::Object(map).to_string())
        }
        (_, p) if p.starts_with("/status/") => {
            let code = p["/status/".len()..].parse::<u16>().ok().and_then(|c| StatusCode::from_u16(c).ok());
            match code {
                Some(code) => text(code, format!("{code}\n")),
                None => text(StatusCode::BAD_REQUEST, "status must be a number 100-999\n".into()),
            }
        }
        (_, p) if test_endpoints && p.starts_with("/env/") => match std::env::var(&p["/env/".len()..]) {
            Ok(v) => text(StatusCode::OK, v),
            Err(_) => text(StatusCode::NOT_FOUND, "unset\n".into()),
        },
        (_, "/version") => text(StatusCode::OK, format!("{:?}\n", req.version())),
        (_, "/healthz") if SICK.load(std::sync::atomic::Ordering::Relaxed) => {
            text(StatusCode::INTERNAL_SERVER_ERROR, "sick\n".into())
        }
        (_, "/healthz") => text(StatusCode::OK, "ok\n".into()),
        (_, "/sicken") if test_endpoints => {
            SICK.store(true, std::sync::atomic::Ordering::Relaxed);
            eprintln!("sickened on request: /healthz answers 500 from now on");
            text(StatusCode::OK, "sick from now on\n".into())
        }
        (_, "/crash") if test_endpoints => {
            let code = query(&req, "code").and_then(|v| v.parse::<u8>().ok()).unwrap_or(1);
            eprintln!("crashing on request with exit code {code}");
            std::process::exit(i32::from(code));
        }
        _ => {
            let mut res = Response::new(Full::new(greeting).map_err(|never| match never {}).boxed());
            *res.status_mut() = status;
            res
        }
    };
    Ok(response)
}

/// Reads the request body to its end, keeping none of it.
async fn drained(req: Request<Incoming>) -> Request<()> {
    let (parts, mut body) = req.into_parts();
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }
    Request::from_parts(parts, ())
}

fn query<'a, B>(req: &'a Request<B>, key: &str) -> Option<&'a str> {
    req.uri().query()?.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn text(code: StatusCode, body: String) -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed());
    *res.status_mut() = code;
    res
}
