//! The read seams: the narrow traits through which the cache, the warm-up and the HTTP
//! handlers read PostgreSQL, and their implementations for [`Store`]. They exist so that
//! a test can replace the database; this file is the one answer to "what can a test fake?".

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

use super::rejected_summary::RejectedSummary;
use super::{Store, StoreError};
use crate::order::OrderSummary;

/// Looking an order up by id: what a cache miss reads.
pub trait OrderLookup: Send + Sync + 'static {
    /// The order's canonical JSON, or `None` if no order has this id.
    fn find(&self, uid: &str) -> BoxFuture<'_, Result<Option<Bytes>, StoreError>>;
}

/// The most recently stored orders: what the cache's warm-up reads.
pub trait RecentOrders: Send + Sync + 'static {
    /// The most recently stored orders, newest first, as `(order_uid, canonical JSON)`: at
    /// most `limit`, and no more once their JSON adds up to `max_bytes`.
    fn recent_orders(
        &self,
        limit: i64,
        max_bytes: u64,
    ) -> BoxFuture<'_, Result<Vec<(String, Bytes)>, StoreError>>;
}

/// The short lists the web page shows: recent orders and recent rejections.
pub trait RecentLists: Send + Sync + 'static {
    /// The `limit` most recently stored orders, newest first.
    fn recent_summaries(&self, limit: i64) -> BoxFuture<'_, Result<Vec<OrderSummary>, StoreError>>;
    /// The `limit` most recent rejections, newest first.
    fn recent_rejected(
        &self,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<RejectedSummary>, StoreError>>;
}

/// Asking the database whether it answers: what readiness checks.
pub trait DatabasePing: Send + Sync + 'static {
    /// `Ok` if the database answered `SELECT 1` within `timeout`.
    fn ping(&self, timeout: Duration) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// A read by id logs its own failure (the HTTP answer only maps it).
impl OrderLookup for Store {
    fn find(&self, uid: &str) -> BoxFuture<'_, Result<Option<Bytes>, StoreError>> {
        let uid = uid.to_owned();
        Box::pin(async move {
            let read = self.order_json(&uid).await;
            read.inspect_err(|error| error.log_read_failure("order by id"))
        })
    }
}

impl RecentOrders for Store {
    fn recent_orders(
        &self,
        limit: i64,
        max_bytes: u64,
    ) -> BoxFuture<'_, Result<Vec<(String, Bytes)>, StoreError>> {
        Box::pin(Store::recent_orders(self, limit, max_bytes))
    }
}

/// The lists' reads log their own failures (the HTTP answer only maps them).
impl RecentLists for Store {
    fn recent_summaries(&self, limit: i64) -> BoxFuture<'_, Result<Vec<OrderSummary>, StoreError>> {
        Box::pin(async move {
            let read = self.order_summaries(limit).await;
            read.inspect_err(|error| error.log_read_failure("order summaries"))
        })
    }

    fn recent_rejected(
        &self,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<RejectedSummary>, StoreError>> {
        Box::pin(async move {
            let read = self.rejected_summaries(limit).await;
            read.inspect_err(|error| error.log_read_failure("rejected summaries"))
        })
    }
}

impl DatabasePing for Store {
    fn ping(&self, timeout: Duration) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(Store::ping(self, timeout))
    }
}
