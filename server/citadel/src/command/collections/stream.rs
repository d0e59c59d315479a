//! Stream commands (Redis 7.0): XADD XTRIM XDEL XSETID (`write`), XLEN
//! XRANGE XREVRANGE (`range`), XREAD and XREAD BLOCK (`read`), XINFO
//! STREAM (`info`); consumer groups: XGROUP (`xgroup`), XREADGROUP
//! (`readgroup`), XACK XPENDING (`ack`), XCLAIM XAUTOCLAIM (`claim`),
//! XINFO GROUPS and CONSUMERS (`info_groups`), over a group's pending
//! entries list (`pel`); read and written whole for DUMP and RESTORE
//! (`whole`). A stream is always a paged root
//! (`citadel_collections::stream`): metadata, a directory of pages of
//! entries and the groups; `edit` holds one in an update.

use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::table::{
    c, container, keyless, needs_subcommand, CommandDef, KEY1, NOKEYS, R, RF, W, WF, WM, WMF,
};

mod ack;
mod args;
mod claim;
mod edit;
mod info;
mod info_groups;
mod pel;
mod range;
mod read;
mod readgroup;
pub mod whole;
mod write;
mod xgroup;

const X: &str = "stream";

/// XREAD's and XREADGROUP's keys: the first half of what follows STREAMS.
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
    c("xreadgroup", -7, &["write", "blocking", "movablekeys"], NOKEYS, X, "5.0.0", "Return new entries from a stream using a consumer group, or access the history of the pending entries for a given consumer. Can block.", readgroup::xreadgroup).finding_keys(xread_keys),
    c("xack", -4, WF, KEY1, X, "5.0.0", "Marks a pending message as correctly processed, effectively removing it from the pending entries list of the consumer group. Return value of the command is the number of messages successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.", ack::xack),
    c("xpending", -3, R, KEY1, X, "5.0.0", "Return information and entries from a stream consumer group pending entries list, that are messages fetched but never acknowledged.", ack::xpending),
    c("xclaim", -6, WF, KEY1, X, "5.0.0", "Changes (or acquires) ownership of a message in a consumer group, as if the message was delivered to the specified consumer.", claim::xclaim),
    c("xautoclaim", -6, WF, KEY1, X, "6.2.0", "Changes (or acquires) ownership of messages in a consumer group, as if the messages were delivered to the specified consumer.", claim::xautoclaim),
    container("xgroup", -2, &[], X, "5.0.0", "A container for consumer groups commands", needs_subcommand, XGROUP),
    container("xinfo", -2, &[], X, "5.0.0", "A container for stream introspection commands", needs_subcommand, XINFO),
];

static XGROUP: &[CommandDef] = &[
    c(
        "xgroup|create",
        -5,
        WM,
        (2, 2, 1),
        X,
        "5.0.0",
        "Create a consumer group.",
        xgroup::create,
    ),
    c(
        "xgroup|setid",
        -5,
        W,
        (2, 2, 1),
        X,
        "5.0.0",
        "Set a consumer group to an arbitrary last delivered ID value.",
        xgroup::setid,
    ),
    c(
        "xgroup|destroy",
        4,
        W,
        (2, 2, 1),
        X,
        "5.0.0",
        "Destroy a consumer group.",
        xgroup::destroy,
    ),
    c(
        "xgroup|createconsumer",
        5,
        WM,
        (2, 2, 1),
        X,
        "6.2.0",
        "Create a consumer in a consumer group.",
        xgroup::createconsumer,
    ),
    c(
        "xgroup|delconsumer",
        5,
        W,
        (2, 2, 1),
        X,
        "5.0.0",
        "Delete a consumer from a consumer group.",
        xgroup::delconsumer,
    ),
    keyless(
        "xgroup|help",
        2,
        &["loading", "stale"],
        X,
        "5.0.0",
        "Show helpful text about the different subcommands",
        xgroup::help,
    ),
];

static XINFO: &[CommandDef] = &[
    c(
        "xinfo|groups",
        3,
        R,
        (2, 2, 1),
        X,
        "5.0.0",
        "List the consumer groups of a stream",
        info_groups::xinfo_groups,
    ),
    c(
        "xinfo|consumers",
        4,
        R,
        (2, 2, 1),
        X,
        "5.0.0",
        "List the consumers in a consumer group",
        info_groups::xinfo_consumers,
    ),
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

/// Notes that the running command made a consumer in a group of the
/// stream at `key` (XREADGROUP, XCLAIM, XAUTOCLAIM make the consumer they
/// name): its write of `key` publishes `xgroup-createconsumer`, as
/// Redis's does (`key_events::flush`). Only while stream events are on.
/// A transaction attempt that runs again after a conflict forgets its
/// notes (`ThreadCtx::drop_attempt_effects`).
pub(super) fn consumer_made(ctx: &mut Ctx<'_>, key: &[u8]) {
    if ctx.state.notify_flags() & citadel_settings::key_events::STREAM == 0 {
        return;
    }
    let thread = &mut *ctx.thread;
    let (tag, ns) = (thread.cache.change_tag(), thread.cache.namespace());
    thread.consumers_made.push((tag, ns, key.to_vec()));
}
