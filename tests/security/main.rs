//! Security tests against real servers: TLS to PostgreSQL, SASL and TLS to Apache Kafka, and
//! no secret in anything the service prints. A binary of its own: these tests start servers
//! of their own (a PostgreSQL instance with TLS, a Kafka node with a SASL_SSL listener) beside
//! the shared ones.

#[path = "../common/mod.rs"]
mod common;

mod kafka_sasl;
mod postgres_instance;
mod postgres_tls;
mod postgres_tls_binary;
mod sasl_node;
mod secrets;
mod smoke;
