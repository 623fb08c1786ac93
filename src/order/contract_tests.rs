//! Every rule of the order contract: a message that breaks it, and the reason it must give.

use serde_json::{Value, json};

use super::{Order, RejectKind, Rejection, canonical_json, canonical_json_with_capacity, decode};

const SAMPLE: &str = include_str!("../../tests/fixtures/sample-order.json");

fn sample() -> Value {
    serde_json::from_str(SAMPLE).expect("the sample is JSON")
}

/// The sample with the value at JSON pointer `ptr` replaced by `value`.
fn with(ptr: &str, value: Value) -> Vec<u8> {
    let mut doc = sample();
    *doc.pointer_mut(ptr).unwrap_or_else(|| panic!("no {ptr}")) = value;
    serde_json::to_vec(&doc).expect("serializes")
}

/// The sample without the field at `ptr`.
fn without(ptr: &str) -> Vec<u8> {
    let mut doc = sample();
    let (parent, name) = ptr.rsplit_once('/').expect("a pointer");
    let object = doc
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"));
    assert!(object.remove(name).is_some(), "no field {ptr}");
    serde_json::to_vec(&doc).expect("serializes")
}

fn rejection(bytes: &[u8]) -> Rejection {
    match decode(Some(bytes)) {
        Ok(order) => panic!(
            "accepted: {order:?}\nfrom {}",
            String::from_utf8_lossy(bytes)
        ),
        Err(rejection) => rejection,
    }
}

fn assert_rejected(bytes: &[u8], kind: RejectKind, field: Option<&str>) -> Rejection {
    let got = rejection(bytes);
    assert_eq!(
        (got.kind, got.field.as_deref()),
        (kind, field),
        "wrong reason: {got}"
    );
    got
}

#[test]
fn the_sample_order_is_valid_and_round_trips() {
    let order = decode(Some(SAMPLE.as_bytes())).expect("the sample is valid");
    let canonical: Value = serde_json::from_str(&canonical_json(&order)).expect("JSON");
    assert_eq!(canonical, sample());
}

#[test]
fn canonical_json_is_the_sample_minified() {
    let order = decode(Some(SAMPLE.as_bytes())).expect("valid");
    // The sample without the white space between its tokens.
    let mut minified = String::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in SAMPLE.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c.is_whitespace() {
            continue;
        }
        minified.push(c);
    }
    assert_eq!(canonical_json(&order), minified);
    // Sized by the message it came from: the same bytes, in a buffer that did not grow past
    // the message (the minified sample fits in it).
    let sized = canonical_json_with_capacity(&order, minified.len());
    assert_eq!(sized, minified);
    assert_eq!(
        sized.capacity(),
        minified.len(),
        "no spare capacity to keep"
    );
    // A hint too small only means growing.
    assert_eq!(canonical_json_with_capacity(&order, 1), minified);
}

#[test]
fn field_rules() {
    use RejectKind::InvalidValue as I;
    let long = |n: usize| json!("x".repeat(n));
    let cases: Vec<(&str, Value)> = vec![
        ("/order_uid", json!("")),
        ("/order_uid", long(65)),
        ("/order_uid", json!("a b")),
        ("/order_uid", json!("../etc")),
        ("/track_number", json!("")),
        ("/track_number", json!("   ")),
        ("/track_number", long(65)),
        ("/entry", long(33)),
        ("/entry", json!(" ")),
        ("/delivery/name", json!("\t")),
        ("/delivery/name", long(257)),
        ("/delivery/phone", json!("123456")),
        ("/delivery/phone", json!("+1234567890123456")),
        ("/delivery/phone", json!("+7 999 123 45 67")),
        ("/delivery/phone", json!("++79991234567")),
        ("/delivery/zip", json!("")),
        ("/delivery/zip", long(17)),
        ("/delivery/zip", json!("12_34")),
        ("/delivery/city", json!(" ")),
        ("/delivery/city", long(129)),
        ("/delivery/address", json!("")),
        ("/delivery/address", long(257)),
        ("/delivery/region", long(129)),
        ("/delivery/email", json!("not-an-email")),
        (
            "/delivery/email",
            json!(format!("{}@example.com", "a".repeat(250))),
        ),
        ("/payment/transaction", json!("")),
        ("/payment/request_id", long(65)),
        ("/payment/currency", json!("usd")),
        ("/payment/currency", json!("US")),
        ("/payment/currency", json!("USDT")),
        ("/payment/provider", json!(" ")),
        ("/payment/bank", json!("")),
        ("/payment/amount", json!(-1)),
        ("/payment/delivery_cost", json!(-1)),
        ("/payment/goods_total", json!(-1)),
        ("/payment/custom_fee", json!(-1)),
        ("/payment/payment_dt", json!(0)),
        ("/items", json!([])),
        ("/items/0/chrt_id", json!(0)),
        ("/items/0/nm_id", json!(-3)),
        ("/items/0/track_number", json!("")),
        ("/items/0/price", json!(-1)),
        ("/items/0/total_price", json!(-1)),
        ("/items/0/rid", json!(" ")),
        ("/items/0/name", json!("")),
        ("/items/0/sale", json!(101)),
        ("/items/0/sale", json!(-1)),
        ("/items/0/size", long(33)),
        ("/items/0/brand", long(257)),
        ("/locale", json!("EN")),
        ("/locale", json!("eng")),
        ("/internal_signature", long(257)),
        ("/customer_id", json!("")),
        ("/delivery_service", json!(" ")),
        ("/shardkey", json!("")),
        ("/shardkey", json!("123456789")),
        ("/shardkey", json!("a")),
        ("/oof_shard", json!("1x")),
        ("/sm_id", json!(-1)),
        ("/date_created", json!("yesterday")),
        ("/date_created", json!("2021-13-26T06:22:19Z")),
        ("/delivery/name", json!("Test\u{0}Testov")),
    ];
    for (ptr, value) in cases {
        let field = ptr[1..].replace("/0/", "[0].").replace('/', ".");
        let got = assert_rejected(&with(ptr, value.clone()), I, Some(&field));
        assert!(
            got.to_string()
                .starts_with(&format!("invalid value {field}: ")),
            "{ptr} = {value}: {got}"
        );
    }
}

#[test]
fn a_thousand_items_pass_and_one_more_does_not() {
    let item = sample()["items"][0].clone();
    let order_with = |n: usize| {
        let mut doc = sample();
        doc["items"] = Value::Array(vec![item.clone(); n]);
        doc["payment"]["goods_total"] = json!(317 * n);
        doc["payment"]["amount"] = json!(317 * n + 1500);
        serde_json::to_vec(&doc).expect("JSON")
    };
    assert!(decode(Some(&order_with(1000))).is_ok());
    assert_rejected(&order_with(1001), RejectKind::InvalidValue, Some("items"));
}

#[test]
fn values_the_rules_allow() {
    for (ptr, value) in [
        ("/items/0/status", json!(-7)),
        ("/items/0/size", json!("")),
        ("/items/0/brand", json!("")),
        ("/payment/request_id", json!("")),
        ("/internal_signature", json!("")),
        ("/delivery/phone", json!("9720000000")),
        ("/delivery/zip", json!("SW1A 1AA")),
        ("/order_uid", json!("A-z_09".repeat(10) + "abcd")),
        ("/date_created", json!("2021-11-26T09:22:19.123+03:00")),
        ("/sm_id", json!(0)),
    ] {
        if let Err(rejection) = decode(Some(&with(ptr, value.clone()))) {
            panic!("{ptr} = {value} must pass: {rejection}");
        }
    }
}

#[test]
fn sums_must_add_up() {
    let got = assert_rejected(
        &with("/payment/goods_total", json!(318)),
        RejectKind::Inconsistent,
        Some("payment.goods_total"),
    );
    assert!(
        got.to_string().contains("sum of items[].total_price (317)"),
        "{got}"
    );
    assert_rejected(
        &with("/payment/amount", json!(1818)),
        RejectKind::Inconsistent,
        Some("payment.amount"),
    );
}

#[test]
fn every_required_field_is_required() {
    fn leaves(value: &Value, ptr: String, out: &mut Vec<String>) {
        if let Value::Object(map) = value {
            for (key, child) in map {
                let child_ptr = format!("{ptr}/{key}");
                out.push(child_ptr.clone());
                leaves(child, child_ptr, out);
            }
        } else if let Value::Array(items) = value {
            leaves(&items[0], format!("{ptr}/0"), out);
        }
    }
    let mut pointers = Vec::new();
    leaves(&sample(), String::new(), &mut pointers);
    assert_eq!(pointers.len(), 14 + 7 + 10 + 11, "{pointers:?}");
    for ptr in pointers {
        let field = ptr[1..].replace("/0/", "[0].").replace('/', ".");
        let got = assert_rejected(&without(&ptr), RejectKind::MissingField, Some(&field));
        assert_eq!(got.to_string(), format!("missing field {field}"));
    }
}

#[test]
fn unknown_fields_are_refused_at_any_depth() {
    for (ptr, field) in [
        ("", "extra"),
        ("/delivery", "delivery.extra"),
        ("/payment", "payment.extra"),
        ("/items/0", "items[0].extra"),
    ] {
        let mut doc = sample();
        let object = if ptr.is_empty() {
            &mut doc
        } else {
            doc.pointer_mut(ptr).expect("exists")
        };
        object["extra"] = json!(1);
        let got = assert_rejected(
            &serde_json::to_vec(&doc).expect("JSON"),
            RejectKind::UnknownField,
            Some(field),
        );
        assert_eq!(got.to_string(), format!("unknown field {field}"));
    }
}

#[test]
fn type_errors() {
    for (ptr, value) in [
        ("/sm_id", json!(99.0)),
        ("/items/0/price", json!(453.5)),
        ("/payment/amount", json!("1817")),
        ("/order_uid", json!(42)),
        ("/delivery/name", Value::Null),
        ("/items", json!({})),
        ("/delivery", json!("here")),
        ("/items/0/status", json!(true)),
        ("/sm_id", json!(9_223_372_036_854_775_808u64)),
        ("/sm_id", json!(1e30)),
    ] {
        let field = ptr[1..].replace("/0/", "[0].").replace('/', ".");
        let got = assert_rejected(
            &with(ptr, value.clone()),
            RejectKind::TypeError,
            Some(&field),
        );
        assert!(got.to_string().starts_with("type error "), "{got}");
    }
}

#[test]
fn message_rules() {
    use RejectKind::*;
    let cases: Vec<(Option<Vec<u8>>, RejectKind)> = vec![
        (None, EmptyMessage),
        (Some(vec![]), EmptyMessage),
        (Some(b"\xEF\xBB\xBF".to_vec()), EmptyMessage),
        (Some(vec![b' '; super::MAX_MESSAGE_BYTES + 1]), TooLarge),
        (Some(b"{\"order_uid\": \"\xFF\xFE\"}".to_vec()), NotUtf8),
        (Some(SAMPLE.as_bytes()[..200].to_vec()), MalformedJson),
        (Some(b"   ".to_vec()), MalformedJson),
        (Some(format!("{SAMPLE}}}").into_bytes()), MalformedJson),
        (Some(b"{'order_uid': 1}".to_vec()), MalformedJson),
        (
            Some(br#"{"order_uid": "x", "extra": 1"#.to_vec()),
            MalformedJson,
        ),
        (Some(br#"{"order_uid": 42, "#.to_vec()), MalformedJson),
        (Some(b"[1, 2]".to_vec()), NotObject),
        (Some(b"\"order\"".to_vec()), NotObject),
        (Some(b"42".to_vec()), NotObject),
        (Some(b"null".to_vec()), NotObject),
        (Some(b"true".to_vec()), NotObject),
        (
            Some(
                SAMPLE
                    .replacen("\"entry\"", "\"entry\": \"X\", \"entry\"", 1)
                    .into_bytes(),
            ),
            DuplicateField,
        ),
    ];
    for (value, kind) in cases {
        match decode(value.as_deref()) {
            Ok(_) => panic!(
                "accepted {:?}",
                value.map(|v| String::from_utf8_lossy(&v).into_owned())
            ),
            Err(got) => assert_eq!(got.kind, kind, "{got}"),
        }
    }
    assert_eq!(
        decode(None).expect_err("tombstone").to_string(),
        "empty message"
    );
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(SAMPLE.as_bytes());
    let order: Order = decode(Some(&bytes)).expect("a BOM before a valid order is tolerated");
    assert_eq!(order.order_uid, "b563feb7b2b84b6test");
}

#[test]
fn reject_codes_are_distinct() {
    let codes: std::collections::HashSet<_> = RejectKind::ALL.iter().map(|k| k.code()).collect();
    assert_eq!(codes.len(), RejectKind::ALL.len());
}

#[test]
fn a_store_refusal_is_recorded_as_store_refused_with_what_the_database_said() {
    let rejection = Rejection::store_refused("order refused by trigger (SQLSTATE 23514)");
    assert_eq!(rejection.kind.code(), "store_refused");
    assert_eq!(rejection.field, None);
    assert_eq!(
        rejection.to_string(),
        "store refused: order refused by trigger (SQLSTATE 23514)"
    );
}
