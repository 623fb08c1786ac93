//! The in-memory cache of ready answers: each order's canonical JSON and its strong `ETag`,
//! bounded by a time to live and by bytes, so that a hit is one lookup and a clone of shared
//! bytes. Filled by ingest and by reads that miss (one database read per id however many
//! requests miss at once); warmed from PostgreSQL in the background at start-up. Ids that are
//! not found are remembered for [`NEGATIVE_TTL`] only, and an arriving order clears that at
//! once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use bytes::Bytes;
use futures::future::BoxFuture;
use moka::future::Cache;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::{OrderLookup, StoreError};

/// What one entry costs beyond its key, its JSON and its `ETag` (moka's bookkeeping: the hash
/// table's bucket, the entry and its info, the deque nodes, the frequency sketch; the `Bytes`
/// header; the allocator's rounding), counted against the byte bound so that the bound holds
/// for resident memory, for many small orders too. `make bench-http` measured 1,840 to 1,876
/// bytes of resident memory per cached order of 1,280 bytes of JSON, 34 of `ETag` and 19 of
/// id with glibc's allocator (510 to 540 more), and 1,904 with mimalloc, the binary's
/// allocator (571 more).
const ENTRY_OVERHEAD: usize = 576;

/// How long an id that was not found is answered 404 without asking the database again.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(1);

/// The most ids remembered as not found (each costs a few hundred bytes).
const NEGATIVE_MAX_ENTRIES: u64 = 65_536;

/// Length of an `ETag`: 32 hex digits (128 bits of SHA-256) between double quotes.
const ETAG_LEN: usize = 34;

/// One ready answer: the order's canonical JSON and its strong `ETag`, sharing one buffer.
#[derive(Clone, Debug)]
pub struct CachedOrder {
    /// The order's canonical JSON, the body of the answer.
    pub json: Bytes,
    /// `"<32 hex digits>"`: the first 128 bits of the JSON's SHA-256. Orders are immutable,
    /// so the tag of an id never changes, across restarts and instances too.
    pub etag: HeaderValue,
}

impl CachedOrder {
    /// The answer for `json`.
    pub fn new(json: &[u8]) -> Self {
        Self::from_buffer(buffer(json))
    }

    /// The answer in a buffer made by [`buffer`]: two slices of it, no copy.
    fn from_buffer(buf: Bytes) -> Self {
        let etag = HeaderValue::from_maybe_shared(buf.slice(..ETAG_LEN))
            .expect("double quotes and hex digits are a valid header value");
        Self {
            json: buf.slice(ETAG_LEN..),
            etag,
        }
    }
}

/// What the cache keeps of an answer: its `ETag` then its JSON, in one buffer of exactly their
/// size (serializers leave spare capacity that a long-lived entry would keep). One `Bytes`
/// per entry rather than two handles keeps moka's entries small.
fn buffer(json: &[u8]) -> Bytes {
    let digest = Sha256::digest(json);
    let mut buf = Vec::with_capacity(ETAG_LEN + json.len());
    buf.push(b'"');
    for byte in &digest[..(ETAG_LEN - 2) / 2] {
        buf.push(HEX[usize::from(byte >> 4)]);
        buf.push(HEX[usize::from(byte & 0xf)]);
    }
    buf.push(b'"');
    buf.extend_from_slice(json);
    Bytes::from(buf)
}

/// Lower-case hex digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The cache had it.
    Hit,
    /// It was read from the database (by this request or by one it waited for).
    Miss,
}

impl Source {
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
    Store(Arc<StoreError>),
}

/// The entries, when the cache is on.
struct Caches {
    /// Ready answers by `order_uid`, as [`buffer`]s; each weighs its key, its buffer and
    /// [`ENTRY_OVERHEAD`].
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
    ) -> Result<Option<(CachedOrder, Source)>, Arc<StoreError>> {
        let Some(caches) = &self.caches else {
            let json = store.find(uid).await.map_err(Arc::new)?;
            return Ok(json.map(|json| (CachedOrder::new(&json), Source::Miss)));
        };
        if let Some(buf) = caches.orders.get(uid).await {
            return Ok(Some((CachedOrder::from_buffer(buf), Source::Hit)));
        }
        if caches.absent.contains_key(uid) {
            return Ok(None);
        }
        let load = async {
            match store.find(uid).await {
                Ok(Some(json)) => Ok(buffer(&json)),
                Ok(None) => Err(LoadError::NotFound),
                Err(error) => Err(LoadError::Store(Arc::new(error))),
            }
        };
        let key: Box<str> = Box::from(uid);
        // Errors are not cached: the requests waiting for this load share its outcome, and
        // the next request tries again.
        match caches.orders.try_get_with(key.clone(), load).await {
            Ok(buf) => Ok(Some((CachedOrder::from_buffer(buf), Source::Miss))),
            Err(error) => match &*error {
                LoadError::NotFound => {
                    caches.absent.insert(key, ()).await;
                    Ok(None)
                }
                LoadError::Store(error) => Err(Arc::clone(error)),
            },
        }
    }

    /// Caches an order's JSON (ingest calls it once the order is committed). An id recently
    /// not found is forgotten first, so that the order is visible at once.
    pub async fn insert(&self, uid: &str, json: Bytes) {
        let Some(caches) = &self.caches else {
            return;
        };
        caches.absent.invalidate(uid).await;
        caches.orders.insert(Box::from(uid), buffer(&json)).await;
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

    /// Loads the most recently stored orders, at most `limit` and at most the cache's byte
    /// bound, so that a restarted service answers from memory at once; logs how many orders
    /// and bytes it loaded and how long it took.
    pub async fn warm(&self, source: &dyn WarmSource, limit: i64) -> Result<Warmed, StoreError> {
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
                caches.orders.insert(uid.into_boxed_str(), buf).await;
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
    pub fn spawn_warm(&self, source: Arc<dyn WarmSource>, limit: i64) -> WarmUp {
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

/// moka's weigher: what an entry weighs, saturated to `u32`.
#[allow(clippy::borrowed_box)] // moka hands the key as `&K`, and `K` is `Box<str>`.
fn weigh(uid: &Box<str>, buf: &Bytes) -> u32 {
    u32::try_from(weight(uid, buf)).unwrap_or(u32::MAX)
}

/// What an entry weighs against the byte bound.
fn weight(uid: &str, buf: &Bytes) -> usize {
    uid.len() + buf.len() + ENTRY_OVERHEAD
}

/// What a warm-up loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Warmed {
    /// Orders loaded.
    pub orders: u64,
    /// Bytes of canonical JSON loaded.
    pub bytes: u64,
}

/// Where the warm-up reads the most recent orders from.
pub trait WarmSource: Send + Sync + 'static {
    /// The most recently stored orders, newest first, as `(order_uid, canonical JSON)`: at
    /// most `limit`, and no more once their JSON adds up to `max_bytes`.
    fn recent_orders(
        &self,
        limit: i64,
        max_bytes: u64,
    ) -> BoxFuture<'_, Result<Vec<(String, Bytes)>, StoreError>>;
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

    use tokio::sync::Semaphore;

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
        let per_entry = (9 + ETAG_LEN + 990 + ENTRY_OVERHEAD) as u64;
        let max = 10 * per_entry;
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

    #[test]
    fn the_etag_is_a_strong_tag_of_the_bytes_and_shares_their_buffer() {
        let order = CachedOrder::new(br#"{"order_uid":"a"}"#);
        let etag = order.etag.to_str().expect("ASCII");
        assert_eq!(etag.len(), ETAG_LEN);
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        assert!(
            etag[1..ETAG_LEN - 1]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{etag}"
        );
        // SHA-256 of the bytes, so the same on every instance and after every restart.
        assert_eq!(etag, "\"e118d3fa47b30740ede2ada3a01adbec\"");
        assert_eq!(order.json.as_ref(), br#"{"order_uid":"a"}"#);
        assert_eq!(order.etag, CachedOrder::new(br#"{"order_uid":"a"}"#).etag);
        assert_ne!(order.etag, CachedOrder::new(br#"{"order_uid":"b"}"#).etag);
    }

    #[test]
    fn the_negative_ttl_is_short() {
        assert!(NEGATIVE_TTL <= Duration::from_secs(2));
    }

    /// A [`WarmSource`] whose answer waits for a gate, then gives `n` orders of 1,000 bytes
    /// (`order-<n-1>` newest), at most the limit, and counts how often it was asked.
    struct FakeSource {
        /// How many orders it holds.
        n: usize,
        /// Each call waits for a permit.
        gate: Arc<Semaphore>,
        /// The limits it was asked with.
        asked: Mutex<Vec<(i64, u64)>>,
    }

    impl WarmSource for FakeSource {
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
        let (order, source) = cache
            .get_or_load("order-001", &lookup)
            .await
            .expect("no error")
            .expect("found");
        assert_eq!(
            source,
            Source::Miss,
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
        let (_, source) = cache
            .get_or_load("order-002", &lookup)
            .await
            .expect("no error")
            .expect("warmed");
        assert_eq!(source, Source::Hit, "order-002 came from the warm-up");
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
