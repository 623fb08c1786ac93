//! The one error type of the HTTP boundary. Each variant is a status and a JSON body
//! `{"error": code, "message": text}`; internal error text never reaches a response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tower::BoxError;
use tower::load_shed::error::Overloaded;
use tower::timeout::error::Elapsed;

use super::lookup_limit::Limited;
use super::routes::lists::MAX_LIMIT;
use crate::store::StoreError;

/// Seconds a client is told to wait before retrying when the store is down or slow.
const RETRY_AFTER_SECS: &str = "5";

/// Seconds a client is told to wait before retrying when too many requests are in flight:
/// shed load clears as soon as the requests in flight finish.
const RETRY_AFTER_OVERLOADED_SECS: &str = "1";

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The id breaks the `order_uid` rule; no lookup was made.
    #[error("order id must be 1..=64 characters of A-Z a-z 0-9 _ -")]
    InvalidId,
    /// A list's `limit` is not an integer from 1 to [`MAX_LIMIT`].
    #[error("limit must be an integer from 1 to {max}", max = MAX_LIMIT)]
    InvalidLimit,
    /// The path or query holds a control character (raw or percent-encoded).
    #[error("the request target must not contain control characters")]
    InvalidTarget,
    /// No order has this id.
    #[error("no order with this id")]
    NotFound,
    /// No such route.
    #[error("no such resource")]
    NoRoute,
    /// The route exists but not for this method; only GET and HEAD are served. The router
    /// adds the `Allow` header, computed from the route's methods.
    #[error("this resource answers only GET and HEAD")]
    MethodNotAllowed,
    /// The request's headers are larger than the service accepts.
    #[error("the request headers are too large")]
    HeadersTooLarge,
    /// The database is unreachable and the cache had no answer.
    #[error("the order store is unavailable, try again shortly")]
    Unavailable,
    /// The request took longer than the service's request timeout. It is a 503, not a 408:
    /// 408 says the client was too slow to send its request, while here the server was too
    /// slow to answer, which a client should retry later (hence `Retry-After`).
    #[error("the request took too long, try again shortly")]
    Timeout,
    /// The client has spent its budget of failed lookups ([`super::lookup_limit`]); it may
    /// look orders up again after `retry_after_secs`.
    #[error(
        "too many lookups of unknown orders from this client, try again after Retry-After seconds"
    )]
    TooManyLookups {
        /// Seconds until the client's budget has a failure to give again (at least 1).
        retry_after_secs: u64,
    },
    /// The resource needs the operator token ([`super::operator`]) and the request did not
    /// present it.
    #[error(
        "this resource needs the operator token: send Authorization: Bearer <OPERATOR_TOKEN>, or sign in on the page"
    )]
    Unauthorized,
    /// Too many requests are in flight; this one was shed instead of queued.
    #[error("the service is overloaded, try again shortly")]
    Overloaded,
    /// Anything else; the cause is logged, not returned.
    #[error("internal error")]
    Internal,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// Stable machine code: `invalid_id`, `invalid_limit`, `invalid_target`, `not_found`, `no_route`,
    /// `method_not_allowed`, `headers_too_large`, `too_many_lookups`, `unauthorized`, `unavailable`, `timeout`,
    /// `overloaded` or `internal`.
    #[schema(example = "not_found")]
    pub error: &'static str,
    /// Human text; never internal error text.
    #[schema(example = "no order with this id")]
    pub message: String,
}

impl ApiError {
    /// The status and the stable code of this error.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::InvalidId => (StatusCode::BAD_REQUEST, "invalid_id"),
            Self::InvalidTarget => (StatusCode::BAD_REQUEST, "invalid_target"),
            Self::InvalidLimit => (StatusCode::BAD_REQUEST, "invalid_limit"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::NoRoute => (StatusCode::NOT_FOUND, "no_route"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
            ),
            Self::TooManyLookups { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_lookups"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            Self::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The `Retry-After` value of this error, if a retry can help.
    fn retry_after(&self) -> Option<HeaderValue> {
        match self {
            Self::Unavailable | Self::Timeout => Some(HeaderValue::from_static(RETRY_AFTER_SECS)),
            Self::Overloaded => Some(HeaderValue::from_static(RETRY_AFTER_OVERLOADED_SECS)),
            Self::TooManyLookups { retry_after_secs } => Some(HeaderValue::from(*retry_after_secs)),
            Self::InvalidId
            | Self::InvalidTarget
            | Self::InvalidLimit
            | Self::NotFound
            | Self::NoRoute
            | Self::MethodNotAllowed
            | Self::HeadersTooLarge
            | Self::Unauthorized
            | Self::Internal => None,
        }
    }

    /// The answer to an error raised by the middleware around the handlers: a timeout, shed
    /// load, or a request refused before routing.
    pub fn from_middleware(error: BoxError) -> Self {
        if error.is::<Elapsed>() {
            return Self::Timeout;
        }
        if error.is::<Overloaded>() {
            return Self::Overloaded;
        }
        match error.downcast::<Self>() {
            Ok(api_error) => *api_error,
            Err(error) => {
                tracing::error!(%error, "request failed in the HTTP middleware");
                Self::Internal
            }
        }
    }
}

impl From<StoreError> for ApiError {
    /// Maps a failed read: 503 when the database is down or slow (a retry may pass), 500
    /// otherwise. The failure is logged where it happened, not here.
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            Self::Unavailable
        } else {
            Self::Internal
        }
    }
}

impl From<Limited> for ApiError {
    /// A refused lookup: 429 with the wait in whole seconds, rounded up, at least 1.
    fn from(limited: Limited) -> Self {
        let wait = limited.retry_after;
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self::TooManyLookups {
            retry_after_secs: secs.max(1),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let retry_after = self.retry_after();
        let body = Json(ErrorBody {
            error: code,
            message: self.to_string(),
        });
        let mut response = (status, body).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, seconds);
        }
        if matches!(self, Self::Unauthorized) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"order-service\""),
            );
        }
        response
    }
}
