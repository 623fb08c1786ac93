//! `replay-rejected` against the real PostgreSQL: a dry run writes nothing, the reason and
//! time filters select their rows, `--limit` bounds a run and the next takes the rest, and
//! nothing is replayed twice, by a second run or by two runs at once.

use order_service::order::{RejectKind, Rejection};
use order_service::store::{MessageOrigin, NewOrder, ReplayFilter, Store};
use order_service::tools::replay::{ReplaySummary, replay};

use crate::common::counts::counts;
use crate::common::database::drop_database;
use crate::common::rejections::record_rejection_at;
use crate::common::sample::{SAMPLE, SAMPLE_UID};
use crate::store::fresh_store;

/// The sample order under the id `uid`.
fn order(uid: &str) -> String {
    SAMPLE.replace(SAMPLE_UID, uid)
}

/// Records, at `offset`, a rejection for `kind` of `payload`.
async fn reject(store: &Store, offset: i64, payload: &[u8], kind: RejectKind) {
    let rejection = Rejection::message(kind, "under an older contract");
    record_rejection_at(store, offset, payload, &rejection).await;
}

/// Closes the test's pool and drops its database.
async fn done(store: Store, url: &str) {
    store.pool().close().await;
    drop_database(url).await;
}

/// Records a valid order `replay-<offset>` rejected as `invalid_value`, at each offset.
async fn reject_valid(store: &Store, offsets: impl IntoIterator<Item = i64>) {
    for offset in offsets {
        let json = order(&format!("replay-{offset}"));
        reject(store, offset, json.as_bytes(), RejectKind::InvalidValue).await;
    }
}

/// Runs a replay of `filter`; the report goes to standard output (`--nocapture`).
async fn run(store: &Store, filter: &ReplayFilter, dry_run: bool) -> ReplaySummary {
    let mut report = Vec::new();
    let summary = replay(store, filter, dry_run, &mut report)
        .await
        .expect("replay");
    print!("{}", String::from_utf8_lossy(&report));
    summary
}

/// The offsets of the rejections marked replayed, in order.
async fn replayed(store: &Store) -> Vec<i64> {
    sqlx::query_scalar(
        r#"SELECT "offset" FROM rejected WHERE replayed_at IS NOT NULL ORDER BY "offset""#,
    )
    .fetch_all(store.pool())
    .await
    .expect("query")
}

/// Everything in `orders` and `rejected`, as text: what a dry run must leave as it was.
async fn everything(store: &Store) -> (i64, String) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders),
                (SELECT coalesce(string_agg(r::text, '|' ORDER BY id), '') FROM rejected r)",
    )
    .fetch_one(store.pool())
    .await
    .expect("query")
}

#[tokio::test]
async fn a_dry_run_says_what_would_be_stored_and_writes_nothing() {
    let (store, url) = fresh_store().await;
    reject_valid(&store, 0..3).await;
    reject(&store, 3, b"[1]", RejectKind::NotObject).await;
    let before = everything(&store).await;

    let dry = run(&store, &ReplayFilter::all(), true).await;
    assert_eq!(
        (dry.checked, dry.would_store, dry.stored, dry.still_rejected),
        (4, 3, 0, 1)
    );
    assert_eq!(everything(&store).await, before, "a dry run writes nothing");
    assert_eq!(before.0, 0, "no order stored");

    // What it said is what a real run does.
    let real = run(&store, &ReplayFilter::all(), false).await;
    assert_eq!(
        (real.stored, real.would_store, real.still_rejected),
        (3, 0, 1)
    );
    assert_eq!(replayed(&store).await, [0, 1, 2]);
    done(store, &url).await;
}

#[tokio::test]
async fn the_reason_and_time_filters_select_their_rows() {
    let (store, url) = fresh_store().await;
    reject_valid(&store, 0..4).await;
    let json = order("replay-missing");
    reject(&store, 4, json.as_bytes(), RejectKind::MissingField).await;
    let json = order("replay-conflict");
    reject(&store, 5, json.as_bytes(), RejectKind::Conflict).await;
    // Recorded on the first of January, February, March and April (offsets 0 to 3).
    sqlx::query(
        r#"UPDATE rejected SET seen_at = make_timestamptz(2026, "offset"::int + 1, 1, 0, 0, 0, 'UTC')
           WHERE "offset" < 4"#,
    )
    .execute(store.pool())
    .await
    .expect("dates");

    let by_reason = ReplayFilter {
        reasons: vec!["missing_field".to_owned(), "conflict".to_owned()],
        ..ReplayFilter::all()
    };
    assert_eq!(run(&store, &by_reason, false).await.stored, 2);
    assert_eq!(replayed(&store).await, [4, 5], "only the two reasons");

    // February up to (not including) April, in another time zone than the one recorded.
    let by_time = ReplayFilter {
        since: Some("2026-02-01T03:00:00+03:00".to_owned()),
        until: Some("2026-04-01T00:00:00Z".to_owned()),
        ..ReplayFilter::all()
    };
    assert_eq!(run(&store, &by_time, false).await.checked, 2);
    assert_eq!(replayed(&store).await, [1, 2, 4, 5], "February and March");
    done(store, &url).await;
}

#[tokio::test]
async fn the_limit_bounds_a_run_and_the_next_takes_the_rest() {
    let (store, url) = fresh_store().await;
    // Two that stay broken come first: they must not hold back the rest.
    reject(&store, 0, b"[1]", RejectKind::NotObject).await;
    reject(&store, 1, b"{", RejectKind::MalformedJson).await;
    reject_valid(&store, 2..7).await;
    let three = ReplayFilter {
        limit: 3,
        ..ReplayFilter::all()
    };

    let first = run(&store, &three, false).await;
    assert_eq!(
        (
            first.checked,
            first.stored,
            first.still_rejected,
            first.remaining
        ),
        (3, 1, 2, 4)
    );
    let second = run(&store, &three, false).await;
    assert_eq!(
        (second.checked, second.stored, second.remaining),
        (3, 3, 3),
        "the never re-checked first"
    );
    assert_eq!(replayed(&store).await, [2, 3, 4, 5]);
    let third = run(&store, &three, false).await;
    assert_eq!((third.stored, third.still_rejected), (1, 2));
    assert_eq!(replayed(&store).await, [2, 3, 4, 5, 6]);
    done(store, &url).await;
}

#[tokio::test]
async fn nothing_is_replayed_twice_and_a_conflict_does_not_loop() {
    let (store, url) = fresh_store().await;
    reject_valid(&store, 0..3).await;
    assert_eq!(run(&store, &ReplayFilter::all(), false).await.stored, 3);

    // A second run, and the same messages redelivered and rejected again: nothing to do.
    reject_valid(&store, 0..3).await;
    let again = run(&store, &ReplayFilter::all(), false).await;
    assert_eq!((again.checked, again.stored), (0, 0));

    // The replayed order arrives again with other content: a conflict, which every replay
    // finds still in conflict, without recording anything new.
    let changed = order("replay-0").replace("Kiryat Mozkin", "Haifa");
    let new = NewOrder {
        uid: "replay-0",
        json: &changed,
        origin: MessageOrigin {
            topic: "orders",
            partition: 1,
            offset: 0,
            key: None,
            payload: Some(changed.as_bytes()),
        },
    };
    store.save_batch(&[new], &[]).await.expect("conflict");
    let before = counts(&store).await;
    assert_eq!((before.stored, before.rejected), (3, 4));
    for _ in 0..2 {
        let replay = run(&store, &ReplayFilter::all(), false).await;
        assert_eq!(
            (replay.checked, replay.stored, replay.still_rejected),
            (1, 0, 1)
        );
    }
    assert_eq!(
        counts(&store).await,
        before,
        "replay records no new rejection"
    );
    done(store, &url).await;
}

/// Counts, in sequences (which a rollback does not undo), every order inserted and every
/// rejection marked replayed.
const COUNT_WRITES: &str = r#"
CREATE SEQUENCE order_inserts;
CREATE SEQUENCE replay_marks;
CREATE FUNCTION count_insert() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM nextval('order_inserts'); RETURN NULL; END $$;
CREATE FUNCTION count_mark() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM nextval('replay_marks'); RETURN NULL; END $$;
CREATE TRIGGER count_inserts AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION count_insert();
CREATE TRIGGER count_marks AFTER UPDATE OF replayed_at ON rejected FOR EACH ROW
  WHEN (NEW.replayed_at IS NOT NULL) EXECUTE FUNCTION count_mark();
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replays_at_once_store_and_mark_each_rejection_once() {
    const N: u64 = 60;
    let (store, url) = fresh_store().await;
    reject_valid(&store, 0..N as i64).await;
    sqlx::raw_sql(COUNT_WRITES)
        .execute(store.pool())
        .await
        .expect("triggers");
    // Two operators: two pools.
    let other = crate::common::database::connect(&url);

    let spawn =
        |store: Store| tokio::spawn(async move { run(&store, &ReplayFilter::all(), false).await });
    let (a, b) = (spawn(store.clone()), spawn(other.clone()));
    let (a, b) = (a.await.expect("replay a"), b.await.expect("replay b"));
    println!("a: {a:?}\nb: {b:?}");
    assert_eq!(a.stored + b.stored, N, "each stored by one replay only");
    assert_eq!(a.checked + b.checked, N, "each checked by one replay only");
    let (inserts, marks): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM order_inserts),
                (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM replay_marks)",
    )
    .fetch_one(store.pool())
    .await
    .expect("query");
    assert_eq!((inserts, marks), (N as i64, N as i64));
    assert_eq!(replayed(&store).await.len() as u64, N);
    other.pool().close().await;
    done(store, &url).await;
}
