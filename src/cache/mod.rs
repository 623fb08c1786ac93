//! The in-memory cache of ready answers: each order's canonical JSON and its strong `ETag`,
//! bounded by a time to live and by bytes, so that a hit is one lookup and a clone of shared
//! bytes. Filled by ingest and by reads that miss (one database read per id however many
//! requests miss at once); warmed from PostgreSQL in the background at start-up (`warm.rs`).
//! Ids that are not found are remembered for [`NEGATIVE_TTL`] only, and an arriving order
//! clears that at once. The entries live in quick_cache, bounded by weight, with their time
//! to live kept by `timed.rs`; this file owns the lookups and the single-flight loads. One
//! entry's bytes and weight are `entry.rs`'s, what the cache keeps under an id `slot.rs`'s.

mod entry;
mod slot;
mod timed;
mod warm;

use std::sync::Arc;
use std::time::Duration;

pub use entry::CachedOrder;
use entry::buffer;
use slot::{Slot, Uid, is_fresh};
use timed::Caches;
pub use warm::{WarmUp, Warmed, WarmedSignal};

use crate::store::{OrderLookup, StoreError};

/// How long an id that was not found is answered 404 without asking the database again.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(1);

/// Where an answer came from: the cache or the database (the `X-Cache` header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// The cache had it.
    Hit,
    /// It was read from the database (by this request or by one it waited for).
    Miss,
}

impl Served {
    /// The value of the `X-Cache` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
        }
    }
}

/// Why a load did not give an order; shared by every request that waited for it.
#[derive(Debug)]
enum LoadError {
    /// No order has this id.
    NotFound,
    /// The database failed.
    Store(StoreError),
}

/// Ready answers by `order_uid`. Cheap to clone (one reference count: the HTTP state is
/// cloned per request): clones share one cache.
#[derive(Clone)]
pub struct OrderCache {
    /// `None` when the cache is off (`max_bytes == 0`): every read goes to the database.
    caches: Option<Arc<Caches>>,
    /// The byte bound, which also bounds the warm-up.
    max_bytes: u64,
}

impl OrderCache {
    /// A cache whose entries live `ttl` after they were written and whose entries weigh at
    /// most `max_bytes` together. `max_bytes == 0` turns the cache off.
    pub fn new(ttl: Duration, max_bytes: u64) -> Self {
        Self::with_negative_ttl(ttl, max_bytes, NEGATIVE_TTL)
    }

    /// [`Self::new`] with ids not found remembered for `negative_ttl`.
    pub fn with_negative_ttl(ttl: Duration, max_bytes: u64, negative_ttl: Duration) -> Self {
        let caches = (max_bytes > 0).then(|| Arc::new(Caches::new(ttl, max_bytes, negative_ttl)));
        Self { caches, max_bytes }
    }

    /// The order's answer, if cached and not expired.
    pub async fn get(&self, uid: &str) -> Option<CachedOrder> {
        self.cached(uid)
    }

    /// [`Self::get`] without a future, for the hot route's synchronous answer
    /// ([`crate::http::front`]): a hit never waits.
    pub fn cached(&self, uid: &str) -> Option<CachedOrder> {
        let caches = self.caches.as_ref()?;
        let buf = caches.fresh(uid, caches.clock.now())?;
        Some(CachedOrder::from_buffer(buf))
    }

    /// The order's answer from the cache, else from `store` (and then cached), or `None` if
    /// no order has this id. Concurrent misses for one id make one `store` read, whose
    /// outcome they all get: the order, its absence, or the database's error (not cached:
    /// the next request tries again).
    pub async fn get_or_load(
        &self,
        uid: &str,
        store: &dyn OrderLookup,
    ) -> Result<Option<(CachedOrder, Served)>, StoreError> {
        let Some(caches) = &self.caches else {
            let json = store.find(uid).await?;
            return Ok(json.map(|json| (CachedOrder::uncached(json), Served::Miss)));
        };
        let now = caches.clock.now();
        if let Some(buf) = caches.fresh(uid, now) {
            return Ok(Some((CachedOrder::from_buffer(buf), Served::Hit)));
        }
        if caches.is_absent(uid, now) {
            return Ok(None);
        }
        let key = Uid::from(uid);
        loop {
            // The answer, a load's outcome that this request waited for, or the guard that
            // makes this request the one that loads.
            let guard = match caches.orders.get_value_or_guard_async(&key).await {
                Ok(Slot::Order { buf, written }) => {
                    if is_fresh(written, caches.clock.now(), caches.ttl) {
                        return Ok(Some((CachedOrder::from_buffer(buf), Served::Miss)));
                    }
                    caches.remove_expired(uid, written);
                    continue;
                }
                Ok(Slot::Failed(error)) => return failed(&error),
                Err(guard) => guard,
            };
            // A guard dropped without a value (this request given up) hands the load to one
            // of the waiters.
            let slot = match store.find(uid).await {
                Ok(Some(json)) => Slot::Order {
                    buf: buffer(&json),
                    written: caches.clock.now(),
                },
                Ok(None) => {
                    // Remembered before the load ends, so that a request arriving just after
                    // it finds the id absent rather than reading the database again.
                    caches.absent.insert(key.clone(), caches.clock.now());
                    Slot::Failed(Arc::new(LoadError::NotFound))
                }
                Err(error) => Slot::Failed(Arc::new(LoadError::Store(error))),
            };
            // The waiters get the slot from the placeholder itself; a failure is then
            // removed from the cache at once (unless an insert replaced it already), so that
            // the next request tries again.
            let _ = guard.insert(slot.clone());
            return match slot {
                Slot::Order { buf, written } => {
                    caches.sweep_if_due(written);
                    Ok(Some((CachedOrder::from_buffer(buf), Served::Miss)))
                }
                Slot::Failed(error) => {
                    caches.orders.remove_if(
                        uid,
                        |slot| matches!(slot, Slot::Failed(e) if Arc::ptr_eq(e, &error)),
                    );
                    failed(&error)
                }
            };
        }
    }

    /// Caches an order's JSON (ingest calls it once the order is committed). An id recently
    /// not found is forgotten first, so that the order is visible at once.
    pub async fn insert(&self, uid: &str, json: &[u8]) {
        let Some(caches) = &self.caches else {
            return;
        };
        caches.absent.remove(uid);
        caches.put(Uid::from(uid), buffer(json));
    }

    /// How many entries are cached and how many bytes they weigh together, after expired
    /// entries are swept out (once, for both figures).
    pub async fn size(&self) -> (u64, u64) {
        match &self.caches {
            Some(caches) => {
                caches.sweep(caches.clock.now());
                (caches.orders.len() as u64, caches.orders.weight())
            }
            None => (0, 0),
        }
    }

    /// How many entries are cached (after expired entries are swept out).
    pub async fn entry_count(&self) -> u64 {
        self.size().await.0
    }

    /// How many bytes the entries weigh together (after expired entries are swept out).
    pub async fn weighted_size(&self) -> u64 {
        self.size().await.1
    }
}

/// What the requests that shared a failed load answer.
fn failed(error: &LoadError) -> Result<Option<(CachedOrder, Served)>, StoreError> {
    match error {
        LoadError::NotFound => Ok(None),
        LoadError::Store(error) => Err(error.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use bytes::Bytes;

    use super::entry::{ENTRY_OVERHEAD, ETAG_LEN};
    use super::*;

    #[tokio::test]
    async fn entries_expire_after_the_ttl() {
        let cache = OrderCache::new(Duration::from_millis(100), 1 << 20);
        cache.insert("a", b"{}").await;
        assert!(cache.get("a").await.is_some(), "fresh entry must be served");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(cache.get("a").await.is_none(), "expired entry must be gone");
    }

    #[tokio::test]
    async fn the_byte_bound_holds() {
        let per_entry = (9 + ETAG_LEN + 990 + ENTRY_OVERHEAD) as u64;
        let max = 10 * per_entry;
        let cache = OrderCache::new(Duration::from_secs(60), max);
        for i in 0..100 {
            cache.insert(&format!("order-{i:03}"), &[b'x'; 990]).await;
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
        cache.insert("a", b"{}").await;
        assert_eq!(cache.entry_count().await, 0);
        assert!(cache.get("a").await.is_none());
    }

    #[tokio::test]
    async fn an_expired_entry_is_not_served_and_leaves_the_counts() {
        let cache = OrderCache::new(Duration::from_millis(100), 1 << 20);
        let lookup = Gated::new(Ok(Some(Bytes::from_static(b"{\"v\":2}"))), true);
        cache.insert("a", b"{\"v\":1}").await;
        cache.insert("b", b"{}").await;
        let (order, served) = cache
            .get_or_load("a", &lookup)
            .await
            .ok()
            .flatten()
            .expect("hit");
        assert_eq!(
            (order.json.as_ref(), served),
            (&b"{\"v\":1}"[..], Served::Hit)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            cache.size().await,
            (0, 0),
            "expired entries are swept from the counts"
        );
        let (order, served) = cache
            .get_or_load("a", &lookup)
            .await
            .ok()
            .flatten()
            .expect("read");
        assert_eq!(
            (order.json.as_ref(), served),
            (&b"{\"v\":2}"[..], Served::Miss),
            "an expired entry is read again"
        );
        assert_eq!(lookup.reads(), 1);
        assert_eq!(cache.entry_count().await, 1);
    }

    #[tokio::test]
    async fn the_waiters_of_a_load_share_its_outcome_and_a_failure_is_not_kept() {
        for outcome in [
            Err(StoreError::Timeout(Duration::from_secs(1))),
            Ok(None),
            Ok(Some(Bytes::from_static(b"{}"))),
        ] {
            let found = matches!(outcome, Ok(Some(_)));
            let failed = outcome.is_err();
            let cache =
                OrderCache::with_negative_ttl(Duration::from_secs(60), 1 << 20, Duration::ZERO);
            let lookup = Arc::new(Gated::new(outcome, false));
            let requests: Vec<_> = (0..8)
                .map(|_| {
                    let (cache, lookup) = (cache.clone(), lookup.clone());
                    tokio::spawn(async move { cache.get_or_load("a", lookup.as_ref()).await })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(50)).await;
            lookup.gate.add_permits(1000);
            for request in requests {
                let answer = request.await.expect("no panic");
                match &answer {
                    Err(StoreError::Timeout(_)) => assert!(failed),
                    Ok(None) => assert!(!failed && !found),
                    Ok(Some((_, Served::Miss))) => assert!(found),
                    other => panic!("unexpected answer {other:?}"),
                }
            }
            assert_eq!(lookup.reads(), 1, "one read for eight waiters");
            let again = cache.get_or_load("a", lookup.as_ref()).await;
            let reads = if found { 1 } else { 2 };
            assert_eq!(lookup.reads(), reads, "only an order is kept: {again:?}");
            assert_eq!(cache.entry_count().await, u64::from(found));
        }
    }

    /// An [`OrderLookup`] whose reads wait for a gate, then give one outcome, and are counted.
    struct Gated {
        /// What every read gives.
        outcome: Result<Option<Bytes>, StoreError>,
        /// Each read waits for a permit.
        gate: tokio::sync::Semaphore,
        /// Reads made.
        reads: std::sync::atomic::AtomicUsize,
    }

    impl Gated {
        fn new(outcome: Result<Option<Bytes>, StoreError>, open: bool) -> Self {
            Self {
                outcome,
                gate: tokio::sync::Semaphore::new(if open { 1000 } else { 0 }),
                reads: Default::default(),
            }
        }

        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    impl OrderLookup for Gated {
        fn find(
            &self,
            _uid: &str,
        ) -> futures::future::BoxFuture<'_, Result<Option<Bytes>, StoreError>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                let _permit = self.gate.acquire().await.expect("open");
                self.outcome.clone()
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_order_loaded_by_concurrent_misses_stays_cached() {
        let cache = OrderCache::new(Duration::from_secs(60), 1 << 30);
        let store = std::sync::Arc::new(Gated::new(Ok(Some(Bytes::from_static(b"{}"))), true));
        let ids: Vec<String> = (0..2_000).map(|i| format!("order-{i:04}")).collect();
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let (cache, store, ids) = (cache.clone(), store.clone(), ids.clone());
                tokio::spawn(async move {
                    for uid in ids.iter().skip(t).step_by(8) {
                        let loaded = cache.get_or_load(uid, store.as_ref()).await;
                        assert!(matches!(loaded, Ok(Some(_))), "{uid}");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("no panic");
        }
        let missing: Vec<&String> = futures::future::join_all(ids.iter().map(|uid| {
            let cache = cache.clone();
            async move { cache.get(uid).await.is_none().then_some(uid) }
        }))
        .await
        .into_iter()
        .flatten()
        .collect();
        assert!(missing.is_empty(), "not cached: {missing:?}");
        assert_eq!(cache.entry_count().await, 2_000);
    }

    #[test]
    fn the_negative_ttl_is_short() {
        assert!(NEGATIVE_TTL <= Duration::from_secs(2));
    }
}
