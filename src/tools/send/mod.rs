//! `send`: produces fake orders of the [generator](crate::tools::generator) (with bad messages mixed
//! in at `--invalid-ratio`), or the lines of a file, to the orders topic, keyed by
//! `order_uid`, at `--rate` messages per second or as fast as the broker takes them; it waits
//! for the broker's acknowledgements, prints the id of each delivered valid order on its own
//! line, shows a progress bar on a terminal and ends with a summary on standard error.

use std::fmt;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use futures::stream::{BoxStream, FuturesOrdered};
use futures::{Stream, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use tokio::time::Instant;

use crate::config::{KafkaArgs, SendArgs};
use crate::kafka::{KafkaContext, client_config, ensure_topic};
use crate::order::decode;
use crate::tools::generator::{OutgoingMessage, fake_messages};

/// Deliveries waiting for an acknowledgement at once.
const IN_FLIGHT: usize = 1000;

/// From how many messages on a progress bar is shown (on a terminal only).
const PROGRESS_FROM: u64 = 1000;

/// The message for one line of a `--file`: the line as it is; its key the `order_uid` of the
/// JSON object it holds, if any; and a valid order only if the contract accepts it. A valid
/// line is parsed once; only a line the contract refuses is parsed again, as any JSON, to
/// find an `order_uid` for its key.
pub fn line_message(line: Vec<u8>) -> OutgoingMessage {
    let (key, order_uid) = match decode(Some(&line)) {
        Ok(order) => (Some(order.order_uid.clone()), Some(order.order_uid)),
        Err(_) => (
            serde_json::from_slice::<Value>(&line)
                .ok()
                .and_then(|doc| doc.get("order_uid")?.as_str().map(str::to_owned)),
            None,
        ),
    };
    OutgoingMessage {
        key,
        value: line,
        order_uid,
        bad: None,
    }
}

/// Whether a line (without its line end) holds nothing but white space.
fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// The non-empty lines of `reader` as messages, without their line ends.
fn lines(
    reader: impl BufRead + Send,
) -> impl Iterator<Item = anyhow::Result<OutgoingMessage>> + Send {
    reader.split(b'\n').filter_map(|line| match line {
        Ok(mut line) => {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            (!is_blank(&line)).then(|| Ok(line_message(line)))
        }
        Err(error) => Some(Err(error).context("cannot read the file")),
    })
}

/// Messages read ahead of the producer at most.
const READ_AHEAD: usize = 1024;

/// The messages of `--file` (`-`: standard input), read on a thread of their own.
async fn file_messages(
    path: &Path,
) -> anyhow::Result<BoxStream<'static, anyhow::Result<OutgoingMessage>>> {
    if path == Path::new("-") {
        return read_messages(BufReader::new(std::io::stdin()));
    }
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?
        .into_std()
        .await;
    read_messages(BufReader::new(file))
}

/// The messages of [`lines`] of `reader`, read and parsed on a thread of their own (blocking
/// reads, such as of a slow standard input, must not hold up the runtime) and handed over
/// through a channel of [`READ_AHEAD`] messages. Reading ends at the first error, which is
/// the last item, or when the stream is dropped.
///
/// A plain thread rather than `spawn_blocking`: a read of standard input cannot be
/// cancelled, and the runtime waits for its blocking tasks when it shuts down, so a `send`
/// that stops early would hang until standard input ends.
fn read_messages(
    reader: impl BufRead + Send + 'static,
) -> anyhow::Result<BoxStream<'static, anyhow::Result<OutgoingMessage>>> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel(READ_AHEAD);
    std::thread::Builder::new()
        .name("send-reader".to_owned())
        .spawn(move || {
            for message in lines(reader) {
                let last = message.is_err();
                if sender.blocking_send(message).is_err() || last {
                    break;
                }
            }
        })
        .context("cannot start the thread that reads the file")?;
    Ok(futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).boxed())
}

/// How many messages `--file` holds (its non-blank lines, not parsed), if it is a file that
/// can be read twice.
fn count_lines(path: &Path) -> Option<u64> {
    if path == Path::new("-") {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    count_non_blank(BufReader::new(file)).ok()
}

/// How many lines of `reader` are not blank: the messages [`lines`] gives, without parsing
/// them.
fn count_non_blank(reader: impl BufRead) -> std::io::Result<u64> {
    let mut count = 0;
    for line in reader.split(b'\n') {
        if !is_blank(&line?) {
            count += 1;
        }
    }
    Ok(count)
}

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

/// The producer of `send`: every replica acknowledges, a delivery fails after `timeout`.
/// The freshness benchmark produces with it too.
pub fn producer(
    kafka: &KafkaArgs,
    timeout: Duration,
) -> anyhow::Result<FutureProducer<KafkaContext>> {
    client_config(kafka)
        .set("acks", "all")
        .set("message.timeout.ms", timeout.as_millis().to_string())
        .set("linger.ms", "5")
        .create_with_context(KafkaContext::default())
        .context("cannot create the Kafka producer")
}

/// Sends what `args` asks for. Fails, after sending all it could, if any delivery failed.
pub async fn run(args: &SendArgs) -> anyhow::Result<()> {
    // Without the topic the deliveries fail one by one, and are reported by id below.
    if let Err(error) = ensure_topic(&args.kafka).await {
        tracing::warn!("{error:#}");
    }
    let timeout = args.delivery_timeout;
    let producer = producer(&args.kafka, timeout)?;
    let (messages, total) = match &args.file {
        Some(path) => {
            let total = if std::io::stderr().is_terminal() {
                let path = path.clone();
                tokio::task::spawn_blocking(move || count_lines(&path))
                    .await
                    .ok()
                    .flatten()
            } else {
                None
            };
            (file_messages(path).await?, total)
        }
        None => (
            futures::stream::iter(fake_messages(args.count, args.seed, args.invalid_ratio))
                .map(Ok)
                .boxed(),
            Some(args.count),
        ),
    };
    let progress = progress_bar(total);
    let rate = Some(args.rate).filter(|rate| *rate > 0.0);
    let mut stdout = std::io::stdout().lock();
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

/// When message `index` is due at `rate` messages per second from `start`; `None` (send at
/// once) if that is not a time this clock can hold: a rate that is not a positive number, or
/// one so small that the wait overflows (the CLI only accepts 0 or at least
/// [`MIN_RATE`](crate::config::MIN_RATE)).
fn due_time(start: Instant, index: u64, rate: f64) -> Option<Instant> {
    let offset = Duration::try_from_secs_f64(index as f64 / rate).ok()?;
    start.checked_add(offset)
}

/// Produces `messages` to `topic`, at most [`IN_FLIGHT`] waiting for their acknowledgement,
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
                                if let Err(error) = writeln!(out, "{uid}") {
                                    out_failed = true;
                                    let error = anyhow::Error::new(error).context("cannot write to standard output");
                                    stop(&mut stopped, &mut next, &mut ended, error);
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
                let mut record = FutureRecord::<str, [u8]>::to(topic).payload(&message.value);
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
    use crate::order::canonical_json;
    use crate::tools::generator::fake_orders;

    #[test]
    fn a_file_line_is_keyed_by_its_order_uid_and_valid_only_if_the_contract_says_so() {
        let order = fake_orders(1, Some(1)).next().expect("an order");
        let json = canonical_json(&order).to_vec();
        let message = line_message(json.clone());
        assert_eq!(message.key.as_deref(), Some(order.order_uid.as_str()));
        assert_eq!(message.order_uid.as_deref(), Some(order.order_uid.as_str()));
        assert_eq!(message.value, json, "the line is sent as it is");

        let broken = br#"{"order_uid": "abc", "track_number": 5}"#.to_vec();
        let message = line_message(broken);
        assert_eq!(message.key.as_deref(), Some("abc"), "keyed though invalid");
        assert_eq!(message.order_uid, None);

        let message = line_message(b"not json at all".to_vec());
        assert_eq!((message.key, message.order_uid), (None, None));
    }

    #[test]
    fn a_file_gives_its_non_empty_lines_without_line_ends() {
        let order = fake_orders(1, Some(2)).next().expect("an order");
        let mut text = canonical_json(&order).to_vec();
        text.extend_from_slice(b"\r\n\n   \n\xff bad\n{}");
        let messages: Vec<_> = lines(&text[..])
            .collect::<anyhow::Result<_>>()
            .expect("read");
        let values: Vec<_> = messages.iter().map(|m| m.value.clone()).collect();
        assert_eq!(
            values,
            vec![
                canonical_json(&order).to_vec(),
                b"\xff bad".to_vec(),
                b"{}".to_vec()
            ]
        );
        assert_eq!(
            messages[0].order_uid.as_deref(),
            Some(order.order_uid.as_str())
        );
    }

    #[test]
    fn a_valid_line_is_keyed_by_its_decoded_order_uid() {
        // The contract tolerates a byte-order mark; a plain JSON parse does not, so a key
        // taken from a second, plain parse would be missing.
        let order = fake_orders(1, Some(4)).next().expect("an order");
        let mut line = b"\xEF\xBB\xBF".to_vec();
        line.extend_from_slice(&canonical_json(&order));
        let message = line_message(line);
        assert_eq!(message.order_uid.as_deref(), Some(order.order_uid.as_str()));
        assert_eq!(message.key, message.order_uid);
    }

    #[test]
    fn the_count_is_the_number_of_messages_the_lines_give() {
        let order = fake_orders(1, Some(3)).next().expect("an order");
        let mut text = canonical_json(&order).to_vec();
        text.extend_from_slice(b"\r\n\n \t\r\n\xff bad\nnot json\r\n{}");
        let counted = count_non_blank(&text[..]).expect("read");
        assert_eq!(counted, 4);
        assert_eq!(counted, lines(&text[..]).count() as u64);
        assert_eq!(count_non_blank(&b""[..]).expect("read"), 0);
        assert_eq!(count_non_blank(&b"\n\n  \n"[..]).expect("read"), 0);
    }

    /// A reader that hands out the chunks sent to it, blocking until the next one comes, like
    /// a slow standard input; it ends when the sender is dropped.
    struct SlowInput(std::sync::mpsc::Receiver<Vec<u8>>);

    impl std::io::Read for SlowInput {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Ok(chunk) = self.0.recv() else {
                return Ok(0);
            };
            assert!(chunk.len() <= buf.len(), "small chunks only");
            buf[..chunk.len()].copy_from_slice(&chunk);
            Ok(chunk.len())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_slow_input_does_not_hold_up_the_runtime() {
        let (input, chunks) = std::sync::mpsc::channel();
        let mut messages = read_messages(BufReader::new(SlowInput(chunks))).expect("reader");
        input
            .send(b"{\"order_uid\": \"a\"}\n".to_vec())
            .expect("send");
        let first = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the line that came")
            .expect("a message")
            .expect("read");
        assert_eq!(first.key.as_deref(), Some("a"));
        // The reader now waits for more input; the only runtime thread must stay free.
        let waited = tokio::time::timeout(Duration::from_millis(50), messages.next()).await;
        assert!(waited.is_err(), "no message yet, and the timer could fire");
        input
            .send(b"{\"order_uid\": \"b\"}".to_vec())
            .expect("send");
        drop(input);
        let rest: Vec<_> = messages.collect().await;
        assert_eq!(rest.len(), 1);
        let second = rest.into_iter().next().expect("one").expect("read");
        assert_eq!(second.key.as_deref(), Some("b"));
    }

    #[tokio::test]
    async fn a_read_error_is_the_last_item() {
        let failing = std::io::Read::chain(&b"{}\n[]\n"[..], FailingRead);
        let items: Vec<_> = read_messages(BufReader::new(failing))
            .expect("reader")
            .collect()
            .await;
        assert_eq!(items.len(), 3);
        assert!(items[..2].iter().all(Result::is_ok));
        let error = items[2].as_ref().expect_err("the read error");
        assert!(format!("{error:#}").contains("disk on fire"), "{error:#}");
    }

    /// A reader that always fails.
    struct FailingRead;

    impl std::io::Read for FailingRead {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }

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
