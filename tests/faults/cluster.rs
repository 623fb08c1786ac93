//! The three-node Apache Kafka cluster of the broker fault tests: started by
//! `scripts/kafka.sh --nodes 3` on ports of its own (clients on 19092, 19094 and 19096), beside
//! the single broker the other tests use, and stopped when the test ends; each node killed,
//! stopped and started by itself; and what the cluster says of itself (who leads which
//! partition, which node coordinates a group, whether every replica is in sync), read with
//! a metadata request.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::metadata::Metadata;

/// The cluster's first client port (node `i` serves clients on `PORT + 2 (i - 1)`).
const PORT: u16 = 19092;
/// Its nodes, by id.
pub const NODES: [i32; 3] = [1, 2, 3];
/// Partitions of `__consumer_offsets` (`offsets.topic.num.partitions` in `kafka.sh`).
const OFFSETS_PARTITIONS: i32 = 6;
/// How long the cluster may take to be whole again (every replica in sync).
const WHOLE_WITHIN: Duration = Duration::from_secs(180);

/// The running cluster; stopped when dropped.
pub struct Cluster {
    /// Reads the cluster's metadata.
    client: BaseConsumer,
}

impl Cluster {
    /// Starts the three nodes (reusing those that run) and waits until the cluster is whole.
    pub async fn up() -> Self {
        let client = ClientConfig::new()
            .set("bootstrap.servers", Self::bootstrap())
            .create()
            .expect("a metadata client");
        // Made first, so that a failed start stops the nodes that did start.
        let cluster = Self { client };
        script(&["up"]);
        cluster.wait_whole(None).await;
        cluster
    }

    /// The bootstrap servers: every node.
    pub fn bootstrap() -> String {
        NODES
            .iter()
            .map(|id| format!("127.0.0.1:{}", PORT + 2 * (*id as u16 - 1)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// SIGKILL to node `id`: no controlled shutdown, its leadership moves once the
    /// controller fences it (`broker.session.timeout.ms`, 3 s).
    pub fn kill_9(&self, id: i32) {
        script(&["down", "--kill", "--node", &id.to_string()]);
    }

    /// SIGTERM to node `id`, waiting until it has exited: a controlled shutdown, which moves
    /// its leadership to the other nodes first.
    pub fn stop(&self, id: i32) {
        script(&["down", "--node", &id.to_string()]);
    }

    /// Starts node `id` again and waits until it serves.
    pub fn start(&self, id: i32) {
        script(&["up", "--node", &id.to_string()]);
    }

    /// SIGTERM to every node, each waited for (blocking: run it off the test's tasks to
    /// watch the service meanwhile).
    pub fn stop_all() {
        script(&["down"]);
    }

    /// Starts every node again, waiting until each serves (blocking, as [`Self::stop_all`]).
    pub fn start_all() {
        script(&["up"]);
    }

    /// The cluster's metadata (every topic's, or `topic`'s), if a node answers in time.
    fn metadata(&self, topic: Option<&str>) -> Option<Metadata> {
        self.client
            .fetch_metadata(topic, Duration::from_secs(5))
            .ok()
    }

    /// Waits until every node is back in the cluster and every partition of `topic` (every
    /// topic if `None`, the internal ones included) has a leader and all three replicas in
    /// sync; returns how long that took.
    pub async fn wait_whole(&self, topic: Option<&str>) -> Duration {
        let started = Instant::now();
        loop {
            let whole = self.metadata(topic).is_some_and(|metadata| {
                metadata.brokers().len() == NODES.len()
                    && metadata.topics().iter().all(|topic| {
                        topic.error().is_none()
                            && !topic.partitions().is_empty()
                            && topic.partitions().iter().all(|partition| {
                                partition.leader() >= 0 && partition.isr().len() == NODES.len()
                            })
                    })
            });
            if whole {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < WHOLE_WITHIN,
                "the cluster is not whole after {WHOLE_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The node that leads the most partitions of `topic` (the lowest id of a tie).
    pub fn leader_of_most(&self, topic: &str) -> i32 {
        let metadata = self.metadata(Some(topic)).expect("the cluster answers");
        let partitions = metadata.topics()[0].partitions();
        let led = |id: i32| partitions.iter().filter(|p| p.leader() == id).count();
        NODES
            .into_iter()
            .max_by_key(|id| (led(*id), -id))
            .expect("three nodes")
    }

    /// The node that coordinates `group`: the leader of the `__consumer_offsets` partition
    /// the group's id hashes to, as the broker computes it
    /// (`Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions`).
    pub fn coordinator_of(&self, group: &str) -> i32 {
        let partition = offsets_partition(group);
        let metadata = self
            .metadata(Some("__consumer_offsets"))
            .expect("the cluster answers");
        metadata.topics()[0]
            .partitions()
            .iter()
            .find(|p| p.id() == partition)
            .map(|p| p.leader())
            .expect("the group's offsets partition")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(kafka_sh())
            .args(cluster_args(&["down"]))
            .status();
    }
}

/// The `__consumer_offsets` partition of `group`: Java's `String.hashCode` (over UTF-16
/// code units), made non-negative as Kafka's `Utils.abs` does, modulo the partitions.
fn offsets_partition(group: &str) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % OFFSETS_PARTITIONS
}

/// `scripts/kafka.sh`.
fn kafka_sh() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.sh")
}

/// `args` for this cluster: three nodes from `PORT`.
fn cluster_args(args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    all.extend(["--nodes".to_owned(), "3".to_owned()]);
    all.extend(["--port".to_owned(), PORT.to_string()]);
    all
}

/// Runs `scripts/kafka.sh <args> --nodes 3 --port 19092`, which must succeed.
fn script(args: &[&str]) {
    let output = Command::new("bash")
        .arg(kafka_sh())
        .args(cluster_args(args))
        // A node starts in 10 to 20 s here, slower while a test loads the machine.
        .env("KAFKA_WAIT", "180")
        .output()
        .expect("bash runs scripts/kafka.sh");
    assert!(
        output.status.success(),
        "scripts/kafka.sh {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_group_hashes_to_the_offsets_partition_the_broker_computes() {
    // Java: "order-service".hashCode() == 562889526, % 6 == 0; "a".hashCode() == 97, % 6 == 1;
    // "polygenelubricants".hashCode() == Integer.MIN_VALUE, which Utils.abs makes 0.
    assert_eq!(offsets_partition("order-service"), 0);
    assert_eq!(offsets_partition("a"), 1);
    assert_eq!(offsets_partition("polygenelubricants"), 0);
    assert_eq!(offsets_partition("ab"), 3105 % 6);
    assert_eq!(offsets_partition(""), 0);
}
