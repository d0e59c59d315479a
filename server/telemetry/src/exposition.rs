//! Prometheus text exposition (format 0.0.4) of a [`Snapshot`]: command
//! calls, failures and latency histograms, per-core load and gauges, shed
//! counts, hot keys, and every numeric INFO field as a gauge.

use crate::family::{histogram, seconds};
pub use crate::family::{label_value, Family};
use crate::info_metrics;
use crate::snapshot::Snapshot;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The whole exposition of `s`.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(16 << 10);
    commands(&mut out, s);
    cores(&mut out, s);
    protection(&mut out, s);
    crate::plugin_metrics::render(&mut out, s);
    Family {
        name: "citadel_stats_region_reopens_total",
        kind: "counter",
        help: "Server starts that kept the stats region's counters.",
    }
    .write(&mut out, [("", s.reopens)]);
    Family {
        name: "citadel_stats_heartbeat_timestamp_seconds",
        kind: "gauge",
        help: "When the server last published into the stats region (Unix time).",
    }
    .write(&mut out, [("", s.heartbeat_ms as f64 / 1000.0)]);
    info_metrics::render(&mut out, &s.info);
    out
}

fn commands(out: &mut String, s: &Snapshot) {
    let label = |name: &str| format!("command=\"{}\"", label_value(name.as_bytes()));
    Family {
        name: "citadel_commands_total",
        kind: "counter",
        help: "Commands run, by command.",
    }
    .write(out, s.commands.iter().map(|c| (label(&c.name), c.calls)));
    Family {
        name: "citadel_command_failures_total",
        kind: "counter",
        help: "Commands that answered an error, by command.",
    }
    .write(out, s.commands.iter().map(|c| (label(&c.name), c.failed)));
    let name = "citadel_command_duration_seconds";
    Family {
        name,
        kind: "histogram",
        help: "Time commands took to run, by command.",
    }
    .header(out);
    for c in &s.commands {
        histogram(out, name, &label(&c.name), &c.buckets, c.nanos);
    }
}

fn cores(out: &mut String, s: &Snapshot) {
    let each = |f: fn(&crate::CoreTotals) -> f64| {
        s.cores
            .iter()
            .enumerate()
            .map(move |(i, c)| (format!("core=\"{i}\""), f(c)))
    };
    Family {
        name: "citadel_core_commands_total",
        kind: "counter",
        help: "Commands run, by server thread (core).",
    }
    .write(out, each(|c| c.commands as f64));
    Family {
        name: "citadel_core_command_seconds_total",
        kind: "counter",
        help: "Time spent running commands, by server thread (core).",
    }
    .write(out, each(|c| seconds(c.nanos)));
    Family {
        name: "citadel_core_queue_delay_seconds",
        kind: "gauge",
        help: "Each core's current queueing delay, as admission control measures it.",
    }
    .write(out, each(|c| seconds(c.queue_delay_nanos)));
    Family {
        name: "citadel_core_cpu_budget_ratio",
        kind: "gauge",
        help: "Share of its CPU budget each core's last loop turn used.",
    }
    .write(out, each(|c| c.cpu_budget_permille as f64 / 1000.0));
}

fn protection(out: &mut String, s: &Snapshot) {
    Family {
        name: "citadel_shed_total",
        kind: "counter",
        help: "Requests refused with -OVERLOAD, by layer, reason and priority.",
    }
    .write(
        out,
        s.shed.iter().map(|c| {
            let labels = format!(
                "layer=\"{}\",reason=\"{}\",priority=\"{}\",priority_name=\"{}\"",
                c.layer.as_str(),
                label_value(c.reason.as_bytes()),
                c.priority,
                label_value(c.priority_name.as_bytes()),
            );
            (labels, c.count)
        }),
    );
    Family {
        name: "citadel_hot_key_rate",
        kind: "gauge",
        help: "Accesses per second of the hottest keys, over the detector's window.",
    }
    .write(
        out,
        s.hot_keys.iter().enumerate().map(|(rank, k)| {
            let labels = format!("key=\"{}\",rank=\"{}\"", label_value(&k.key), rank + 1);
            (labels, k.rate)
        }),
    );
}
