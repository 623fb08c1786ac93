//! The PostgreSQL server the tests use, and cleaning up their databases.

use std::time::Duration;

use order_service::store::Store;

/// The PostgreSQL server: `DATABASE_URL` without its database name (or a query).
pub fn server_url() -> String {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_owned());
    let (without_query, _) = url.split_once('?').unwrap_or((&url, ""));
    let (server, _database) = without_query
        .rsplit_once('/')
        .filter(|(server, _)| server.contains("://"))
        .unwrap_or((without_query, ""));
    server.to_owned()
}

/// Drops the database of `url` (a test's own), so that test runs leave nothing behind.
pub async fn drop_database(url: &str) {
    let (server, name) = url.rsplit_once('/').expect("a database URL");
    let admin =
        Store::connect_lazy(&format!("{server}/postgres"), Duration::from_secs(5)).expect("pool");
    sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
        .execute(admin.pool())
        .await
        .expect("the test database drops");
}
