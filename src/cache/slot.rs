//! What the order cache keeps under an id, and when it was written: a ready answer stamped
//! with its write time (quick_cache has no time to live, so the cache checks the stamp on
//! every read), or, for the moment between a failed load and its removal, the failure the
//! load's waiters share. The clock the stamps count on, and what each slot weighs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use compact_str::CompactString;
use quick_cache::Weighter;

use super::LoadError;
use super::entry::{Buffer, weight};

/// A key of the caches: an `order_uid`, kept in place up to 24 bytes (ids are 19 on average),
/// without an allocation of its own.
pub(super) type Uid = CompactString;

/// A value of the orders cache.
#[derive(Clone)]
pub(super) enum Slot {
    /// A ready answer: a [`buffer`](super::entry::buffer) and when it was written, in
    /// [`Clock`] nanoseconds.
    Order {
        /// The `ETag`'s digest then the JSON.
        buf: Buffer,
        /// When it was written.
        written: u64,
    },
    /// A load that did not give an order (not found, or the database failed): put in the
    /// placeholder for the requests waiting on that load, and removed at once.
    Failed(Arc<LoadError>),
}

/// Nanoseconds since the cache was made: the write stamps of its slots (8 bytes, where an
/// `Instant` takes 16 in every entry).
#[derive(Clone, Copy, Debug)]
pub(super) struct Clock(Instant);

impl Clock {
    /// A clock that starts now.
    pub(super) fn start() -> Self {
        Self(Instant::now())
    }

    /// Nanoseconds since the start (saturated: 584 years).
    pub(super) fn now(self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Whether something written at `written` is still within `ttl` at `now` (both [`Clock`]
/// nanoseconds): it lives `ttl` after it was written, as moka's `time_to_live` did.
pub(super) fn is_fresh(written: u64, now: u64, ttl: Duration) -> bool {
    let ttl = u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX);
    now.saturating_sub(written) < ttl
}

/// quick_cache's weigher of the orders cache: an answer weighs its id, its buffer and
/// `ENTRY_OVERHEAD` (`entry.rs`); a failure, there only for an instant, weighs 1.
#[derive(Clone, Copy, Debug)]
pub(super) struct Weigh;

impl Weighter<Uid, Slot> for Weigh {
    fn weight(&self, uid: &Uid, slot: &Slot) -> u64 {
        match slot {
            Slot::Order { buf, .. } => weight(uid, buf) as u64,
            Slot::Failed(_) => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_fresh_for_the_ttl_after_it_was_written() {
        let ttl = Duration::from_millis(100);
        assert!(is_fresh(1_000, 1_000, ttl));
        assert!(is_fresh(1_000, 1_000 + 99_999_999, ttl));
        assert!(!is_fresh(1_000, 1_000 + 100_000_000, ttl));
        assert!(
            is_fresh(5, 1, ttl),
            "a stamp from just after `now` is fresh"
        );
        assert!(is_fresh(0, u64::MAX - 1, Duration::MAX));
    }
}
