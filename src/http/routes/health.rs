//! `GET /health/live` (the process runs and answers) and `GET /health/ready` (PostgreSQL
//! answers `SELECT 1` within [`PING_TIMEOUT`], and the consumer runs, reaches a broker and
//! has a non-empty assignment). Both answer in milliseconds: readiness makes one short query
//! and reads the consumer's status (atomics, and a lock only while no broker answers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use super::Route;
use crate::http::SharedState;
use crate::http::error::ErrorBody;
use crate::ingest::ConsumerStatus;
use crate::store::DatabasePing;

/// How long an instance stays ready while a rebalance has taken its partitions away: every
/// member of the group gives up its partitions at the start of a rebalance, and readiness must
/// not take every instance out of a load balancer at once for that.
pub const REBALANCE_GRACE: Duration = Duration::from_secs(30);

/// How long the readiness check waits for `SELECT 1`.
pub const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// What readiness depends on.
#[derive(Clone)]
pub struct Readiness {
    /// The database, pinged on each check.
    pub database: Arc<dyn DatabasePing>,
    /// The ingest consumer's state (running, assignment), kept by ingest and Kafka callbacks.
    pub consumer: Arc<ConsumerStatus>,
}

/// Whether the service is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    /// Every check passed.
    Ready,
    /// At least one check failed.
    NotReady,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// The check passed.
    Ok,
    /// The check failed; `detail` says why.
    Failing,
}

/// One readiness check.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// Passed or not.
    pub status: CheckStatus,
    /// What was found, for a person.
    pub detail: String,
}

impl Check {
    /// A check that passed or failed, with `detail`.
    fn new(ok: bool, detail: String) -> Self {
        let status = if ok {
            CheckStatus::Ok
        } else {
            CheckStatus::Failing
        };
        Self { status, detail }
    }
}

/// The checks readiness is made of.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    /// PostgreSQL answers `SELECT 1`.
    pub database: Check,
    /// The consumer runs and has partitions assigned.
    pub consumer: Check,
}

/// The body of `GET /health/ready`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadyBody {
    /// `ready` (200) or `not_ready` (503).
    pub status: ReadyStatus,
    /// Each check's outcome.
    pub checks: Checks,
}

/// A 503 of `GET /health/ready`: a failed check, or the service's own refusal (timeout,
/// overload), which has the usual error body.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum NotReadyBody {
    /// A check failed.
    NotReady(ReadyBody),
    /// The request was refused before the checks ran.
    Refused(ErrorBody),
}

/// `GET /health/live`: [`live`].
pub const LIVE: Route = Route {
    path: "/health/live",
    handlers: || get(live),
};

/// Liveness: the process runs and its HTTP server answers.
#[utoipa::path(
    get,
    path = LIVE.path,
    tag = "health",
    responses(
        (status = 200, description = "The process runs", body = String, content_type = "text/plain", example = "ok")
    )
)]
pub async fn live() -> &'static str {
    "ok"
}

/// `GET /health/ready`: [`ready`].
pub const READY: Route = Route {
    path: "/health/ready",
    handlers: || get(ready),
};

/// Readiness: PostgreSQL answers and the consumer runs with an assignment.
#[utoipa::path(
    get,
    path = READY.path,
    tag = "health",
    responses(
        (status = 200, description = "Ready to serve and ingest", body = ReadyBody),
        (status = 503, description = "Not ready: the failing check is named", body = NotReadyBody)
    )
)]
pub async fn ready(State(state): State<SharedState>) -> Response {
    let body = check(&state.readiness).await;
    let status = match body.status {
        ReadyStatus::Ready => StatusCode::OK,
        ReadyStatus::NotReady => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Runs the checks.
pub async fn check(readiness: &Readiness) -> ReadyBody {
    let started = Instant::now();
    let database = match readiness.database.ping(PING_TIMEOUT).await {
        Ok(()) => Check::new(
            true,
            format!(
                "SELECT 1 answered in {:.1} ms",
                started.elapsed().as_secs_f64() * 1e3
            ),
        ),
        Err(error) => {
            tracing::debug!(%error, "readiness: database check failed");
            Check::new(false, "database unreachable".to_owned())
        }
    };
    let consumer = &readiness.consumer;
    let assigned = consumer.assigned_partitions();
    let consumer = if !consumer.is_running() {
        Check::new(false, "consumer not running".to_owned())
    } else if let Some(lost) = consumer.brokers_unreachable_for() {
        Check::new(
            false,
            format!(
                "no Kafka broker answers (for {:.0} s)",
                lost.as_secs_f64().floor()
            ),
        )
    } else if assigned == 0 && consumer.held_partitions_within(REBALANCE_GRACE) {
        Check::new(
            true,
            "rebalancing: partitions revoked, waiting for the new assignment".to_owned(),
        )
    } else if assigned == 0 {
        Check::new(false, "no partitions assigned".to_owned())
    } else {
        Check::new(true, format!("{assigned} partitions assigned"))
    };
    let all_ok = database.status == CheckStatus::Ok && consumer.status == CheckStatus::Ok;
    ReadyBody {
        status: if all_ok {
            ReadyStatus::Ready
        } else {
            ReadyStatus::NotReady
        },
        checks: Checks { database, consumer },
    }
}
