//! `GET /api/orders` and `GET /api/rejected`: `limit` checking (default, bounds, junk), the
//! JSON shape, and 503 when the database is down.

use axum::http::StatusCode;

use super::support::*;
use crate::http::routes::lists::DEFAULT_LIMIT;

#[tokio::test]
async fn lists_take_the_default_limit_and_answer_json_arrays() {
    let f = test_app(Mode::Up);
    let (status, orders) = get_json(&f.app, "/api/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(orders[0]["order_uid"], "known-1");
    assert_eq!(orders[0]["delivery_name"], "<b>Name</b>");
    assert_eq!(orders[0]["amount"], 1817);
    let (status, rejected) = get_json(&f.app, "/api/rejected").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rejected[0]["reason_code"], "malformed_json");
    assert_eq!(rejected[0]["partition"], 2);
    assert_eq!(rejected[0]["offset"], 41);
    assert_eq!(rejected[0]["payload_preview"], "{{{");
    assert_eq!(f.store.asked(), vec![DEFAULT_LIMIT, DEFAULT_LIMIT]);
}

#[tokio::test]
async fn lists_take_a_limit_within_bounds() {
    let f = test_app(Mode::Up);
    for uri in ["/api/orders?limit=1", "/api/rejected?limit=100&other=x"] {
        assert_eq!(get_json(&f.app, uri).await.0, StatusCode::OK, "{uri}");
    }
    assert_eq!(f.store.asked(), vec![1, 100]);
}

#[tokio::test]
async fn a_bad_limit_is_400_invalid_limit_without_a_query() {
    let f = test_app(Mode::Up);
    for list in ["/api/orders", "/api/rejected"] {
        for limit in ["0", "101", "-1", "abc", "1.5", "", "99999999999999999999"] {
            let uri = format!("{list}?limit={limit}");
            let (status, body) = get_json(&f.app, &uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(body["error"], "invalid_limit", "{uri}");
            assert!(
                body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("1 to 100"))
            );
        }
    }
    assert!(f.store.asked().is_empty(), "no query for a bad limit");
}

#[tokio::test]
async fn lists_are_503_when_the_database_is_down() {
    let f = test_app(Mode::Down);
    for uri in ["/api/orders", "/api/rejected"] {
        let (status, body) = get_json(&f.app, uri).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(body["error"], "unavailable", "{uri}");
    }
}
