//! Shutdown: SIGINT or SIGTERM cancels one token that every task of `serve` watches; what is
//! in flight then has [`GRACE`] to finish before the process gives up waiting.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long `serve` may take to stop after the signal: ingest commits, HTTP drains.
pub const GRACE: Duration = Duration::from_secs(9);

/// Runs `service` to its end; once `token` is cancelled it has [`GRACE`] left to finish.
pub async fn within_grace(
    service: impl Future<Output = anyhow::Result<()>>,
    token: &CancellationToken,
) -> anyhow::Result<()> {
    tokio::pin!(service);
    tokio::select! {
        result = &mut service => result,
        () = token.cancelled() => match tokio::time::timeout(GRACE, service).await {
            Ok(result) => result,
            Err(_) => anyhow::bail!("still busy {GRACE:?} after the shutdown signal; exiting"),
        },
    }
}

/// A token cancelled when the process receives SIGINT (Ctrl-C) or SIGTERM.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received");
        cancel.cancel();
    });
    token
}

/// Resolves on the first SIGINT or SIGTERM.
async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the service");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
