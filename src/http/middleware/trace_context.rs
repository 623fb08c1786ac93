//! Continuing a client's trace: when traces are exported, the span of each request (the
//! access-log span of [`super::observe`]) becomes an OpenTelemetry server span named
//! `METHOD route-template` (never the raw path), a child of the span an incoming W3C
//! `traceparent` header names. When traces are off this does nothing: one atomic load.

use axum::http::{HeaderMap, StatusCode};
use opentelemetry_http::HeaderExtractor;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::infra::otel;

/// Makes `span`, not yet entered, the server span of a `method` request matching `route`
/// with `headers`: its name, kind and route, and its parent if `traceparent` names one.
pub fn continue_trace(span: &Span, headers: &HeaderMap, method: &'static str, route: &'static str) {
    if !otel::enabled() || span.is_disabled() {
        return;
    }
    span.record("otel.name", format!("{method} {route}"));
    span.record("otel.kind", "server");
    span.record("http.request.method", method);
    span.record("http.route", route);
    if let Some(parent) = otel::remote_span(&HeaderExtractor(headers))
        && let Err(error) = span.set_parent(otel::child_of(parent))
    {
        tracing::debug!(%error, "the request span keeps no parent");
    }
}

/// Records the answer's `status` on the server span (5xx marks it as an error).
pub fn record_status(span: &Span, status: StatusCode) {
    if !otel::enabled() || span.is_disabled() {
        return;
    }
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
}
