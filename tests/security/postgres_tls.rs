//! `sslmode` and `sslrootcert` in a PostgreSQL URL, as the service's driver (sqlx with rustls)
//! honours them, against servers of the test's own with a CA and certificates the test makes:
//! `verify-ca` trusts the CA and ignores the name, `verify-full` also checks the name, a
//! certificate from another CA is refused by both; `require` encrypts without verifying and
//! refuses a server without TLS; `prefer` (the default) and `disable` as documented in
//! docs/operations.md#tls-to-postgresql.

use std::time::Duration;

use sqlx::{Connection, PgConnection};

use crate::common::tls::TestCa;
use crate::postgres_instance::PostgresInstance;

/// How rustls says that a certificate names another host: `NotValidForName` up to 0.23.23,
/// `certificate not valid for name ...` from 0.23.24.
const WRONG_NAME: &[&str] = &["NotValidForName", "not valid for name"];

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Connects to `url` and asks the server whether this session is encrypted
/// (`pg_stat_ssl.ssl`); the driver's error as text if the connection is refused.
pub(super) async fn session_is_encrypted(url: &str) -> Result<bool, String> {
    let attempt = async {
        let mut conn = PgConnection::connect(url).await?;
        let ssl: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&mut conn)
                .await?;
        conn.close().await?;
        Ok::<bool, sqlx::Error>(ssl)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
    }
}

/// `sslmode=<mode>`, and `sslrootcert=<ca>` when given.
fn query(mode: &str, root: Option<&TestCa>) -> String {
    match root {
        Some(ca) => format!("sslmode={mode}&sslrootcert={}", ca.ca_file().display()),
        None => format!("sslmode={mode}"),
    }
}

/// Asserts that `url` (described by `case`) connects and that the session's encryption is
/// `encrypted`.
async fn assert_connects(case: &str, url: &str, encrypted: bool) {
    match session_is_encrypted(url).await {
        Ok(ssl) => {
            println!("{case}: connected, pg_stat_ssl.ssl = {ssl}");
            assert_eq!(ssl, encrypted, "{case}: the session's encryption");
        }
        Err(e) => panic!("{case}: refused, but it must connect: {e}"),
    }
}

/// Asserts that `url` (described by `case`) is refused, with an error that holds one of
/// `expected` (rustls words some errors differently from one version to the next).
async fn assert_refused(case: &str, url: &str, expected: &[&str], password: &str) {
    match session_is_encrypted(url).await {
        Ok(ssl) => panic!("{case}: connected (ssl = {ssl}), but it must be refused"),
        Err(e) => {
            println!("{case}: refused: {e}");
            assert!(
                expected.iter().any(|x| e.contains(x)),
                "{case}: the error says one of {expected:?}: {e}"
            );
            assert!(
                !e.contains(password),
                "{case}: the error shows the password"
            );
        }
    }
}

/// The test binary's environment must not choose a TLS mode of its own: the driver reads
/// `PGSSLMODE` and `PGSSLROOTCERT` as defaults for what a URL leaves out.
fn assert_no_tls_environment() {
    for name in ["PGSSLMODE", "PGSSLROOTCERT"] {
        assert!(
            std::env::var_os(name).is_none(),
            "{name} is set in the test's environment; unset it, these tests define the mode in the URL"
        );
    }
}

#[tokio::test]
async fn verify_ca_trusts_the_ca_whatever_the_name_and_verify_full_also_checks_the_name() {
    assert_no_tls_environment();
    let ca = TestCa::new("pg-verify");
    let other_ca = TestCa::new("pg-verify-other");
    // Issued for `localhost` only: for a client that dials 127.0.0.1 it names another host.
    let cert = ca.server_cert("server", &["localhost"]);
    let pg = PostgresInstance::start_tls_only(&cert);
    let password = pg.password().to_owned();

    let case = "verify-full, our CA, host localhost (the certificate's name)";
    let url = pg.url("localhost", "postgres", &query("verify-full", Some(&ca)));
    assert_connects(case, &url, true).await;

    let case = "verify-ca, our CA, host 127.0.0.1 (not the certificate's name)";
    let url = pg.url("127.0.0.1", "postgres", &query("verify-ca", Some(&ca)));
    assert_connects(case, &url, true).await;

    let case = "verify-full, our CA, host 127.0.0.1 (not the certificate's name)";
    let url = pg.url("127.0.0.1", "postgres", &query("verify-full", Some(&ca)));
    assert_refused(case, &url, WRONG_NAME, &password).await;

    for mode in ["verify-ca", "verify-full"] {
        let case = format!("{mode}, another CA, host localhost");
        let url = pg.url("localhost", "postgres", &query(mode, Some(&other_ca)));
        assert_refused(&case, &url, &["UnknownIssuer"], &password).await;

        // Without sslrootcert only the built-in public roots are trusted: not our CA.
        let case = format!("{mode}, no sslrootcert, host localhost");
        let url = pg.url("localhost", "postgres", &query(mode, None));
        assert_refused(&case, &url, &["UnknownIssuer"], &password).await;
    }
}

#[tokio::test]
async fn require_encrypts_without_verifying_and_refuses_a_server_without_tls() {
    assert_no_tls_environment();
    // A CA the client is never told about, and a name that is not the host's.
    let unknown_ca = TestCa::new("pg-require-unknown");
    let other_ca = TestCa::new("pg-require-other");
    let cert = unknown_ca.server_cert("server", &["db.elsewhere.test"]);
    let tls = PostgresInstance::start_with_tls(&cert);
    let plain = PostgresInstance::start_without_tls();
    let password = tls.password().to_owned();
    let plain_password = plain.password().to_owned();

    let case = "require, TLS server, certificate from an unknown CA for another name";
    let url = tls.url("127.0.0.1", "postgres", &query("require", None));
    assert_connects(case, &url, true).await;

    // As in libpq, a root certificate does not make `require` verify anything in sqlx.
    let case = "require with sslrootcert of another CA, TLS server";
    let url = tls.url("127.0.0.1", "postgres", &query("require", Some(&other_ca)));
    assert_connects(case, &url, true).await;

    let case = "require with a wrong password, TLS server: TLS first, then authentication";
    let url = tls
        .url("127.0.0.1", "postgres", &query("require", None))
        .replace(&password, "wrong");
    assert_refused(case, &url, &["password authentication failed"], &password).await;

    let case = "prefer, TLS server";
    let url = tls.url("127.0.0.1", "postgres", &query("prefer", None));
    assert_connects(case, &url, true).await;

    let case = "no sslmode (prefer), TLS server";
    let url = tls.url("127.0.0.1", "postgres", "");
    assert_connects(case, &url, true).await;

    let case = "disable, TLS server";
    let url = tls.url("127.0.0.1", "postgres", &query("disable", None));
    assert_connects(case, &url, false).await;

    let case = "require, server without TLS";
    let url = plain.url("127.0.0.1", "postgres", &query("require", None));
    assert_refused(
        case,
        &url,
        &["server does not support TLS"],
        &plain_password,
    )
    .await;

    let case = "verify-full, server without TLS";
    let url = plain.url(
        "localhost",
        "postgres",
        &query("verify-full", Some(&other_ca)),
    );
    assert_refused(
        case,
        &url,
        &["server does not support TLS"],
        &plain_password,
    )
    .await;

    let case = "no sslmode (prefer), server without TLS: falls back to plain text";
    let url = plain.url("127.0.0.1", "postgres", "");
    assert_connects(case, &url, false).await;
}
