//! The PostgreSQL server the tests use: the URL of a database of a test's own on it, creating
//! and migrating that database, an administrative connection beside it, and dropping it so
//! that test runs leave nothing behind. URLs are taken apart and rebuilt by sqlx's
//! `PgConnectOptions`, never by string surgery.

use std::str::FromStr;
use std::time::Duration;

use order_service::store::Store;
use sqlx::ConnectOptions;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The server the tests use unless `DATABASE_URL` names another.
const DEFAULT_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";

/// The database every PostgreSQL server has, for administration.
const MAINTENANCE_DATABASE: &str = "postgres";

/// How long a test's pool waits for a connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The options of `url`, which must be a PostgreSQL URL.
fn options(url: &str) -> PgConnectOptions {
    PgConnectOptions::from_str(url).unwrap_or_else(|e| panic!("not a PostgreSQL URL {url}: {e}"))
}

/// The server of `DATABASE_URL` (its database name is not used).
fn server() -> PgConnectOptions {
    options(&std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned()))
}

/// `host:port` of the server, for messages.
pub fn server_address() -> String {
    let server = server();
    format!("{}:{}", server.get_host(), server.get_port())
}

/// The URL of database `name` on the server of `DATABASE_URL`. sqlx writes it with the
/// credentials, host, port and TLS settings; other query options of `DATABASE_URL` (such as
/// `application_name`) are not carried over, and the tests need none.
pub fn database_url(name: &str) -> String {
    server().database(name).to_url_lossy().to_string()
}

/// The name of the database `url` points to.
pub fn database_name(url: &str) -> String {
    options(url)
        .get_database()
        .unwrap_or_else(|| panic!("no database in {url}"))
        .to_owned()
}

/// A pool on the maintenance database of the server `url` points to: for statements about
/// `url`'s database that cannot run inside it (DROP, ALTER DATABASE).
pub fn admin_pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(options(url).database(MAINTENANCE_DATABASE))
}

/// Creates the database of `url` and applies the migrations; fails the test with what to run
/// when PostgreSQL is not there.
pub async fn create_migrated(url: &str) -> Store {
    Store::create_database_if_missing(url)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable ({e}); start it with `make all-up`")
        });
    let store = Store::connect_lazy(url, ACQUIRE_TIMEOUT).expect("pool");
    store.migrate().await.expect("migrations apply");
    store
}

/// A pool on the database of `url` (a test's own), for assertions.
pub fn connect(url: &str) -> Store {
    Store::connect_lazy(url, ACQUIRE_TIMEOUT).expect("pool")
}

/// Drops the database of `url` (a test's own), ending its sessions.
pub async fn drop_database(url: &str) {
    let name = database_name(url);
    let admin = admin_pool(url);
    sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
        .execute(&admin)
        .await
        .expect("the test database drops");
    admin.close().await;
}
