//! Mixing bad messages into valid orders: which messages of a run are bad, of which kind,
//! and the earlier order a conflict repeats.

use rand::Rng;

use super::{BadKind, OutgoingMessage, bad_message, fake_order};
use crate::order::Order;

/// The messages `send` produces: `count` of them, of which `floor(count * invalid_ratio)` are
/// bad, spread evenly (message `i` is bad when `floor((i + 1) * ratio)` grows), their kinds
/// taken in turn from [`BadKind::ALL`]. A conflict needs an order sent before it, so until
/// the first valid order has been made, its turn goes to the next kind. With a ratio of 0 the
/// orders are exactly those of [`fake_order`] with the same RNG.
pub struct Mix<R> {
    /// The source of randomness.
    rng: R,
    /// The clock the orders' dates are made from (Unix seconds).
    now: i64,
    /// How many messages are still to come.
    count: u64,
    /// The fraction of bad messages, 0.0..=1.0.
    ratio: f64,
    /// Index of the next message.
    index: u64,
    /// Index of the next bad kind in [`BadKind::ALL`].
    next_kind: usize,
    /// The last valid order made, for conflicts.
    last_valid: Option<Order>,
}

impl<R: Rng> Mix<R> {
    /// `count` messages from `rng` at `now`, `invalid_ratio` of them bad.
    pub fn new(rng: R, now: i64, count: u64, invalid_ratio: f64) -> Self {
        Self {
            rng,
            now,
            count,
            ratio: invalid_ratio.clamp(0.0, 1.0),
            index: 0,
            next_kind: 0,
            last_valid: None,
        }
    }

    /// Whether message `index` is a bad one.
    fn is_bad(&self, index: u64) -> bool {
        let before = (index as f64 * self.ratio).floor();
        let after = ((index + 1) as f64 * self.ratio).floor();
        after > before
    }
}

impl<R: Rng> Iterator for Mix<R> {
    type Item = OutgoingMessage;

    fn next(&mut self) -> Option<OutgoingMessage> {
        if self.index == self.count {
            return None;
        }
        let bad = self.is_bad(self.index);
        self.index += 1;
        if !bad {
            let order = fake_order(&mut self.rng, self.now);
            let message = OutgoingMessage::valid(&order);
            self.last_valid = Some(order);
            return Some(message);
        }
        let mut kind = BadKind::ALL[self.next_kind % BadKind::ALL.len()];
        self.next_kind += 1;
        if kind == BadKind::Conflict && self.last_valid.is_none() {
            kind = BadKind::ALL[self.next_kind % BadKind::ALL.len()];
            self.next_kind += 1;
        }
        let base = match (kind, &self.last_valid) {
            (BadKind::Conflict, Some(earlier)) => earlier.clone(),
            _ => fake_order(&mut self.rng, self.now),
        };
        Some(bad_message(&mut self.rng, kind, &base))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.count - self.index).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::order::decode;
    use crate::tools::generator::SEEDED_NOW;

    #[test]
    fn a_mix_has_the_ratio_of_bad_messages_and_every_kind() {
        for (count, ratio, bad) in [
            (100, 0.0, 0),
            (100, 0.1, 10),
            (1000, 0.25, 250),
            (7, 1.0, 7),
        ] {
            let messages: Vec<_> =
                Mix::new(StdRng::seed_from_u64(3), SEEDED_NOW, count, ratio).collect();
            assert_eq!(messages.len() as u64, count);
            let invalid = messages.iter().filter(|m| m.bad.is_some()).count();
            assert_eq!(invalid, bad, "{count} at {ratio}");
            for message in &messages {
                assert_eq!(message.bad.is_none(), message.order_uid.is_some());
                match &message.order_uid {
                    Some(uid) => {
                        let order = decode(Some(&message.value)).expect("a valid order");
                        assert_eq!(&order.order_uid, uid);
                        assert_eq!(message.key.as_ref(), Some(uid));
                    }
                    None => assert!(
                        decode(Some(&message.value)).is_err()
                            || message.bad == Some(BadKind::Conflict)
                    ),
                }
            }
        }
        let kinds: HashSet<_> = Mix::new(StdRng::seed_from_u64(3), SEEDED_NOW, 1000, 0.25)
            .filter_map(|m| m.bad)
            .collect();
        assert_eq!(kinds.len(), BadKind::ALL.len(), "every kind is mixed in");
    }

    #[test]
    fn a_conflict_follows_the_order_it_conflicts_with() {
        let messages: Vec<_> = Mix::new(StdRng::seed_from_u64(5), SEEDED_NOW, 2000, 0.5).collect();
        let mut sent = HashSet::new();
        for message in &messages {
            if let Some(uid) = &message.order_uid {
                sent.insert(uid.clone());
            }
            if message.bad == Some(BadKind::Conflict) {
                let key = message.key.clone().expect("a conflict has a key");
                assert!(sent.contains(&key), "{key} was sent before its conflict");
            }
        }
        // Only bad messages: no order to conflict with, so no conflict.
        let only_bad: Vec<_> = Mix::new(StdRng::seed_from_u64(5), SEEDED_NOW, 50, 1.0).collect();
        assert!(
            only_bad
                .iter()
                .all(|m| m.bad.is_some_and(|k| k != BadKind::Conflict))
        );
    }

    #[test]
    fn without_bad_messages_a_mix_is_the_plain_orders() {
        let mut rng = StdRng::seed_from_u64(8);
        let plain: Vec<_> = (0..20).map(|_| fake_order(&mut rng, SEEDED_NOW)).collect();
        let mixed: Vec<_> = Mix::new(StdRng::seed_from_u64(8), SEEDED_NOW, 20, 0.0).collect();
        let want: Vec<_> = plain.iter().map(OutgoingMessage::valid).collect();
        assert_eq!(mixed, want);
    }
}
