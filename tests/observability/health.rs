//! `/health/live` and `/health/ready` of the real service: ready once the consumer has its
//! partitions, not ready (naming the database) when the service's database refuses
//! connections, ready again when it takes them back. The machine's PostgreSQL keeps running:
//! only the test's own database is closed (`ALLOW_CONNECTIONS false` and its sessions ended).

use std::time::Instant;

use serde_json::Value;

use crate::common::app::TestApp;
use crate::common::database::{admin_pool, database_name};
use crate::common::wait::eventually;

/// The status and JSON body of `GET /health/ready`.
async fn ready(app: &TestApp) -> (u16, Value) {
    let response = app.get("/health/ready").await;
    let status = response.status().as_u16();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

/// Opens or closes the test's database to new connections; closing also ends its sessions.
async fn set_database_open(app: &TestApp, open: bool) {
    let url = &app.args.database.database_url;
    let name = database_name(url);
    let admin = admin_pool(url);
    sqlx::query(&format!(
        r#"ALTER DATABASE "{name}" ALLOW_CONNECTIONS {open}"#
    ))
    .execute(&admin)
    .await
    .expect("ALTER DATABASE");
    if !open {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&name)
        .execute(&admin)
        .await
        .expect("end the database's sessions");
    }
    admin.close().await;
}

#[tokio::test]
async fn live_is_200_while_the_process_runs() {
    let app = TestApp::spawn().await;
    let response = app.get("/health/live").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("a body"), "ok");
    app.stop_and_drop().await;
}

#[tokio::test]
async fn ready_follows_the_assignment_and_the_database() {
    let app = TestApp::spawn().await;
    let started = Instant::now();
    let body = eventually("/health/ready to be 200", || async {
        let (status, body) = ready(&app).await;
        (status == 200).then_some(body)
    })
    .await;
    println!("ready after {:?}: {body}", started.elapsed());
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"]["status"], "ok");
    assert_eq!(body["checks"]["consumer"]["status"], "ok");

    set_database_open(&app, false).await;
    let asked = Instant::now();
    let body = eventually(
        "/health/ready to be 503 once the database is closed",
        || async {
            let (status, body) = ready(&app).await;
            (status == 503).then_some(body)
        },
    )
    .await;
    println!(
        "not ready {:?} after the database closed: {body}",
        asked.elapsed()
    );
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["database"]["status"], "failing");
    assert_eq!(
        body["checks"]["consumer"]["status"], "ok",
        "only the database fails"
    );
    let answered = Instant::now();
    let (status, _) = ready(&app).await;
    println!("a not-ready answer took {:?}", answered.elapsed());
    assert_eq!(status, 503, "stays not ready while the database is closed");

    set_database_open(&app, true).await;
    eventually("/health/ready to be 200 again", || async {
        let (status, _) = ready(&app).await;
        (status == 200).then_some(())
    })
    .await;
    app.stop_and_drop().await;
}
