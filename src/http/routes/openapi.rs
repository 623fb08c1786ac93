//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers' `#[utoipa::path]`
//! attributes and the types' `ToSchema` derives, and served at `GET /api/openapi.json`.
//!
//! Each handler declares its own answers; [`document`] then adds to every operation the
//! answers any route can give, from the layers around the handlers (400 `invalid_target`,
//! 405, 431, 500, 503 `timeout`/`overloaded` with `Retry-After`), unless the handler declared
//! that status itself. Adding a route to the document is one line in [`ApiDoc`]'s `paths`;
//! its path is the one of its [`Route`], so the document and the router agree.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi as OpenApiDocument, Ref, RefOr, ResponseBuilder,
};
use utoipa::{OpenApi, PartialSchema, ToSchema};

use super::Route;
use crate::http::error::ErrorBody;
use crate::http::{MAX_HEADER_BYTES, REQUEST_TIMEOUT};

/// The two ways of presenting the operator token ([`crate::http::operator`]): a bearer
/// token, or the page's cookie.
struct OperatorSecurity;

impl utoipa::Modify for OperatorSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "operator_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The service's OPERATOR_TOKEN"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "operator_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::http::operator::COOKIE,
            ))),
        );
    }
}

/// The document's paths and its metadata.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "order-service",
        description = "Orders consumed from Kafka, validated, kept in PostgreSQL and served from an in-memory cache."
    ),
    paths(
        super::order::get_order,
        super::lists::list_orders,
        super::lists::list_rejected,
        super::stream::order_stream,
        super::health::live,
        super::health::ready,
        super::metrics::metrics,
        openapi_json,
    ),
    components(schemas(
        crate::http::error::ErrorBody,
        crate::order::OrderSummary,
        crate::store::RejectedSummary,
    )),
    modifiers(&OperatorSecurity),
    tags(
        (name = "orders", description = "Orders by id"),
        (name = "health", description = "Liveness and readiness probes"),
        (name = "operations", description = "Metrics and this document"),
    )
)]
pub struct ApiDoc;

/// `GET /api/openapi.json`: [`openapi_json`].
pub const ROUTE: Route = Route {
    path: "/api/openapi.json",
    handlers: || get(openapi_json),
};

/// The OpenAPI document itself.
#[utoipa::path(
    get,
    path = ROUTE.path,
    tag = "operations",
    responses(
        (status = 200, description = "This document (OpenAPI 3.1)", body = Object, content_type = "application/json")
    )
)]
pub async fn openapi_json() -> Response {
    static JSON: OnceLock<Bytes> = OnceLock::new();
    let json = JSON.get_or_init(|| match document().to_json() {
        Ok(json) => Bytes::from(json),
        // A derived document always serializes; an empty object is still valid JSON.
        Err(error) => {
            tracing::error!(%error, "cannot serialize the OpenAPI document");
            Bytes::from_static(b"{}")
        }
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json.clone(),
    )
        .into_response()
}

// The shared answers state the limits in whole KiB and seconds.
const _: () = assert!(
    MAX_HEADER_BYTES.is_multiple_of(1024),
    "MAX_HEADER_BYTES: whole KiB"
);
const _: () = assert!(
    REQUEST_TIMEOUT.subsec_nanos() == 0,
    "REQUEST_TIMEOUT: whole s"
);

/// The answers every route can give, from the layers around the handlers: `(status, what)`.
/// The limits they name are the default [`Limits`](crate::http::Limits)' own.
fn shared_answers() -> [(&'static str, String); 5] {
    [
        (
            "400",
            "`invalid_target`: a control character in the path or query".to_owned(),
        ),
        (
            "405",
            "`method_not_allowed`: only GET and HEAD are served (header `Allow`)".to_owned(),
        ),
        (
            "431",
            format!(
                "`headers_too_large`: the request's headers exceed {} KiB",
                MAX_HEADER_BYTES / 1024
            ),
        ),
        (
            "500",
            "`internal`: an unexpected failure (logged)".to_owned(),
        ),
        (
            "503",
            format!(
                "`timeout` (over {} s) or `overloaded` (too many requests in flight); retry after `Retry-After` seconds",
                REQUEST_TIMEOUT.as_secs()
            ),
        ),
    ]
}

/// The document: [`ApiDoc`] with the shared answers added to every operation.
pub fn document() -> OpenApiDocument {
    let mut doc = ApiDoc::openapi();
    let shared = shared_answers();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            add_shared_answers(operation, &shared);
        }
    }
    doc
}

/// Adds each of the `shared` answers that `operation` does not declare itself.
fn add_shared_answers(operation: &mut Operation, shared: &[(&'static str, String)]) {
    let error_body = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ErrorBody::name())))
            .build()
    };
    for (status, description) in shared {
        if operation.responses.responses.contains_key(*status) {
            continue;
        }
        let mut answer = ResponseBuilder::new()
            .description(description)
            .content("application/json", error_body());
        match *status {
            "405" => {
                answer = answer.header(
                    "Allow",
                    HeaderBuilder::new()
                        .schema(String::schema())
                        .description(Some("The methods the route answers"))
                        .build(),
                );
            }
            "503" => {
                answer = answer.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(String::schema())
                        .description(Some("Seconds to wait before retrying"))
                        .build(),
                );
            }
            _ => {}
        }
        operation
            .responses
            .responses
            .insert((*status).to_owned(), RefOr::T(answer.build()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_every_route() {
        let json = serde_json::to_value(document()).expect("serializes");
        assert_eq!(json["openapi"], "3.1.0");
        for path in [
            "/api/order/{order_uid}",
            "/api/orders",
            "/api/orders/stream",
            "/api/rejected",
            "/health/live",
            "/health/ready",
            "/metrics",
            "/api/openapi.json",
        ] {
            assert!(json["paths"][path]["get"].is_object(), "{path} missing");
        }
    }

    #[test]
    fn every_operation_declares_the_shared_answers() {
        let json = serde_json::to_value(document()).expect("serializes");
        let paths = json["paths"].as_object().expect("paths");
        for (path, item) in paths {
            let responses = &item["get"]["responses"];
            for status in ["400", "405", "431", "500", "503"] {
                assert!(responses[status].is_object(), "{path} lacks {status}");
            }
        }
        let order = &json["paths"]["/api/order/{order_uid}"]["get"]["responses"];
        assert!(
            order["503"]["headers"]["Retry-After"].is_object(),
            "{order}"
        );
        assert!(
            order["429"]["headers"]["Retry-After"].is_object(),
            "{order}"
        );
        assert!(
            order["404"].is_object() && order["304"].is_object(),
            "{order}"
        );
    }
}
