//! `sluice serve --otlp-endpoint URL`: a span per proxied request, exported over OTLP/HTTP
//! (protobuf) when sluice is built with the `otlp` feature; refused with a message otherwise.
//!
//! The router tells a [`sluice_router::trace::Observer`] of each forwarded request with a valid
//! `traceparent` (the client's, or the one it generated); this one turns it into a server span
//! named `proxy` whose parent is that `traceparent` (so it joins the client's trace), started
//! when the request arrived and ended at its response head, with the method, status and
//! revision as attributes. The SDK's default sampler follows the parent: a `traceparent`
//! without the sampled flag records nothing. Spans go through the SDK's batch processor on the
//! Tokio runtime (a bounded queue: spans beyond it are dropped, never waited for) and are
//! flushed at shutdown.

use std::sync::Arc;

use sluice_router::trace::Observer;

/// The running exporter, flushed by [`Otlp::shutdown`].
pub struct Otlp {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

/// Starts exporting to `endpoint` (the OTLP/HTTP traces URL, e.g.
/// `http://127.0.0.1:4318/v1/traces`), if given; the router's observer and the exporter.
#[cfg(not(feature = "otlp"))]
pub fn start(endpoint: Option<&str>) -> anyhow::Result<(Option<Arc<dyn Observer>>, Otlp)> {
    match endpoint {
        Some(_) => anyhow::bail!(
            "--otlp-endpoint: this sluice was built without the `otlp` feature (build it with `cargo build --features otlp`)"
        ),
        None => Ok((None, Otlp {})),
    }
}

/// Starts exporting to `endpoint` (the OTLP/HTTP traces URL, e.g.
/// `http://127.0.0.1:4318/v1/traces`), if given; the router's observer and the exporter.
#[cfg(feature = "otlp")]
pub fn start(endpoint: Option<&str>) -> anyhow::Result<(Option<Arc<dyn Observer>>, Otlp)> {
    let Some(endpoint) = endpoint else {
        return Ok((None, Otlp { provider: None }));
    };
    let (observer, provider) = export::start(endpoint)?;
    Ok((Some(observer), Otlp { provider: Some(provider) }))
}

// === impl Otlp ===

impl Otlp {
    /// Exports what is still queued, then stops.
    pub async fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider {
            // It waits for the batch task, which runs on this runtime: not on a worker thread.
            let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = done {
                tracing::warn!(error = %e, "OTLP exporter did not flush cleanly");
            }
        }
    }
}

#[cfg(feature = "otlp")]
mod export {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use anyhow::Context as _;
    use opentelemetry::trace::{
        Span as _, SpanBuilder, SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceId, TraceState,
        Tracer as _, TracerProvider as _,
    };
    use opentelemetry::{Context, KeyValue};
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::runtime::Tokio;
    use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
    use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
    use sluice_router::trace::{Observed, Observer};

    /// Turns each observed request into a span.
    struct Spans {
        tracer: SdkTracer,
    }

    impl std::fmt::Debug for Spans {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Spans")
        }
    }

    pub fn start(endpoint: &str) -> anyhow::Result<(Arc<dyn Observer>, SdkTracerProvider)> {
        let uri: http::Uri = endpoint.parse().with_context(|| format!("--otlp-endpoint {endpoint:?}"))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            anyhow::bail!(
                "--otlp-endpoint {endpoint:?}: must be an http:// URL (OTLP/HTTP, e.g. http://127.0.0.1:4318/v1/traces)"
            );
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_secs(10))
            .build()
            .with_context(|| format!("--otlp-endpoint {endpoint:?}"))?;
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter, Tokio).build())
            .with_resource(Resource::builder().with_service_name("sluice").build())
            .build();
        let tracer = provider.tracer("sluice-router");
        Ok((Arc::new(Spans { tracer }), provider))
    }

    impl Observer for Spans {
        fn observe(&self, request: &Observed<'_>) {
            let parent = SpanContext::new(
                TraceId::from(request.parent.trace_id.get()),
                SpanId::from(request.parent.parent_id),
                TraceFlags::new(request.parent.flags),
                true,
                TraceState::default(),
            );
            let cx = Context::new().with_remote_span_context(parent);
            let end = SystemTime::now();
            let attributes = vec![
                KeyValue::new("http.request.method", request.method.to_string()),
                KeyValue::new("http.response.status_code", i64::from(request.status.as_u16())),
                KeyValue::new("sluice.revision", format!("{}/{}", request.revision.namespace, request.revision.name)),
            ];
            let builder = SpanBuilder::from_name("proxy")
                .with_kind(SpanKind::Server)
                .with_start_time(end.checked_sub(request.elapsed).unwrap_or(end))
                .with_attributes(attributes);
            let mut span = self.tracer.build_with_context(builder, &cx);
            span.end_with_timestamp(end);
        }
    }
}
