//! The `rejected` table, written: every message that did not become an order is recorded with
//! where it came from, its raw bytes and the reason. (`replay-rejected` reads the pending ones
//! back in `rejected_replay.rs`; the page's list of them is `rejected_summary.rs`.)

use super::StoreError;
use crate::order::Rejection;

/// Where a message came from, and its raw bytes.
#[derive(Debug, Clone, Copy)]
pub struct MessageOrigin<'a> {
    /// The topic it was read from.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its key, if it had one.
    pub key: Option<&'a [u8]>,
    /// Its raw value (`None` for a tombstone).
    pub payload: Option<&'a [u8]>,
}

/// A message that broke the contract, with its origin in the topic.
#[derive(Debug, Clone, Copy)]
pub struct RejectedMessage<'a> {
    /// The message.
    pub origin: MessageOrigin<'a>,
    /// Why it was rejected.
    pub rejection: &'a Rejection,
}

/// Records rejections in one statement, on `conn` (a transaction's, in ingest); recording the
/// same topic/partition/offset again does nothing.
pub(super) async fn record_rejections<'a>(
    conn: &mut sqlx::PgConnection,
    rejected: &[RejectedMessage<'a>],
) -> Result<(), StoreError> {
    if rejected.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&RejectedMessage<'a>) -> Option<&'a [u8]>| -> Vec<Option<&'a [u8]>> {
        rejected.iter().map(f).collect()
    };
    let topics: Vec<&str> = rejected.iter().map(|r| r.origin.topic).collect();
    let partitions: Vec<i32> = rejected.iter().map(|r| r.origin.partition).collect();
    let offsets: Vec<i64> = rejected.iter().map(|r| r.origin.offset).collect();
    let codes: Vec<&str> = rejected.iter().map(|r| r.rejection.kind.code()).collect();
    // A field name from the message may hold U+0000, which PostgreSQL text cannot.
    let reasons: Vec<String> = rejected
        .iter()
        .map(|r| r.rejection.to_string().replace('\0', "\\u0000"))
        .collect();
    sqlx::query(
        r#"INSERT INTO rejected (topic, "partition", "offset", key, payload, reason_code, reason)
           SELECT * FROM UNNEST($1::text[], $2::int4[], $3::int8[], $4::bytea[], $5::bytea[],
                                $6::text[], $7::text[])
           ON CONFLICT (topic, "partition", "offset") DO NOTHING"#,
    )
    .bind(topics)
    .bind(partitions)
    .bind(offsets)
    .bind(column(|r| r.origin.key))
    .bind(column(|r| r.origin.payload))
    .bind(codes)
    .bind(reasons)
    .execute(conn)
    .await?;
    Ok(())
}
