//! Where the access log's lines go: appended to one buffer in memory by the thread that logs
//! them, and written to standard error at least every [`FLUSH_INTERVAL`] by a thread of its
//! own, many lines in one write. A request never waits for standard error, and hands its line
//! over without a wake-up, a channel or an allocation.
//!
//! Why not `tracing-appender`'s non-blocking writer: it sends each line as a `Vec` through a
//! channel to its thread, which, keeping up, finds its queue empty after nearly every line,
//! so that each request cost a `write(2)` there and the logging threads a futex wake-up to
//! rouse it again (strace of a hit run: 0.6 writes and 0.4 wake-ups a request).
//!
//! If the lines waiting reach [`MAX_PENDING_BYTES`] (standard error not keeping up), further
//! lines are dropped and counted ([`AccessWriter::dropped`]), never waited for. Lines are
//! whole (the logger writes each formatted line at once) and written under standard error's
//! lock, so that the process's other log lines never land inside one.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// The longest an access line waits in memory.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// How many bytes of access lines may wait for standard error before further lines are
/// dropped: about 16,000 lines, seconds of a full load.
pub const MAX_PENDING_BYTES: usize = 4 * 1024 * 1024;

/// The access log's writer, for the logger ([`MakeWriter`]). Cheap to clone: clones share one
/// buffer, written out by one flusher thread, which ends with the last clone.
#[derive(Clone, Debug)]
pub struct AccessWriter(Arc<Shared>);

/// What the logging threads and the flusher share.
#[derive(Debug)]
struct Shared {
    /// The lines not yet written.
    pending: Mutex<Vec<u8>>,
    /// The lines being written, swapped with `pending`; held while writing, so that one flush
    /// writes at a time, in order.
    writing: Mutex<Vec<u8>>,
    /// Lines dropped because `pending` was full.
    dropped: AtomicU64,
    /// The most bytes `pending` holds.
    max_pending: usize,
}

impl AccessWriter {
    /// The writer, with its flusher thread.
    pub fn start() -> io::Result<Self> {
        let writer = Self::unstarted(MAX_PENDING_BYTES);
        let shared = Arc::downgrade(&writer.0);
        thread::Builder::new()
            .name("access-log".into())
            .spawn(move || flush_every_interval(&shared))?;
        Ok(writer)
    }

    /// A writer holding at most `max_pending` bytes, with no flusher thread.
    fn unstarted(max_pending: usize) -> Self {
        Self(Arc::new(Shared {
            pending: Mutex::new(Vec::new()),
            writing: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            max_pending,
        }))
    }

    /// Writes out every line waiting, now.
    pub fn flush_now(&self) -> io::Result<()> {
        self.0.write_out(&mut io::stderr().lock())
    }

    /// Keeps one whole `line` to be written, or drops and counts it if too many bytes are
    /// waiting.
    pub fn push_line(&self, line: &[u8]) {
        self.0.push(line);
    }

    /// How many lines were dropped because too many bytes were waiting.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
impl AccessWriter {
    /// A writer with no flusher thread, for tests elsewhere to read what was written to it.
    pub(crate) fn unstarted_for_tests() -> Self {
        Self::unstarted(MAX_PENDING_BYTES)
    }

    /// The lines waiting, taken out.
    pub(crate) fn pending_for_tests(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.0.write_out(&mut out).expect("a Vec takes every byte");
        out
    }
}

impl Shared {
    /// Keeps `line` to be written, or drops and counts it if the buffer is full.
    fn push(&self, line: &[u8]) {
        let mut pending = lock(&self.pending);
        if pending.len() + line.len() > self.max_pending {
            drop(pending);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            pending.extend_from_slice(line);
        }
    }

    /// Writes every line waiting to `out`, outside the lock the logging threads take.
    fn write_out(&self, out: &mut impl Write) -> io::Result<()> {
        let mut writing = lock(&self.writing);
        std::mem::swap(&mut *writing, &mut *lock(&self.pending));
        if writing.is_empty() {
            return Ok(());
        }
        let written = out.write_all(&writing).and_then(|()| out.flush());
        // Kept or not, the lines are gone: the buffer's memory is kept for the next ones.
        writing.clear();
        written
    }
}

impl<'a> MakeWriter<'a> for AccessWriter {
    type Writer = AccessLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        AccessLine(&self.0)
    }
}

/// One line being logged, into the shared buffer.
#[derive(Debug)]
pub struct AccessLine<'a>(&'a Shared);

impl Write for AccessLine<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }

    /// Nothing: the flusher thread writes within [`FLUSH_INTERVAL`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The flusher thread: every [`FLUSH_INTERVAL`], writes out what is waiting, until the writer
/// is gone.
fn flush_every_interval(shared: &Weak<Shared>) {
    loop {
        thread::sleep(FLUSH_INTERVAL);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        // Standard error failing has nowhere to be reported; the next lines are tried anyway.
        let _ = shared.write_out(&mut io::stderr().lock());
    }
}

/// A buffer, also after a panic while it was held (it holds bytes only).
fn lock(buffer: &Mutex<Vec<u8>>) -> MutexGuard<'_, Vec<u8>> {
    buffer.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wait_in_order_until_written_out_whole() {
        let writer = AccessWriter::unstarted(1024);
        writer.make_writer().write_all(b"first\n").expect("kept");
        writer.make_writer().write_all(b"second\n").expect("kept");
        let mut out = Vec::new();
        writer.0.write_out(&mut out).expect("written");
        assert_eq!(out, b"first\nsecond\n");
        writer.0.write_out(&mut out).expect("nothing to write");
        assert_eq!(out, b"first\nsecond\n", "each line written once");
    }

    #[test]
    fn lines_past_the_bound_are_dropped_and_counted_whole() {
        let writer = AccessWriter::unstarted(10);
        for line in [&b"12345\n"[..], b"67890\n", b"abc\n"] {
            writer
                .make_writer()
                .write_all(line)
                .expect("never an error");
        }
        let mut out = Vec::new();
        writer.0.write_out(&mut out).expect("written");
        assert_eq!(
            out, b"12345\nabc\n",
            "the line that did not fit is dropped whole"
        );
        assert_eq!(writer.dropped(), 1);
        writer
            .make_writer()
            .write_all(b"67890\n")
            .expect("room again");
        writer.0.write_out(&mut out).expect("written");
        assert_eq!(out, b"12345\nabc\n67890\n");
    }
}
