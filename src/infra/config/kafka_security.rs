//! The Kafka security settings every Kafka client of the service shares (`serve`'s consumer
//! and admin client, the dead-letter producer, `send`): the security protocol, the SASL
//! mechanism and credentials, the CA file that verifies the brokers' certificates, and any
//! other librdkafka property (`--kafka-property`, `KAFKA_PROPERTIES`). This file owns parsing
//! them, checking that they fit together, and the librdkafka properties they become;
//! `infra/kafka.rs` applies those to every client, `infra/kafka_probe.rs` checks at start-up
//! that the brokers accept them.
//!
//! Secrets: the password is a [`Secret`]; an extra property's value is one too (it may be
//! `ssl.key.password` or an OAuth client secret), so neither is shown by `Debug`, `--help`
//! or a parse error.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::parse::refused_unshown;
use super::secret::{Secret, parse_secret};

/// How the clients talk to the brokers (librdkafka's `security.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    #[default]
    #[value(name = "plaintext")]
    Plaintext,
    /// TLS, no SASL authentication.
    #[value(name = "ssl")]
    Ssl,
    /// SASL authentication without TLS: the exchange is not encrypted (PLAIN sends the
    /// password as it is).
    #[value(name = "sasl_plaintext")]
    SaslPlaintext,
    /// SASL authentication over TLS.
    #[value(name = "sasl_ssl")]
    SaslSsl,
}

impl SecurityProtocol {
    /// librdkafka's name of it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    /// Whether it authenticates with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    /// Whether it encrypts with TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }
}

/// The SASL mechanism (librdkafka's `sasl.mechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SaslMechanism {
    /// SCRAM with SHA-256 (RFC 7677).
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    /// SCRAM with SHA-512.
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
    /// The password itself (use it over TLS only).
    #[value(name = "PLAIN")]
    Plain,
}

impl SaslMechanism {
    /// librdkafka's (and Kafka's) name of it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::Plain => "PLAIN",
        }
    }
}

/// One librdkafka property of `--kafka-property key=value`: the key, and its value kept as a
/// secret (it may be one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaProperty {
    /// The property's name, such as `client.id`.
    pub key: String,
    /// Its value; never shown.
    pub value: Secret,
}

/// The parser of a `key=value` property. A parser of its own rather than a function: clap's
/// error for a value a function refuses quotes the value, and this one may hold a secret.
#[derive(Clone, Copy, Debug)]
struct PropertyParser;

impl clap::builder::TypedValueParser for PropertyParser {
    type Value = KafkaProperty;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<KafkaProperty, clap::Error> {
        let refuse = |why: &str| refused_unshown(cmd, arg, "KAFKA_PROPERTIES", why, "a secret");
        let text = value.to_str().ok_or_else(|| refuse("not UTF-8"))?;
        parse_property(text).map_err(refuse)
    }
}

/// `key=value`: the key is what comes before the first `=`, trimmed; it must be a property
/// name (letters, digits, `.`, `_`, `-`). The value is the rest, as it is.
fn parse_property(text: &str) -> Result<KafkaProperty, &'static str> {
    let (key, value) = text
        .split_once('=')
        .ok_or("expected key=value, such as client.id=orders-1")?;
    let key = key.trim();
    if key.is_empty() {
        return Err("a property needs a name before '='");
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("a property's name has only letters, digits, '.', '_' and '-'");
    }
    Ok(KafkaProperty {
        key: key.to_owned(),
        value: Secret::new(value),
    })
}

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

/// A combination of settings that cannot work, with a message that names the settings.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SecurityMisconfigured(String);

impl KafkaSecurityArgs {
    /// Checks that the settings fit together and that the CA file is a readable PEM file.
    pub fn validate(&self) -> Result<(), SecurityMisconfigured> {
        let protocol = self.kafka_security_protocol;
        let refuse = |message: String| Err(SecurityMisconfigured(message));
        if protocol.uses_sasl() {
            let mut missing = Vec::new();
            if self.kafka_sasl_mechanism.is_none() {
                missing.push("KAFKA_SASL_MECHANISM (SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN)");
            }
            if self
                .kafka_sasl_username
                .as_deref()
                .is_none_or(|user| user.trim().is_empty())
            {
                missing.push("KAFKA_SASL_USERNAME");
            }
            if self
                .kafka_sasl_password
                .as_ref()
                .is_none_or(|password| password.expose().is_empty())
            {
                missing.push("KAFKA_SASL_PASSWORD");
            }
            if !missing.is_empty() {
                return refuse(format!(
                    "KAFKA_SECURITY_PROTOCOL={} needs {}",
                    protocol.as_str(),
                    missing.join(", ")
                ));
            }
        } else {
            let set: Vec<&str> = [
                ("KAFKA_SASL_MECHANISM", self.kafka_sasl_mechanism.is_some()),
                // An empty one (a `.env` line without a value) counts as unset.
                (
                    "KAFKA_SASL_USERNAME",
                    self.kafka_sasl_username
                        .as_deref()
                        .is_some_and(|u| !u.is_empty()),
                ),
                (
                    "KAFKA_SASL_PASSWORD",
                    self.kafka_sasl_password
                        .as_ref()
                        .is_some_and(|p| !p.expose().is_empty()),
                ),
            ]
            .into_iter()
            .filter_map(|(name, is_set)| is_set.then_some(name))
            .collect();
            if !set.is_empty() {
                return refuse(format!(
                    "{} set, but KAFKA_SECURITY_PROTOCOL={} does not use SASL (sasl_ssl or sasl_plaintext do)",
                    set.join(", "),
                    protocol.as_str()
                ));
            }
        }
        if let Some(path) = &self.kafka_ssl_ca_location {
            if !protocol.uses_tls() {
                return refuse(format!(
                    "KAFKA_SSL_CA_LOCATION set, but KAFKA_SECURITY_PROTOCOL={} does not use TLS (ssl or sasl_ssl do)",
                    protocol.as_str()
                ));
            }
            let pem = std::fs::read(path).map_err(|e| {
                SecurityMisconfigured(format!(
                    "KAFKA_SSL_CA_LOCATION={}: cannot read it: {e}",
                    path.display()
                ))
            })?;
            if !pem
                .windows(b"-----BEGIN CERTIFICATE-----".len())
                .any(|w| w == b"-----BEGIN CERTIFICATE-----")
            {
                return refuse(format!(
                    "KAFKA_SSL_CA_LOCATION={}: not a PEM file of certificates (no BEGIN CERTIFICATE)",
                    path.display()
                ));
            }
        }
        Ok(())
    }

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

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        security: KafkaSecurityArgs,
    }

    fn parse(args: &[&str]) -> Result<KafkaSecurityArgs, clap::Error> {
        // No variable of the caller's environment: only the flags given.
        let command = <Cli as clap::CommandFactory>::command().mut_args(|arg| arg.env(None));
        let matches =
            command.try_get_matches_from(std::iter::once("test").chain(args.iter().copied()))?;
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).map(|cli| cli.security)
    }

    fn sasl(mechanism: &str) -> KafkaSecurityArgs {
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

    #[test]
    fn a_sasl_protocol_needs_a_mechanism_a_user_and_a_password() {
        let security = parse(&["--kafka-security-protocol", "SASL_SSL"]).expect("parses");
        let error = security.validate().expect_err("refused").to_string();
        for name in [
            "KAFKA_SECURITY_PROTOCOL=sasl_ssl",
            "KAFKA_SASL_MECHANISM",
            "KAFKA_SASL_USERNAME",
            "KAFKA_SASL_PASSWORD",
        ] {
            assert!(error.contains(name), "{error}");
        }
        let mut security = sasl("PLAIN");
        security.kafka_sasl_password = None;
        let error = security.validate().expect_err("refused").to_string();
        assert!(error.contains("KAFKA_SASL_PASSWORD"), "{error}");
        assert!(!error.contains("KAFKA_SASL_USERNAME"), "{error}");
    }

    #[test]
    fn sasl_settings_without_a_sasl_protocol_are_refused() {
        let mut security = sasl("PLAIN");
        security.kafka_security_protocol = SecurityProtocol::Ssl;
        let error = security.validate().expect_err("refused").to_string();
        assert!(error.contains("KAFKA_SASL_MECHANISM"), "{error}");
        assert!(error.contains("KAFKA_SECURITY_PROTOCOL=ssl"), "{error}");
        assert!(!error.contains("s3cret-value"), "{error}");
    }

    #[test]
    fn the_ca_file_must_be_a_readable_pem_file_and_used_with_tls() {
        let dir = std::env::temp_dir().join(format!("kafka-security-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder");
        let pem = dir.join("ca.pem");
        std::fs::write(
            &pem,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .expect("written");
        let not_pem = dir.join("ca.txt");
        std::fs::write(&not_pem, "hello").expect("written");
        let missing = dir.join("missing.pem");

        let mut security = sasl("SCRAM-SHA-256");
        security.kafka_ssl_ca_location = Some(pem.clone());
        assert!(security.validate().is_ok());
        assert!(
            security
                .properties()
                .contains(&("ssl.ca.location", pem.to_str().expect("UTF-8")))
        );
        for path in [not_pem, missing] {
            security.kafka_ssl_ca_location = Some(path.clone());
            let error = security.validate().expect_err("refused").to_string();
            assert!(error.contains("KAFKA_SSL_CA_LOCATION"), "{error}");
            assert!(error.contains(&path.display().to_string()), "{error}");
        }
        security.kafka_ssl_ca_location = Some(pem);
        security.kafka_security_protocol = SecurityProtocol::SaslPlaintext;
        let error = security.validate().expect_err("refused").to_string();
        assert!(error.contains("does not use TLS"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
