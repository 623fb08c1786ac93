//! What a case measured: its samples, requests and CPU, and the statistics of them
//! (nearest-rank quantiles).

use std::time::Duration;

use crate::cli::Case;
use crate::timing::Sample;

/// One case's figures.
pub struct Figures {
    pub case: Case,
    pub samples: Vec<Sample>,
    pub elapsed: Duration,
    pub requests: u64,
    /// CPU seconds this example used during the case.
    pub cpu_self: Option<f64>,
    /// CPU seconds the running `serve` used during the case (not for `fresh-topic`, whose
    /// `serve`s are others).
    pub cpu_serve: Option<f64>,
}

impl Figures {
    pub fn visible(&self) -> Vec<Duration> {
        let mut visible: Vec<Duration> = self.samples.iter().filter_map(|s| s.visible).collect();
        visible.sort_unstable();
        visible
    }

    pub fn p99(&self) -> Option<Duration> {
        let visible = self.visible();
        (!visible.is_empty()).then(|| quantile(&visible, 0.99))
    }
}

/// `d` in milliseconds, the unit of everything this example prints.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `p` quantile (0..=1) of sorted `values`, nearest rank.
pub fn quantile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// CPU seconds (user + system) used so far by process `pid` (this one if `None`), from
/// `/proc/<pid>/stat` (in clock ticks of 1/100 s, Linux's `USER_HZ`).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |pid| format!("/proc/{pid}/stat"),
    );
    let stat = std::fs::read_to_string(path).ok()?;
    // The fields after the command name (in parentheses): state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
