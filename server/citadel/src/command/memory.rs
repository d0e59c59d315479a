//! MEMORY USAGE key [SAMPLES n] | STATS | DOCTOR | MALLOC-STATS | PURGE |
//! HELP. USAGE is the item's footprint in the cache file (header, key,
//! value area, chunk segments of a large value, index entry); STATS uses
//! Redis's field names with the cache file's numbers.

use super::args::Args;
use super::context::{reply_lines, Ctx};
use super::error::{CmdError, CmdResult};
use super::table::{c, keyless, CommandDef, SUB_KEY};

const SV: &str = "server";

#[rustfmt::skip]
pub static SUBCOMMANDS: &[CommandDef] = &[
    c("memory|usage", -3, &["readonly"], SUB_KEY, SV, "4.0.0", "Estimates the memory usage of a key.", usage),
    keyless("memory|stats", 2, &[], SV, "4.0.0", "Returns details about memory usage.", stats),
    keyless("memory|doctor", 2, &[], SV, "4.0.0", "Outputs a memory problems report.", doctor),
    keyless("memory|malloc-stats", 2, &[], SV, "4.0.0", "Returns the allocator statistics.", malloc_stats),
    keyless("memory|purge", 2, &[], SV, "4.0.0", "Asks the allocator to release memory.", purge),
    keyless("memory|help", 2, &["loading", "stale"], SV, "4.0.0", "Returns helpful text about the different subcommands.", help),
];

fn usage(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    match args.len() {
        3 => {}
        // SAMPLES only matters for nested values; strings have none.
        5 if args.is(3, "samples") => {
            args.int(4)?;
        }
        _ => return Err(CmdError::Syntax),
    }
    // A paged collection counts its root and its pages.
    match super::collections::whole::stored_bytes(&mut ctx.thread.cache, args.get(2)) {
        Some(bytes) => ctx.out.int(bytes as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

/// A field of MEMORY STATS: an integer or a ratio.
enum Field {
    Int(u64),
    Ratio(f64),
}

fn stats(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let c = ctx.state.cache_stats();
    let rss = super::info::rss_bytes();
    let dataset = c.used_bytes.saturating_sub(c.index_bytes);
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    // The cache file is allocated once: no peak, no allocator of its own.
    let fields: [(&str, Field); 18] = [
        ("peak.allocated", Field::Int(c.used_bytes)),
        ("total.allocated", Field::Int(c.used_bytes)),
        ("startup.allocated", Field::Int(c.index_bytes)),
        ("replication.backlog", Field::Int(0)),
        ("clients.slaves", Field::Int(0)),
        ("clients.normal", Field::Int(0)),
        ("cluster.links", Field::Int(0)),
        ("aof.buffer", Field::Int(0)),
        ("lua.caches", Field::Int(0)),
        ("functions.caches", Field::Int(0)),
        ("overhead.total", Field::Int(c.index_bytes)),
        ("keys.count", Field::Int(c.keys)),
        (
            "keys.bytes-per-key",
            Field::Int(c.used_bytes / c.keys.max(1)),
        ),
        ("dataset.bytes", Field::Int(dataset)),
        (
            "dataset.percentage",
            Field::Ratio(100.0 * ratio(dataset, c.used_bytes)),
        ),
        ("peak.percentage", Field::Ratio(100.0)),
        ("allocator.resident", Field::Int(rss)),
        ("fragmentation", Field::Ratio(ratio(rss, c.used_bytes))),
    ];
    let out = &mut ctx.out;
    out.map(fields.len() + 1);
    for (i, (name, value)) in fields.iter().enumerate() {
        if i == 10 {
            // Redis puts the per-database overhead before overhead.total.
            out.bulk(b"db.0");
            out.map(2);
            out.bulk(b"overhead.hashtable.main");
            out.int(c.index_bytes as i64);
            out.bulk(b"overhead.hashtable.expires");
            out.int(0);
        }
        out.bulk(name.as_bytes());
        match value {
            Field::Int(n) => out.int(*n as i64),
            Field::Ratio(r) => out.double(*r),
        }
    }
    Ok(())
}

fn doctor(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let c = ctx.state.cache_stats();
    let text = format!(
        "Sam, I detected no memory issues in this instance: the cache file is {} bytes, \
         {} in use{}, and it never grows; full segments are evicted, whole, to make room.",
        c.file_bytes,
        c.used_bytes,
        c.memory_cap
            .map_or(String::new(), |cap| format!(" under a cap of {cap}"))
    );
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

fn malloc_stats(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    ctx.out
        .verbatim(b"Stats not supported for the current allocator");
    Ok(())
}

/// Nothing to purge: values live in the mapped cache file.
fn purge(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    ctx.out.ok();
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    reply_lines(
        &mut ctx.out,
        &[
            "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
            "HELP",
            "    Prints this help.",
        ],
    );
    Ok(())
}
