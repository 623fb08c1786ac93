//! Ingest's progress through a fault: the number of handled messages (stored orders plus
//! rejections), sampled every 50 ms in the background, and the longest time it stood still.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use order_service::store::Store;

use crate::common::counts::try_counts;
use crate::traffic::longest_gap;

/// How often the counts are read.
const EVERY: Duration = Duration::from_millis(50);

/// The sampling task and what it saw.
pub struct Progress {
    /// When the handled count grew.
    grew: Arc<Mutex<Vec<SystemTime>>>,
    /// The sampling task.
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts sampling `store`'s counts.
    pub fn watch(store: &Store) -> Self {
        let grew = Arc::new(Mutex::new(Vec::new()));
        let store = store.clone();
        let seen = grew.clone();
        let task = tokio::spawn(async move {
            let mut last = -1;
            loop {
                // While the database is unreachable a read fails: nothing was handled.
                if let Ok(counts) = try_counts(&store).await
                    && counts.handled() > last
                {
                    last = counts.handled();
                    seen.lock().expect("samples").push(SystemTime::now());
                }
                tokio::time::sleep(EVERY).await;
            }
        });
        Self { grew, task }
    }

    /// The longest time from `from` on during which no message was handled (to within the
    /// 50 ms of a sample), up to the last message handled.
    pub fn longest_pause_after(&self, from: SystemTime) -> Duration {
        let grew = self.grew.lock().expect("samples");
        longest_gap(from, grew.iter().copied())
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
    }
}
