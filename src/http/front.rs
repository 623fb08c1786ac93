//! The service each connection is served by: a cache hit of `GET /api/order/{order_uid}` is
//! answered here at once, every other request goes to the router and its layers.
//!
//! Why: a hit is a lookup and a copy of a reference, but through axum's routing, its path
//! extractor and the ten layers of [`super::app_with`]'s router (each with its own future) it
//! cost about 60 % more CPU than hyper's answer alone (docs/benchmarks.md, "Issue 16").
//!
//! A request takes the short way only if the long way would give it the same answer: `GET`,
//! no query, a valid id, headers within the limit, no operator token needed for lookups, a
//! client the lookup limit does not block, a free slot of the concurrency bound (held while
//! answering) and the order cached and fresh. Anything else (a miss, `HEAD`, a query, a
//! refused request) goes to the router untouched, which answers it as before. The short
//! answer carries what the layers give a hit: the request id (kept or generated), the order
//! route's headers (with `304` for a matching `If-None-Match`) and the security headers; and
//! it is counted and logged by the same [`Observed`] as every other request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::HttpBody;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use axum::serve::IncomingStream;
use futures::future::{Either, Ready, ready};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Service;

use super::middleware::guard::header_bytes;
use super::middleware::observe::{Observed, route_label};
use super::middleware::request_id::{X_REQUEST_ID, settle_request_id};
use super::routes::order::{self, count, order_response};
use super::{Limits, SharedState, add_security_headers};
use crate::cache::Served;
use crate::order::rules::is_valid_order_uid;

/// The path of an order, up to its id.
const ORDER_PATH_PREFIX: &str = "/api/order/";

/// The router, and what a cache hit is answered from without it.
#[derive(Clone)]
pub struct Front {
    /// Every request that is not a plain cache hit.
    router: Router,
    /// What the short way needs; shared by every connection.
    hot: Arc<HotRoute>,
    /// The connection's peer, given to the router as `ConnectInfo` (the lookup limit keys
    /// clients by it). `None` outside a server (tests): then a request's own `ConnectInfo`, if
    /// any, is used.
    peer: Option<SocketAddr>,
}

/// What the short way reads: the router's state, its header limit and its concurrency bound.
struct HotRoute {
    /// The state the router's handlers get.
    state: SharedState,
    /// The largest sum of header name and value lengths the request guard lets through.
    max_header_bytes: usize,
    /// The router's concurrency bound, the same semaphore.
    in_flight: Arc<Semaphore>,
    /// The `route` label of the order route.
    route: &'static str,
}

impl Front {
    /// `router` behind the short way, which reads the same `state`, `limits` and `in_flight`
    /// bound as the router's layers.
    pub(super) fn new(
        router: Router,
        state: SharedState,
        limits: Limits,
        in_flight: Arc<Semaphore>,
    ) -> Self {
        let hot = HotRoute {
            state,
            max_header_bytes: limits.max_header_bytes,
            in_flight,
            route: route_label(Some(order::ROUTE.path)),
        };
        Self {
            router,
            hot: Arc::new(hot),
            peer: None,
        }
    }

    /// The service for a server: each connection gets its own, knowing its peer.
    pub fn into_make_service(self) -> MakeFront {
        MakeFront(self)
    }

    /// The answer to `request` if it is a cache hit the router would answer the same way.
    fn answer_hit(&self, request: &mut Request) -> Option<Response> {
        let hot = &*self.hot;
        if request.method() != Method::GET || request.uri().query().is_some() {
            return None;
        }
        let uid = request.uri().path().strip_prefix(ORDER_PATH_PREFIX)?;
        if !is_valid_order_uid(uid) || header_bytes(request.headers()) > hot.max_header_bytes {
            return None;
        }
        let state = &*hot.state;
        state.operator.check_lookup(request.headers()).ok()?;
        let peer = self.peer.or_else(|| {
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| *peer)
        });
        if let Some(client) = state.lookup_limit.client(peer) {
            state.lookup_limit.check(client).ok()?;
        }
        let _slot = hot.in_flight.try_acquire().ok()?;
        let order = state.cache.cached(uid)?;
        let request_id = settle_request_id(request.headers_mut());
        let observed = Observed::start_bare(request, hot.route);
        let _entered = observed.span.enter();
        count(Served::Hit);
        let mut response =
            add_security_headers(order_response(order, Served::Hit, request.headers()));
        response.headers_mut().insert(X_REQUEST_ID, request_id);
        // As axum's routes do, last: the length of the body, which is all there.
        if let Some(length) = response.body().size_hint().exact() {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
        observed.finish(response.status());
        Some(response)
    }
}

impl Service<Request> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, <Router as Service<Request>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        if let Some(response) = self.answer_hit(&mut request) {
            return Either::Left(ready(Ok(response)));
        }
        if let Some(peer) = self.peer {
            request.extensions_mut().insert(ConnectInfo(peer));
        }
        Either::Right(self.router.call(request))
    }
}

/// Makes a [`Front`] for each connection [`axum::serve()`] accepts.
#[derive(Clone)]
pub struct MakeFront(Front);

impl Service<IncomingStream<'_, TcpListener>> for MakeFront {
    type Response = Front;
    type Error = Infallible;
    type Future = Ready<Result<Front, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'_, TcpListener>) -> Self::Future {
        ready(Ok(Front {
            peer: Some(*stream.remote_addr()),
            ..self.0.clone()
        }))
    }
}

#[cfg(test)]
impl Front {
    /// The short way's answer alone: `None` where the router would be asked.
    pub(super) fn short_answer(&self, mut request: Request) -> Option<Response> {
        self.answer_hit(&mut request)
    }

    /// The router alone, without the short way.
    pub(super) fn router(&self) -> Router {
        self.router.clone()
    }

    /// The concurrency bound the router and the short way share.
    pub(super) fn in_flight(&self) -> &Semaphore {
        &self.hot.in_flight
    }
}
