//! `citadel-loadgen compare`: the same workload against citadel, redis-server and memcached
//! on one machine, servers pinned to one core and the load to another, in alternating
//! rounds; results as a markdown table, JSON and an SVG chart.

mod chart;
mod servers;
mod table;

use serde::Serialize;

use crate::cli::{CompareArgs, CpuList, ServerKind};
use crate::cpu;
use crate::driver::{self, LoadConfig};
use crate::error::LoadgenError;
use crate::report::Latency;
use crate::signal;
use servers::RunningServer;

/// One measured run against one server.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub server: &'static str,
    pub round: usize,
    pub requests: u64,
    pub errors: u64,
    pub ops_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub server_cpu_s: f64,
    /// Server CPU seconds (user + system) per million requests.
    pub server_cpu_per_mops: f64,
    pub client_cpu_s: f64,
}

/// Medians over the rounds for one server.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub server: &'static str,
    pub rounds: usize,
    pub ops_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub server_cpu_per_mops: f64,
    pub errors: u64,
}

#[derive(Debug, Serialize)]
struct CompareReport<'a> {
    baseline: &'static str,
    summaries: &'a [Summary],
    samples: &'a [Sample],
}

/// Runs the comparison; returns the per-server summaries.
pub fn run(args: &CompareArgs) -> Result<Vec<Summary>, LoadgenError> {
    validate(args)?;
    std::fs::create_dir_all(&args.out_dir).map_err(|source| LoadgenError::Write {
        path: args.out_dir.clone(),
        source,
    })?;
    // The harness's own threads (and the load workers) stay off the servers' core.
    if let Err(e) = cpu::pin_current_thread(args.load_cpu) {
        tracing::warn!("cannot pin harness to cpu {}: {e}", args.load_cpu);
    }
    let mut running: Vec<RunningServer> = Vec::new();
    for &kind in &args.only {
        if let Some(s) = servers::start(kind, args)? {
            running.push(s);
        }
    }
    if running.is_empty() {
        return Err(LoadgenError::Config("no server could be started".into()));
    }
    for s in &running {
        prefill(s, args)?;
    }
    let mut samples = Vec::new();
    for round in 0..args.rounds {
        let order: Vec<&RunningServer> = if round % 2 == 0 {
            running.iter().collect()
        } else {
            running.iter().rev().collect()
        };
        for s in order {
            let sample = measure(s, args, round)?;
            eprintln!(
                "round {}/{} {:<10} {:>10.0} ops/s  p50 {:>8.1}us  p99 {:>8.1}us  server CPU {:.2} s/Mops{}",
                round + 1,
                args.rounds,
                sample.server,
                sample.ops_per_sec,
                sample.p50_us,
                sample.p99_us,
                sample.server_cpu_per_mops,
                if sample.errors > 0 { format!("  ERRORS {}", sample.errors) } else { String::new() }
            );
            samples.push(sample);
        }
    }
    let summaries: Vec<Summary> = running
        .iter()
        .map(|s| summarize(s.kind.name(), &samples))
        .collect();
    let baseline = summaries
        .iter()
        .find(|s| s.server == ServerKind::Citadel.name())
        .unwrap_or(&summaries[0])
        .server;
    let markdown = table::markdown(args, &summaries, baseline);
    print!("{markdown}");
    write(args, "compare.md", markdown.clone())?;
    let json = serde_json::to_string_pretty(&CompareReport {
        baseline,
        summaries: &summaries,
        samples: &samples,
    })
    .expect("serialisable");
    write(args, "compare.json", json + "\n")?;
    let svg = chart::svg(&summaries, &table::workload_line(args))?;
    write(args, "compare.svg", svg)?;
    eprintln!(
        "compare: wrote {}/compare.{{md,json,svg}}",
        args.out_dir.display()
    );
    drop(running);
    let errors: u64 = summaries.iter().map(|s| s.errors).sum();
    if errors > 0 {
        let requests = samples.iter().map(|s| s.requests).sum();
        let rate = crate::report::error_rate(errors, requests);
        if rate > 0.0 {
            return Err(LoadgenError::TooManyErrors {
                errors,
                requests,
                rate,
                max: 0.0,
            });
        }
    }
    Ok(summaries)
}

fn validate(args: &CompareArgs) -> Result<(), LoadgenError> {
    if args.rounds == 0 {
        return Err(LoadgenError::Config("--rounds must be at least 1".into()));
    }
    if args.workload.requests.is_none() && args.workload.duration.as_secs_f64() > 600.0 {
        return Err(LoadgenError::Config(
            "compare runs are bounded: --duration at most 10m".into(),
        ));
    }
    if args.only.is_empty() {
        return Err(LoadgenError::Config("--only names no server".into()));
    }
    Ok(())
}

fn load_config(s: &RunningServer, args: &CompareArgs) -> LoadConfig {
    let mut workload = args.workload.clone();
    workload.cpus = Some(CpuList(vec![args.load_cpu]));
    workload.prefill = false;
    LoadConfig {
        servers: vec![driver::Endpoint::Tcp(s.addr)],
        protocol: s.protocol,
        workload,
        progress: false,
        cluster: None,
    }
}

/// Writes every key once so GETs hit.
fn prefill(s: &RunningServer, args: &CompareArgs) -> Result<(), LoadgenError> {
    let mut cfg = load_config(s, args);
    cfg.workload.prefill = true;
    cfg.workload.requests = Some(0);
    cfg.workload.warmup = std::time::Duration::ZERO;
    let r = driver::run(&cfg)?;
    let errors = r.prefill.as_ref().map_or(0, |p| p.total_errors());
    if errors > 0 {
        eprintln!("compare: {} prefill had {errors} errors", s.kind.name());
    }
    check_stop()
}

fn measure(s: &RunningServer, args: &CompareArgs, round: usize) -> Result<Sample, LoadgenError> {
    let cfg = load_config(s, args);
    let server_cpu = || {
        cpu::process_cpu_time(s.pid()).map_err(|e| LoadgenError::ServerStart {
            server: s.kind.name(),
            reason: format!("server died? /proc/{}/stat: {e}", s.pid()),
        })
    };
    let cpu0 = server_cpu()?;
    let r = driver::run(&cfg)?;
    let cpu1 = server_cpu()?;
    check_stop()?;
    let all = Latency::from_histogram(&r.stats.combined_latency());
    let requests = r.stats.requests();
    // Warm-up requests also cost server CPU; charge them to the per-request figure too.
    let served = requests + r.warmup.requests();
    let server_cpu_s = (cpu1 - cpu0).as_secs_f64();
    Ok(Sample {
        server: s.kind.name(),
        round,
        requests,
        errors: r.stats.total_errors(),
        ops_per_sec: r.ops_per_sec(),
        p50_us: all.p50,
        p99_us: all.p99,
        server_cpu_s,
        server_cpu_per_mops: if served > 0 {
            server_cpu_s / served as f64 * 1e6
        } else {
            0.0
        },
        client_cpu_s: r.client_cpu.as_secs_f64(),
    })
}

fn check_stop() -> Result<(), LoadgenError> {
    if signal::stop_requested() {
        Err(LoadgenError::Interrupted)
    } else {
        Ok(())
    }
}

fn summarize(server: &'static str, samples: &[Sample]) -> Summary {
    let mine: Vec<&Sample> = samples.iter().filter(|s| s.server == server).collect();
    let med = |f: fn(&Sample) -> f64| median(mine.iter().map(|s| f(s)).collect());
    Summary {
        server,
        rounds: mine.len(),
        ops_per_sec: med(|s| s.ops_per_sec),
        p50_us: med(|s| s.p50_us),
        p99_us: med(|s| s.p99_us),
        server_cpu_per_mops: med(|s| s.server_cpu_per_mops),
        errors: mine.iter().map(|s| s.errors).sum(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn write(args: &CompareArgs, name: &str, text: String) -> Result<(), LoadgenError> {
    let path = args.out_dir.join(name);
    std::fs::write(&path, text).map_err(|source| LoadgenError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }
}
