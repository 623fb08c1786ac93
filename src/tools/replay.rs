//! `replay-rejected`: recorded rejections re-checked against the current contract. Those
//! that pass are stored (under the duplicate policy) and marked replayed; the others stay.

use std::io::Write;

use anyhow::Context;

use crate::order::{canonical_json, decode};
use crate::store::{NewOrder, Store};

/// What a replay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Rejections looked at.
    pub checked: u64,
    /// Now stored orders (or already stored with the same content), marked replayed.
    pub stored: u64,
    /// Still breaking a rule, or still in conflict with a stored order.
    pub still_rejected: u64,
}

/// Replays the rejection `id`, or every pending one when `id` is `None`, writing one line per
/// rejection to `out`.
pub async fn replay(
    store: &Store,
    id: Option<i64>,
    out: &mut impl Write,
) -> anyhow::Result<ReplaySummary> {
    let pending = store.pending_replays(id).await?;
    if let (Some(id), true) = (id, pending.is_empty()) {
        anyhow::bail!("no rejection {id} waiting for replay (unknown, or replayed already)");
    }
    let mut summary = ReplaySummary::default();
    for row in pending {
        summary.checked += 1;
        let verdict = match decode(row.payload.as_deref()) {
            Err(rejection) => Err(rejection.to_string()),
            Ok(order) => {
                let json = canonical_json(&order);
                let new = NewOrder {
                    uid: &order.order_uid,
                    json: &json,
                    origin: row.origin(),
                };
                // The same path as ingest; a conflict's rejection row is this row already.
                let saved = store.save_batch(&[new], &[]).await?;
                match saved.conflicts.first() {
                    None => Ok(order.order_uid),
                    Some((_, conflict)) => Err(conflict.to_string()),
                }
            }
        };
        let line = match verdict {
            Ok(uid) => {
                store.mark_replayed(row.id).await?;
                summary.stored += 1;
                format!("rejection {}: stored as order {uid}", row.id)
            }
            Err(reason) => {
                summary.still_rejected += 1;
                format!("rejection {}: still rejected: {reason}", row.id)
            }
        };
        writeln!(out, "{line}").context("cannot write the replay report")?;
    }
    writeln!(
        out,
        "checked {}, stored {}, still rejected {}",
        summary.checked, summary.stored, summary.still_rejected
    )
    .context("cannot write the replay report")?;
    Ok(summary)
}
