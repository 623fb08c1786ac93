//! The one error type of the HTTP boundary. Each variant is a status and a JSON body
//! `{"error": code, "message": text}`; internal error text never reaches a response.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;

/// Seconds a client is told to wait before retrying after a 503.
const RETRY_AFTER_SECS: &str = "5";

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The id breaks the `order_uid` rule; no lookup was made.
    #[error("order id must be 1..=64 characters of A-Z a-z 0-9 _ -")]
    InvalidId,
    /// No order has this id.
    #[error("no order with this id")]
    NotFound,
    /// No such route.
    #[error("no such resource")]
    NoRoute,
    /// The database is unreachable and the cache had no answer.
    #[error("the order store is unavailable, try again shortly")]
    Unavailable,
    /// Anything else; the cause is logged, not returned.
    #[error("internal error")]
    Internal,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
struct ErrorBody {
    /// Stable machine code.
    error: &'static str,
    /// Human text.
    message: String,
}

impl ApiError {
    /// The status and the stable code of this error.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::InvalidId => (StatusCode::BAD_REQUEST, "invalid_id"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::NoRoute => (StatusCode::NOT_FOUND, "no_route"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => {
                tracing::warn!(%error, "order lookup failed: database unavailable");
                Self::Unavailable
            }
            StoreError::Query(_) | StoreError::Corrupt { .. } => {
                tracing::error!(%error, "order lookup failed");
                Self::Internal
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = Json(ErrorBody {
            error: code,
            message: self.to_string(),
        });
        if status == StatusCode::SERVICE_UNAVAILABLE {
            (status, [(header::RETRY_AFTER, RETRY_AFTER_SECS)], body).into_response()
        } else {
            (status, body).into_response()
        }
    }
}
