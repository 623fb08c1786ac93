//! The cases: a warm-up order, then `single`, `after-reject`, `steady` and `fresh-topic`,
//! each giving the samples of the orders it timed.

use std::fmt::Write as _;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use order_service::order::{Order, canonical_json};
use order_service::tools::generator::{BadKind, bad_message};
use rand::rngs::StdRng;
use tokio::process::Command;
use tokio::time::Instant;

use crate::cli::RunArgs;
use crate::figures::millis;
use crate::serve::{Serve, free_port, wait_ready};
use crate::timing::{Poller, Producer, Sample, acked, time_order};

/// A sequential case stops after this many failures in a row (`serve` is not ingesting).
const MAX_FAILURES_IN_A_ROW: u32 = 3;

/// What the cases share.
pub struct Bench {
    pub args: RunArgs,
    pub producer: Arc<Producer>,
    pub poller: Poller,
    pub orders: Box<dyn Iterator<Item = Order> + Send>,
    pub rng: StdRng,
}

impl Bench {
    /// One order before the cases, not counted: the first fetches of a consumer that has just
    /// been assigned its partitions are the `fresh-topic` case's, not the others'.
    pub async fn warm_up(&mut self) -> anyhow::Result<()> {
        let order = self.next_order()?;
        let sample = time_order(&self.producer, &self.args.topic, &self.poller, &order).await;
        match sample.visible {
            Some(visible) => eprintln!(
                "freshness: warm-up order visible {:.1} ms after its ack (not counted)",
                millis(visible)
            ),
            None => bail!("the warm-up order never became visible: is serve ingesting?"),
        }
        Ok(())
    }

    fn next_order(&mut self) -> anyhow::Result<Order> {
        self.orders
            .next()
            .context("the generator ran out of orders")
    }

    pub async fn steady(&mut self) -> anyhow::Result<Vec<Sample>> {
        let rate = self.args.rate;
        if !(rate > 0.0 && self.args.seconds > 0.0) {
            bail!("--rate and --seconds must be positive");
        }
        let count = (rate * self.args.seconds).round() as u64;
        let every = u64::from(self.args.steady_every.max(1));
        let start = Instant::now();
        let mut timed = Vec::with_capacity(usize::try_from(count / every + 1)?);
        let mut untimed = Vec::new();
        for index in 0..count {
            tokio::time::sleep_until(start + Duration::from_secs_f64(index as f64 / rate)).await;
            let order = self.next_order()?;
            let producer = self.producer.clone();
            let topic = self.args.topic.clone();
            if index % every == 0 {
                let poller = self.poller.clone();
                timed.push(tokio::spawn(async move {
                    time_order(&producer, &topic, &poller, &order).await
                }));
            } else {
                // Produced like the others, not polled: only its delivery is checked.
                let json = canonical_json(&order);
                let delivery = producer.send(&topic, &order.order_uid, json.as_bytes())?;
                untimed.push(tokio::spawn(acked(delivery)));
            }
        }
        for task in untimed {
            task.await.context("a delivery task failed")??;
        }
        let mut samples = Vec::with_capacity(timed.len());
        for task in timed {
            samples.push(task.await.context("a timing task failed")?);
        }
        Ok(samples)
    }

    pub async fn single(&mut self) -> anyhow::Result<Vec<Sample>> {
        let mut samples = Vec::new();
        for _ in 0..self.args.singles {
            let order = self.next_order()?;
            let sample = time_order(&self.producer, &self.args.topic, &self.poller, &order).await;
            samples.push(sample);
            if failures_in_a_row(&samples) >= MAX_FAILURES_IN_A_ROW {
                eprintln!("freshness: single: {MAX_FAILURES_IN_A_ROW} failures in a row, stopped");
                break;
            }
            tokio::time::sleep(self.args.gap).await;
        }
        Ok(samples)
    }

    pub async fn after_reject(&mut self) -> anyhow::Result<Vec<Sample>> {
        let mut samples = Vec::new();
        for _ in 0..self.args.rejects {
            let order = self.next_order()?;
            let bad = bad_message(&mut self.rng, BadKind::NotJson, &order);
            let key = bad.key.as_deref().unwrap_or(&order.order_uid);
            self.producer
                .send_acked(&self.args.topic, key, &bad.value)
                .await?;
            let sample = time_order(&self.producer, &self.args.topic, &self.poller, &order).await;
            samples.push(sample);
            if failures_in_a_row(&samples) >= MAX_FAILURES_IN_A_ROW {
                eprintln!(
                    "freshness: after-reject: {MAX_FAILURES_IN_A_ROW} failures in a row, stopped"
                );
                break;
            }
            tokio::time::sleep(self.args.gap).await;
        }
        Ok(samples)
    }

    /// Starts `serve` on a topic that does not exist, times one order, stops `serve`; again
    /// for each fresh topic.
    pub async fn fresh_topic(&mut self) -> anyhow::Result<Vec<Sample>> {
        if std::env::var_os("DATABASE_URL").is_none() {
            bail!("fresh-topic starts serve itself: set DATABASE_URL");
        }
        let mut samples = Vec::new();
        for run in 1..=self.args.fresh_topics {
            let topic = format!("{}fresh{run}", self.args.prefix);
            let port = free_port()?;
            let base = format!("http://127.0.0.1:{port}");
            let log_path = self.args.work.join(format!("serve-{topic}.log"));
            let log = std::fs::File::create(&log_path)
                .with_context(|| format!("cannot create {}", log_path.display()))?;
            let started = Instant::now();
            let child = Command::new(&self.args.serve_bin)
                .args(["serve", "--no-migrate"])
                .env("KAFKA_BROKERS", &self.args.brokers)
                .env("KAFKA_TOPIC", &topic)
                .env("KAFKA_GROUP_ID", &topic)
                .env("KAFKA_DLQ_TOPIC", format!("{topic}.dlq"))
                .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
                .env("CACHE_WARM_LIMIT", "0")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("cannot start {}", self.args.serve_bin.display()))?;
            let mut serve = Serve::new(child, self.args.work.join("fresh-serve.pid"))?;
            let result = self.time_fresh(&mut serve, &topic, &base, started).await;
            serve.stop().await;
            let (sample, line) =
                result.with_context(|| format!("see the log of serve: {}", log_path.display()))?;
            eprintln!("freshness: fresh-topic {run}: {line}");
            samples.push(sample);
            if failures_in_a_row(&samples) >= MAX_FAILURES_IN_A_ROW {
                eprintln!(
                    "freshness: fresh-topic: {MAX_FAILURES_IN_A_ROW} failures in a row, stopped"
                );
                break;
            }
        }
        Ok(samples)
    }

    /// Waits until the fresh `serve` is ready (it answers HTTP and its consumer holds its
    /// partitions: what a load balancer or an operator waits for), then times one order on
    /// `topic`.
    async fn time_fresh(
        &mut self,
        serve: &mut Serve,
        topic: &str,
        base: &str,
        started: Instant,
    ) -> anyhow::Result<(Sample, String)> {
        serve.wait_live(&self.poller.client, base).await?;
        let live = Instant::now();
        let poller = self.poller.with_base(base.to_owned());
        let order = self.next_order()?;
        let mut line = format!("HTTP answered {:.0} ms after start", millis(live - started));
        match wait_ready(&poller.client, base, self.args.give_up).await {
            Some(at) => write!(line, ", ready {:.0} ms after that", millis(at - live))?,
            None => bail!("serve never became ready ({line})"),
        }
        let sample = time_order(&self.producer, topic, &poller, &order).await;
        match (sample.to_ack, sample.visible) {
            (Some(to_ack), Some(visible)) => write!(
                line,
                "; the order acknowledged {:.1} ms after it was sent, visible {:.1} ms after that",
                millis(to_ack),
                millis(visible)
            )?,
            _ => line.push_str("; the order never became visible"),
        }
        Ok((sample, line))
    }
}

/// How many of the last samples failed, in a row.
fn failures_in_a_row(samples: &[Sample]) -> u32 {
    samples
        .iter()
        .rev()
        .take_while(|sample| sample.visible.is_none())
        .count() as u32
}
