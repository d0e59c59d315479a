//! INFO commandstats, errorstats and latencystats: every thread's command
//! statistics (`introspect::calls`) summed, in Redis's line formats.

use std::fmt::Write;

use super::table::by_index;
use crate::introspect::calls::Totals;
use crate::state::ServerState;

/// Every thread's statistics since the last CONFIG RESETSTAT, summed.
pub fn totals(state: &ServerState) -> Totals {
    let mut all = Totals::default();
    for t in &state.thread_stats {
        all.add(&t.calls.totals());
    }
    all
}

/// Commands executed (not refused before running), as Redis counts
/// `total_commands_processed`.
pub fn commands_processed(t: &Totals) -> u64 {
    t.commands.iter().map(|c| c.calls).sum()
}

/// `cmdstat_<name>:calls=..,usec=..,usec_per_call=..,rejected_calls=..,failed_calls=..`
pub fn commandstats(out: &mut String, t: &Totals) {
    for (i, c) in t.commands.iter().enumerate() {
        if c.calls == 0 && c.rejected == 0 && c.failed == 0 {
            continue;
        }
        let Some(def) = by_index(i) else { continue };
        let usec = c.nanos / 1000;
        let per_call = if c.calls == 0 {
            0.0
        } else {
            c.nanos as f64 / 1000.0 / c.calls as f64
        };
        let _ = write!(
            out,
            "cmdstat_{}:calls={},usec={usec},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
            def.name, c.calls, c.rejected, c.failed
        );
    }
}

/// `errorstat_<CODE>:count=..` for each error code answered.
pub fn errorstats(out: &mut String, t: &Totals) {
    for (code, n) in &t.errors {
        if *n > 0 {
            let _ = write!(out, "errorstat_{code}:count={n}\r\n");
        }
    }
}

/// `latency_percentiles_usec_<name>:p50=..,p99=..,p99.9=..` per command
/// that ran (bucket upper edges, within about 19%).
pub fn latencystats(out: &mut String, t: &Totals) {
    for (i, c) in t.commands.iter().enumerate() {
        if c.calls == 0 {
            continue;
        }
        let Some(def) = by_index(i) else { continue };
        let _ = write!(out, "latency_percentiles_usec_{}:", def.name);
        for (n, p) in [(0, 50.0), (1, 99.0), (2, 99.9)] {
            let sep = if n == 0 { "" } else { "," };
            let usec = c.percentile(p) as f64 / 1000.0;
            let _ = write!(out, "{sep}p{p}={usec:.3}");
        }
        out.push_str("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use crate::introspect::calls::MAX_COMMANDS;

    #[test]
    fn every_command_and_subcommand_has_counters() {
        assert!(
            super::by_index(MAX_COMMANDS - 1).is_none(),
            "raise MAX_COMMANDS"
        );
    }
}
