//! The generator of `send`'s traffic and of `generate`: valid, realistic fake orders and bad
//! messages of every kind the contract rejects, mixed in at a given ratio. A seeded RNG gives
//! the same messages every time.
//!
//! This file owns the public API: the message type, the seeded clock, [`fake_orders`],
//! [`fake_messages`] and [`generate`] (which prints the orders as JSON lines). `valid.rs` makes
//! one valid order, `bad.rs` the bad messages, `mix.rs` mixes bad ones into valid ones.

mod bad;
mod mix;
mod valid;

use std::io::Write;

use anyhow::Context;
use chrono::Utc;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::order::{Order, canonical_json};

pub use bad::{BadKind, bad_message};
pub use mix::Mix;
pub use valid::fake_order;

/// The clock of seeded runs (2026-01-01T00:00:00Z), so that a seed fixes the dates too.
pub const SEEDED_NOW: i64 = 1_767_225_600;

/// One message for the orders topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The record's key: the `order_uid` the message is about, so that every message about
    /// one order lands in the same partition.
    pub key: Option<String>,
    /// The record's value.
    pub value: Vec<u8>,
    /// The id of the new, valid order this message carries; `None` for a bad message.
    pub order_uid: Option<String>,
    /// What is wrong with it; `None` for a valid order.
    pub bad: Option<BadKind>,
}

impl OutgoingMessage {
    /// A valid order.
    pub fn valid(order: &Order) -> Self {
        Self {
            key: Some(order.order_uid.clone()),
            value: canonical_json(order).into_bytes(),
            order_uid: Some(order.order_uid.clone()),
            bad: None,
        }
    }
}

/// The generator's RNG and clock: seeded ones give the same messages every time.
fn rng_and_clock(seed: Option<u64>) -> (StdRng, i64) {
    match seed {
        Some(seed) => (StdRng::seed_from_u64(seed), SEEDED_NOW),
        None => (StdRng::from_os_rng(), Utc::now().timestamp()),
    }
}

/// `count` fake orders; with a seed, the same ones every time.
pub fn fake_orders(count: u64, seed: Option<u64>) -> impl Iterator<Item = Order> {
    let (mut rng, now) = rng_and_clock(seed);
    (0..count).map(move |_| fake_order(&mut rng, now))
}

/// The `count` messages `send` produces: fake orders with `invalid_ratio` of bad messages
/// mixed in (see [`Mix`]). With a ratio of 0 they are the orders of [`fake_orders`].
pub fn fake_messages(count: u64, seed: Option<u64>, invalid_ratio: f64) -> Mix<StdRng> {
    let (rng, now) = rng_and_clock(seed);
    Mix::new(rng, now, count, invalid_ratio)
}

/// Prints `count` fake orders as JSON lines: the documents `send` with the same seed sends.
pub fn generate(count: u64, seed: Option<u64>, out: &mut impl Write) -> anyhow::Result<()> {
    for order in fake_orders(count, seed) {
        out.write_all(canonical_json(&order).as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .context("cannot write to standard output")?;
    }
    out.flush().context("cannot write to standard output")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_messages_without_bad_ones_are_the_generated_orders() {
        let orders: Vec<_> = fake_orders(5, Some(9))
            .map(|o| OutgoingMessage::valid(&o))
            .collect();
        let messages: Vec<_> = fake_messages(5, Some(9), 0.0).collect();
        assert_eq!(messages, orders);
    }
}
