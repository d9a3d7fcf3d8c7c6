//! Sluice's embedded Kubernetes-compatible API server for `serving.knative.dev/v1` (and core
//! ConfigMaps and Namespaces), so kubectl and kube-rs work against Sluice as they would against
//! a cluster; and its durable [`store`] (redb), a module here until it has a second user.

pub mod auth;
mod body;
mod discovery;
pub mod kubeconfig;
mod openapi;
pub mod patch;
pub mod protobuf;
mod query;
mod resource;
pub mod selector;
pub mod status;
pub mod store;
mod table;
pub mod tls;
mod watch;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Value, json};
use sluice_api::Kind;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::auth::Token;
use crate::store::{Store, StoreError};
use query::Query;
use resource::Target;
use status::ApiError;
pub use watch::{BufferLimits, DEFAULT_MAX_WATCHES, WatchLimits};

/// How long open requests get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(5);
/// How long a client has to send a request head (and a new connection its first byte).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Response bodies: whole documents or watch streams.
pub type ApiBody = BoxBody<Bytes, Infallible>;

/// What every handler shares.
pub struct Ctx {
    /// The store.
    pub store: Arc<Store>,
    /// Cancelled when the server shuts down; ends watches.
    pub shutdown: CancellationToken,
    /// How often an idle watch sends a BOOKMARK.
    pub bookmark_interval: Duration,
    /// How many watches may run, and how much each may buffer.
    pub(crate) watches: watch::Watches,
    /// The bearer token every request but the public ones must carry.
    pub(crate) token: Token,
}

/// The API server.
pub struct ApiServer {
    ctx: Arc<Ctx>,
    header_read_timeout: Duration,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Where a request path leads.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Endpoint {
    Root,
    Version,
    Health,
    CoreVersions,
    Groups,
    Group(String),
    Resources(String),
    OpenApiIndex,
    OpenApiDoc(String),
    Resource(Target),
}

// === impl ApiServer ===

impl ApiServer {
    /// A server over `store` that admits requests bearing `token` and stops when `shutdown` is
    /// cancelled.
    pub fn new(store: Arc<Store>, shutdown: CancellationToken, token: Token) -> Self {
        Self::with_watch_limits(store, shutdown, token, WatchLimits::default())
    }

    /// A server as [`ApiServer::new`] with these watch limits.
    pub fn with_watch_limits(
        store: Arc<Store>,
        shutdown: CancellationToken,
        token: Token,
        limits: WatchLimits,
    ) -> Self {
        let watches = watch::Watches::new(limits);
        Self {
            ctx: Arc::new(Ctx { store, shutdown, bookmark_interval: Duration::from_secs(30), watches, token }),
            header_read_timeout: HEADER_READ_TIMEOUT,
            tls: None,
        }
    }

    /// Also serves TLS with `identity` on the same port: a connection that opens with a TLS
    /// handshake is served over TLS (what kubectl needs to send the token), any other as
    /// plain HTTP.
    pub fn tls(mut self, identity: &tls::Identity) -> Result<Self, tls::CertificateError> {
        self.tls = Some(identity.acceptor()?);
        Ok(self)
    }

    /// How long a new connection has to send its first byte, and an HTTP/1 request its head
    /// (also what an idle keep-alive connection is given before it is closed). Default 30 s.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Serves connections from `listener` until shutdown; then stops accepting, lets open
    /// requests finish (watches end at once) for up to [`DRAIN`], closes what is left and
    /// returns. Every connection task is owned here and has ended when this returns.
    pub async fn serve(self, listener: TcpListener) {
        let graceful = GracefulShutdown::new();
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(self.header_read_timeout);
        builder.http2().timer(TokioTimer::new());
        let builder = Arc::new(builder);
        let mut connections = JoinSet::new();
        let mut accept_failing = false;
        loop {
            tokio::select! {
                biased;
                () = self.ctx.shutdown.cancelled() => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        if std::mem::take(&mut accept_failing) {
                            tracing::info!("api server accepting connections again");
                        }
                        let (ctx, builder, watcher) = (self.ctx.clone(), builder.clone(), graceful.watcher());
                        let (first_byte, tls) = (self.header_read_timeout, self.tls.clone());
                        connections.spawn(async move {
                            // Version sniffing reads without a deadline: a client that never
                            // sends a byte would hold the socket for good.
                            let mut first = [0u8; 1];
                            match tokio::time::timeout(first_byte, stream.peek(&mut first)).await {
                                Ok(Ok(n)) if n > 0 => {}
                                _ => return,
                            }
                            let _ = stream.set_nodelay(true);
                            match tls.filter(|_| first[0] == tls::HANDSHAKE) {
                                None => serve_connection(ctx, &builder, watcher, stream).await,
                                // The handshake shares the first-byte deadline's purpose: a
                                // client that stalls in it must not hold the socket.
                                Some(tls) => match tokio::time::timeout(first_byte, tls.accept(stream)).await {
                                    Ok(Ok(stream)) => serve_connection(ctx, &builder, watcher, stream).await,
                                    Ok(Err(e)) => tracing::debug!(error = %e, "api TLS handshake failed"),
                                    Err(_) => tracing::debug!("api TLS handshake timed out"),
                                },
                            }
                        });
                    }
                    Err(e) => {
                        if !std::mem::replace(&mut accept_failing, true) {
                            tracing::warn!(error = %e, open = connections.len(), "api server accept failed; serving open connections and retrying");
                        }
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
        }
        drop(listener);
        if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
            tracing::warn!("api server: connections still open after {DRAIN:?}; closing");
        }
        connections.shutdown().await;
    }
}

type ConnBuilder = hyper_util::server::conn::auto::Builder<TokioExecutor>;

/// Serves one connection (plain or TLS) until it ends, the drain closes it, or a watch on it
/// falls behind.
async fn serve_connection<I>(
    ctx: Arc<Ctx>,
    builder: &ConnBuilder,
    watcher: hyper_util::server::graceful::Watcher,
    io: I,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Cancelled by a watch on this connection that falls behind.
    let close = CancellationToken::new();
    let closer = close.clone();
    let svc = hyper::service::service_fn(move |req| watch::CONNECTION.scope(closer.clone(), handle(ctx.clone(), req)));
    let conn = watcher.watch(builder.serve_connection(TokioIo::new(io), svc).into_owned());
    tokio::select! {
        ended = conn => if let Err(e) = ended {
            tracing::debug!(error = %e, "api connection ended");
        },
        () = close.cancelled() => tracing::debug!("api connection closed: its watch fell behind"),
    }
}

/// The outermost handler: authentication first, so nothing of a request without this server's
/// token is read or acted on; then every failure becomes a `Status` response.
async fn handle(ctx: Arc<Ctx>, req: http::Request<Incoming>) -> Result<http::Response<ApiBody>, Infallible> {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let admitted = auth::check(&ctx.token, &method, &path, req.headers());
    let result = match admitted {
        Ok(()) => dispatch(&ctx, req).await,
        Err(e) => Err(e),
    };
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%method, %path, code = e.code, message = %e.message, "api request failed");
            let mut res = json_response(
                StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                &e.to_status(),
            );
            if e.code == 429 {
                // As Kubernetes' max-in-flight filter: clients back off and retry.
                res.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            if e.code == 401 {
                // RFC 6750: a 401 names the scheme that would be accepted.
                res.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"sluice\""));
            }
            res
        }
    };
    Ok(response)
}

async fn dispatch(ctx: &Arc<Ctx>, req: http::Request<Incoming>) -> Result<http::Response<ApiBody>, ApiError> {
    let endpoint = route(req.uri().path()).ok_or_else(|| ApiError::no_route(req.uri().path()))?;
    let read_only = |m: &Method| matches!(*m, Method::GET | Method::HEAD);
    let ok = |v: Value| Ok(json_response(StatusCode::OK, &v));
    match endpoint {
        Endpoint::Resource(target) => {
            // A namespace in the path must be a name a Namespace could have (an RFC 1123
            // label): `..`, `a/b` or `UPPER` name none, so nothing can be stored under them
            // (and no instance log can be written outside its directory).
            if let Some(ns) = target.namespace.as_deref()
                && !sluice_api::naming::dns1123_label(ns).is_empty()
            {
                return Err(StoreError::NotFound { kind: Kind::Namespace, name: ns.to_string() }.into());
            }
            let (parts, body) = req.into_parts();
            let header = |h: header::HeaderName| parts.headers.get(h).and_then(|v| v.to_str().ok()).map(str::to_string);
            let body = match parts.method {
                Method::POST | Method::PUT | Method::PATCH | Method::DELETE => {
                    body::read(body, body::MAX_BODY_BYTES).await?
                }
                _ => Bytes::new(),
            };
            let request = resource::Request {
                method: parts.method.clone(),
                query: Query::parse(parts.uri.query()),
                accept: header(header::ACCEPT).unwrap_or_default(),
                media: body::media_type(header(header::CONTENT_TYPE).as_deref()),
                body,
            };
            resource::handle(ctx, target, request).await
        }
        _ if !read_only(req.method()) => Err(ApiError::method_not_allowed(req.method())),
        Endpoint::Root => ok(
            json!({"paths": ["/api", "/api/v1", "/apis", "/apis/serving.knative.dev", "/apis/serving.knative.dev/v1", "/healthz", "/openapi/v3", "/readyz", "/version"]}),
        ),
        Endpoint::Version => ok(discovery::version()),
        Endpoint::Health => Ok(text_response(StatusCode::OK, "ok")),
        Endpoint::CoreVersions => {
            let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_string();
            ok(discovery::core_versions(&host))
        }
        Endpoint::Groups => ok(discovery::groups()),
        Endpoint::Group(g) => {
            discovery::serving_group(&g).map_or_else(|| Err(ApiError::no_route(req.uri().path())), ok)
        }
        Endpoint::Resources(g) => ok(discovery::resources(&g)),
        Endpoint::OpenApiIndex => ok(openapi::index()),
        Endpoint::OpenApiDoc(gv) => {
            openapi::document(&gv).map_or_else(|| Err(ApiError::no_route(req.uri().path())), |d| ok(d.clone()))
        }
    }
}

/// Maps a path to what it names.
fn route(path: &str) -> Option<Endpoint> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let endpoint = match segs.as_slice() {
        [] => Endpoint::Root,
        ["version"] => Endpoint::Version,
        ["healthz" | "readyz" | "livez", ..] => Endpoint::Health,
        ["api"] => Endpoint::CoreVersions,
        ["apis"] => Endpoint::Groups,
        ["apis", g] => Endpoint::Group(g.to_string()),
        ["openapi", "v3"] => Endpoint::OpenApiIndex,
        ["openapi", "v3", rest @ ..] => Endpoint::OpenApiDoc(rest.join("/")),
        ["api", "v1"] => Endpoint::Resources(String::new()),
        ["apis", g, "v1"] if discovery::is_served_group(g) => Endpoint::Resources(g.to_string()),
        ["api", "v1", rest @ ..] => Endpoint::Resource(target("", rest)?),
        ["apis", g, "v1", rest @ ..] => Endpoint::Resource(target(g, rest)?),
        _ => return None,
    };
    Some(endpoint)
}

fn target(group: &str, rest: &[&str]) -> Option<Target> {
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(query::decode(ns)), rest),
        _ => (None, rest),
    };
    let (plural, name, status) = match rest {
        [plural] => (*plural, None, false),
        [plural, name] => (*plural, Some(query::decode(name)), false),
        [plural, name, "status"] => (*plural, Some(query::decode(name)), true),
        _ => return None,
    };
    let kind = Kind::from_plural(group, plural)?;
    Some(Target { kind, namespace, name, status })
}

/// A JSON response.
fn json_response(code: StatusCode, value: &Value) -> http::Response<ApiBody> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    http::Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new()).boxed()))
}

fn text_response(code: StatusCode, text: &'static str) -> http::Response<ApiBody> {
    http::Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Full::new(Bytes::from_static(text.as_bytes())).boxed())
        .unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new()).boxed()))
}

/// A chunked JSON stream of watch events.
fn stream_response(lines: watch::Lines) -> http::Response<ApiBody> {
    let frames = lines.map(|b| Ok::<_, Infallible>(Frame::data(b)));
    http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(BodyExt::boxed(StreamBody::new(frames)))
        .unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new()).boxed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_to_resources() {
        let t = |path: &str| match route(path) {
            Some(Endpoint::Resource(t)) => Some((t.kind, t.namespace, t.name, t.status)),
            _ => None,
        };
        assert_eq!(t("/apis/serving.knative.dev/v1/services"), Some((Kind::Service, None, None, false)));
        assert_eq!(
            t("/apis/serving.knative.dev/v1/namespaces/default/routes/r/status"),
            Some((Kind::Route, Some("default".into()), Some("r".into()), true))
        );
        assert_eq!(
            t("/api/v1/namespaces/knative-serving/configmaps/config-network").map(|x| x.0),
            Some(Kind::ConfigMap)
        );
        assert_eq!(t("/apis/serving.knative.dev/v1/namespaces/default/pods"), None);
        assert_eq!(route("/apis/serving.knative.dev/v1"), Some(Endpoint::Resources("serving.knative.dev".into())));
        assert_eq!(
            route("/openapi/v3/apis/serving.knative.dev/v1"),
            Some(Endpoint::OpenApiDoc("apis/serving.knative.dev/v1".into()))
        );
        assert_eq!(route("/apis/apps/v1/namespaces/x/deployments"), None);
    }

    /// A server over a fresh store (token `t`) and its listener on port 0, not yet serving;
    /// the directory lives as long as the returned guard.
    async fn test_server() -> (tempfile::TempDir, ApiServer, TcpListener, std::net::SocketAddr, CancellationToken) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::open(&dir.path().join("db.redb"), store::DEFAULT_HISTORY).expect("store"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let server = ApiServer::new(store, stop.clone(), auth::Token::parse("t").expect("token"));
        (dir, server, listener, addr, stop)
    }

    #[tokio::test]
    async fn shutdown_closes_connections_it_could_not_drain() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let (_dir, server, listener, addr, stop) = test_server().await;
        let server = tokio::spawn(server.serve(listener));

        // A write whose body never finishes: its handler is still reading when shutdown starts.
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\
                    Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"kind\":";
        client.write_all(head.as_bytes()).await.expect("send head");
        // Shutdown waits for this request; a simple GET on another connection proves the
        // server is up and the first connection has been accepted.
        let mut probe = tokio::net::TcpStream::connect(addr).await.expect("connect");
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

    #[tokio::test]
    async fn one_port_serves_plain_http_and_tls_with_the_token_required_on_both() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let (_dir, server, listener, addr, stop) = test_server().await;
        let identity = tls::Identity::generate(None).expect("certificate");
        let server = server.tls(&identity).expect("tls");
        tokio::spawn(server.serve(listener));

        let mut roots = rustls::RootCertStore::empty();
        roots.add(identity.certificate().clone()).expect("root");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let status_line = async |auth: &str, over_tls: bool| {
            let request = format!("GET /api/v1/configmaps HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
            let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let mut answer = Vec::new();
            if over_tls {
                let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
                let mut tls = connector.connect(name, tcp).await.expect("handshake, certificate verified");
                tls.write_all(request.as_bytes()).await.expect("send");
                let _ = tls.read_to_end(&mut answer).await;
            } else {
                let mut tcp = tcp;
                tcp.write_all(request.as_bytes()).await.expect("send");
                let _ = tcp.read_to_end(&mut answer).await;
            }
            String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string()
        };
        for over_tls in [false, true] {
            assert_eq!(status_line("", over_tls).await, "HTTP/1.1 401 Unauthorized", "tls: {over_tls}");
            assert_eq!(status_line("Authorization: Bearer x\r\n", over_tls).await, "HTTP/1.1 403 Forbidden");
            assert_eq!(status_line("Authorization: Bearer t\r\n", over_tls).await, "HTTP/1.1 200 OK");
        }
        stop.cancel();
    }

    #[tokio::test]
    async fn connections_that_send_nothing_or_stall_are_closed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        const TIMEOUT: Duration = Duration::from_millis(300);
        let (_dir, server, listener, addr, stop) = test_server().await;
        tokio::spawn(server.header_read_timeout(TIMEOUT).serve(listener));

        let closed_within = async |stream: &mut tokio::net::TcpStream| {
            let mut seen = Vec::new();
            let read = tokio::time::timeout(TIMEOUT * 10, stream.read_to_end(&mut seen)).await;
            assert!(read.is_ok(), "still open; read {:?}", String::from_utf8_lossy(&seen));
        };
        // Nothing at all: the version sniffing used to wait forever.
        let mut silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
        closed_within(&mut silent).await;
        // Half a request head.
        let mut stalled = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stalled.write_all(b"GET /version HTTP/1.1\r\nHo").await.expect("send");
        closed_within(&mut stalled).await;
        // Idle after a request on a keep-alive connection.
        let mut idle = tokio::net::TcpStream::connect(addr).await.expect("connect");
        idle.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("send");
        let mut head = [0u8; 12];
        idle.read_exact(&mut head).await.expect("answer");
        assert_eq!(&head, b"HTTP/1.1 200");
        closed_within(&mut idle).await;
        stop.cancel();
    }
}
