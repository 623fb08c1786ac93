//! Logging: `tracing` to standard error (standard output is kept for `send`'s ids), filtered
//! by `RUST_LOG`, human-readable text by default (coloured only on a terminal) or one JSON
//! object per line with `LOG_FORMAT=json`.
//!
//! Each HTTP request is logged at INFO with target `access` (see `http::middleware::observe`), so
//! `RUST_LOG=info,access=off` silences the access log alone. In plain text (the default away
//! from a terminal) and without traces, the line is written straight, without a `tracing`
//! event (`http::middleware::access_line`), but it is the line `tracing` would write, and
//! `RUST_LOG` decides as for any other. The access log is formatted on
//! the request's thread, kept in memory and written by a thread of its own every 50 ms
//! ([`super::access_writer`]): a request never waits for standard error. If 4 MiB of access
//! lines are waiting, further ones are dropped, counted ([`access_lines_dropped`], the
//! `access_log_lines_dropped_total` metric) and reported on standard error when the process
//! ends. Every other line is written at once, on the thread that logs it, and is never
//! dropped.
//!
//! With traces exported ([`super::otel`]) the log keeps its own filter and the exporter gets
//! `traced`, whatever `RUST_LOG` says; without them the subscriber is the logger alone, as
//! it always was.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{FilterFn, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::MakeWriterExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use super::access_writer::{AccessWriter, MAX_PENDING_BYTES};
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

/// The access log's writer, once the logger is installed; and whether its lines are written
/// straight into it rather than through `tracing` ([`direct_access_log`]).
static ACCESS_LOG: OnceLock<(AccessWriter, bool)> = OnceLock::new();

/// How many access-log lines were dropped because [`MAX_PENDING_BYTES`] of them were waiting
/// for standard error (0 before the logger is installed).
pub fn access_lines_dropped() -> u64 {
    ACCESS_LOG.get().map_or(0, |(writer, _)| writer.dropped())
}

/// Where the access log's lines are written straight ([`crate::http::middleware::access_line`]),
/// bypassing `tracing`'s span and event: when the installed logger writes plain text (no
/// JSON, no colours) and exports no traces, whose line that is. `None` otherwise, and before
/// a logger is installed: then the `access` event goes through `tracing`.
pub fn direct_access_log() -> Option<&'static AccessWriter> {
    match ACCESS_LOG.get() {
        Some((writer, true)) => Some(writer),
        _ => None,
    }
}

/// The installed logger: what must be flushed when the process ends.
#[must_use = "dropping it loses the access lines not yet written"]
pub struct Logging {
    /// The trace pipeline, when traces are exported.
    traces: Option<Traces>,
    /// The access log's writer, written out at the end.
    access: AccessWriter,
}

impl Logging {
    /// Flushes the traces (blocking: call it off the runtime's threads) and the access log,
    /// then says on standard error how many access lines were dropped, if any were.
    pub fn shutdown(mut self) {
        if let Some(traces) = self.traces.take() {
            traces.shutdown();
        }
        let _ = self.access.flush_now();
        let dropped = self.access.dropped();
        if dropped > 0 {
            eprintln!(
                "warning: {dropped} access-log lines were dropped: {MAX_PENDING_BYTES} bytes \
                 of them were waiting for standard error"
            );
        }
    }
}

impl Drop for Logging {
    /// Without [`Logging::shutdown`] (a panic unwinding `main`), the access lines still
    /// waiting are written out all the same.
    fn drop(&mut self) {
        let _ = self.access.flush_now();
    }
}

/// The writer of every log line: the access log's through [`AccessWriter`], the others
/// straight to standard error; and the access log's writer, to be written out at the end.
/// `direct`: whether access lines are written straight into it ([`direct_access_log`]).
fn writer(
    direct: bool,
) -> anyhow::Result<(
    impl for<'w> MakeWriter<'w> + Send + Sync + 'static,
    AccessWriter,
)> {
    let access = AccessWriter::start()
        .map_err(|e| anyhow::anyhow!("cannot start the access log's writer thread: {e}"))?;
    // A second logger in one process (tests) is refused when installed; the first keeps
    // the count.
    let _ = ACCESS_LOG.set((access.clone(), direct));
    let writer = access
        .clone()
        .with_filter(|meta: &Metadata<'_>| meta.target() == "access")
        .or_else(std::io::stderr);
    Ok((writer, access))
}

/// Installs the global subscriber. `filter` is an EnvFilter directive such as `info`. With
/// `traces`, and if the environment asks for it ([`super::otel::requested`]), spans are
/// exported too. What is returned is to be shut down when the process ends.
pub fn init(filter: &str, format: LogFormat, traces: bool) -> anyhow::Result<Logging> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("RUST_LOG: invalid log filter {filter:?}: {e}"))?;
    let ansi = std::io::stderr().is_terminal();
    let exported = traces && super::otel::requested(|name| std::env::var(name).ok());
    // With traces exported, the access line shows the span's `otel.*` and `http.*` fields
    // too, which only `tracing` has.
    let (writer, access) = writer(format == LogFormat::Text && !ansi && !exported)?;
    if exported {
        let traces = init_with_traces(filter, format, ansi, writer)?;
        return Ok(Logging {
            traces: Some(traces),
            access,
        });
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    Ok(Logging {
        traces: None,
        access,
    })
}

/// The logger under its own filter beside the exporter under [`traced`].
fn init_with_traces(
    filter: EnvFilter,
    format: LogFormat,
    ansi: bool,
    writer: impl for<'w> MakeWriter<'w> + Send + Sync + 'static,
) -> anyhow::Result<Traces> {
    let log = tracing_subscriber::fmt::layer().with_writer(writer);
    let log = match format {
        LogFormat::Text => log.with_ansi(ansi).boxed(),
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
