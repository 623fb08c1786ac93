//! The cache's entries with their time to live: quick_cache bounds them by weight but has no
//! time to live, so each answer carries its write time ([`Slot`]), an expired one is not
//! served (and removed when read), and the first write of each time to live, as well as
//! [`OrderCache::size`](super::OrderCache::size), sweeps out the expired ones that nobody
//! reads. Beside them, the ids recently not found.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use quick_cache::OptionsBuilder;
use quick_cache::sync::Cache;

use super::entry::{self, Buffer, ENTRY_OVERHEAD};
use super::slot::{Clock, Slot, Uid, Weigh, is_fresh};

/// The most ids remembered as not found (each costs about a hundred bytes).
const NEGATIVE_MAX_ENTRIES: usize = 65_536;

/// The JSON of a typical order (1,000 to 1,600 bytes): the entry count quick_cache is told to
/// expect is the byte bound over this plus an entry's other bytes. It sizes the shards and
/// the memory of recently evicted ids, not the bound.
const TYPICAL_JSON_BYTES: u64 = 1_300;

/// The entries, when the cache is on.
pub(super) struct Caches {
    /// Ready answers by `order_uid`, stamped with their write time; each weighs its key, its
    /// buffer and `ENTRY_OVERHEAD` (`entry.rs`). quick_cache (S3-FIFO-like CLOCK-PRO,
    /// weighted) bounds the bytes; the time to live is checked here, on every read.
    pub(super) orders: Cache<Uid, Slot, Weigh>,
    /// Ids recently not found, with when they were found absent.
    pub(super) absent: Cache<Uid, u64>,
    /// What the write stamps count on.
    pub(super) clock: Clock,
    /// How long an answer lives after it was written.
    pub(super) ttl: Duration,
    /// How long an id not found is remembered.
    negative_ttl: Duration,
    /// When (on [`Clock`]) the next write sweeps out expired entries.
    next_sweep: AtomicU64,
}

impl Caches {
    /// Caches that keep `ttl` and `max_bytes` (`max_bytes > 0`).
    pub(super) fn new(ttl: Duration, max_bytes: u64, negative_ttl: Duration) -> Self {
        let typical = TYPICAL_JSON_BYTES + (entry::ETAG_LEN + ENTRY_OVERHEAD) as u64;
        let expected = usize::try_from(max_bytes / typical)
            .unwrap_or(usize::MAX)
            .max(1);
        let orders = Cache::with_options(
            OptionsBuilder::new()
                .estimated_items_capacity(expected)
                .weight_capacity(max_bytes)
                .build()
                .expect("both capacities are set"),
            Weigh,
            Default::default(),
            Default::default(),
        );
        // Each shard holds its share of the bound, rounded up: a bound that the shards do not
        // divide is lowered to one they do, so that the shards' sum never exceeds it.
        let shards = orders.num_shards() as u64;
        if !max_bytes.is_multiple_of(shards) {
            orders.set_capacity(max_bytes - max_bytes % shards);
        }
        Self {
            orders,
            absent: Cache::new(NEGATIVE_MAX_ENTRIES),
            clock: Clock::start(),
            ttl,
            negative_ttl,
            next_sweep: AtomicU64::new(0),
        }
    }

    /// The buffer under `uid` if it is there and fresh at `now`. An expired one is removed
    /// (unless rewritten meanwhile) and not served.
    pub(super) fn fresh(&self, uid: &str, now: u64) -> Option<Buffer> {
        match self.orders.get(uid)? {
            Slot::Order { buf, written } if is_fresh(written, now, self.ttl) => Some(buf),
            Slot::Order { written, .. } => {
                self.remove_expired(uid, written);
                None
            }
            Slot::Failed(_) => None,
        }
    }

    /// Removes the answer under `uid` written at `written`, if it is still that one.
    pub(super) fn remove_expired(&self, uid: &str, written: u64) {
        self.orders.remove_if(
            uid,
            |slot| matches!(slot, Slot::Order { written: w, .. } if *w == written),
        );
    }

    /// Whether `uid` was found absent less than the negative time to live ago.
    pub(super) fn is_absent(&self, uid: &str, now: u64) -> bool {
        self.absent
            .get(uid)
            .is_some_and(|since| is_fresh(since, now, self.negative_ttl))
    }

    /// Caches `buf` under `uid`, written now; the first write of each time to live also
    /// sweeps out what has expired (see [`Self::sweep`]).
    pub(super) fn put(&self, uid: Uid, buf: Buffer) {
        let now = self.clock.now();
        self.orders.insert(uid, Slot::Order { buf, written: now });
        self.sweep_if_due(now);
    }

    /// Sweeps, if the last sweep is a time to live ago: expired entries that nobody reads
    /// would otherwise keep their memory until the byte bound evicts them (it always bounds
    /// them). One write in a time to live pays for it, and [`OrderCache::size`].
    pub(super) fn sweep_if_due(&self, now: u64) {
        let due = self.next_sweep.load(Ordering::Relaxed);
        if now < due {
            return;
        }
        let period = u64::try_from(self.ttl.as_nanos()).unwrap_or(u64::MAX);
        let next = now.saturating_add(period);
        if self
            .next_sweep
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.sweep(now);
        }
    }

    /// Removes every answer and every absent id that has expired at `now` (a pass over each
    /// shard, under its write lock).
    pub(super) fn sweep(&self, now: u64) {
        self.orders.retain(|_, slot| match slot {
            Slot::Order { written, .. } => is_fresh(*written, now, self.ttl),
            Slot::Failed(_) => true,
        });
        self.absent
            .retain(|_, since| is_fresh(*since, now, self.negative_ttl));
    }
}
