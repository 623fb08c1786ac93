//! Prometheus metrics: installing the process-wide recorder (once, without a listener of its
//! own: `GET /metrics` on the service's router renders it), describing every metric with its
//! unit and help, the histogram buckets, and the periodic upkeep the exporter needs.
//!
//! Metrics are recorded with the `metrics` crate's macros where they happen (ingest, store,
//! HTTP, Kafka statistics); the names are listed in [`names`].

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// The name of every metric the service exports.
pub mod names {
    /// Counter: messages fetched from Kafka.
    pub const ORDERS_CONSUMED: &str = "orders_consumed_total";
    /// Counter: new orders committed to PostgreSQL.
    pub const ORDERS_STORED: &str = "orders_stored_total";
    /// Counter: redeliveries of an order already stored with the same content.
    pub const ORDERS_DUPLICATES: &str = "orders_duplicates_total";
    /// Counter, label `reason` (the rejection's reason code): messages rejected.
    pub const ORDERS_REJECTED: &str = "orders_rejected_total";
    /// Counter, label `reason`: rejections PostgreSQL refused to record too (SQLSTATE class 22
    /// or 23 on the `rejected` insert), so only the log and the dead-letter topic have them.
    pub const REJECTIONS_UNRECORDED: &str = "rejections_unrecorded_total";
    /// Counter: batches written (one transaction each, more when PostgreSQL refuses part of
    /// one and it is split).
    pub const INGEST_BATCHES: &str = "ingest_batches_total";
    /// Histogram: messages per batch.
    pub const INGEST_BATCH_SIZE: &str = "ingest_batch_size";
    /// Gauge, labels `topic` and `partition`: messages between the committed offset and the
    /// end of the partition.
    pub const KAFKA_CONSUMER_LAG: &str = "kafka_consumer_lag";
    /// Counter: ingest consumers replaced after librdkafka reported a fatal error.
    pub const KAFKA_CONSUMER_RESTARTS: &str = "kafka_consumer_restarts_total";
    /// Gauge: 1 while the ingest consumer reaches a Kafka broker, 0 while none answers.
    pub const KAFKA_BROKERS_REACHABLE: &str = "kafka_brokers_reachable";
    /// Histogram, label `query`: time a database call took.
    pub const DB_QUERY_DURATION: &str = "db_query_duration_seconds";
    /// Counter: `GET /api/order` answered from the cache.
    pub const CACHE_HITS: &str = "cache_hits_total";
    /// Counter: `GET /api/order` that had to ask PostgreSQL.
    pub const CACHE_MISSES: &str = "cache_misses_total";
    /// Gauge: orders in the cache.
    pub const CACHE_ENTRIES: &str = "cache_entries";
    /// Gauge: bytes the cached orders weigh.
    pub const CACHE_BYTES: &str = "cache_bytes";
    /// Counter, labels `route`, `method`, `status`: HTTP requests answered.
    pub const HTTP_REQUESTS: &str = "http_requests_total";
    /// Counter: `GET /api/order` answered 429 `too_many_lookups`, the client having spent its
    /// budget of failed lookups.
    pub const HTTP_LOOKUPS_LIMITED: &str = "http_lookups_limited_total";
    /// Histogram, labels `route`, `method`, `status`: time to answer an HTTP request.
    pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";
    /// Counter: access-log lines dropped because their writer was too far behind (see
    /// `crate::infra::telemetry`).
    pub const ACCESS_LOG_DROPPED: &str = "access_log_lines_dropped_total";
}

/// Bucket bounds of the latency histograms, in seconds: 50 µs (a cache hit) to 10 s (the
/// request timeout).
const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Bucket bounds of the batch-size histogram, in messages (the batch size is at most 100,000).
const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 100000.0,
];

/// How often histograms are drained and idle data is pruned when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The handle of the installed recorder.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the process's global recorder, the first time only, and
/// returns a handle that renders the metrics. Idempotent: every later call (another service in
/// the same test process) gets the same handle.
///
/// If another recorder is installed already, the metrics recorded through the macros go there;
/// the handle then renders only what this module sets up, and a warning says so.
pub fn install() -> PrometheusHandle {
    HANDLE.get_or_init(build_and_install).clone()
}

/// Builds the recorder with the service's buckets, installs it and describes the metrics.
fn build_and_install() -> PrometheusHandle {
    let builder = with_buckets().unwrap_or_else(|error| {
        tracing::warn!(%error, "histogram buckets refused; histograms become summaries");
        PrometheusBuilder::new()
    });
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    if let Err(error) = metrics::set_global_recorder(recorder) {
        tracing::warn!(%error, "another metrics recorder is installed; /metrics will be empty");
    }
    describe();
    handle
}

/// The builder with the service's histogram buckets (it fails only on an empty list).
fn with_buckets() -> Result<PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(names::HTTP_REQUEST_DURATION.to_owned()),
            LATENCY_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(names::DB_QUERY_DURATION.to_owned()),
            LATENCY_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(names::INGEST_BATCH_SIZE.to_owned()),
            BATCH_SIZE_BUCKETS,
        )
}

/// Gives every metric its unit and help text (the `# HELP` lines of `/metrics`).
fn describe() {
    use names::*;
    describe_counter!(
        ORDERS_CONSUMED,
        Unit::Count,
        "Messages fetched from the orders topic."
    );
    describe_counter!(
        ORDERS_STORED,
        Unit::Count,
        "New orders committed to PostgreSQL."
    );
    describe_counter!(
        ORDERS_DUPLICATES,
        Unit::Count,
        "Redeliveries of an order already stored with the same content."
    );
    describe_counter!(
        ORDERS_REJECTED,
        Unit::Count,
        "Messages rejected, by the rule they broke (reason)."
    );
    describe_counter!(
        REJECTIONS_UNRECORDED,
        Unit::Count,
        "Rejections PostgreSQL refused to record too: only in the log and on the dead-letter topic."
    );
    describe_counter!(
        INGEST_BATCHES,
        Unit::Count,
        "Batches written to PostgreSQL: one transaction each, more when one is split around a refused message."
    );
    describe_histogram!(
        INGEST_BATCH_SIZE,
        Unit::Count,
        "Messages per batch written to PostgreSQL."
    );
    describe_gauge!(
        KAFKA_CONSUMER_LAG,
        Unit::Count,
        "Messages between the committed offset and the end of each assigned partition."
    );
    describe_counter!(
        KAFKA_CONSUMER_RESTARTS,
        Unit::Count,
        "Ingest consumers replaced by a new one after a fatal error (a fenced member, say)."
    );
    describe_gauge!(
        KAFKA_BROKERS_REACHABLE,
        Unit::Count,
        "1 while the ingest consumer reaches a Kafka broker, 0 while none answers."
    );
    describe_histogram!(
        DB_QUERY_DURATION,
        Unit::Seconds,
        "Time a PostgreSQL call took, by query."
    );
    describe_counter!(
        CACHE_HITS,
        Unit::Count,
        "Order reads answered from the in-memory cache."
    );
    describe_counter!(
        CACHE_MISSES,
        Unit::Count,
        "Order reads that missed the cache and asked PostgreSQL."
    );
    describe_gauge!(CACHE_ENTRIES, Unit::Count, "Orders in the in-memory cache.");
    describe_gauge!(
        CACHE_BYTES,
        Unit::Bytes,
        "Bytes the cached orders weigh (keys, JSON and per-entry overhead)."
    );
    describe_counter!(
        HTTP_REQUESTS,
        Unit::Count,
        "HTTP requests answered, by route, method and status."
    );
    describe_counter!(
        HTTP_LOOKUPS_LIMITED,
        Unit::Count,
        "Order lookups answered 429: the client had spent its budget of failed lookups."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by route, method and status."
    );
    describe_counter!(
        ACCESS_LOG_DROPPED,
        Unit::Count,
        "Access-log lines dropped because their writer was too far behind standard error."
    );
}

/// Drains histograms every few seconds until `shutdown`, so that memory stays flat between
/// scrapes (the exporter keeps raw samples until then).
pub async fn run_upkeep(handle: PrometheusHandle, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => handle.run_upkeep(),
        }
    }
}

/// Records how long the database call `query` took, from `started` until now.
pub fn record_db_query(query: &'static str, started: Instant) {
    metrics::histogram!(names::DB_QUERY_DURATION, "query" => query)
        .record(started.elapsed().as_secs_f64());
}

/// Times a database call: records `db_query_duration_seconds{query}` when dropped, so that a
/// call that fails or returns early is timed too.
#[derive(Debug)]
pub struct QueryTimer {
    /// The `query` label.
    query: &'static str,
    /// When the call started.
    started: Instant,
}

impl QueryTimer {
    /// Starts timing the call labelled `query`.
    pub fn start(query: &'static str) -> Self {
        Self {
            query,
            started: Instant::now(),
        }
    }
}

impl Drop for QueryTimer {
    fn drop(&mut self) {
        record_db_query(self.query, self.started);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installing_twice_gives_one_recorder() {
        let first = install();
        let second = install();
        metrics::counter!("metrics_module_test_total").increment(2);
        let rendered = first.render();
        assert!(
            rendered.contains("metrics_module_test_total 2"),
            "{rendered}"
        );
        assert_eq!(rendered, second.render());
    }

    #[test]
    fn latency_histograms_have_buckets() {
        let handle = install();
        record_db_query("unit_test", Instant::now());
        let rendered = handle.render();
        assert!(
            rendered
                .contains("db_query_duration_seconds_bucket{query=\"unit_test\",le=\"0.00005\"}"),
            "{rendered}"
        );
        assert!(
            rendered.contains("# HELP db_query_duration_seconds"),
            "{rendered}"
        );
    }
}
