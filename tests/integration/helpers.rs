//! The test harness: a fresh database, topic and consumer group per test, the real service
//! built by `startup` on port 0, and small clients to produce to Kafka and read PostgreSQL.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use order_service::config::{DatabaseArgs, KafkaArgs, ServeArgs};
use order_service::startup::Application;
use order_service::store::Store;
use rand::Rng;
use rand::distr::Alphanumeric;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[path = "../common/database.rs"]
mod database;
pub use database::{drop_database, server_url};

/// The sample order from the contract.
pub const SAMPLE: &str = include_str!("../fixtures/sample-order.json");

/// The broker the tests use: `KAFKA_BROKERS`, by default the local one.
fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// A short random name part, so that tests never share a database, topic or group.
pub fn unique(prefix: &str) -> String {
    let suffix: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(10)
        .map(|b| char::from(b).to_ascii_lowercase())
        .collect();
    format!("{prefix}_{suffix}")
}

/// Settings for a fresh database, topic and group, HTTP on a free port.
pub fn fresh_args() -> ServeArgs {
    let name = unique("ordertest");
    ServeArgs {
        database: DatabaseArgs {
            database_url: format!("{}/{name}", server_url()),
        },
        kafka: KafkaArgs {
            kafka_brokers: brokers(),
            kafka_topic: format!("{name}_orders"),
            kafka_topic_partitions: 3,
            kafka_topic_replication_factor: None,
        },
        kafka_group_id: format!("{name}_group"),
        kafka_group_instance_id: String::new(),
        kafka_session_timeout: Duration::from_secs(10),
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        cache_ttl: Duration::from_secs(600),
        cache_max_bytes: 64 * 1024 * 1024,
        cache_warm_limit: 10_000,
        kafka_dlq_topic: format!("{name}_orders.dlq"),
        ingest_batch_size: 1000,
        ingest_batch_linger: Duration::from_millis(5),
        no_migrate: false,
    }
}

/// Settings for another instance of the service `args` configures: the same database,
/// topic and consumer group, HTTP on its own free port.
pub fn fresh_args_sharing(args: &ServeArgs) -> ServeArgs {
    ServeArgs {
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..args.clone()
    }
}

/// A running service.
pub struct TestApp {
    /// Its settings.
    pub args: ServeArgs,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Its database, for assertions.
    pub store: Store,
    /// HTTP client.
    pub http: reqwest::Client,
    /// Producer to the service's topic.
    producer: FutureProducer,
    /// Stops it.
    shutdown: CancellationToken,
    /// Its task.
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Fails the test with a clear message when PostgreSQL or Kafka is not there.
async fn require_services(args: &ServeArgs) {
    let server = server_url();
    if let Err(error) = Store::create_database_if_missing(&format!("{server}/postgres")).await {
        panic!("PostgreSQL is not reachable at {server}: {error}. Start it with `make all-up`.");
    }
    let broker = args
        .kafka
        .kafka_brokers
        .split(',')
        .next()
        .unwrap_or_default()
        .to_owned();
    let connect = tokio::net::TcpStream::connect(broker.clone());
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(_)) => {}
        _ => panic!("Kafka is not reachable at {broker}. Start it with `make all-up`."),
    }
}

impl TestApp {
    /// Builds and starts the service with `args`.
    pub async fn spawn_with(args: ServeArgs) -> Self {
        require_services(&args).await;
        let app = Application::build(&args).await.expect("the service builds");
        let base = format!("http://{}", app.addr());
        let warmed = app.warmed();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        // The service answers before its cache is warm; tests start from a warm one.
        warmed.wait().await;
        let store =
            Store::connect_lazy(&args.database.database_url, Duration::from_secs(5)).expect("pool");
        let producer = producer(&args.kafka);
        Self {
            args,
            base,
            store,
            http: reqwest::Client::new(),
            producer,
            shutdown,
            task: Some(task),
        }
    }

    /// A service on a fresh database, topic and group.
    pub async fn spawn() -> Self {
        Self::spawn_with(fresh_args()).await
    }

    /// `GET base + path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the service answers")
    }

    /// Produces one message to the service's topic and waits for the broker's ack.
    pub async fn produce(&self, key: Option<&str>, payload: Option<&[u8]>) {
        let mut record = FutureRecord::<str, [u8]>::to(&self.args.kafka.kafka_topic);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(error, _)| error)
            .expect("the broker acknowledges");
    }

    /// Waits until `GET /api/order/{uid}` is 200 and returns that response.
    pub async fn wait_for_order(&self, uid: &str) -> reqwest::Response {
        let path = format!("/api/order/{uid}");
        eventually(&format!("order {uid} to be served"), || async {
            let response = self.get(&path).await;
            (response.status() == 200).then_some(response)
        })
        .await
    }

    /// Stops the service and waits for it to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("no panic").expect("clean stop");
        }
    }

    /// Stops the service and drops its database.
    pub async fn stop_and_drop(self) {
        let url = self.args.database.database_url.clone();
        self.store.pool().close().await;
        self.stop().await;
        drop_database(&url).await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A producer to `kafka`'s brokers that also takes values larger than the contract allows.
pub fn producer(kafka: &KafkaArgs) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &kafka.kafka_brokers)
        .set("message.timeout.ms", "10000")
        .set("message.max.bytes", "10000000")
        .create()
        .expect("producer")
}

/// Raises `topic`'s `max.message.bytes` to `bytes`, as an operator would to let values above
/// Apache Kafka's default limit of 1 MiB (record batch included) through.
pub async fn raise_topic_message_limit(kafka: &KafkaArgs, topic: &str, bytes: usize) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &kafka.kafka_brokers)
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

/// Polls `check` until it gives a value, failing the test after 30 seconds.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
