//! Fake orders for `send`: realistic names, phones, e-mails and addresses from the `fake`
//! crate, 1 to 5 items, and sums that satisfy the contract; and bad messages, one maker per
//! kind of rejection the contract defines, mixed in at a given ratio ([`Mix`]). A seeded RNG
//! gives the same messages every time. `generate` prints the orders themselves as JSON lines.

use std::io::Write;

use anyhow::Context;
use chrono::{TimeZone, Utc};

use fake::Fake;
use fake::faker::address::en::{BuildingNumber, CityName, StateName, StreetName, ZipCode};
use fake::faker::company::en::CompanyName;
use fake::faker::internet::en::SafeEmail;
use fake::faker::name::en::Name;
use rand::distr::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use serde_json::{Value, json};

use crate::order::{Delivery, Item, Order, Payment, RejectKind, canonical_json};

/// Product names the generator picks from.
const PRODUCTS: &[&str] = &[
    "Mascaras",
    "Lipstick",
    "T-shirt",
    "Sneakers",
    "Backpack",
    "Headphones",
    "Water bottle",
    "Notebook",
    "Desk lamp",
    "Phone case",
    "Scarf",
    "Coffee beans",
    "Yoga mat",
    "Sunglasses",
];
/// Delivery services the generator picks from.
const SERVICES: &[&str] = &["meest", "dhl", "cdek", "boxberry", "pochta"];
/// Currencies the generator picks from.
const CURRENCIES: &[&str] = &["USD", "EUR", "RUB", "KZT"];
/// Banks the generator picks from.
const BANKS: &[&str] = &["alpha", "sber", "tinkoff", "vtb"];
/// Entry codes the generator picks from.
const ENTRIES: &[&str] = &["WBIL", "WBRU", "WBKZ"];

/// The clock of seeded runs (2026-01-01T00:00:00Z), so that a seed fixes the dates too.
pub const SEEDED_NOW: i64 = 1_767_225_600;

/// One valid, realistic order, created within the 30 days before `now` (Unix seconds).
pub fn fake_order<R: Rng>(rng: &mut R, now: i64) -> Order {
    let order_uid = token(rng, 19).to_lowercase();
    let track_number = format!("WB{}", token(rng, 12).to_uppercase());
    let created = now - rng.random_range(0..30 * 24 * 3600);
    let items: Vec<Item> = (0..rng.random_range(1..=5))
        .map(|_| fake_item(rng, &track_number))
        .collect();
    let goods_total = items.iter().map(|item| item.total_price).sum();
    let delivery_cost = rng.random_range(0..=20) * 100;
    let custom_fee = if rng.random_bool(0.2) {
        rng.random_range(1..=50) * 10
    } else {
        0
    };
    Order {
        order_uid: order_uid.clone(),
        track_number,
        entry: pick(rng, ENTRIES).to_string(),
        delivery: Delivery {
            name: Name().fake_with_rng(rng),
            phone: {
                let len = rng.random_range(10..=12);
                format!("+{}", digits(rng, len))
            },
            zip: ZipCode().fake_with_rng(rng),
            city: CityName().fake_with_rng(rng),
            address: format!(
                "{} {}",
                StreetName().fake_with_rng::<String, _>(rng),
                BuildingNumber().fake_with_rng::<String, _>(rng)
            ),
            region: StateName().fake_with_rng(rng),
            email: SafeEmail().fake_with_rng(rng),
        },
        payment: Payment {
            transaction: order_uid,
            request_id: String::new(),
            currency: pick(rng, CURRENCIES).to_string(),
            provider: "wbpay".to_owned(),
            amount: goods_total + delivery_cost + custom_fee,
            payment_dt: created + rng.random_range(0..600),
            bank: pick(rng, BANKS).to_string(),
            delivery_cost,
            goods_total,
            custom_fee,
        },
        items,
        locale: if rng.random_bool(0.5) { "en" } else { "ru" }.to_owned(),
        internal_signature: String::new(),
        customer_id: token(rng, 8).to_lowercase(),
        delivery_service: pick(rng, SERVICES).to_string(),
        shardkey: rng.random_range(0..10).to_string(),
        sm_id: rng.random_range(1..=100),
        date_created: Utc
            .timestamp_opt(created, 0)
            .single()
            .unwrap_or_else(Utc::now)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        oof_shard: rng.random_range(0..10).to_string(),
    }
}

/// One item whose `total_price` is its price less the sale.
fn fake_item<R: Rng>(rng: &mut R, track_number: &str) -> Item {
    let price = rng.random_range(1..=500) * 10;
    let sale = *pick(rng, &[0, 0, 10, 15, 25, 30, 50]);
    Item {
        chrt_id: rng.random_range(1_000_000..10_000_000),
        track_number: track_number.to_owned(),
        price,
        rid: format!("{}test", token(rng, 17).to_lowercase()),
        name: pick(rng, PRODUCTS).to_string(),
        sale,
        size: pick(rng, &["0", "S", "M", "L", "XL", "42"]).to_string(),
        total_price: price * (100 - sale) / 100,
        nm_id: rng.random_range(1_000_000..10_000_000),
        brand: CompanyName().fake_with_rng(rng),
        status: *pick(rng, &[202, 200, 201]),
    }
}

/// One of `choices`.
fn pick<'a, T, R: Rng>(rng: &mut R, choices: &'a [T]) -> &'a T {
    &choices[rng.random_range(0..choices.len())]
}

/// `len` random ASCII letters and digits.
fn token<R: Rng>(rng: &mut R, len: usize) -> String {
    (0..len)
        .map(|_| char::from(rng.sample(Alphanumeric)))
        .collect()
}

/// `len` random decimal digits.
fn digits<R: Rng>(rng: &mut R, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

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
    /// Every kind, in the order [`Mix`] cycles through them.
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
            value: canonical_json(order).to_vec(),
            order_uid: Some(order.order_uid.clone()),
            bad: None,
        }
    }
}

/// A bad message of `kind`, made from `base` (a fresh valid order; for [`BadKind::Conflict`],
/// an order sent before).
pub fn bad_message<R: Rng>(rng: &mut R, kind: BadKind, base: &Order) -> OutgoingMessage {
    let mut order = base.clone();
    let mut key = Some(base.order_uid.clone());
    let value = match kind {
        BadKind::NotJson => {
            let json = canonical_json(&order);
            json[..json.len() / 2].to_vec()
        }
        BadKind::NotUtf8 => {
            const MARK: &str = "NOT-UTF-8";
            order.delivery.name = MARK.to_owned();
            let json = canonical_json(&order).to_vec();
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
            canonical_json(&order).to_vec()
        }
        BadKind::InconsistentSums => {
            order.payment.amount += rng.random_range(1..=100);
            canonical_json(&order).to_vec()
        }
        BadKind::BadEmail => {
            order.delivery.email = order.delivery.email.replace('@', " at ");
            canonical_json(&order).to_vec()
        }
        BadKind::BadOrderUid => {
            order.order_uid = format!("{} #{}", order.order_uid, rng.random_range(1..100));
            key = Some(order.order_uid.clone());
            canonical_json(&order).to_vec()
        }
        BadKind::Conflict => {
            order.delivery.name = format!("{} (changed)", order.delivery.name);
            canonical_json(&order).to_vec()
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
        out.write_all(&canonical_json(&order))
            .and_then(|()| out.write_all(b"\n"))
            .context("cannot write to standard output")?;
    }
    out.flush().context("cannot write to standard output")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::order::decode;
    use crate::order::decode::check;

    #[test]
    fn generated_orders_satisfy_the_contract() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..2000 {
            let order = fake_order(&mut rng, Utc::now().timestamp());
            assert!((1..=5).contains(&order.items.len()));
            if let Err(rejection) = check(&order) {
                panic!("generated order rejected: {rejection}\n{order:#?}");
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_orders() {
        let ids = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..5)
                .map(|_| fake_order(&mut rng, SEEDED_NOW))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(42), ids(42));
        assert_ne!(ids(42), ids(43));
    }

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

    #[test]
    fn fake_messages_without_bad_ones_are_the_generated_orders() {
        let orders: Vec<_> = fake_orders(5, Some(9))
            .map(|o| OutgoingMessage::valid(&o))
            .collect();
        let messages: Vec<_> = fake_messages(5, Some(9), 0.0).collect();
        assert_eq!(messages, orders);
    }
}
