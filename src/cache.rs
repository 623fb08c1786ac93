//! The in-memory cache of orders' canonical JSON, bounded by a time to live and by bytes.
//! Filled by ingest and by reads that miss; warmed from PostgreSQL at start-up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::future::Cache;

use crate::store::{Store, StoreError};

/// What one entry costs beyond its key and value (moka's bookkeeping, the `Arc`s), counted
/// against the byte bound so that it holds for many small orders too.
const ENTRY_OVERHEAD: usize = 128;

/// Orders' canonical JSON by `order_uid`. Cheap to clone: clones share one cache.
#[derive(Clone)]
pub struct OrderCache {
    /// The entries; each weighs its key, its value and [`ENTRY_OVERHEAD`] bytes.
    inner: Cache<Arc<str>, Bytes>,
}

impl OrderCache {
    /// A cache whose entries live `ttl` after they were written and whose entries weigh at
    /// most `max_bytes` together. `max_bytes == 0` keeps nothing.
    pub fn new(ttl: Duration, max_bytes: u64) -> Self {
        let inner = Cache::builder()
            .time_to_live(ttl)
            .max_capacity(max_bytes)
            .weigher(|uid: &Arc<str>, json: &Bytes| {
                u32::try_from(uid.len() + json.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
            })
            .build();
        Self { inner }
    }

    /// The order's JSON, if cached and not expired.
    pub async fn get(&self, uid: &str) -> Option<Bytes> {
        self.inner.get(uid).await
    }

    /// Caches an order's JSON.
    pub async fn insert(&self, uid: &str, json: Bytes) {
        self.inner.insert(Arc::from(uid), json).await;
    }

    /// How many entries are cached (after pending evictions are applied).
    pub async fn entry_count(&self) -> u64 {
        self.inner.run_pending_tasks().await;
        self.inner.entry_count()
    }

    /// How many bytes the entries weigh together (after pending evictions are applied).
    pub async fn weighted_size(&self) -> u64 {
        self.inner.run_pending_tasks().await;
        self.inner.weighted_size()
    }

    /// Loads the `limit` most recently stored orders, so that a restarted service answers from
    /// memory at once. Returns how many orders were loaded.
    pub async fn warm(&self, store: &Store, limit: i64) -> Result<usize, StoreError> {
        let started = Instant::now();
        let orders = store.recent_orders(limit).await?;
        let count = orders.len();
        let bytes: usize = orders.iter().map(|(_, json)| json.len()).sum();
        // Oldest first, so that when the byte bound bites the newest orders are the ones kept.
        for (uid, json) in orders.into_iter().rev() {
            self.insert(&uid, json).await;
        }
        tracing::info!(
            orders = count,
            bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "cache warmed from PostgreSQL"
        );
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_expire_after_the_ttl() {
        let cache = OrderCache::new(Duration::from_millis(100), 1 << 20);
        cache.insert("a", Bytes::from_static(b"{}")).await;
        assert!(cache.get("a").await.is_some(), "fresh entry must be served");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(cache.get("a").await.is_none(), "expired entry must be gone");
    }

    #[tokio::test]
    async fn the_byte_bound_holds() {
        let max = 10 * (1000 + ENTRY_OVERHEAD as u64);
        let cache = OrderCache::new(Duration::from_secs(60), max);
        for i in 0..100 {
            cache
                .insert(&format!("order-{i:03}"), Bytes::from(vec![b'x'; 990]))
                .await;
        }
        let weight = cache.weighted_size().await;
        let count = cache.entry_count().await;
        assert!(weight <= max, "weighs {weight} bytes, bound is {max}");
        assert!(count <= 10, "{count} entries kept, at most 10 fit");
        assert!(count > 0, "the cache must keep something");
    }

    #[tokio::test]
    async fn zero_bytes_keeps_nothing() {
        let cache = OrderCache::new(Duration::from_secs(60), 0);
        cache.insert("a", Bytes::from_static(b"{}")).await;
        assert_eq!(cache.entry_count().await, 0);
        assert!(cache.get("a").await.is_none());
    }
}
