//! `replay-rejected`: recorded rejections re-checked against the current contract. Those
//! that pass are stored (under the duplicate policy) and marked replayed; the others stay,
//! marked re-checked. A dry run says what would be stored and writes nothing.
//!
//! Never twice, never in a loop: each rejection is taken under its row lock and marked in the
//! transaction that stores its order, so two runs at once never both replay it, and a
//! replayed rejection never becomes pending again (the mark is only ever set). Replay writes
//! to PostgreSQL only, never to Kafka, and records no new rejection: a conflict or a refusal
//! of a replayed message is its own row already. An order replay stored that arrives again is
//! a duplicate; with other content it is a new rejection (`conflict`) that every replay finds
//! still in conflict (orders are immutable), so it stays pending and is never stored.

use std::io::Write;

use anyhow::Context;

use crate::order::{Rejection, canonical_json, decode};
use crate::store::{ReplayClaim, ReplayFilter, ReplayVerdict, Store, StoreError};

/// What a replay did (or, in a dry run, would do).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Rejections looked at.
    pub checked: u64,
    /// Now stored orders (or already stored with the same content), marked replayed.
    pub stored: u64,
    /// In a dry run: the rejections that would be stored (nothing is).
    pub would_store: u64,
    /// Still breaking a rule, still in conflict with a stored order, or still refused by
    /// PostgreSQL.
    pub still_rejected: u64,
    /// Selected, but replayed meanwhile or held by another replay running now.
    pub skipped: u64,
    /// Pending rejections the filter selects that this run left for the next (`--limit`).
    pub remaining: u64,
}

/// Replays the pending rejections `filter` selects, writing one line per rejection and a
/// summary to `out`. With `dry_run`, nothing is stored or marked.
pub async fn replay(
    store: &Store,
    filter: &ReplayFilter,
    dry_run: bool,
    out: &mut impl Write,
) -> anyhow::Result<ReplaySummary> {
    let candidates = store.replay_candidates(filter).await?;
    if let (Some(id), true) = (filter.id, candidates.is_empty()) {
        anyhow::bail!("no rejection {id} waiting for replay (unknown, or replayed already)");
    }
    let mut summary = ReplaySummary::default();
    for id in &candidates {
        let Some(mut claim) = store.claim_replay(*id, dry_run).await? else {
            summary.skipped += 1;
            writeln!(
                out,
                "rejection {id}: skipped (replayed or held by another replay)"
            )
            .context("cannot write the replay report")?;
            continue;
        };
        summary.checked += 1;
        let verdict = check(&mut claim).await?;
        let line = match &verdict {
            Ok(uid) if dry_run => {
                summary.would_store += 1;
                format!("rejection {id}: would be stored as order {uid}")
            }
            Ok(uid) => {
                summary.stored += 1;
                format!("rejection {id}: stored as order {uid}")
            }
            Err(reason) => {
                summary.still_rejected += 1;
                format!("rejection {id}: still rejected: {reason}")
            }
        };
        let outcome = match verdict {
            Ok(_) => ReplayVerdict::Stored,
            Err(_) => ReplayVerdict::StillRejected,
        };
        claim.finish(outcome).await?;
        writeln!(out, "{line}").context("cannot write the replay report")?;
    }
    summary.remaining = u64::try_from(store.replay_remaining(filter, &candidates).await?)
        .context("a negative count")?;
    writeln!(out, "{}", summary_line(&summary, dry_run))
        .context("cannot write the replay report")?;
    Ok(summary)
}

/// Decodes the claimed rejection's message and saves it on the claim: the stored order's id,
/// or why it is still rejected.
async fn check(claim: &mut ReplayClaim) -> Result<Result<String, String>, StoreError> {
    let order = match decode(claim.row.payload.as_deref()) {
        Ok(order) => order,
        Err(rejection) => return Ok(Err(rejection.to_string())),
    };
    let json = canonical_json(&order);
    match claim.save(&order.order_uid, &json).await {
        Ok(saved) => Ok(match saved.conflicts.first() {
            None => Ok(order.order_uid),
            Some((_, conflict)) => Err(conflict.to_string()),
        }),
        // PostgreSQL still refuses it (the constraint or trigger is still there).
        Err(StoreError::Refused(refusal)) => Ok(Err(Rejection::store_refused(refusal).to_string())),
        Err(error) => Err(error),
    }
}

/// The last line of the report.
fn summary_line(summary: &ReplaySummary, dry_run: bool) -> String {
    let mut line = if dry_run {
        format!(
            "dry run, nothing written: checked {}, would store {}, still rejected {}",
            summary.checked, summary.would_store, summary.still_rejected
        )
    } else {
        format!(
            "checked {}, stored {}, still rejected {}",
            summary.checked, summary.stored, summary.still_rejected
        )
    };
    if summary.skipped > 0 {
        line.push_str(&format!(", skipped {}", summary.skipped));
    }
    if summary.remaining > 0 {
        line.push_str(&format!(
            "; {} more pending beyond --limit: run again",
            summary.remaining
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_what_was_done_and_what_remains() {
        let done = ReplaySummary {
            checked: 3,
            stored: 2,
            still_rejected: 1,
            ..ReplaySummary::default()
        };
        let bounded = ReplaySummary {
            skipped: 1,
            remaining: 7,
            ..done
        };
        let dry = ReplaySummary {
            checked: 2,
            would_store: 2,
            ..ReplaySummary::default()
        };
        for (summary, dry_run, want) in [
            (done, false, "checked 3, stored 2, still rejected 1"),
            (
                bounded,
                false,
                "checked 3, stored 2, still rejected 1, skipped 1; 7 more pending beyond \
                 --limit: run again",
            ),
            (
                dry,
                true,
                "dry run, nothing written: checked 2, would store 2, still rejected 0",
            ),
        ] {
            assert_eq!(summary_line(&summary, dry_run), want);
        }
    }
}
