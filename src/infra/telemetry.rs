//! Logging: `tracing` to standard error (standard output is kept for `send`'s ids), filtered
//! by `RUST_LOG`, human-readable text by default (coloured only on a terminal) or one JSON
//! object per line with `LOG_FORMAT=json`.
//!
//! Each HTTP request is logged at INFO with target `access` (see `http::middleware::observe`), so
//! `RUST_LOG=info,access=off` silences the access log alone.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the span fields (the request id among them).
    Json,
}

/// Installs the global subscriber. `filter` is an EnvFilter directive such as `info`.
pub fn init(filter: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("RUST_LOG: invalid log filter {filter:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
