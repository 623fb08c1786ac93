//! A PostgreSQL server of a test's own, beside the shared one: `initdb` and `pg_ctl` from the
//! newest PostgreSQL installed under `/usr/lib/postgresql` (Debian's layout), run as the `postgres` OS user (initdb refuses root), in a fresh
//! temporary folder, on a free loopback port, with TLS on (a given certificate and key) or
//! off. Made for speed (no fsync, small buffers). Stopped and removed on drop, also when its
//! start fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::names::unique;
use crate::common::tls::ServerCert;

/// Where Debian installs each PostgreSQL version's server programs (`<version>/bin`).
const VERSIONS: &str = "/usr/lib/postgresql";

/// The server programs' folder of the newest PostgreSQL installed (the one
/// `scripts/services-up.sh` installs, PostgreSQL 15 on Debian 12); fails the test, saying so,
/// when there is none.
fn bin() -> PathBuf {
    newest_bin().unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server programs under {VERSIONS}/<version>/bin \
             (run `bash scripts/services-up.sh`, which installs them)"
        )
    })
}

/// The newest `<version>/bin` under [`VERSIONS`] that holds `initdb`.
fn newest_bin() -> Option<PathBuf> {
    std::fs::read_dir(VERSIONS)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

/// The OS user that owns the server's files and runs it.
const OS_USER: &str = "postgres";

/// The superuser the instance is made with.
pub const USER: &str = "postgres";

/// A running PostgreSQL server of the test's own.
pub struct PostgresInstance {
    /// The folder holding the data directory, logs and socket; removed on drop.
    dir: PathBuf,
    /// The port it listens on, on 127.0.0.1.
    port: u16,
    /// The superuser's password (password authentication over TCP).
    password: String,
}

impl PostgresInstance {
    /// Starts a server with TLS on, serving `cert` (copied into its data directory, the key
    /// with mode 0600 as PostgreSQL requires); it also takes unencrypted connections.
    pub fn start_with_tls(cert: &ServerCert) -> Self {
        Self::start(Some(cert), false)
    }

    /// Starts a server like [`Self::start_with_tls`] that refuses every unencrypted TCP
    /// connection (`hostnossl ... reject` first in `pg_hba.conf`): whoever logs in used TLS.
    pub fn start_tls_only(cert: &ServerCert) -> Self {
        Self::start(Some(cert), true)
    }

    /// Starts a server with TLS off (`ssl = off`).
    pub fn start_without_tls() -> Self {
        Self::start(None, false)
    }

    fn start(tls: Option<&ServerCert>, tls_only: bool) -> Self {
        let dir = std::env::temp_dir().join(unique("pg-instance"));
        std::fs::create_dir_all(&dir).expect("the instance's folder can be created");
        // From here on, a panic drops the instance: it stops what started and removes `dir`.
        let instance = Self {
            dir,
            port: free_port(),
            password: unique("PgTlsPass").replace('_', ""),
        };
        let data = instance.data_dir();
        let password_file = instance.dir.join("password");
        std::fs::write(&password_file, &instance.password).expect("the password file is written");
        chown(&instance.dir);
        run_as_postgres(
            "initdb",
            Command::new(bin().join("initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    USER,
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                ])
                .args(["--no-sync", "-E", "UTF8", "--locale=C"])
                .arg(format!("--pwfile={}", password_file.display())),
        );
        let mut config = format!(
            "\n# The test's settings\nport = {}\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\nfsync = off\nsynchronous_commit = off\n\
             full_page_writes = off\nshared_buffers = 16MB\nmax_connections = 20\n",
            instance.port,
            instance.dir.display()
        );
        match tls {
            Some(cert) => {
                let cert_file = data.join("server.crt");
                let key_file = data.join("server.key");
                std::fs::copy(&cert.cert_file, &cert_file).expect("the certificate is copied");
                std::fs::copy(&cert.key_file, &key_file).expect("the key is copied");
                set_mode(&key_file, 0o600);
                chown(&data);
                config.push_str(&format!(
                    "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                    cert_file.display(),
                    key_file.display()
                ));
            }
            None => config.push_str("ssl = off\n"),
        }
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("initdb wrote postgresql.conf");
        text.push_str(&config);
        std::fs::write(&conf, text).expect("postgresql.conf is written");
        if tls_only {
            let hba = data.join("pg_hba.conf");
            let rules = std::fs::read_to_string(&hba).expect("initdb wrote pg_hba.conf");
            std::fs::write(&hba, format!("hostnossl all all 0.0.0.0/0 reject\n{rules}"))
                .expect("pg_hba.conf is written");
        }
        let log = instance.dir.join("server.log");
        let started = Command::new("runuser")
            .args(["-u", OS_USER, "--"])
            .arg(bin().join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "30", "start"])
            .output()
            .expect("runuser and pg_ctl can be run");
        if !started.status.success() {
            panic!(
                "the test's PostgreSQL instance did not start ({}): {}{}\nserver log:\n{}",
                started.status,
                String::from_utf8_lossy(&started.stdout),
                String::from_utf8_lossy(&started.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        instance
    }

    /// `postgres://postgres:<password>@<host>:<port>/<database>` with `query` (such as
    /// `sslmode=require`) appended when not empty. `host` is `127.0.0.1` or `localhost`.
    pub fn url(&self, host: &str, database: &str, query: &str) -> String {
        let base = format!(
            "postgres://{USER}:{}@{host}:{}/{database}",
            self.password, self.port
        );
        if query.is_empty() {
            base
        } else {
            format!("{base}?{query}")
        }
    }

    /// The superuser's password, to check that nothing prints it.
    pub fn password(&self) -> &str {
        &self.password
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
}

impl Drop for PostgresInstance {
    fn drop(&mut self) {
        // Fails harmlessly when the server never started; no panic while unwinding.
        let Some(bin) = newest_bin() else {
            let _ = std::fs::remove_dir_all(&self.dir);
            return;
        };
        let _ = Command::new("runuser")
            .args(["-u", OS_USER, "--"])
            .arg(bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `command` as the `postgres` OS user; fails the test with its output if it fails.
fn run_as_postgres(what: &str, command: &mut Command) {
    let mut wrapped = Command::new("runuser");
    wrapped
        .args(["-u", OS_USER, "--"])
        .arg(command.get_program())
        .args(command.get_args());
    let output = wrapped
        .output()
        .unwrap_or_else(|e| panic!("{what} cannot be run through runuser: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}; the server programs are taken from {}, and this test runs as root): {}{}",
        output.status,
        bin().display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Gives `path` (and what is in it) to the `postgres` OS user.
fn chown(path: &Path) {
    let status = Command::new("chown")
        .args(["-R", &format!("{OS_USER}:{OS_USER}")])
        .arg(path)
        .status()
        .expect("chown can be run");
    assert!(status.success(), "chown {} failed", path.display());
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .expect("the key's mode can be set");
}

/// A free port on the loopback interface.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
