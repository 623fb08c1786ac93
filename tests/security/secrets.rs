//! No secret in output: the real binary runs with known secrets (a PostgreSQL role's
//! password, the operator token, a Kafka SASL password and a secret librdkafka property) and
//! with wrong ones (a wrong database password, a malformed token, SASL settings that do not
//! fit), at the most talkative log level, is asked for `--help`, answers requests with and
//! without the token, and serves `/metrics`; none of its output and none of its answers holds
//! any of those secrets.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

use crate::common::binary;
use crate::common::database::{admin_pool, database_url, drop_database};
use crate::common::kafka::brokers;
use crate::common::names::{Names, unique};

/// A login role of the test's own, with a password only this test knows; dropped at the end.
struct Role {
    name: String,
    password: String,
}

impl Role {
    async fn create() -> Self {
        let role = Self {
            name: unique("secret_role"),
            password: alphanumeric("PgPass"),
        };
        let admin = admin_pool(&database_url("postgres"));
        sqlx::query(&format!(
            "CREATE ROLE {} LOGIN CREATEDB PASSWORD '{}'",
            role.name, role.password
        ))
        .execute(&admin)
        .await
        .expect("PostgreSQL is reachable (start it with `make all-up`) and the role is created");
        admin.close().await;
        role
    }

    /// The URL of database `database` as this role, with `password`.
    fn url(&self, database: &str, password: &str) -> String {
        let options: PgConnectOptions = database_url(database).parse().expect("a URL");
        options
            .username(&self.name)
            .password(password)
            .to_url_lossy()
            .to_string()
    }

    async fn drop(self) {
        let admin = admin_pool(&database_url("postgres"));
        sqlx::query(&format!("DROP ROLE IF EXISTS {}", self.name))
            .execute(&admin)
            .await
            .expect("the role drops");
        admin.close().await;
    }
}

/// A fresh secret of letters and digits only, so that no encoding (a URL's, say) changes how
/// it is written, and a search for it finds every copy.
fn alphanumeric(prefix: &str) -> String {
    unique(prefix).replace('_', "")
}

/// A free port on the loopback interface.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `serve` with the test's settings and every log line there is.
fn serve(url: &str, token: &str, names: &Names, port: u16) -> Command {
    let mut command = binary::command("serve");
    command
        .env("DATABASE_URL", url)
        .env("OPERATOR_TOKEN", token)
        .env("KAFKA_BROKERS", brokers())
        .env("KAFKA_TOPIC", &names.topic)
        .env("KAFKA_DLQ_TOPIC", &names.dlq_topic)
        .env("KAFKA_GROUP_ID", &names.group)
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for `child` to exit within `within`; its exit status and all it printed.
fn finish(mut child: Child, within: Duration) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + within;
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let readers = [
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        }),
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        }),
    ];
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child can be waited on") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = readers
        .into_iter()
        .map(|r| r.join().expect("the reader ends"))
        .collect::<Vec<_>>()
        .join("\n");
    (status, output)
}

/// Runs `command` (a `serve` given `what`, a bad setting): it must exit non-zero, name
/// `setting` and show none of `secrets`.
fn assert_refused_start(what: &str, mut command: Command, setting: &str, secrets: &[&str]) {
    let child = command.spawn().expect("serve starts");
    let (status, output) = finish(child, Duration::from_secs(60));
    assert!(!status.success(), "serve ran with {what}: {output}");
    assert!(
        output.contains(setting),
        "the error names {setting}: {output}"
    );
    assert_no_secret(&format!("serve with {what}"), &output, secrets);
}

/// Fails if `text` (named `what`) holds any of `secrets`.
fn assert_no_secret(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "{what} shows a secret ({} characters): {}",
            secret.len(),
            text.lines()
                .filter(|l| l.contains(secret))
                .take(3)
                .collect::<Vec<_>>()
                .join(" | ")
                .replace(secret, "<SECRET>")
        );
    }
}

#[tokio::test]
async fn no_password_or_token_appears_in_help_logs_errors_answers_or_metrics() {
    let role = Role::create().await;
    let names = Names::unique("secrettest");
    let url = role.url(&names.name, &role.password);
    let token = format!("op-{}", unique("token"));
    let wrong_password = alphanumeric("WrongPass");
    let bad_token = format!("has spaces {} in it", unique("bad"));
    let kafka_password = alphanumeric("KafkaPass");
    let key_password = alphanumeric("KeyPass");
    let kafka_properties = format!("ssl.key.password={key_password};client.id=secrets-test");
    let secrets = [
        role.password.as_str(),
        token.as_str(),
        wrong_password.as_str(),
        bad_token.as_str(),
        kafka_password.as_str(),
        key_password.as_str(),
    ];

    // --help, with every secret in the environment.
    let help = binary::command("serve")
        .arg("--help")
        .env("DATABASE_URL", &url)
        .env("OPERATOR_TOKEN", &token)
        .env("KAFKA_SASL_PASSWORD", &kafka_password)
        .env("KAFKA_PROPERTIES", &kafka_properties)
        .output()
        .expect("--help runs");
    let help_text = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.status.success()
            && help_text.contains("OPERATOR_TOKEN")
            && help_text.contains("KAFKA_SASL_PASSWORD")
            && help_text.contains("KAFKA_PROPERTIES"),
        "{help_text}"
    );
    assert_no_secret("--help", &help_text, &secrets);
    // `send --help` too: it has the Kafka settings.
    let send_help = binary::command("send")
        .arg("--help")
        .env("KAFKA_SASL_PASSWORD", &kafka_password)
        .env("KAFKA_PROPERTIES", &kafka_properties)
        .output()
        .expect("--help runs");
    let send_help_text = String::from_utf8_lossy(&send_help.stdout);
    assert!(
        send_help.status.success() && send_help_text.contains("KAFKA_SASL_PASSWORD"),
        "{send_help_text}"
    );
    assert_no_secret("send --help", &send_help_text, &secrets);

    // A URL that does not parse, with the password in it: refused without showing it.
    let bad_url = binary::command("serve")
        .env(
            "DATABASE_URL",
            format!("postgres://someone:{}@127.0.0.1:notaport/x", role.password),
        )
        .output()
        .expect("serve runs");
    let bad_url_text = String::from_utf8_lossy(&bad_url.stderr);
    assert!(
        !bad_url.status.success() && bad_url_text.contains("DATABASE_URL"),
        "{bad_url_text}"
    );
    assert_no_secret("a malformed DATABASE_URL", &bad_url_text, &secrets);

    // A wrong database password, then a malformed token: start-up fails, naming the setting
    // and not the value.
    let port = free_port();
    let wrong_url = role.url(&names.name, &wrong_password);
    // SASL over TLS with a password and a secret property but no user name: refused before
    // any connection, naming the missing setting.
    let mut sasl_without_user = serve(&url, &token, &names, port);
    sasl_without_user
        .env("KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
        .env("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
        .env("KAFKA_SASL_PASSWORD", &kafka_password)
        .env("KAFKA_PROPERTIES", &kafka_properties);
    for (what, command, setting) in [
        (
            "a wrong database password",
            serve(&wrong_url, &token, &names, port),
            "DATABASE_URL",
        ),
        (
            "a malformed token",
            serve(&url, &bad_token, &names, port),
            "OPERATOR_TOKEN",
        ),
        (
            "a SASL password without a user name",
            sasl_without_user,
            "KAFKA_SASL_USERNAME",
        ),
    ] {
        assert_refused_start(what, command, setting, &secrets);
    }

    // A real run: requests with the token, with a wrong one, without; /metrics. With a secret
    // librdkafka property set on every Kafka client (librdkafka takes ssl.key.password on a
    // plaintext connection and does not use it).
    let child = serve(&url, &token, &names, port)
        .env(
            "KAFKA_PROPERTIES",
            format!("ssl.key.password={key_password}"),
        )
        .spawn()
        .expect("serve starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ready = http.get(format!("{base}/health/ready")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "serve was not ready within 90 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut answers = String::new();
    for (path, credentials) in [
        ("/api/orders", Some(token.as_str())),
        ("/api/orders", Some(wrong_password.as_str())),
        ("/api/rejected", None),
        ("/api/order/no-such-order", Some(token.as_str())),
        ("/health/ready", None),
        ("/api/openapi.json", None),
        ("/metrics", None),
    ] {
        let mut request = http.get(format!("{base}{path}"));
        if let Some(credentials) = credentials {
            request = request.bearer_auth(credentials);
        }
        let response = request.send().await.expect("serve answers");
        answers.push_str(&format!("{path} {:?}\n", response.headers()));
        answers.push_str(&response.text().await.expect("a body"));
    }
    assert!(answers.contains("http_requests_total"), "{answers}");
    assert_no_secret("the answers and /metrics", &answers, &secrets);
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(stopped.success());
    let (status, output) = finish(child, Duration::from_secs(30));
    assert!(status.success(), "serve stopped cleanly: {output}");
    assert!(output.contains("HTTP server listening"), "{output}");
    assert_no_secret("serve's log at trace level", &output, &secrets);

    drop_database(&url).await;
    role.drop().await;
}
