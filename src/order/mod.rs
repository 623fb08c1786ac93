//! The order contract (`../shared/order-contract.md`): the typed model, its rules, decoding a
//! message into an order or a rejection, the canonical JSON the API serves, and the summary
//! of an order that lists show.

pub mod decode;
pub mod model;
pub mod rejection;
pub mod rules;
pub mod summary;

pub use decode::{MAX_MESSAGE_BYTES, decode};
pub use model::{Delivery, Item, Order, Payment};
pub use rejection::{RejectKind, Rejection};
pub use summary::{OrderSummary, stored_at_now};

/// The canonical JSON of an order: compact, fields in the contract's order. The same bytes
/// are served whether the order came from the cache or from PostgreSQL.
pub fn canonical_json(order: &Order) -> String {
    // serde_json's own starting size.
    canonical_json_with_capacity(order, 128)
}

/// [`canonical_json`] into a buffer of `capacity` bytes to begin with: the length of the
/// message the order was decoded from is a close upper bound for compact input, where
/// growing from serde_json's default doubles up to 2,048 bytes for a 1,300-byte order (and
/// ingest holds thousands of them at once).
pub fn canonical_json_with_capacity(order: &Order, capacity: usize) -> String {
    let mut json = Vec::with_capacity(capacity);
    // Serializing plain strings and integers into a buffer cannot fail.
    serde_json::to_writer(&mut json, order).expect("an Order always serializes");
    // serde_json writes valid UTF-8 only.
    String::from_utf8(json).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod contract_tests;
