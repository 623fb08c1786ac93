//! The infrastructure the pipeline and the tools stand on, apart from the data flow:
//! [`config`] (the command line and every setting), [`telemetry`] (logs), [`metrics`]
//! (names, the recorder, `/metrics` rendering), [`shutdown`] (signals and the grace period)
//! and [`kafka`] (client settings, the shared client context, creating topics).

pub mod config;
pub mod kafka;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;
