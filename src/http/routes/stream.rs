//! `GET /api/orders/stream`: Server-Sent Events of newly stored orders, for the live list of
//! the web page. Each event is `event: order` with an [`OrderSummary`] as JSON data; a
//! listener that fell behind gets `event: lagged` with the number of skipped orders (the page
//! then reloads its list). A comment is sent every [`KEEP_ALIVE`] so that idle proxies keep
//! the connection open.
//!
//! How the stream fits the router's limits: the request timeout and the concurrency bound
//! wrap the handler's response future, which completes as soon as the headers are ready, so
//! neither cuts the stream nor keeps a slot while it is open (a unit test checks both). Open
//! streams are bounded on their own, by [`MAX_LISTENERS`] (503 `overloaded` past it). Each
//! stream ends when the service shuts down, so a graceful shutdown never waits on one.
//!
//! [`OrderSummary`]: crate::order::OrderSummary

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::Route;
use crate::http::SharedState;
use crate::http::error::ApiError;
use crate::http::operator::Operator;

/// How often an idle stream sends a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How long a browser waits before reconnecting a dropped stream.
pub const RECONNECT: Duration = Duration::from_secs(3);

/// The most streams open at once; more are answered 503 `overloaded`.
pub const MAX_LISTENERS: usize = 256;

/// `GET /api/orders/stream`: [`order_stream`].
pub const ROUTE: Route = Route {
    path: "/api/orders/stream",
    handlers: || get(order_stream),
};

/// Streams the summaries of newly stored orders until the client leaves or the service stops.
#[utoipa::path(
    get,
    path = ROUTE.path,
    tag = "orders",
    security(("operator_token" = []), ("operator_cookie" = [])),
    responses(
        (status = 200, description = "text/event-stream: `event: order` with an OrderSummary as JSON data per new order; `event: lagged` with the number of skipped orders", content_type = "text/event-stream", body = String),
        (status = 401, description = "`unauthorized`: no operator token (Authorization: Bearer, or the page's cookie)"),
        (status = 503, description = "`overloaded`: too many streams open (with Retry-After)"),
    )
)]
pub async fn order_stream(
    _: Operator,
    State(state): State<SharedState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if state.events.listeners() >= MAX_LISTENERS {
        return Err(ApiError::Overloaded);
    }
    let receiver = state.events.subscribe();
    let first = Event::default()
        .retry(RECONNECT)
        .comment("new orders follow");
    let events = futures::stream::unfold(
        (Some(first), receiver, state.shutdown.clone()),
        |(first, mut receiver, shutdown)| async move {
            if let Some(first) = first {
                return Some((Ok(first), (None, receiver, shutdown)));
            }
            let event = tokio::select! {
                () = shutdown.cancelled() => return None,
                received = receiver.recv() => match received {
                    Ok(json) => Event::default().event("order").data(&*json),
                    Err(RecvError::Lagged(skipped)) => {
                        Event::default().event("lagged").data(skipped.to_string())
                    }
                    Err(RecvError::Closed) => return None,
                },
            };
            Some((Ok(event), (None, receiver, shutdown)))
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
