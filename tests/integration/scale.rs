//! Scale-out, under both group protocols (`KAFKA_GROUP_PROTOCOL=classic` and `consumer`):
//! two `serve` instances in one consumer group share a topic of several partitions. Each
//! instance's consumer must hold a share (every partition assigned to exactly one instance,
//! each instance one at least); with the classic protocol the group's coordinator
//! (DescribeGroups) must show the same assignment, Stable, one member per instance. Every
//! order is stored exactly once, both instances answer for any id, each ingests exactly the
//! partitions the group assigned to it, and when one stops (gracefully) the other is
//! assigned all the partitions and loses no order. Prints the figures (`--nocapture`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::channel::oneshot::Canceled;
use futures::stream::FuturesUnordered;
use order_service::infra::config::{GroupProtocol, KafkaArgs, ServeArgs};
use order_service::order::{Order, canonical_json};
use order_service::store::Store;
use order_service::tools::generator::fake_orders;
use rdkafka::producer::FutureRecord;
use rdkafka::producer::future_producer::OwnedDeliveryResult;

use crate::common::app::TestApp;
use crate::common::counts::{Counts, counts};
use crate::common::kafka::producer;
use crate::common::settings::{fresh_args, fresh_args_sharing};
use crate::group::{Group, GroupClient};

/// Partitions of the test's topic.
const PARTITIONS: i32 = 4;
/// Orders produced while both instances run.
const FIRST: usize = 10_000;
/// Orders produced while one instance stops.
const SECOND: usize = 2_000;
/// Ids asked of each instance.
const SAMPLE: usize = 200;
/// How long each phase may take before the test fails.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one DescribeGroups may wait for the broker.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Describes the group of the instances `args` configures until it is Stable with `members`
/// members sharing all the topic's partitions (see [`Group::owners`]); returns the group,
/// the member id owning each partition, and the time taken. Fails the test with what was
/// last seen if that does not happen within [`PHASE_TIMEOUT`].
async fn wait_for_assignment(
    groups: &GroupClient,
    args: &ServeArgs,
    members: usize,
) -> (Group, Vec<String>, Duration) {
    let start = Instant::now();
    loop {
        let seen = match groups
            .describe(&args.kafka_group_id, DESCRIBE_TIMEOUT)
            .await
        {
            Ok(Some(group)) => match group.owners(&args.kafka.kafka_topic, PARTITIONS, members) {
                Ok(owners) => {
                    let owners = owners.into_iter().map(str::to_owned).collect();
                    return (group, owners, start.elapsed());
                }
                Err(why) => format!("{why}: {group:?}"),
            },
            Ok(None) => "no broker lists the group".to_owned(),
            Err(error) => format!("DescribeGroups failed: {error}"),
        };
        assert!(
            start.elapsed() < PHASE_TIMEOUT,
            "the group {} is not Stable with {members} members sharing {PARTITIONS} partitions after {PHASE_TIMEOUT:?}; last seen: {seen}",
            args.kafka_group_id
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many times in a row (100 ms apart) the instances must agree on the assignment.
const AGREED_POLLS: usize = 3;

/// Waits until the consumers of `apps` share the topic's partitions among themselves: each
/// partition assigned to exactly one, each one at least, the same three polls in a row.
/// Returns the index in `apps` of each partition's owner, and the time taken.
async fn wait_for_shares(apps: &[&TestApp]) -> (Vec<usize>, Duration) {
    let start = Instant::now();
    let mut agreed: Option<(Vec<usize>, usize)> = None;
    loop {
        let views: Vec<Vec<i32>> = apps
            .iter()
            .map(|app| {
                let topic = &app.args.kafka.kafka_topic;
                let mut partitions: Vec<i32> = app
                    .consumer
                    .assignment()
                    .into_iter()
                    .filter(|(t, _)| t == topic)
                    .map(|(_, partition)| partition)
                    .collect();
                partitions.sort_unstable();
                partitions
            })
            .collect();
        let owners: Option<Vec<usize>> = (0..PARTITIONS)
            .map(|partition| {
                let mut holders = views
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.contains(&partition));
                match (holders.next(), holders.next()) {
                    (Some((owner, _)), None) => Some(owner),
                    _ => None,
                }
            })
            .collect();
        let shared = owners.filter(|_| views.iter().all(|view| !view.is_empty()));
        agreed = match (shared, agreed) {
            (Some(owners), Some((seen, polls))) if owners == seen => Some((seen, polls + 1)),
            (Some(owners), _) => Some((owners, 1)),
            (None, _) => None,
        };
        if let Some((owners, polls)) = &agreed
            && *polls >= AGREED_POLLS
        {
            return (owners.clone(), start.elapsed());
        }
        assert!(
            start.elapsed() < PHASE_TIMEOUT,
            "the {} instances do not share the {PARTITIONS} partitions after {PHASE_TIMEOUT:?}; they hold {views:?}",
            apps.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The partitions each of `instances` instances owns, as `owners` (the owner of each
/// partition) gives them.
fn partitions_of(instances: usize, owners: &[usize]) -> Vec<Vec<i32>> {
    (0..instances)
        .map(|instance| {
            (0..PARTITIONS)
                .zip(owners)
                .filter(|(_, owner)| **owner == instance)
                .map(|(partition, _)| partition)
                .collect()
        })
        .collect()
}

/// Produces `orders` keyed by `order_uid`, up to a thousand waiting for their
/// acknowledgement at once; each must be acknowledged. Returns the partition each order was
/// written to, in the order of `orders`.
async fn produce_orders(kafka: &KafkaArgs, orders: &[Order]) -> Vec<i32> {
    let producer = producer(&kafka.kafka_brokers);
    let mut partitions = vec![-1; orders.len()];
    let mut pending = FuturesUnordered::new();
    for (index, order) in orders.iter().enumerate() {
        while pending.len() >= 1000 {
            let (index, delivery) = pending.next().await.expect("a delivery");
            partitions[index] = acknowledged(delivery);
        }
        let json = canonical_json(order);
        let record = FutureRecord::to(&kafka.kafka_topic)
            .key(order.order_uid.as_str())
            .payload(json.as_bytes());
        let delivery = producer
            .send_result(record)
            .map_err(|(error, _)| error)
            .expect("the producer takes the message");
        pending.push(async move { (index, delivery.await) });
    }
    while let Some((index, delivery)) = pending.next().await {
        partitions[index] = acknowledged(delivery);
    }
    partitions
}

/// Fails the test unless the broker acknowledged the delivery; returns its partition.
fn acknowledged(delivery: Result<OwnedDeliveryResult, Canceled>) -> i32 {
    delivery
        .expect("the producer lives")
        .map_err(|(error, _)| error)
        .expect("the broker acknowledges")
        .partition
}

/// Waits until `want` orders are stored; returns how long it took.
async fn wait_for_stored(store: &Store, want: usize) -> Duration {
    let start = Instant::now();
    loop {
        let Counts { stored, rejected } = counts(store).await;
        assert_eq!(rejected, 0, "no valid order may be rejected");
        if stored >= want as i64 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < PHASE_TIMEOUT,
            "only {stored} of {want} orders stored after {PHASE_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /api/order/{uid}` on `app`: the status and whether it came from the cache.
async fn lookup(app: &TestApp, uid: &str) -> (u16, bool) {
    let response = app.get(&format!("/api/order/{uid}")).await;
    let hit = response
        .headers()
        .get("x-cache")
        .is_some_and(|value| value == "hit");
    (response.status().as_u16(), hit)
}

/// Every `step`-th item, `SAMPLE` of them at most.
fn sample<T>(items: &[T]) -> impl Iterator<Item = &T> {
    let step = (items.len() / SAMPLE).max(1);
    items.iter().step_by(step).take(SAMPLE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_partitions_and_one_takes_over_when_the_other_stops() {
    scale_out(GroupProtocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_consumer_protocol_two_instances_share_the_partitions_and_one_takes_over() {
    scale_out(GroupProtocol::Consumer).await;
}

/// The scale-out test with the group protocol `protocol`.
async fn scale_out(protocol: GroupProtocol) {
    let name = protocol.as_str();
    let mut args = fresh_args();
    args.kafka.kafka_topic_partitions = PARTITIONS;
    args.kafka_group_protocol = protocol;
    // DescribeGroups describes classic groups only (KIP-848 groups have their own request).
    let groups = (protocol == GroupProtocol::Classic).then(|| GroupClient::new(&args.kafka));
    let first = TestApp::spawn_with(args).await;
    let (_, first_joined) = wait_for_shares(&[&first]).await;
    // Both instances have the same client id, so the coordinator tells each member apart by
    // its member id: the first's is the one member of the group before the second starts (a
    // member keeps its id across rebalances while it stays in the group).
    let first_member = match &groups {
        Some(groups) => Some(wait_for_assignment(groups, &first.args, 1).await.1[0].clone()),
        None => None,
    };
    let starting = Instant::now();
    let second = TestApp::spawn_with(fresh_args_sharing(&first.args)).await;
    assert_ne!(first.base, second.base);
    let (owners, joined) = wait_for_shares(&[&first, &second]).await;
    let joined = joined.max(starting.elapsed());
    let shares = partitions_of(2, &owners);
    let mut assignor = "assigned by the broker".to_owned();
    if let (Some(groups), Some(first_member)) = (&groups, &first_member) {
        // The coordinator agrees with the instances.
        let (group, members_owning, _) = wait_for_assignment(groups, &first.args, 2).await;
        let as_members: Vec<bool> = members_owning.iter().map(|m| m == first_member).collect();
        let as_instances: Vec<bool> = owners.iter().map(|owner| *owner == 0).collect();
        assert_eq!(
            as_members, as_instances,
            "the coordinator and the instances agree on who owns what: {group:?}"
        );
        assignor = format!("{} assignor", group.protocol);
    }
    println!(
        "scale-out ({name} protocol): 2 instances, {PARTITIONS} partitions: the first alone owned them all {first_joined:.2?} after it served; shared ({assignor}) {joined:.2?} after the second began starting: the first instance owns {:?}, the second {:?}",
        shares[0], shares[1]
    );

    let orders: Vec<Order> = fake_orders((FIRST + SECOND) as u64, None).collect();
    let (batch_one, batch_two) = orders.split_at(FIRST);
    let start = Instant::now();
    let partitions = produce_orders(&first.args.kafka, batch_one).await;
    let produced = start.elapsed();
    wait_for_stored(&first.store, FIRST).await;
    let ingest = start.elapsed();
    println!(
        "scale-out ({name} protocol): {FIRST} orders produced in {produced:.2?}, all stored by 2 instances in {ingest:.2?} ({:.0} orders/s from the first produce)",
        FIRST as f64 / ingest.as_secs_f64()
    );
    let Counts { stored, rejected } = counts(&first.store).await;
    assert_eq!(
        (stored, rejected),
        (FIRST as i64, 0),
        "each order stored once"
    );
    let (owners_after, _) = wait_for_shares(&[&first, &second]).await;
    assert_eq!(
        owners_after, owners,
        "no rebalance while the batch was ingested"
    );

    // Both answer for any id. Each instance caches what it ingests, so the first lookup of
    // an id is a hit on the instance the group assigned its partition to, a miss on the other.
    let delivered: Vec<(&str, i32)> = batch_one
        .iter()
        .map(|order| order.order_uid.as_str())
        .zip(partitions)
        .collect();
    let (mut hits_first, mut hits_second) = (0, 0);
    for &(uid, partition) in sample(&delivered) {
        let owner = owners[usize::try_from(partition).expect("a partition")];
        let (status_first, hit_first) = lookup(&first, uid).await;
        let (status_second, hit_second) = lookup(&second, uid).await;
        assert_eq!((status_first, status_second), (200, 200), "{uid}");
        assert_eq!(
            (hit_first, hit_second),
            (owner == 0, owner == 1),
            "{uid} of partition {partition} must be ingested by its owner (instance {owner}) alone"
        );
        hits_first += usize::from(hit_first);
        hits_second += usize::from(hit_second);
    }
    println!(
        "scale-out ({name} protocol): of {SAMPLE} sampled ids, ingested by the first instance {hits_first}, by the second {hits_second}, each by the instance its partition is assigned to"
    );
    assert!(hits_first > 0 && hits_second > 0, "each ingests a share");

    // The first stops while the second batch is being produced; the second takes over.
    let kafka = first.args.kafka.clone();
    let batch_two_owned = batch_two.to_vec();
    let producing = tokio::spawn(async move {
        for chunk in batch_two_owned.chunks(200) {
            produce_orders(&kafka, chunk).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = Instant::now();
    first.stop().await;
    let stopped = stopping.elapsed();
    let (owners, _) = wait_for_shares(&[&second]).await;
    let taken_over = stopping.elapsed();
    assert_eq!(owners, vec![0; PARTITIONS as usize], "the second owns all");
    if let Some(groups) = &groups {
        let (group, _, _) = wait_for_assignment(groups, &second.args, 1).await;
        assert_eq!(
            group.members.len(),
            1,
            "the first left the group: {group:?}"
        );
    }
    producing.await.expect("no panic");
    wait_for_stored(&second.store, FIRST + SECOND).await;
    let all_stored = stopping.elapsed();
    println!(
        "scale-out ({name} protocol): first instance stopped in {stopped:.2?}; the second alone owned all {PARTITIONS} partitions {taken_over:.2?} after the stop began; all {} orders stored {all_stored:.2?} after it",
        FIRST + SECOND
    );
    let Counts { stored, rejected } = counts(&second.store).await;
    assert_eq!(
        (stored, rejected),
        ((FIRST + SECOND) as i64, 0),
        "no loss, no duplicate"
    );
    let ids: BTreeSet<String> = sqlx::query_scalar("SELECT order_uid FROM orders")
        .fetch_all(second.store.pool())
        .await
        .expect("ids")
        .into_iter()
        .collect();
    assert!(orders.iter().all(|order| ids.contains(&order.order_uid)));
    for order in sample(batch_two) {
        let uid = &order.order_uid;
        assert_eq!(lookup(&second, uid).await.0, 200, "{uid}");
    }
    second.stop_and_drop().await;
}
