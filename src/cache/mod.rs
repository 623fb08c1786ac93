//! The in-memory cache of ready answers: each order's canonical JSON and its strong `ETag`,
//! bounded by a time to live and by bytes, so that a hit is one lookup and a clone of shared
//! bytes. Filled by ingest and by reads that miss (one database read per id however many
//! requests miss at once); warmed from PostgreSQL in the background at start-up (`warm.rs`).
//! Ids that are not found are remembered for [`NEGATIVE_TTL`] only, and an arriving order
//! clears that at once. One entry's bytes and weight are `entry.rs`'s.

mod entry;
mod warm;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use moka::future::Cache;

pub use entry::CachedOrder;
use entry::{buffer, weight};
pub use warm::{WarmUp, Warmed, WarmedSignal};

use crate::store::{OrderLookup, StoreError};

/// How long an id that was not found is answered 404 without asking the database again.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(1);

/// The most ids remembered as not found (each costs a few hundred bytes).
const NEGATIVE_MAX_ENTRIES: u64 = 65_536;

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

/// The entries, when the cache is on.
struct Caches {
    /// Ready answers by `order_uid`, as [`buffer`]s; each weighs its key, its buffer and
    /// `ENTRY_OVERHEAD` (`entry.rs`).
    orders: Cache<Box<str>, Bytes>,
    /// Ids recently not found, for [`NEGATIVE_TTL`].
    absent: Cache<Box<str>, ()>,
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
        let caches = (max_bytes > 0).then(|| {
            Arc::new(Caches {
                orders: Cache::builder()
                    .time_to_live(ttl)
                    .max_capacity(max_bytes)
                    .weigher(weigh)
                    .build(),
                absent: Cache::builder()
                    .time_to_live(negative_ttl)
                    .max_capacity(NEGATIVE_MAX_ENTRIES)
                    .build(),
            })
        });
        Self { caches, max_bytes }
    }

    /// The order's answer, if cached and not expired.
    pub async fn get(&self, uid: &str) -> Option<CachedOrder> {
        let buf = self.caches.as_ref()?.orders.get(uid).await?;
        Some(CachedOrder::from_buffer(buf))
    }

    /// The order's answer from the cache, else from `store` (and then cached), or `None` if
    /// no order has this id. Concurrent misses for one id make one `store` read, whose
    /// outcome they all get.
    pub async fn get_or_load(
        &self,
        uid: &str,
        store: &dyn OrderLookup,
    ) -> Result<Option<(CachedOrder, Served)>, StoreError> {
        let Some(caches) = &self.caches else {
            let json = store.find(uid).await?;
            return Ok(json.map(|json| (CachedOrder::new(&json), Served::Miss)));
        };
        if let Some(buf) = caches.orders.get(uid).await {
            return Ok(Some((CachedOrder::from_buffer(buf), Served::Hit)));
        }
        if caches.absent.contains_key(uid) {
            return Ok(None);
        }
        let key: Box<str> = Box::from(uid);
        let load = async {
            match store.find(uid).await {
                Ok(Some(json)) => Ok(buffer(&json)),
                Ok(None) => {
                    // Remembered before the load ends, so that a request arriving just after
                    // it finds the id absent rather than reading the database again.
                    caches.absent.insert(key.clone(), ()).await;
                    Err(LoadError::NotFound)
                }
                Err(error) => Err(LoadError::Store(error)),
            }
        };
        // Errors are not cached: the requests waiting for this load share its outcome, and
        // the next request tries again.
        match caches.orders.try_get_with(key.clone(), load).await {
            Ok(buf) => Ok(Some((CachedOrder::from_buffer(buf), Served::Miss))),
            Err(error) => match &*error {
                LoadError::NotFound => Ok(None),
                LoadError::Store(error) => Err(error.clone()),
            },
        }
    }

    /// Caches an order's JSON (ingest calls it once the order is committed). An id recently
    /// not found is forgotten first, so that the order is visible at once.
    pub async fn insert(&self, uid: &str, json: &[u8]) {
        let Some(caches) = &self.caches else {
            return;
        };
        caches.absent.invalidate(uid).await;
        caches.orders.insert(Box::from(uid), buffer(json)).await;
    }

    /// How many entries are cached and how many bytes they weigh together, after pending
    /// evictions are applied (once, for both figures).
    pub async fn size(&self) -> (u64, u64) {
        match &self.caches {
            Some(caches) => {
                caches.orders.run_pending_tasks().await;
                (caches.orders.entry_count(), caches.orders.weighted_size())
            }
            None => (0, 0),
        }
    }

    /// How many entries are cached (after pending evictions are applied).
    pub async fn entry_count(&self) -> u64 {
        self.size().await.0
    }

    /// How many bytes the entries weigh together (after pending evictions are applied).
    pub async fn weighted_size(&self) -> u64 {
        self.size().await.1
    }
}

/// moka's weigher: what an entry weighs, saturated to `u32`.
#[allow(clippy::borrowed_box)] // moka hands the key as `&K`, and `K` is `Box<str>`.
fn weigh(uid: &Box<str>, buf: &Bytes) -> u32 {
    u32::try_from(weight(uid, buf)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn the_negative_ttl_is_short() {
        assert!(NEGATIVE_TTL <= Duration::from_secs(2));
    }
}
