//! Kafka clients: the settings every client starts from, the context every client shares
//! (librdkafka's errors, logged once per kind every half minute instead of several times a
//! second while a broker is down), and creating topics that are missing. What only the ingest
//! consumer keeps (its assignment, its lag, whether a broker answers) is in `ingest/status.rs`
//! and `ingest/context.rs`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::infra::config::KafkaArgs;

/// How often one kind of librdkafka error or warning is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// The context of every Kafka client: logs librdkafka's errors and warnings, each kind at most
/// once per `LOG_EVERY` (30 s), with how many were left out.
#[derive(Default)]
pub struct KafkaContext {
    /// When each kind was last logged, and how many of it were suppressed since.
    last_logged: Mutex<HashMap<String, (Instant, u64)>>,
}

impl KafkaContext {
    /// `Some(suppressed)` if an event of `kind` should be logged now.
    fn should_log(&self, kind: &str) -> Option<u64> {
        let mut seen = self.last_logged.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match seen.get_mut(kind) {
            Some((at, suppressed)) if now.duration_since(*at) < LOG_EVERY => {
                *suppressed += 1;
                None
            }
            Some((at, suppressed)) => {
                *at = now;
                Some(std::mem::take(suppressed))
            }
            None => {
                seen.insert(kind.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let Some(suppressed) = self.should_log(fac) else {
            return;
        };
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", fac, suppressed, "{message}")
            }
            _ => tracing::debug!(target: "librdkafka", fac, suppressed, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let kind = format!("{:?}", error.rdkafka_error_code());
        if let Some(suppressed) = self.should_log(&kind) {
            tracing::warn!(target: "librdkafka", %error, suppressed, "{reason}");
        }
    }
}

/// The client settings every Kafka client of the service starts from: the brokers, a
/// client id, the security settings (`KAFKA_SECURITY_PROTOCOL`, SASL, the CA file) and the
/// extra properties (`KAFKA_PROPERTIES`), which come last and so override the others.
pub fn client_config(kafka: &KafkaArgs) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.kafka_brokers)
        .set("client.id", "order-service");
    for (key, value) in kafka.security.properties() {
        config.set(key, value);
    }
    config
}

/// Sets the extra properties (`KAFKA_PROPERTIES`, `--kafka-property`) again on `config`,
/// after what a client added to [`client_config`]'s settings, so that they override those
/// too (a producer's `linger.ms`, say). Every client calls it last, just before it is
/// created.
pub fn with_extra_properties<'a>(
    config: &'a mut ClientConfig,
    kafka: &KafkaArgs,
) -> &'a mut ClientConfig {
    for (key, value) in kafka.security.extra_properties() {
        config.set(key, value);
    }
    config
}

/// The settings of every producer of the service (`send`'s and the dead-letter topic's):
/// idempotent, so that a retry after a lost acknowledgement or a leader change never writes a
/// message twice nor out of order within a partition; acknowledged by every in-sync replica
/// (`acks=all`, which idempotence requires); and a delivery that is not acknowledged within
/// `delivery_timeout` fails (`message.timeout.ms`, librdkafka's delivery timeout) instead of
/// being retried for the default 5 minutes.
pub fn producer_config(kafka: &KafkaArgs, delivery_timeout: Duration) -> ClientConfig {
    let mut config = client_config(kafka);
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            delivery_timeout.as_millis().to_string(),
        );
    config
}

/// Creates the orders topic with the configured partitions unless it exists already; `true`
/// if it was created now.
pub async fn ensure_topic(kafka: &KafkaArgs) -> anyhow::Result<bool> {
    ensure_named_topic(kafka, &kafka.kafka_topic, kafka.kafka_topic_partitions).await
}

/// Creates `name` with `partitions` partitions, replicated as configured (by default as the
/// broker's default), unless it exists already; `true` if it was created now.
pub async fn ensure_named_topic(
    kafka: &KafkaArgs,
    name: &str,
    partitions: i32,
) -> anyhow::Result<bool> {
    let admin: AdminClient<KafkaContext> = with_extra_properties(&mut client_config(kafka), kafka)
        .create_with_context(KafkaContext::default())
        .context("cannot create a Kafka admin client")?;
    // -1 asks for the broker's `default.replication.factor` (CreateTopics v4+, Kafka 2.4+).
    let replication = kafka.kafka_topic_replication_factor.unwrap_or(-1);
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    let options = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .with_context(|| format!("cannot reach Kafka at {}", kafka.kafka_brokers))?;
    let mut created = false;
    for result in results {
        match result {
            Ok(name) => {
                tracing::info!(topic = %name, partitions, replication = ?kafka.kafka_topic_replication_factor, "topic created");
                created = true;
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("cannot create topic {name}: {code}"),
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rdkafka::producer::FutureProducer;

    use super::{KafkaContext, producer_config};
    use crate::infra::config::KafkaArgs;

    #[test]
    fn every_producer_is_idempotent_acknowledged_by_all_and_bounded_in_time() {
        let kafka = KafkaArgs {
            kafka_brokers: "127.0.0.1:1".to_owned(),
            kafka_topic: "orders".to_owned(),
            kafka_topic_partitions: 3,
            kafka_topic_replication_factor: None,
            security: Default::default(),
        };
        let config = producer_config(&kafka, Duration::from_secs(7));
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(config.get("message.timeout.ms"), Some("7000"));
        // librdkafka accepts the combination (it refuses idempotence with, e.g., acks=1).
        let created: Result<FutureProducer<KafkaContext>, _> =
            config.create_with_context(KafkaContext::default());
        assert!(created.is_ok(), "{:?}", created.err());
    }
}
