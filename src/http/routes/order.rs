//! `GET /api/order/{order_uid}`: the cache first, PostgreSQL on a miss (which then fills the
//! cache; concurrent misses for one id share one read). The bytes are the order's canonical
//! JSON either way, with a strong `ETag`; `If-None-Match` is answered `304 Not Modified`.
//! Each order answered (200 or 304) counts as a cache hit or miss (`cache_hits_total`,
//! `cache_misses_total`), here where the cache says which, and says it in `X-Cache`.
//! A client that has spent its budget of failed lookups ([`crate::http::lookup_limit`]) is
//! answered 429 `too_many_lookups`, found or not; only a 404 takes from the budget.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use metrics::Counter;

use super::Route;
use crate::cache::{CachedOrder, Served};
use crate::http::error::ApiError;
use crate::http::lookup_limit::Client;
use crate::http::{AppState, SharedState};
use crate::infra::metrics::names;
use crate::order::rules::is_valid_order_uid;

/// The header that says where the answer came from.
const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// `Cache-Control` of an order: orders are immutable, so any cache may keep one for a year
/// without asking again.
pub const ORDER_CACHE_CONTROL: HeaderValue =
    HeaderValue::from_static("public, max-age=31536000, immutable");

/// Room for the order's headers and the ones the layers around it add, so that the map is
/// allocated once.
const RESPONSE_HEADERS: usize = 12;

/// `GET /api/order/{order_uid}`: [`get_order`].
pub const ROUTE: Route = Route {
    path: "/api/order/{order_uid}",
    handlers: || get(get_order),
};

/// Answers one order by id.
#[utoipa::path(
    get,
    path = ROUTE.path,
    tag = "orders",
    params(
        ("order_uid" = String, Path, description = "The order's id: 1..=64 characters of A-Z a-z 0-9 _ -", min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]{1,64}$", example = "b563feb7b2b84b6test"),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = "An ETag from an earlier answer: 304 if the order still has it")
    ),
    responses(
        (status = 200, description = "The order, as canonical JSON", body = crate::order::Order,
            headers(("X-Cache" = String, description = "`hit`: answered from memory; `miss`: read from PostgreSQL"))),
        (status = 304, description = "Not modified: the order still has the ETag given in If-None-Match"),
        (status = 400, description = "`invalid_id`: the id breaks the order_uid rule (no lookup made); `invalid_target`: a control character in the path or query", body = crate::http::error::ErrorBody),
        (status = 401, description = "`unauthorized`: only when ORDER_LOOKUP_REQUIRES_TOKEN=true and no operator token is presented", body = crate::http::error::ErrorBody),
        (status = 404, description = "`not_found`: no order has this id; `no_route`: no such path", body = crate::http::error::ErrorBody),
        (status = 429, description = "`too_many_lookups`: this client has asked for too many unknown ids; retry after `Retry-After` seconds", body = crate::http::error::ErrorBody,
            headers(("Retry-After" = String, description = "Seconds to wait before retrying"))),
        (status = 503, description = "`unavailable`: PostgreSQL unreachable and the order not cached; `timeout`; `overloaded`. Retry after `Retry-After` seconds", body = crate::http::error::ErrorBody,
            headers(("Retry-After" = String, description = "Seconds to wait before retrying")))
    )
)]
pub async fn get_order(
    State(state): State<SharedState>,
    uid: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Ok(Path(uid)) = uid else {
        return Err(ApiError::InvalidId);
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let client = admit(&state, &uid, request.headers(), peer)?;
    look_up(&state, &uid, client, request.headers()).await
}

/// The route's checks before a lookup of `uid` from `peer`: a valid id, the operator token
/// if lookups need it, a client the lookup limit does not block; then the client the lookup
/// counts against, if any. [`get_order`]'s and the short way's ([`crate::http::front`]),
/// which takes a request only if these pass.
pub(crate) fn admit(
    state: &AppState,
    uid: &str,
    request: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<Option<Client>, ApiError> {
    if !is_valid_order_uid(uid) {
        return Err(ApiError::InvalidId);
    }
    state.operator.check_lookup(request)?;
    let client = state.lookup_limit.client(peer);
    if let Some(client) = client {
        state.lookup_limit.check(client)?;
    }
    Ok(client)
}

/// The answer to a lookup of `uid` (a valid id) by `client`, once its request has passed
/// the route's checks: the order from the cache or the database (counted), else 404 (taken
/// from the client's budget). [`get_order`]'s and the short way's
/// ([`crate::http::front`]) for a request it admits.
pub(crate) async fn look_up(
    state: &AppState,
    uid: &str,
    client: Option<Client>,
    request: &HeaderMap,
) -> Result<Response, ApiError> {
    let Some((order, served)) = state.cache.get_or_load(uid, state.orders.as_ref()).await? else {
        if let Some(client) = client {
            state.lookup_limit.failed(client)?;
        }
        return Err(ApiError::NotFound);
    };
    count(served);
    Ok(order_response(order, served, request))
}

/// Counts an order answered from the cache in `cache_hits_total`, one read from the database in
/// `cache_misses_total`.
pub(crate) fn count(served: Served) {
    thread_local! {
        /// This thread's handles of `cache_hits_total` and `cache_misses_total`: counting
        /// builds no metric key and looks nothing up in the registry.
        static CACHE_ANSWERS: (Counter, Counter) =
            (metrics::counter!(names::CACHE_HITS), metrics::counter!(names::CACHE_MISSES));
    }
    CACHE_ANSWERS.with(|(hits, misses)| match served {
        Served::Hit => hits.increment(1),
        Served::Miss => misses.increment(1),
    });
}

/// A 200 with the order's JSON, or a 304 if the client's `If-None-Match` has its tag; either
/// way with `ETag`, `Cache-Control` and `X-Cache`.
pub(crate) fn order_response(order: CachedOrder, served: Served, request: &HeaderMap) -> Response {
    let not_modified = if_none_match_has(request, order.etag.as_bytes());
    let mut response = if not_modified {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        Response::new(Body::from(order.json))
    };
    let headers = response.headers_mut();
    headers.reserve(RESPONSE_HEADERS);
    if !not_modified {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    headers.insert(header::ETAG, order.etag);
    headers.insert(header::CACHE_CONTROL, ORDER_CACHE_CONTROL);
    headers.insert(X_CACHE, HeaderValue::from_static(served.as_str()));
    response
}

/// Whether the request's `If-None-Match` fields (RFC 9110, 13.1.2) match `etag`: `*`, or a
/// listed entity tag equal to it by weak comparison (`W/` ignored). A field that does not
/// parse matches nothing from where it stops being valid.
//
// Hand-written, not `headers::IfNoneMatch::precondition_passes`: that crate is not in the tree,
// and it fails the table test below: it takes `*` only as the whole value (not ` * `), skips
// an element that does not parse and matches a later one (`garbage, "tag"`), joins several
// fields into a newly allocated value, and needs the order's `ETag` parsed on each request.
// This one reads the fields in place; with no `If-None-Match` (the common case) it is one
// header lookup and no allocation.
pub fn if_none_match_has(request: &HeaderMap, etag: &[u8]) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .any(|field| field_matches(field.as_bytes(), etag))
}

/// Whether one `If-None-Match` field value matches `etag` (a quoted opaque tag).
fn field_matches(mut field: &[u8], etag: &[u8]) -> bool {
    loop {
        field = field.trim_ascii_start();
        match field {
            [] => return false,
            [b',', rest @ ..] => field = rest,
            [b'*', rest @ ..] => return is_end_of_element(rest),
            _ => {
                let tag = field.strip_prefix(b"W/").unwrap_or(field);
                let [b'"', inner @ ..] = tag else {
                    return false;
                };
                let Some(close) = inner.iter().position(|&b| b == b'"') else {
                    return false;
                };
                let (opaque, rest) = tag.split_at(close + 2);
                if !is_end_of_element(rest) {
                    return false;
                }
                if opaque == etag {
                    return true;
                }
                field = rest;
            }
        }
    }
}

/// Whether `rest` ends a list element: nothing, or spaces and then a comma.
fn is_end_of_element(rest: &[u8]) -> bool {
    matches!(rest.trim_ascii_start(), [] | [b',', ..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &[u8] = b"\"0123abcd\"";

    fn matches(values: &[&str]) -> bool {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                header::IF_NONE_MATCH,
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        if_none_match_has(&headers, TAG)
    }

    #[test]
    fn if_none_match_uses_weak_comparison_over_lists_and_fields() {
        for yes in [
            &["\"0123abcd\""][..],
            &["W/\"0123abcd\""],
            &["*"],
            &[" * "],
            &["\"other\", \"0123abcd\""],
            &["\"other\",W/\"0123abcd\" , \"x\""],
            &[",,\"0123abcd\","],
            &["\"a,b\", \"0123abcd\""],
            &["\"other\"", "\"0123abcd\""],
        ] {
            assert!(matches(yes), "{yes:?}");
        }
        for no in [
            &[][..],
            &[""],
            &["\"other\""],
            &["0123abcd"],
            &["\"0123abcd"],
            &["\"0123ABCD\""],
            &["w/\"0123abcd\""],
            &["\"0123abcd\"x"],
            &["garbage, \"0123abcd\""],
            &["*x"],
            &["\"0123abc\""],
        ] {
            assert!(!matches(no), "{no:?}");
        }
    }
}
