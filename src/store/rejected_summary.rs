//! The `rejected` table, as the web page lists it: the most recent rejections, each with a
//! short, safe preview of its payload; only the payload's first bytes leave the database.

use super::{Store, StoreError};
use crate::infra::metrics::QueryTimer;

/// How many characters of a rejected payload a preview shows.
pub const PREVIEW_CHARS: usize = 200;

/// A recorded rejection as the web page lists it: where it came from, why, and a short, safe
/// preview of its payload (never the raw bytes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RejectedSummary {
    /// Row id (what `replay-rejected --id` takes).
    pub id: i64,
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Stable rule name (see [`crate::order::RejectKind::code`]).
    pub reason_code: String,
    /// The full reason, naming the rule and the field.
    pub reason: String,
    /// When ingest saw the message, RFC 3339 in UTC with milliseconds.
    pub seen_at: String,
    /// The payload's size in bytes; `null` for a tombstone.
    pub payload_bytes: Option<i64>,
    /// The start of the payload as text: decoded lossily from UTF-8, control and
    /// direction-changing characters replaced, at most [`PREVIEW_CHARS`] characters.
    pub payload_preview: String,
    /// Whether the preview is shorter than the payload.
    pub truncated: bool,
}

/// A rejection row as the summary query reads it.
#[derive(sqlx::FromRow)]
struct RejectedSummaryRow {
    /// Row id.
    id: i64,
    /// Source topic.
    topic: String,
    /// Source partition.
    partition: i32,
    /// Source offset.
    offset: i64,
    /// Stable rule name.
    reason_code: String,
    /// The full reason.
    reason: String,
    /// When it was seen, formatted by PostgreSQL.
    seen_at: String,
    /// The payload's size; `None` for a tombstone.
    payload_bytes: Option<i32>,
    /// The payload's first bytes (enough for [`PREVIEW_CHARS`] characters of UTF-8).
    head: Option<Vec<u8>>,
}

/// A safe, short text of a payload's first bytes: invalid UTF-8 becomes U+FFFD, whitespace
/// controls a space, other controls and bidirectional overrides U+FFFD, and at most
/// [`PREVIEW_CHARS`] characters are kept. The flag says whether anything was cut.
pub fn payload_preview(head: &[u8], total_bytes: usize) -> (String, bool) {
    let text = String::from_utf8_lossy(head);
    let mut preview = String::with_capacity(head.len().min(PREVIEW_CHARS * 4));
    let mut chars = text.chars();
    for c in chars.by_ref().take(PREVIEW_CHARS) {
        preview.push(match c {
            '\t' | '\n' | '\r' => ' ',
            c if c.is_control() => '\u{FFFD}',
            '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => {
                '\u{FFFD}'
            }
            c => c,
        });
    }
    let truncated = chars.next().is_some() || head.len() < total_bytes;
    (preview, truncated)
}

impl Store {
    /// The `limit` most recent rejections, newest first, with a preview of each payload; only
    /// the payload's first bytes leave the database.
    #[tracing::instrument(
        level = "debug",
        name = "rejected_summaries",
        skip_all,
        fields(otel.kind = "client", db.system = "postgresql", db.operation = "SELECT", db.sql.table = "rejected", db.limit = limit)
    )]
    pub async fn rejected_summaries(&self, limit: i64) -> Result<Vec<RejectedSummary>, StoreError> {
        let _timer = QueryTimer::start("rejected_summaries");
        let head_bytes = i32::try_from(PREVIEW_CHARS * 4).unwrap_or(i32::MAX);
        let rows: Vec<RejectedSummaryRow> = sqlx::query_as(
            r#"SELECT id, topic, "partition" AS partition, "offset" AS offset, reason_code,
                      reason,
                      to_char(seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
                          AS seen_at,
                      octet_length(payload) AS payload_bytes,
                      substring(payload FROM 1 FOR $2) AS head
               FROM rejected ORDER BY id DESC LIMIT $1"#,
        )
        .bind(limit)
        .bind(head_bytes)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(RejectedSummary::from).collect())
    }
}

impl From<RejectedSummaryRow> for RejectedSummary {
    fn from(row: RejectedSummaryRow) -> Self {
        let total = usize::try_from(row.payload_bytes.unwrap_or(0)).unwrap_or(usize::MAX);
        let (payload_preview, truncated) =
            payload_preview(row.head.as_deref().unwrap_or(&[]), total);
        Self {
            id: row.id,
            topic: row.topic,
            partition: row.partition,
            offset: row.offset,
            reason_code: row.reason_code,
            reason: row.reason,
            seen_at: row.seen_at,
            payload_bytes: row.payload_bytes.map(i64::from),
            payload_preview,
            truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PREVIEW_CHARS, payload_preview};

    #[test]
    fn a_short_payload_is_kept_whole() {
        assert_eq!(
            payload_preview(b"{\"a\":1}", 7),
            ("{\"a\":1}".to_owned(), false)
        );
    }

    #[test]
    fn controls_and_invalid_utf8_are_replaced() {
        let (preview, truncated) = payload_preview(b"a\nb\x00c\xffd\x1b[31m\xe2\x80\xaee", 16);
        assert_eq!(preview, "a b\u{FFFD}c\u{FFFD}d\u{FFFD}[31m\u{FFFD}e");
        assert!(!truncated);
    }

    #[test]
    fn a_long_payload_is_cut_at_a_character_count() {
        let long = "я".repeat(PREVIEW_CHARS + 5);
        let (preview, truncated) = payload_preview(long.as_bytes(), long.len());
        assert_eq!(preview.chars().count(), PREVIEW_CHARS);
        assert!(truncated);
    }

    #[test]
    fn a_head_shorter_than_the_payload_is_truncated() {
        let (preview, truncated) = payload_preview(b"abc", 1000);
        assert_eq!(preview, "abc");
        assert!(truncated);
    }

    #[test]
    fn a_multibyte_character_cut_by_the_head_becomes_a_replacement() {
        let (preview, _) = payload_preview(&"ая".as_bytes()[..3], 4);
        assert_eq!(preview, "а\u{FFFD}");
    }
}
