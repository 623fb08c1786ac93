//! The OpenAPI document against the running service: schemathesis (installed by
//! `scripts/test-tools.sh` into `.run/venv`) runs every check on every documented operation
//! and must find no server error and no answer the document does not describe.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::app::TestApp;
use crate::common::sample::{SAMPLE, SAMPLE_UID};
use crate::common::wait::eventually;

/// The whole run may take this long before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// The schemathesis CLI, or a clear failure saying how to install it.
fn schemathesis() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".run/venv/bin/schemathesis");
    assert!(
        path.is_file(),
        "schemathesis is not installed at {}: run `bash scripts/test-tools.sh` (make test does)",
        path.display()
    );
    path
}

#[tokio::test]
async fn the_service_conforms_to_its_openapi_document() {
    let cli = schemathesis();
    let app = TestApp::spawn().await;
    app.produce(Some(SAMPLE_UID), Some(SAMPLE.as_bytes())).await;
    app.wait_for_order(SAMPLE_UID).await;
    eventually("/health/ready to be 200", || async {
        (app.get("/health/ready").await.status() == 200).then_some(())
    })
    .await;

    let document = app.get("/api/openapi.json").await;
    assert_eq!(document.status(), 200);
    let document: serde_json::Value = document.json().await.expect("JSON");
    assert_eq!(document["openapi"], "3.1.0");

    let started = Instant::now();
    let run = tokio::process::Command::new(&cli)
        .args(["run", &format!("{}/api/openapi.json", app.base)])
        .args(["--checks", "all"])
        .args(["--max-examples", "40"])
        .args(["--workers", "2"])
        .args(["--request-timeout", "10"])
        .args(["--generation-database", "none"])
        .args(["--seed", "7"])
        // Signed in, the event stream stays open until the request timeout on every example.
        .args(["--exclude-path", "/api/orders/stream"])
        .args([
            "--header",
            &format!(
                "Authorization: Bearer {}",
                crate::common::settings::OPERATOR_TOKEN
            ),
        ])
        .arg("--no-color")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("schemathesis did not finish within {RUN_LIMIT:?}"))
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    println!("schemathesis took {:?}", started.elapsed());
    assert!(
        output.status.success(),
        "schemathesis found problems ({}); its report is above",
        output.status
    );
    assert!(stdout.contains("No issues found"), "{stdout}");
    app.stop_and_drop().await;
}
