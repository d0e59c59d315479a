use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use citadel_loadgen::cli::{Cli, Command};
use citadel_loadgen::{compare, run_cli, signal, steps};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("LOADGEN_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    signal::install();
    let result = match &cli.command {
        Some(Command::Compare(args)) => compare::run(args).map(|_| ()),
        None if cli.run.rate_steps.is_some() => steps::run_cli(&cli.run).map(|_| ()),
        None => run_cli(&cli.run).map(|_| ()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("citadel-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
