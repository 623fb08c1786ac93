//! Building `serve`: the database (migrated), the cache and the new-order event hub (both
//! filled by ingest and read by HTTP, so created here and handed to both), the consumer and
//! the HTTP listener, then the cache's warm-up in the background; then running them until
//! shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cache::{OrderCache, WarmUp, WarmedSignal};
use crate::events::OrderEvents;
use crate::http::lookup_limit::LookupLimit;
use crate::http::operator::OperatorAccess;
use crate::http::routes::health::Readiness;
use crate::http::{AppState, app};
use crate::infra::config::ServeArgs;
use crate::infra::kafka::{ensure_named_topic, ensure_topic};
use crate::infra::kafka_probe::{Access, PROBE_TIMEOUT, check_access};
use crate::ingest::{
    BatchSettings, ConsumerStatus, DeadLetters, GroupMember, Ingest, Sinks, start_new_topic_at_zero,
};
use crate::store::{BatchedLookup, Store};

/// How long a request waits for a database connection before it is answered with 503.
const DB_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// A built service, ready to run.
pub struct Application {
    /// The bound HTTP listener.
    listener: TcpListener,
    /// The address it is bound to (the real port when the configured one was 0).
    addr: SocketAddr,
    /// The HTTP handlers' state.
    state: AppState,
    /// The ingest loop.
    ingest: Ingest,
    /// Renders the metrics; its upkeep runs with the service.
    metrics: PrometheusHandle,
    /// The cache's warm-up, started once the listener is bound: requests are answered (from
    /// PostgreSQL) while it runs.
    warm_up: WarmUp,
}

/// Creates the database of `url` if it is missing: the first connection `serve` and `migrate`
/// make, so its error names the setting to check (the TLS parameters when the handshake
/// failed), never the URL itself.
pub async fn create_database(url: &str) -> anyhow::Result<()> {
    Store::create_database_if_missing(url).await.map_err(|e| {
        let setting = e.setting_to_check();
        anyhow::Error::new(e).context(format!("cannot create the database ({setting})"))
    })
}

impl Application {
    /// Connects, migrates (unless told not to), subscribes, binds, and starts warming the
    /// cache in the background.
    pub async fn build(args: &ServeArgs) -> anyhow::Result<Self> {
        // Kafka settings that cannot work stop start-up before the database is touched.
        args.kafka.security.validate()?;
        let operator = OperatorAccess::new(
            args.operator_token.as_ref(),
            args.order_lookup_requires_token,
        )?;
        if !operator.is_configured() {
            tracing::warn!(
                "OPERATOR_TOKEN is not set: /api/orders, /api/orders/stream and /api/rejected answer 401 to everyone"
            );
        }
        let metrics = crate::infra::metrics::install();
        let url = &args.database.database_url;
        if !args.no_migrate {
            create_database(url).await?;
        }
        let store = Store::connect_lazy(url, DB_ACQUIRE_TIMEOUT)
            .context("cannot configure the database pool (DATABASE_URL)")?;
        if !args.no_migrate {
            store
                .migrate()
                .await
                .context("cannot apply migrations (DATABASE_URL)")?;
        }
        // The cache and the event hub are filled by ingest and read by HTTP.
        let cache = OrderCache::new(args.cache_ttl, args.cache_max_bytes);
        let events = OrderEvents::new();

        // Refused credentials, a failed TLS handshake or a bad property stop start-up here.
        if let Access::Unreached(last) = check_access(&args.kafka).await? {
            anyhow::bail!(
                "cannot reach Kafka at {} (KAFKA_BROKERS) within {}s{}",
                args.kafka.kafka_brokers,
                PROBE_TIMEOUT.as_secs(),
                last.map(|e| format!(": {e}")).unwrap_or_default()
            );
        }
        if ensure_topic(&args.kafka).await? {
            start_new_topic_at_zero(
                &args.kafka,
                &args.kafka_group_id,
                args.kafka.kafka_topic_partitions,
            )
            .await;
        }
        let dead_letters = match args.dlq_topic() {
            Some(topic) => {
                ensure_named_topic(&args.kafka, topic, 1).await?;
                Some(DeadLetters::new(&args.kafka, topic)?)
            }
            None => None,
        };
        let member = GroupMember {
            group_id: args.kafka_group_id.clone(),
            instance_id: Some(args.kafka_group_instance_id.trim())
                .filter(|id| !id.is_empty())
                .map(str::to_owned),
            protocol: args.kafka_group_protocol,
            session_timeout: args.kafka_session_timeout,
        };
        let batches = BatchSettings {
            max_messages: args.ingest_batch_size as usize,
            linger: args.ingest_batch_linger,
            writers: usize::from(args.ingest_writers),
        };
        let sinks = Sinks {
            store: store.clone(),
            cache: cache.clone(),
            events: events.clone(),
            dead_letters,
        };
        let ingest = Ingest::new(args.kafka.clone(), member, sinks, batches)?;

        let listener = TcpListener::bind(args.http_addr)
            .await
            .with_context(|| format!("cannot listen on {} (HTTP_ADDR)", args.http_addr))?;
        let addr = listener.local_addr()?;
        let readiness = Readiness {
            database: Arc::new(store.clone()),
            consumer: ingest.status(),
        };
        let warm_up = cache.spawn_warm(Arc::new(store.clone()), args.cache_warm_limit);
        let state = AppState {
            cache,
            orders: Arc::new(BatchedLookup::spawn(store.clone())),
            readiness,
            lists: Arc::new(store),
            events,
            lookup_limit: LookupLimit::new(args.lookup_limit()),
            operator,
            shutdown: CancellationToken::new(),
        };
        Ok(Self {
            listener,
            addr,
            state,
            ingest,
            metrics,
            warm_up,
        })
    }

    /// Says when the cache's warm-up has finished.
    pub fn warmed(&self) -> WarmedSignal {
        self.warm_up.finished()
    }

    /// The ingest consumer's state (running, reaching a broker, its assignment), as
    /// readiness reads it.
    pub fn consumer_status(&self) -> Arc<ConsumerStatus> {
        self.state.readiness.consumer.clone()
    }

    /// The address the HTTP server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs ingest and HTTP until `shutdown` is cancelled; then ingest commits and HTTP
    /// finishes the requests in flight.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(addr = %self.addr, "HTTP server listening");
        let ingest = tokio::spawn(self.ingest.run(shutdown.clone()));
        tokio::spawn(crate::infra::metrics::run_upkeep(
            self.metrics,
            shutdown.clone(),
        ));
        let http_shutdown = shutdown.clone();
        // Event streams end with the service, so that draining never waits on one.
        let state = AppState {
            shutdown: shutdown.clone(),
            ..self.state
        };
        // With each connection's peer address, which the lookup limit keys clients by.
        let app = app(state).into_make_service();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await;
        // If HTTP stopped on its own, stop ingest too.
        shutdown.cancel();
        self.warm_up.abort();
        ingest.await.context("the ingest task panicked")?;
        served.context("the HTTP server failed")
    }
}
