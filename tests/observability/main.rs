//! Metrics (and the dashboard that queries them), health, request ids and traces of the real
//! service (real PostgreSQL and broker, built by `startup` through the shared test support, or
//! the real binary for traces, whose exporter is installed by `main`). A binary of its own
//! because the metrics recorder is global to a process: no other test's orders move these
//! counters.

#[path = "../common/mod.rs"]
mod common;

mod access_log;
mod dashboard;
mod health;
mod metrics;
mod otlp;
mod promql;
mod request_id;
mod traced;
mod traces;

/// Held by each test that compares counters: one such test at a time in this process.
pub static COUNTERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
