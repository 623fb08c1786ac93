//! The Kafka security settings every Kafka client of the service shares (`serve`'s consumer
//! and admin client, the dead-letter producer, `send`): the security protocol, the SASL
//! mechanism and credentials, the CA file that verifies the brokers' certificates, and any
//! other librdkafka property (`--kafka-property`, `KAFKA_PROPERTIES`). This module owns parsing
//! them, checking that they fit together, and the librdkafka properties they become;
//! `infra/kafka.rs` applies those to every client, `infra/kafka_probe.rs` checks at start-up
//! that the brokers accept them.
//!
//! Secrets: the password is a [`Secret`]; an extra property's value is one too (it may be
//! `ssl.key.password` or an OAuth client secret), so neither is shown by `Debug`, `--help`
//! or a parse error.
//!
//! This file holds the settings and the librdkafka properties they become; `names.rs` the
//! protocols' and mechanisms' names, `property.rs` an extra `key=value` property and its
//! parser, `validate.rs` the check that the settings fit together.

mod names;
mod property;
mod validate;

use std::path::PathBuf;

use clap::Args;

use super::secret::{Secret, parse_secret};
pub use names::{SaslMechanism, SecurityProtocol};
pub use property::KafkaProperty;
use property::PropertyParser;
pub use validate::SecurityMisconfigured;

/// How the Kafka clients authenticate and encrypt, and any other librdkafka property.
#[derive(Debug, Clone, Default, Args)]
pub struct KafkaSecurityArgs {
    /// How the clients talk to the brokers: plaintext, ssl (TLS), sasl_plaintext (SASL
    /// without TLS) or sasl_ssl (SASL over TLS).
    #[arg(
        long,
        env = "KAFKA_SECURITY_PROTOCOL",
        value_name = "KAFKA_SECURITY_PROTOCOL",
        value_enum,
        ignore_case = true,
        default_value_t = SecurityProtocol::Plaintext
    )]
    pub kafka_security_protocol: SecurityProtocol,
    /// The SASL mechanism: SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN. Needed with the sasl_*
    /// protocols.
    #[arg(
        long,
        env = "KAFKA_SASL_MECHANISM",
        value_name = "KAFKA_SASL_MECHANISM",
        value_enum,
        ignore_case = true
    )]
    pub kafka_sasl_mechanism: Option<SaslMechanism>,
    /// The SASL user name.
    #[arg(long, env = "KAFKA_SASL_USERNAME", value_name = "KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,
    /// The SASL password. Never shown (not in `--help`, logs or errors). Prefer the
    /// variable: a flag's value is visible to other users of the machine in the process
    /// list.
    #[arg(
        long,
        env = "KAFKA_SASL_PASSWORD",
        value_name = "KAFKA_SASL_PASSWORD",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    pub kafka_sasl_password: Option<Secret>,
    /// A PEM file of the CA certificate(s) that sign the brokers' certificates (with ssl and
    /// sasl_ssl); unset: the system's CAs.
    #[arg(
        long,
        env = "KAFKA_SSL_CA_LOCATION",
        value_name = "KAFKA_SSL_CA_LOCATION"
    )]
    pub kafka_ssl_ca_location: Option<PathBuf>,
    /// Any other librdkafka property, as key=value; repeat the flag for more. The variable
    /// takes several, separated by ';' (so a value cannot hold one). Applied after the
    /// service's own settings, so they override them. Values are never shown (they may be
    /// secrets).
    #[arg(
        long = "kafka-property",
        env = "KAFKA_PROPERTIES",
        value_name = "KEY=VALUE",
        value_delimiter = ';',
        hide_env_values = true,
        value_parser = PropertyParser
    )]
    pub kafka_properties: Vec<KafkaProperty>,
}

impl KafkaSecurityArgs {
    /// The librdkafka properties these settings make, in the order they are to be applied:
    /// the protocol, the SASL settings, the CA file, then the extra properties (last, so
    /// that they override).
    pub fn properties(&self) -> Vec<(&str, &str)> {
        let mut properties = vec![("security.protocol", self.kafka_security_protocol.as_str())];
        if let Some(mechanism) = self.kafka_sasl_mechanism {
            properties.push(("sasl.mechanism", mechanism.as_str()));
        }
        if let Some(user) = &self.kafka_sasl_username {
            properties.push(("sasl.username", user));
        }
        if let Some(password) = &self.kafka_sasl_password {
            properties.push(("sasl.password", password.expose()));
        }
        if let Some(path) = &self.kafka_ssl_ca_location
            && let Some(path) = path.to_str()
        {
            properties.push(("ssl.ca.location", path));
        }
        properties.extend(self.extra_properties());
        properties
    }

    /// The extra properties alone (`--kafka-property`, `KAFKA_PROPERTIES`).
    pub fn extra_properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.kafka_properties
            .iter()
            .map(|p| (p.key.as_str(), p.value.expose()))
    }

    /// Every value that must not be shown: the password and the extra properties' values.
    pub fn secret_values(&self) -> Vec<&str> {
        self.kafka_sasl_password
            .iter()
            .map(Secret::expose)
            .chain(self.kafka_properties.iter().map(|p| p.value.expose()))
            .filter(|value| !value.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::property::parse_property;
    use super::*;

    #[derive(Debug, Parser)]
    pub(super) struct Cli {
        #[command(flatten)]
        pub(super) security: KafkaSecurityArgs,
    }

    pub(super) fn parse(args: &[&str]) -> Result<KafkaSecurityArgs, clap::Error> {
        // No variable of the caller's environment: only the flags given.
        let command = <Cli as clap::CommandFactory>::command().mut_args(|arg| arg.env(None));
        let matches =
            command.try_get_matches_from(std::iter::once("test").chain(args.iter().copied()))?;
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).map(|cli| cli.security)
    }

    pub(super) fn sasl(mechanism: &str) -> KafkaSecurityArgs {
        parse(&[
            "--kafka-security-protocol",
            "sasl_ssl",
            "--kafka-sasl-mechanism",
            mechanism,
            "--kafka-sasl-username",
            "orders",
            "--kafka-sasl-password",
            "s3cret-value",
        ])
        .expect("SASL settings parse")
    }

    #[test]
    fn plaintext_without_anything_else_is_the_default() {
        let security = parse(&[]).expect("no flags parse");
        assert_eq!(
            security.kafka_security_protocol,
            SecurityProtocol::Plaintext
        );
        assert!(security.validate().is_ok());
        assert_eq!(
            security.properties(),
            vec![("security.protocol", "plaintext")]
        );
    }

    #[test]
    fn sasl_settings_become_librdkafka_properties_in_order() {
        for (given, name) in [
            ("SCRAM-SHA-256", "SCRAM-SHA-256"),
            ("scram-sha-512", "SCRAM-SHA-512"),
            ("plain", "PLAIN"),
        ] {
            let security = sasl(given);
            assert!(security.validate().is_ok(), "{given}");
            assert_eq!(
                security.properties(),
                vec![
                    ("security.protocol", "sasl_ssl"),
                    ("sasl.mechanism", name),
                    ("sasl.username", "orders"),
                    ("sasl.password", "s3cret-value"),
                ]
            );
        }
    }

    #[test]
    fn extra_properties_come_last_from_flags_split_at_the_first_equals_sign() {
        let security = parse(&[
            "--kafka-property",
            "client.id=orders-1",
            "--kafka-property",
            " ssl.key.password =a=b",
        ])
        .expect("properties parse");
        assert_eq!(
            security.properties(),
            vec![
                ("security.protocol", "plaintext"),
                ("client.id", "orders-1"),
                ("ssl.key.password", "a=b"),
            ]
        );
        assert_eq!(security.secret_values(), vec!["orders-1", "a=b"]);
    }

    #[test]
    fn the_variable_takes_several_properties_separated_by_semicolons() {
        let command = <Cli as clap::CommandFactory>::command().mut_args(|arg| {
            if arg.get_id() == "kafka_properties" {
                // The variable's own splitting, without touching the process's environment.
                arg.default_value("client.id=a;socket.keepalive.enable=true")
            } else {
                arg.env(None)
            }
        });
        let matches = command.try_get_matches_from(["test"]).expect("parses");
        let cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches).expect("fits");
        let keys: Vec<&str> = cli.security.extra_properties().map(|(k, _)| k).collect();
        assert_eq!(keys, vec!["client.id", "socket.keepalive.enable"]);
    }

    #[test]
    fn a_malformed_property_is_refused_without_showing_its_value() {
        for bad in ["no-equals-sign-hunter2", "=hunter2", "bad key=hunter2"] {
            let error = parse(&["--kafka-property", bad])
                .expect_err("a malformed property is refused")
                .to_string();
            assert!(error.contains("kafka-property"), "{error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn debug_shows_no_password_and_no_property_value() {
        let mut security = sasl("PLAIN");
        security.kafka_properties = vec![parse_property("ssl.key.password=hunter2").expect("ok")];
        let shown = format!("{security:?}");
        assert!(!shown.contains("s3cret-value"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("ssl.key.password"), "{shown}");
    }
}
