//! Capped exponential backoff with jitter, for store calls that failed for a reason that
//! may pass (the database is down or restarting).

use std::time::Duration;

use rand::Rng;

/// The first wait after a failure.
const FIRST: Duration = Duration::from_millis(100);
/// The longest wait between two tries.
const CAP: Duration = Duration::from_secs(10);

/// The waits between tries of one operation.
#[derive(Debug, Default)]
pub struct Backoff {
    /// Failures so far.
    failures: u32,
}

impl Backoff {
    /// The wait before the next try: doubles from [`FIRST`] up to [`CAP`], then a random
    /// amount between half of that and all of it, so that instances do not retry in step.
    pub fn next_wait(&mut self) -> Duration {
        let exp = FIRST.saturating_mul(1 << self.failures.min(16));
        self.failures = self.failures.saturating_add(1);
        let ceiling = exp.min(CAP);
        rand::rng().random_range(ceiling / 2..=ceiling)
    }

    /// How many failures there were.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_then_stay_under_the_cap() {
        let mut backoff = Backoff::default();
        let first = backoff.next_wait();
        assert!(first >= FIRST / 2 && first <= FIRST, "{first:?}");
        let waits: Vec<_> = (0..20).map(|_| backoff.next_wait()).collect();
        assert!(waits.iter().all(|w| *w <= CAP), "{waits:?}");
        assert!(waits[19] >= CAP / 2, "late waits reach the cap: {waits:?}");
        assert_eq!(backoff.failures(), 21);
    }
}
