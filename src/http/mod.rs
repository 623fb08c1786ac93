//! The HTTP side: the router, its shared state, the limits every request is held to, and the
//! headers every response carries. The handlers are in [`routes`], the layers around them in
//! [`middleware`].
//!
//! Layers, from the outside in (the first sees a request first and a response last):
//!
//! 1. request ids ([`middleware::request_id`]: `x-request-id` kept if given, generated if
//!    not, returned on the response), then [`middleware::observe`]: metrics and the access
//!    log, so that every answer is counted and logged, refused ones included;
//! 2. the security headers, outside everything that can answer, so that timeouts, shed load,
//!    refused requests, 404s and 405s carry them too;
//! 3. [`middleware::error_answer::AnswerErrors`]: every error of the layers below becomes its
//!    [`ApiError`] response;
//! 4. the request guard ([`middleware::guard`]): oversized headers (431) and control
//!    characters in the target (400) are refused before they take a slot;
//! 5. load shedding and the concurrency bound: past [`Limits::max_in_flight`] requests are
//!    answered 503 at once instead of queueing;
//! 6. the request timeout, inside the bound, so that a timed-out request frees its slot.
//!
//! Each connection is served by [`front::Front`], which answers a plain lookup of the order
//! route itself (a hit at once, a miss from PostgreSQL, within the same timeout), with the
//! same answers, headers, metrics and access log as the router and its layers give it, and
//! hands every other request to the router.
//!
//! The lists, the event stream and the rejections need the operator token
//! ([`operator`]), checked by their handlers' [`operator::Operator`] argument.
//!
//! The order route also holds each client to a budget of failed lookups
//! ([`lookup_limit`]): in its handler, not in a layer, as only the lookup's outcome (a 404)
//! says what it costs, and the other routes are not limited.
//!
//! The timeout and the bound hold a handler's response future, not the body it streams: the
//! event stream (`/api/orders/stream`, see [`routes::stream`]) passes both once its headers
//! are ready, and is bounded and ended at shutdown on its own.
//!
//! axum applies a router's layers to each route, so the bound is one semaphore shared by all
//! routes. None of these layers boxes a future or clones a service per request: the permit is
//! taken without allocating when one is free, and the timeout's timer is registered only if
//! the handler does not finish at its first poll (a cache hit does).

pub mod error;
pub mod front;
pub mod lookup_limit;
pub mod middleware;
pub mod operator;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Response, header};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower::filter::FilterLayer;
use tower::layer::layer_fn;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::timeout::TimeoutLayer;
use tower::util::{MapRequestLayer, MapResponseLayer};
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};

use crate::cache::OrderCache;
use crate::events::OrderEvents;
use crate::store::{OrderLookup, RecentLists};
use error::ApiError;
use lookup_limit::LookupLimit;
use middleware::error_answer::AnswerErrors;
use middleware::guard::RequestGuard;
use middleware::observe::ObserveLayer;
use middleware::request_id::{self, RandomRequestId, X_REQUEST_ID};
use routes::health::Readiness;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Orders' JSON by id, in memory.
    pub cache: OrderCache,
    /// Where orders are looked up when the cache misses.
    pub orders: Arc<dyn OrderLookup>,
    /// What `GET /health/ready` checks.
    pub readiness: Readiness,
    /// The recent orders and rejections the page lists.
    pub lists: Arc<dyn RecentLists>,
    /// Newly stored orders, for the live stream.
    pub events: OrderEvents,
    /// The limit on failed order lookups per client.
    pub lookup_limit: LookupLimit,
    /// Who may call the operator endpoints (lists, stream, rejections).
    pub operator: operator::OperatorAccess,
    /// Cancelled when the service stops: open event streams end then.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The state as the handlers get it: one reference count to clone per request, however many
/// parts the state has.
pub type SharedState = Arc<AppState>;

/// How long a request may take before it is answered with 503 `timeout`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How many requests are handled at once before more are answered with 503 `overloaded`.
/// Generous: a cache hit takes microseconds, so this many in flight means the service is
/// stuck (a slow database), not busy.
pub const MAX_IN_FLIGHT: usize = 1024;

/// The largest sum of header name and value lengths a request may carry (16 KiB); above it
/// the answer is 431 `headers_too_large`. Far below hyper's own limit, which answers without
/// a body.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The limits every request is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long a request may take before it is answered with 503 `timeout`.
    pub request_timeout: Duration,
    /// How many requests are handled at once; more are answered with 503 `overloaded`.
    pub max_in_flight: usize,
    /// The largest sum of header name and value lengths of a request, in bytes.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout: REQUEST_TIMEOUT,
            max_in_flight: MAX_IN_FLIGHT,
            max_header_bytes: MAX_HEADER_BYTES,
        }
    }
}

/// The page may load only its own script, style and data.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The headers every response carries, set on those that have none of the name.
const SECURITY_HEADERS: [(HeaderName, HeaderValue); 5] = [
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    ),
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    ),
];

/// The service, as each connection gets it ([`front::Front`]), with the default [`Limits`].
pub fn app(state: AppState) -> front::Front {
    app_with(state, Limits::default())
}

/// The service ([`front::Front`]) with the given limits: the router (`router_with`) behind
/// the hot route's own answer to order lookups, sharing the router's state and concurrency
/// bound.
pub fn app_with(state: AppState, limits: Limits) -> front::Front {
    let state = Arc::new(state);
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
    let router = router_with(state.clone(), limits, in_flight.clone());
    front::Front::new(router, state, limits, in_flight)
}

/// The service's routes ([`routes::ROUTES`]) over `state`, with the given limits and the
/// concurrency bound `in_flight` (of `limits.max_in_flight` permits). Only GET (and so HEAD) is
/// routed; any other method on a known path is 405 `method_not_allowed` (with `Allow`), an
/// unknown path 404 `no_route`.
fn router_with(state: SharedState, limits: Limits, in_flight: Arc<Semaphore>) -> Router {
    // One `layer` call: axum wraps each route in a boxed service per call and clones that box
    // per request, so one call with the whole stack costs one clone instead of one per layer.
    let layers = ServiceBuilder::new()
        .layer(MapRequestLayer::new(request_id::drop_unfit_request_id))
        .layer(SetRequestIdLayer::new(X_REQUEST_ID, RandomRequestId))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
        .layer(ObserveLayer)
        .layer(MapResponseLayer::new(add_security_headers))
        .layer(layer_fn(AnswerErrors::new))
        .layer(FilterLayer::new(RequestGuard::new(limits.max_header_bytes)))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::with_semaphore(in_flight))
        .layer(TimeoutLayer::new(limits.request_timeout));
    // The fallback for other methods applies to the routes added before it: all of them.
    routes::router()
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .fallback(|| async { ApiError::NoRoute })
        .with_state(state)
        .layer(layers)
}

/// Sets each of [`SECURITY_HEADERS`] that `response` has none of.
pub(crate) fn add_security_headers<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        if !headers.contains_key(&name) {
            headers.insert(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests;
