//! The built `order-service` binary as a child process, with none of the caller's settings:
//! every environment variable the command line reads is removed, and the child runs in a
//! directory without a `.env` (the binary loads one from its working directory or above, and
//! a developer's `.env` in the checkout must not change what a test runs). Only what the
//! test sets reaches it, as with the in-process service (`settings.rs`). The `OTEL_*`
//! variables are removed too: a caller's collector must not receive the tests' spans.

use std::process::{Command, Stdio};

use clap::CommandFactory;
use order_service::infra::config::{Cli, KafkaArgs};

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_order-service");

/// Every environment variable the command line reads, from clap's own definitions.
fn variables() -> Vec<String> {
    let cli = Cli::command();
    std::iter::once(&cli)
        .chain(cli.get_subcommands())
        .flat_map(|command| command.get_arguments())
        .filter_map(|arg| arg.get_env())
        .map(|name| name.to_string_lossy().into_owned())
        .collect()
}

/// `order-service <subcommand>`, standard input closed, nothing of the caller's configuration
/// in its environment.
pub fn command(subcommand: &str) -> Command {
    let mut command = Command::new(BINARY);
    for name in variables() {
        command.env_remove(name);
    }
    for (name, _) in
        std::env::vars_os().filter(|(name, _)| name.to_string_lossy().starts_with("OTEL_"))
    {
        command.env_remove(name);
    }
    command
        .arg(subcommand)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null());
    command
}

/// `order-service send` to `kafka`'s brokers and topic, logs off.
pub fn send_to(kafka: &KafkaArgs) -> Command {
    let mut command = command("send");
    command
        .env("KAFKA_BROKERS", &kafka.kafka_brokers)
        .env("KAFKA_TOPIC", &kafka.kafka_topic)
        .env("RUST_LOG", "off");
    command
}
