//! The poison corpus: every kind of bad message, interleaved with valid orders on one
//! partition. Every valid order is stored, every bad message is recorded with the right
//! reason and published to the dead-letter topic, and the consumer never stalls.

use order_service::order::canonical_json;
use order_service::tools::generator::{SEEDED_NOW, fake_order};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

use crate::common::app::TestApp;
use crate::common::kafka::{dead_letters, raise_topic_message_limit};
use crate::common::sample::{SAMPLE, bytes, leaves, sample, with, without};

/// A bad message and the reason code (and field) it must be recorded with.
struct Poison {
    value: Option<Vec<u8>>,
    code: &'static str,
    field: Option<String>,
}

fn poison(value: impl Into<Vec<u8>>, code: &'static str, field: Option<&str>) -> Poison {
    Poison {
        value: Some(value.into()),
        code,
        field: field.map(str::to_owned),
    }
}

fn corpus() -> Vec<Poison> {
    let mut corpus = vec![
        poison(b"\xff\xfe\xfd order".to_vec(), "not_utf8", None),
        poison(&SAMPLE.as_bytes()[..300], "malformed_json", None),
        poison("[1, 2, 3]", "not_object", None),
        poison("\"an order\"", "not_object", None),
        poison("12345", "not_object", None),
        poison("null", "not_object", None),
        poison(Vec::new(), "empty_message", None),
        Poison {
            value: None,
            code: "empty_message",
            field: None,
        },
    ];
    // Each required field missing, and each field with the wrong type.
    for (ptr, field) in leaves() {
        corpus.push(poison(without(&ptr), "missing_field", Some(&field)));

        let wrong_type = if sample().pointer(&ptr).expect("leaf").is_string() {
            json!(7)
        } else {
            json!("7")
        };
        corpus.push(poison(with(&ptr, wrong_type), "type_error", Some(&field)));
    }
    corpus.extend([
        poison(
            with("/items/0/price", json!(453.0)),
            "type_error",
            Some("items[0].price"),
        ),
        poison(with("/sm_id", json!("99")), "type_error", Some("sm_id")),
        poison(with("/sm_id", json!(u64::MAX)), "type_error", Some("sm_id")),
        poison(
            with("/items/0/sale", json!(130)),
            "invalid_value",
            Some("items[0].sale"),
        ),
        poison(
            with("/payment/payment_dt", json!(0)),
            "invalid_value",
            Some("payment.payment_dt"),
        ),
        poison(
            with("/delivery/email", json!("nobody")),
            "invalid_value",
            Some("delivery.email"),
        ),
        poison(
            with("/payment/amount", json!(1)),
            "inconsistent",
            Some("payment.amount"),
        ),
        poison(
            with("/payment/goods_total", json!(1)),
            "inconsistent",
            Some("payment.goods_total"),
        ),
    ]);
    let mut top = sample();
    top["surprise"] = json!(true);
    corpus.push(poison(bytes(&top), "unknown_field", Some("surprise")));
    let mut nested = sample();
    nested["items"][0]["colour"] = json!("red");
    corpus.push(poison(
        bytes(&nested),
        "unknown_field",
        Some("items[0].colour"),
    ));
    corpus
}

#[tokio::test]
async fn every_poison_is_recorded_and_every_valid_order_stored() {
    let app = TestApp::spawn().await;
    let key = Some("one-partition");
    let mut rng = StdRng::seed_from_u64(99);
    let corpus = corpus();
    let missing = corpus.iter().filter(|p| p.code == "missing_field").count();
    assert_eq!(
        missing, 39,
        "every leaf field of the sample is left out once"
    );
    let mut valid_ids = Vec::new();
    let mut expected = Vec::new();

    for poison in &corpus {
        app.produce(key, poison.value.as_deref()).await;
        expected.push((poison.code, poison.field.clone()));
        let order = fake_order(&mut rng, SEEDED_NOW);
        app.produce(key, Some(canonical_json(&order).as_bytes()))
            .await;
        valid_ids.push(order.order_uid);
    }
    // A 2 MiB value, on a topic whose limit the operator raised above the contract's.
    raise_topic_message_limit(
        &app.args.kafka.kafka_brokers,
        &app.args.kafka.kafka_topic,
        3 * 1024 * 1024,
    )
    .await;
    app.produce(key, Some(&vec![b' '; 2 * 1024 * 1024])).await;
    expected.push(("too_large", None));
    // A byte-order mark before a valid order: stored.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(SAMPLE.as_bytes());
    app.produce(key, Some(&bom)).await;
    valid_ids.push("b563feb7b2b84b6test".to_owned());
    // The same order twice: stored once, nothing rejected. The same id with other content:
    // a conflict.
    let twice = fake_order(&mut rng, SEEDED_NOW);
    app.produce(key, Some(canonical_json(&twice).as_bytes()))
        .await;
    app.produce(key, Some(canonical_json(&twice).as_bytes()))
        .await;
    let mut other = twice.clone();
    other.delivery.name = "Someone Else".to_owned();
    app.produce(key, Some(canonical_json(&other).as_bytes()))
        .await;
    expected.push(("conflict", Some("order_uid".to_owned())));
    valid_ids.push(twice.order_uid.clone());
    let last = fake_order(&mut rng, SEEDED_NOW);
    app.produce(key, Some(canonical_json(&last).as_bytes()))
        .await;
    valid_ids.push(last.order_uid.clone());

    app.wait_for_order(&last.order_uid).await;

    let stored: Vec<String> = sqlx::query_scalar("SELECT order_uid FROM orders")
        .fetch_all(app.store.pool())
        .await
        .expect("query");
    let mut want = valid_ids.clone();
    want.sort();
    let mut got = stored.clone();
    got.sort();
    assert_eq!(got, want, "every valid order stored exactly once");

    let rejected: Vec<(String, String)> =
        sqlx::query_as(r#"SELECT reason_code, reason FROM rejected ORDER BY "offset""#)
            .fetch_all(app.store.pool())
            .await
            .expect("query");
    assert_eq!(rejected.len(), expected.len(), "{rejected:#?}");
    for ((code, reason), (want_code, want_field)) in rejected.iter().zip(&expected) {
        assert_eq!(code, want_code, "{reason}");
        if let Some(field) = want_field {
            assert!(
                reason.contains(&format!(" {field}")),
                "{reason} must name {field}"
            );
        }
    }

    // The dead-letter topic has every rejection, with its reason and origin in headers.
    let group = format!("{}_dlq_reader", app.args.kafka_group_id);
    let letters = dead_letters(
        &app.args.kafka.kafka_brokers,
        &group,
        &app.args.kafka_dlq_topic,
        expected.len(),
    )
    .await;
    let mut codes = Vec::new();
    for letter in &letters {
        assert_eq!(letter.header("source_topic"), app.args.kafka.kafka_topic);
        letter
            .header("source_partition")
            .parse::<i32>()
            .expect("a partition");
        letter
            .header("source_offset")
            .parse::<i64>()
            .expect("an offset");
        assert!(!letter.header("reason").is_empty());
        codes.push(letter.header("reason_code").to_owned());
    }
    let want_codes: Vec<_> = expected.iter().map(|(code, _)| code.to_string()).collect();
    assert_eq!(codes, want_codes);
    app.stop_and_drop().await;
}
