//! One fault test's run: a fresh database, topic and group, the messages sent to it with the
//! real binary (before `serve` starts, or while it runs), waiting for them to be handled, and
//! the final accounting of sent, stored, rejected, lost, duplicated. One concern, some 400
//! lines: the accounting needs every field of the run.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

use order_service::infra::config::GroupProtocol;
use order_service::store::Store;

use crate::common::binary;
use crate::common::counts::{Counts, counts, try_counts};
use crate::common::database::{create_migrated, database_url, drop_database};
use crate::common::kafka::{brokers, produce, producer};
use crate::common::names::Names;
use crate::common::serve::Serve;
use crate::traffic::{Sending, Sent};

/// How long a run may take to handle everything after a restart.
const HANDLE_ALL_WITHIN: Duration = Duration::from_secs(240);

/// One test's topic, database and group, and what was sent to it.
pub struct Run {
    /// The database's, topics' and group's names.
    names: Names,
    /// The database URL.
    database_url: String,
    /// Kafka bootstrap servers.
    brokers: String,
    /// The HTTP port `serve` listens on.
    port: u16,
    /// The ids `send` printed.
    sent_ids: Vec<String>,
    /// Bad messages produced (by the test itself and by `send`).
    bad: usize,
    /// Whether `send` mixed bad messages in (conflicts among them).
    mixed: bool,
    /// What `send` reported it could not deliver (each may or may not have been written).
    undelivered: Vec<String>,
    /// For assertions.
    store: Store,
    /// How `serve` joins its consumer group.
    membership: Membership,
    /// The group protocol `serve` uses.
    protocol: GroupProtocol,
    /// Partitions of the orders topic, if not the default.
    partitions: Option<u32>,
}

/// How `serve` joins its consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// A fixed `KAFKA_GROUP_INSTANCE_ID`: a restart takes the partitions back at once.
    Static,
    /// No instance id: a restart after a crash waits for the old session to expire.
    Dynamic,
}

/// The consumer group session timeout `serve` runs with in the fault tests (its default).
pub const SESSION_TIMEOUT: &str = "10s";

/// What a fault test reports.
pub struct Figures {
    /// Which fault.
    fault: String,
    /// Counts when the fault hit.
    at_fault: Counts,
    /// What was timed, each with what it means ("ingest resumed after").
    timings: Vec<(&'static str, Duration)>,
}

impl Figures {
    /// The figures of a fault that stopped ingest: from the restart (or the database's
    /// return), the time to the first message handled and to everything handled.
    pub fn new(
        fault: impl Into<String>,
        at_fault: Counts,
        resumed: Duration,
        recovered: Duration,
    ) -> Self {
        Self::timed(
            fault,
            at_fault,
            vec![
                ("ingest resumed after", resumed),
                ("everything handled after", recovered),
            ],
        )
    }

    /// The figures of a fault, with `timings`.
    pub fn timed(
        fault: impl Into<String>,
        at_fault: Counts,
        timings: Vec<(&'static str, Duration)>,
    ) -> Self {
        Self {
            fault: fault.into(),
            at_fault,
            timings,
        }
    }
}

impl Run {
    /// A fresh database, topic and group; `bad` poison messages, then `orders` orders sent
    /// with the real `send`, all on the tests' broker.
    pub async fn prepare(orders: usize, bad: usize) -> Self {
        let mut run = Self::new(brokers()).await;
        run.produce_bad(bad).await;
        run.sent_ids = run.send(orders);
        assert_eq!(run.sent_ids.len(), orders, "send printed one id per order");
        run
    }

    /// A fresh database, topic and group on `brokers`, nothing sent yet.
    pub async fn new(brokers: String) -> Self {
        let names = Names::unique("ordertest_fault");
        let database_url = database_url(&names.name);
        let store = create_migrated(&database_url).await;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Self {
            names,
            database_url,
            brokers,
            port,
            sent_ids: Vec::new(),
            bad: 0,
            mixed: false,
            undelivered: Vec::new(),
            store,
            membership: Membership::Static,
            protocol: GroupProtocol::Classic,
            partitions: None,
        }
    }

    /// The same run with `serve` joining its group as `membership` says.
    pub fn with_membership(mut self, membership: Membership) -> Self {
        self.membership = membership;
        self
    }

    /// The same run with `serve` in a group of `protocol`.
    pub fn with_protocol(mut self, protocol: GroupProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The same run with an orders topic of `partitions` partitions.
    pub fn with_partitions(mut self, partitions: u32) -> Self {
        self.partitions = Some(partitions);
        self
    }

    /// The orders topic.
    pub fn topic(&self) -> &str {
        &self.names.topic
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.names.group
    }

    /// The store, to watch the counts.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The built binary running `subcommand` on this run's database, topics and group.
    fn command(&self, subcommand: &str) -> Command {
        let mut command = binary::command(subcommand);
        let instance_id = match self.membership {
            Membership::Static => format!("{}_instance", self.names.name),
            Membership::Dynamic => String::new(),
        };
        command
            .env("DATABASE_URL", &self.database_url)
            .env("KAFKA_BROKERS", &self.brokers)
            .env("KAFKA_TOPIC", &self.names.topic)
            .env("KAFKA_DLQ_TOPIC", &self.names.dlq_topic)
            .env("KAFKA_GROUP_ID", &self.names.group)
            .env("KAFKA_GROUP_INSTANCE_ID", instance_id)
            .env("KAFKA_SESSION_TIMEOUT", SESSION_TIMEOUT)
            .env("KAFKA_GROUP_PROTOCOL", self.protocol.as_str())
            .env("HTTP_ADDR", format!("127.0.0.1:{}", self.port))
            .env("RUST_LOG", "info");
        if let Some(partitions) = self.partitions {
            command.env("KAFKA_TOPIC_PARTITIONS", partitions.to_string());
        }
        command
    }

    /// Creates the orders topic (`send -n 0`) unless it exists.
    pub fn create_topic(&self) {
        let status = self
            .command("send")
            .args(["-n", "0"])
            .status()
            .expect("send runs");
        assert!(status.success(), "send -n 0 creates the topic");
    }

    /// `bad` poison messages, created with the topic by `send` if it is missing.
    async fn produce_bad(&mut self, bad: usize) {
        self.create_topic();
        self.bad += bad;
        let producer = producer(&self.brokers);
        for i in 0..bad {
            let key = format!("bad-{i}");
            let payload = b"[\"not an order\"]".as_slice();
            produce(&producer, &self.names.topic, Some(&key), Some(payload)).await;
        }
    }

    /// Runs `send -n orders` and returns the ids it printed.
    fn send(&self, orders: usize) -> Vec<String> {
        let output = self
            .command("send")
            .args(["-n", &orders.to_string()])
            .stderr(Stdio::inherit())
            .output()
            .expect("send runs");
        assert!(output.status.success(), "send failed");
        String::from_utf8(output.stdout)
            .expect("ids are text")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Starts `send -n orders` in the background, paced at `rate` per second, with a fraction
    /// `invalid_ratio` of bad messages of every kind mixed in.
    pub fn start_sending(&self, orders: usize, rate: u32, invalid_ratio: f64) -> Sending {
        let mut command = self.command("send");
        command.args([
            "-n",
            &orders.to_string(),
            "--rate",
            &rate.to_string(),
            "--invalid-ratio",
            &invalid_ratio.to_string(),
        ]);
        Sending::start(command)
    }

    /// Takes what a background `send` reported into the accounting.
    pub fn sent(&mut self, sent: &Sent) {
        self.sent_ids
            .extend(sent.ids.iter().map(|(_, id)| id.clone()));
        self.bad += sent.invalid;
        self.mixed |= sent.invalid > 0;
        self.undelivered.extend(sent.undelivered.iter().cloned());
    }

    /// How long the orders `sent` acknowledged waited, from `send`'s acknowledgement to
    /// their transaction in PostgreSQL: the 99th percentile and the longest.
    pub async fn store_delays(&self, sent: &Sent) -> (Duration, Duration) {
        let rows: Vec<(String, f64)> =
            sqlx::query_as("SELECT order_uid, extract(epoch FROM stored_at)::float8 FROM orders")
                .fetch_all(self.store.pool())
                .await
                .expect("query");
        let stored_at: HashMap<String, f64> = rows.into_iter().collect();
        let mut delays: Vec<f64> = sent
            .ids
            .iter()
            .filter_map(|(acked, id)| {
                let acked = acked.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
                Some((stored_at.get(id)? - acked).max(0.0))
            })
            .collect();
        assert!(!delays.is_empty(), "no acknowledged order stored");
        delays.sort_by(f64::total_cmp);
        let rank = (delays.len() * 99).div_ceil(100).max(1) - 1;
        (
            Duration::from_secs_f64(delays[rank]),
            Duration::from_secs_f64(delays[delays.len() - 1]),
        )
    }

    /// Starts `serve`, its log in `target/tmp/fault-logs/<name>.log`.
    pub fn serve(&self) -> Serve {
        Serve::start(self.command("serve"), &self.names.name)
    }

    /// Orders stored and messages rejected now.
    pub async fn counts(&self) -> Counts {
        counts(&self.store).await
    }

    /// Any stored order's id.
    pub async fn some_stored_order(&self) -> String {
        sqlx::query_scalar("SELECT order_uid FROM orders ORDER BY seq LIMIT 1")
            .fetch_one(self.store.pool())
            .await
            .expect("an order")
    }

    /// `GET path` on `serve`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("serve answers")
    }

    /// Waits until at least `n` orders are stored.
    pub async fn wait_stored_at_least(&self, n: i64) {
        let deadline = Instant::now() + HANDLE_ALL_WITHIN;
        while self.counts().await.stored < n {
            assert!(
                Instant::now() < deadline,
                "fewer than {n} orders stored in time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until more messages are handled than `before` counted; returns how long since
    /// `since`.
    pub async fn wait_handled_beyond(&self, before: Counts, since: Instant) -> Duration {
        self.wait_handled(before.handled() + 1, Duration::from_millis(20))
            .await;
        since.elapsed()
    }

    /// Waits until every sent message is a stored order or a rejection (those `send` could
    /// not deliver aside).
    pub async fn wait_all_handled(&self) {
        let total = (self.sent_ids.len() + self.bad) as i64;
        self.wait_handled(total, Duration::from_millis(100)).await;
    }

    /// Waits until at least `handled` messages are stored orders or rejections, counting
    /// every `poll`.
    async fn wait_handled(&self, handled: i64, poll: Duration) {
        let deadline = Instant::now() + HANDLE_ALL_WITHIN;
        loop {
            // While the database comes back, a count may fail; try again.
            let counts = try_counts(&self.store).await;
            if let Ok(now) = &counts
                && now.handled() >= handled
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "fewer than {handled} messages handled in time: {counts:?}"
            );
            tokio::time::sleep(poll).await;
        }
    }

    /// After `serve` was stopped by `fault`: a new `serve` handles everything, stops cleanly,
    /// and the accounting holds.
    pub async fn restart_and_check(self, fault: impl Into<String>) {
        let at_fault = self.counts().await;
        let restarted = Instant::now();
        let mut serve = self.serve();
        let resumed = self.wait_handled_beyond(at_fault, restarted).await;
        self.wait_all_handled().await;
        let recovered = restarted.elapsed();
        serve.terminate_and_expect_clean_exit().await;
        self.check(Figures::new(fault, at_fault, resumed, recovered))
            .await;
    }

    /// The accounting: every message is exactly one stored order or one rejection.
    pub async fn check(self, figures: Figures) {
        let stored_ids: Vec<String> = sqlx::query_scalar("SELECT order_uid FROM orders")
            .fetch_all(self.store.pool())
            .await
            .expect("query");
        let stored: HashSet<&str> = stored_ids.iter().map(String::as_str).collect();
        let lost = self
            .sent_ids
            .iter()
            .filter(|id| !stored.contains(id.as_str()))
            .count();
        let duplicated = stored_ids.len() - stored.len();
        // An order `send` could not deliver may still have been written (a delivery that
        // timed out after the broker took it); an order nobody sent may not be there at all.
        let printed: HashSet<&str> = self.sent_ids.iter().map(String::as_str).collect();
        let undelivered: HashSet<&str> = self.undelivered.iter().map(String::as_str).collect();
        let unexpected: Vec<&str> = stored
            .iter()
            .filter(|id| !printed.contains(*id) && !undelivered.contains(*id))
            .copied()
            .collect();
        let stored_undelivered = stored
            .iter()
            .filter(|id| !printed.contains(*id) && undelivered.contains(*id))
            .count();
        let (rejected, distinct_rejected, conflicts): (i64, i64, i64) = sqlx::query_as(
            r#"SELECT count(*), count(DISTINCT ("partition", "offset")),
                      count(*) FILTER (WHERE reason_code = 'conflict')
               FROM rejected"#,
        )
        .fetch_one(self.store.pool())
        .await
        .expect("query");
        // Conflicts `send` mixed in are rejections like the other bad messages; without them,
        // a conflict can only be a redelivery taken for one.
        let wrong_conflicts = if self.mixed { 0 } else { conflicts as usize };
        let timings: Vec<String> = figures
            .timings
            .iter()
            .map(|(what, took)| format!("{what} {:.1} s", took.as_secs_f64()))
            .collect();
        println!(
            "{}: sent {} ({} orders + {} bad), stored {}, rejected {}, lost {}, duplicated {}, \
             not delivered {} ({} of them stored), at the fault {} stored + {} rejected, {}",
            figures.fault,
            self.sent_ids.len() + self.bad,
            self.sent_ids.len(),
            self.bad,
            stored_ids.len(),
            rejected,
            lost,
            duplicated + (rejected - distinct_rejected) as usize + wrong_conflicts,
            self.undelivered.len(),
            stored_undelivered,
            figures.at_fault.stored,
            figures.at_fault.rejected,
            timings.join(", "),
        );
        assert_eq!(lost, 0, "orders lost");
        assert_eq!(duplicated, 0, "orders stored twice");
        assert!(
            unexpected.is_empty(),
            "stored but never sent: {unexpected:?}"
        );
        assert_eq!(stored_ids.len(), self.sent_ids.len() + stored_undelivered);
        // Each bad message recorded once; one `send` could not deliver may be there too.
        let undelivered_rejected = self.undelivered.len() - stored_undelivered;
        assert!(
            (self.bad..=self.bad + undelivered_rejected).contains(&(rejected as usize)),
            "each bad message recorded once: {rejected} recorded, {} sent",
            self.bad
        );
        assert_eq!(distinct_rejected, rejected, "a rejection recorded twice");
        assert_eq!(wrong_conflicts, 0, "a redelivery was taken for a conflict");
        self.store.pool().close().await;
        drop_database(&self.database_url).await;
    }
}
