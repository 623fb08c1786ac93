//! order-service: orders from a Kafka topic, validated against the order contract, kept in
//! PostgreSQL, served from an in-memory cache over HTTP and on a web page.
//!
//! The modules follow the data: [`ingest`] reads a Kafka message, [`order`] decodes and
//! validates it, [`store`] keeps it (or its rejection), [`cache`] holds it in memory,
//! [`events`] announces it, and [`http`] serves it; [`startup`] wires them for `serve`.
//! Apart from that spine, [`tools`] holds the commands that make and replay traffic (`send`,
//! `generate`, `replay-rejected`) and [`infra`] what everything stands on (configuration,
//! logs, metrics, shutdown, Kafka clients). Imports run one way: [`order`] and [`infra`]
//! import nothing of the service, [`store`] only [`order`] and [`infra`], [`cache`] only [`store`];
//! [`ingest`], [`http`] and [`tools`] stand on those.

pub mod cache;
pub mod events;
pub mod http;
pub mod infra;
pub mod ingest;
pub mod order;
pub mod startup;
pub mod store;
pub mod tools;
