//! The web page at `/` and its assets, embedded in the binary from `static/`.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::Route;

/// `GET /`: [`index`].
pub const INDEX: Route = Route {
    path: "/",
    handlers: || get(index),
};

/// `GET /`: the page.
pub async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("../../../static/index.html"),
    )
}

/// `GET /assets/app.js`: [`script`].
pub const SCRIPT: Route = Route {
    path: "/assets/app.js",
    handlers: || get(script),
};

/// `GET /assets/app.js`: the page's script.
pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../../static/app.js"),
    )
}

/// `GET /assets/style.css`: [`style`].
pub const STYLE: Route = Route {
    path: "/assets/style.css",
    handlers: || get(style),
};

/// `GET /assets/style.css`: the page's style sheet.
pub async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../../static/style.css"),
    )
}
