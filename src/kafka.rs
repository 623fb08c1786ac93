//! Kafka clients: the settings both sides share, and creating the orders topic if it is
//! missing.

use std::time::Duration;

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaArgs;

/// The client settings every Kafka client of the service starts from.
pub fn client_config(kafka: &KafkaArgs) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.kafka_brokers)
        .set("client.id", "order-service");
    config
}

/// Creates the topic with the configured partitions unless it exists already.
pub async fn ensure_topic(kafka: &KafkaArgs) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(kafka)
        .create()
        .context("cannot create a Kafka admin client")?;
    let topic = NewTopic::new(
        &kafka.kafka_topic,
        kafka.kafka_topic_partitions,
        TopicReplication::Fixed(1),
    );
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .with_context(|| format!("cannot reach Kafka at {}", kafka.kafka_brokers))?;
    for result in results {
        match result {
            Ok(name) => {
                tracing::info!(topic = %name, partitions = kafka.kafka_topic_partitions, "topic created")
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("cannot create topic {name}: {code}"),
        }
    }
    Ok(())
}
