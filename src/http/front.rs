//! The service each connection is served by: `GET /api/order/{order_uid}` is answered here,
//! from the cache at once or from PostgreSQL on a miss; every other request goes to the router
//! and its layers.
//!
//! Why: through axum's routing, its path extractor and the ten layers of
//! [`super::app_with`]'s router (each with its own future), a cache hit cost about 60 % more
//! CPU than hyper's answer alone (docs/benchmarks.md, "Issue 16"), and a miss about 3.5 us
//! more of its 24 (docs/benchmarks.md, "Issue 16, fourth pass").
//!
//! A request takes the short way only if the long way would give it the same answer: `GET`,
//! no query, a valid id, headers within the limit, no operator token needed for lookups, a
//! client the lookup limit does not block and a free slot of the concurrency bound (held
//! while answering). Anything else (`HEAD`, a query, a refused request) goes to the router
//! untouched, which answers it as before. A hit is answered at once; a miss is looked up as
//! the order route's handler ([`order::get_order`]) looks it up, within the same request
//! timeout, its failures answered as the router answers them. The short answer carries what
//! the layers give one: the request id (kept or generated), the order route's headers (with
//! `304` for a matching `If-None-Match`) and the security headers; and it is counted and
//! logged by the same [`Observed`] as every other request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::HttpBody;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use futures::future::{BoxFuture, Either, Ready, ready};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;

use super::error::ApiError;
use super::lookup_limit::Client;
use super::middleware::guard::header_bytes;
use super::middleware::observe::{ObserveFuture, Observed, route_label};
use super::middleware::request_id::{X_REQUEST_ID, settle_request_id};
use super::routes::order::{self, count, order_response};
use super::{Limits, SharedState, add_security_headers};
use crate::cache::Served;

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

/// What the short way reads: the router's state, its limits and its concurrency bound.
struct HotRoute {
    /// The state the router's handlers get.
    state: SharedState,
    /// The largest sum of header name and value lengths the request guard lets through.
    max_header_bytes: usize,
    /// How long a lookup may take before it is answered 503 `timeout`, as the router's.
    request_timeout: Duration,
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
            request_timeout: limits.request_timeout,
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

    /// The short way for `request`, if it may take it: the hit answered, or what its miss
    /// is looked up with.
    fn short_way(&self, request: &mut Request) -> Option<ShortWay> {
        let hot = &*self.hot;
        if request.method() != Method::GET || request.uri().query().is_some() {
            return None;
        }
        let uid = request.uri().path().strip_prefix(ORDER_PATH_PREFIX)?;
        if header_bytes(request.headers()) > hot.max_header_bytes {
            return None;
        }
        let state = &*hot.state;
        let peer = self.peer.or_else(|| {
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| *peer)
        });
        let client = order::admit(state, uid, request.headers(), peer).ok()?;
        let slot = hot.in_flight.clone().try_acquire_owned().ok()?;
        let Some(order) = state.cache.cached(uid) else {
            return Some(ShortWay::Miss(client, slot));
        };
        let request_id = settle_request_id(request.headers_mut());
        let observed = Observed::start_bare(request, hot.route);
        let _entered = observed.span.enter();
        count(Served::Hit);
        let response = finished(
            order_response(order, Served::Hit, request.headers()),
            request_id,
        );
        observed.finish(response.status());
        drop(slot);
        Some(ShortWay::Hit(response))
    }

    /// The answer to `request`, admitted by [`Self::short_way`] as a miss of `client`, holding
    /// `slot`: looked up as the order route looks it up, within the request timeout.
    fn answer_miss(
        &self,
        mut request: Request,
        client: Option<Client>,
        slot: OwnedSemaphorePermit,
    ) -> MissFuture {
        let request_id = settle_request_id(request.headers_mut());
        let observed = Observed::start(&request, self.hot.route);
        let hot = self.hot.clone();
        observed.around(Box::pin(async move {
            let _slot = slot;
            // `short_way` admitted the path: the prefix, then a valid id.
            let uid = &request.uri().path()[ORDER_PATH_PREFIX.len()..];
            let lookup = order::look_up(&hot.state, uid, client, request.headers());
            let response = match tokio::time::timeout(hot.request_timeout, lookup).await {
                Ok(Ok(response)) => response,
                Ok(Err(error)) => error.into_response(),
                Err(_) => ApiError::Timeout.into_response(),
            };
            Ok(finished(response, request_id))
        }))
    }
}

/// The way a request admitted by [`Front::short_way`] takes.
enum ShortWay {
    /// A cache hit, answered.
    Hit(Response),
    /// A miss, to look up for this client while holding this slot of the concurrency bound.
    Miss(Option<Client>, OwnedSemaphorePermit),
}

/// The answer to a miss, as it is being looked up.
type MissFuture = ObserveFuture<BoxFuture<'static, Result<Response, Infallible>>>;

/// `response` as the router's layers finish it: with `request_id` and, as axum's routes do,
/// last, the length of the body (which is all there).
fn finished(response: Response, request_id: HeaderValue) -> Response {
    let mut response = add_security_headers(response);
    response.headers_mut().insert(X_REQUEST_ID, request_id);
    if let Some(length) = response.body().size_hint().exact() {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    response
}

impl Service<Request> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        Either<Ready<Result<Response, Infallible>>, MissFuture>,
        <Router as Service<Request>>::Future,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match self.short_way(&mut request) {
            Some(ShortWay::Hit(response)) => {
                return Either::Left(Either::Left(ready(Ok(response))));
            }
            Some(ShortWay::Miss(client, slot)) => {
                return Either::Left(Either::Right(self.answer_miss(request, client, slot)));
            }
            None => {}
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
    pub(super) async fn short_answer(&self, mut request: Request) -> Option<Response> {
        match self.short_way(&mut request)? {
            ShortWay::Hit(response) => Some(response),
            ShortWay::Miss(client, slot) => {
                let answer = self.answer_miss(request, client, slot).await;
                Some(answer.unwrap_or_else(|infallible| match infallible {}))
            }
        }
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
