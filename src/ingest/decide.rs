//! What a batch of messages is: each message decoded into an order to store (with its
//! canonical JSON) or a rejection to record. Pure, so the writer's I/O stays apart.

use rdkafka::Message;
use rdkafka::message::OwnedMessage;

use crate::order::{Rejection, canonical_json_with_capacity, decode};
use crate::store::{MessageOrigin, NewOrder, RejectedMessage};

/// A message, decoded.
pub enum Decided {
    /// A valid order: its id and canonical JSON.
    Order {
        /// `order_uid`.
        uid: String,
        /// Canonical JSON.
        json: String,
    },
    /// A message that broke the contract.
    Rejected(Rejection),
}

impl Decided {
    /// Whether the message is an order to store (else a rejection to record).
    pub fn is_order(&self) -> bool {
        matches!(self, Self::Order { .. })
    }
}

/// Decodes every message of a batch.
pub fn decide(messages: &[OwnedMessage]) -> Vec<Decided> {
    messages
        .iter()
        .map(|message| match decode(message.payload()) {
            Ok(order) => Decided::Order {
                json: canonical_json_with_capacity(
                    &order,
                    message.payload().map_or(0, <[u8]>::len),
                ),
                uid: order.order_uid,
            },
            Err(rejection) => Decided::Rejected(rejection),
        })
        .collect()
}

/// Where a message came from, as the store records it.
pub fn origin(message: &OwnedMessage) -> MessageOrigin<'_> {
    MessageOrigin {
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key(),
        payload: message.payload(),
    }
}

/// The batch's orders and rejections, borrowing from the messages and decisions.
pub fn split<'a>(
    messages: &'a [OwnedMessage],
    decided: &'a [Decided],
) -> (Vec<NewOrder<'a>>, Vec<RejectedMessage<'a>>) {
    let mut orders = Vec::with_capacity(messages.len());
    let mut rejected = Vec::new();
    for (message, decision) in messages.iter().zip(decided) {
        match decision {
            Decided::Order { uid, json } => orders.push(NewOrder {
                uid,
                json,
                origin: origin(message),
            }),
            Decided::Rejected(rejection) => rejected.push(RejectedMessage {
                origin: origin(message),
                rejection,
            }),
        }
    }
    (orders, rejected)
}
