//! CLUSTER HANDOFF, both ends: the previous owner's answer (`serve`) and
//! the new owner's reading of it (`parse`). The value travels as Redis's
//! DUMP payload (`dump.rs`: RDB encoding with version and checksum), so a
//! key of any type (string, hash, list, set, sorted set) is handed off
//! the same way, with its remaining TTL.

use citadel_proto::cluster::key_slot;

use super::args::Args;
use super::context::Ctx;
use super::dump::{dump_key, Dumped};
use super::error::{CmdError, CmdResult};
use crate::forward::reply::{bulk, elements, integer};

/// What the previous owner answered for one key.
pub enum Answer<'a> {
    /// The DUMP payload and the remaining TTL in ms (None: no expiry).
    Value(&'a [u8], Option<u64>),
    Missing,
    /// The node never owned the slot (a cold start's first view): not
    /// asked again while this map is in force.
    NotOwner,
    /// The previous owner failed, or its reply is not one.
    Failed,
}

/// CLUSTER HANDOFF's answer from a node that has not owned the key's slot.
const NOT_OWNER: &str = "NOTOWNER this node has not owned the key's slot lately";

/// `[payload, pttl]`, nil or -NOTOWNER (None: no reply, the part failed).
pub fn parse(reply: Option<&[u8]>) -> Answer<'_> {
    let Some(reply) = reply else {
        return Answer::Failed;
    };
    if matches!(reply, b"$-1\r\n" | b"*-1\r\n" | b"_\r\n") {
        return Answer::Missing;
    }
    if reply
        .strip_prefix(b"-")
        .is_some_and(|e| e.starts_with(NOT_OWNER.as_bytes()))
    {
        return Answer::NotOwner;
    }
    let value = elements(reply).and_then(|items| match items.as_slice() {
        [payload, pttl] => Some((bulk(payload)?, integer(pttl)?)),
        _ => None,
    });
    match value {
        Some((payload, pttl)) => Answer::Value(payload, u64::try_from(pttl).ok()),
        None => Answer::Failed,
    }
}

/// CLUSTER HANDOFF key: `[payload, pttl]` (DUMP's payload; pttl -1: no
/// expiry) or nil, from this node's cache whichever node owns the key's
/// slot now, if it owned it in the map in force or the one before (else
/// `-NOTOWNER`). For peers only: the connection must have said CLUSTER
/// NOPROXY, as the forwarder's peer connections do.
pub fn serve(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ctx.peers_only(
        "ERR CLUSTER HANDOFF is for peer nodes (their connections say CLUSTER NOPROXY first)",
    )?;
    let key = args.get(2);
    let owned = ctx
        .thread
        .cluster
        .as_mut()
        .map(|view| view.current().owned_lately(key_slot(key)));
    if owned == Some(false) {
        return Err(CmdError::Static(NOT_OWNER));
    }
    let cache = &mut ctx.thread.cache;
    let now = cache.now_ms();
    match dump_key(cache, key, &mut ctx.conn.scratch)? {
        Some(Dumped { payload, expire_at }) => {
            ctx.out.array(2);
            ctx.out.bulk(&payload);
            let pttl = expire_at.map_or(-1, |at| at.saturating_sub(now) as i64);
            ctx.out.int(pttl);
        }
        None => ctx.out.null(),
    }
    Ok(())
}
