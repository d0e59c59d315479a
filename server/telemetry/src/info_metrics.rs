//! INFO's numeric fields as Prometheus gauges, so that everything INFO
//! reports (memory, hits and misses, evictions, per-thread load, plugins,
//! pipeline stages, read-through loads and breakers, and sections added
//! later) is scrapeable without a second list of names:
//!
//! * `field:number` → `citadel_info_<field> number`
//! * `name:k1=v1,k2=v2` → `citadel_info_<section>_<k1>{name="name"} v1` …
//!
//! Non-numeric values are left out; commandstats and latencystats too
//! (the command families carry them, with real histograms).

use std::collections::BTreeMap;

use crate::exposition::{label_value, Family};

const SKIPPED_SECTIONS: &[&str] = &["commandstats", "latencystats"];
/// Suffixes reserved for counters, histograms and summaries.
const RESERVED_SUFFIXES: &[&str] = &["_total", "_count", "_sum", "_bucket", "_created"];

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
        let mut add = |name: String, help: String, labels: String, v: f64| {
            let family = families
                .entry(name)
                .or_insert_with(|| (help, BTreeMap::new()));
            family.1.entry(labels).or_insert(v);
        };
        if let Some(v) = number(value) {
            let help = format!("INFO {section} field {key}.");
            add(metric_name(&[key]), help, String::new(), v);
            continue;
        }
        for pair in value.split(',') {
            let Some((field, v)) = pair.split_once('=') else {
                continue;
            };
            let Some(v) = number(v) else { continue };
            let help = format!("INFO {section} field {field} of each entry.");
            let labels = format!("name=\"{}\"", label_value(key.as_bytes()));
            add(metric_name(&[&section, field]), help, labels, v);
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
        let info = "# Stats\r\nkeyspace_hits:10\r\nrole:master\r\n\
                    # Plugins\r\nplugin_echo:calls=3,errors=0,state=up\r\n\
                    # Errorstats\r\nerrorstat_ERR:count=2\r\n\
                    # Commandstats\r\ncmdstat_get:calls=3\r\n";
        let mut out = String::new();
        render(&mut out, info);
        assert!(out.contains("\ncitadel_info_keyspace_hits 10\n"), "{out}");
        assert!(out.contains("citadel_info_plugins_calls{name=\"plugin_echo\"} 3\n"));
        assert!(out.contains("citadel_info_errorstats_count_value{name=\"errorstat_ERR\"} 2\n"));
        assert!(!out.contains("role"));
        assert!(!out.contains("cmdstat"));
        assert!(!out.contains("state"));
    }
}
