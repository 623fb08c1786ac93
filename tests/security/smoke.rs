//! The test CA's files are what a TLS client can load.

use crate::common::tls::TestCa;

#[test]
fn a_test_ca_writes_a_ca_and_a_server_certificate_as_pem() {
    let ca = TestCa::new("smoke");
    let server = ca.server_cert("server", &["localhost", "127.0.0.1"]);
    for file in [ca.ca_file(), &server.cert_file] {
        let pem = std::fs::read_to_string(file).expect("readable");
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    }
    let key = std::fs::read_to_string(&server.key_file).expect("readable");
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    let dir = ca.dir().to_owned();
    drop(ca);
    assert!(!dir.exists(), "the CA's folder is removed on drop");
}
