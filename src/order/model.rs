//! The typed order: the shape `../shared/sample-order.json` fixes, field by field and in its
//! order. Serializing an [`Order`] gives its canonical JSON, the bytes the API returns.

use garde::Validate;
use serde::{Deserialize, Serialize};

use super::rules;

/// One order, as produced to the `orders` topic and stored in PostgreSQL.
///
/// Field order is the order of `sample-order.json`: serde serializes in declaration order,
/// which is what makes the canonical bytes the same wherever the order comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// The order's identity: 1..=64 chars of `A-Z a-z 0-9 _ -`.
    #[garde(custom(rules::order_uid))]
    pub order_uid: String,
    /// Tracking number of the shipment.
    #[garde(custom(rules::text(1, 64)))]
    pub track_number: String,
    /// Entry point code (e.g. `WBIL`).
    #[garde(custom(rules::text(1, 32)))]
    pub entry: String,
    /// Who receives the order, and where.
    #[garde(dive)]
    pub delivery: Delivery,
    /// How the order was paid.
    #[garde(dive)]
    pub payment: Payment,
    /// The goods; 1..=1000 of them.
    #[garde(length(min = 1, max = 1000), dive)]
    pub items: Vec<Item>,
    /// Two lower-case letters (e.g. `en`).
    #[garde(custom(rules::locale))]
    pub locale: String,
    /// Opaque signature; may be empty.
    #[garde(custom(rules::text(0, 256)))]
    pub internal_signature: String,
    /// The customer's id.
    #[garde(custom(rules::text(1, 64)))]
    pub customer_id: String,
    /// The delivery service's name.
    #[garde(custom(rules::text(1, 64)))]
    pub delivery_service: String,
    /// Shard key: 1..=8 digits.
    #[garde(custom(rules::digits(1, 8)))]
    pub shardkey: String,
    /// Service marker id.
    #[garde(range(min = 0))]
    pub sm_id: i64,
    /// When the order was created: an RFC 3339 timestamp, kept as given.
    #[garde(custom(rules::rfc3339))]
    pub date_created: String,
    /// Out-of-family shard: 1..=8 digits.
    #[garde(custom(rules::digits(1, 8)))]
    pub oof_shard: String,
}

/// The delivery address and contact of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// Recipient's name.
    #[garde(custom(rules::text(1, 256)))]
    pub name: String,
    /// `+` optional, then 7..=15 digits.
    #[garde(custom(rules::phone))]
    pub phone: String,
    /// Postal code: letters, digits, space or `-`.
    #[garde(custom(rules::zip))]
    pub zip: String,
    /// City.
    #[garde(custom(rules::text(1, 128)))]
    pub city: String,
    /// Street address.
    #[garde(custom(rules::text(1, 256)))]
    pub address: String,
    /// Region.
    #[garde(custom(rules::text(1, 128)))]
    pub region: String,
    /// Recipient's e-mail address.
    #[garde(custom(rules::email))]
    pub email: String,
}

/// The payment of an order. Amounts are integers in the currency's unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    /// Payment transaction id.
    #[garde(custom(rules::text(1, 64)))]
    pub transaction: String,
    /// Request id; may be empty.
    #[garde(custom(rules::text(0, 64)))]
    pub request_id: String,
    /// Three upper-case letters (ISO 4217 form).
    #[garde(custom(rules::currency))]
    pub currency: String,
    /// Payment provider.
    #[garde(custom(rules::text(1, 64)))]
    pub provider: String,
    /// Total paid: `goods_total + delivery_cost + custom_fee`.
    #[garde(range(min = 0))]
    pub amount: i64,
    /// When it was paid, in Unix seconds.
    #[garde(range(min = 1))]
    pub payment_dt: i64,
    /// The bank.
    #[garde(custom(rules::text(1, 64)))]
    pub bank: String,
    /// Cost of delivery.
    #[garde(range(min = 0))]
    pub delivery_cost: i64,
    /// Sum of the items' `total_price`.
    #[garde(range(min = 0))]
    pub goods_total: i64,
    /// Customs fee.
    #[garde(range(min = 0))]
    pub custom_fee: i64,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// Catalogue size-chart id.
    #[garde(range(min = 1))]
    pub chrt_id: i64,
    /// Tracking number of the shipment that carries the item.
    #[garde(custom(rules::text(1, 64)))]
    pub track_number: String,
    /// Price before the sale.
    #[garde(range(min = 0))]
    pub price: i64,
    /// Item reservation id.
    #[garde(custom(rules::text(1, 64)))]
    pub rid: String,
    /// Product name.
    #[garde(custom(rules::text(1, 256)))]
    pub name: String,
    /// Sale in percent, 0..=100.
    #[garde(range(min = 0, max = 100))]
    pub sale: i64,
    /// Size label; may be empty or `"0"`.
    #[garde(custom(rules::text(0, 32)))]
    pub size: String,
    /// Price paid for the item.
    #[garde(range(min = 0))]
    pub total_price: i64,
    /// Catalogue product id.
    #[garde(range(min = 1))]
    pub nm_id: i64,
    /// Brand; may be empty.
    #[garde(custom(rules::text(0, 256)))]
    pub brand: String,
    /// Item status code; any integer.
    #[garde(skip)]
    pub status: i64,
}
