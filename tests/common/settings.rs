//! Settings of an in-process service: the real configuration clap builds for
//! `order-service serve` (the defaults of `src/infra/config/`, so a new flag never touches the
//! tests), with only what must be unique per test overridden.
//!
//! clap reads every setting's environment variable too, so a `CACHE_MAX_BYTES=0` or an
//! `INGEST_BATCH_SIZE` exported in the caller's shell would change what the tests run; the
//! variables are therefore ignored here (the library never loads `.env`: only `main.rs`
//! does). The tests read `DATABASE_URL` and `KAFKA_BROKERS` themselves, to find the servers.

use std::net::SocketAddr;

use clap::{CommandFactory, FromArgMatches};
use order_service::infra::config::{Cli, Command, Secret, ServeArgs};

use super::database::database_url;
use super::kafka::brokers;
use super::names::Names;

/// What `order-service serve` runs with given no flags and no environment.
pub fn serve_defaults() -> ServeArgs {
    let cli = Cli::command()
        .mut_args(|arg| arg.env(None))
        .mut_subcommand("serve", |serve| serve.mut_args(|arg| arg.env(None)));
    let matches = cli
        .try_get_matches_from(["order-service", "serve"])
        .expect("serve parses with its defaults");
    let cli = Cli::from_arg_matches(&matches).expect("the defaults fit");
    let Command::Serve(args) = cli.command else {
        panic!("`order-service serve` parsed as another subcommand");
    };
    args
}

/// The operator token of every service [`fresh_args`] configures.
pub const OPERATOR_TOKEN: &str = "integration-test-operator-token";

/// HTTP on a free port of the loopback interface.
fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Settings for a fresh database, topic, dead-letter topic and group, HTTP on a free port,
/// the operator token [`OPERATOR_TOKEN`].
/// Everything else is the service's default (the cache's bound too: 256 MiB, where the
/// hand-written settings this replaced said 64 MiB; no test depends on it).
pub fn fresh_args() -> ServeArgs {
    let names = Names::unique("ordertest");
    let mut args = serve_defaults();
    args.database.database_url = database_url(&names.name);
    args.kafka.kafka_brokers = brokers();
    args.kafka.kafka_topic = names.topic;
    args.kafka_dlq_topic = names.dlq_topic;
    args.kafka_group_id = names.group;
    args.http_addr = any_port();
    args.operator_token = Some(Secret::new(OPERATOR_TOKEN));
    args
}

/// Settings for another instance of the service `args` configures: the same database,
/// topic and consumer group, HTTP on its own free port.
pub fn fresh_args_sharing(args: &ServeArgs) -> ServeArgs {
    ServeArgs {
        http_addr: any_port(),
        ..args.clone()
    }
}
