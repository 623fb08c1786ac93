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
    // Serializing plain strings and integers into a String cannot fail.
    serde_json::to_string(order).expect("an Order always serializes")
}

#[cfg(test)]
mod contract_tests;
