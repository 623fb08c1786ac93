//! `GET /api/orders?limit=N` and `GET /api/rejected?limit=N`: the short lists the web page
//! shows beside the search, newest first. Bounded: `limit` is 1..=[`MAX_LIMIT`], by default
//! [`DEFAULT_LIMIT`]; anything else is 400 `invalid_limit`. The OpenAPI attributes need these
//! numbers as literals; a test checks that the document says what the constants do.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::Deserialize;

use super::Route;
use crate::http::SharedState;
use crate::http::error::ApiError;
use crate::http::operator::Operator;
use crate::order::OrderSummary;
use crate::store::RejectedSummary;

/// How many entries a list has when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 20;

/// The most entries a list may have.
pub const MAX_LIMIT: i64 = 100;

/// The query of a list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// How many entries, newest first: 1..=100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// The limit a request asks for, checked: a query that does not parse, or a limit outside
/// 1..=[`MAX_LIMIT`], is [`ApiError::InvalidLimit`].
pub fn checked_limit(params: Result<Query<ListParams>, QueryRejection>) -> Result<i64, ApiError> {
    let Ok(Query(params)) = params else {
        return Err(ApiError::InvalidLimit);
    };
    match params.limit {
        None => Ok(DEFAULT_LIMIT),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(_) => Err(ApiError::InvalidLimit),
    }
}

/// `GET /api/orders`: [`list_orders`].
pub const ORDERS: Route = Route {
    path: "/api/orders",
    handlers: || get(list_orders),
};

/// The most recently stored orders, newest first, as summaries.
#[utoipa::path(
    get,
    path = ORDERS.path,
    tag = "orders",
    security(("operator_token" = []), ("operator_cookie" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "The most recent orders, newest first", body = [OrderSummary]),
        (status = 400, description = "`invalid_limit`: limit is not an integer from 1 to 100"),
        (status = 401, description = "`unauthorized`: no operator token (Authorization: Bearer, or the page's cookie)"),
        (status = 503, description = "`unavailable`: PostgreSQL unreachable (with Retry-After)"),
    )
)]
pub async fn list_orders(
    _: Operator,
    State(state): State<SharedState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Vec<OrderSummary>>, ApiError> {
    let limit = checked_limit(params)?;
    Ok(Json(state.lists.recent_summaries(limit).await?))
}

/// `GET /api/rejected`: [`list_rejected`].
pub const REJECTED: Route = Route {
    path: "/api/rejected",
    handlers: || get(list_rejected),
};

/// The most recent rejections, newest first, with a safe preview of each payload.
#[utoipa::path(
    get,
    path = REJECTED.path,
    tag = "orders",
    security(("operator_token" = []), ("operator_cookie" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "The most recent rejections, newest first", body = [RejectedSummary]),
        (status = 400, description = "`invalid_limit`: limit is not an integer from 1 to 100"),
        (status = 401, description = "`unauthorized`: no operator token (Authorization: Bearer, or the page's cookie)"),
        (status = 503, description = "`unavailable`: PostgreSQL unreachable (with Retry-After)"),
    )
)]
pub async fn list_rejected(
    _: Operator,
    State(state): State<SharedState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Vec<RejectedSummary>>, ApiError> {
    let limit = checked_limit(params)?;
    Ok(Json(state.lists.recent_rejected(limit).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_limits_are_the_constants() {
        let json = serde_json::to_value(super::super::openapi::document()).expect("serializes");
        for route in [ORDERS, REJECTED] {
            let get = &json["paths"][route.path]["get"];
            let limit = &get["parameters"][0];
            assert_eq!(limit["name"], "limit", "{}", route.path);
            assert_eq!(limit["schema"]["minimum"], 1, "{}", route.path);
            assert_eq!(limit["schema"]["maximum"], MAX_LIMIT, "{}", route.path);
            assert_eq!(
                limit["description"],
                format!(
                    "How many entries, newest first: 1..={MAX_LIMIT}, default {DEFAULT_LIMIT}."
                ),
                "{}",
                route.path
            );
            assert_eq!(
                get["responses"]["400"]["description"],
                format!("`invalid_limit`: limit is not an integer from 1 to {MAX_LIMIT}"),
                "{}",
                route.path
            );
        }
    }
}
