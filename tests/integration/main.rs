//! Integration tests against the real PostgreSQL and the real Kafka-protocol broker.

#[path = "../common/mod.rs"]
mod common;

mod allocator;
mod cache;
mod flow;
mod group;
mod hostile;
mod lookup_limit;
mod openapi;
mod page;
mod poison;
mod refused;
mod replay;
mod scale;
mod send;
mod store;
