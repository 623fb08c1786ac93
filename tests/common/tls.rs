//! Certificates for the TLS tests: a throwaway certificate authority, made fresh by each test
//! (rcgen), and server certificates it signs, written as PEM files into a temporary folder that
//! is removed when the [`TestCa`] is dropped.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate authority of the test's own, and the folder its files are written to.
pub struct TestCa {
    /// The CA's certificate and key, to sign server certificates.
    issuer: Issuer<'static, KeyPair>,
    /// The folder every file of this CA is written to; removed on drop.
    dir: PathBuf,
    /// `ca.pem` in `dir`: what a client trusts.
    ca_file: PathBuf,
}

/// A server certificate signed by a [`TestCa`], as PEM files.
pub struct ServerCert {
    /// The certificate (PEM).
    pub cert_file: PathBuf,
    /// Its private key (PEM, PKCS#8, unencrypted).
    pub key_file: PathBuf,
}

impl TestCa {
    /// A new CA named `name`, its files in a new folder under the system's temporary folder.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(crate::common::names::unique(&format!("tls-{name}")));
        std::fs::create_dir_all(&dir).expect("the CA's folder can be created");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("order-service test CA {name}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("a CA key");
        let cert = params.self_signed(&key).expect("the CA certificate");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, cert.pem()).expect("ca.pem can be written");
        Self {
            issuer: Issuer::new(params, key),
            dir,
            ca_file,
        }
    }

    /// The CA's certificate (PEM file): what a client that verifies the server trusts.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The folder this CA writes its files to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A server certificate for `names` (host names or IP addresses, e.g. `localhost` and
    /// `127.0.0.1`), signed by this CA, written as `<file_stem>.pem` and `<file_stem>.key`.
    pub fn server_cert(&self, file_stem: &str, names: &[&str]) -> ServerCert {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("server certificate parameters");
        params.distinguished_name.push(
            DnType::CommonName,
            format!("order-service test {file_stem}"),
        );
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().expect("a server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("the server certificate");
        let cert_file = self.dir.join(format!("{file_stem}.pem"));
        let key_file = self.dir.join(format!("{file_stem}.key"));
        std::fs::write(&cert_file, cert.pem()).expect("the certificate can be written");
        std::fs::write(&key_file, key.serialize_pem()).expect("the key can be written");
        ServerCert {
            cert_file,
            key_file,
        }
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
