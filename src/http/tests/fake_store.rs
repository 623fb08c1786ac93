//! The fake store of the HTTP unit tests: one [`FakeStore`] behind every read seam of the
//! store (`store/read.rs`: lookups by id, the warm-up's recent orders, the lists, the ping),
//! answering as its [`Mode`] says.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::Semaphore;

use crate::order::OrderSummary;
use crate::store::{
    DatabasePing, OrderLookup, RecentLists, RecentOrders, RejectedSummary, StoreError,
};

/// The JSON of each order the fake store knows (`known-1`, `known-2`) and of the one its
/// warm-up gives (`warm-3`).
pub const ORDER: &[u8] = br#"{"order_uid":"known-1"}"#;

/// How the fake store answers.
#[derive(Clone, Copy)]
pub enum Mode {
    /// From its map.
    Up,
    /// Database unreachable: lookups, lists and pings fail.
    Down,
    /// A lookup fails with a query error with internal text in it.
    Broken,
    /// A lookup never answers.
    Stalled,
    /// A lookup answers from its map once the test opens the gate.
    Gated,
}

/// A fake of every read seam: two orders to look up (`known-1`, `known-2`), one order and one
/// rejection to list, one order to warm the cache with, and a ping; each answering as its
/// [`Mode`] says.
pub struct FakeStore {
    /// The orders it knows.
    orders: HashMap<String, Bytes>,
    /// How it answers.
    mode: Mode,
    /// How many lookups were started.
    lookups: AtomicUsize,
    /// Gets a permit each time a lookup starts (to wait for lookups in flight).
    pub entered: Arc<Semaphore>,
    /// In [`Mode::Gated`], each lookup waits for a permit of this, which starts with none; so
    /// does the warm-up, in every mode.
    pub gate: Arc<Semaphore>,
    /// Every list limit asked for, in order.
    asked: Mutex<Vec<i64>>,
}

impl FakeStore {
    /// A store answering as `mode` says.
    pub fn new(mode: Mode) -> Self {
        Self {
            orders: HashMap::from([
                ("known-1".to_owned(), Bytes::from_static(ORDER)),
                ("known-2".to_owned(), Bytes::from_static(ORDER)),
            ]),
            mode,
            lookups: AtomicUsize::new(0),
            entered: Arc::new(Semaphore::new(0)),
            gate: Arc::new(Semaphore::new(0)),
            asked: Mutex::default(),
        }
    }

    /// How many lookups were started so far.
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    /// The list limits asked for so far.
    pub fn asked(&self) -> Vec<i64> {
        self.asked.lock().expect("not poisoned").clone()
    }

    /// Records a list's `limit`; fails when the database is down.
    fn ask(&self, limit: i64) -> Result<(), StoreError> {
        self.asked.lock().expect("not poisoned").push(limit);
        match self.mode {
            Mode::Down => Err(unreachable_database()),
            _ => Ok(()),
        }
    }
}

/// The error of a read while the database is unreachable.
fn unreachable_database() -> StoreError {
    StoreError::Unavailable(Arc::new(sqlx::Error::PoolTimedOut))
}

impl OrderLookup for FakeStore {
    fn find(&self, uid: &str) -> BoxFuture<'_, Result<Option<Bytes>, StoreError>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.entered.add_permits(1);
        let found = self.orders.get(uid).cloned();
        match self.mode {
            Mode::Up => Box::pin(async move { Ok(found) }),
            Mode::Down => Box::pin(async { Err(unreachable_database()) }),
            Mode::Broken => Box::pin(async {
                Err(StoreError::Query(Arc::new(sqlx::Error::Protocol(
                    "secret internal detail".into(),
                ))))
            }),
            Mode::Stalled => Box::pin(std::future::pending()),
            Mode::Gated => {
                let gate = self.gate.clone();
                Box::pin(async move {
                    let _permit = gate.acquire_owned().await.expect("the gate stays open");
                    Ok(found)
                })
            }
        }
    }
}

impl RecentOrders for FakeStore {
    fn recent_orders(
        &self,
        _limit: i64,
        _max_bytes: u64,
    ) -> BoxFuture<'_, Result<Vec<(String, Bytes)>, StoreError>> {
        // The warm-up waits at the gate; lookups in `Mode::Up` do not.
        let gate = self.gate.clone();
        Box::pin(async move {
            let _permit = gate.acquire_owned().await.expect("the gate stays open");
            Ok(vec![("warm-3".to_owned(), Bytes::from_static(ORDER))])
        })
    }
}

impl RecentLists for FakeStore {
    fn recent_summaries(&self, limit: i64) -> BoxFuture<'_, Result<Vec<OrderSummary>, StoreError>> {
        let result = self.ask(limit).map(|()| vec![summary()]);
        Box::pin(async move { result })
    }

    fn recent_rejected(
        &self,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<RejectedSummary>, StoreError>> {
        let result = self.ask(limit).map(|()| {
            vec![RejectedSummary {
                id: 7,
                topic: "orders".to_owned(),
                partition: 2,
                offset: 41,
                reason_code: "malformed_json".to_owned(),
                reason: "malformed JSON".to_owned(),
                seen_at: "2026-01-01T00:00:00.000Z".to_owned(),
                payload_bytes: Some(3),
                payload_preview: "{{{".to_owned(),
                truncated: false,
            }]
        });
        Box::pin(async move { result })
    }
}

impl DatabasePing for FakeStore {
    fn ping(&self, _timeout: Duration) -> BoxFuture<'_, Result<(), StoreError>> {
        match self.mode {
            Mode::Down => Box::pin(async { Err(unreachable_database()) }),
            _ => Box::pin(async { Ok(()) }),
        }
    }
}

/// The order summary the fake store lists.
pub fn summary() -> OrderSummary {
    OrderSummary {
        order_uid: "known-1".to_owned(),
        track_number: "TRACK".to_owned(),
        customer_id: "c".to_owned(),
        delivery_name: "<b>Name</b>".to_owned(),
        delivery_city: "City".to_owned(),
        amount: 1817,
        currency: "USD".to_owned(),
        item_count: 1,
        date_created: "2021-11-26T06:22:19Z".to_owned(),
        stored_at: "2026-01-01T00:00:00.000Z".to_owned(),
    }
}
