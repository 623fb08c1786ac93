//! Observing every HTTP request: `http_requests_total` and `http_request_duration_seconds`
//! labelled by route (the matched route template, never the raw path), method and status; and
//! its access-log line and span, made by [`super::access_line`] (the span carries the method,
//! route, path and request id, so the handler's own logs carry them too).
//!
//! Cheap on the hot path: labels are `&'static str` (a route label is one of the templates of
//! [`ROUTES`](crate::http::routes::ROUTES); the methods and statuses the service answers are
//! constants), and when the access log is filtered out its span is disabled and no field is
//! evaluated. With traces exported, the same span is the request's server span
//! ([`super::trace_context`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::access_line::{AccessFields, access_event, request_span};
use super::trace_context;
use crate::http::routes;
use crate::infra::access_writer::AccessWriter;
use crate::infra::metrics::names;
use crate::infra::{otel, telemetry};
use axum::extract::MatchedPath;
use axum::http::{Method, Request, Response, StatusCode};
use metrics::{Counter, Histogram, SharedString};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// The `route` label of a request that matched no route (a 404 `no_route`). The raw path is
/// never a label: it would let any client create unbounded series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The layer of [`Observe`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner }
    }
}

/// Records the metrics and the access log of each request to `inner`.
#[derive(Clone, Debug)]
pub struct Observe<S> {
    /// The service observed.
    inner: S,
}

impl<S, B, R> Service<Request<B>> for Observe<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let route = route_label(
            request
                .extensions()
                .get::<MatchedPath>()
                .map(|m| m.as_str()),
        );
        let observed = Observed::start(&request, route);
        let inner = {
            let _entered = observed.span.enter();
            self.inner.call(request)
        };
        observed.around(inner)
    }
}

/// One request being observed: its access-log span (entered while it is handled), what its
/// access line is written from, its labels and when it arrived. [`Observe`] keeps one in its
/// future; the hot route ([`crate::http::front`]) opens and finishes one around a cache hit
/// it answers itself, and wraps a miss's answer in that future ([`Observed::around`]).
pub struct Observed {
    /// The access-log span, with the request's method, route, path and request id; with traces
    /// exported, its server span.
    pub span: tracing::Span,
    /// What the access line is written from, and where, when it is written straight
    /// ([`super::access_line`]) and the `access` target is enabled.
    access: Option<(AccessFields, &'static AccessWriter)>,
    /// The `route` label.
    route: &'static str,
    /// The `method` label.
    method: &'static str,
    /// When the request arrived.
    started: Instant,
}

impl Observed {
    /// Starts observing `request`, matched to `route` (a label from [`route_label`]), in its
    /// access-log span (the handler's own log lines carry its fields). Its request id is the
    /// one [`super::request_id`] settled on, already in its headers.
    pub fn start<B>(request: &Request<B>, route: &'static str) -> Self {
        let started = Instant::now();
        Self::start_in(request, route, started, request_span(request, route))
    }

    /// As [`Self::start`], for an answer given with no code of its own logging inside it (a
    /// cache hit of [`crate::http::front`]): the span, which costs about a microsecond, is
    /// made only if someone reads it (traces are exported, or the access log is written
    /// through `tracing`).
    pub fn start_bare<B>(request: &Request<B>, route: &'static str) -> Self {
        let started = Instant::now();
        let span = if otel::enabled() || telemetry::direct_access_log().is_none() {
            request_span(request, route)
        } else {
            tracing::Span::none()
        };
        Self::start_in(request, route, started, span)
    }

    /// Observing `request`, which arrived at `started`, in `span`.
    fn start_in<B>(
        request: &Request<B>,
        route: &'static str,
        started: Instant,
        span: tracing::Span,
    ) -> Self {
        let method = method_label(request.method());
        trace_context::continue_trace(&span, request.headers(), method, route);
        let access = telemetry::direct_access_log()
            .filter(|_| tracing::enabled!(target: "access", tracing::Level::INFO))
            .map(|out| (AccessFields::of(request), out));
        Self {
            span,
            access,
            route,
            method,
            started,
        }
    }

    /// Records the answer's `status`: the metrics, the span's status and the access-log line
    /// (within the span, which the caller has entered).
    pub fn finish(&self, status: StatusCode) {
        let latency = self.started.elapsed();
        record_request(self.route, self.method, status, latency);
        trace_context::record_status(&self.span, status);
        match &self.access {
            Some((fields, out)) => fields.write(out, self.route, status, latency),
            None => access_event(status, latency),
        }
    }

    /// `inner`, the answer to the request, polled within the span and recorded when ready:
    /// [`Observe`]'s future, and the hot route's for a miss.
    pub fn around<F>(self, inner: F) -> ObserveFuture<F> {
        ObserveFuture {
            inner,
            observed: self,
        }
    }
}

pin_project! {
    /// The response future of [`Observe`]. (pin-project-lite takes no field docs.) `inner` is
    /// the observed service's future, `observed` the request's span, labels and arrival.
    pub struct ObserveFuture<F> {
        #[pin]
        inner: F,
        observed: Observed,
    }
}

impl<F, R, E> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.observed.span.enter();
        let result = std::task::ready!(this.inner.poll(cx));
        let status = match &result {
            Ok(response) => response.status(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        this.observed.finish(status);
        Poll::Ready(result)
    }
}

/// The HTTP metrics' handles by route, method and status.
type HttpHandles = HashMap<(&'static str, &'static str, u16), (Counter, Histogram)>;

thread_local! {
    /// This thread's handles of the HTTP metrics, by route, method and status: a request
    /// records into them without building a metric key or looking it up in the registry.
    static HTTP_METRICS: RefCell<HttpHandles> = RefCell::new(HashMap::new());
}

/// Records one answered request in `http_requests_total` and `http_request_duration_seconds`.
fn record_request(
    route: &'static str,
    method: &'static str,
    status: StatusCode,
    latency: Duration,
) {
    HTTP_METRICS.with_borrow_mut(|handles| {
        let (requests, duration) = handles
            .entry((route, method, status.as_u16()))
            .or_insert_with(|| {
                let status = status_label(status);
                (
                    metrics::counter!(
                        names::HTTP_REQUESTS,
                        "route" => route,
                        "method" => method,
                        "status" => status.clone()
                    ),
                    metrics::histogram!(
                        names::HTTP_REQUEST_DURATION,
                        "route" => route,
                        "method" => method,
                        "status" => status
                    ),
                )
            });
        requests.increment(1);
        duration.record(latency.as_secs_f64());
    });
}

/// The `route` label of a request: its matched route template, or [`UNMATCHED_ROUTE`].
pub fn route_label(matched: Option<&str>) -> &'static str {
    matched
        .and_then(routes::template)
        .unwrap_or(UNMATCHED_ROUTE)
}

/// The `method` label: the standard methods by name, anything else `other` (a client could
/// otherwise make up methods to create series).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// The `status` label: a constant for the statuses the service answers, else the number.
pub fn status_label(status: StatusCode) -> SharedString {
    let known = match status.as_u16() {
        200 => "200",
        204 => "204",
        304 => "304",
        400 => "400",
        404 => "404",
        405 => "405",
        408 => "408",
        413 => "413",
        414 => "414",
        431 => "431",
        500 => "500",
        503 => "503",
        _ => return SharedString::from_owned(status.as_str().to_owned()),
    };
    SharedString::const_str(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unmatched_request_gets_a_fixed_route_label() {
        assert_eq!(route_label(None), UNMATCHED_ROUTE);
    }

    #[test]
    fn a_route_label_is_the_static_template_from_routes() {
        let first = route_label(Some("/api/order/{order_uid}"));
        let second = route_label(Some(&String::from("/api/order/{order_uid}")));
        assert_eq!(first, "/api/order/{order_uid}");
        assert!(std::ptr::eq(first, second), "the same template, one label");
    }

    #[test]
    fn made_up_methods_share_one_label() {
        let made_up = Method::from_bytes(b"BREW").expect("a valid token");
        assert_eq!(method_label(&made_up), "other");
        assert_eq!(method_label(&Method::GET), "GET");
    }

    #[test]
    fn statuses_label_as_their_number() {
        assert_eq!(&*status_label(StatusCode::OK), "200");
        assert_eq!(&*status_label(StatusCode::IM_A_TEAPOT), "418");
    }
}
