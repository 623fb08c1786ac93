//! Broker faults on a three-node Apache Kafka cluster (replication factor 3,
//! `min.insync.replicas=2`): a leader killed, a rolling restart, the group's coordinator
//! killed, the whole cluster stopped. `send` produces 20,000 orders with bad messages of every
//! kind mixed in while `serve` ingests and the fault hits; each test prints what was sent,
//! stored, rejected, lost and duplicated, and how long ingest and `send` stood still.

use std::time::{Duration, SystemTime};

use crate::cluster::{Cluster, NODES};
use crate::common::counts::Counts;
use crate::common::serve::Serve;
use crate::harness::{Figures, Run};
use crate::progress::Progress;
use crate::traffic::Sending;
use crate::{FAULT_AFTER, ONE_AT_A_TIME, ORDERS};

/// The share of bad messages `send` mixes in (200 of 20,000).
const INVALID_RATIO: f64 = 0.01;
/// Partitions of the orders topic: two led by each node.
const PARTITIONS: u32 = 6;
/// How long a killed node stays down.
const DOWN_FOR: Duration = Duration::from_secs(15);
/// How long the whole cluster stays down.
const CLUSTER_DOWN_FOR: Duration = Duration::from_secs(20);
/// The role of the coordinator's node, as the kill-and-restart step names it.
const COORDINATOR: &str = "the group's coordinator";
/// How long `send` may take, outages included.
const SEND_WITHIN: Duration = Duration::from_secs(400);

/// A broker fault test under way: the cluster, the run, `serve`, the progress watch and the
/// `send` in the background.
struct Faulted {
    cluster: Cluster,
    run: Run,
    serve: Serve,
    progress: Progress,
    sending: Sending,
}

impl Faulted {
    /// The cluster up and whole, a fresh topic on it, `serve` ingesting and `send` producing
    /// at `rate` orders per second, until `FAULT_AFTER` orders are stored.
    async fn begin(rate: u32) -> Self {
        let cluster = Cluster::up().await;
        let run = Run::new(Cluster::bootstrap())
            .await
            .with_partitions(PARTITIONS);
        run.create_topic();
        cluster.wait_whole(Some(run.topic())).await;
        let serve = run.serve();
        let progress = Progress::watch(run.store());
        let sending = run.start_sending(ORDERS, rate, INVALID_RATIO);
        run.wait_stored_at_least(FAULT_AFTER).await;
        Self {
            cluster,
            run,
            serve,
            progress,
            sending,
        }
    }

    /// The moment the fault hits, and the counts then.
    async fn fault_hits(&self) -> (SystemTime, Counts) {
        (SystemTime::now(), self.run.counts().await)
    }

    /// After the fault (which hit at `fault_at`, and is over): `send` finishes (exit 0, or
    /// each message it could not deliver named), everything is handled, `serve` never
    /// exited, and the accounting holds; `extra` timings are printed with the others.
    async fn end(
        mut self,
        fault: &str,
        (fault_at, at_fault): (SystemTime, Counts),
        extra: Vec<(&'static str, Duration)>,
    ) {
        let sent = self.sending.finish(SEND_WITHIN).await;
        assert!(
            sent.succeeded || !sent.undelivered.is_empty(),
            "send failed without naming what it could not deliver: {}",
            sent.summary
        );
        assert_eq!(
            sent.undelivered.len(),
            sent.failed,
            "send named each message it could not deliver: {}",
            sent.summary
        );
        assert_eq!(sent.succeeded, sent.failed == 0, "{}", sent.summary);
        self.run.sent(&sent);
        self.run.wait_all_handled().await;
        let whole = self.cluster.wait_whole(Some(self.run.topic())).await;
        assert!(self.serve.is_running(), "serve exited during {fault}");
        let (p99, longest) = self.run.store_delays(&sent).await;
        let mut timings = vec![
            (
                "ingest paused at most",
                self.progress.longest_pause_after(fault_at),
            ),
            ("send paused at most", sent.longest_pause_after(fault_at)),
            ("ack to stored p99", p99),
            ("max", longest),
        ];
        timings.extend(extra);
        timings.push(("cluster whole again after the test's last step", whole));
        self.serve.terminate_and_expect_clean_exit().await;
        self.run
            .check(Figures::timed(fault, at_fault, timings))
            .await;
    }
}

impl Faulted {
    /// kill -9 of `node` (`role` says why it was chosen), started again `DOWN_FOR` later;
    /// then the end of the test.
    async fn kill_9_and_restart(self, node: i32, role: &str) {
        // Which node coordinates the group matters to the pause: say it either way.
        let coordinator = self.cluster.coordinator_of(self.run.group());
        let fault_at = self.fault_hits().await;
        self.cluster.kill_9(node);
        tokio::time::sleep(DOWN_FOR).await;
        self.cluster.start(node);
        let who = match (node == coordinator, role == COORDINATOR) {
            (_, true) => role.to_owned(),
            (true, false) => format!("{role}, and the group's coordinator"),
            (false, false) => format!("{role}; the group's coordinator is broker {coordinator}"),
        };
        let fault = format!("kill -9 of broker {node} ({who}), back after 15 s");
        self.end(&fault, fault_at, Vec::new()).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_broker_leading_the_most_partitions_loses_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let test = Faulted::begin(500).await;
    let leader = test.cluster.leader_of_most(test.run.topic());
    test.kill_9_and_restart(leader, "leading the most partitions")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_restart_of_the_three_brokers_loses_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let test = Faulted::begin(250).await;
    let fault_at = test.fault_hits().await;
    for node in NODES {
        test.cluster.stop(node);
        test.cluster.start(node);
        test.cluster.wait_whole(Some(test.run.topic())).await;
    }
    let took = fault_at.0.elapsed().unwrap_or_default();
    test.end(
        "rolling restart of brokers 1, 2, 3 (SIGTERM, start, wait until whole)",
        fault_at,
        vec![("the restart took", took)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_groups_coordinator_loses_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let test = Faulted::begin(500).await;
    let coordinator = test.cluster.coordinator_of(test.run.group());
    test.kill_9_and_restart(coordinator, COORDINATOR).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_cluster_stopped_for_20_seconds_loses_nothing_and_readiness_follows() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut test = Faulted::begin(500).await;
    let fault_at = test.fault_hits().await;
    let stopping = tokio::task::spawn_blocking(Cluster::stop_all);
    // Readiness's consumer check fails while no broker answers...
    let (not_ready, detail) = wait_readiness(&test.run, false, Duration::from_secs(60)).await;
    assert!(detail.starts_with("no Kafka broker answers"), "{detail}");
    stopping.await.expect("the nodes stop");
    let stopped = fault_at.0.elapsed().unwrap_or_default();
    // Down for 20 s from the moment the last node has exited.
    tokio::time::sleep(CLUSTER_DOWN_FOR).await;
    assert!(test.serve.is_running(), "serve survives the outage");
    let restart = SystemTime::now();
    let starting = tokio::task::spawn_blocking(Cluster::start_all);
    // ... and passes again once one answers.
    let (ready, _) = wait_readiness(&test.run, true, Duration::from_secs(180)).await;
    starting.await.expect("the nodes start");
    let started = restart.elapsed().unwrap_or_default();
    test.end(
        "all three brokers stopped (SIGTERM) for 20 s, then started",
        fault_at,
        vec![
            ("stopping the three took", stopped),
            ("readiness's consumer check failing after", not_ready),
            ("starting the three took", started),
            ("passing again after the start began", ready),
        ],
    )
    .await;
}

/// Polls `GET /health/ready` every 100 ms until its consumer check passes (`ok`) or fails,
/// as `ok` asks, at most `within`; returns how long that took and the check's detail. (The
/// database check may fail now and then on its own on this loaded machine: a `SELECT 1`
/// slower than 500 ms; the consumer check is what a broker outage turns.)
async fn wait_readiness(run: &Run, ok: bool, within: Duration) -> (Duration, String) {
    let started = SystemTime::now();
    loop {
        let response = run.get("/health/ready").await;
        let body: serde_json::Value = response.json().await.expect("a JSON body");
        let consumer = &body["checks"]["consumer"];
        if (consumer["status"] == "ok") == ok {
            let detail = consumer["detail"].as_str().unwrap_or_default().to_owned();
            return (started.elapsed().unwrap_or_default(), detail);
        }
        assert!(
            started.elapsed().unwrap_or_default() < within,
            "the consumer check not {} within {within:?}: {body}",
            if ok { "ok" } else { "failing" }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
