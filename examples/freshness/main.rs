//! The freshness benchmark of `make bench-freshness` (`scripts/bench-freshness.sh`): how long
//! an order takes from the producer's acknowledgement to its first `200` on
//! `GET /api/order/{id}` of a running `serve`.
//!
//! This example owns the traffic and the timing; the script owns the running `serve`, its
//! database and the clean-up. It produces orders of the project's generator (`fake_orders`,
//! as canonical JSON keyed by `order_uid`, with `send`'s producer settings), records the
//! instant each is acknowledged, then polls that order's URL every `--poll` (1 ms) until the
//! first `200` with the order's bytes, giving up after `--give-up` (10 s: a failure). One
//! order before the cases warms the pipeline up and is not counted. Per case it prints the
//! count, failures, p50, p99 and max (nearest rank), and what the measurement cost (requests
//! per second, CPU of this example and of `serve`):
//!
//! - `single`: one order at a time, each waited for, with `--gap` (200 ms) of idle between;
//! - `after-reject`: a message that is not JSON, keyed like the valid order that follows it
//!   (so both land in one partition, the bad one first, acknowledged before the valid one is
//!   sent); the valid one is timed;
//! - `steady`: `--rate` orders/s (1,000) for `--seconds` (10), evenly paced, every order
//!   timed (or every `--steady-every`th);
//! - `fresh-topic`: starts `serve` itself (`--serve-bin`, the environment's `DATABASE_URL`) on
//!   a topic that does not exist yet, which `serve` creates; produces one order as soon as
//!   `serve` is ready (`/health/ready`: its consumer holds the new topic's partitions); stops
//!   `serve`; once per topic (`--fresh-topics`, 5).
//!
//! It also checks the negative cache: an order polled (and answered 404) before it was
//! stored must not wait out the second that a missing id is remembered. `--samples` writes
//! every timed order as CSV, which the script joins with the database's `stored_at` to split
//! the time into before and after the storing transaction began.
//!
//! `delete-topics --prefix P` deletes the topics whose names start with `P` (the script's
//! clean-up).
//!
//! The files: `cli.rs` the command line, `timing.rs` timing one order, `cases.rs` the cases,
//! `serve.rs` the `serve`s `fresh-topic` starts, `figures.rs` what a case measured and its
//! statistics, `report.rs` the report and the CSV, `topics.rs` `delete-topics`; this one
//! runs the cases and measures each.

mod cases;
mod cli;
mod figures;
mod report;
mod serve;
mod timing;
mod topics;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use order_service::tools::generator::fake_orders;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::time::Instant;

use crate::cases::Bench;
use crate::cli::{Case, Cli, Mode, RunArgs};
use crate::figures::{Figures, cpu_seconds};
use crate::report::{Clock, print_report, write_samples};
use crate::timing::{Poller, Producer};
use crate::topics::delete_topics;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // On SIGINT or SIGTERM the run is dropped, and with it (kill_on_drop) any `serve` it started.
    tokio::select! {
        result = dispatch(cli.command) => result,
        () = terminated() => bail!("interrupted"),
    }
}

async fn dispatch(mode: Mode) -> anyhow::Result<()> {
    match mode {
        Mode::Run(args) => run(*args).await,
        Mode::DeleteTopics { brokers, prefix } => delete_topics(&brokers, &prefix).await,
    }
}

/// Resolves on SIGINT or SIGTERM (never, if they cannot be listened to).
async fn terminated() {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            if result.is_err() {
                // Without SIGINT, SIGTERM still ends the run.
                term.recv().await;
            }
        }
        _ = term.recv() => {}
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(1024)
        .build()
        .context("cannot build the HTTP client")?;
    let poller = Poller {
        client,
        base: args.url.trim_end_matches('/').to_owned(),
        every: args.poll,
        give_up: args.give_up,
        requests: Arc::new(AtomicU64::new(0)),
    };
    let producer = Arc::new(Producer::new(&args.brokers, args.give_up)?);
    let orders = Box::new(fake_orders(u64::MAX, Some(args.seed)));
    let rng = StdRng::seed_from_u64(args.seed);
    let cases = args.cases.clone();
    let mut bench = Bench {
        args,
        producer,
        poller,
        orders,
        rng,
    };
    let clock = Clock::now()?;
    bench.warm_up().await?;
    let mut figures = Vec::new();
    for case in cases {
        eprintln!("freshness: {} ...", case.name());
        let requests_before = bench.poller.requests.load(Ordering::Relaxed);
        let serve_pid = bench.args.serve_pid.filter(|_| case != Case::FreshTopic);
        let cpu_before = (
            cpu_seconds(None),
            serve_pid.and_then(|pid| cpu_seconds(Some(pid))),
        );
        let started = Instant::now();
        let samples = match case {
            Case::Single => bench.single().await?,
            Case::AfterReject => bench.after_reject().await?,
            Case::Steady => bench.steady().await?,
            Case::FreshTopic => bench.fresh_topic().await?,
        };
        figures.push(Figures {
            case,
            samples,
            elapsed: started.elapsed(),
            requests: bench.poller.requests.load(Ordering::Relaxed) - requests_before,
            cpu_self: cpu_seconds(None).zip(cpu_before.0).map(|(b, a)| b - a),
            cpu_serve: serve_pid
                .and_then(|pid| cpu_seconds(Some(pid)))
                .zip(cpu_before.1)
                .map(|(b, a)| b - a),
        });
    }
    print_report(&figures, bench.args.poll);
    if let Some(path) = &bench.args.samples {
        write_samples(path, &figures, &clock)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
