//! The ingest's counters: what each written batch did (stored, duplicates, rejected by reason,
//! rejections PostgreSQL refused to record, the batch and its size), recorded once the batch
//! is committed.

use metrics::{counter, histogram};

use super::written::Written;
use crate::infra::metrics::names;
use crate::store::SaveOutcome;

/// Counts a committed batch: its orders' outcomes and every message it rejected (conflicts
/// and store refusals included), and the rejections that could not be recorded.
pub fn record_batch(written: &Written<'_>) {
    counter!(names::INGEST_BATCHES).increment(1);
    histogram!(names::INGEST_BATCH_SIZE).record(written.messages() as f64);
    let (mut stored, mut duplicates) = (0u64, 0u64);
    for (_, _, outcome) in written.orders() {
        match outcome {
            Some(SaveOutcome::Stored) => stored += 1,
            Some(SaveOutcome::Duplicate) => duplicates += 1,
            Some(SaveOutcome::Conflict) | None => {}
        }
    }
    counter!(names::ORDERS_STORED).increment(stored);
    counter!(names::ORDERS_DUPLICATES).increment(duplicates);
    for (message, unrecorded, _) in written.rejections() {
        let reason = message.rejection.kind.code();
        counter!(names::ORDERS_REJECTED, "reason" => reason).increment(1);
        if unrecorded.is_some() {
            counter!(names::REJECTIONS_UNRECORDED, "reason" => reason).increment(1);
        }
    }
}
