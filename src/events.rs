//! New-order events: a bounded broadcast, from ingest to the live web page, of a summary of
//! each order just stored. Publishing never waits: with nobody listening it does nothing, and
//! a listener that falls more than [`CAPACITY`] events behind skips the oldest (it is told how
//! many) instead of slowing ingest down.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::order::{OrderSummary, stored_at_now};

/// How many events a slow listener may be behind before it skips.
pub const CAPACITY: usize = 256;

/// One new order: its summary's JSON, serialized once for every listener.
pub type OrderEvent = Arc<str>;

/// The hub: cheap to clone, every clone publishes to the same listeners.
#[derive(Clone, Debug)]
pub struct OrderEvents {
    /// The broadcast's sending side; listeners subscribe through it.
    sender: broadcast::Sender<OrderEvent>,
}

impl Default for OrderEvents {
    fn default() -> Self {
        Self::new()
    }
}

impl OrderEvents {
    /// A hub with nobody listening.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(CAPACITY);
        Self { sender }
    }

    /// Publishes the summary of an order just stored, given its canonical JSON. Does nothing
    /// (not even parse the JSON) when nobody listens.
    pub fn stored(&self, json: &[u8]) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        let Some(summary) = OrderSummary::from_json(json, stored_at_now()) else {
            tracing::warn!("a stored order has no summary; no event published");
            return;
        };
        self.publish(&summary);
    }

    /// Publishes `summary` to every listener.
    pub fn publish(&self, summary: &OrderSummary) {
        match serde_json::to_string(summary) {
            // An error here only means that nobody listens any more.
            Ok(json) => drop(self.sender.send(Arc::from(json))),
            Err(error) => tracing::warn!(%error, "cannot serialize an order summary"),
        }
    }

    /// A new listener, receiving what is published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<OrderEvent> {
        self.sender.subscribe()
    }

    /// How many listeners there are now.
    pub fn listeners(&self) -> usize {
        self.sender.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::broadcast::error::TryRecvError;

    use super::*;

    const SAMPLE: &str = include_str!("../tests/fixtures/sample-order.json");

    #[test]
    fn a_listener_gets_the_summary_of_a_stored_order() {
        let events = OrderEvents::new();
        let mut listener = events.subscribe();
        events.stored(SAMPLE.as_bytes());
        let event = listener.try_recv().expect("one event");
        let value: serde_json::Value = serde_json::from_str(&event).expect("JSON");
        assert_eq!(value["order_uid"], "b563feb7b2b84b6test");
        assert_eq!(value["amount"], 1817);
        assert_eq!(value["item_count"], 1);
        assert!(matches!(listener.try_recv(), Err(TryRecvError::Empty)));
    }

    #[test]
    fn publishing_with_nobody_listening_does_nothing() {
        let events = OrderEvents::new();
        events.stored(SAMPLE.as_bytes());
        assert_eq!(events.listeners(), 0);
    }

    #[test]
    fn a_slow_listener_skips_instead_of_blocking() {
        let events = OrderEvents::new();
        let mut listener = events.subscribe();
        for _ in 0..CAPACITY + 10 {
            events.stored(SAMPLE.as_bytes());
        }
        assert!(matches!(listener.try_recv(), Err(TryRecvError::Lagged(10))));
        assert!(listener.try_recv().is_ok());
    }
}
