//! The text format's building blocks: a metric family's header and
//! samples, a histogram's samples, and label value escaping.

use std::fmt::Write;

use crate::layout::bound_of;

/// One metric family: its header, then its samples (label text without
/// braces, value) — all of a family's lines together, as the format wants.
pub struct Family<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub help: &'a str,
}

impl Family<'_> {
    pub fn header(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
    }

    pub fn write<L: AsRef<str>, V: std::fmt::Display>(
        &self,
        out: &mut String,
        samples: impl IntoIterator<Item = (L, V)>,
    ) {
        self.header(out);
        for (labels, value) in samples {
            sample(out, self.name, labels.as_ref(), value);
        }
    }
}

pub fn sample(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

pub fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// One histogram's samples (`buckets` per bucket, as counted: not
/// cumulative; their bounds `layout::bound_of`); the family's header is
/// the caller's.
pub fn histogram(out: &mut String, name: &str, labels: &str, buckets: &[u64], nanos: u64) {
    let mut cumulative = 0;
    for (b, n) in buckets.iter().enumerate() {
        cumulative += n;
        let le = bound_of(b, buckets.len()).map_or("+Inf".to_string(), |n| seconds(n).to_string());
        sample(
            out,
            &format!("{name}_bucket"),
            &format!("{labels},le=\"{le}\""),
            cumulative,
        );
    }
    sample(out, &format!("{name}_sum"), labels, seconds(nanos));
    sample(out, &format!("{name}_count"), labels, cumulative);
}

/// A label value with `\`, `"` and newlines escaped (bytes that are not
/// UTF-8 shown as U+FFFD).
pub fn label_value(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}
