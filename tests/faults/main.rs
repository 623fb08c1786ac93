//! Fault tests: the real `order-service` binary against the real PostgreSQL and Apache Kafka,
//! broken for real (kill -9 of `serve` under both group protocols, PostgreSQL stopped,
//! SIGTERM; and in `brokers.rs`, brokers of a three-node cluster killed, restarted and
//! stopped) in the middle of ingesting 20,000 orders. Each ends with every message either a
//! stored order or a recorded rejection, exactly once. They stop the machine's PostgreSQL or
//! share one cluster, so they run one at a time, in their own test binary (cargo runs test
//! binaries one after another).

mod brokers;
mod cluster;
#[path = "../common/mod.rs"]
mod common;
mod harness;
mod postgres;
mod progress;
mod traffic;

use std::time::{Duration, Instant};

use harness::{Figures, Membership, Run};
use order_service::infra::config::GroupProtocol;

/// Orders sent per test.
pub(crate) const ORDERS: usize = 20_000;
/// Bad messages sent per test, before the orders.
const BAD: usize = 100;
/// How many orders are stored before the fault is injected.
pub(crate) const FAULT_AFTER: i64 = 2_000;

/// One fault test at a time: they share the machine's PostgreSQL.
pub(crate) static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// kill -9 of `serve` after 2,000 orders, then a new `serve` with the same membership and
/// group protocol.
async fn kill_9_in_the_middle(membership: Membership, protocol: GroupProtocol, fault: &str) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let run = Run::prepare(ORDERS, BAD)
        .await
        .with_membership(membership)
        .with_protocol(protocol);
    let mut serve = run.serve();
    run.wait_stored_at_least(FAULT_AFTER).await;
    serve.kill_9();
    run.restart_and_check(fault).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_with_static_membership_loses_nothing_and_stores_nothing_twice() {
    kill_9_in_the_middle(
        Membership::Static,
        GroupProtocol::Classic,
        "kill -9 of serve, static membership, classic protocol",
    )
    .await;
}

/// Without an instance id the restarted `serve` is a new member: the group hands it the
/// partitions once the killed member's session (`SESSION_TIMEOUT`) has expired.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_with_dynamic_membership_loses_nothing_and_stores_nothing_twice() {
    kill_9_in_the_middle(
        Membership::Dynamic,
        GroupProtocol::Classic,
        "kill -9 of serve, dynamic membership, classic protocol",
    )
    .await;
}

/// With KIP-848 the broker fences the restarted static member (`UNRELEASED_INSTANCE_ID`, a
/// fatal error) until the killed one's session has expired on the broker: `serve` replaces
/// its consumer every `CONSUMER_RESTART_AFTER` until it is let in.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_with_static_membership_and_the_consumer_protocol_loses_nothing() {
    kill_9_in_the_middle(
        Membership::Static,
        GroupProtocol::Consumer,
        "kill -9 of serve, static membership, consumer protocol (KIP-848)",
    )
    .await;
}

/// With KIP-848 a new member gets partitions at once, but the killed member's stay with it
/// until its session expires on the broker (`group.consumer.session.timeout.ms`).
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_with_dynamic_membership_and_the_consumer_protocol_loses_nothing() {
    kill_9_in_the_middle(
        Membership::Dynamic,
        GroupProtocol::Consumer,
        "kill -9 of serve, dynamic membership, consumer protocol (KIP-848)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_stopped_for_10_seconds_pauses_ingest_and_loses_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let run = Run::prepare(ORDERS, BAD).await;
    let mut serve = run.serve();
    run.wait_stored_at_least(FAULT_AFTER).await;
    let cached = run.some_stored_order().await;
    let at_fault = run.counts().await;

    let outage = postgres::stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Reads: a cached order is still served; a miss is a 503 with Retry-After.
    let hit = run.get(&format!("/api/order/{cached}")).await;
    assert_eq!(hit.status(), 200, "cache hits survive the outage");
    let miss = run.get("/api/order/not-cached-anywhere").await;
    assert_eq!(miss.status(), 503);
    assert!(miss.headers().contains_key("retry-after"));
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(serve.is_running(), "serve must survive a database outage");

    let back = Instant::now();
    drop(outage); // starts PostgreSQL again
    let resumed = run.wait_handled_beyond(at_fault, back).await;
    run.wait_all_handled().await;
    let recovered = back.elapsed();
    assert!(serve.is_running(), "serve resumed by itself");
    serve.terminate_and_expect_clean_exit().await;

    run.check(Figures::new(
        "PostgreSQL stopped 10 s",
        at_fault,
        resumed,
        recovered,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_ingest_exits_0_and_a_restart_finishes_the_job() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let run = Run::prepare(ORDERS, BAD).await;
    let mut serve = run.serve();
    run.wait_stored_at_least(FAULT_AFTER).await;
    serve.terminate_and_expect_clean_exit().await;
    run.restart_and_check("SIGTERM of serve").await;
}
