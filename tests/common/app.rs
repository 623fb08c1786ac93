//! `TestApp`: the real service built by `startup` in the test's process, on the settings it is
//! given (`settings.rs`), with an HTTP client, a producer to its topic and a pool on its
//! database; stopped, and its database dropped, at the end of the test.

use std::sync::Arc;
use std::time::Duration;

use order_service::infra::config::ServeArgs;
use order_service::ingest::ConsumerStatus;
use order_service::startup::Application;
use order_service::store::Store;
use rdkafka::producer::FutureProducer;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::database::{self, drop_database, server_address};
use super::kafka::{self, producer};
use super::settings::fresh_args;
use super::wait::eventually;

/// A running service.
pub struct TestApp {
    /// Its settings.
    pub args: ServeArgs,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Its ingest consumer's own view: running, reaching a broker, what it is assigned.
    pub consumer: Arc<ConsumerStatus>,
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
pub async fn require_services(args: &ServeArgs) {
    let maintenance = database::database_url("postgres");
    if let Err(error) = Store::create_database_if_missing(&maintenance).await {
        panic!(
            "PostgreSQL is not reachable at {}: {error}. Start it with `make all-up`.",
            server_address()
        );
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
        let consumer = app.consumer_status();
        let warmed = app.warmed();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        // The service answers before its cache is warm; tests start from a warm one.
        warmed.wait().await;
        let store = database::connect(&args.database.database_url);
        let producer = producer(&args.kafka.kafka_brokers);
        Self {
            args,
            base,
            consumer,
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

    /// `GET base + path` as the operator: with the operator token of [`fresh_args`].
    pub async fn get(&self, path: &str) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = &self.args.operator_token {
            request = request.bearer_auth(token.expose());
        }
        request.send().await.expect("the service answers")
    }

    /// `GET base + path` as a stranger: no credentials.
    pub async fn get_anonymous(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the service answers")
    }

    /// Produces one message to the service's topic and waits for the broker's ack.
    pub async fn produce(&self, key: Option<&str>, payload: Option<&[u8]>) {
        kafka::produce(&self.producer, &self.args.kafka.kafka_topic, key, payload).await;
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
