//! The HTTP side: the router, its shared state, and the headers every response carries.

pub mod error;
pub mod orders;
pub mod page;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::cache::OrderCache;
use crate::store::OrderLookup;
use error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Orders' JSON by id, in memory.
    pub cache: OrderCache,
    /// Where orders are looked up when the cache misses.
    pub orders: Arc<dyn OrderLookup>,
}

/// The page may load only its own script, style and data.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The service's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/assets/app.js", get(page::script))
        .route("/assets/style.css", get(page::style))
        .route("/api/order/{order_uid}", get(orders::get_order))
        .route("/health/live", get(|| async { "ok" }))
        .fallback(|| async { ApiError::NoRoute })
        .with_state(state)
        .layer(security_header(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(security_header(header::REFERRER_POLICY, "no-referrer"))
        .layer(TraceLayer::new_for_http())
}

/// Sets a header on every response that has none of that name.
fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

#[cfg(test)]
mod tests;
