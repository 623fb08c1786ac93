//! Command line and configuration: every setting is a flag with an environment variable
//! (a `.env` file is loaded first). A bad value stops start-up with clap's message, which names
//! the variable (`--cache-ttl <CACHE_TTL>`).

use std::net::SocketAddr;
use std::time::Duration;

use bytesize::ByteSize;
use clap::{Args, Parser, Subcommand};

use crate::telemetry::LogFormat;

/// order-service: orders from Kafka, validated, kept in PostgreSQL, served from memory.
#[derive(Debug, Parser)]
#[command(version, about, propagate_version = true)]
pub struct Cli {
    /// Log filter, in tracing's EnvFilter syntax.
    #[arg(
        long,
        env = "RUST_LOG",
        default_value = "info,sqlx::postgres::notice=warn",
        global = true
    )]
    pub log: String,
    /// Log line format: `text` (human-readable) or `json` (one object per line).
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_name = "LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume orders from Kafka and serve them over HTTP (one process).
    Serve(ServeArgs),
    /// Create the database if it is missing and apply the embedded migrations.
    Migrate(DatabaseArgs),
    /// Send fake orders (or a file's lines) to Kafka and print each valid order's order_uid.
    Send(SendArgs),
    /// Re-check recorded rejections against the current contract and store those that pass.
    ReplayRejected(ReplayArgs),
    /// Print fake, valid orders as JSON lines (the documents `send` would produce).
    Generate(GenerateArgs),
}

/// Where PostgreSQL is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        default_value = "postgres://postgres:postgres@localhost:5432/orders",
        value_parser = parse_database_url
    )]
    pub database_url: String,
}

/// Where Kafka is.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(
        long,
        env = "KAFKA_BROKERS",
        value_name = "KAFKA_BROKERS",
        default_value = "localhost:9092",
        value_parser = parse_non_empty
    )]
    pub kafka_brokers: String,
    /// The topic orders are produced to.
    #[arg(
        long,
        env = "KAFKA_TOPIC",
        value_name = "KAFKA_TOPIC",
        default_value = "orders",
        value_parser = parse_non_empty
    )]
    pub kafka_topic: String,
    /// Partitions of the topic when it has to be created.
    #[arg(
        long,
        env = "KAFKA_TOPIC_PARTITIONS",
        value_name = "KAFKA_TOPIC_PARTITIONS",
        default_value_t = 3,
        value_parser = clap::value_parser!(i32).range(1..=1024)
    )]
    pub kafka_topic_partitions: i32,
    /// Replicas of each partition of the topics the service creates (orders and the
    /// dead-letter topic); unset: the broker's `default.replication.factor`.
    #[arg(
        long,
        env = "KAFKA_TOPIC_REPLICATION_FACTOR",
        value_name = "KAFKA_TOPIC_REPLICATION_FACTOR",
        value_parser = clap::value_parser!(i32).range(1..=16)
    )]
    pub kafka_topic_replication_factor: Option<i32>,
}

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
    /// How long the group waits for a silent member before it gives its partitions to the
    /// others (`session.timeout.ms`; the broker accepts 6 s to 30 min by default). A member
    /// that restarts with dynamic membership waits this long for its old session to expire.
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
    /// Do not apply pending migrations at start-up.
    #[arg(long)]
    pub no_migrate: bool,
}

impl ServeArgs {
    /// The dead-letter topic, unless turned off.
    pub fn dlq_topic(&self) -> Option<&str> {
        Some(self.kafka_dlq_topic.trim()).filter(|topic| !topic.is_empty())
    }
}

/// Settings of `generate`.
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// How many orders to print.
    #[arg(short = 'n', long = "count", default_value_t = 10)]
    pub count: u64,
    /// Seed for the fake data: the same seed gives the same orders as `send --seed`.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Settings of `replay-rejected`.
#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["id", "all"]))]
pub struct ReplayArgs {
    /// Database settings.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Replay the rejection with this id (the `rejected.id` column).
    #[arg(long)]
    pub id: Option<i64>,
    /// Replay every rejection not replayed yet.
    #[arg(long)]
    pub all: bool,
}

/// Settings of `send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Kafka settings.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// How many messages to send.
    #[arg(short = 'n', long = "count", default_value_t = 10)]
    pub count: u64,
    /// Seed for the fake data: the same seed sends the same messages.
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long one delivery may wait for the broker before it counts as failed.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub delivery_timeout: Duration,
    /// Messages per second, paced evenly: 0 (as fast as the broker takes them) or at least
    /// 0.001.
    #[arg(long, value_name = "R", default_value_t = 0.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Fraction of the messages that are bad (0.0..=1.0), each kind of bad message the
    /// contract defines in turn.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_ratio)]
    pub invalid_ratio: f64,
    /// Send each non-empty line of this file (`-`: standard input) as it is, instead of fake
    /// orders.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["count", "seed", "invalid_ratio"])]
    pub file: Option<std::path::PathBuf>,
}

/// The slowest `--rate` other than 0: one message every 1000 seconds.
pub const MIN_RATE: f64 = 0.001;

/// A rate in messages per second: 0 (unlimited) or a finite number of at least [`MIN_RATE`].
fn parse_rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(rate) if rate == 0.0 || (rate.is_finite() && rate >= MIN_RATE) => Ok(rate),
        _ => Err(format!(
            "must be 0 (unlimited) or a number of messages per second, at least {MIN_RATE}"
        )),
    }
}

/// A fraction: a number in 0.0..=1.0.
fn parse_ratio(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err("must be a fraction between 0.0 and 1.0".to_owned()),
    }
}

/// A connection URL sqlx accepts.
fn parse_database_url(value: &str) -> Result<String, String> {
    if !(value.starts_with("postgres://") || value.starts_with("postgresql://")) {
        return Err("must start with postgres:// or postgresql://".to_owned());
    }
    value
        .parse::<sqlx::postgres::PgConnectOptions>()
        .map(|_| value.to_owned())
        .map_err(|e| format!("not a PostgreSQL URL: {e}"))
}

/// Any text but the empty one.
fn parse_non_empty(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(value.to_owned())
    }
}

/// A human duration: `10m`, `90s`, `1h 30m`.
fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value).map_err(|e| format!("not a duration like 10m or 90s: {e}"))
}

/// A consumer group session timeout: a duration of 1 s to 1 h, in whole milliseconds.
fn parse_session_timeout(value: &str) -> Result<Duration, String> {
    let timeout = parse_duration(value)?;
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&timeout) {
        return Err("must be from 1s to 1h".to_owned());
    }
    Ok(timeout)
}

/// A size in bytes: `256MiB`, `1GB`, `1048576`.
fn parse_bytes(value: &str) -> Result<u64, String> {
    value
        .parse::<ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|e| format!("not a size like 256MiB: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("order-service").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let Ok(Cli {
            command: Command::Serve(serve),
            ..
        }) = parse(&["serve"])
        else {
            panic!("serve must parse with defaults");
        };
        assert_eq!(serve.cache_ttl, Duration::from_secs(600));
        assert_eq!(serve.cache_max_bytes, 256 * 1024 * 1024);
        assert_eq!(serve.cache_warm_limit, 10_000);
        assert_eq!(serve.http_addr.port(), 8081);
        assert_eq!(serve.kafka.kafka_topic, "orders");
        assert_eq!(serve.kafka_group_id, "order-service");
        assert_eq!(serve.kafka.kafka_topic_replication_factor, None);
        assert_eq!(serve.kafka_session_timeout, Duration::from_secs(10));
    }

    #[test]
    fn replication_factor_is_the_brokers_unless_told() {
        let cli = parse(&["send", "--kafka-topic-replication-factor", "3"]).expect("3 parses");
        let Command::Send(send) = cli.command else {
            panic!("send must parse");
        };
        assert_eq!(send.kafka.kafka_topic_replication_factor, Some(3));
    }

    #[test]
    fn log_format_is_text_unless_told() {
        let cli = parse(&["generate"]).expect("defaults parse");
        assert_eq!(cli.log_format, LogFormat::Text);
        let cli = parse(&["serve", "--log-format", "json"]).expect("json parses");
        assert_eq!(cli.log_format, LogFormat::Json);
        let error = parse(&["--log-format=yaml", "generate"])
            .expect_err("an unknown format must be refused")
            .to_string();
        assert!(error.contains("LOG_FORMAT"), "{error}");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (flag, value, variable) in [
            ("--cache-ttl", "soon", "CACHE_TTL"),
            ("--cache-max-bytes", "lots", "CACHE_MAX_BYTES"),
            ("--cache-warm-limit", "-5", "CACHE_WARM_LIMIT"),
            ("--http-addr", "nowhere", "HTTP_ADDR"),
            ("--database-url", "mysql://x", "DATABASE_URL"),
            ("--kafka-brokers", " ", "KAFKA_BROKERS"),
            ("--kafka-session-timeout", "500ms", "KAFKA_SESSION_TIMEOUT"),
            (
                "--kafka-topic-replication-factor",
                "0",
                "KAFKA_TOPIC_REPLICATION_FACTOR",
            ),
        ] {
            let error = parse(&["serve", &format!("{flag}={value}")])
                .expect_err("a bad value must be refused")
                .to_string();
            assert!(error.contains(variable), "{flag}: {error}");
        }
    }

    #[test]
    fn send_checks_its_rate_ratio_and_file_flags() {
        let Ok(Cli {
            command: Command::Send(send),
            ..
        }) = parse(&["send", "--rate", "250", "--invalid-ratio", "0.1"])
        else {
            panic!("send must parse");
        };
        assert_eq!((send.rate, send.invalid_ratio), (250.0, 0.1));
        for bad in [
            &["send", "--rate", "-1"][..],
            &["send", "--rate", "fast"],
            &["send", "--invalid-ratio", "1.5"],
            &["send", "--file", "orders.jsonl", "-n", "5"],
            &["send", "--file", "orders.jsonl", "--invalid-ratio", "0.5"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(parse(&["send", "--file", "orders.jsonl"]).is_ok());
    }

    #[test]
    fn rate_is_zero_or_at_least_the_minimum() {
        for (value, want) in [("0", 0.0), ("0.001", 0.001), ("1e-3", 0.001), ("2.5", 2.5)] {
            assert_eq!(parse_rate(value), Ok(want), "{value}");
        }
        for value in ["1e-300", "0.0009", "-1", "inf", "NaN", "1e400", "fast", ""] {
            assert!(parse_rate(value).is_err(), "{value} must be refused");
            let error = parse(&["send", &format!("--rate={value}")])
                .expect_err("refused on the command line too")
                .to_string();
            assert!(error.contains("--rate"), "{value}: {error}");
        }
    }
}
