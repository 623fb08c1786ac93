//! The bad messages: one kind per way the contract rejects a message, and the maker of each
//! from a valid order.

use rand::Rng;
use serde_json::{Value, json};

use super::OutgoingMessage;
use super::valid::pick;
use crate::order::{Order, RejectKind, canonical_json};

/// A kind of bad message `send --invalid-ratio` mixes in: one per way the contract rejects a
/// message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BadKind {
    /// Half an order's JSON: not well-formed.
    NotJson,
    /// An order whose JSON holds bytes that are not UTF-8.
    NotUtf8,
    /// An empty value.
    Empty,
    /// An order with a field the contract does not know (`coupon`).
    UnknownField,
    /// An order without one of its required fields.
    MissingField,
    /// An order with a value of the wrong JSON type (`sm_id` as a string).
    WrongType,
    /// An order with an integer out of its range (`items[0].sale` above 100).
    OutOfRange,
    /// An order whose `payment.amount` is not the sum of its parts.
    InconsistentSums,
    /// An order whose `delivery.email` is not an e-mail address.
    BadEmail,
    /// An order whose `order_uid` has characters the contract does not allow.
    BadOrderUid,
    /// An order already sent, with the same `order_uid` and different content.
    Conflict,
}

impl BadKind {
    /// Every kind, in the order [`Mix`](super::Mix) cycles through them.
    pub const ALL: [BadKind; 11] = [
        Self::NotJson,
        Self::NotUtf8,
        Self::Empty,
        Self::UnknownField,
        Self::MissingField,
        Self::WrongType,
        Self::OutOfRange,
        Self::InconsistentSums,
        Self::BadEmail,
        Self::BadOrderUid,
        Self::Conflict,
    ];

    /// The rejection the service records for this kind of message.
    pub fn expected(self) -> RejectKind {
        match self {
            Self::NotJson => RejectKind::MalformedJson,
            Self::NotUtf8 => RejectKind::NotUtf8,
            Self::Empty => RejectKind::EmptyMessage,
            Self::UnknownField => RejectKind::UnknownField,
            Self::MissingField => RejectKind::MissingField,
            Self::WrongType => RejectKind::TypeError,
            Self::OutOfRange | Self::BadEmail | Self::BadOrderUid => RejectKind::InvalidValue,
            Self::InconsistentSums => RejectKind::Inconsistent,
            Self::Conflict => RejectKind::Conflict,
        }
    }
}

/// Top-level fields [`BadKind::MissingField`] leaves out, one at random.
const REQUIRED: &[&str] = &[
    "track_number",
    "entry",
    "delivery",
    "payment",
    "items",
    "locale",
    "customer_id",
    "date_created",
];

/// A bad message of `kind`, made from `base` (a fresh valid order; for [`BadKind::Conflict`],
/// an order sent before).
pub fn bad_message<R: Rng>(rng: &mut R, kind: BadKind, base: &Order) -> OutgoingMessage {
    let mut order = base.clone();
    let mut key = Some(base.order_uid.clone());
    let value = match kind {
        BadKind::NotJson => {
            let json = canonical_json(&order);
            json.as_bytes()[..json.len() / 2].to_vec()
        }
        BadKind::NotUtf8 => {
            const MARK: &str = "NOT-UTF-8";
            order.delivery.name = MARK.to_owned();
            let json = canonical_json(&order).into_bytes();
            let at = json
                .windows(MARK.len())
                .position(|w| w == MARK.as_bytes())
                .unwrap_or(0);
            let mut value = json[..at].to_vec();
            value.extend_from_slice(b"\xff\xfe\xfd");
            value.extend_from_slice(&json[at + MARK.len()..]);
            value
        }
        BadKind::Empty => Vec::new(),
        BadKind::UnknownField => with_json(&order, |doc| {
            doc["coupon"] = json!(format!("SAVE{}", rng.random_range(5..=50)));
        }),
        BadKind::MissingField => {
            let field = *pick(rng, REQUIRED);
            with_json(&order, |doc| {
                if let Some(map) = doc.as_object_mut() {
                    map.remove(field);
                }
            })
        }
        BadKind::WrongType => with_json(&order, |doc| {
            doc["sm_id"] = json!(doc["sm_id"].to_string());
        }),
        BadKind::OutOfRange => {
            order.items[0].sale = rng.random_range(101..=200);
            canonical_json(&order).into_bytes()
        }
        BadKind::InconsistentSums => {
            order.payment.amount += rng.random_range(1..=100);
            canonical_json(&order).into_bytes()
        }
        BadKind::BadEmail => {
            order.delivery.email = order.delivery.email.replace('@', " at ");
            canonical_json(&order).into_bytes()
        }
        BadKind::BadOrderUid => {
            order.order_uid = format!("{} #{}", order.order_uid, rng.random_range(1..100));
            key = Some(order.order_uid.clone());
            canonical_json(&order).into_bytes()
        }
        BadKind::Conflict => {
            order.delivery.name = format!("{} (changed)", order.delivery.name);
            canonical_json(&order).into_bytes()
        }
    };
    OutgoingMessage {
        key,
        value,
        order_uid: None,
        bad: Some(kind),
    }
}

/// The canonical JSON of `order`, changed by `edit` as a JSON document.
fn with_json(order: &Order, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    // An Order always converts to a JSON value and back to bytes.
    let mut doc = serde_json::to_value(order).unwrap_or(Value::Null);
    edit(&mut doc);
    serde_json::to_vec(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::order::decode;
    use crate::tools::generator::{SEEDED_NOW, fake_order};

    #[test]
    fn each_bad_kind_is_rejected_by_the_decoder_with_its_reason() {
        let mut rng = StdRng::seed_from_u64(11);
        for kind in BadKind::ALL {
            for _ in 0..50 {
                let base = fake_order(&mut rng, SEEDED_NOW);
                let message = bad_message(&mut rng, kind, &base);
                assert_eq!(message.order_uid, None, "{kind:?} carries no new order");
                assert_eq!(message.bad, Some(kind));
                let decoded = decode(Some(&message.value));
                if kind == BadKind::Conflict {
                    // A conflict is a valid order on its own; PostgreSQL holds the other one.
                    let order = decoded.expect("a conflict decodes");
                    assert_eq!(order.order_uid, base.order_uid);
                    assert_ne!(order, base, "a conflict differs from the stored order");
                    assert_eq!(message.key.as_deref(), Some(base.order_uid.as_str()));
                    continue;
                }
                let rejection = decoded.expect_err("a bad message must be rejected");
                assert_eq!(rejection.kind, kind.expected(), "{kind:?}: {rejection}");
                let field = rejection.field.as_deref();
                match kind {
                    BadKind::UnknownField => assert_eq!(field, Some("coupon")),
                    BadKind::WrongType => assert_eq!(field, Some("sm_id")),
                    BadKind::OutOfRange => assert_eq!(field, Some("items[0].sale")),
                    BadKind::InconsistentSums => assert_eq!(field, Some("payment.amount")),
                    BadKind::BadEmail => assert_eq!(field, Some("delivery.email")),
                    BadKind::BadOrderUid => assert_eq!(field, Some("order_uid")),
                    BadKind::MissingField => {
                        assert!(REQUIRED.contains(&field.unwrap_or_default()), "{rejection}")
                    }
                    _ => {}
                }
            }
        }
    }
}
