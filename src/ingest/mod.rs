//! Ingest: Kafka message -> decode and validate -> store (or record the rejection) -> cache ->
//! offset. At-least-once: an offset is stored for commit only after its message is safe in
//! PostgreSQL, so a crash redelivers, and the duplicate policy makes redelivery harmless.

mod consumer;
mod dlq;
mod retry;

pub use consumer::{Consumer, Ingest, build_consumer};
pub use dlq::DeadLetters;
