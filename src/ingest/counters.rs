//! The ingest's counters: what each written batch did (stored, duplicates, rejected by reason,
//! the batch and its size), recorded once the batch is committed.

use metrics::{counter, histogram};

use crate::metrics::names;
use crate::store::{RejectedMessage, SaveOutcome};

/// Counts a committed batch of `messages` messages: its orders' `outcomes` and its
/// `rejected` messages (conflicts, found among the outcomes, count as rejected too).
pub fn record_batch(messages: usize, outcomes: &[SaveOutcome], rejected: &[RejectedMessage<'_>]) {
    counter!(names::INGEST_BATCHES).increment(1);
    histogram!(names::INGEST_BATCH_SIZE).record(messages as f64);
    let (mut stored, mut duplicates, mut conflicts) = (0u64, 0u64, 0u64);
    for outcome in outcomes {
        match outcome {
            SaveOutcome::Stored => stored += 1,
            SaveOutcome::Duplicate => duplicates += 1,
            SaveOutcome::Conflict => conflicts += 1,
        }
    }
    counter!(names::ORDERS_STORED).increment(stored);
    counter!(names::ORDERS_DUPLICATES).increment(duplicates);
    if conflicts > 0 {
        counter!(names::ORDERS_REJECTED, "reason" => "conflict").increment(conflicts);
    }
    for message in rejected {
        counter!(names::ORDERS_REJECTED, "reason" => message.rejection.kind.code()).increment(1);
    }
}
