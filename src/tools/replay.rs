//! `replay-rejected`: recorded rejections re-checked against the current contract. Those
//! that pass are stored (under the duplicate policy) and marked replayed; the others stay.

use std::io::Write;

use anyhow::Context;

use crate::order::{Rejection, canonical_json, decode};
use crate::store::{NewOrder, Store, StoreError};

/// What a replay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Rejections looked at.
    pub checked: u64,
    /// Now stored orders (or already stored with the same content), marked replayed.
    pub stored: u64,
    /// Still breaking a rule, still in conflict with a stored order, or still refused by
    /// PostgreSQL.
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
                match store.save_batch(&[new], &[]).await {
                    Ok(saved) => match saved.conflicts.first() {
                        None => Ok(order.order_uid),
                        Some((_, conflict)) => Err(conflict.to_string()),
                    },
                    // PostgreSQL still refuses it (the constraint or trigger is still there).
                    Err(StoreError::Refused(refusal)) => {
                        Err(Rejection::store_refused(refusal).to_string())
                    }
                    Err(error) => return Err(error.into()),
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
