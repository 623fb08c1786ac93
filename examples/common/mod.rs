//! What the benchmark examples share: the Kafka settings of a plaintext local broker.

use order_service::infra::config::KafkaArgs;

/// `brokers` and `topic` with the defaults of `serve` and `send`: 3 partitions, the broker's
/// replication factor, no TLS or SASL.
pub fn kafka_args(brokers: &str, topic: &str) -> KafkaArgs {
    KafkaArgs {
        kafka_brokers: brokers.to_owned(),
        kafka_topic: topic.to_owned(),
        kafka_topic_partitions: 3,
        kafka_topic_replication_factor: None,
        security: Default::default(),
    }
}
