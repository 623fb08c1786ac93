//! The `serve`s that `fresh-topic` starts itself: the pid file while one runs, waiting for it
//! to answer and to be ready, stopping it; and a free port for it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// A `serve` this example started, its pid in a file while it runs (so that the script can
/// stop it if this example is killed).
pub struct Serve {
    child: Child,
    pid_file: PathBuf,
}

impl Serve {
    pub fn new(child: Child, pid_file: PathBuf) -> anyhow::Result<Self> {
        let pid = child.id().context("serve exited at once")?;
        std::fs::write(&pid_file, format!("{pid}\n"))
            .with_context(|| format!("cannot write {}", pid_file.display()))?;
        Ok(Self { child, pid_file })
    }

    /// Waits until `GET /health/live` answers 200 (bounded), failing if `serve` exits.
    pub async fn wait_live(&mut self, client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
        let url = format!("{base}/health/live");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("serve exited ({status}) before it answered HTTP");
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status() == StatusCode::OK
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        bail!("serve did not answer {url} within 60 s")
    }

    /// SIGTERM, then SIGKILL if it has not stopped within 15 s.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// When `GET /health/ready` first answers 200, polled every 5 ms for at most `give_up`.
pub async fn wait_ready(
    client: &reqwest::Client,
    base: &str,
    give_up: Duration,
) -> Option<Instant> {
    let url = format!("{base}/health/ready");
    let deadline = Instant::now() + give_up;
    while Instant::now() < deadline {
        if let Ok(response) = client.get(&url).send().await {
            let at = Instant::now();
            let ok = response.status() == StatusCode::OK;
            let _ = response.bytes().await;
            if ok {
                return Some(at);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// A TCP port free on 127.0.0.1 (now).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free port")?;
    Ok(listener.local_addr()?.port())
}
