//! The `syncchat` binary: parse the command line, set up logging, hand over to the library.

use clap::Parser;
use syncchat_api::config::Cli;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    syncchat_api::telemetry::init(&cli.config.log, cli.config.log_format);
    match syncchat_api::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
