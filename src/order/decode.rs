//! From a Kafka message value to a valid [`Order`], or to the [`Rejection`] that says which
//! rule of the contract it broke. Pure: no I/O, so every rule is unit-tested here.

use garde::Validate;
use serde_json::error::Category;

use super::model::Order;
use super::rejection::{RejectKind, Rejection};

/// The largest message value the contract accepts.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// The UTF-8 byte-order mark, tolerated and ignored at the start of a value.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decodes and validates one message value (`None` is a tombstone).
pub fn decode(value: Option<&[u8]>) -> Result<Order, Rejection> {
    let bytes = value.unwrap_or_default();
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(Rejection::message(
            RejectKind::TooLarge,
            format!("{} bytes, at most {MAX_MESSAGE_BYTES}", bytes.len()),
        ));
    }
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    if bytes.is_empty() {
        return Err(Rejection::message(RejectKind::EmptyMessage, ""));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Rejection::message(
            RejectKind::NotUtf8,
            format!("invalid byte at offset {}", e.valid_up_to()),
        )
    })?;
    let order = parse(text)?;
    check(&order)?;
    Ok(order)
}

/// Checks a typed order against every field rule and the consistency rules.
pub fn check(order: &Order) -> Result<(), Rejection> {
    if let Err(report) = order.validate()
        && let Some((path, error)) = report.iter().next()
    {
        return Err(Rejection::field(
            RejectKind::InvalidValue,
            path.to_string(),
            error.message(),
        ));
    }
    consistency(order)
}

/// `goods_total` is the sum of the items' `total_price`; `amount` is
/// `goods_total + delivery_cost + custom_fee`.
fn consistency(order: &Order) -> Result<(), Rejection> {
    let p = &order.payment;
    let items_total = order
        .items
        .iter()
        .try_fold(0i64, |sum, item| sum.checked_add(item.total_price));
    if items_total != Some(p.goods_total) {
        let sum = items_total.map_or("overflow".to_owned(), |s| s.to_string());
        return Err(Rejection::field(
            RejectKind::Inconsistent,
            "payment.goods_total",
            format!(
                "{} is not the sum of items[].total_price ({sum})",
                p.goods_total
            ),
        ));
    }
    let expected = p
        .goods_total
        .checked_add(p.delivery_cost)
        .and_then(|s| s.checked_add(p.custom_fee));
    if expected != Some(p.amount) {
        let sum = expected.map_or("overflow".to_owned(), |s| s.to_string());
        return Err(Rejection::field(
            RejectKind::Inconsistent,
            "payment.amount",
            format!(
                "{} is not goods_total + delivery_cost + custom_fee ({sum})",
                p.amount
            ),
        ));
    }
    Ok(())
}

/// Parses JSON text into the closed, typed [`Order`].
fn parse(text: &str) -> Result<Order, Rejection> {
    // serde accepts a struct written as a JSON array; the contract wants an object.
    if !text.trim_start().starts_with('{') {
        return Err(not_an_object(text));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let order: Order = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        // serde stops at the first problem; a message that is not even JSON is malformed
        // whatever it held before the point where it breaks.
        if let Err(syntax) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
            return Rejection::message(RejectKind::MalformedJson, syntax.to_string());
        }
        classify(e.inner(), &e.path().to_string())
    })?;
    de.end().map_err(|e| classify(&e, "."))?;
    Ok(order)
}

/// What kind of JSON a value that is not an object is, for the rejection's detail.
fn not_an_object(text: &str) -> Rejection {
    use serde_json::Value;
    match serde_json::from_str::<Value>(text) {
        Ok(value) => {
            let got = match value {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            };
            Rejection::message(RejectKind::NotObject, format!("got {got}"))
        }
        Err(e) => Rejection::message(RejectKind::MalformedJson, e.to_string()),
    }
}

/// Maps a serde error at `path` to the rule it breaks. serde reports data errors only as text,
/// so the kind is read from the standard message prefixes serde itself defines.
fn classify(error: &serde_json::Error, path: &str) -> Rejection {
    let text = error.to_string();
    if !matches!(error.classify(), Category::Data) {
        return Rejection::message(RejectKind::MalformedJson, text);
    }
    let message = strip_position(&text);
    // For an unknown field the path ends at that field; for a missing or duplicate one it
    // ends at the object that holds it.
    let child = |rest: &str| {
        let name = rest.strip_prefix('`').and_then(|r| r.split('`').next());
        match (path, name) {
            (".", Some(name)) => name.to_owned(),
            (parent, Some(name)) => format!("{parent}.{name}"),
            (parent, None) => parent.to_owned(),
        }
    };
    if message.starts_with("unknown field ") {
        Rejection::field(RejectKind::UnknownField, path, "")
    } else if let Some(rest) = message.strip_prefix("missing field ") {
        Rejection::field(RejectKind::MissingField, child(rest), "")
    } else if let Some(rest) = message.strip_prefix("duplicate field ") {
        Rejection::field(RejectKind::DuplicateField, child(rest), "")
    } else {
        Rejection::field(RejectKind::TypeError, path, message)
    }
}

/// serde_json's message without its ` at line L column C` suffix.
fn strip_position(text: &str) -> &str {
    text.rfind(" at line ").map_or(text, |at| &text[..at])
}
