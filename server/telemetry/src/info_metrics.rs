//! INFO's numeric fields as Prometheus gauges, so that everything INFO
//! reports (memory, hits and misses, evictions, per-thread load, plugins,
//! pipeline stages, read-through loads and breakers, and sections added
//! later) is scrapeable without a second list of names:
//!
//! * `field:number` → `citadel_info_<field> number`
//! * `name:k1=v1,k2=v2` → `citadel_info_<section>_<k1>{name="name"} v1` …
//!
//! * `name:k=word` (a state such as a breaker's) →
//!   `citadel_info_<section>_<k>{name="name",value="word"} 1`
//! * `name;label=x:k=v` (an entry of an entry, e.g. a plugin's version) →
//!   `citadel_info_<section>_<k>{name="name",label="x"} v`
//!
//! Durations in ms/us are scaled to seconds (Prometheus's base unit), and
//! fields Prometheus derives itself (instantaneous rates) or that repeat
//! another (uptime in days) are left out, as are other non-numeric values
//! and commandstats and latencystats (the command families carry them,
//! with real histograms).

use std::collections::BTreeMap;

use crate::family::{label_value, Family};

const SKIPPED_SECTIONS: &[&str] = &["commandstats", "latencystats"];
/// Suffixes reserved for counters, histograms and summaries.
const RESERVED_SUFFIXES: &[&str] = &["_total", "_count", "_sum", "_bucket", "_created"];
/// Fields left out: rates Prometheus computes, repeats, constants.
const SKIPPED_FIELDS: &[&str] = &["instantaneous_", "_in_days", "arch_bits"];
/// Name segments that are a unit other than the base one, and the factor
/// to seconds.
const TIME_UNITS: &[(&str, f64)] = &[
    // Seconds already, but promtool refuses the abbreviation
    // (INFO persistence's `rdb_last_bgsave_time_sec`).
    ("sec", 1.0),
    ("ms", 1e-3),
    ("msec", 1e-3),
    ("millis", 1e-3),
    ("us", 1e-6),
    ("usec", 1e-6),
    ("micros", 1e-6),
    ("ns", 1e-9),
    ("nanos", 1e-9),
];

/// `field` with a time unit segment replaced by `seconds`, and the factor
/// its values take.
fn base_unit(field: &str) -> (String, f64) {
    let mut factor = 1.0;
    let segments: Vec<&str> = field
        .split('_')
        .map(
            |seg| match TIME_UNITS.iter().find(|(u, _)| seg.eq_ignore_ascii_case(u)) {
                Some((_, f)) => {
                    factor = *f;
                    "seconds"
                }
                None => seg,
            },
        )
        .collect();
    (segments.join("_"), factor)
}

/// A metric name from INFO words: lowercase `[a-z0-9_]`, no reserved suffix.
fn metric_name(parts: &[&str]) -> String {
    let mut name = String::from("citadel_info");
    for part in parts {
        name.push('_');
        name.extend(part.chars().map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '_',
        }));
    }
    if RESERVED_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        name.push_str("_value");
    }
    name
}

fn number(v: &str) -> Option<f64> {
    v.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A short state word (not a path, a list or free text).
fn is_word(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 32
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `name="name"` of an entry's key, plus `label="x"` for each `;label=x`
/// after the name.
fn entry_labels(key: &str) -> String {
    let mut parts = key.split(';');
    let name = label_value(parts.next().unwrap_or_default().as_bytes());
    let mut labels = format!("name=\"{name}\"");
    for extra in parts {
        if let Some((k, v)) = extra.split_once('=') {
            let k = metric_name(&[k]);
            let k = k.trim_start_matches("citadel_info_");
            labels.push_str(&format!(",{k}=\"{}\"", label_value(v.as_bytes())));
        }
    }
    labels
}

/// Appends the gauges of `info` (INFO's text) to `out`.
pub fn render(out: &mut String, info: &str) {
    // name -> (help, labels -> value); BTreeMap keeps families together
    // and the output stable.
    let mut families: BTreeMap<String, (String, BTreeMap<String, f64>)> = BTreeMap::new();
    let mut section = String::new();
    for line in info.lines() {
        if let Some(title) = line.strip_prefix("# ") {
            section = title.trim().to_ascii_lowercase();
            continue;
        }
        if SKIPPED_SECTIONS.contains(&section.as_str()) {
            continue;
        }
        let Some((key, value)) = line.trim_end().split_once(':') else {
            continue;
        };
        if SKIPPED_FIELDS.iter().any(|s| key.contains(s)) {
            continue;
        }
        let mut add = |name: String, help: String, labels: String, v: f64| {
            let family = families
                .entry(name)
                .or_insert_with(|| (help, BTreeMap::new()));
            family.1.entry(labels).or_insert(v);
        };
        if let Some(v) = number(value) {
            let (field, factor) = base_unit(key);
            let help = format!("INFO {section} field {key}.");
            add(metric_name(&[&field]), help, String::new(), v * factor);
            continue;
        }
        let labels = entry_labels(key);
        for pair in value.split(',') {
            let Some((field, v)) = pair.split_once('=') else {
                continue;
            };
            let help = format!("INFO {section} field {field} of each entry.");
            let (unit_field, factor) = base_unit(field);
            match number(v) {
                Some(v) => add(
                    metric_name(&[&section, &unit_field]),
                    help,
                    labels.clone(),
                    v * factor,
                ),
                None if is_word(v) => add(
                    metric_name(&[&section, field]),
                    help,
                    format!("{labels},value=\"{}\"", label_value(v.as_bytes())),
                    1.0,
                ),
                None => {}
            }
        }
    }
    for (name, (help, samples)) in &families {
        Family {
            name,
            kind: "gauge",
            help,
        }
        .write(out, samples);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_lists_become_gauges() {
        let info = "# Stats\r\nkeyspace_hits:10\r\nrole:master\r\nrdb_last_bgsave_time_sec:2\r\n\
                    # Plugins\r\nplugin_echo:calls=3,errors=0,state=up\r\n\
                    plugin_echo;version=v2:calls=4,p99_us=1000\r\n\
                    # Readthrough\r\nloader_pg:breaker=open,in_flight=1,wait_ms=1500\r\n\
                    # Server\r\nuptime_in_days:3\r\ninstantaneous_ops_per_sec:5\r\n\
                    # Errorstats\r\nerrorstat_ERR:count=2\r\n\
                    # Commandstats\r\ncmdstat_get:calls=3\r\n";
        let mut out = String::new();
        render(&mut out, info);
        assert!(out.contains("\ncitadel_info_keyspace_hits 10\n"), "{out}");
        assert!(
            out.contains("\ncitadel_info_rdb_last_bgsave_time_seconds 2\n"),
            "{out}"
        );
        assert!(out.contains("citadel_info_plugins_calls{name=\"plugin_echo\"} 3\n"));
        assert!(
            out.contains("citadel_info_plugins_calls{name=\"plugin_echo\",version=\"v2\"} 4\n"),
            "{out}"
        );
        assert!(out.contains(
            "citadel_info_plugins_p99_seconds{name=\"plugin_echo\",version=\"v2\"} 0.001\n"
        ));
        assert!(out.contains("citadel_info_errorstats_count_value{name=\"errorstat_ERR\"} 2\n"));
        assert!(!out.contains("role"));
        assert!(!out.contains("cmdstat"));
        assert!(
            out.contains("citadel_info_plugins_state{name=\"plugin_echo\",value=\"up\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("citadel_info_readthrough_breaker{name=\"loader_pg\",value=\"open\"} 1\n")
        );
        assert!(out.contains("citadel_info_readthrough_wait_seconds{name=\"loader_pg\"} 1.5\n"));
        assert!(!out.contains("days") && !out.contains("instantaneous"));
    }
}
