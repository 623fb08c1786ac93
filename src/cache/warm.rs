//! The cache's warm-up: at start-up, the most recently stored orders are loaded in the
//! background (bounded by a count and by the cache's bytes, newest first), while requests are
//! answered from PostgreSQL; a signal says when it has finished.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::OrderCache;
use super::entry::{buffer, weight};
use crate::store::{RecentOrders, StoreError};

impl OrderCache {
    /// Loads the most recently stored orders, at most `limit` and at most the cache's byte
    /// bound, so that a restarted service answers from memory at once; logs how many orders
    /// and bytes it loaded and how long it took.
    pub async fn warm(&self, source: &dyn RecentOrders, limit: i64) -> Result<Warmed, StoreError> {
        let started = Instant::now();
        let mut warmed = Warmed::default();
        if let Some(caches) = self.caches.as_ref().filter(|_| limit > 0) {
            let orders = source.recent_orders(limit, self.max_bytes).await?;
            let mut budget = self.max_bytes;
            // Newest first: the newest orders are the ones that fit.
            for (uid, json) in orders {
                let buf = buffer(&json);
                let cost = weight(&uid, &buf) as u64;
                if cost > budget {
                    break;
                }
                budget -= cost;
                warmed.orders += 1;
                warmed.bytes += json.len() as u64;
                caches.put(uid.into(), buf);
            }
        }
        tracing::info!(
            orders = warmed.orders,
            bytes = warmed.bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            limit,
            max_bytes = self.max_bytes,
            "cache warmed from PostgreSQL"
        );
        Ok(warmed)
    }

    /// Starts [`Self::warm`] in the background and returns at once.
    pub fn spawn_warm(&self, source: Arc<dyn RecentOrders>, limit: i64) -> WarmUp {
        let (done, finished) = watch::channel(false);
        let cache = self.clone();
        let task = tokio::spawn(async move {
            if let Err(error) = cache.warm(source.as_ref(), limit).await {
                tracing::warn!(%error, "cache warm-up failed; reads miss until they fill it");
            }
            done.send_replace(true);
        });
        WarmUp {
            task,
            finished: WarmedSignal(finished),
        }
    }
}

/// What a warm-up loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Warmed {
    /// Orders loaded.
    pub orders: u64,
    /// Bytes of canonical JSON loaded.
    pub bytes: u64,
}

/// A warm-up running in the background.
#[derive(Debug)]
pub struct WarmUp {
    /// The task; aborted at shutdown if still running.
    task: JoinHandle<()>,
    /// Says when it has finished.
    finished: WarmedSignal,
}

impl WarmUp {
    /// A handle that says when the warm-up has finished.
    pub fn finished(&self) -> WarmedSignal {
        self.finished.clone()
    }

    /// Stops the warm-up if it is still running.
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Says when a warm-up has finished (loaded, failed or was stopped).
#[derive(Clone, Debug)]
pub struct WarmedSignal(watch::Receiver<bool>);

impl WarmedSignal {
    /// Whether it has finished.
    pub fn is_finished(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Waits until it has finished.
    pub async fn wait(mut self) {
        // An error means the task is gone (stopped): finished too.
        let _ = self.0.wait_for(|done| *done).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use bytes::Bytes;
    use futures::future::BoxFuture;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::cache::entry::{ENTRY_OVERHEAD, ETAG_LEN};
    use crate::cache::{OrderCache, Served};
    use crate::store::OrderLookup;

    /// A [`RecentOrders`] whose answer waits for a gate, then gives `n` orders of 1,000 bytes
    /// (`order-<n-1>` newest), at most the limit, and counts how often it was asked.
    struct FakeSource {
        /// How many orders it holds.
        n: usize,
        /// Each call waits for a permit.
        gate: Arc<Semaphore>,
        /// The limits it was asked with.
        asked: Mutex<Vec<(i64, u64)>>,
    }

    impl RecentOrders for FakeSource {
        fn recent_orders(
            &self,
            limit: i64,
            max_bytes: u64,
        ) -> BoxFuture<'_, Result<Vec<(String, Bytes)>, StoreError>> {
            self.asked
                .lock()
                .expect("not poisoned")
                .push((limit, max_bytes));
            Box::pin(async move {
                let _permit = self.gate.acquire().await.expect("open");
                let take = usize::try_from(limit).unwrap_or(0).min(self.n);
                Ok((0..self.n)
                    .rev()
                    .take(take)
                    .map(|i| (format!("order-{i:03}"), Bytes::from(vec![b'x'; 1000])))
                    .collect())
            })
        }
    }

    fn source(n: usize, open: bool) -> Arc<FakeSource> {
        Arc::new(FakeSource {
            n,
            gate: Arc::new(Semaphore::new(if open { 1000 } else { 0 })),
            asked: Mutex::new(Vec::new()),
        })
    }

    #[tokio::test]
    async fn the_warm_up_is_bounded_by_the_limit_and_by_bytes_keeping_the_newest() {
        let per_entry = (9 + ETAG_LEN + 1000 + ENTRY_OVERHEAD) as u64;
        let by_bytes = OrderCache::new(Duration::from_secs(60), 5 * per_entry + 10);
        let fake = source(20, true);
        let warmed = by_bytes.warm(fake.as_ref(), 100).await.expect("warmed");
        assert_eq!(
            warmed,
            Warmed {
                orders: 5,
                bytes: 5000
            }
        );
        assert_eq!(
            fake.asked.lock().expect("not poisoned").as_slice(),
            [(100, 5 * per_entry + 10)]
        );
        assert_eq!(by_bytes.entry_count().await, 5);
        for newest in 15..20 {
            assert!(by_bytes.get(&format!("order-{newest:03}")).await.is_some());
        }
        assert!(by_bytes.get("order-014").await.is_none());

        let by_count = OrderCache::new(Duration::from_secs(60), 1 << 30);
        let warmed = by_count.warm(source(20, true).as_ref(), 3).await;
        assert_eq!(warmed.expect("warmed").orders, 3);
        assert_eq!(by_count.entry_count().await, 3);

        let off = OrderCache::new(Duration::from_secs(60), 0);
        let fake = source(20, true);
        assert_eq!(off.warm(fake.as_ref(), 100).await.expect("ok").orders, 0);
        assert!(
            fake.asked.lock().expect("not poisoned").is_empty(),
            "a cache that is off reads nothing"
        );
    }

    /// An [`OrderLookup`] that knows `order-001` and counts its lookups.
    struct CountingLookup(AtomicUsize);

    impl OrderLookup for CountingLookup {
        fn find(&self, uid: &str) -> BoxFuture<'_, Result<Option<Bytes>, StoreError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let found = (uid == "order-001").then(|| Bytes::from_static(b"{}"));
            Box::pin(async move { Ok(found) })
        }
    }

    #[tokio::test]
    async fn reads_are_served_while_the_warm_up_waits() {
        let cache = OrderCache::new(Duration::from_secs(60), 1 << 20);
        let fake = source(3, false);
        let warm_up = cache.spawn_warm(fake.clone(), 10);
        let finished = warm_up.finished();
        let lookup = CountingLookup(AtomicUsize::new(0));
        let (order, served) = cache
            .get_or_load("order-001", &lookup)
            .await
            .expect("no error")
            .expect("found");
        assert_eq!(
            served,
            Served::Miss,
            "answered from the store during warm-up"
        );
        assert_eq!(order.json.as_ref(), b"{}");
        assert!(
            !finished.is_finished(),
            "the warm-up still waits at its gate"
        );

        fake.gate.add_permits(1);
        tokio::time::timeout(Duration::from_secs(10), finished.clone().wait())
            .await
            .expect("the warm-up finishes");
        assert!(finished.is_finished());
        let (_, served) = cache
            .get_or_load("order-002", &lookup)
            .await
            .expect("no error")
            .expect("warmed");
        assert_eq!(served, Served::Hit, "order-002 came from the warm-up");
        assert_eq!(lookup.0.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_stopped_warm_up_counts_as_finished() {
        let cache = OrderCache::new(Duration::from_secs(60), 1 << 20);
        let warm_up = cache.spawn_warm(source(3, false), 10);
        let finished = warm_up.finished();
        warm_up.abort();
        tokio::time::timeout(Duration::from_secs(10), finished.clone().wait())
            .await
            .expect("an aborted warm-up is finished");
        assert!(finished.is_finished());
        assert_eq!(cache.entry_count().await, 0);
    }
}
