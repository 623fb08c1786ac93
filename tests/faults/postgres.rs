//! Stopping and starting the machine's PostgreSQL cluster (Debian's `pg_ctlcluster`); an
//! outage ends when its guard is dropped, also when the test fails.

use std::process::Command;

/// The cluster's version directory under /etc/postgresql.
fn version() -> String {
    let mut versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .expect("a Debian PostgreSQL cluster (/etc/postgresql)")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL version")
}

/// `pg_ctlcluster <version> main <action>`; it must succeed.
fn ctl(action: &str) {
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version(), "main", action])
        .args(if action == "stop" {
            &["-m", "fast"][..]
        } else {
            &[][..]
        })
        .status()
        .expect("pg_ctlcluster runs");
    assert!(status.success(), "pg_ctlcluster {action} failed");
}

/// PostgreSQL is down while this lives; dropping it starts PostgreSQL again, also when
/// the test fails.
pub struct Outage(());

/// Stops PostgreSQL.
pub fn stop() -> Outage {
    ctl("stop");
    Outage(())
}

impl Drop for Outage {
    fn drop(&mut self) {
        ctl("start");
    }
}
