//! The `order-service` binary: parses the command line and runs the subcommand.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use order_service::infra::config::{Cli, Command};
use order_service::infra::{shutdown, telemetry};
use order_service::startup::{self, Application};
use order_service::store::Store;
use order_service::tools::{generator, replay, send};

/// mimalloc: faster than glibc's allocator for the many small, short-lived allocations of
/// serving HTTP (measured in docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        eprintln!("error: cannot read .env: {error}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    if let Err(error) = telemetry::init(&cli.log, cli.log_format) {
        eprintln!("error: {error:#}");
        return ExitCode::FAILURE;
    }
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one subcommand.
async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let shutdown = shutdown::on_signal();
            let app = Application::build(&args).await?;
            shutdown::within_grace(app.run_until_stopped(shutdown.clone()), &shutdown).await
        }
        Command::Migrate(args) => {
            startup::create_database(&args.database_url).await?;
            let store = Store::connect_lazy(&args.database_url, Duration::from_secs(10))
                .context("cannot configure the database pool (DATABASE_URL)")?;
            store
                .migrate()
                .await
                .context("cannot apply migrations (DATABASE_URL)")?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Send(args) => send::run(&args).await,
        Command::Generate(args) => generator::generate(
            args.count,
            args.seed,
            &mut std::io::BufWriter::new(std::io::stdout().lock()),
        ),
        Command::ReplayRejected(args) => {
            let store = Store::connect_lazy(&args.database.database_url, Duration::from_secs(10))?;
            let id = if args.all { None } else { args.id };
            replay::replay(&store, id, &mut std::io::stdout().lock()).await?;
            Ok(())
        }
    }
}
