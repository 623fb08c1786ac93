//! Traces: spans exported over OTLP (HTTP/protobuf) through `tracing-opentelemetry`, on only
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and
//! `OTEL_SDK_DISABLED` is not `true`). This file owns the exporter, the tracer provider, the
//! W3C trace-context propagator and the flush at shutdown; the other `OTEL_*` variables
//! (headers, timeout, batch delay, sampler, resource attributes) are read by the SDK itself.
//! Which spans exist and what they carry: docs/operations.md, "Tracing".

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, Key};
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::resource::{EnvResourceDetector, ResourceDetector as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The service name unless `OTEL_SERVICE_NAME` (or `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES`) says otherwise.
pub const DEFAULT_SERVICE_NAME: &str = "order-service";

/// The variables that switch exporting on: either names where spans go.
pub const ENDPOINT_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
];

/// How long the flush at shutdown may take before the last spans are given up.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether spans are exported in this process: checked before any work that only traces need
/// (reading `traceparent` headers), so that it costs one load when tracing is off.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether this process exports spans.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Whether the environment asks for exporting: an endpoint variable is set and not empty,
/// and `OTEL_SDK_DISABLED` is not `true`.
pub fn requested(var: impl Fn(&str) -> Option<String>) -> bool {
    let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    !disabled
        && ENDPOINT_VARIABLES
            .iter()
            .any(|name| var(name).is_some_and(|v| !v.trim().is_empty()))
}

/// The exporting pipeline while it runs; [`Traces::shutdown`] flushes what is still queued.
pub struct Traces {
    /// The provider whose batch processor exports the spans.
    provider: SdkTracerProvider,
}

impl Traces {
    /// The exporter, the provider (with the batch processor, which runs on a thread of its
    /// own) and the `tracing` layer that feeds it. Fails on an endpoint or setting the exporter refuses.
    pub fn start<S>() -> anyhow::Result<(Self, impl Layer<S> + Send + Sync + 'static)>
    where
        S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync + 'static,
    {
        if let Some(protocol) = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL")
            .ok()
            .filter(|p| p != "http/protobuf")
        {
            anyhow::bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={protocol:?}: only \"http/protobuf\" is supported"
            );
        }
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build()
            .context("cannot set up the OTLP trace exporter (OTEL_EXPORTER_OTLP_*)")?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource())
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("order-service"))
            .with_threads(false)
            .with_tracked_inactivity(false);
        ENABLED.store(true, Ordering::Relaxed);
        Ok((Self { provider }, layer))
    }

    /// Exports what is still queued (within `FLUSH_TIMEOUT`, 5 s) and stops the exporter; a
    /// failure is logged. Blocks: call it off the async runtime's threads.
    pub fn shutdown(self) {
        ENABLED.store(false, Ordering::Relaxed);
        if let Err(error) = self.provider.shutdown_with_timeout(FLUSH_TIMEOUT) {
            tracing::warn!(%error, "traces not flushed at shutdown");
        }
    }
}

/// The resource of every span: the SDK's (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
/// the SDK's own attributes), named [`DEFAULT_SERVICE_NAME`] unless those name it.
fn resource() -> Resource {
    let service_name = Key::from_static_str("service.name");
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|name| !name.is_empty())
        || EnvResourceDetector::new()
            .detect()
            .get(&service_name)
            .is_some();
    let builder = Resource::builder();
    if named {
        builder.build()
    } else {
        builder.with_service_name(DEFAULT_SERVICE_NAME).build()
    }
}

/// The remote span a carrier's `traceparent` (and `tracestate`) names, if it names a valid
/// one: the W3C trace-context propagator, the only one the service speaks (Kafka headers and
/// HTTP alike).
pub fn remote_span(carrier: &dyn Extractor) -> Option<SpanContext> {
    let context = TraceContextPropagator::new().extract(carrier);
    let span = context.span().span_context().clone();
    span.is_valid().then_some(span)
}

/// A context whose parent is `span`, for `set_parent`.
pub fn child_of(span: SpanContext) -> Context {
    Context::new().with_remote_span_context(span)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn exporting_is_requested_by_either_endpoint_and_only_then() {
        assert!(!requested(env(&[])));
        assert!(!requested(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])));
        assert!(!requested(env(&[("OTEL_SERVICE_NAME", "x")])));
        assert!(requested(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://c:4318"
        )])));
        assert!(requested(env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://c:4318/v1/traces"
        )])));
        assert!(!requested(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_SDK_DISABLED", "TRUE"),
        ])));
    }

    #[test]
    fn a_valid_traceparent_names_the_remote_span_and_garbage_names_none() {
        let mut carrier = HashMap::new();
        carrier.insert(
            "traceparent".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        );
        let span = remote_span(&carrier).expect("a remote span");
        assert_eq!(
            span.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(span.span_id().to_string(), "00f067aa0ba902b7");
        assert!(span.is_remote() && span.is_sampled());

        carrier.insert("traceparent".to_owned(), "00-not-a-trace-01".to_owned());
        assert!(remote_span(&carrier).is_none());
        assert!(remote_span(&HashMap::<String, String>::new()).is_none());
    }
}
