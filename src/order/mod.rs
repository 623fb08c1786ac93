//! The order contract (`../shared/order-contract.md`): the typed model, its rules, decoding a
//! message into an order or a rejection, and the canonical JSON the API serves.

pub mod decode;
pub mod model;
pub mod rejection;
pub mod rules;

use bytes::Bytes;

pub use decode::{MAX_MESSAGE_BYTES, decode};
pub use model::{Delivery, Item, Order, Payment};
pub use rejection::{RejectKind, Rejection};

/// The canonical JSON of an order: compact, fields in the contract's order. The same bytes
/// are served whether the order came from the cache or from PostgreSQL.
pub fn canonical_json(order: &Order) -> Bytes {
    // Serializing plain strings and integers into a Vec cannot fail.
    Bytes::from(serde_json::to_vec(order).expect("an Order always serializes"))
}

#[cfg(test)]
mod contract_tests;
