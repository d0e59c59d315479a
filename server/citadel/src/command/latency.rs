//! LATENCY LATEST | HISTORY event | GRAPH event (`latency_graph.rs`) |
//! RESET [event ...] | DOCTOR | HISTOGRAM [command ...] | HELP: the
//! latency monitor's events
//! (`introspect::latency`: "command" and "fast-command", recorded past
//! `latency-monitor-threshold`) and the per-command histograms.

use std::fmt::Write;

use super::args::Args;
use super::context::{reply_lines, Ctx};
use super::error::CmdResult;
use super::table::{by_index, keyless, CommandDef};
use crate::introspect::calls::{bucket_upper, CommandTotals};

const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];
const SV: &str = "server";

#[rustfmt::skip]
pub static SUBCOMMANDS: &[CommandDef] = &[
    keyless("latency|latest", 2, ADMIN, SV, "2.8.13", "Returns the latest latency samples for all events.", latest),
    keyless("latency|history", 3, ADMIN, SV, "2.8.13", "Returns timestamp-latency samples for an event.", history),
    keyless("latency|graph", 3, ADMIN, SV, "2.8.13", "Returns a latency graph for an event.", super::latency_graph::graph),
    keyless("latency|reset", -2, ADMIN, SV, "2.8.13", "Resets the latency data for one or more events.", reset),
    keyless("latency|doctor", 2, ADMIN, SV, "2.8.13", "Returns a human-readable latency analysis report.", doctor),
    keyless("latency|histogram", -2, ADMIN, SV, "7.0.0", "Returns the cumulative distribution of latencies of a subset or all commands.", histogram),
    keyless("latency|help", 2, &["loading", "stale"], SV, "2.8.13", "Returns helpful text about the different subcommands.", help),
];

/// `[[event, time of the last sample, its ms, worst ms ever], ...]`
fn latest(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let events = ctx.state.introspect.latency.events();
    let out = &mut ctx.out;
    out.array(events.len());
    for (name, e) in &events {
        let (t, ms) = e.samples.back().copied().unwrap_or((0, 0));
        out.array(4);
        out.bulk(name.as_bytes());
        out.int(t as i64);
        out.int(ms as i64);
        out.int(e.max_ms as i64);
    }
    Ok(())
}

/// `[[time, ms], ...]` of one event, oldest first (empty if unknown).
fn history(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let events = ctx.state.introspect.latency.events();
    let wanted = args.get(2);
    let samples = events
        .iter()
        .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(wanted))
        .map(|(_, e)| e.samples.clone())
        .unwrap_or_default();
    ctx.out.array(samples.len());
    for (t, ms) in samples {
        ctx.out.array(2);
        ctx.out.int(t as i64);
        ctx.out.int(ms as i64);
    }
    Ok(())
}

fn reset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let names: Vec<&[u8]> = args.from(2).iter().collect();
    let n = ctx.state.introspect.latency.reset(&names);
    ctx.out.int(n as i64);
    Ok(())
}

fn doctor(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let state = ctx.state;
    let events = state.introspect.latency.events();
    let now = ctx.thread.cache.now_ms() / 1000;
    let mut text = String::new();
    if events.is_empty() && state.introspect.latency_threshold_ms().is_none() {
        text.push_str(
            "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this \
             server. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" \
             in order to enable it.\n",
        );
    } else if events.is_empty() {
        text.push_str(
            "Dave, no latency spike was observed during the lifetime of this server, \
             not in the slightest bit.\n",
        );
    } else {
        text.push_str(
            "Dave, I have observed latency spikes in this server. You don't mind \
             talking about it, do you Dave?\n\n",
        );
        for (i, (name, e)) in events.iter().enumerate() {
            let n = e.samples.len().max(1) as f64;
            let avg = e.samples.iter().map(|s| s.1 as f64).sum::<f64>() / n;
            let dev = e
                .samples
                .iter()
                .map(|s| (s.1 as f64 - avg).abs())
                .sum::<f64>()
                / n;
            let first = e.samples.front().map_or(now, |s| s.0);
            let period = (now.saturating_sub(first)).max(1) as f64 / n;
            let _ = writeln!(
                text,
                "{}. {name}: {} latency spikes (average {avg:.0}ms, mean deviation \
                 {dev:.0}ms, period {period:.2} sec). Worst all time event {}ms.",
                i + 1,
                e.samples.len(),
                e.max_ms
            );
        }
        text.push_str(
            "\nI have a few advices for you:\n\n- Check your Slow Log to understand \
             what are the commands you are running which are too slow to execute \
             (SLOWLOG GET).\n",
        );
    }
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// `{command: {calls: n, histogram_usec: {bucket: cumulative count}}}`,
/// buckets at powers of two of microseconds, as Redis's.
fn histogram(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let totals = super::stats_info::totals(ctx.state);
    let called: Vec<(&str, &CommandTotals)> = totals
        .commands
        .iter()
        .enumerate()
        .filter(|(_, c)| c.calls > 0)
        .filter_map(|(i, c)| Some((by_index(i)?.name, c)))
        .collect();
    let wanted = args.from(2);
    // As Redis's latencySpecificCommandsFillCDF: each name asked, in order
    // (unknown ones skipped), then a container's subcommands.
    let picked: Vec<(&str, &CommandTotals)> = if wanted.len() == 0 {
        called
    } else {
        wanted
            .iter()
            .flat_map(|w| {
                called
                    .iter()
                    .filter(move |(name, _)| names_or_contains(w, name))
                    .copied()
            })
            .collect()
    };
    let out = &mut ctx.out;
    out.map(picked.len());
    for (name, c) in picked {
        out.bulk(name.as_bytes());
        out.map(2);
        out.bulk(b"calls");
        out.int(c.calls as i64);
        out.bulk(b"histogram_usec");
        let buckets = power_of_two_buckets(c);
        out.map(buckets.len());
        for (usec, cumulative) in buckets {
            out.int(usec as i64);
            out.int(cumulative as i64);
        }
    }
    Ok(())
}

/// Whether LATENCY HISTOGRAM's argument `asked` names command `name`
/// ("client|id") or the container of subcommand `name` ("client").
fn names_or_contains(asked: &[u8], name: &str) -> bool {
    let name = name.as_bytes();
    name.eq_ignore_ascii_case(asked)
        || (name.len() > asked.len()
            && name[asked.len()] == b'|'
            && name[..asked.len()].eq_ignore_ascii_case(asked))
}

/// (upper bound in µs, calls at or below it) at 1, 2, 4, ... µs, up to
/// the slowest call.
fn power_of_two_buckets(c: &CommandTotals) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut cumulative = 0;
    for (b, n) in c.histogram.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        cumulative += n;
        let usec = (bucket_upper(b) / 1000).max(1).next_power_of_two();
        match out.last_mut() {
            Some(last) if last.0 == usec => last.1 = cumulative,
            _ => out.push((usec, cumulative)),
        }
    }
    out
}

fn help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    reply_lines(
        &mut ctx.out,
        &[
            "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
            "HELP",
            "    Prints this help.",
        ],
    );
    Ok(())
}
