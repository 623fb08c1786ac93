//! `send` in the background while a fault hits: the real binary as a child process, each id it
//! prints (an acknowledged order) timestamped as it comes, each delivery it reports as failed,
//! and its summary line.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// A `send` running in the background.
pub struct Sending {
    /// The child process.
    child: Child,
    /// Reads standard output: each acknowledged id, with when it came (taken by `finish`).
    ids: Option<JoinHandle<Vec<(SystemTime, String)>>>,
    /// Reads standard error: every line (taken by `finish`).
    errors: Option<JoinHandle<Vec<String>>>,
}

/// What a finished `send` reported.
#[derive(Debug)]
pub struct Sent {
    /// Whether it exited with 0.
    pub succeeded: bool,
    /// The ids it printed (acknowledged valid orders), with when each was printed.
    pub ids: Vec<(SystemTime, String)>,
    /// The label of each message it reported as not delivered (`not delivered: <label>: ...`).
    pub undelivered: Vec<String>,
    /// Bad messages it delivered (the `invalid` of its summary line).
    pub invalid: usize,
    /// Messages it could not deliver (the `failed` of its summary line).
    pub failed: usize,
    /// Its summary line.
    pub summary: String,
}

impl Sending {
    /// Spawns `command` (a `send`), reading what it prints as it prints it.
    pub fn start(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("send starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let ids = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .map(|id| (SystemTime::now(), id))
                .collect()
        });
        let errors = std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect()
        });
        Self {
            child,
            ids: Some(ids),
            errors: Some(errors),
        }
    }

    /// Waits for `send` to exit (at most `within`) and collects what it reported.
    pub async fn finish(mut self, within: Duration) -> Sent {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for send") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("send still running after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let ids = self
            .ids
            .take()
            .expect("finished once")
            .join()
            .expect("the stdout reader");
        let errors = self
            .errors
            .take()
            .expect("finished once")
            .join()
            .expect("the stderr reader");
        let undelivered = errors
            .iter()
            .filter_map(|line| line.strip_prefix("not delivered: "))
            .map(|rest| rest.split(": ").next().unwrap_or(rest).to_owned())
            .collect();
        let summary = errors
            .iter()
            .find(|line| line.starts_with("sent "))
            .cloned()
            .unwrap_or_else(|| panic!("no summary line from send: {errors:#?}"));
        Sent {
            succeeded: status.success(),
            ids,
            undelivered,
            invalid: count_of(&summary, "(invalid ", ')'),
            failed: count_of(&summary, "failed ", ','),
            summary,
        }
    }
}

impl Drop for Sending {
    /// A test that fails before [`Sending::finish`] leaves no `send` running behind it.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Sent {
    /// The longest time without an acknowledgement after `from`, until the last one.
    pub fn longest_pause_after(&self, from: SystemTime) -> Duration {
        longest_gap(from, self.ids.iter().map(|(at, _)| *at))
    }
}

/// The longest gap between `from` and the instants after it, and between each of them.
pub fn longest_gap(from: SystemTime, instants: impl IntoIterator<Item = SystemTime>) -> Duration {
    let mut last = from;
    let mut longest = Duration::ZERO;
    for at in instants.into_iter().filter(|at| *at >= from) {
        longest = longest.max(at.duration_since(last).unwrap_or_default());
        last = at;
    }
    longest
}

/// The count between `before` and `after` in a summary line: `sent 900 (invalid 90), failed
/// 2, ...`.
fn count_of(summary: &str, before: &str, after: char) -> usize {
    summary
        .split_once(before)
        .and_then(|(_, rest)| rest.split_once(after))
        .and_then(|(count, _)| count.parse().ok())
        .unwrap_or_else(|| panic!("no {before:?} count in {summary:?}"))
}

#[test]
fn the_counts_are_read_off_the_summary_line() {
    let summary = "sent 900 (invalid 90), failed 2, elapsed 1.50s, 600 messages/s";
    assert_eq!(count_of(summary, "(invalid ", ')'), 90);
    assert_eq!(count_of(summary, "failed ", ','), 2);
}

#[test]
fn the_longest_gap_counts_from_the_start_and_between_instants() {
    let t = SystemTime::UNIX_EPOCH;
    let ms = Duration::from_millis;
    let instants = [t + ms(100), t + ms(150), t + ms(900), t + ms(950)];
    assert_eq!(longest_gap(t, instants), ms(750));
    assert_eq!(longest_gap(t + ms(925), instants), ms(25));
}
