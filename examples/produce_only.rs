//! The producer ceiling for `make bench-ingest`: produces the lines of a file, read and keyed
//! before the clock starts, with `send`'s producer settings (idempotent, `acks=all`, 5 ms
//! linger) through librdkafka's threaded producer and nothing else, and prints the rate. What
//! `send` reaches is compared with this: the rest of `send`'s time is its own (making the
//! orders, waiting for each delivery, printing the ids).
//!
//! `cargo run --release --example produce_only -- <brokers> <topic> <file>`

#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use order_service::infra::kafka::{ensure_topic, producer_config};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message as _};

/// Counts the acknowledged and the failed deliveries.
#[derive(Default)]
struct Deliveries {
    acknowledged: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = match result {
            Ok(message) if message.offset() >= 0 => &self.acknowledged,
            _ => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, topic, file] = args.as_slice() else {
        anyhow::bail!("usage: produce_only <brokers> <topic> <file>");
    };
    let kafka = common::kafka_args(brokers, topic);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(ensure_topic(&kafka))?;
    // Each line keyed by its order_uid, as `send --file` keys it.
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
    let messages: Vec<(String, &str)> = text
        .lines()
        .map(|line| {
            let doc: serde_json::Value = serde_json::from_str(line)?;
            let uid = doc["order_uid"].as_str().unwrap_or_default().to_owned();
            Ok((uid, line))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut config = producer_config(&kafka, Duration::from_secs(60));
    config.set("linger.ms", "5");
    let producer: ThreadedProducer<Deliveries> =
        config.create_with_context(Deliveries::default())?;
    let started = Instant::now();
    for (key, payload) in &messages {
        let mut record = BaseRecord::to(topic).key(key.as_str()).payload(*payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_micros(500));
                }
                Err((error, _)) => return Err(error.into()),
            }
        }
    }
    producer.flush(Duration::from_secs(60))?;
    let elapsed = started.elapsed().as_secs_f64();
    let context = producer.context();
    let acknowledged = context.acknowledged.load(Ordering::Relaxed);
    let failed = context.failed.load(Ordering::Relaxed);
    anyhow::ensure!(
        acknowledged == messages.len() as u64,
        "{acknowledged} of {} acknowledged, {failed} failed",
        messages.len()
    );
    println!(
        "produced {acknowledged} messages in {elapsed:.2} s: {:.0} msg/s",
        acknowledged as f64 / elapsed.max(1e-9)
    );
    Ok(())
}
