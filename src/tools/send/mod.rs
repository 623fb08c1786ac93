//! `send`: produces fake orders of the [generator](crate::tools::generator) (with bad
//! messages mixed in at `--invalid-ratio`), or the lines of a file, to the orders topic,
//! keyed by `order_uid`, at `--rate` messages per second or as fast as the broker takes them;
//! it waits for the broker's acknowledgements, prints the id of each delivered valid order on
//! its own line, shows a progress bar on a terminal and ends with a summary on standard
//! error.
//!
//! This file owns the command (its producer, progress bar and summary); `input.rs` reads a
//! `--file`, `produce.rs` paces and bounds the deliveries.

mod input;
mod produce;

use std::fmt;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use rdkafka::producer::FutureProducer;

use crate::infra::config::{KafkaArgs, SendArgs};
use crate::infra::kafka::{KafkaContext, ensure_topic, producer_config, with_extra_properties};
use crate::infra::kafka_probe::{Access, check_access};

pub use input::line_message;
pub use produce::produce;

/// From how many messages on a progress bar is shown (on a terminal only).
const PROGRESS_FROM: u64 = 1000;

/// What one `send` did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Messages the broker acknowledged.
    pub sent: u64,
    /// Messages that were not delivered.
    pub failed: u64,
    /// Acknowledged messages that carry no new valid order (bad ones and conflicts).
    pub invalid: u64,
    /// From the first message to the last acknowledgement.
    pub elapsed: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            self.sent as f64 / seconds
        } else {
            0.0
        };
        write!(
            f,
            "sent {} (invalid {}), failed {}, elapsed {seconds:.2}s, {rate:.0} messages/s",
            self.sent, self.invalid, self.failed
        )
    }
}

/// A progress bar on standard error for `total` messages, when there are many and standard
/// error is a terminal; a hidden one otherwise.
fn progress_bar(total: Option<u64>) -> ProgressBar {
    match total {
        Some(total) if total >= PROGRESS_FROM && std::io::stderr().is_terminal() => {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{bar:30} {human_pos}/{human_len} {rate:>8} msg/s, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("rate", |state: &ProgressState, out: &mut dyn fmt::Write| {
                let _ = write!(out, "{:.0}", state.per_sec());
            });
            bar.set_style(style);
            bar
        }
        _ => ProgressBar::hidden(),
    }
}

/// The producer of `send`: the service's producer settings ([`producer_config`]: idempotent,
/// every in-sync replica acknowledges, a delivery fails after `timeout`), lingering 5 ms to
/// batch. The freshness benchmark produces with it too.
pub fn producer(
    kafka: &KafkaArgs,
    timeout: Duration,
) -> anyhow::Result<FutureProducer<KafkaContext>> {
    let mut config = producer_config(kafka, timeout);
    config.set("linger.ms", "5");
    with_extra_properties(&mut config, kafka)
        .create_with_context(KafkaContext::default())
        .context("cannot create the Kafka producer")
}

/// Sends what `args` asks for. Fails, after sending all it could, if any delivery failed.
pub async fn run(args: &SendArgs) -> anyhow::Result<()> {
    // Settings that cannot work, refused credentials, a failed TLS handshake or a bad
    // property stop `send` here.
    args.kafka.security.validate()?;
    match check_access(&args.kafka).await? {
        Access::Reached => {
            // Without the topic the deliveries fail one by one, and are reported by id below.
            if let Err(error) = ensure_topic(&args.kafka).await {
                tracing::warn!("{error:#}");
            }
        }
        Access::Unreached(last) => tracing::warn!(
            "cannot reach Kafka at {} (KAFKA_BROKERS){}; sending anyway",
            args.kafka.kafka_brokers,
            last.map(|e| format!(": {e}")).unwrap_or_default()
        ),
    }
    let timeout = args.delivery_timeout;
    let producer = producer(&args.kafka, timeout)?;
    let (messages, total) = match &args.file {
        Some(path) => {
            let total = if std::io::stderr().is_terminal() {
                let path = path.clone();
                tokio::task::spawn_blocking(move || input::count_lines(&path))
                    .await
                    .ok()
                    .flatten()
            } else {
                None
            };
            (input::file_messages(path).await?, total)
        }
        None => (
            input::fake(args.count, args.seed, args.invalid_ratio)?,
            Some(args.count),
        ),
    };
    let progress = progress_bar(total);
    let rate = Some(args.rate).filter(|rate| *rate > 0.0);
    // Buffered (`produce` flushes it at least every `FLUSH_EVERY`): standard output is
    // line-buffered, one write per id.
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let result = produce(
        &producer,
        &args.kafka.kafka_topic,
        messages,
        rate,
        &progress,
        &mut stdout,
    )
    .await;
    progress.finish_and_clear();
    let (summary, stopped) = result;
    eprintln!("{summary}");
    stopped?;
    if summary.failed > 0 {
        anyhow::bail!(
            "{} of {} orders were not delivered",
            summary.failed,
            summary.sent + summary.failed
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_every_figure() {
        let summary = Summary {
            sent: 900,
            failed: 2,
            invalid: 90,
            elapsed: Duration::from_millis(1500),
        };
        assert_eq!(
            summary.to_string(),
            "sent 900 (invalid 90), failed 2, elapsed 1.50s, 600 messages/s"
        );
    }
}
