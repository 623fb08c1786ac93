//! An order as a list shows it: what a person needs to recognise it, read from the order's
//! canonical JSON (for the live stream) or, by the same names, from a query (for the lists).

/// One order in a list: what a person needs to recognise it, not the whole document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OrderSummary {
    /// The order's id.
    pub order_uid: String,
    /// Tracking number of the shipment.
    pub track_number: String,
    /// The customer's id.
    pub customer_id: String,
    /// Who receives it (`delivery.name`).
    pub delivery_name: String,
    /// Where it goes (`delivery.city`).
    pub delivery_city: String,
    /// `payment.amount`, a whole number in the currency's unit.
    pub amount: i64,
    /// `payment.currency`, three upper-case letters.
    pub currency: String,
    /// How many items it has.
    pub item_count: i64,
    /// `date_created` as the producer gave it (RFC 3339).
    pub date_created: String,
    /// When the service stored it, RFC 3339 in UTC with milliseconds.
    pub stored_at: String,
}

/// The fields of an order's JSON that a summary takes; the others are skipped unread.
#[derive(serde::Deserialize)]
struct SummarySource {
    /// `order_uid`.
    order_uid: String,
    /// `track_number`.
    track_number: String,
    /// `customer_id`.
    customer_id: String,
    /// `delivery` (name and city).
    delivery: SummaryDelivery,
    /// `payment` (amount and currency).
    payment: SummaryPayment,
    /// `items`, only counted.
    items: Vec<serde::de::IgnoredAny>,
    /// `date_created`.
    date_created: String,
}

/// The fields of `delivery` a summary takes.
#[derive(serde::Deserialize)]
struct SummaryDelivery {
    /// `delivery.name`.
    name: String,
    /// `delivery.city`.
    city: String,
}

/// The fields of `payment` a summary takes.
#[derive(serde::Deserialize)]
struct SummaryPayment {
    /// `payment.amount`.
    amount: i64,
    /// `payment.currency`.
    currency: String,
}

impl OrderSummary {
    /// The summary of an order from its canonical JSON, stored at `stored_at`; `None` if the
    /// JSON is not an order.
    pub fn from_json(json: &[u8], stored_at: String) -> Option<Self> {
        let source: SummarySource = serde_json::from_slice(json).ok()?;
        Some(Self {
            order_uid: source.order_uid,
            track_number: source.track_number,
            customer_id: source.customer_id,
            delivery_name: source.delivery.name,
            delivery_city: source.delivery.city,
            amount: source.payment.amount,
            currency: source.payment.currency,
            item_count: i64::try_from(source.items.len()).unwrap_or(i64::MAX),
            date_created: source.date_created,
            stored_at,
        })
    }
}

/// `now()` as [`OrderSummary::stored_at`] writes it.
pub fn stored_at_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::OrderSummary;

    const SAMPLE: &str = include_str!("../../tests/fixtures/sample-order.json");

    #[test]
    fn a_summary_takes_its_fields_from_the_order() {
        let summary = OrderSummary::from_json(SAMPLE.as_bytes(), "t".to_owned()).expect("an order");
        assert_eq!(summary.order_uid, "b563feb7b2b84b6test");
        assert_eq!(summary.track_number, "WBILMTESTTRACK");
        assert_eq!(summary.customer_id, "test");
        assert_eq!(summary.delivery_name, "Test Testov");
        assert_eq!(summary.delivery_city, "Kiryat Mozkin");
        assert_eq!((summary.amount, summary.currency.as_str()), (1817, "USD"));
        assert_eq!(summary.item_count, 1);
        assert_eq!(summary.date_created, "2021-11-26T06:22:19Z");
        assert_eq!(summary.stored_at, "t");
    }

    #[test]
    fn a_summary_of_escaped_strings_is_unescaped() {
        let json = SAMPLE.replace("Test Testov", r#"<img src=x> \"quoted\""#);
        let summary = OrderSummary::from_json(json.as_bytes(), "t".to_owned()).expect("an order");
        assert_eq!(summary.delivery_name, r#"<img src=x> "quoted""#);
    }

    #[test]
    fn json_that_is_not_an_order_has_no_summary() {
        assert_eq!(
            OrderSummary::from_json(b"{\"order_uid\":1}", "t".to_owned()),
            None
        );
    }
}
