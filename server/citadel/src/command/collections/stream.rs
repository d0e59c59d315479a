//! Stream commands (Redis 7.0): XADD XTRIM XDEL XSETID (`write`), XLEN
//! XRANGE XREVRANGE (`range`), XREAD and XREAD BLOCK (`read`), XINFO
//! STREAM (`info`). A stream is always a paged root
//! (`citadel_collections::stream`): metadata and a directory of pages of
//! entries; `edit` holds one in an update. Consumer groups (XGROUP,
//! XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XINFO GROUPS and
//! CONSUMERS) are not in the table yet: they answer "unknown command".

use crate::command::args::Args;
use crate::command::table::{
    c, container, keyless, needs_subcommand, CommandDef, KEY1, NOKEYS, R, RF, W, WF, WMF,
};

mod args;
mod edit;
mod info;
mod range;
mod read;
mod write;

const X: &str = "stream";

/// XREAD's keys: the first half of what follows STREAMS.
fn xread_keys<'a>(args: Args<'a>, f: &mut dyn FnMut(&'a [u8])) {
    let Some(at) = (1..args.len()).find(|&i| args.is(i, "streams")) else {
        return;
    };
    let n = (args.len() - at - 1) / 2;
    (at + 1..at + 1 + n).for_each(|i| f(args.get(i)));
}

pub static COMMANDS: &[CommandDef] = &[
    c("xadd", -5, WMF, KEY1, X, "5.0.0", "Appends a new entry to a stream", write::xadd),
    c("xlen", 2, RF, KEY1, X, "5.0.0", "Return the number of entries in a stream", range::xlen),
    c("xrange", -4, R, KEY1, X, "5.0.0", "Return a range of elements in a stream, with IDs matching the specified IDs interval", range::xrange),
    c("xrevrange", -4, R, KEY1, X, "5.0.0", "Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE", range::xrevrange),
    c("xdel", -3, WF, KEY1, X, "5.0.0", "Removes the specified entries from the stream. Returns the number of items actually deleted, that may be different from the number of IDs passed in case certain IDs do not exist.", write::xdel),
    c("xtrim", -4, W, KEY1, X, "5.0.0", "Trims the stream to (approximately if '~' is passed) a certain size", write::xtrim),
    c("xread", -4, &["readonly", "blocking", "movablekeys"], NOKEYS, X, "5.0.0", "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block.", read::xread).finding_keys(xread_keys),
    c("xsetid", -3, WMF, KEY1, X, "5.0.0", "An internal command for replicating stream values", write::xsetid),
    container("xinfo", -2, &[], X, "5.0.0", "A container for stream introspection commands", needs_subcommand, XINFO),
];

static XINFO: &[CommandDef] = &[
    c(
        "xinfo|stream",
        -3,
        R,
        (2, 2, 1),
        X,
        "5.0.0",
        "Get information about a stream",
        info::xinfo_stream,
    ),
    keyless(
        "xinfo|help",
        2,
        &["loading", "stale"],
        X,
        "5.0.0",
        "Show helpful text about the different subcommands",
        info::xinfo_help,
    ),
];
