//! An Apache Kafka node of the test's own with a SASL_SSL listener (scripts/kafka.sh's
//! SASL_SSL mode): a fresh CA and broker certificate, a user with a random password known to
//! SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN, on a port range of its own (29092 and 29093, or
//! `KAFKA_SASL_TEST_PORT`), beside the shared plaintext node. Stopped when dropped, also after
//! a start that failed, and its folder (configuration with the password, keystore, data)
//! removed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use order_service::infra::config::{KafkaSecurityArgs, SaslMechanism, Secret, SecurityProtocol};
use rdkafka::ClientConfig;

use crate::common::names::unique;
use crate::common::tls::TestCa;

/// The node's first port unless `KAFKA_SASL_TEST_PORT` says otherwise.
const DEFAULT_PORT: u16 = 29092;

/// `scripts/kafka.sh` of this checkout.
fn kafka_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka.sh")
}

/// A running SASL_SSL node; `scripts/kafka.sh down` on drop.
pub struct SaslNode {
    /// Its client port.
    port: u16,
    /// The CA that signed its certificate (removed on drop, after the node stops).
    ca: TestCa,
    /// The user the tests authenticate as.
    pub user: String,
    /// Its password, random per run.
    pub password: String,
}

impl SaslNode {
    /// Starts the node (after stopping any node a previous run left on the same port); fails
    /// the test, with kafka.sh's output, if it does not start.
    pub fn start() -> Self {
        let port = std::env::var("KAFKA_SASL_TEST_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(DEFAULT_PORT);
        let ca = TestCa::new("kafka-sasl");
        // Only the address the node advertises: a client that dials it as `localhost` fails
        // host name verification (the test of `--kafka-property` relies on it).
        let cert = ca.server_cert("kafka", &["127.0.0.1"]);
        let node = Self {
            port,
            ca,
            user: unique("orders").replace('_', "-"),
            password: unique("KafkaPw").replace('_', ""),
        };
        // A node a crashed run left behind knows other credentials.
        node.run(&["down"]);
        let began = Instant::now();
        let users = format!("{}:{}", node.user, node.password);
        let output = Command::new("bash")
            .arg(kafka_sh())
            .args(["up", "--nodes", "1", "--port", &port.to_string()])
            .env("KAFKA_SASL_SSL_CERT", &cert.cert_file)
            .env("KAFKA_SASL_SSL_KEY", &cert.key_file)
            .env("KAFKA_SASL_SSL_CA", node.ca.ca_file())
            .env("KAFKA_SASL_USERS", users)
            .env("KAFKA_HEAP_OPTS", "-Xms128m -Xmx512m")
            .output()
            .expect("bash runs scripts/kafka.sh");
        // `node` is dropped (and the node stopped) if this fails.
        assert!(
            output.status.success(),
            "the SASL_SSL Kafka node did not start on port {port} (KAFKA_SASL_TEST_PORT picks another): {}",
            text(&output)
        );
        println!(
            "SASL_SSL Kafka node up on 127.0.0.1:{port} in {:.1}s",
            began.elapsed().as_secs_f64()
        );
        node
    }

    /// `scripts/kafka.sh <command> --port P`.
    fn run(&self, command: &[&str]) -> Output {
        Command::new("bash")
            .arg(kafka_sh())
            .args(command)
            .args(["--nodes", "1", "--port", &self.port.to_string()])
            .output()
            .expect("bash runs scripts/kafka.sh")
    }

    /// `127.0.0.1:<port>`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The CA file that verifies the node.
    pub fn ca_file(&self) -> &Path {
        self.ca.ca_file()
    }

    /// The service's settings for the node, with `mechanism` and `password`.
    pub fn security(&self, mechanism: SaslMechanism, password: &str) -> KafkaSecurityArgs {
        KafkaSecurityArgs {
            kafka_security_protocol: SecurityProtocol::SaslSsl,
            kafka_sasl_mechanism: Some(mechanism),
            kafka_sasl_username: Some(self.user.clone()),
            kafka_sasl_password: Some(Secret::new(password)),
            kafka_ssl_ca_location: Some(self.ca_file().to_owned()),
            kafka_properties: Vec::new(),
        }
    }

    /// The environment of the binary for the node, with `mechanism` and `password`.
    pub fn env(&self, mechanism: &str, password: &str) -> Vec<(&'static str, String)> {
        vec![
            ("KAFKA_BROKERS", self.brokers()),
            ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl".to_owned()),
            ("KAFKA_SASL_MECHANISM", mechanism.to_owned()),
            ("KAFKA_SASL_USERNAME", self.user.clone()),
            ("KAFKA_SASL_PASSWORD", password.to_owned()),
            (
                "KAFKA_SSL_CA_LOCATION",
                self.ca_file().display().to_string(),
            ),
        ]
    }

    /// A plain rdkafka client configuration for the node (the tests' own reader), with
    /// `mechanism`.
    pub fn client_config(&self, mechanism: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.brokers())
            .set("security.protocol", "sasl_ssl")
            .set("sasl.mechanism", mechanism)
            .set("sasl.username", &self.user)
            .set("sasl.password", &self.password)
            .set("ssl.ca.location", self.ca_file().display().to_string());
        config
    }
}

impl Drop for SaslNode {
    fn drop(&mut self) {
        let output = self.run(&["down"]);
        if output.status.success() {
            // Its configuration holds this run's password and its keystore the key.
            let dir =
                Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(".run/kafka/1x{}", self.port));
            let _ = std::fs::remove_dir_all(dir);
        } else {
            eprintln!("stopping the SASL_SSL Kafka node failed: {}", text(&output));
        }
    }
}

/// What a command printed, both streams.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
