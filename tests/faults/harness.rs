//! One fault test's run: a fresh database, topic and group, the messages sent to it with the
//! real binary, waiting for them to be handled, and the final accounting of sent, stored,
//! rejected, lost, duplicated. One concern, a little over 300 lines: the accounting needs
//! every field of the run.

use std::collections::HashSet;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use order_service::store::Store;

use crate::common::binary;
use crate::common::counts::{Counts, counts, try_counts};
use crate::common::database::{create_migrated, database_url, drop_database};
use crate::common::kafka::{brokers, produce, producer};
use crate::common::names::Names;
use crate::serve::Serve;

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
    /// Bad messages produced.
    bad: usize,
    /// For assertions.
    store: Store,
    /// How `serve` joins its consumer group.
    membership: Membership,
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
    fault: &'static str,
    /// Counts when the fault hit.
    at_fault: Counts,
    /// From the restart (or the database's return) to the first message handled after it.
    resumed: Duration,
    /// From the restart (or the database's return) to everything handled.
    recovered: Duration,
}

impl Figures {
    /// The figures of one fault.
    pub fn new(
        fault: &'static str,
        at_fault: Counts,
        resumed: Duration,
        recovered: Duration,
    ) -> Self {
        Self {
            fault,
            at_fault,
            resumed,
            recovered,
        }
    }
}

impl Run {
    /// A fresh database, topic and group; `bad` poison messages, then `orders` orders sent
    /// with the real `send`.
    pub async fn prepare(orders: usize, bad: usize) -> Self {
        let names = Names::unique("ordertest_fault");
        let database_url = database_url(&names.name);
        let store = create_migrated(&database_url).await;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut run = Self {
            names,
            database_url,
            brokers: brokers(),
            port,
            sent_ids: Vec::new(),
            bad,
            store,
            membership: Membership::Static,
        };
        run.produce_bad().await;
        run.sent_ids = run.send(orders);
        assert_eq!(run.sent_ids.len(), orders, "send printed one id per order");
        run
    }

    /// The same run with `serve` joining its group as `membership` says.
    pub fn with_membership(mut self, membership: Membership) -> Self {
        self.membership = membership;
        self
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
            .env("HTTP_ADDR", format!("127.0.0.1:{}", self.port))
            .env("RUST_LOG", "info");
        command
    }

    /// Poison messages, created with the topic by `send` if it is missing.
    async fn produce_bad(&self) {
        let status = self
            .command("send")
            .args(["-n", "0"])
            .status()
            .expect("send runs");
        assert!(status.success(), "send -n 0 creates the topic");
        let producer = producer(&self.brokers);
        for i in 0..self.bad {
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

    /// Waits until every sent message is a stored order or a rejection.
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
    pub async fn restart_and_check(self, fault: &'static str) {
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
        let (rejected, distinct_rejected, conflicts): (i64, i64, i64) = sqlx::query_as(
            r#"SELECT count(*), count(DISTINCT ("partition", "offset")),
                      count(*) FILTER (WHERE reason_code = 'conflict')
               FROM rejected"#,
        )
        .fetch_one(self.store.pool())
        .await
        .expect("query");
        println!(
            "{}: sent {} ({} orders + {} bad), stored {}, rejected {}, lost {}, duplicated {}, \
             at the fault {} stored + {} rejected, ingest resumed after {:.1} s, \
             everything handled after {:.1} s",
            figures.fault,
            self.sent_ids.len() + self.bad,
            self.sent_ids.len(),
            self.bad,
            stored_ids.len(),
            rejected,
            lost,
            duplicated + (rejected - distinct_rejected) as usize + conflicts as usize,
            figures.at_fault.stored,
            figures.at_fault.rejected,
            figures.resumed.as_secs_f64(),
            figures.recovered.as_secs_f64(),
        );
        assert_eq!(lost, 0, "orders lost");
        assert_eq!(duplicated, 0, "orders stored twice");
        assert_eq!(stored_ids.len(), self.sent_ids.len());
        assert_eq!(
            rejected as usize, self.bad,
            "each bad message recorded once"
        );
        assert_eq!(distinct_rejected, rejected, "a rejection recorded twice");
        assert_eq!(conflicts, 0, "a redelivery was taken for a conflict");
        self.store.pool().close().await;
        drop_database(&self.database_url).await;
    }
}
