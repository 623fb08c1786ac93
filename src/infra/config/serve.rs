//! The settings of `serve`: where it reads and keeps orders, how it caches and batches them,
//! where it listens.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::http::lookup_limit::{FAILURES_BURST, FAILURES_PER_MINUTE, LookupLimitSettings};

use super::parse::{parse_bytes, parse_duration, parse_non_empty, parse_session_timeout};
use super::secret::{Secret, parse_secret};
use super::{DatabaseArgs, KafkaArgs};

/// Settings of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Database settings.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Kafka settings.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Consumer group of the ingest.
    #[arg(
        long,
        env = "KAFKA_GROUP_ID",
        value_name = "KAFKA_GROUP_ID",
        default_value = "order-service",
        value_parser = parse_non_empty
    )]
    pub kafka_group_id: String,
    /// Static group membership: an instance restarted with the same id takes its partitions
    /// back without waiting for its old session to expire (empty: dynamic membership).
    #[arg(
        long,
        env = "KAFKA_GROUP_INSTANCE_ID",
        value_name = "KAFKA_GROUP_INSTANCE_ID",
        default_value = ""
    )]
    pub kafka_group_instance_id: String,
    /// The consumer group protocol: `classic` (the default) or `consumer` (KIP-848, Apache
    /// Kafka 4.0 or newer). With `consumer` the broker assigns the partitions and owns the
    /// session timeout (`group.consumer.session.timeout.ms`, 45 s by default), so
    /// `KAFKA_SESSION_TIMEOUT` is not used.
    #[arg(
        long,
        env = "KAFKA_GROUP_PROTOCOL",
        value_name = "KAFKA_GROUP_PROTOCOL",
        value_enum,
        default_value_t = GroupProtocol::Classic
    )]
    pub kafka_group_protocol: GroupProtocol,
    /// How long the group waits for a silent member before it gives its partitions to the
    /// others (`session.timeout.ms`; the broker accepts 6 s to 30 min by default). A member
    /// that restarts with dynamic membership waits this long for its old session to expire.
    /// Classic protocol only.
    #[arg(
        long,
        env = "KAFKA_SESSION_TIMEOUT",
        value_name = "KAFKA_SESSION_TIMEOUT",
        default_value = "10s",
        value_parser = parse_session_timeout
    )]
    pub kafka_session_timeout: Duration,
    /// Address the HTTP server listens on.
    #[arg(
        long,
        env = "HTTP_ADDR",
        value_name = "HTTP_ADDR",
        default_value = "0.0.0.0:8081"
    )]
    pub http_addr: SocketAddr,
    /// How long a cached order lives (e.g. `10m`, `90s`).
    #[arg(
        long,
        env = "CACHE_TTL",
        value_name = "CACHE_TTL",
        default_value = "10m",
        value_parser = parse_duration
    )]
    pub cache_ttl: Duration,
    /// Bound on the cache's size (e.g. `256MiB`); `0` turns the cache off.
    #[arg(
        long,
        env = "CACHE_MAX_BYTES",
        value_name = "CACHE_MAX_BYTES",
        default_value = "256MiB",
        value_parser = parse_bytes
    )]
    pub cache_max_bytes: u64,
    /// How many of the most recent orders are loaded into the cache at start-up.
    #[arg(
        long,
        env = "CACHE_WARM_LIMIT",
        value_name = "CACHE_WARM_LIMIT",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(i64).range(0..)
    )]
    pub cache_warm_limit: i64,
    /// Topic every rejection is also published to (empty: none). The `rejected` table stays
    /// the record of truth.
    #[arg(
        long,
        env = "KAFKA_DLQ_TOPIC",
        value_name = "KAFKA_DLQ_TOPIC",
        default_value = "orders.dlq"
    )]
    pub kafka_dlq_topic: String,
    /// The most messages ingest writes in one transaction.
    #[arg(
        long,
        env = "INGEST_BATCH_SIZE",
        value_name = "INGEST_BATCH_SIZE",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    pub ingest_batch_size: u32,
    /// How long a batch waits for more messages once it has one (e.g. `5ms`).
    #[arg(
        long,
        env = "INGEST_BATCH_LINGER",
        value_name = "INGEST_BATCH_LINGER",
        default_value = "5ms",
        value_parser = parse_duration
    )]
    pub ingest_batch_linger: Duration,
    /// Batches written at once, each by its own writer over its own connection; a partition
    /// is always written by the same writer (partition number modulo writers), so each
    /// partition's orders are stored and committed in order. The default is one writer per
    /// partition of the default topic (KAFKA_TOPIC_PARTITIONS=3).
    #[arg(
        long,
        env = "INGEST_WRITERS",
        value_name = "INGEST_WRITERS",
        default_value_t = 3,
        value_parser = clap::value_parser!(u16).range(1..=8)
    )]
    pub ingest_writers: u16,
    /// Failed order lookups (404) a client may make per minute once its burst is spent; past
    /// them its lookups are answered 429 until its budget refills. `0` turns the limit off.
    #[arg(
        long,
        env = "LOOKUP_FAILURES_PER_MINUTE",
        value_name = "LOOKUP_FAILURES_PER_MINUTE",
        default_value_t = FAILURES_PER_MINUTE
    )]
    pub lookup_failures_per_minute: u32,
    /// Failed order lookups a client may make in a row before the per-minute rate applies.
    #[arg(
        long,
        env = "LOOKUP_FAILURES_BURST",
        value_name = "LOOKUP_FAILURES_BURST",
        default_value_t = FAILURES_BURST,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub lookup_failures_burst: u32,
    /// Whether loopback clients (127.0.0.0/8, ::1) are exempt from the lookup limit, so that
    /// local benchmarks measure the service (`true` or `false`).
    #[arg(
        long,
        env = "LOOKUP_LIMIT_EXEMPT_LOOPBACK",
        value_name = "LOOKUP_LIMIT_EXEMPT_LOOPBACK",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub lookup_limit_exempt_loopback: bool,
    /// The operator token: what `/api/orders`, `/api/orders/stream` and `/api/rejected`
    /// (orders' personal data) require, as `Authorization: Bearer <token>` or the page's
    /// sign-in. At least 16 characters of A-Z a-z 0-9 - . _ ~ + / = (e.g. `openssl rand -hex
    /// 32`). Unset: those endpoints answer 401 to everyone.
    #[arg(
        long,
        env = "OPERATOR_TOKEN",
        value_name = "OPERATOR_TOKEN",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    pub operator_token: Option<Secret>,
    /// Whether `GET /api/order/{id}` requires the operator token too (`true` or `false`). Off
    /// by default: the original service serves an order to whoever knows its id.
    #[arg(
        long,
        env = "ORDER_LOOKUP_REQUIRES_TOKEN",
        value_name = "ORDER_LOOKUP_REQUIRES_TOKEN",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub order_lookup_requires_token: bool,
    /// Do not apply pending migrations at start-up.
    #[arg(long)]
    pub no_migrate: bool,
}

/// How the ingest's consumer takes part in its group (librdkafka's `group.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupProtocol {
    /// The protocol of every Kafka version: the members agree on the assignment among
    /// themselves, each rebalance revokes every partition, the client sets the session timeout.
    Classic,
    /// KIP-848: the broker's coordinator assigns partitions incrementally (a rebalance moves
    /// only the partitions that change owner) and owns the session timeout.
    Consumer,
}

impl GroupProtocol {
    /// The value of librdkafka's `group.protocol`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Consumer => "consumer",
        }
    }
}

impl ServeArgs {
    /// The limit on failed order lookups per client.
    pub fn lookup_limit(&self) -> LookupLimitSettings {
        LookupLimitSettings {
            failures_per_minute: self.lookup_failures_per_minute,
            burst: self.lookup_failures_burst,
            exempt_loopback: self.lookup_limit_exempt_loopback,
        }
    }

    /// The dead-letter topic, unless turned off.
    pub fn dlq_topic(&self) -> Option<&str> {
        Some(self.kafka_dlq_topic.trim()).filter(|topic| !topic.is_empty())
    }
}
