//! Command line and configuration: every setting is a flag with an environment variable
//! (a `.env` file is loaded first). A bad value stops start-up with clap's message, which names
//! the variable (`--cache-ttl <CACHE_TTL>`).
//!
//! This file holds the command line and the connection settings every subcommand shares
//! (PostgreSQL, Kafka); `kafka_security/` Kafka's security settings, `serve.rs` the
//! service's settings, `tools.rs` the tools', `parse.rs` the value parsers, `secret.rs` the
//! type of a setting that must never be shown.

mod kafka_security;
mod parse;
mod secret;
mod serve;
mod tools;

use clap::{Args, Parser, Subcommand};

use crate::infra::telemetry::LogFormat;
pub use kafka_security::{
    KafkaProperty, KafkaSecurityArgs, SaslMechanism, SecurityMisconfigured, SecurityProtocol,
};
use parse::{DatabaseUrlParser, parse_non_empty};
pub use secret::Secret;
pub use serve::{GroupProtocol, ServeArgs};
pub use tools::{GenerateArgs, MIN_RATE, ReplayArgs, SendArgs};

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
    /// PostgreSQL connection URL. Its password is never shown (not in `--help`, nor in an
    /// error about the URL).
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        default_value = "postgres://postgres:postgres@localhost:5432/orders",
        hide_env_values = true,
        value_parser = DatabaseUrlParser
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
    /// TLS, SASL and any other librdkafka property, for every Kafka client.
    #[command(flatten)]
    pub security: KafkaSecurityArgs,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        assert_eq!(serve.ingest_writers, 3);
        assert_eq!(
            serve.lookup_limit(),
            crate::http::lookup_limit::LookupLimitSettings {
                failures_per_minute: 60,
                burst: 20,
                exempt_loopback: true,
            }
        );
    }

    #[test]
    fn the_lookup_limit_is_set_by_its_flags() {
        let cli = parse(&[
            "serve",
            "--lookup-failures-per-minute",
            "0",
            "--lookup-failures-burst",
            "5",
            "--lookup-limit-exempt-loopback",
            "false",
        ])
        .expect("the lookup limit's flags parse");
        let Command::Serve(serve) = cli.command else {
            panic!("serve must parse");
        };
        let limit = serve.lookup_limit();
        assert_eq!(limit.failures_per_minute, 0);
        assert_eq!(limit.burst, 5);
        assert!(!limit.exempt_loopback);
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
    fn database_url_keeps_its_tls_parameters_and_a_misspelt_sslmode_is_refused() {
        let url = "postgres://u:TopSecret1@db:5432/orders?sslmode=verify-full&sslrootcert=/ca.pem";
        let cli = parse(&["migrate", "--database-url", url]).expect("a TLS URL parses");
        let Command::Migrate(database) = cli.command else {
            panic!("migrate must parse");
        };
        assert_eq!(database.database_url, url, "the URL is passed on untouched");
        // A typo must stop start-up, not fall back to the default (`prefer`, unverified).
        let error = parse(&[
            "migrate",
            "--database-url",
            "postgres://u:TopSecret1@db:5432/orders?sslmode=verify-ful",
        ])
        .expect_err("an unknown sslmode must be refused")
        .to_string();
        assert!(error.contains("DATABASE_URL"), "{error}");
        assert!(
            error.contains("ssl_mode"),
            "the error says what is wrong: {error}"
        );
        assert!(!error.contains("TopSecret1"), "{error}");
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
            ("--lookup-failures-burst", "0", "LOOKUP_FAILURES_BURST"),
            ("--ingest-writers", "0", "INGEST_WRITERS"),
            (
                "--lookup-limit-exempt-loopback",
                "maybe",
                "LOOKUP_LIMIT_EXEMPT_LOOPBACK",
            ),
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
}
