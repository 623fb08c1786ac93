//! One valid, realistic fake order: names, phones, e-mails and addresses from the `fake`
//! crate, 1 to 5 items, and sums that satisfy the contract.

use chrono::{TimeZone, Utc};
use fake::Fake;
use fake::faker::address::en::{BuildingNumber, CityName, StateName, StreetName, ZipCode};
use fake::faker::company::en::CompanyName;
use fake::faker::internet::en::SafeEmail;
use fake::faker::name::en::Name;
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::order::{Delivery, Item, Order, Payment};

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
pub(super) fn pick<'a, T, R: Rng>(rng: &mut R, choices: &'a [T]) -> &'a T {
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

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::order::decode::check;
    use crate::tools::generator::SEEDED_NOW;

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
}
