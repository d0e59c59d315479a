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
pub mod workload;

pub use error::LoadgenError;

/// Runs one load from the command line's arguments: progress, table, JSON, error check.
pub fn run_cli(args: &cli::RunArgs) -> Result<report::Report, LoadgenError> {
    let cfg = driver::LoadConfig {
        servers: driver::endpoints(args)?,
        protocol: args.protocol,
        workload: args.workload.clone(),
        progress: !args.quiet,
        cluster: args.cluster.then_some(args.max_redirects),
    };
    let result = driver::run(&cfg)?;
    let report = report::Report::new(&cfg, &result);
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).expect("report serialises");
        std::fs::write(path, json + "\n").map_err(|source| LoadgenError::Write {
            path: path.clone(),
            source,
        })?;
    }
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
    Ok(report)
}
