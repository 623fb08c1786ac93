//! The broker the tests use: its address, a raw producer that sends what a test hands it
//! (bad messages included), and the topic setting an operator would raise.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The broker the tests use unless `KAFKA_BROKERS` names others.
const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// How long one produce may wait for the broker's acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// The bootstrap servers: `KAFKA_BROKERS`, by default the local broker.
pub fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| DEFAULT_BROKERS.to_owned())
}

/// A producer to `brokers` that also takes values larger than the contract allows.
pub fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.timeout.ms", ACK_TIMEOUT.as_millis().to_string())
        .set("message.max.bytes", "10000000")
        .create()
        .expect("producer")
}

/// Produces one message to `topic` (no key or no value where `None`) and waits for the
/// broker's acknowledgement.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    key: Option<&str>,
    payload: Option<&[u8]>,
) {
    let mut record = FutureRecord::<str, [u8]>::to(topic);
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(payload) = payload {
        record = record.payload(payload);
    }
    producer
        .send(record, ACK_TIMEOUT)
        .await
        .map_err(|(error, _)| error)
        .expect("the broker acknowledges");
}

/// Raises `topic`'s `max.message.bytes` to `bytes`, as an operator would to let values above
/// Apache Kafka's default limit of 1 MiB (record batch included) through.
pub async fn raise_topic_message_limit(brokers: &str, topic: &str, bytes: usize) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let bytes = bytes.to_string();
    let config = AlterConfig::new(ResourceSpecifier::Topic(topic)).set("max.message.bytes", &bytes);
    let results = admin
        .alter_configs([&config], &AdminOptions::new())
        .await
        .expect("the broker answers AlterConfigs");
    for result in results {
        result.unwrap_or_else(|(resource, code)| panic!("cannot alter {resource:?}: {code}"));
    }
}
