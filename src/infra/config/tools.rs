//! The settings of the tools: `generate`, `replay-rejected` and `send`, and the parsers only
//! they use.

use std::time::Duration;

use clap::Args;

use super::parse::parse_duration;
use super::{DatabaseArgs, KafkaArgs};
use crate::order::RejectKind;
use crate::store::{DEFAULT_REPLAY_LIMIT, ReplayFilter};

/// Settings of `generate`.
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// How many orders to print.
    #[arg(short = 'n', long = "count", default_value_t = 10)]
    pub count: u64,
    /// Seed for the fake data: the same seed gives the same orders as `send --seed`.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Settings of `replay-rejected`.
#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["id", "all"]))]
pub struct ReplayArgs {
    /// Database settings.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Replay the rejection with this id (the `rejected.id` column).
    #[arg(long)]
    pub id: Option<i64>,
    /// Replay every rejection not replayed yet (that the filters select).
    #[arg(long)]
    pub all: bool,
    /// Say what would be stored, and store or mark nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only rejections with this reason code (repeatable, or a comma list): empty_message,
    /// too_large, not_utf8, malformed_json, not_object, unknown_field, missing_field,
    /// duplicate_field, type_error, invalid_value, inconsistent, conflict, store_refused.
    #[arg(long, value_name = "CODE", value_delimiter = ',', value_parser = parse_reason_code,
          conflicts_with = "id")]
    pub reason: Vec<String>,
    /// Only rejections recorded at or after this RFC 3339 time (`2026-12-03T10:00:00Z`).
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339, conflicts_with = "id")]
    pub since: Option<String>,
    /// Only rejections recorded before this RFC 3339 time.
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339, conflicts_with = "id")]
    pub until: Option<String>,
    /// At most this many rejections in one run; the summary says how many more are pending.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_REPLAY_LIMIT,
          value_parser = clap::value_parser!(i64).range(1..=1_000_000), conflicts_with = "id")]
    pub limit: i64,
}

impl ReplayArgs {
    /// The rejections these settings select.
    pub fn filter(&self) -> ReplayFilter {
        ReplayFilter {
            id: if self.all { None } else { self.id },
            reasons: self.reason.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            limit: self.limit,
        }
    }
}

/// A rejection's reason code, one of [`RejectKind::ALL`]'s.
fn parse_reason_code(value: &str) -> Result<String, String> {
    let code = value.trim();
    if RejectKind::ALL.iter().any(|kind| kind.code() == code) {
        Ok(code.to_owned())
    } else {
        let codes: Vec<&str> = RejectKind::ALL.iter().map(|kind| kind.code()).collect();
        Err(format!("not a reason code; one of {}", codes.join(", ")))
    }
}

/// An RFC 3339 timestamp, kept as RFC 3339 text (PostgreSQL reads it as `timestamptz`).
fn parse_rfc3339(value: &str) -> Result<String, String> {
    chrono::DateTime::parse_from_rfc3339(value.trim())
        .map(|time| time.to_rfc3339())
        .map_err(|e| format!("not an RFC 3339 time like 2026-12-03T10:00:00Z: {e}"))
}

/// Settings of `send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Kafka settings.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// How many messages to send.
    #[arg(short = 'n', long = "count", default_value_t = 10)]
    pub count: u64,
    /// Seed for the fake data: the same seed sends the same messages.
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long one delivery may wait for the broker before it counts as failed.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub delivery_timeout: Duration,
    /// Messages per second, paced evenly: 0 (as fast as the broker takes them) or at least
    /// 0.001.
    #[arg(long, value_name = "R", default_value_t = 0.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Fraction of the messages that are bad (0.0..=1.0), each kind of bad message the
    /// contract defines in turn.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = parse_ratio)]
    pub invalid_ratio: f64,
    /// Send each non-empty line of this file (`-`: standard input) as it is, instead of fake
    /// orders.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["count", "seed", "invalid_ratio"])]
    pub file: Option<std::path::PathBuf>,
}

/// The slowest `--rate` other than 0: one message every 1000 seconds.
pub const MIN_RATE: f64 = 0.001;

/// A rate in messages per second: 0 (unlimited) or a finite number of at least [`MIN_RATE`].
fn parse_rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(rate) if rate == 0.0 || (rate.is_finite() && rate >= MIN_RATE) => Ok(rate),
        _ => Err(format!(
            "must be 0 (unlimited) or a number of messages per second, at least {MIN_RATE}"
        )),
    }
}

/// A fraction: a number in 0.0..=1.0.
fn parse_ratio(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err("must be a fraction between 0.0 and 1.0".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::config::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("order-service").chain(args.iter().copied()))
    }

    #[test]
    fn send_checks_its_rate_ratio_and_file_flags() {
        let Ok(Cli {
            command: Command::Send(send),
            ..
        }) = parse(&["send", "--rate", "250", "--invalid-ratio", "0.1"])
        else {
            panic!("send must parse");
        };
        assert_eq!((send.rate, send.invalid_ratio), (250.0, 0.1));
        for bad in [
            &["send", "--rate", "-1"][..],
            &["send", "--rate", "fast"],
            &["send", "--invalid-ratio", "1.5"],
            &["send", "--file", "orders.jsonl", "-n", "5"],
            &["send", "--file", "orders.jsonl", "--invalid-ratio", "0.5"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(parse(&["send", "--file", "orders.jsonl"]).is_ok());
    }

    fn replay_args(args: &[&str]) -> Result<ReplayArgs, clap::Error> {
        let all = std::iter::once("replay-rejected").chain(args.iter().copied());
        match parse(&all.collect::<Vec<_>>())?.command {
            Command::ReplayRejected(replay) => Ok(replay),
            other => panic!("not replay-rejected: {other:?}"),
        }
    }

    #[test]
    fn replay_takes_reasons_times_and_a_limit() {
        let args = replay_args(&[
            "--all",
            "--reason",
            "conflict,invalid_value",
            "--reason",
            "store_refused",
            "--since",
            "2026-12-03T10:00:00+01:00",
            "--dry-run",
        ])
        .expect("parses");
        let filter = args.filter();
        assert_eq!(
            filter.reasons,
            ["conflict", "invalid_value", "store_refused"]
        );
        assert_eq!(filter.since.as_deref(), Some("2026-12-03T10:00:00+01:00"));
        assert_eq!((filter.id, filter.until, filter.limit), (None, None, 1000));
        assert!(args.dry_run);
        let one = replay_args(&["--id", "7"]).expect("parses").filter();
        assert_eq!(one, ReplayFilter::one(7));
        for bad in [
            &["--all", "--reason", "typo"][..],
            &["--all", "--since", "yesterday"],
            &["--all", "--until", "2026-12-03"],
            &["--all", "--limit", "0"],
            &["--id", "7", "--reason", "conflict"],
            &["--dry-run"],
        ] {
            assert!(replay_args(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn rate_is_zero_or_at_least_the_minimum() {
        for (value, want) in [("0", 0.0), ("0.001", 0.001), ("1e-3", 0.001), ("2.5", 2.5)] {
            assert_eq!(parse_rate(value), Ok(want), "{value}");
        }
        for value in ["1e-300", "0.0009", "-1", "inf", "NaN", "1e400", "fast", ""] {
            assert!(parse_rate(value).is_err(), "{value} must be refused");
            let error = parse(&["send", &format!("--rate={value}")])
                .expect_err("refused on the command line too")
                .to_string();
            assert!(error.contains("--rate"), "{value}: {error}");
        }
    }
}
