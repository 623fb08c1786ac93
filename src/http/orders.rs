//! `GET /api/order/{order_uid}`: the cache first, PostgreSQL on a miss (which then fills the
//! cache). The bytes are the order's canonical JSON either way.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::AppState;
use super::error::ApiError;
use crate::order::rules::is_valid_order_uid;

/// The header that says where the answer came from.
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// Answers one order by id.
pub async fn get_order(
    State(state): State<AppState>,
    uid: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path(uid)) = uid else {
        return Err(ApiError::InvalidId);
    };
    if !is_valid_order_uid(&uid) {
        return Err(ApiError::InvalidId);
    }
    if let Some(json) = state.cache.get(&uid).await {
        return Ok(order_response(json, "hit"));
    }
    let json = state.orders.find(&uid).await?.ok_or(ApiError::NotFound)?;
    state.cache.insert(&uid, json.clone()).await;
    Ok(order_response(json, "miss"))
}

/// A 200 with the order's JSON and `X-Cache`.
fn order_response(json: Bytes, cache: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (X_CACHE, HeaderValue::from_static(cache)),
        ],
        json,
    )
        .into_response()
}
