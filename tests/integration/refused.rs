//! A poison pill only PostgreSQL sees: a trigger, created in the test's own database, refuses
//! one valid order in the middle of a batch on one partition. The writer splits the batch to
//! find it, records it as `store_refused`, and stores everything else in that batch and after
//! it, in order and exactly once; nothing stalls, and `replay-rejected` stores it once the
//! trigger is gone. A rejection PostgreSQL refuses to record too is given up on, not retried
//! forever.

use std::time::Duration;

use order_service::infra::config::ServeArgs;
use order_service::infra::kafka::ensure_named_topic;
use order_service::order::canonical_json;
use order_service::store::{ReplayFilter, Store};
use order_service::tools::generator::{SEEDED_NOW, fake_order};
use order_service::tools::replay::replay;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::common::app::TestApp;
use crate::common::counts::counts;
use crate::common::database::create_migrated;
use crate::common::kafka::{self, produce, producer};
use crate::common::settings::fresh_args;
use crate::common::wait::eventually;

/// All on one partition.
const KEY: Option<&str> = Some("one-partition");

/// Orders in the first batch; the one at [`REFUSED`] is refused by the trigger.
const BATCH: usize = 11;
/// The index (and offset) of the refused order.
const REFUSED: usize = 5;

/// What the trigger says when it refuses, and the detail it adds (which must never be kept:
/// for a real constraint, PostgreSQL's detail quotes the failing row).
const TRIGGER_MESSAGE: &str = "order refused by the test trigger";
const TRIGGER_DETAIL: &str = "failing row: Ivan Ivanov";

/// The id of the order at `index`. Inside one transaction rows are inserted in `order_uid`
/// order (save.rs locks in id order), so these ids sort like their offsets: `orders.seq` then
/// follows the produced order if and only if the parts of a split batch are committed in
/// order.
fn uid(index: usize) -> String {
    format!("refusal-test-{index:03}")
}

/// A valid order with the id of `index`, as canonical JSON.
fn order_json(rng: &mut StdRng, index: usize) -> Vec<u8> {
    let mut order = fake_order(rng, SEEDED_NOW);
    order.order_uid = uid(index);
    canonical_json(&order).into_bytes()
}

/// A trigger on `orders` that refuses the order `refused` with SQLSTATE 23514
/// (check_violation), counting in sequences (which no rollback undoes) every row it sees and
/// every refusal.
fn refusing_trigger(refused: &str) -> String {
    format!(
        r#"CREATE SEQUENCE trigger_rows;
        CREATE SEQUENCE trigger_refusals;
        CREATE FUNCTION refuse_one_order() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM nextval('trigger_rows');
            IF NEW.order_uid = '{refused}' THEN
                PERFORM nextval('trigger_refusals');
                RAISE EXCEPTION '{TRIGGER_MESSAGE}'
                    USING ERRCODE = 'check_violation', DETAIL = '{TRIGGER_DETAIL}';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_one_order BEFORE INSERT ON orders
            FOR EACH ROW EXECUTE FUNCTION refuse_one_order();"#
    )
}

/// A trigger on `rejected` that refuses every `store_refused` row with SQLSTATE 22023
/// (invalid_parameter_value, class 22).
const REFUSING_REJECTIONS: &str = r#"
    CREATE FUNCTION refuse_store_refused() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.reason_code = 'store_refused' THEN
            RAISE EXCEPTION 'store_refused rejections refused by the test trigger'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER refuse_store_refused BEFORE INSERT ON rejected
        FOR EACH ROW EXECUTE FUNCTION refuse_store_refused();"#;

/// Settings for one partition and a batch that waits long enough to take the whole backlog.
fn settings() -> ServeArgs {
    let mut args = fresh_args();
    args.kafka.kafka_topic_partitions = 1;
    args.ingest_batch_linger = Duration::from_secs(2);
    args
}

/// The test's database, migrated and given `sql` (the triggers), and its topic holding
/// `messages` before the service starts, so that its first batch takes them all.
async fn prepare(args: &ServeArgs, sql: &str, messages: &[Vec<u8>]) -> Store {
    let store = create_migrated(&args.database.database_url).await;
    sqlx::raw_sql(sql)
        .execute(store.pool())
        .await
        .expect("the triggers are created");
    ensure_named_topic(&args.kafka, &args.kafka.kafka_topic, 1)
        .await
        .expect("the topic is created");
    let producer = producer(&args.kafka.kafka_brokers);
    for message in messages {
        produce(&producer, &args.kafka.kafka_topic, KEY, Some(message)).await;
    }
    store
}

/// The stored ids, in arrival order.
async fn stored_in_order(store: &Store) -> Vec<String> {
    sqlx::query_scalar("SELECT order_uid FROM orders ORDER BY seq")
        .fetch_all(store.pool())
        .await
        .expect("query")
}

/// The recorded rejections: (partition, offset, reason_code, reason, payload), by offset.
async fn recorded(store: &Store) -> Vec<(i32, i64, String, String, Option<Vec<u8>>)> {
    sqlx::query_as(
        r#"SELECT "partition", "offset", reason_code, reason, payload FROM rejected
           ORDER BY "offset""#,
    )
    .fetch_all(store.pool())
    .await
    .expect("query")
}

/// The first `count` messages of the dead-letter topic: (reason_code, source offset, reason,
/// payload).
async fn dead_letters(app: &TestApp, count: usize) -> Vec<(String, i64, String, Vec<u8>)> {
    let group = format!("{}_dlq_reader", app.args.kafka_group_id);
    let brokers = &app.args.kafka.kafka_brokers;
    kafka::dead_letters(brokers, &group, &app.args.kafka_dlq_topic, count)
        .await
        .into_iter()
        .map(|letter| {
            (
                letter.header("reason_code").to_owned(),
                letter.header("source_offset").parse().expect("an offset"),
                letter.header("reason").to_owned(),
                letter.payload,
            )
        })
        .collect()
}

/// The value of the metric line starting with `series` in `GET /metrics`, if there is one.
async fn metric(app: &TestApp, series: &str) -> Option<f64> {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn a_refused_order_is_split_out_and_everything_else_is_stored_once_in_order() {
    let args = settings();
    let mut rng = StdRng::seed_from_u64(14);
    let batch: Vec<Vec<u8>> = (0..BATCH).map(|i| order_json(&mut rng, i)).collect();
    let store = prepare(&args, &refusing_trigger(&uid(REFUSED)), &batch).await;
    let app = TestApp::spawn_with(args).await;

    // The first batch settles: 10 orders stored, 1 rejected.
    eventually("the first batch to be settled", || async {
        let now = counts(&app.store).await;
        (now.stored == BATCH as i64 - 1 && now.rejected == 1).then_some(())
    })
    .await;
    // Nothing stalls: an order after the batch is stored too.
    let later = BATCH;
    app.produce(KEY, Some(&order_json(&mut rng, later))).await;
    app.wait_for_order(&uid(later)).await;

    let want: Vec<String> = (0..=later).filter(|&i| i != REFUSED).map(uid).collect();
    assert_eq!(
        stored_in_order(&app.store).await,
        want,
        "every other order stored exactly once, in the order produced"
    );
    let rejected = recorded(&app.store).await;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let (partition, offset, code, reason, payload) = &rejected[0];
    assert_eq!((*partition, *offset), (0, REFUSED as i64));
    assert_eq!(code, "store_refused");
    assert_eq!(
        reason,
        &format!("store refused: {TRIGGER_MESSAGE} (SQLSTATE 23514)")
    );
    assert!(
        !reason.contains("Ivan"),
        "the detail is never kept: {reason}"
    );
    assert_eq!(payload.as_deref(), Some(batch[REFUSED].as_slice()));
    assert_eq!(
        app.get(&format!("/api/order/{}", uid(REFUSED)))
            .await
            .status(),
        404
    );

    // The bisection of 11 with the refused order at 5, and the rows the trigger sees in each
    // transaction (in id order, until it refuses one): the whole refused (ids 0..=5), [0, 5)
    // committed (5), [5, 11), [5, 8) and [5, 6) refused (1 each: the refused id comes first),
    // the rejection recorded, [6, 8) (2) and [8, 11) (3) committed; then the later order (1).
    // A committed part saved again would show here (the trigger sees a duplicate too).
    let (rows, refusals): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM trigger_rows),
                (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM trigger_refusals)",
    )
    .fetch_one(app.store.pool())
    .await
    .expect("query");
    assert_eq!(
        (rows, refusals),
        (6 + 5 + 1 + 1 + 1 + 2 + 3 + 1, 4),
        "rows the trigger saw, and refusals (a PostgreSQL restart during the test retries \
         a step and adds some: re-run)"
    );

    // The rejection took the same path as every other: the dead-letter topic, the counter.
    let letters = dead_letters(&app, 1).await;
    assert_eq!(letters[0].0, "store_refused");
    assert_eq!(letters[0].1, REFUSED as i64);
    assert_eq!(letters[0].2, *reason);
    assert_eq!(letters[0].3, batch[REFUSED]);
    let refused = metric(&app, r#"orders_rejected_total{reason="store_refused"}"#).await;
    assert!(refused.is_some_and(|n| n >= 1.0), "{refused:?}");

    // Replay: still refused while the trigger is there, stored once it is gone.
    let mut report = Vec::new();
    let summary = replay(&app.store, &ReplayFilter::all(), false, &mut report)
        .await
        .expect("replay");
    let report = String::from_utf8(report).expect("text");
    assert_eq!((summary.stored, summary.still_rejected), (0, 1), "{report}");
    assert!(
        report.contains("still rejected: store refused: order refused by the test trigger"),
        "{report}"
    );
    sqlx::raw_sql("DROP TRIGGER refuse_one_order ON orders")
        .execute(app.store.pool())
        .await
        .expect("drop the trigger");
    let summary = replay(&app.store, &ReplayFilter::all(), false, &mut Vec::new())
        .await
        .expect("replay");
    assert_eq!((summary.stored, summary.still_rejected), (1, 0));
    app.wait_for_order(&uid(REFUSED)).await;

    store.pool().close().await;
    app.stop_and_drop().await;
}

#[tokio::test]
async fn a_refused_order_whose_rejection_is_refused_too_is_given_up_on() {
    let args = settings();
    let mut rng = StdRng::seed_from_u64(15);
    // Five orders with a malformed message after the refused one.
    let mut batch: Vec<Vec<u8>> = (0..5).map(|i| order_json(&mut rng, i)).collect();
    batch.insert(3, b"{ not json".to_vec());
    let sql = format!("{}\n{REFUSING_REJECTIONS}", refusing_trigger(&uid(2)));
    let store = prepare(&args, &sql, &batch).await;
    let app = TestApp::spawn_with(args).await;

    let later = 9;
    eventually("the first batch to be settled", || async {
        let now = counts(&app.store).await;
        (now.stored == 4 && now.rejected == 1).then_some(())
    })
    .await;
    app.produce(KEY, Some(&order_json(&mut rng, later))).await;
    app.wait_for_order(&uid(later)).await;

    assert_eq!(
        stored_in_order(&app.store).await,
        [uid(0), uid(1), uid(3), uid(4), uid(later)],
        "everything else stored, in order"
    );
    // The malformed message is recorded; the refused order's rejection could not be.
    let rejected = recorded(&app.store).await;
    let codes: Vec<(i64, &str)> = rejected
        .iter()
        .map(|(_, offset, code, _, _)| (*offset, code.as_str()))
        .collect();
    assert_eq!(codes, [(3, "malformed_json")]);
    // The dead-letter topic is what is left of it.
    let letters = dead_letters(&app, 2).await;
    let letters: Vec<(&str, i64)> = letters.iter().map(|l| (l.0.as_str(), l.1)).collect();
    assert_eq!(letters, [("store_refused", 2), ("malformed_json", 3)]);
    let unrecorded = metric(
        &app,
        r#"rejections_unrecorded_total{reason="store_refused"}"#,
    )
    .await;
    assert!(unrecorded.is_some_and(|n| n >= 1.0), "{unrecorded:?}");

    store.pool().close().await;
    app.stop_and_drop().await;
}
