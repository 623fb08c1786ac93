//! The routes: one module per resource, each owning its paths, its handlers and, for the API,
//! their OpenAPI description (whose `path` is the route's own, so the document and the router
//! cannot disagree). [`ROUTES`] lists every route once: the router is built from it
//! ([`router`]), and the metrics' `route` label is found in it ([`template`]), so a label is
//! always one of these `&'static str` and none is made at run time.

pub mod health;
pub mod lists;
pub mod metrics;
pub mod openapi;
pub mod order;
pub mod page;
pub mod stream;

use axum::Router;
use axum::routing::MethodRouter;

use crate::http::SharedState;

/// A path and the handlers that answer it.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// The path template: what the router matches, the `route` label of the metrics, and the
    /// path in the OpenAPI document.
    pub path: &'static str,
    /// The path's handlers (a function, as a `MethodRouter` cannot be built in a constant).
    pub handlers: fn() -> MethodRouter<SharedState>,
}

/// Every route the service serves. The order route comes first: [`template`] looks a
/// request's path up in this order, and that route is the one on the hot path.
pub const ROUTES: [Route; 11] = [
    order::ROUTE,
    lists::ORDERS,
    lists::REJECTED,
    stream::ROUTE,
    health::LIVE,
    health::READY,
    metrics::ROUTE,
    openapi::ROUTE,
    page::INDEX,
    page::SCRIPT,
    page::STYLE,
];

/// A router with every route of [`ROUTES`]; the fallbacks and the layers are added by
/// [`crate::http::app_with`].
pub fn router() -> Router<SharedState> {
    ROUTES.iter().fold(Router::new(), |router, route| {
        router.route(route.path, (route.handlers)())
    })
}

/// The template in [`ROUTES`] equal to `matched` (a request's matched path), as a
/// `&'static str`. A matched path is always one of them, as the router is built from them.
pub fn template(matched: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .map(|route| route.path)
        .find(|path| *path == matched)
}
