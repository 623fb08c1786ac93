//! `send` and `generate`: produces fake orders to the orders topic, keyed by `order_uid`, waits for the
//! broker's acknowledgements and prints each delivered id on its own line; or prints the
//! orders themselves as JSON lines.

use anyhow::Context;
use chrono::Utc;
use futures::StreamExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::io::Write;

use crate::config::SendArgs;
use crate::generator::{SEEDED_NOW, fake_order};
use crate::kafka::{KafkaContext, client_config, ensure_topic};
use crate::order::{Order, canonical_json};

/// Deliveries waiting for an acknowledgement at once.
const IN_FLIGHT: usize = 1000;

/// `count` fake orders; with a seed, the same ones every time.
pub fn fake_orders(count: u64, seed: Option<u64>) -> impl Iterator<Item = Order> {
    let (mut rng, now) = match seed {
        Some(seed) => (StdRng::seed_from_u64(seed), SEEDED_NOW),
        None => (StdRng::from_os_rng(), Utc::now().timestamp()),
    };
    (0..count).map(move |_| fake_order(&mut rng, now))
}

/// Prints `count` fake orders as JSON lines: the documents `send` with the same seed sends.
pub fn generate(count: u64, seed: Option<u64>, out: &mut impl Write) -> anyhow::Result<()> {
    for order in fake_orders(count, seed) {
        out.write_all(&canonical_json(&order))
            .and_then(|()| out.write_all(b"\n"))
            .context("cannot write to standard output")?;
    }
    out.flush().context("cannot write to standard output")
}

/// Sends `args.count` orders. Fails, after sending all it could, if any delivery failed.
pub async fn run(args: &SendArgs) -> anyhow::Result<()> {
    // Without the topic the deliveries fail one by one, and are reported by id below.
    if let Err(error) = ensure_topic(&args.kafka).await {
        tracing::warn!("{error:#}");
    }
    let timeout = args.delivery_timeout;
    let producer: FutureProducer<KafkaContext> = client_config(&args.kafka)
        .set("acks", "all")
        .set("message.timeout.ms", timeout.as_millis().to_string())
        .set("linger.ms", "5")
        .create_with_context(KafkaContext::default())
        .context("cannot create the Kafka producer")?;
    let orders = fake_orders(args.count, args.seed);
    let topic = args.kafka.kafka_topic.as_str();
    let producer = &producer;
    let mut deliveries = futures::stream::iter(orders)
        .map(|order| async move {
            let json = canonical_json(&order);
            let record = FutureRecord::to(topic)
                .key(order.order_uid.as_str())
                .payload(json.as_ref());
            let result = producer.send(record, timeout).await;
            (order.order_uid, result)
        })
        .buffered(IN_FLIGHT);

    let mut stdout = std::io::stdout().lock();
    let mut failed = 0u64;
    while let Some((uid, result)) = deliveries.next().await {
        match result {
            Ok(_) => writeln!(stdout, "{uid}").context("cannot write to standard output")?,
            Err((error, _)) => {
                failed += 1;
                eprintln!("not delivered: {uid}: {error}");
            }
        }
    }
    stdout.flush().context("cannot write to standard output")?;
    if failed > 0 {
        anyhow::bail!("{failed} of {} orders were not delivered", args.count);
    }
    Ok(())
}
