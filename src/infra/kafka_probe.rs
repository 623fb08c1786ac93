//! The start-up check of Kafka access, run by `serve` and `send` before anything else talks
//! to Kafka and once the caller has checked the security settings for fit
//! ([`KafkaSecurityArgs::validate`]): librdkafka is asked whether it takes every property, and one short-lived client connects
//! with them and fetches the cluster's metadata. Settings the brokers refuse then stop
//! start-up within seconds, with a message that names the settings and never a secret:
//! refused credentials (librdkafka would otherwise retry them for ever), a TLS handshake that
//! fails (a wrong `KAFKA_SSL_CA_LOCATION`), a property librdkafka does not know.
//!
//! [`KafkaSecurityArgs::validate`]: crate::infra::config::KafkaSecurityArgs::validate

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use crate::infra::config::{KafkaArgs, SaslMechanism, SecurityProtocol};
use crate::infra::kafka::{KafkaContext, client_config, with_extra_properties};

/// How long the check waits for a broker to answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one metadata request of the check waits.
const ATTEMPT: Duration = Duration::from_millis(500);

/// What the check found, when the settings were not refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// A broker answered with the settings.
    Reached,
    /// No broker answered within [`PROBE_TIMEOUT`]; librdkafka's last error, if any.
    Unreached(Option<String>),
}

/// Why the brokers refused the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// SASL authentication failed.
    Credentials,
    /// The TLS handshake failed.
    Tls,
}

/// The probe's client context: logs as every client does, and keeps the first refusal and
/// the last other error librdkafka reported.
#[derive(Default)]
struct ProbeContext {
    /// The shared logging.
    logs: KafkaContext,
    /// The first authentication or TLS error, with librdkafka's reason.
    refused: Mutex<Option<(Refusal, String)>>,
    /// The last error of another kind (a broker down, say).
    last: Mutex<Option<String>>,
}

impl ClientContext for ProbeContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        // A broker connection's failure is logged at once, from the broker's thread; the
        // error event that follows may come seconds later, or not at all when librdkafka
        // suppresses it as a repeat of the previous error (seen with a wrong CA).
        if fac == "FAIL" {
            if message.contains("SSL handshake failed") {
                self.refuse(Refusal::Tls, message);
            } else if message.contains("SASL authentication error") {
                self.refuse(Refusal::Credentials, message);
            }
        }
        self.logs.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => {
                self.refuse(Refusal::Credentials, reason)
            }
            Some(RDKafkaErrorCode::SSL) => self.refuse(Refusal::Tls, reason),
            _ => *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.to_owned()),
        }
        self.logs.error(error, reason);
    }
}

impl ProducerContext for ProbeContext {
    type DeliveryOpaque = ();

    // The probe produces nothing.
    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

impl ProbeContext {
    /// Keeps the first refusal.
    fn refuse(&self, refusal: Refusal, reason: &str) {
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        refused.get_or_insert_with(|| (refusal, reason.to_owned()));
    }

    fn refusal(&self) -> Option<(Refusal, String)> {
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn last_error(&self) -> Option<String> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// `text` with every one of `secrets` replaced by `[redacted]`.
fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret, "[redacted]")
        })
}

/// The setting a librdkafka property comes from, for messages.
fn setting_of(kafka: &KafkaArgs, key: &str) -> String {
    if kafka.security.extra_properties().any(|(k, _)| k == key) {
        return format!("{key} of KAFKA_PROPERTIES / --kafka-property");
    }
    let setting = match key {
        "bootstrap.servers" => "KAFKA_BROKERS",
        "security.protocol" => "KAFKA_SECURITY_PROTOCOL",
        "sasl.mechanism" => "KAFKA_SASL_MECHANISM",
        "sasl.username" => "KAFKA_SASL_USERNAME",
        "sasl.password" => "KAFKA_SASL_PASSWORD",
        "ssl.ca.location" => "KAFKA_SSL_CA_LOCATION",
        other => other,
    };
    format!("{key} ({setting})")
}

/// The message of a refusal, naming the settings to check.
fn refusal_message(kafka: &KafkaArgs, refusal: Refusal, reason: &str) -> String {
    let security = &kafka.security;
    match refusal {
        Refusal::Credentials => format!(
            "Kafka refused the credentials of KAFKA_SASL_USERNAME={} (check KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM={}): {reason}",
            security.kafka_sasl_username.as_deref().unwrap_or(""),
            security
                .kafka_sasl_mechanism
                .map_or("unset", |mechanism| mechanism.as_str()),
        ),
        Refusal::Tls => format!(
            "the TLS handshake with Kafka at {} failed (check KAFKA_SSL_CA_LOCATION={}, that the brokers' certificates name the hosts of KAFKA_BROKERS, and KAFKA_SECURITY_PROTOCOL={}): {reason}",
            kafka.kafka_brokers,
            security.kafka_ssl_ca_location.as_ref().map_or_else(
                || "unset, the system's CAs".to_owned(),
                |path| path.display().to_string()
            ),
            security.kafka_security_protocol.as_str(),
        ),
    }
}

/// The message of a client librdkafka refuses to create with `config`.
fn creation_message(kafka: &KafkaArgs, error: &KafkaError) -> String {
    match error {
        // Its Display quotes the value, which may be a secret: the key and librdkafka's
        // description only.
        KafkaError::ClientConfig(_, description, key, _) => format!(
            "librdkafka refused the property {}: {description}",
            setting_of(kafka, key)
        ),
        other => format!("cannot create a Kafka client with these settings: {other}"),
    }
}

/// Checks `config` and connects with it once; blocking (librdkafka's metadata call is).
fn probe(kafka: &KafkaArgs, config: &ClientConfig) -> anyhow::Result<Access> {
    let secrets = kafka.security.secret_values();
    let refuse = |message: String| anyhow::anyhow!(redact(&message, &secrets));
    let producer: BaseProducer<ProbeContext> = config
        .create_with_context(ProbeContext::default())
        .map_err(|e| refuse(creation_message(kafka, &e)))?;
    let deadline = Instant::now() + PROBE_TIMEOUT;
    loop {
        let metadata = producer.client().fetch_metadata(None, ATTEMPT);
        // Serves the error events, which the context records.
        producer.poll(Duration::ZERO);
        if let Some((refusal, reason)) = producer.context().refusal() {
            return Err(refuse(refusal_message(kafka, refusal, &reason)));
        }
        if metadata.is_ok() {
            return Ok(Access::Reached);
        }
        if Instant::now() >= deadline {
            let last = producer
                .context()
                .last_error()
                .map(|e| redact(&e, &secrets));
            return Ok(Access::Unreached(last));
        }
    }
}

/// Checks whether the brokers accept the Kafka settings of `kafka`, which the caller has
/// validated ([`KafkaSecurityArgs::validate`], as early in its start-up as it can). An error
/// (librdkafka refuses a property, the brokers refuse the credentials or the TLS handshake
/// fails) names the settings; [`Access::Unreached`] says no broker answered within
/// [`PROBE_TIMEOUT`].
///
/// [`KafkaSecurityArgs::validate`]: crate::infra::config::KafkaSecurityArgs::validate
pub async fn check_access(kafka: &KafkaArgs) -> anyhow::Result<Access> {
    if kafka.security.kafka_security_protocol == SecurityProtocol::SaslPlaintext
        && kafka.security.kafka_sasl_mechanism == Some(SaslMechanism::Plain)
    {
        tracing::warn!(
            "KAFKA_SECURITY_PROTOCOL=sasl_plaintext with KAFKA_SASL_MECHANISM=PLAIN sends the password unencrypted; use sasl_ssl"
        );
    }
    let mut config = client_config(kafka);
    with_extra_properties(&mut config, kafka);
    let kafka = kafka.clone();
    tokio::task::spawn_blocking(move || probe(&kafka, &config))
        .await
        .map_err(|e| anyhow::anyhow!("the Kafka check panicked: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::config::{KafkaProperty, Secret};

    fn kafka(properties: &[(&str, &str)]) -> KafkaArgs {
        let mut kafka = KafkaArgs {
            kafka_brokers: "127.0.0.1:1".to_owned(),
            kafka_topic: "orders".to_owned(),
            kafka_topic_partitions: 1,
            kafka_topic_replication_factor: None,
            security: Default::default(),
        };
        kafka.security.kafka_properties = properties
            .iter()
            .map(|(key, value)| KafkaProperty {
                key: (*key).to_owned(),
                value: Secret::new(*value),
            })
            .collect();
        kafka
    }

    #[tokio::test]
    async fn an_unknown_property_is_refused_by_name() {
        let error = check_access(&kafka(&[("no.such.property", "hunter2")]))
            .await
            .expect_err("librdkafka refuses it")
            .to_string();
        assert!(error.contains("no.such.property"), "{error}");
        assert!(error.contains("KAFKA_PROPERTIES"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[tokio::test]
    async fn a_bad_value_is_refused_without_showing_it() {
        let error = check_access(&kafka(&[("socket.timeout.ms", "hunter2")]))
            .await
            .expect_err("librdkafka refuses it")
            .to_string();
        assert!(error.contains("socket.timeout.ms"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn an_extra_property_reaches_every_client_and_overrides() {
        let kafka = kafka(&[("client.id", "orders-7"), ("linger.ms", "50")]);
        let mut config = crate::infra::kafka::producer_config(&kafka, Duration::from_secs(1));
        config.set("linger.ms", "5");
        with_extra_properties(&mut config, &kafka);
        assert_eq!(config.get("client.id"), Some("orders-7"));
        assert_eq!(config.get("linger.ms"), Some("50"));
        assert_eq!(config.get("security.protocol"), Some("plaintext"));
    }

    #[test]
    fn a_failed_handshake_or_login_in_librdkafka_s_log_is_a_refusal() {
        let context = ProbeContext::default();
        context.log(
            RDKafkaLogLevel::Error,
            "FAIL",
            "Connect to ipv4#127.0.0.1:1 failed",
        );
        assert_eq!(context.refusal(), None, "a broker down is no refusal");
        context.log(
            RDKafkaLogLevel::Error,
            "FAIL",
            "sasl_ssl://b:9093/bootstrap: SSL handshake failed: certificate verify failed",
        );
        context.log(
            RDKafkaLogLevel::Error,
            "FAIL",
            "SASL authentication error: Authentication failed",
        );
        let (refusal, reason) = context.refusal().expect("refused");
        assert_eq!(refusal, Refusal::Tls, "the first refusal is kept");
        assert!(reason.contains("certificate verify failed"), "{reason}");

        let context = ProbeContext::default();
        context.error(
            KafkaError::Global(RDKafkaErrorCode::Authentication),
            "SASL authentication error",
        );
        assert_eq!(
            context.refusal().map(|(refusal, _)| refusal),
            Some(Refusal::Credentials)
        );
    }

    #[test]
    fn a_refusal_names_the_settings_and_not_the_password() {
        let mut kafka = kafka(&[]);
        kafka.security.kafka_sasl_username = Some("orders".to_owned());
        kafka.security.kafka_sasl_password = Some(Secret::new("hunter2"));
        kafka.security.kafka_sasl_mechanism = Some(SaslMechanism::ScramSha512);
        let message = refusal_message(&kafka, Refusal::Credentials, "invalid credentials");
        for name in [
            "KAFKA_SASL_USERNAME=orders",
            "KAFKA_SASL_PASSWORD",
            "KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
        ] {
            assert!(message.contains(name), "{message}");
        }
        assert!(!message.contains("hunter2"), "{message}");
        let message = refusal_message(&kafka, Refusal::Tls, "certificate verify failed");
        assert!(message.contains("KAFKA_SSL_CA_LOCATION"), "{message}");
    }

    #[test]
    fn secrets_are_redacted_from_messages() {
        assert_eq!(
            redact("a hunter2 b s3 c", &["hunter2", "", "s3"]),
            "a [redacted] b [redacted] c"
        );
    }
}
