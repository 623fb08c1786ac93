//! Settings of an in-process service: a fresh database, topic and consumer group per test,
//! HTTP on a free port.

use std::net::SocketAddr;
use std::time::Duration;

use order_service::config::{DatabaseArgs, KafkaArgs, ServeArgs};

use super::database::database_url;
use super::kafka::brokers;
use super::names::unique;

/// Settings for a fresh database, topic and group, HTTP on a free port.
pub fn fresh_args() -> ServeArgs {
    let name = unique("ordertest");
    ServeArgs {
        database: DatabaseArgs {
            database_url: database_url(&name),
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
