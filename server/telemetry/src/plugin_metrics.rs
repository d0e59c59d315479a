//! The plugin section in the exposition: per plugin and version, calls,
//! errors, timeouts, calls in flight and a latency histogram; per plugin,
//! calls refused before a version was chosen.

use crate::family::{histogram, label_value, Family};
use crate::snapshot::{Snapshot, VersionTotals};

pub(crate) fn render(out: &mut String, s: &Snapshot) {
    let each = |f: fn(&VersionTotals) -> u64| {
        s.plugins.iter().flat_map(move |p| {
            p.versions
                .iter()
                .map(move |v| (labels(&p.name, &v.name), f(v)))
        })
    };
    Family {
        name: "citadel_plugin_calls_total",
        kind: "counter",
        help: "Plugin calls answered (errors included), by plugin and version.",
    }
    .write(out, each(|v| v.calls));
    Family {
        name: "citadel_plugin_errors_total",
        kind: "counter",
        help: "Plugin calls answered with an error, by plugin and version.",
    }
    .write(out, each(|v| v.errors));
    Family {
        name: "citadel_plugin_timeouts_total",
        kind: "counter",
        help: "Plugin calls that got no reply in time, by plugin and version.",
    }
    .write(out, each(|v| v.timeouts));
    Family {
        name: "citadel_plugin_in_flight",
        kind: "gauge",
        help: "Plugin calls sent and not yet answered (queue depth), by plugin and version.",
    }
    .write(out, each(|v| v.in_flight));
    Family {
        name: "citadel_plugin_refused_total",
        kind: "counter",
        help: "Plugin calls refused at once (ring full or in-flight limit), by plugin.",
    }
    .write(
        out,
        s.plugins.iter().map(|p| {
            let l = format!("plugin=\"{}\"", label_value(p.name.as_bytes()));
            (l, p.refused)
        }),
    );
    let name = "citadel_plugin_call_duration_seconds";
    Family {
        name,
        kind: "histogram",
        help: "Time plugin calls took to be answered, by plugin and version.",
    }
    .header(out);
    for p in &s.plugins {
        for v in &p.versions {
            histogram(out, name, &labels(&p.name, &v.name), &v.buckets, v.nanos);
        }
    }
    Family {
        name: "citadel_plugin_versions_unlisted",
        kind: "gauge",
        help: "Plugin versions the stats region had no room for (not in these metrics).",
    }
    .write(out, [("", s.plugins_unlisted)]);
}

fn labels(plugin: &str, version: &str) -> String {
    format!(
        "plugin=\"{}\",version=\"{}\"",
        label_value(plugin.as_bytes()),
        label_value(version.as_bytes())
    )
}
