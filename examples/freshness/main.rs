//! The freshness benchmark of `make bench-freshness` (`scripts/bench-freshness.sh`): how long
//! an order takes from the producer's acknowledgement to its first `200` on
//! `GET /api/order/{id}` of a running `serve`.
//!
//! This example owns the traffic and the timing; the script owns the running `serve`, its
//! database and the clean-up. It produces orders of the project's generator (`fake_orders`,
//! as canonical JSON keyed by `order_uid`, with `send`'s producer settings), records the
//! instant each is acknowledged, then polls that order's URL every `--poll` (1 ms) until the
//! first `200` with the order's bytes, giving up after `--give-up` (10 s: a failure). One
//! order before the cases warms the pipeline up and is not counted. Per case it prints the
//! count, failures, p50, p99 and max (nearest rank), and what the measurement cost (requests
//! per second, CPU of this example and of `serve`):
//!
//! - `single`: one order at a time, each waited for, with `--gap` (200 ms) of idle between;
//! - `after-reject`: a message that is not JSON, keyed like the valid order that follows it
//!   (so both land in one partition, the bad one first, acknowledged before the valid one is
//!   sent); the valid one is timed;
//! - `steady`: `--rate` orders/s (1,000) for `--seconds` (10), evenly paced, every order
//!   timed (or every `--steady-every`th);
//! - `fresh-topic`: starts `serve` itself (`--serve-bin`, the environment's `DATABASE_URL`) on
//!   a topic that does not exist yet, which `serve` creates; produces one order as soon as
//!   `serve` is ready (`/health/ready`: its consumer holds the new topic's partitions); stops
//!   `serve`; once per topic (`--fresh-topics`, 5).
//!
//! It also checks the negative cache: an order polled (and answered 404) before it was
//! stored must not wait out the second that a missing id is remembered. `--samples` writes
//! every timed order as CSV, which the script joins with the database's `stored_at` to split
//! the time into before and after the storing transaction began.
//!
//! `delete-topics --prefix P` deletes the topics whose names start with `P` (the script's
//! clean-up).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, Parser, Subcommand, ValueEnum};
use order_service::config::KafkaArgs;
use order_service::kafka::KafkaContext;
use order_service::order::{Order, canonical_json};
use order_service::tools::generator::{BadKind, bad_message, fake_orders};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use reqwest::StatusCode;
use tokio::process::{Child, Command};
use tokio::time::{Instant, MissedTickBehavior};

/// The goal: p99 of every case under this.
const GOAL: Duration = Duration::from_millis(50);

/// How long the negative cache remembers a missing id: an order that waited about this long
/// after a 404 was held up by a stale entry.
const NEGATIVE_TTL: Duration = order_service::cache::NEGATIVE_TTL;

/// A sequential case stops after this many failures in a row (`serve` is not ingesting).
const MAX_FAILURES_IN_A_ROW: u32 = 3;

#[derive(Parser)]
#[command(about = "Freshness: producer acknowledgement to the first 200 on GET /api/order/{id}")]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Measures the cases against a running `serve` (and the `serve`s it starts itself).
    Run(Box<RunArgs>),
    /// Deletes the topics whose names start with a prefix.
    DeleteTopics {
        /// Bootstrap servers.
        #[arg(long, default_value = "127.0.0.1:9092")]
        brokers: String,
        /// Names start with this (at least 8 characters).
        #[arg(long)]
        prefix: String,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Base URL of the running `serve`, e.g. http://127.0.0.1:8081.
    #[arg(long)]
    url: String,
    /// The topic the running `serve` consumes.
    #[arg(long)]
    topic: String,
    /// The cases to run, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "single,after-reject,steady,fresh-topic"
    )]
    cases: Vec<Case>,
    /// Orders per second of `steady`.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// How long `steady` produces, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Time (poll) only every this many orders of `steady`; the others are produced alike
    /// but not polled, which divides the polling load.
    #[arg(long, default_value_t = 1)]
    steady_every: u32,
    /// The pid of the running `serve`, to report the CPU it used per case.
    #[arg(long)]
    serve_pid: Option<u32>,
    /// Orders of `single`.
    #[arg(long, default_value_t = 50)]
    singles: u32,
    /// Repetitions of `after-reject`.
    #[arg(long, default_value_t = 20)]
    rejects: u32,
    /// `serve` starts (fresh topics) of `fresh-topic`.
    #[arg(long, default_value_t = 5)]
    fresh_topics: u32,
    /// Idle time between two orders of `single` and `after-reject`.
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    gap: Duration,
    /// How often each pending order is polled.
    #[arg(long, default_value = "1ms", value_parser = humantime::parse_duration)]
    poll: Duration,
    /// How long an order is polled before it counts as a failure.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    give_up: Duration,
    /// The generator's seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The binary `fresh-topic` starts as `<serve-bin> serve --no-migrate`.
    #[arg(long, default_value = "target/release/order-service")]
    serve_bin: PathBuf,
    /// Topics and groups of `fresh-topic` are named `<prefix>fresh<i>`.
    #[arg(long, default_value = "freshness_")]
    prefix: String,
    /// Where `fresh-topic` writes the logs of its `serve`s and the pid file of the one running.
    #[arg(long, default_value = ".")]
    work: PathBuf,
    /// Writes every timed order here as CSV: case, order_uid, acknowledged and first 200 (in
    /// microseconds since the Unix epoch; the latter empty if never), 404s before, whether
    /// the 200 came from the cache.
    #[arg(long)]
    samples: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Case {
    Single,
    AfterReject,
    Steady,
    FreshTopic,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::AfterReject => "after-reject",
            Self::Steady => "steady",
            Self::FreshTopic => "fresh-topic",
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // On SIGINT or SIGTERM the run is dropped, and with it (kill_on_drop) any `serve` it started.
    tokio::select! {
        result = dispatch(cli.command) => result,
        () = terminated() => bail!("interrupted"),
    }
}

async fn dispatch(mode: Mode) -> anyhow::Result<()> {
    match mode {
        Mode::Run(args) => run(*args).await,
        Mode::DeleteTopics { brokers, prefix } => delete_topics(&brokers, &prefix).await,
    }
}

/// Resolves on SIGINT or SIGTERM (never, if they cannot be listened to).
async fn terminated() {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            if result.is_err() {
                // Without SIGINT, SIGTERM still ends the run.
                term.recv().await;
            }
        }
        _ = term.recv() => {}
    }
}

/// What one timed order gave.
#[derive(Clone, Debug)]
struct Sample {
    /// The order.
    uid: String,
    /// When it was acknowledged; `None`: not delivered.
    acked_at: Option<Instant>,
    /// From handing the record to the producer to its acknowledgement.
    to_ack: Option<Duration>,
    /// From the acknowledgement to the first 200; `None`: not delivered, or given up.
    visible: Option<Duration>,
    /// 404s answered before the first 200.
    not_found: u32,
    /// Whether the first 200 came from the cache (`X-Cache: hit`).
    from_cache: bool,
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
struct Poller {
    client: reqwest::Client,
    /// `http://host:port`.
    base: String,
    every: Duration,
    give_up: Duration,
    /// Requests made, for the request rate of a case.
    requests: Arc<AtomicU64>,
}

/// The first 200 of an order.
struct Seen {
    at: Instant,
    from_cache: bool,
}

impl Poller {
    fn with_base(&self, base: String) -> Self {
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
struct Producer {
    inner: FutureProducer<KafkaContext>,
    /// How long a delivery may take.
    timeout: Duration,
}

impl Producer {
    fn new(brokers: &str, timeout: Duration) -> anyhow::Result<Self> {
        let kafka = KafkaArgs {
            kafka_brokers: brokers.to_owned(),
            kafka_topic: String::new(),
            kafka_topic_partitions: 1,
            kafka_topic_replication_factor: None,
        };
        let inner = order_service::tools::send::producer(&kafka, timeout)?;
        Ok(Self { inner, timeout })
    }

    /// Hands a record to the producer; the future resolves on its acknowledgement.
    fn send(&self, topic: &str, key: &str, value: &[u8]) -> anyhow::Result<DeliveryFuture> {
        let record = FutureRecord::<str, [u8]>::to(topic).key(key).payload(value);
        self.inner
            .send_result(record)
            .map_err(|(error, _)| error)
            .with_context(|| format!("cannot produce to {topic}"))
    }

    /// Sends and waits for the acknowledgement.
    async fn send_acked(&self, topic: &str, key: &str, value: &[u8]) -> anyhow::Result<()> {
        acked(self.send(topic, key, value)?)
            .await
            .map(|_| ())
            .with_context(|| format!("{key} was not delivered within {:?}", self.timeout))
    }
}

/// The instant of the acknowledgement, or why there was none.
async fn acked(delivery: DeliveryFuture) -> anyhow::Result<Instant> {
    match delivery.await {
        Ok(Ok(_)) => Ok(Instant::now()),
        Ok(Err((error, _))) => Err(error.into()),
        Err(_) => bail!("the producer was dropped"),
    }
}

/// One order: produced, acknowledged, polled until visible.
async fn time_order(producer: &Producer, topic: &str, poller: &Poller, order: &Order) -> Sample {
    let json = canonical_json(order);
    let sent = Instant::now();
    let delivery = match producer.send(topic, &order.order_uid, &json) {
        Ok(delivery) => delivery,
        Err(error) => {
            eprintln!("freshness: {error:#}");
            return Sample::failed(order.order_uid.clone(), None, 0);
        }
    };
    observe(delivery, sent, poller, order.order_uid.clone(), json).await
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

/// What the cases share.
struct Bench {
    args: RunArgs,
    producer: Arc<Producer>,
    poller: Poller,
    orders: Box<dyn Iterator<Item = Order> + Send>,
    rng: StdRng,
}

impl Bench {
    /// One order before the cases, not counted: the first fetches of a consumer that has just
    /// been assigned its partitions are the `fresh-topic` case's, not the others'.
    async fn warm_up(&mut self) -> anyhow::Result<()> {
        let order = self.next_order()?;
        let sample = time_order(&self.producer, &self.args.topic, &self.poller, &order).await;
        match sample.visible {
            Some(visible) => eprintln!(
                "freshness: warm-up order visible {:.1} ms after its ack (not counted)",
                visible.as_secs_f64() * 1e3
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

    async fn steady(&mut self) -> anyhow::Result<Vec<Sample>> {
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
                let delivery = producer.send(&topic, &order.order_uid, &json)?;
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

    async fn single(&mut self) -> anyhow::Result<Vec<Sample>> {
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

    async fn after_reject(&mut self) -> anyhow::Result<Vec<Sample>> {
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
    async fn fresh_topic(&mut self) -> anyhow::Result<Vec<Sample>> {
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
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mut line = format!("HTTP answered {:.0} ms after start", ms(live - started));
        match wait_ready(&poller.client, base, self.args.give_up).await {
            Some(at) => write!(line, ", ready {:.0} ms after that", ms(at - live))?,
            None => bail!("serve never became ready ({line})"),
        }
        let sample = time_order(&self.producer, topic, &poller, &order).await;
        match (sample.to_ack, sample.visible) {
            (Some(to_ack), Some(visible)) => write!(
                line,
                "; the order acknowledged {:.1} ms after it was sent, visible {:.1} ms after that",
                ms(to_ack),
                ms(visible)
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

/// A `serve` this example started, its pid in a file while it runs (so that the script can
/// stop it if this example is killed).
struct Serve {
    child: Child,
    pid_file: PathBuf,
}

impl Serve {
    fn new(child: Child, pid_file: PathBuf) -> anyhow::Result<Self> {
        let pid = child.id().context("serve exited at once")?;
        std::fs::write(&pid_file, format!("{pid}\n"))
            .with_context(|| format!("cannot write {}", pid_file.display()))?;
        Ok(Self { child, pid_file })
    }

    /// Waits until `GET /health/live` answers 200 (bounded), failing if `serve` exits.
    async fn wait_live(&mut self, client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
        let url = format!("{base}/health/live");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("serve exited ({status}) before it answered HTTP");
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status() == StatusCode::OK
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        bail!("serve did not answer {url} within 60 s")
    }

    /// SIGTERM, then SIGKILL if it has not stopped within 15 s.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// When `GET /health/ready` first answers 200, polled every 5 ms for at most `give_up`.
async fn wait_ready(client: &reqwest::Client, base: &str, give_up: Duration) -> Option<Instant> {
    let url = format!("{base}/health/ready");
    let deadline = Instant::now() + give_up;
    while Instant::now() < deadline {
        if let Ok(response) = client.get(&url).send().await {
            let at = Instant::now();
            let ok = response.status() == StatusCode::OK;
            let _ = response.bytes().await;
            if ok {
                return Some(at);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// CPU seconds (user + system) used so far by process `pid` (this one if `None`), from
/// `/proc/<pid>/stat` (in clock ticks of 1/100 s, Linux's `USER_HZ`).
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |pid| format!("/proc/{pid}/stat"),
    );
    let stat = std::fs::read_to_string(path).ok()?;
    // The fields after the command name (in parentheses): state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// A TCP port free on 127.0.0.1 (now).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free port")?;
    Ok(listener.local_addr()?.port())
}

/// The `p` quantile (0..=1) of sorted `values`, nearest rank.
fn quantile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// One case's figures.
struct Figures {
    case: Case,
    samples: Vec<Sample>,
    elapsed: Duration,
    requests: u64,
    /// CPU seconds this example used during the case.
    cpu_self: Option<f64>,
    /// CPU seconds the running `serve` used during the case (not for `fresh-topic`, whose
    /// `serve`s are others).
    cpu_serve: Option<f64>,
}

impl Figures {
    fn visible(&self) -> Vec<Duration> {
        let mut visible: Vec<Duration> = self.samples.iter().filter_map(|s| s.visible).collect();
        visible.sort_unstable();
        visible
    }

    fn p99(&self) -> Option<Duration> {
        let visible = self.visible();
        (!visible.is_empty()).then(|| quantile(&visible, 0.99))
    }

    fn row(&self) -> String {
        let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e3);
        let visible = self.visible();
        let failed = self.samples.len() - visible.len();
        let (p50, p99, max) = if visible.is_empty() {
            ("-".to_owned(), "-".to_owned(), "-".to_owned())
        } else {
            (
                ms(quantile(&visible, 0.5)),
                ms(quantile(&visible, 0.99)),
                ms(visible[visible.len() - 1]),
            )
        };
        let mut to_ack: Vec<Duration> = self.samples.iter().filter_map(|s| s.to_ack).collect();
        to_ack.sort_unstable();
        let ack_p50 = if to_ack.is_empty() {
            "-".to_owned()
        } else {
            ms(quantile(&to_ack, 0.5))
        };
        let polled_early = self.samples.iter().filter(|s| s.not_found > 0).count();
        let hits = self
            .samples
            .iter()
            .filter(|s| s.visible.is_some() && s.from_cache)
            .count();
        let gets = self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9);
        let cpu = |c: Option<f64>| c.map_or_else(|| "-".to_owned(), |c| format!("{c:.1}"));
        format!(
            "{:<13}{:>7}{:>7}{:>9}{:>9}{:>9}{:>10}{:>10}{:>8}/{:<6}{:>8.0}{:>9}/{:<5}",
            self.case.name(),
            self.samples.len(),
            failed,
            p50,
            p99,
            max,
            ack_p50,
            polled_early,
            hits,
            visible.len() - hits,
            gets,
            cpu(self.cpu_self),
            cpu(self.cpu_serve),
        )
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(1024)
        .build()
        .context("cannot build the HTTP client")?;
    let poller = Poller {
        client,
        base: args.url.trim_end_matches('/').to_owned(),
        every: args.poll,
        give_up: args.give_up,
        requests: Arc::new(AtomicU64::new(0)),
    };
    let producer = Arc::new(Producer::new(&args.brokers, args.give_up)?);
    let orders = Box::new(fake_orders(u64::MAX, Some(args.seed)));
    let rng = StdRng::seed_from_u64(args.seed);
    let cases = args.cases.clone();
    let mut bench = Bench {
        args,
        producer,
        poller,
        orders,
        rng,
    };
    let clock = Clock::now()?;
    bench.warm_up().await?;
    let mut figures = Vec::new();
    for case in cases {
        eprintln!("freshness: {} ...", case.name());
        let requests_before = bench.poller.requests.load(Ordering::Relaxed);
        let serve_pid = bench.args.serve_pid.filter(|_| case != Case::FreshTopic);
        let cpu_before = (
            cpu_seconds(None),
            serve_pid.and_then(|pid| cpu_seconds(Some(pid))),
        );
        let started = Instant::now();
        let samples = match case {
            Case::Single => bench.single().await?,
            Case::AfterReject => bench.after_reject().await?,
            Case::Steady => bench.steady().await?,
            Case::FreshTopic => bench.fresh_topic().await?,
        };
        figures.push(Figures {
            case,
            samples,
            elapsed: started.elapsed(),
            requests: bench.poller.requests.load(Ordering::Relaxed) - requests_before,
            cpu_self: cpu_seconds(None).zip(cpu_before.0).map(|(b, a)| b - a),
            cpu_serve: serve_pid
                .and_then(|pid| cpu_seconds(Some(pid)))
                .zip(cpu_before.1)
                .map(|(b, a)| b - a),
        });
    }
    print_report(&figures, bench.args.poll);
    if let Some(path) = &bench.args.samples {
        write_samples(path, &figures, &clock)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Instants as wall-clock time (the database's `stored_at` is one), from one reading of both.
struct Clock {
    instant: Instant,
    unix_us: i64,
}

impl Clock {
    fn now() -> anyhow::Result<Self> {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH)?;
        Ok(Self {
            instant: Instant::now(),
            unix_us: i64::try_from(since_epoch.as_micros())?,
        })
    }

    /// Microseconds since the Unix epoch at `at` (not before this clock was read).
    fn unix_us(&self, at: Instant) -> i64 {
        let since = at.saturating_duration_since(self.instant).as_micros();
        self.unix_us + i64::try_from(since).unwrap_or(i64::MAX / 2)
    }
}

/// The samples of every case as CSV (see `--samples`).
fn write_samples(path: &Path, figures: &[Figures], clock: &Clock) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for figure in figures {
        for sample in &figure.samples {
            let Some(acked_at) = sample.acked_at else {
                continue;
            };
            let acked = clock.unix_us(acked_at);
            let visible = sample
                .visible
                .map(|v| clock.unix_us(acked_at + v).to_string())
                .unwrap_or_default();
            writeln!(
                out,
                "{},{},{acked},{visible},{},{}",
                figure.case.name(),
                sample.uid,
                sample.not_found,
                sample.from_cache
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

fn print_report(figures: &[Figures], poll: Duration) {
    println!(
        "freshness: producer acknowledgement -> first 200 on GET /api/order/{{id}}, polled every {poll:?}; in ms"
    );
    println!(
        "{:<13}{:>7}{:>7}{:>9}{:>9}{:>9}{:>10}{:>10}{:>15}{:>8}{:>15}",
        "case",
        "orders",
        "failed",
        "p50",
        "p99",
        "max",
        "ack p50",
        "404 first",
        "200 cache/db",
        "GETs/s",
        "CPU s ex/serve"
    );
    for figure in figures {
        println!("{}", figure.row().trim_end());
    }
    // The negative cache: an order answered 404 before it was stored is remembered as missing
    // for a second, unless ingest clears that when it caches the order.
    let polled_early: Vec<&Sample> = figures
        .iter()
        .flat_map(|f| &f.samples)
        .filter(|s| s.not_found > 0 && s.visible.is_some())
        .collect();
    let slowest = polled_early.iter().filter_map(|s| s.visible).max();
    let held_up = polled_early
        .iter()
        .filter(|s| {
            s.visible
                .is_some_and(|v| v >= NEGATIVE_TTL - Duration::from_millis(100))
        })
        .count();
    match slowest {
        Some(slowest) => println!(
            "negative cache: {} orders answered 404 before their first 200, the slowest visible {:.1} ms after its ack; {held_up} near or past the {} ms a missing id is remembered{}",
            polled_early.len(),
            slowest.as_secs_f64() * 1e3,
            NEGATIVE_TTL.as_millis(),
            if held_up == 0 {
                ": ingest clears the entry"
            } else {
                ": held up by the negative cache?"
            }
        ),
        None => println!("negative cache: no order was answered 404 before its first 200"),
    }
    let verdicts: Vec<String> = figures
        .iter()
        .map(|f| match f.p99() {
            Some(p99) if p99 < GOAL && f.samples.iter().all(|s| s.visible.is_some()) => {
                format!("{} ok", f.case.name())
            }
            Some(p99) => format!(
                "{} MISSED ({:.1} ms)",
                f.case.name(),
                p99.as_secs_f64() * 1e3
            ),
            None => format!("{} MISSED (nothing visible)", f.case.name()),
        })
        .collect();
    println!(
        "goal p99 < {} ms, nothing lost: {}",
        GOAL.as_millis(),
        verdicts.join(", ")
    );
}

/// Deletes the topics whose names start with `prefix`.
async fn delete_topics(brokers: &str, prefix: &str) -> anyhow::Result<()> {
    if prefix.len() < 8 {
        bail!("a prefix of at least 8 characters, please: {prefix:?}");
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("cannot create a Kafka admin client")?;
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .with_context(|| format!("cannot list the topics of {brokers}"))?;
    let names: Vec<&str> = metadata
        .topics()
        .iter()
        .map(|topic| topic.name())
        .filter(|name| name.starts_with(prefix))
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.delete_topics(&names, &options).await? {
        if let Err((name, code)) = result {
            eprintln!("freshness: cannot delete topic {name}: {code}");
        }
    }
    eprintln!("freshness: deleted {} topics ({prefix}*)", names.len());
    Ok(())
}
