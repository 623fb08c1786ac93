//! The produce loop of `send`: messages paced at a rate (or as fast as the broker takes
//! them), at most `IN_FLIGHT` (1,000) waiting for their acknowledgement, each delivered valid
//! order's id written out, and the first error stopping the intake without losing those in
//! flight.

use std::io::Write;
use std::time::Duration;

use futures::stream::FuturesOrdered;
use futures::{Stream, StreamExt};
use indicatif::ProgressBar;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::time::Instant;

use super::Summary;
use crate::infra::kafka::KafkaContext;
use crate::infra::kafka_trace::new_trace_headers;
use crate::tools::generator::OutgoingMessage;

/// Deliveries waiting for an acknowledgement at once.
const IN_FLIGHT: usize = 1000;

/// The longest a delivered order's id waits in `out`'s buffer when more deliveries are
/// coming (it is flushed at once when none is in flight).
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// When message `index` is due at `rate` messages per second from `start`; `None` (send at
/// once) if that is not a time this clock can hold: a rate that is not a positive number, or
/// one so small that the wait overflows (the CLI only accepts 0 or at least
/// [`MIN_RATE`](crate::infra::config::MIN_RATE)).
fn due_time(start: Instant, index: u64, rate: f64) -> Option<Instant> {
    let offset = Duration::try_from_secs_f64(index as f64 / rate).ok()?;
    start.checked_add(offset)
}

/// Produces `messages` to `topic`, at most `IN_FLIGHT` (1,000) waiting for their acknowledgement,
/// message `i` not before `i / rate` seconds from the start. Writes the id of each delivered
/// valid order to `out` and reports each failed delivery on standard error.
///
/// If taking a message from `messages` or writing to `out` fails, it takes no more messages
/// but still waits for those in flight and reports them (to `out` only while writing to it
/// works); it returns the summary of all it sent, with that first error.
pub async fn produce(
    producer: &FutureProducer<KafkaContext>,
    topic: &str,
    mut messages: impl Stream<Item = anyhow::Result<OutgoingMessage>> + Unpin,
    rate: Option<f64>,
    progress: &ProgressBar,
    out: &mut impl Write,
) -> (Summary, anyhow::Result<()>) {
    let start = Instant::now();
    let mut summary = Summary::default();
    let mut in_flight = FuturesOrdered::new();
    let mut index: u64 = 0;
    // The message to send next, taken from `messages` ahead of its time.
    let mut next = None;
    let mut ended = false;
    // Why it stopped taking messages early, and whether `out` still works.
    let mut stopped: Option<anyhow::Error> = None;
    let mut out_failed = false;
    let mut flushed = Instant::now();
    loop {
        let due = rate.and_then(|rate| due_time(start, index, rate));
        let can_send = next.is_some() && in_flight.len() < IN_FLIGHT;
        tokio::select! {
            biased;
            Some((label, valid_uid, delivered)) = in_flight.next(), if !in_flight.is_empty() => {
                progress.inc(1);
                match delivered {
                    Ok(()) => {
                        summary.sent += 1;
                        match valid_uid {
                            Some(uid) if !out_failed => {
                                let flush = in_flight.is_empty() || flushed.elapsed() >= FLUSH_EVERY;
                                if let Err(error) = write_id(out, &uid, flush) {
                                    out_failed = true;
                                    let error = anyhow::Error::new(error).context("cannot write to standard output");
                                    stop(&mut stopped, &mut next, &mut ended, error);
                                } else if flush {
                                    flushed = Instant::now();
                                }
                            }
                            Some(_) => {}
                            None => summary.invalid += 1,
                        }
                    }
                    Err(reason) => {
                        summary.failed += 1;
                        progress.suspend(|| eprintln!("not delivered: {label}: {reason}"));
                    }
                }
            }
            item = messages.next(), if next.is_none() && !ended => match item {
                Some(Ok(message)) => next = Some(message),
                Some(Err(error)) => stop(&mut stopped, &mut next, &mut ended, error),
                None => ended = true,
            },
            () = async {
                if let Some(due) = due {
                    tokio::time::sleep_until(due).await;
                }
            }, if can_send => {
                let Some(message) = next.take() else { continue };
                let label = message
                    .order_uid
                    .clone()
                    .or_else(|| message.key.clone())
                    .unwrap_or_else(|| format!("message {index}"));
                let mut record = FutureRecord::<str, [u8]>::to(topic)
                    .payload(&message.value)
                    .headers(new_trace_headers());
                if let Some(key) = &message.key {
                    record = record.key(key.as_str());
                }
                let delivery = producer.send_result(record).map_err(|(error, _)| error);
                let valid_uid = message.order_uid;
                in_flight.push_back(async move {
                    let delivered = match delivery {
                        Ok(delivery) => match delivery.await {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err((error, _))) => Err(error.to_string()),
                            Err(_) => Err("the producer was dropped".to_owned()),
                        },
                        Err(error) => Err(error.to_string()),
                    };
                    (label, valid_uid, delivered)
                });
                index += 1;
            }
            else => break,
        }
    }
    if !out_failed && let Err(error) = out.flush() {
        let error = anyhow::Error::new(error).context("cannot write to standard output");
        stop(&mut stopped, &mut next, &mut ended, error);
    }
    summary.elapsed = start.elapsed();
    (summary, stopped.map_or(Ok(()), Err))
}

/// Writes a delivered order's id to `out`, then flushes it if `flush`.
fn write_id(out: &mut impl Write, uid: impl std::fmt::Display, flush: bool) -> std::io::Result<()> {
    writeln!(out, "{uid}")?;
    if flush { out.flush() } else { Ok(()) }
}

/// Stops [`produce`] taking messages, for `error` (kept if it is the first).
fn stop(
    stopped: &mut Option<anyhow::Error>,
    next: &mut Option<OutgoingMessage>,
    ended: &mut bool,
    error: anyhow::Error,
) {
    *next = None;
    *ended = true;
    stopped.get_or_insert(error);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::generator::fake_orders;

    /// A producer to an in-process mock broker of librdkafka's.
    fn mock_producer() -> FutureProducer<KafkaContext> {
        rdkafka::ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .set("message.timeout.ms", "10000")
            .create_with_context(KafkaContext::default())
            .expect("a producer to the mock broker")
    }

    /// An output that refuses every write, like a full disk or a closed pipe.
    struct BrokenOut;

    impl Write for BrokenOut {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("out is broken"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::other("out is broken"))
        }
    }

    #[tokio::test]
    async fn a_read_error_stops_taking_messages_but_reports_those_in_flight() {
        let producer = mock_producer();
        let orders: Vec<_> = fake_orders(3, Some(31)).collect();
        let messages = futures::stream::iter(vec![
            Ok(OutgoingMessage::valid(&orders[0])),
            Ok(OutgoingMessage::valid(&orders[1])),
            Err(anyhow::anyhow!("the file broke")),
            Ok(OutgoingMessage::valid(&orders[2])),
        ]);
        let mut out = Vec::new();
        let (summary, stopped) = produce(
            &producer,
            "orders",
            messages,
            None,
            &ProgressBar::hidden(),
            &mut out,
        )
        .await;
        let error = stopped.expect_err("the read error is returned");
        assert_eq!(error.to_string(), "the file broke");
        assert_eq!((summary.sent, summary.failed), (2, 0), "{summary}");
        let printed = String::from_utf8(out).expect("UTF-8");
        assert_eq!(
            printed,
            format!("{}\n{}\n", orders[0].order_uid, orders[1].order_uid),
            "the ids of the two sent before the error, and not the third"
        );
    }

    #[tokio::test]
    async fn a_write_error_stops_taking_messages_but_waits_for_those_in_flight() {
        let producer = mock_producer();
        let taken = std::sync::atomic::AtomicU64::new(0);
        let messages = futures::stream::iter(fake_orders(5000, Some(32)))
            .inspect(|_| {
                taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
            .map(|order| Ok(OutgoingMessage::valid(&order)));
        let (summary, stopped) = produce(
            &producer,
            "orders",
            messages,
            None,
            &ProgressBar::hidden(),
            &mut BrokenOut,
        )
        .await;
        let error = stopped.expect_err("the write error is returned");
        assert_eq!(
            format!("{error:#}"),
            "cannot write to standard output: out is broken"
        );
        let taken = taken.load(std::sync::atomic::Ordering::Relaxed);
        assert!(summary.sent > 0, "{summary}");
        assert_eq!(summary.failed, 0, "{summary}");
        assert!(taken < 5000, "it stopped taking messages: {taken}");
        // Every message sent was waited for; at most the one taken ahead was not sent.
        assert!(
            (summary.sent..=summary.sent + 1).contains(&taken),
            "{taken} taken, {summary}"
        );
    }

    #[test]
    fn an_id_is_flushed_only_when_asked() {
        let mut out = std::io::BufWriter::new(Vec::new());
        write_id(&mut out, "a", false).expect("written");
        assert!(out.get_ref().is_empty(), "kept in the buffer");
        write_id(&mut out, "b", true).expect("written");
        assert_eq!(out.get_ref().as_slice(), b"a\nb\n");
    }

    #[test]
    fn a_due_time_that_cannot_be_held_does_not_panic() {
        let start = Instant::now();
        assert_eq!(
            due_time(start, 10, 4.0),
            Some(start + Duration::from_millis(2500))
        );
        assert_eq!(due_time(start, 0, 1e-300), Some(start), "0 / rate is 0");
        for rate in [1e-300, 0.0, -1.0, f64::NAN] {
            assert_eq!(due_time(start, 1, rate), None, "{rate}");
        }
        // 2^63 seconds: a Duration, but beyond the clock.
        assert_eq!(due_time(start, u64::MAX, 2.0), None);
    }
}
