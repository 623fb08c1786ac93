//! The command line of the freshness benchmark: the `run` and `delete-topics` modes, the
//! options of a run and the cases it can measure.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(about = "Freshness: producer acknowledgement to the first 200 on GET /api/order/{id}")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Mode,
}

#[derive(Subcommand)]
pub enum Mode {
    /// Measures the cases against a running `serve` (and the `serve`s it starts itself).
    Run(Box<RunArgs>),
    /// Deletes the topics whose names start with a prefix.
    DeleteTopics {
        /// Bootstrap servers.
        #[arg(long, default_value = "127.0.0.1:9092")]
        brokers: String,
        /// Names start with this (at least 8 characters).
        #[arg(long)]
        prefix: String,
    },
}

#[derive(Args)]
pub struct RunArgs {
    /// Bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Base URL of the running `serve`, e.g. http://127.0.0.1:8081.
    #[arg(long)]
    pub url: String,
    /// The topic the running `serve` consumes.
    #[arg(long)]
    pub topic: String,
    /// The cases to run, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "single,after-reject,steady,fresh-topic"
    )]
    pub cases: Vec<Case>,
    /// Orders per second of `steady`.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// How long `steady` produces, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Time (poll) only every this many orders of `steady`; the others are produced alike
    /// but not polled, which divides the polling load.
    #[arg(long, default_value_t = 1)]
    pub steady_every: u32,
    /// The pid of the running `serve`, to report the CPU it used per case.
    #[arg(long)]
    pub serve_pid: Option<u32>,
    /// Orders of `single`.
    #[arg(long, default_value_t = 50)]
    pub singles: u32,
    /// Repetitions of `after-reject`.
    #[arg(long, default_value_t = 20)]
    pub rejects: u32,
    /// `serve` starts (fresh topics) of `fresh-topic`.
    #[arg(long, default_value_t = 5)]
    pub fresh_topics: u32,
    /// Idle time between two orders of `single` and `after-reject`.
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    pub gap: Duration,
    /// How often each pending order is polled.
    #[arg(long, default_value = "1ms", value_parser = humantime::parse_duration)]
    pub poll: Duration,
    /// How long an order is polled before it counts as a failure.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub give_up: Duration,
    /// The generator's seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The binary `fresh-topic` starts as `<serve-bin> serve --no-migrate`.
    #[arg(long, default_value = "target/release/order-service")]
    pub serve_bin: PathBuf,
    /// Topics and groups of `fresh-topic` are named `<prefix>fresh<i>`.
    #[arg(long, default_value = "freshness_")]
    pub prefix: String,
    /// Where `fresh-topic` writes the logs of its `serve`s and the pid file of the one running.
    #[arg(long, default_value = ".")]
    pub work: PathBuf,
    /// Writes every timed order here as CSV: case, order_uid, acknowledged and first 200 (in
    /// microseconds since the Unix epoch; the latter empty if never), 404s before, whether
    /// the 200 came from the cache.
    #[arg(long)]
    pub samples: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Case {
    Single,
    AfterReject,
    Steady,
    FreshTopic,
}

impl Case {
    pub fn name(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::AfterReject => "after-reject",
            Self::Steady => "steady",
            Self::FreshTopic => "fresh-topic",
        }
    }
}
