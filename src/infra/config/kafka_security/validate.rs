//! The check that the Kafka security settings fit together before any client is made: the
//! SASL settings set exactly when the protocol uses SASL, and a CA file only with TLS and
//! readable as PEM.

use super::KafkaSecurityArgs;

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
}

#[cfg(test)]
mod tests {
    use super::super::SecurityProtocol;
    use super::super::tests::{parse, sasl};

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
