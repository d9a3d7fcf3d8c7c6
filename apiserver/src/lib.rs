//! Sluice's embedded Kubernetes-compatible API server for `serving.knative.dev/v1` (and core
//! ConfigMaps and Namespaces), so kubectl and kube-rs work against Sluice as they would against
//! a cluster; and its durable [`store`] (redb), a module here until it has a second user.

pub mod auth;
mod body;
mod conn;
mod discovery;
pub mod events;
mod fields;
mod figures;
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
use serde_json::{Value, json};
use sluice_api::Kind;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::auth::Token;
use crate::store::{Store, StoreError};
pub use conn::PlainHttp;
use query::Query;
use resource::Target;
use status::ApiError;
pub use watch::{BufferLimits, DEFAULT_MAX_WATCHES, WatchLimits};

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
    /// How long Events are kept, and how many.
    pub(crate) events: events::Retention,
}

/// The API server.
pub struct ApiServer {
    ctx: Arc<Ctx>,
    conn: conn::Settings,
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
    OpenApiV2,
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
            ctx: Arc::new(Ctx {
                store,
                shutdown,
                bookmark_interval: Duration::from_secs(30),
                watches,
                token,
                events: events::Retention::default(),
            }),
            conn: conn::Settings::default(),
            tls: None,
        }
    }

    /// Also serves TLS with `identity` on the same port: a connection that opens with a TLS
    /// handshake is served over TLS (HTTP/1.1 or h2 by ALPN); any other as plain HTTP where
    /// [`ApiServer::plain_http`] allows it.
    pub fn tls(mut self, identity: &tls::Identity) -> Result<Self, tls::TlsError> {
        self.tls = Some(identity.acceptor()?);
        Ok(self)
    }

    /// Where plain HTTP is served beside TLS (default: everywhere). Ignored without TLS.
    pub fn plain_http(mut self, policy: PlainHttp) -> Self {
        self.conn.plain_http = policy;
        self
    }

    /// How long a new connection has to send its first byte, and an HTTP/1 request its head
    /// (also what an idle keep-alive connection is given before it is closed). Default 30 s.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.conn.header_read_timeout = timeout;
        self
    }

    /// How long a TLS handshake may take. Default 10 s.
    pub fn tls_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.conn.tls_handshake_timeout = timeout;
        self
    }

    /// How long a connection may have no request in flight (an h2 session with no stream, an
    /// established TLS connection that never sends a request) before it is closed. A watch
    /// is in flight for as long as it streams. Default 90 s.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.conn.idle_timeout = timeout;
        self
    }

    /// How long Events are kept and how many a namespace holds (default: an hour, 1000).
    pub fn event_retention(mut self, retention: events::Retention) -> Self {
        if let Some(ctx) = Arc::get_mut(&mut self.ctx) {
            ctx.events = retention;
        }
        self
    }

    /// Serves connections from `listener` until shutdown; then stops accepting, lets open
    /// requests finish (watches end at once) for a few seconds, closes what is left and
    /// returns. Every connection task is owned here (and the sweep of expired Events) and has
    /// ended when this returns.
    pub async fn serve(self, listener: TcpListener) {
        let sweep = events::retention::sweep(self.ctx.store.clone(), self.ctx.events, self.ctx.shutdown.clone());
        tokio::join!(conn::serve(self.ctx, self.conn, self.tls, listener), sweep);
    }
}

/// The outermost handler: authentication first, so nothing of a request without this server's
/// token is read or acted on; then every failure becomes a `Status` response.
pub(crate) async fn handle(ctx: Arc<Ctx>, req: http::Request<Incoming>) -> Result<http::Response<ApiBody>, Infallible> {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    // Labels from what the path names, never the path itself: bounded.
    let (verb, resource) = match route(&path) {
        Some(Endpoint::Resource(t)) => {
            let watch = Query::parse(req.uri().query()).flag("watch");
            (figures::verb(&method, t.name.is_some(), watch), t.kind.info().plural)
        }
        _ => (figures::verb(&method, true, false), ""),
    };
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
    figures::request(verb, resource, response.status().as_u16());
    if verb == "WATCH" && response.status() == StatusCode::OK {
        let (parts, body) = response.into_parts();
        return Ok(http::Response::from_parts(parts, figures::LongRunning::wrap(body, verb, resource).boxed()));
    }
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
            json!({"paths": ["/api", "/api/v1", "/apis", "/apis/events.k8s.io", "/apis/events.k8s.io/v1", "/apis/serving.knative.dev", "/apis/serving.knative.dev/v1", "/healthz", "/openapi/v3", "/readyz", "/version"]}),
        ),
        Endpoint::Version => ok(discovery::version()),
        Endpoint::Health => Ok(text_response(StatusCode::OK, "ok")),
        Endpoint::CoreVersions => {
            let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_string();
            ok(discovery::core_versions(&host))
        }
        Endpoint::Groups => ok(discovery::groups()),
        Endpoint::Group(g) => discovery::named_group(&g).map_or_else(|| Err(ApiError::no_route(req.uri().path())), ok),
        Endpoint::Resources(g) => ok(discovery::resources(&g)),
        Endpoint::OpenApiIndex => ok(openapi::index()),
        Endpoint::OpenApiV2 => {
            let accept = req.headers().get(header::ACCEPT).and_then(|a| a.to_str().ok()).unwrap_or("");
            let (content_type, body) = openapi::v2(accept);
            Ok(http::Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, content_type)
                .body(Full::new(body).boxed())
                .unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new()).boxed())))
        }
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
        ["openapi", "v2"] => Endpoint::OpenApiV2,
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
}
