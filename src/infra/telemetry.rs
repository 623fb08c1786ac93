//! Logging: `tracing` to standard error (standard output is kept for `send`'s ids), filtered
//! by `RUST_LOG`, human-readable text by default (coloured only on a terminal) or one JSON
//! object per line with `LOG_FORMAT=json`.
//!
//! Each HTTP request is logged at INFO with target `access` (see `http::middleware::observe`), so
//! `RUST_LOG=info,access=off` silences the access log alone.
//!
//! With traces exported ([`super::otel`]) the log keeps its own filter and the exporter gets
//! `traced`, whatever `RUST_LOG` says; without them the subscriber is the logger alone, as
//! it always was.

use std::io::IsTerminal;

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{FilterFn, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use super::otel::Traces;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the span fields (the request id among them).
    Json,
}

/// Installs the global subscriber. `filter` is an EnvFilter directive such as `info`. With
/// `traces`, and if the environment asks for it ([`super::otel::requested`]), spans are
/// exported too: the pipeline is returned, to be flushed at shutdown.
pub fn init(filter: &str, format: LogFormat, traces: bool) -> anyhow::Result<Option<Traces>> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("RUST_LOG: invalid log filter {filter:?}: {e}"))?;
    if traces && super::otel::requested(|name| std::env::var(name).ok()) {
        return init_with_traces(filter, format).map(Some);
    }
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
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    Ok(None)
}

/// The logger under its own filter beside the exporter under [`traced`].
fn init_with_traces(filter: EnvFilter, format: LogFormat) -> anyhow::Result<Traces> {
    let log = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let log = match format {
        LogFormat::Text => log.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => log
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let (traces, exporter) = Traces::start()?;
    tracing_subscriber::registry()
        .with(log.with_filter(filter))
        .with(exporter.with_filter(traced()))
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    Ok(traces)
}

/// What the exporter gets: the service's spans down to DEBUG (the ingest batch and database
/// spans are DEBUG, so that the log shows them only when asked to), the access-log span of
/// each HTTP request, and the service's warnings and errors as span events.
fn traced() -> FilterFn<impl Fn(&Metadata<'_>) -> bool> {
    filter_fn(|meta| is_traced(meta.target(), *meta.level(), meta.is_span()))
        .with_max_level_hint(Level::DEBUG)
}

/// [`traced`]'s rule, on a callsite's target, level and kind.
fn is_traced(target: &str, level: Level, span: bool) -> bool {
    let ours = target == "order_service" || target.starts_with("order_service::");
    if span {
        (ours && level <= Level::DEBUG) || (target == "access" && level <= Level::INFO)
    } else {
        ours && level <= Level::WARN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exporter_gets_the_services_spans_and_warnings_only() {
        assert!(is_traced("order_service::store::save", Level::DEBUG, true));
        assert!(is_traced("access", Level::INFO, true));
        assert!(!is_traced("order_service::ingest", Level::TRACE, true));
        assert!(!is_traced("sqlx::query", Level::INFO, true));
        assert!(!is_traced("order_servicex", Level::INFO, true));
        assert!(is_traced(
            "order_service::ingest::write",
            Level::WARN,
            false
        ));
        assert!(!is_traced(
            "order_service::ingest::write",
            Level::INFO,
            false
        ));
        assert!(!is_traced("access", Level::INFO, false));
    }
}
