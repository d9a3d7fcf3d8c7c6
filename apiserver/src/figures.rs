//! The API server's figures for `/metrics`, recorded through the `metrics` facade with
//! Kubernetes' names where Kubernetes has them: `apiserver_request_total{verb, resource, code}`,
//! `apiserver_longrunning_requests{verb, resource}` (open watches),
//! `sluice_store_objects{resource}` and `sluice_store_write_duration_seconds`.
//!
//! Label values are bounded: verbs are Kubernetes' fixed set, resources are the served kinds'
//! plurals (never taken from a request path; a path that names no kind is `""`, as Kubernetes
//! labels non-resource requests), codes are HTTP status numbers.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body::{Body, Frame, SizeHint};
use metrics::{counter, gauge, histogram};

use crate::ApiBody;

/// Kubernetes' verb for a request: `LIST` and `WATCH` for collection reads,
/// `DELETECOLLECTION` for a collection delete, else the method's own.
pub(crate) fn verb(method: &Method, named: bool, watch: bool) -> &'static str {
    match *method {
        Method::GET | Method::HEAD if watch => "WATCH",
        Method::GET | Method::HEAD if !named => "LIST",
        Method::GET | Method::HEAD => "GET",
        Method::POST => "CREATE",
        Method::PUT => "UPDATE",
        Method::PATCH => "PATCH",
        Method::DELETE if named => "DELETE",
        Method::DELETE => "DELETECOLLECTION",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Counts one answered request.
pub(crate) fn request(verb: &'static str, resource: &'static str, code: u16) {
    counter!("apiserver_request_total", "verb" => verb, "resource" => resource, "code" => code.to_string())
        .increment(1);
}

/// A response body that counts as an open long-running request (a watch) until it is dropped,
/// whether the watch ended or the client went away.
pub(crate) struct LongRunning {
    inner: ApiBody,
    gauge: metrics::Gauge,
}

impl LongRunning {
    /// Wraps `inner`, counting it open now.
    pub(crate) fn wrap(inner: ApiBody, verb: &'static str, resource: &'static str) -> Self {
        let gauge = gauge!("apiserver_longrunning_requests", "verb" => verb, "resource" => resource);
        gauge.increment(1.0);
        Self { inner, gauge }
    }
}

impl Drop for LongRunning {
    fn drop(&mut self) {
        self.gauge.decrement(1.0);
    }
}

impl Body for LongRunning {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Sets the number of stored objects of `resource` (at open).
pub(crate) fn store_objects(resource: &'static str, count: u64) {
    gauge!("sluice_store_objects", "resource" => resource).set(count as f64);
}

/// Adds a committed transaction's net change of `resource`'s objects.
pub(crate) fn store_objects_changed(resource: &'static str, delta: i64) {
    gauge!("sluice_store_objects", "resource" => resource).increment(delta as f64);
}

/// Records how long one write transaction's commit took (durable: it waits for the disk).
pub(crate) fn store_write(took: Duration) {
    histogram!("sluice_store_write_duration_seconds").record(took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_kubernetes_verbs() {
        assert_eq!(verb(&Method::GET, true, false), "GET");
        assert_eq!(verb(&Method::GET, false, false), "LIST");
        assert_eq!(verb(&Method::GET, false, true), "WATCH");
        assert_eq!(verb(&Method::POST, false, false), "CREATE");
        assert_eq!(verb(&Method::PUT, true, false), "UPDATE");
        assert_eq!(verb(&Method::PATCH, true, false), "PATCH");
        assert_eq!(verb(&Method::DELETE, true, false), "DELETE");
        assert_eq!(verb(&Method::DELETE, false, false), "DELETECOLLECTION");
    }
}
