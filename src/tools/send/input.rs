//! The input of `send`: fake messages, or with `--file` each non-blank line of a file (or of
//! standard input) as a message, made on a thread of their own ahead of the producer; and the
//! count of those lines for the progress bar.

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::Context;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;

use crate::order::decode;
use crate::tools::generator::{OutgoingMessage, fake_messages};

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

/// Messages made ahead of the producer at most.
const READ_AHEAD: usize = 1024;

/// The `count` fake messages of [`fake_messages`], made on a thread of their own: making a
/// fake order (about 10 µs: `order-service generate` makes ~100,000 a second on one core)
/// costs more CPU than producing it, and on the produce loop's thread the two could not
/// overlap.
pub(super) fn fake(
    count: u64,
    seed: Option<u64>,
    invalid_ratio: f64,
) -> anyhow::Result<BoxStream<'static, anyhow::Result<OutgoingMessage>>> {
    ahead(fake_messages(count, seed, invalid_ratio).map(Ok))
}

/// The messages of `--file` (`-`: standard input), read on a thread of their own.
pub(super) async fn file_messages(
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
/// reads, such as of a slow standard input, must not hold up the runtime).
fn read_messages(
    reader: impl BufRead + Send + 'static,
) -> anyhow::Result<BoxStream<'static, anyhow::Result<OutgoingMessage>>> {
    ahead(lines(reader))
}

/// `messages`, made on a thread of their own and handed over through a channel of
/// [`READ_AHEAD`] messages. Making them ends at the first error, which is the last item, or
/// when the stream is dropped.
///
/// A plain thread rather than `spawn_blocking`: a read of standard input cannot be
/// cancelled, and the runtime waits for its blocking tasks when it shuts down, so a `send`
/// that stops early would hang until standard input ends.
fn ahead(
    messages: impl Iterator<Item = anyhow::Result<OutgoingMessage>> + Send + 'static,
) -> anyhow::Result<BoxStream<'static, anyhow::Result<OutgoingMessage>>> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel(READ_AHEAD);
    std::thread::Builder::new()
        .name("send-input".to_owned())
        .spawn(move || {
            for message in messages {
                let last = message.is_err();
                if sender.blocking_send(message).is_err() || last {
                    break;
                }
            }
        })
        .context("cannot start the thread that makes the messages")?;
    Ok(futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).boxed())
}

/// How many messages `--file` holds (its non-blank lines, not parsed), if it is a file that
/// can be read twice.
pub(super) fn count_lines(path: &Path) -> Option<u64> {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::order::canonical_json;
    use crate::tools::generator::fake_orders;

    #[test]
    fn a_file_line_is_keyed_by_its_order_uid_and_valid_only_if_the_contract_says_so() {
        let order = fake_orders(1, Some(1)).next().expect("an order");
        let json = canonical_json(&order).into_bytes();
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
        let mut text = canonical_json(&order).into_bytes();
        text.extend_from_slice(b"\r\n\n   \n\xff bad\n{}");
        let messages: Vec<_> = lines(&text[..])
            .collect::<anyhow::Result<_>>()
            .expect("read");
        let values: Vec<_> = messages.iter().map(|m| m.value.clone()).collect();
        assert_eq!(
            values,
            vec![
                canonical_json(&order).into_bytes(),
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
        line.extend_from_slice(canonical_json(&order).as_bytes());
        let message = line_message(line);
        assert_eq!(message.order_uid.as_deref(), Some(order.order_uid.as_str()));
        assert_eq!(message.key, message.order_uid);
    }

    #[test]
    fn the_count_is_the_number_of_messages_the_lines_give() {
        let order = fake_orders(1, Some(3)).next().expect("an order");
        let mut text = canonical_json(&order).into_bytes();
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
}
