//! `sluice serve --metrics ADDR`: a small HTTP/1.1 listener for probes and Prometheus.
//! `GET /metrics` renders the router's counters in the text format, then every family recorded
//! through the `metrics` facade (control plane, autoscaler) by the process's Prometheus
//! recorder ([`install_recorder`]); `GET /healthz` answers 200
//! while the process serves, `GET /readyz` 200 once everything has started and until shutdown
//! begins (503 otherwise). Connections are capped and idle ones cut, so scrapers cannot pile up.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sluice_router::access_log::AccessLog;
use sluice_router::endpoints::Endpoints;
use sluice_router::metrics;
use sluice_router::table::RoutingTable;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Where metrics are served when `--metrics` is not given (Knative's metrics port).
pub const DEFAULT_ADDR: &str = "127.0.0.1:9090";

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 64;

/// How long a client may take to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the recorder's histograms are folded in between scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// Bucket bounds of the facade's histograms in seconds.
const SECONDS_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the `metrics` facade's Prometheus recorder for this process and returns its handle
/// (None if a recorder is already installed, e.g. by a test).
pub fn install_recorder() -> Option<PrometheusHandle> {
    // Histograms with buckets, not the exporter's default summaries: every recorded family in
    // seconds (reconcile, store write) gets the same 0.5 ms … 10 s buckets.
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .unwrap_or_else(|_| PrometheusBuilder::new());
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    ::metrics::set_global_recorder(recorder).ok().map(|()| handle)
}

/// What `/metrics` is rendered from.
#[derive(Clone, Debug)]
pub struct Sources {
    /// The revisions' counters.
    pub endpoints: Arc<Endpoints>,
    /// The routing table in force (rule, tag and split figures).
    pub table: Arc<ArcSwap<RoutingTable>>,
    /// The access log, when on (its dropped lines).
    pub access_log: Option<AccessLog>,
}

/// What `--metrics` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsSetting {
    /// `off`: no listener.
    Off,
    /// An address to bind; failing to bind it is fatal.
    At(SocketAddr),
}

/// Whether `/readyz` says ready: once started, until shutdown begins.
#[derive(Clone, Debug)]
pub struct Readiness {
    started: Arc<AtomicBool>,
    stopping: CancellationToken,
}

// === impl MetricsSetting ===

impl FromStr for MetricsSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        s.parse().map(Self::At).map_err(|_| format!("{s:?} is neither an address such as {DEFAULT_ADDR} nor `off`"))
    }
}

// === impl Readiness ===

impl Readiness {
    /// Not ready until [`started`](Self::started), nor once `stopping` is cancelled.
    pub fn new(stopping: CancellationToken) -> Self {
        Self { started: Arc::default(), stopping }
    }

    /// Everything has started.
    pub fn started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    fn get(&self) -> bool {
        self.started.load(Ordering::SeqCst) && !self.stopping.is_cancelled()
    }
}

/// Binds the metrics listener as `setting` asks: None when off, or when the default address
/// (no `--metrics` given) is taken, which is warned about; an address given explicitly that
/// cannot be bound is an error.
pub async fn bind(setting: Option<MetricsSetting>) -> anyhow::Result<Option<TcpListener>> {
    match setting {
        Some(MetricsSetting::Off) => Ok(None),
        Some(MetricsSetting::At(addr)) => bind_at(addr, true).await,
        None => bind_at(DEFAULT_ADDR.parse().expect("the default metrics address parses"), false).await,
    }
}

/// Binds `addr`; when it was not `explicit`ly asked for, a failure is a warning and None.
async fn bind_at(addr: SocketAddr, explicit: bool) -> anyhow::Result<Option<TcpListener>> {
    match TcpListener::bind(addr).await {
        Ok(listener) => Ok(Some(listener)),
        Err(e) if !explicit => {
            tracing::warn!(addr = %addr, error = %e, "metrics are not served: the default address is not free (name another with --metrics ADDR, or --metrics off)");
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("binding the metrics listener to {addr}")),
    }
}

/// Serves `listener` until `stop`, then drops every open connection.
pub async fn serve(
    listener: TcpListener,
    sources: Sources,
    facade: Option<PrometheusHandle>,
    ready: Readiness,
    stop: CancellationToken,
) {
    let mut connections = JoinSet::new();
    if let Some(handle) = facade.clone() {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP);
            loop {
                tokio::select! {
                    _ = tick.tick() => handle.run_upkeep(),
                    () = stop.cancelled() => return,
                }
            }
        });
    }
    loop {
        while connections.try_join_next().is_some() {}
        // At the cap, wait for one connection to end before accepting another.
        if connections.len() >= MAX_CONNECTIONS {
            tokio::select! {
                _ = connections.join_next() => continue,
                () = stop.cancelled() => break,
            }
        }
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!(error = %e, "metrics listener: accept failed");
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let (sources, facade, ready) = (sources.clone(), facade.clone(), ready.clone());
        let service = hyper::service::service_fn(move |req| {
            let res = answer(&req, &sources, facade.as_ref(), &ready);
            async move { Ok::<_, Infallible>(res) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        connections.spawn(async move {
            let _ = conn.await;
        });
    }
    connections.shutdown().await;
}

/// The response to one request.
fn answer(
    req: &Request<Incoming>,
    sources: &Sources,
    facade: Option<&PrometheusHandle>,
    ready: &Readiness,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are served here\n".into());
    }
    match req.uri().path() {
        "/metrics" => {
            let mut out = String::with_capacity(4096);
            metrics::render(&sources.endpoints, &sources.table.load(), &mut out);
            if let Some(log) = &sources.access_log {
                metrics::render_access_log(log, &mut out);
            }
            if let Some(handle) = facade {
                out.push_str(&handle.render());
            }
            let mut res = plain(StatusCode::OK, out);
            res.headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(metrics::text::CONTENT_TYPE));
            res
        }
        "/healthz" => plain(StatusCode::OK, "ok\n".into()),
        "/readyz" if ready.get() => plain(StatusCode::OK, "ok\n".into()),
        "/readyz" => plain(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into()),
        _ => plain(StatusCode::NOT_FOUND, "not found: try /metrics, /healthz or /readyz\n".into()),
    }
}

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_is_an_address_or_off() {
        assert_eq!("off".parse(), Ok(MetricsSetting::Off));
        assert_eq!("127.0.0.1:0".parse(), Ok(MetricsSetting::At("127.0.0.1:0".parse().expect("addr"))));
        let err = "localhost".parse::<MetricsSetting>().expect_err("a host name is not an address");
        assert!(err.contains("neither an address"), "{err}");
    }

    #[tokio::test]
    async fn a_busy_default_address_is_skipped_but_a_busy_given_one_is_fatal() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = taken.local_addr().expect("addr");
        let err = bind(Some(MetricsSetting::At(addr))).await.expect_err("busy address given");
        assert!(format!("{err:#}").contains(&format!("binding the metrics listener to {addr}")), "{err:#}");
        assert!(bind_at(addr, false).await.expect("the default address busy is no error").is_none());
        assert!(bind(Some(MetricsSetting::Off)).await.expect("off").is_none());
    }
}
