//! citadel-loadgen: a Redis/memcache load generator built on io_uring, with honest
//! (open-loop, coordinated-omission-free) latency and a comparison harness.

pub mod cli;
pub mod compare;
pub mod cpu;
pub mod driver;
pub mod error;
pub mod protocol;
pub mod report;
pub mod schedule;
pub mod signal;
pub mod stats;
pub mod steps;
pub mod workload;

pub use error::LoadgenError;

/// Runs one load from the command line's arguments: progress, table, JSON, error check.
pub fn run_cli(args: &cli::RunArgs) -> Result<report::Report, LoadgenError> {
    let report = measure(args, args.workload.clone())?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    check_errors(args, &report)?;
    Ok(report)
}

/// One run of `workload` against the servers `args` names.
pub fn measure(
    args: &cli::RunArgs,
    workload: cli::WorkloadArgs,
) -> Result<report::Report, LoadgenError> {
    let cfg = driver::LoadConfig {
        servers: driver::endpoints(args)?,
        protocol: args.protocol,
        workload,
        progress: !args.quiet,
        cluster: args.cluster.then_some(args.max_redirects),
    };
    let result = driver::run(&cfg)?;
    Ok(report::Report::new(&cfg, &result))
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(
    path: &std::path::Path,
    value: &impl serde::Serialize,
) -> Result<(), LoadgenError> {
    let json = serde_json::to_string_pretty(value).expect("report serialises");
    std::fs::write(path, json + "\n").map_err(|source| LoadgenError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Fails when the run's errors (not its shed replies) exceed `--max-errors`, or when it
/// was interrupted.
pub fn check_errors(args: &cli::RunArgs, report: &report::Report) -> Result<(), LoadgenError> {
    let prefill_errors = report.prefill.as_ref().map_or(0, |p| p.errors);
    let errors = report.errors + prefill_errors;
    let rate = report::error_rate(errors, report.requests);
    if rate > args.max_errors {
        return Err(LoadgenError::TooManyErrors {
            errors,
            requests: report.requests,
            rate,
            max: args.max_errors,
        });
    }
    if signal::stop_requested() {
        return Err(LoadgenError::Interrupted);
    }
    Ok(())
}
