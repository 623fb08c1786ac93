//! The one harness of the HTTP unit tests: [`TestApp`], the service ([`Front`]: the router
//! behind the short way of order lookups, as a connection gets it) over a
//! [`FakeStore`] (re-exported from [`super::fake_store`] with its [`Mode`]), and the helpers
//! that send requests and check answers.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::cache::OrderCache;
use crate::events::OrderEvents;
use crate::http::front::Front;
use crate::http::lookup_limit::{LookupLimit, LookupLimitSettings};
use crate::http::operator::OperatorAccess;
use crate::http::routes::health::Readiness;
use crate::http::{AppState, Limits, app, app_with};
use crate::infra::config::Secret;
use crate::ingest::ConsumerStatus;

pub use super::fake_store::{FakeStore, Mode, ORDER, summary};

/// The service's router over a [`FakeStore`], and the parts of its state a test acts on.
pub struct TestApp {
    /// The service.
    pub app: Front,
    /// The fake store behind every read.
    pub store: Arc<FakeStore>,
    /// The order cache.
    pub cache: OrderCache,
    /// The hub of new orders the event stream listens to.
    pub events: OrderEvents,
    /// Cancelling it ends the event streams.
    pub shutdown: CancellationToken,
}

/// The router over a [`FakeStore`] in `mode`, with an empty cache, a consumer that is not
/// running, and the default limits.
pub fn test_app(mode: Mode) -> TestApp {
    TestApp::builder(mode).build()
}

impl TestApp {
    /// A [`TestApp`] to be set up beyond [`test_app`]'s defaults.
    pub fn builder(mode: Mode) -> TestAppBuilder {
        TestAppBuilder {
            mode,
            limits: None,
            cache: OrderCache::new(Duration::from_secs(60), 1 << 20),
            consumer: Arc::default(),
            lookup_limit: LookupLimitSettings::default(),
            operator: operator_access(false),
        }
    }
}

/// How a [`TestApp`] is set up.
pub struct TestAppBuilder {
    /// How the fake store answers.
    mode: Mode,
    /// The limits, if not [`router`]'s.
    limits: Option<Limits>,
    /// The order cache.
    cache: OrderCache,
    /// The consumer status readiness reads.
    consumer: Arc<ConsumerStatus>,
    /// The limit on failed lookups.
    lookup_limit: LookupLimitSettings,
    /// Who may call the operator endpoints.
    operator: OperatorAccess,
}

/// The operator token of every [`TestApp`]; [`request`] presents it.
pub const OPERATOR_TOKEN: &str = "unit-test-operator-token";

/// Access with [`OPERATOR_TOKEN`]; lookups by id need it too if `lookups`.
pub fn operator_access(lookups: bool) -> OperatorAccess {
    OperatorAccess::new(Some(&Secret::new(OPERATOR_TOKEN)), lookups).expect("a valid token")
}

impl TestAppBuilder {
    /// The service with these limits ([`app_with`]) instead of the default ones ([`app`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// This order cache instead of an empty one of 1 MiB.
    pub fn cache(mut self, cache: OrderCache) -> Self {
        self.cache = cache;
        self
    }

    /// This consumer status instead of one that is not running.
    pub fn consumer(mut self, consumer: Arc<ConsumerStatus>) -> Self {
        self.consumer = consumer;
        self
    }

    /// This limit on failed lookups instead of the default one.
    pub fn lookup_limit(mut self, settings: LookupLimitSettings) -> Self {
        self.lookup_limit = settings;
        self
    }

    /// This operator access instead of [`operator_access`]`(false)`.
    pub fn operator(mut self, access: OperatorAccess) -> Self {
        self.operator = access;
        self
    }

    /// The router and its parts.
    pub fn build(self) -> TestApp {
        let store = Arc::new(FakeStore::new(self.mode));
        let events = OrderEvents::new();
        let shutdown = CancellationToken::new();
        let state = AppState {
            cache: self.cache.clone(),
            orders: store.clone(),
            readiness: Readiness {
                database: store.clone(),
                consumer: self.consumer,
            },
            lists: store.clone(),
            events: events.clone(),
            lookup_limit: LookupLimit::new(self.lookup_limit),
            operator: self.operator,
            shutdown: shutdown.clone(),
        };
        let app = match self.limits {
            Some(limits) => app_with(state, limits),
            None => app(state),
        };
        TestApp {
            app,
            store,
            cache: self.cache,
            events,
            shutdown,
        }
    }
}

/// Sends `request` and reads the whole answer: the response (with an empty body) and its body.
pub async fn send(app: &Front, request: Request<Body>) -> (Response<Body>, Bytes) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("body");
    (Response::from_parts(parts, Body::empty()), bytes)
}

/// Sends `GET uri`.
pub async fn get(app: &Front, uri: &str) -> (Response<Body>, Bytes) {
    send(app, request(Method::GET, uri)).await
}

/// Sends `GET uri` and parses the body as JSON: the status and the JSON.
pub async fn get_json(app: &Front, uri: &str) -> (StatusCode, serde_json::Value) {
    let (response, body) = get(app, uri).await;
    let json = serde_json::from_slice(&body).expect("a JSON body");
    (response.status(), json)
}

/// A request of the operator: no body, and no header but the operator token
/// ([`OPERATOR_TOKEN`]).
pub fn request(method: Method, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {OPERATOR_TOKEN}"))
        .body(Body::empty())
        .expect("request")
}

/// A request without any header or body: a stranger's.
pub fn anonymous(method: Method, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("request")
}

/// The value of the header `name` of `response`, if it has one in ASCII.
pub fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The `error` code of a JSON error body.
pub fn error_code(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).expect("a JSON error body");
    value["error"].as_str().expect("an error code").to_owned()
}

/// Asserts that `response` carries every security header.
#[track_caller]
pub fn assert_security_headers(response: &Response<Body>, what: &str) {
    assert!(
        header(response, "content-security-policy").is_some_and(|v| v
            .contains("default-src 'self'")
            && v.contains("frame-ancestors 'none'")),
        "{what}: content-security-policy"
    );
    assert_eq!(
        header(response, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        header(response, "referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(header(response, "x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        header(response, "cross-origin-resource-policy"),
        Some("same-origin"),
        "{what}"
    );
}

/// Asserts an error answer: its status, its JSON code and the security headers.
#[track_caller]
pub fn assert_error(
    response: &Response<Body>,
    body: &[u8],
    status: StatusCode,
    code: &str,
    what: &str,
) {
    assert_eq!(response.status(), status, "{what}");
    assert_eq!(
        header(response, "content-type"),
        Some("application/json"),
        "{what}"
    );
    assert_eq!(error_code(body), code, "{what}");
    assert_security_headers(response, what);
}

/// Sends `n` concurrent `GET uri` to a [`TestApp`] in [`Mode::Gated`]: once one lookup has
/// started (and waits at the gate), gives the others time to queue behind it, notes how many
/// lookups have started by then, and opens the gate (with enough permits for every request,
/// so that a second read would show, not hang). Returns that count and every answer.
pub async fn concurrent_gets(
    t: &TestApp,
    uri: &'static str,
    n: usize,
) -> (usize, Vec<(Response<Body>, Bytes)>) {
    let requests: Vec<_> = (0..n)
        .map(|_| {
            let app = t.app.clone();
            tokio::spawn(async move { get(&app, uri).await })
        })
        .collect();
    t.store
        .entered
        .acquire()
        .await
        .expect("a lookup starts")
        .forget();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lookups_at_the_gate = t.store.lookups();
    t.store.gate.add_permits(64);
    let mut answers = Vec::with_capacity(n);
    for request in requests {
        answers.push(request.await.expect("no panic"));
    }
    (lookups_at_the_gate, answers)
}
