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

/// mimalloc's options that bound the memory `serve` keeps from the OS, and the values set
/// unless the environment sets them (`MIMALLOC_<NAME>`, as mimalloc reads them itself):
/// - `arena_eager_commit` 0: mimalloc's default (2, on Linux) commits its first 1 GiB arena
///   up front, and memory freed inside a committed arena stays resident: the peak RSS of an
///   ingest with a 64 MiB cache was 194-213 MiB with it, 146-170 MiB without
///   (docs/benchmarks.md);
/// - `purge_delay` 10 ms (default 1,000): freed pages go back to the OS soon, not a second
///   later, when the burst of a batch has already added more; not at once (0), which cost
///   each cache miss about 1 us of `madvise`, TLB shootdowns and page faults for no gain in
///   peak RSS (docs/benchmarks.md, "Issue 16, fourth pass").
///
/// The indices are mimalloc v3's `mi_option_e` (libmimalloc-sys exports v2's); a test of the
/// built binary (tests/integration/allocator.rs) reads the options back by name.
#[cfg(target_os = "linux")]
const ALLOCATOR_OPTIONS: [(
    libmimalloc_sys::mi_option_t,
    &std::ffi::CStr,
    std::ffi::c_long,
); 2] = [
    (4, c"MIMALLOC_ARENA_EAGER_COMMIT", 0),
    (15, c"MIMALLOC_PURGE_DELAY", 10),
];

/// Sets [`ALLOCATOR_OPTIONS`] before the first allocation: the first arena is reserved, with
/// the options of that moment, by the first allocation of the Rust runtime, before `main`.
/// An entry in `.init_array` runs after mimalloc's own constructor (priority 101) and before
/// the runtime.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
extern "C" fn tune_allocator() {
    for (option, variable, value) in ALLOCATOR_OPTIONS {
        // SAFETY: `variable` is NUL-terminated; no other thread exists yet to change the
        // environment; `getenv` allocates nothing, so the allocator is not used before it is
        // tuned.
        let unset = unsafe { libc::getenv(variable.as_ptr()) }.is_null();
        if unset {
            // SAFETY: a plain store into mimalloc's option table, valid for any index below
            // `_mi_option_last` (mimalloc ignores others).
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        eprintln!("error: cannot read .env: {error}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    // Only `serve` exports traces; the tools' spans would be noise.
    let serve = matches!(cli.command, Command::Serve(_));
    let logging = match telemetry::init(&cli.log, cli.log_format, serve) {
        Ok(logging) => logging,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = run(cli.command).await;
    // The flush waits for the exporter and the log's writer: off the runtime's threads.
    let _ = tokio::task::spawn_blocking(move || logging.shutdown()).await;
    match result {
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
            let out = &mut std::io::stdout().lock();
            replay::replay(&store, &args.filter(), args.dry_run, out).await?;
            Ok(())
        }
    }
}
