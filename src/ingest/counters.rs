//! The ingest's counters: what each written batch did (stored, duplicates, rejected by reason,
//! the batch and its size), recorded once the batch is committed.

use metrics::{counter, histogram};

use crate::infra::metrics::names;
use crate::store::{RejectedMessage, SaveOutcome};

/// Counts a committed batch of `messages` messages: its orders' `outcomes` and every message
/// it `rejected` (conflicts included, as the saved batch gave them).
pub fn record_batch(messages: usize, outcomes: &[SaveOutcome], rejected: &[RejectedMessage<'_>]) {
    counter!(names::INGEST_BATCHES).increment(1);
    histogram!(names::INGEST_BATCH_SIZE).record(messages as f64);
    let count = |wanted| outcomes.iter().filter(|&&o| o == wanted).count() as u64;
    counter!(names::ORDERS_STORED).increment(count(SaveOutcome::Stored));
    counter!(names::ORDERS_DUPLICATES).increment(count(SaveOutcome::Duplicate));
    for message in rejected {
        counter!(names::ORDERS_REJECTED, "reason" => message.rejection.kind.code()).increment(1);
    }
}
