//! SLOWLOG GET [count] | LEN | RESET | HELP over every thread's slow log
//! (`introspect::slowlog`), newest first by global id, as Redis answers.

use super::args::Args;
use super::context::{reply_lines, Ctx};
use super::error::{CmdError, CmdResult};
use super::table::{keyless, CommandDef};
use crate::introspect::slowlog::SlowEntry;

const ADMIN: &[&str] = &["admin", "loading", "stale"];
const SV: &str = "server";

#[rustfmt::skip]
pub static SUBCOMMANDS: &[CommandDef] = &[
    keyless("slowlog|get", -2, ADMIN, SV, "2.2.12", "Returns the slow log's entries.", get),
    keyless("slowlog|len", 2, ADMIN, SV, "2.2.12", "Returns the number of entries in the slow log.", len),
    keyless("slowlog|reset", 2, ADMIN, SV, "2.2.12", "Clears all entries from the slow log.", reset),
    keyless("slowlog|help", 2, &["loading", "stale"], SV, "6.2.0", "Show helpful text about the different subcommands", help),
];

/// Every thread's entries, newest first, at most `slowlog-max-len`.
fn merged(ctx: &Ctx<'_>) -> Vec<SlowEntry> {
    let mut all: Vec<SlowEntry> = ctx
        .state
        .thread_stats
        .iter()
        .flat_map(|t| t.slowlog.entries())
        .collect();
    all.sort_unstable_by_key(|e| std::cmp::Reverse(e.id));
    all.truncate(ctx.state.introspect.slowlog_max_len());
    all
}

fn get(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let count = match args.len() {
        2 => 10,
        3 => match args.int(2) {
            Ok(n) if n >= -1 => n,
            _ => {
                return Err(CmdError::Static(
                    "ERR count should be greater than or equal to -1",
                ))
            }
        },
        _ => return Err(CmdError::Arity("slowlog|get")),
    };
    let mut entries = merged(ctx);
    if count >= 0 {
        entries.truncate(count as usize);
    }
    let out = &mut ctx.out;
    out.array(entries.len());
    for e in &entries {
        out.array(6);
        out.int(e.id as i64);
        out.int(e.unix_secs as i64);
        out.int(e.micros as i64);
        out.array(e.args.len());
        for a in &e.args {
            out.bulk(a);
        }
        out.bulk(e.addr.as_bytes());
        out.bulk(&e.name);
    }
    Ok(())
}

fn len(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let total: usize = ctx.state.thread_stats.iter().map(|t| t.slowlog.len()).sum();
    let n = total.min(ctx.state.introspect.slowlog_max_len());
    ctx.out.int(n as i64);
    Ok(())
}

fn reset(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    for t in &ctx.state.thread_stats {
        t.slowlog.clear();
    }
    ctx.out.ok();
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    reply_lines(
        &mut ctx.out,
        &[
            "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
            "HELP",
            "    Prints this help.",
        ],
    );
    Ok(())
}
