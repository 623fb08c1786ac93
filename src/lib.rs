//! order-service: orders from a Kafka topic, validated against the order contract, kept in
//! PostgreSQL, served from an in-memory cache over HTTP and on a web page.
//!
//! The modules follow the data: [`ingest`] reads a Kafka message, [`order`] decodes and
//! validates it, [`store`] keeps it (or its rejection), [`cache`] holds it in memory, and
//! [`http`] serves it. [`startup`] wires them for `serve`. Apart from the pipeline, the
//! [`tools`] make test traffic (`send`, `generate`).

pub mod cache;
pub mod config;
pub mod events;
pub mod http;
pub mod ingest;
pub mod kafka;
pub mod metrics;
pub mod order;
pub mod shutdown;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tools;
