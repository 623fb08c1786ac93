//! The report: the table of every case's figures, the negative cache's check and the verdict
//! against the goal on standard output; and the samples as CSV for `--samples`.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::figures::{Figures, millis, quantile};
use crate::timing::Sample;

/// The goal: p99 of every case under this.
const GOAL: Duration = Duration::from_millis(50);

/// How long the negative cache remembers a missing id: an order that waited about this long
/// after a 404 was held up by a stale entry.
const NEGATIVE_TTL: Duration = order_service::cache::NEGATIVE_TTL;

impl Figures {
    /// These figures as a row of the table whose header [`print_report`] prints.
    fn row(&self) -> String {
        let ms = |d: Duration| format!("{:.1}", millis(d));
        let visible = self.visible();
        let failed = self.samples.len() - visible.len();
        let (p50, p99, max) = if visible.is_empty() {
            ("-".to_owned(), "-".to_owned(), "-".to_owned())
        } else {
            (
                ms(quantile(&visible, 0.5)),
                ms(quantile(&visible, 0.99)),
                ms(visible[visible.len() - 1]),
            )
        };
        let mut to_ack: Vec<Duration> = self.samples.iter().filter_map(|s| s.to_ack).collect();
        to_ack.sort_unstable();
        let ack_p50 = if to_ack.is_empty() {
            "-".to_owned()
        } else {
            ms(quantile(&to_ack, 0.5))
        };
        let polled_early = self.samples.iter().filter(|s| s.not_found > 0).count();
        let hits = self
            .samples
            .iter()
            .filter(|s| s.visible.is_some() && s.from_cache)
            .count();
        let gets = self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9);
        let cpu = |c: Option<f64>| c.map_or_else(|| "-".to_owned(), |c| format!("{c:.1}"));
        format!(
            "{:<13}{:>7}{:>7}{:>9}{:>9}{:>9}{:>10}{:>10}{:>8}/{:<6}{:>8.0}{:>9}/{:<5}",
            self.case.name(),
            self.samples.len(),
            failed,
            p50,
            p99,
            max,
            ack_p50,
            polled_early,
            hits,
            visible.len() - hits,
            gets,
            cpu(self.cpu_self),
            cpu(self.cpu_serve),
        )
    }
}

pub fn print_report(figures: &[Figures], poll: Duration) {
    println!(
        "freshness: producer acknowledgement -> first 200 on GET /api/order/{{id}}, polled every {poll:?}; in ms"
    );
    println!(
        "{:<13}{:>7}{:>7}{:>9}{:>9}{:>9}{:>10}{:>10}{:>15}{:>8}{:>15}",
        "case",
        "orders",
        "failed",
        "p50",
        "p99",
        "max",
        "ack p50",
        "404 first",
        "200 cache/db",
        "GETs/s",
        "CPU s ex/serve"
    );
    for figure in figures {
        println!("{}", figure.row().trim_end());
    }
    // The negative cache: an order answered 404 before it was stored is remembered as missing
    // for a second, unless ingest clears that when it caches the order.
    let polled_early: Vec<&Sample> = figures
        .iter()
        .flat_map(|f| &f.samples)
        .filter(|s| s.not_found > 0 && s.visible.is_some())
        .collect();
    let slowest = polled_early.iter().filter_map(|s| s.visible).max();
    let held_up = polled_early
        .iter()
        .filter(|s| {
            s.visible
                .is_some_and(|v| v >= NEGATIVE_TTL - Duration::from_millis(100))
        })
        .count();
    match slowest {
        Some(slowest) => println!(
            "negative cache: {} orders answered 404 before their first 200, the slowest visible {:.1} ms after its ack; {held_up} near or past the {} ms a missing id is remembered{}",
            polled_early.len(),
            millis(slowest),
            NEGATIVE_TTL.as_millis(),
            if held_up == 0 {
                ": ingest clears the entry"
            } else {
                ": held up by the negative cache?"
            }
        ),
        None => println!("negative cache: no order was answered 404 before its first 200"),
    }
    let verdicts: Vec<String> = figures
        .iter()
        .map(|f| match f.p99() {
            Some(p99) if p99 < GOAL && f.samples.iter().all(|s| s.visible.is_some()) => {
                format!("{} ok", f.case.name())
            }
            Some(p99) => format!("{} MISSED ({:.1} ms)", f.case.name(), millis(p99)),
            None => format!("{} MISSED (nothing visible)", f.case.name()),
        })
        .collect();
    println!(
        "goal p99 < {} ms, nothing lost: {}",
        GOAL.as_millis(),
        verdicts.join(", ")
    );
}

/// Instants as wall-clock time (the database's `stored_at` is one), from one reading of both.
pub struct Clock {
    instant: Instant,
    unix_us: i64,
}

impl Clock {
    pub fn now() -> anyhow::Result<Self> {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH)?;
        Ok(Self {
            instant: Instant::now(),
            unix_us: i64::try_from(since_epoch.as_micros())?,
        })
    }

    /// Microseconds since the Unix epoch at `at` (not before this clock was read).
    fn unix_us(&self, at: Instant) -> i64 {
        let since = at.saturating_duration_since(self.instant).as_micros();
        self.unix_us + i64::try_from(since).unwrap_or(i64::MAX / 2)
    }
}

/// The samples of every case as CSV (see `--samples`).
pub fn write_samples(path: &Path, figures: &[Figures], clock: &Clock) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for figure in figures {
        for sample in &figure.samples {
            let Some(acked_at) = sample.acked_at else {
                continue;
            };
            let acked = clock.unix_us(acked_at);
            let visible = sample
                .visible
                .map(|v| clock.unix_us(acked_at + v).to_string())
                .unwrap_or_default();
            writeln!(
                out,
                "{},{},{acked},{visible},{},{}",
                figure.case.name(),
                sample.uid,
                sample.not_found,
                sample.from_cache
            )?;
        }
    }
    out.flush()?;
    Ok(())
}
