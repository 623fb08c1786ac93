//! Integration tests against the real PostgreSQL and the real Kafka-protocol broker.

mod cache;
mod flow;
mod group;
mod helpers;
mod hostile;
mod openapi;
mod page;
mod poison;
mod scale;
mod send;
mod store;
