//! A running `serve`, the real binary as a child process with its log in a file: killed with
//! SIGKILL, or stopped with SIGTERM and expected to exit cleanly.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A running `serve`.
pub struct Serve {
    /// The child process.
    child: Child,
    /// Its log file.
    log: PathBuf,
}

impl Serve {
    /// Spawns `command` (a `serve`), its output appended to `target/tmp/serve-logs/<name>.log`.
    pub fn start(mut command: Command, name: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve-logs");
        std::fs::create_dir_all(&dir).expect("log dir");
        let log = dir.join(format!("{name}.log"));
        let file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = command
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("serve starts");
        Self { child, log }
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// SIGKILL: no chance to commit or clean up.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then the process must exit with 0 within 10 seconds.
    pub async fn terminate_and_expect_clean_exit(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM sent");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<_> = log.lines().rev().take(20).collect();
                assert!(
                    status.success(),
                    "serve exited with {status}; log tail:\n{tail:#?}"
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "serve still running 10 s after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
