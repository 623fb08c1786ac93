//! The broker limit for `make bench-ingest`: consumes a topic with the ingest's own consumer
//! settings (`order_service::ingest::build_consumer`) and no database, and prints the rate.
//!
//! `cargo run --release --example consume_only -- <brokers> <topic> <group> <count>`

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use order_service::infra::config::GroupProtocol;
use order_service::ingest::{GroupMember, build_consumer};
use rdkafka::Message;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, topic, group, count] = args.as_slice() else {
        anyhow::bail!("usage: consume_only <brokers> <topic> <group> <count>");
    };
    let count: u64 = count.parse()?;
    let kafka = common::kafka_args(brokers, topic);
    let member = GroupMember {
        group_id: group.clone(),
        instance_id: None,
        protocol: GroupProtocol::Classic,
        session_timeout: Duration::from_secs(10),
    };
    let consumer = build_consumer(&kafka, &member)?;
    let mut seen = 0u64;
    let mut bytes = 0usize;
    let mut started = None;
    while seen < count {
        let message = consumer.recv().await?.detach();
        started.get_or_insert_with(Instant::now);
        bytes += message.payload().map_or(0, <[u8]>::len);
        seen += 1;
    }
    let elapsed = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    println!(
        "consumed {seen} messages ({bytes} bytes) in {elapsed:.2} s: {:.0} msg/s",
        seen as f64 / elapsed.max(1e-9)
    );
    Ok(())
}
