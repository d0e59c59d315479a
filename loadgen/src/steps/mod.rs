//! `--rate-steps`: the offered load ramped in open-loop steps, each step's goodput, shed
//! replies and admitted latency, as a table, JSON and an SVG chart of goodput vs offered
//! load. Multiples of the capacity (`0.5x,1x,2x,3x`) are resolved against a closed-loop
//! run's goodput first (or `--capacity`).

mod chart;
mod server_delay;

use std::fmt::Write as _;
use std::str::FromStr;

use serde::Serialize;

use crate::cli::RunArgs;
use crate::error::LoadgenError;
use crate::report::Report;
use crate::{check_errors, measure, signal, write_json};

/// The steps of `--rate-steps`, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum RateSteps {
    /// Offered rates in requests per second.
    Absolute(Vec<f64>),
    /// Multiples of the measured (or given) capacity.
    Relative(Vec<f64>),
}

impl FromStr for RateSteps {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut absolute = Vec::new();
        let mut relative = Vec::new();
        for part in s.split(',').map(str::trim) {
            let bad =
                || format!("rate step {part:?}: expected a rate (10000, 10k) or a multiple (2x)");
            if let Some(m) = part.strip_suffix(['x', 'X']) {
                relative.push(m.parse::<f64>().map_err(|_| bad())?);
                continue;
            }
            let (num, scale) = match part.strip_suffix(['k', 'K']) {
                Some(n) => (n, 1e3),
                None => match part.strip_suffix(['m', 'M']) {
                    Some(n) => (n, 1e6),
                    None => (part, 1.0),
                },
            };
            absolute.push(num.parse::<f64>().map_err(|_| bad())? * scale);
        }
        let steps = match (absolute.is_empty(), relative.is_empty()) {
            (false, true) => RateSteps::Absolute(absolute),
            (true, false) => RateSteps::Relative(relative),
            _ => return Err("rate steps: all rates or all multiples (2x), not both".into()),
        };
        let values = match &steps {
            RateSteps::Absolute(v) | RateSteps::Relative(v) => v,
        };
        if values.iter().any(|v| !v.is_finite() || *v <= 0.0) {
            return Err("rate steps must be positive".into());
        }
        Ok(steps)
    }
}

/// The closed-loop run behind multiples of the capacity.
#[derive(Debug, Clone, Serialize)]
pub struct Capacity {
    /// Goodput of the closed-loop run (or `--capacity`), ops/s.
    pub ops_per_sec: f64,
    /// Whether it was measured (false: given by --capacity).
    pub measured: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    #[serde(flatten)]
    pub busy: Busy,
}

/// How busy each side was over a run: CPU seconds per second (1.0 = one core).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Busy {
    pub client_busy: f64,
    /// Only with `--server-pid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_busy: Option<f64>,
    /// Only with `--server-pid`, from a server that keeps the histogram.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_delay: Option<server_delay::ServerDelay>,
}

/// Runs `measure` once, noting the server's CPU time around it (and, from a
/// Citadel, its admitted requests' queueing delay: `server_delay`).
fn measured(
    args: &RunArgs,
    workload: crate::cli::WorkloadArgs,
) -> Result<(Report, Busy), LoadgenError> {
    let server_cpu = || {
        args.server_pid
            .and_then(|pid| crate::cpu::process_cpu_time(pid).ok())
    };
    let delays = || {
        let server = args.servers.first().filter(|_| args.server_pid.is_some())?;
        server_delay::DelayHistogram::read(server)
    };
    let before = server_cpu();
    let delay_before = delays();
    let r = measure(args, workload)?;
    let server_delay = match (delay_before, delays()) {
        (Some(a), Some(b)) => b.since(&a),
        _ => None,
    };
    let per_sec = |cpu: f64| {
        if r.elapsed_s > 0.0 {
            cpu / r.elapsed_s
        } else {
            0.0
        }
    };
    let server_busy = match (before, server_cpu()) {
        (Some(a), Some(b)) => Some(per_sec(b.saturating_sub(a).as_secs_f64())),
        _ => None,
    };
    let busy = Busy {
        client_busy: per_sec(r.client_cpu_s),
        server_busy,
        server_delay,
    };
    Ok((r, busy))
}

/// One step's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The multiple of the capacity (relative steps only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiple: Option<f64>,
    pub offered_ops_per_sec: f64,
    /// Requests that got an outcome per second (good, shed or error).
    pub answered_ops_per_sec: f64,
    pub goodput_ops_per_sec: f64,
    pub shed: u64,
    pub shed_per_sec: f64,
    pub shed_rate: f64,
    pub errors: u64,
    pub error_rate: f64,
    /// Latency of the admitted (good) replies, from their intended send time.
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// The same replies' p99 from their actual send, and the p99 of how late the
    /// load generator sent (its own queueing: `p99_us` counts it, this does not).
    pub p99_from_send_us: f64,
    pub send_lag_p99_us: f64,
    /// p99 of how long a good reply may have sat unread while the client was busy.
    pub reply_lag_p99_us: f64,
    #[serde(flatten)]
    pub busy: Busy,
    /// The step's full report.
    pub report: Report,
}

impl Step {
    fn of(multiple: Option<f64>, offered: f64, r: Report, busy: Busy) -> Step {
        let l = &r.latency_us["all"];
        Step {
            multiple,
            offered_ops_per_sec: offered,
            answered_ops_per_sec: r.ops_per_sec,
            goodput_ops_per_sec: r.goodput_ops_per_sec,
            shed: r.shed,
            shed_per_sec: if r.elapsed_s > 0.0 {
                r.shed as f64 / r.elapsed_s
            } else {
                0.0
            },
            shed_rate: r.shed_rate,
            errors: r.errors,
            error_rate: r.error_rate,
            p50_us: l.p50,
            p99_us: l.p99,
            p999_us: l.p999,
            p99_from_send_us: r.latency_from_send_us.p99,
            send_lag_p99_us: r.send_lag_us.p99,
            reply_lag_p99_us: r.reply_lag_us.p99,
            busy,
            report: r,
        }
    }
}

/// What `--json` holds for a `--rate-steps` run.
#[derive(Debug, Clone, Serialize)]
pub struct StepsReport {
    pub servers: Vec<String>,
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
    /// Highest goodput over the steps, ops/s.
    pub peak_goodput_ops_per_sec: f64,
    pub steps: Vec<Step>,
}

/// Runs the steps `args.rate_steps` names: capacity first if needed, then one open-loop
/// run per step; prints a line per step and the summary table, writes --json and --svg.
pub fn run_cli(args: &RunArgs) -> Result<StepsReport, LoadgenError> {
    let steps = args
        .rate_steps
        .clone()
        .ok_or_else(|| LoadgenError::Config("--rate-steps is not set".into()))?;
    let mut workload = args.workload.clone();
    let (capacity, rates) = match &steps {
        RateSteps::Absolute(rates) => (None, rates.iter().map(|r| (None, *r)).collect()),
        RateSteps::Relative(multiples) => {
            let capacity = match args.capacity {
                Some(ops) => Capacity {
                    ops_per_sec: ops,
                    measured: false,
                    p50_us: None,
                    p99_us: None,
                    busy: Busy::default(),
                },
                None => {
                    let mut closed = workload.clone();
                    closed.rate = None;
                    closed.duration = args.capacity_duration.unwrap_or(closed.duration);
                    let (r, busy) = measured(args, closed)?;
                    check_errors(args, &r)?;
                    workload.prefill = false;
                    let l = &r.latency_us["all"];
                    Capacity {
                        ops_per_sec: r.goodput_ops_per_sec,
                        measured: true,
                        p50_us: Some(l.p50),
                        p99_us: Some(l.p99),
                        busy,
                    }
                }
            };
            println!(
                "capacity: {:.0} ops/s{}{}",
                capacity.ops_per_sec,
                if capacity.measured {
                    " (closed loop)"
                } else {
                    " (--capacity)"
                },
                if capacity.measured {
                    busy_text(&capacity.busy)
                } else {
                    String::new()
                }
            );
            let rates = multiples
                .iter()
                .map(|m| (Some(*m), m * capacity.ops_per_sec))
                .collect::<Vec<_>>();
            (Some(capacity), rates)
        }
    };
    let mut done = Vec::new();
    let mut servers = Vec::new();
    for (multiple, offered) in rates {
        if signal::stop_requested() {
            return Err(LoadgenError::Interrupted);
        }
        let mut step = workload.clone();
        step.rate = Some(offered.max(1.0));
        let (r, busy) = measured(args, step)?;
        workload.prefill = false;
        check_errors(args, &r)?;
        servers.clone_from(&r.servers);
        let s = Step::of(multiple, offered, r, busy);
        println!("{}", step_line(&s));
        done.push(s);
    }
    let report = StepsReport {
        servers,
        mode: "open-loop steps",
        capacity,
        peak_goodput_ops_per_sec: done
            .iter()
            .map(|s| s.goodput_ops_per_sec)
            .fold(0.0, f64::max),
        steps: done,
    };
    print!("{}", table(&report));
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    if let Some(path) = &args.svg {
        let svg = chart::svg(&report)?;
        std::fs::write(path, svg).map_err(|source| LoadgenError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(report)
}

/// `, client busy 0.62, server busy 1.00` (CPU seconds per second), and
/// the server's admitted delay where it told it.
fn busy_text(b: &Busy) -> String {
    let server = b
        .server_busy
        .map_or(String::new(), |s| format!(", server busy {s:.2}"));
    let delay = b.server_delay.map_or(String::new(), |d| {
        format!(
            ", server-side admitted delay p50 < {} us p99 < {} us",
            d.p50_us, d.p99_us
        )
    });
    format!(", client busy {:.2}{server}{delay}", b.client_busy)
}

fn step_line(s: &Step) -> String {
    format!(
        "step {}{:.0} ops/s offered: goodput {:.0} ops/s, shed {} ({:.1}%), errors {}, admitted p50 {:.1} us p99 {:.1} us (from actual send {:.1} us; send lag p99 {:.1} us; replies unread up to {:.1} us p99){}",
        s.multiple.map_or(String::new(), |m| format!("{m}x = ")),
        s.offered_ops_per_sec,
        s.goodput_ops_per_sec,
        s.shed,
        s.shed_rate * 100.0,
        s.errors,
        s.p50_us,
        s.p99_us,
        s.p99_from_send_us,
        s.send_lag_p99_us,
        s.reply_lag_p99_us,
        busy_text(&s.busy)
    )
}

/// The summary: one row per step.
pub fn table(r: &StepsReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:>8} {:>12} {:>12} {:>9} {:>12} {:>8} {:>10} {:>10} {:>12} {:>12}",
        "step",
        "offered/s",
        "goodput/s",
        "of peak",
        "shed/s",
        "errors",
        "p50 us",
        "p99 us",
        "p99 sent us",
        "lag p99 us"
    );
    for s in &r.steps {
        let step = s.multiple.map_or(String::from("-"), |m| format!("{m}x"));
        let of_peak = if r.peak_goodput_ops_per_sec > 0.0 {
            s.goodput_ops_per_sec / r.peak_goodput_ops_per_sec * 100.0
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "{:>8} {:>12.0} {:>12.0} {:>8.1}% {:>12.0} {:>8} {:>10.1} {:>10.1} {:>12.1} {:>12.1}",
            step,
            s.offered_ops_per_sec,
            s.goodput_ops_per_sec,
            of_peak,
            s.shed_per_sec,
            s.errors,
            s.p50_us,
            s.p99_us,
            s.p99_from_send_us,
            s.send_lag_p99_us
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::RateSteps;

    #[test]
    fn steps_parse() {
        assert_eq!(
            "10000,20k,1.5M".parse(),
            Ok(RateSteps::Absolute(vec![10000.0, 20000.0, 1_500_000.0]))
        );
        assert_eq!(
            "0.5x, 1x,2X".parse(),
            Ok(RateSteps::Relative(vec![0.5, 1.0, 2.0]))
        );
        assert!("1x,2000".parse::<RateSteps>().is_err());
        assert!("0x".parse::<RateSteps>().is_err());
        assert!("fast".parse::<RateSteps>().is_err());
        assert!("".parse::<RateSteps>().is_err());
    }
}
