//! `GET /metrics`: the Prometheus text exposition of every metric (see `crate::infra::metrics`),
//! rendered from the process's recorder. The cache gauges and the count of dropped access-log
//! lines are refreshed at each scrape.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Route;
use crate::http::SharedState;
use crate::infra::metrics::names;

/// The content type of Prometheus's text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: [`metrics()`].
pub const ROUTE: Route = Route {
    path: "/metrics",
    handlers: || get(metrics),
};

/// The metrics, in Prometheus's text format.
#[utoipa::path(
    get,
    path = ROUTE.path,
    tag = "operations",
    responses(
        (status = 200, description = "Every metric in the Prometheus text format (version 0.0.4)", body = String, content_type = "text/plain")
    )
)]
pub async fn metrics(State(state): State<SharedState>) -> Response {
    let (entries, bytes) = state.cache.size().await;
    metrics::gauge!(names::CACHE_ENTRIES).set(entries as f64);
    metrics::gauge!(names::CACHE_BYTES).set(bytes as f64);
    metrics::counter!(names::ACCESS_LOG_DROPPED)
        .absolute(crate::infra::telemetry::access_lines_dropped());
    let body = crate::infra::metrics::install().render();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROMETHEUS_TEXT),
        )],
        body,
    )
        .into_response()
}
