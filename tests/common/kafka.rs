//! The broker the tests use: its address, a raw producer that sends what a test hands it
//! (bad messages included), the topic setting an operator would raise, and reading back a
//! dead-letter topic.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};

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
    produce_with_headers(producer, topic, key, payload, None).await;
}

/// [`produce`], with `headers` if given.
pub async fn produce_with_headers(
    producer: &FutureProducer,
    topic: &str,
    key: Option<&str>,
    payload: Option<&[u8]>,
    headers: Option<OwnedHeaders>,
) {
    let mut record = FutureRecord::<str, [u8]>::to(topic);
    if let Some(headers) = headers {
        record = record.headers(headers);
    }
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

/// One message of a dead-letter topic: its headers, and its payload.
pub struct DeadLetter {
    /// Its headers, as text, by name.
    headers: Vec<(String, String)>,
    /// Its payload (empty if it had none).
    pub payload: Vec<u8>,
}

impl DeadLetter {
    /// The header `name`; the test fails if it is missing.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or_else(|| panic!("no {name} header"))
    }
}

/// The first `count` messages of the dead-letter topic `topic`, read from its start by the
/// consumer group `group`; each must arrive within 30 s.
pub async fn dead_letters(
    brokers: &str,
    group: &str,
    topic: &str,
    count: usize,
) -> Vec<DeadLetter> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    dead_letters_with(config, group, topic, count).await
}

/// [`dead_letters`] with a client of `config` (the brokers and, say, SASL settings).
pub async fn dead_letters_with(
    mut config: ClientConfig,
    group: &str,
    topic: &str,
    count: usize,
) -> Vec<DeadLetter> {
    let reader: StreamConsumer = config
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    reader.subscribe(&[topic]).expect("subscribe");
    let mut letters = Vec::with_capacity(count);
    while letters.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(30), reader.recv())
            .await
            .expect("the dead-letter topic has every rejection")
            .expect("message");
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                        (h.key.to_owned(), value.into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        letters.push(DeadLetter {
            headers,
            payload: message.payload().unwrap_or_default().to_vec(),
        });
    }
    letters
}
