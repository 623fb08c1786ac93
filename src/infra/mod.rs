//! The infrastructure the pipeline and the tools stand on, apart from the data flow:
//! [`config`] (the command line and every setting), [`telemetry`] (logs), [`metrics`]
//! (names, the recorder, `/metrics` rendering), [`shutdown`] (signals and the grace period)
//! [`kafka`] (client settings, the shared client context, creating topics) and
//! [`kafka_probe`] (the start-up check that the brokers accept the settings).

pub mod config;
pub mod kafka;
pub mod kafka_probe;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;
