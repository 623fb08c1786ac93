//! The infrastructure the pipeline and the tools stand on, apart from the data flow:
//! [`config`] (the command line and every setting), [`telemetry`] (logs), [`otel`] (traces
//! exported over OTLP, and reading W3C trace context), [`metrics`]
//! (names, the recorder, `/metrics` rendering), [`shutdown`] (signals and the grace period)
//! [`kafka`] (client settings, the shared client context, creating topics), [`kafka_trace`]
//! (W3C trace context in Kafka headers), [`kafka_probe`] (the start-up check that the brokers
//! accept the settings) and [`access_writer`] (the access log's buffer in front of standard
//! error).

pub mod access_writer;
pub mod config;
pub mod kafka;
pub mod kafka_probe;
pub mod kafka_trace;
pub mod metrics;
pub mod otel;
pub mod shutdown;
pub mod telemetry;
