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
#[utoipa::path(
    get,
    path = "/api/order/{order_uid}",
    tag = "orders",
    params(
        ("order_uid" = String, Path, description = "The order's id: 1..=64 characters of A-Z a-z 0-9 _ -", min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]{1,64}$", example = "b563feb7b2b84b6test"),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = "An ETag from an earlier answer: 304 if the order still has it")
    ),
    responses(
        (status = 200, description = "The order, as canonical JSON", body = crate::order::Order,
            headers(("X-Cache" = String, description = "`hit`: answered from memory; `miss`: read from PostgreSQL"))),
        (status = 304, description = "Not modified: the order still has the ETag given in If-None-Match"),
        (status = 400, description = "`invalid_id`: the id breaks the order_uid rule (no lookup made); `invalid_target`: a control character in the path or query", body = super::error::ErrorBody),
        (status = 404, description = "`not_found`: no order has this id; `no_route`: no such path", body = super::error::ErrorBody),
        (status = 503, description = "`unavailable`: PostgreSQL unreachable and the order not cached; `timeout`; `overloaded`. Retry after `Retry-After` seconds", body = super::error::ErrorBody,
            headers(("Retry-After" = String, description = "Seconds to wait before retrying")))
    )
)]
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
