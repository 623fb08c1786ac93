//! What one cached order costs in resident memory: fills the real `OrderCache` with generated
//! orders through `get_or_load` (the path of a read that misses), reads each once (a hit, as
//! the service's clients do), and prints the resident memory (`VmRSS`) per order and its ratio
//! to the average JSON. With mimalloc as the global allocator and the binary's options
//! (`MIMALLOC_ARENA_EAGER_COMMIT=0`, `MIMALLOC_PURGE_DELAY=0`, src/main.rs): the example
//! starts itself again with them unless they are set. The figure behind `ENTRY_OVERHEAD`
//! (src/cache/entry.rs); a debug build measures the same layout as a release one.
//!
//! `cargo run --example cache_memory [-- <orders>]` (100,000 by default, seed 42).

use std::process::{Command, ExitCode};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use order_service::cache::OrderCache;
use order_service::order::canonical_json;
use order_service::store::{OrderLookup, StoreError};
use order_service::tools::generator::fake_orders;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The binary's mimalloc options, as environment variables mimalloc reads itself.
const OPTIONS: [(&str, &str); 2] = [
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
    ("MIMALLOC_PURGE_DELAY", "0"),
];

/// A lookup that knows one order: the one being loaded.
struct One(Bytes);

impl OrderLookup for One {
    fn find(&self, _uid: &str) -> BoxFuture<'_, Result<Option<Bytes>, StoreError>> {
        let json = self.0.clone();
        Box::pin(async move { Ok(Some(json)) })
    }
}

/// The resident memory of this process, in bytes.
fn rss() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/self/status"))?;
    Ok(kib.trim().parse::<u64>()? * 1024)
}

fn main() -> anyhow::Result<ExitCode> {
    if OPTIONS
        .iter()
        .any(|(name, _)| std::env::var_os(name).is_none())
    {
        let status = Command::new(std::env::current_exe()?)
            .args(std::env::args_os().skip(1))
            .envs(OPTIONS)
            .status()?;
        return Ok(if status.success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let count: u64 = match std::env::args().nth(1) {
        Some(count) => count.parse()?,
        None => 100_000,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure(count))?;
    Ok(ExitCode::SUCCESS)
}

/// Loads `count` orders, reads them once, and prints what they cost.
async fn measure(count: u64) -> anyhow::Result<()> {
    let cache = OrderCache::new(Duration::from_secs(3600), 1 << 30);
    let before = rss()?;
    let (mut json_bytes, mut id_bytes) = (0u64, 0u64);
    for order in fake_orders(count, Some(42)) {
        let json = Bytes::from(canonical_json(&order).into_bytes());
        json_bytes += json.len() as u64;
        id_bytes += order.order_uid.len() as u64;
        let loaded = cache.get_or_load(&order.order_uid, &One(json)).await?;
        anyhow::ensure!(loaded.is_some(), "{} not loaded", order.order_uid);
    }
    let loaded = rss()?;
    let missing = One(Bytes::new());
    for order in fake_orders(count, Some(42)) {
        let read = cache.get_or_load(&order.order_uid, &missing).await?;
        anyhow::ensure!(read.is_some(), "{} not cached", order.order_uid);
    }
    let read = rss()?;
    let (entries, weight) = cache.size().await;
    anyhow::ensure!(entries == count, "{entries} of {count} orders cached");
    let per_order = |rss: u64| rss.saturating_sub(before) as f64 / count as f64;
    let json = json_bytes as f64 / count as f64;
    println!(
        "{count} orders: {json:.0} bytes of JSON and {:.1} of id on average; weight {:.0} per order",
        id_bytes as f64 / count as f64,
        weight as f64 / count as f64
    );
    println!(
        "resident per order: {:.0} bytes loaded, {:.0} after one read each = {:.3} x its JSON",
        per_order(loaded),
        per_order(read),
        per_order(read) / json
    );
    Ok(())
}
