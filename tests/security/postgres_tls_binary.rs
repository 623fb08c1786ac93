//! The real binary over TLS to PostgreSQL: `order-service migrate` with
//! `sslmode=verify-full&sslrootcert=<ca>` in `DATABASE_URL` applies the migrations on a server
//! that refuses unencrypted connections; with another CA it fails, says which settings to
//! check, and shows no password.

use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use order_service::store::MIGRATOR;

use crate::common::binary;
use crate::common::tls::TestCa;
use crate::postgres_instance::PostgresInstance;
use crate::postgres_tls::session_is_encrypted;

/// How long `migrate` may take.
const MIGRATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `order-service migrate` against `url`; its exit status and all it printed. Output goes
/// to files in `dir`, so that nothing blocks on a full pipe while the test waits.
fn migrate(url: &str, dir: &std::path::Path) -> (ExitStatus, String) {
    let out_file = dir.join("migrate.out");
    let stdout = std::fs::File::create(&out_file).expect("the output file is created");
    let stderr = stdout.try_clone().expect("the output file is shared");
    let mut child = binary::command("migrate")
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("migrate starts");
    let deadline = Instant::now() + MIGRATE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child can be waited on") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("migrate did not exit within {MIGRATE_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&out_file).expect("the output is readable");
    (status, output)
}

#[tokio::test]
async fn migrate_runs_over_verify_full_and_a_wrong_ca_fails_naming_the_setting() {
    let ca = TestCa::new("pg-binary");
    let other_ca = TestCa::new("pg-binary-other");
    let cert = ca.server_cert("server", &["localhost", "127.0.0.1"]);
    let pg = PostgresInstance::start_tls_only(&cert);
    let verify_full = |root: &TestCa| {
        format!(
            "sslmode=verify-full&sslrootcert={}",
            root.ca_file().display()
        )
    };

    let url = pg.url("localhost", "orders", &verify_full(&ca));
    let started = Instant::now();
    let (status, output) = migrate(&url, ca.dir());
    println!(
        "migrate with verify-full and the right CA: {status} in {:?}",
        started.elapsed()
    );
    assert!(status.success(), "migrate over TLS fails: {output}");
    assert!(
        !output.contains(pg.password()),
        "migrate's output shows the password"
    );
    // The server refuses unencrypted connections, so these rows came over TLS.
    let pool = sqlx::PgPool::connect(&url)
        .await
        .expect("the database is there");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .expect("the migrations table is there");
    pool.close().await;
    assert_eq!(
        applied as usize,
        MIGRATOR.migrations.len(),
        "every migration is applied"
    );
    assert_eq!(session_is_encrypted(&url).await, Ok(true));

    let url = pg.url("localhost", "orders", &verify_full(&other_ca));
    let (status, output) = migrate(&url, ca.dir());
    println!("migrate with verify-full and another CA: {status}: {output}");
    assert!(
        !status.success(),
        "migrate with a wrong CA succeeds: {output}"
    );
    for setting in ["DATABASE_URL", "sslmode", "sslrootcert"] {
        assert!(
            output.contains(setting),
            "the error names {setting}: {output}"
        );
    }
    assert!(
        !output.contains(pg.password()),
        "migrate's error shows the password: {output}"
    );
}
