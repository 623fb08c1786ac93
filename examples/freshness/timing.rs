//! Timing one order: produced with `send`'s producer, acknowledged, then polled on
//! `GET /api/order/{id}` until its first `200` with the order's bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use order_service::infra::config::KafkaArgs;
use order_service::infra::kafka::KafkaContext;
use order_service::order::{Order, canonical_json};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use reqwest::StatusCode;
use tokio::time::{Instant, MissedTickBehavior};

/// What one timed order gave.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The order.
    pub uid: String,
    /// When it was acknowledged; `None`: not delivered.
    pub acked_at: Option<Instant>,
    /// From handing the record to the producer to its acknowledgement.
    pub to_ack: Option<Duration>,
    /// From the acknowledgement to the first 200; `None`: not delivered, or given up.
    pub visible: Option<Duration>,
    /// 404s answered before the first 200.
    pub not_found: u32,
    /// Whether the first 200 came from the cache (`X-Cache: hit`).
    pub from_cache: bool,
}

impl Sample {
    fn failed(uid: String, sent_acked: Option<(Instant, Instant)>, not_found: u32) -> Self {
        Self {
            uid,
            acked_at: sent_acked.map(|(_, acked)| acked),
            to_ack: sent_acked.map(|(sent, acked)| acked - sent),
            visible: None,
            not_found,
            from_cache: false,
        }
    }
}

/// Polls orders by id.
#[derive(Clone)]
pub struct Poller {
    pub client: reqwest::Client,
    /// `http://host:port`.
    pub base: String,
    pub every: Duration,
    pub give_up: Duration,
    /// Requests made, for the request rate of a case.
    pub requests: Arc<AtomicU64>,
}

/// The first 200 of an order.
struct Seen {
    at: Instant,
    from_cache: bool,
}

impl Poller {
    pub fn with_base(&self, base: String) -> Self {
        Self {
            base,
            ..self.clone()
        }
    }

    /// Polls `uid` from now until it answers 200 with `json`, or for `give_up`. Also gives the
    /// number of 404s before.
    async fn first_ok(&self, uid: &str, json: &[u8]) -> (Option<Seen>, u32) {
        let url = format!("{}/api/order/{uid}", self.base);
        let deadline = Instant::now() + self.give_up;
        let mut ticks = tokio::time::interval(self.every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut not_found = 0;
        loop {
            ticks.tick().await;
            if Instant::now() >= deadline {
                return (None, not_found);
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let Ok(response) = self.client.get(&url).send().await else {
                continue;
            };
            let at = Instant::now();
            let status = response.status();
            let from_cache = response
                .headers()
                .get("x-cache")
                .is_some_and(|value| value == "hit");
            // Read to the end, so that the connection is reused.
            let Ok(body) = response.bytes().await else {
                continue;
            };
            match status {
                StatusCode::OK if body == json => {
                    return (Some(Seen { at, from_cache }), not_found);
                }
                StatusCode::OK => {
                    eprintln!("freshness: {uid} answered 200 with other bytes than were sent");
                    return (None, not_found);
                }
                StatusCode::NOT_FOUND => not_found += 1,
                _ => {}
            }
        }
    }
}

/// Producing: `send`'s producer.
pub struct Producer {
    inner: FutureProducer<KafkaContext>,
    /// How long a delivery may take.
    timeout: Duration,
}

impl Producer {
    pub fn new(brokers: &str, timeout: Duration) -> anyhow::Result<Self> {
        let kafka = KafkaArgs {
            kafka_brokers: brokers.to_owned(),
            kafka_topic: String::new(),
            kafka_topic_partitions: 1,
            kafka_topic_replication_factor: None,
            security: Default::default(),
        };
        let inner = order_service::tools::send::producer(&kafka, timeout)?;
        Ok(Self { inner, timeout })
    }

    /// Hands a record to the producer; the future resolves on its acknowledgement.
    pub fn send(&self, topic: &str, key: &str, value: &[u8]) -> anyhow::Result<DeliveryFuture> {
        let record = FutureRecord::<str, [u8]>::to(topic).key(key).payload(value);
        self.inner
            .send_result(record)
            .map_err(|(error, _)| error)
            .with_context(|| format!("cannot produce to {topic}"))
    }

    /// Sends and waits for the acknowledgement.
    pub async fn send_acked(&self, topic: &str, key: &str, value: &[u8]) -> anyhow::Result<()> {
        acked(self.send(topic, key, value)?)
            .await
            .map(|_| ())
            .with_context(|| format!("{key} was not delivered within {:?}", self.timeout))
    }
}

/// The instant of the acknowledgement, or why there was none.
pub async fn acked(delivery: DeliveryFuture) -> anyhow::Result<Instant> {
    match delivery.await {
        Ok(Ok(_)) => Ok(Instant::now()),
        Ok(Err((error, _))) => Err(error.into()),
        Err(_) => bail!("the producer was dropped"),
    }
}

/// One order: produced, acknowledged, polled until visible.
pub async fn time_order(
    producer: &Producer,
    topic: &str,
    poller: &Poller,
    order: &Order,
) -> Sample {
    let json = canonical_json(order);
    let sent = Instant::now();
    let delivery = match producer.send(topic, &order.order_uid, json.as_bytes()) {
        Ok(delivery) => delivery,
        Err(error) => {
            eprintln!("freshness: {error:#}");
            return Sample::failed(order.order_uid.clone(), None, 0);
        }
    };
    observe(delivery, sent, poller, order.order_uid.clone(), json.into()).await
}

/// Waits for the acknowledgement of a record sent at `sent`, then for the first 200.
async fn observe(
    delivery: DeliveryFuture,
    sent: Instant,
    poller: &Poller,
    uid: String,
    json: Bytes,
) -> Sample {
    let acked_at = match acked(delivery).await {
        Ok(at) => at,
        Err(error) => {
            eprintln!("freshness: {uid} not delivered: {error:#}");
            return Sample::failed(uid, None, 0);
        }
    };
    match poller.first_ok(&uid, &json).await {
        (Some(seen), not_found) => Sample {
            uid,
            acked_at: Some(acked_at),
            to_ack: Some(acked_at - sent),
            visible: Some(seen.at - acked_at),
            not_found,
            from_cache: seen.from_cache,
        },
        (None, not_found) => {
            eprintln!("freshness: {uid} not visible within {:?}", poller.give_up);
            Sample::failed(uid, Some((sent, acked_at)), not_found)
        }
    }
}
