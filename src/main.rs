//! The `stackgate` binary: parses the command line and runs it.

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let telemetry = stackgate::telemetry::init();
    let cli = stackgate::cli::Cli::parse();
    let outcome = stackgate::cli::run(cli).await;
    // The spans of the last requests are exported before the process ends.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
