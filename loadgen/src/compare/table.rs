//! The markdown table of a comparison.

use std::fmt::Write as _;

use crate::cli::CompareArgs;

use super::Summary;

/// One line describing the workload.
pub fn workload_line(args: &CompareArgs) -> String {
    let w = &args.workload;
    let length = match w.requests {
        Some(n) => format!("{n} requests"),
        None => format!("{:?}", w.duration),
    };
    format!(
        "{} thr x {} conns, pipeline {}, {}, {} keys {}, value {}-{} B, {}, {} rounds, servers on cpu {} ({} thr), load on cpu {}",
        w.threads,
        w.conns,
        w.pipeline,
        w.mix_summary(),
        w.keys,
        w.key_dist,
        w.value_size.min,
        w.value_size.max,
        length,
        args.rounds,
        args.server_cpu,
        args.server_threads,
        args.load_cpu,
    )
}

/// Medians per server and ratios to `baseline` (citadel when it ran).
pub fn markdown(args: &CompareArgs, rows: &[Summary], baseline: &str) -> String {
    let base = rows
        .iter()
        .find(|r| r.server == baseline)
        .unwrap_or(&rows[0]);
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.2}x", a / b)
        } else {
            "-".into()
        }
    };
    let mut out = String::new();
    let _ = writeln!(out, "\n{}\n", workload_line(args));
    let _ = writeln!(
        out,
        "| server | ops/s | p50 µs | p99 µs | server CPU s / M ops | ops/s vs {b} | p99 vs {b} | CPU/op vs {b} | errors |",
        b = baseline
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.1} | {:.1} | {:.2} | {} | {} | {} | {} |",
            r.server,
            r.ops_per_sec,
            r.p50_us,
            r.p99_us,
            r.server_cpu_per_mops,
            ratio(r.ops_per_sec, base.ops_per_sec),
            ratio(r.p99_us, base.p99_us),
            ratio(r.server_cpu_per_mops, base.server_cpu_per_mops),
            r.errors,
        );
    }
    let _ = writeln!(
        out,
        "\nMedians of {} rounds; server CPU from /proc/<pid>/stat utime+stime.",
        args.rounds
    );
    out
}
