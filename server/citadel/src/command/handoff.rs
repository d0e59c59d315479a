//! Warm hand-off (`cluster-handoff yes`): after a membership change, a GET
//! that misses here on a slot this node took over within
//! `cluster-handoff-ms` is read from the slot's previous owner, which
//! still holds what it cached (until it evicts it). The client parks on
//! `Pending::Handoff` while the forwarder (`crate::forward`) asks the
//! previous owner `CLUSTER HANDOFF key`; [`settle`] stores the value here
//! with its remaining TTL, unless the key was written here meanwhile, and
//! answers it. Best effort: a previous owner that fails, times out or has
//! its circuit open makes the GET a plain miss (nil), never an error.
//!
//! A key written here since the change (`note_write`: every write
//! command, before it runs) is never handed off: the previous owner's copy
//! is older than what was written, or deleted, here.

use std::sync::atomic::{AtomicU64, Ordering};

use citadel_proto::cluster::key_slot;

use super::args::Args;
use super::context::{Ctx, Pending};
use super::error::{CmdError, CmdResult};
use super::table::CommandDef;
use super::value::reply_value;
use crate::forward::reply::{bulk, elements, integer};
use crate::forward::{encode_command, Job, Part, PartResult};

/// A GET of `key` missed here: reads it from the slot's previous owner
/// when the hand-off applies (the connection then waits: true).
pub fn start(ctx: &mut Ctx<'_>, key: &[u8]) -> bool {
    let state = ctx.state;
    let (Some(node), Some(forwarder)) = (state.cluster.get(), state.forwarder.get()) else {
        return false;
    };
    let Some(window) = node.handoff.window else {
        return false;
    };
    // A transaction or a script cannot wait.
    if ctx.thread.cache.in_txn() {
        return false;
    }
    let Some(view) = ctx.thread.cluster.as_mut() else {
        return false;
    };
    let topology = view.current();
    let Some(source) = topology.handoff_source(key_slot(key), window) else {
        return false;
    };
    if topology.written.marked(key) {
        return false;
    }
    let mut request = Vec::new();
    encode_command(&mut request, 3, [&b"CLUSTER"[..], b"HANDOFF", key]);
    let part = Part {
        addr: source.addr.clone(),
        request,
        replies: 1,
    };
    let id = ctx.thread.next_forward();
    ctx.conn.pending = Some(Pending::Handoff {
        id,
        key: key.into(),
    });
    // The reply is decoded here, whatever the client speaks: RESP2.
    forwarder.submit(Job {
        thread: ctx.thread.index,
        id,
        resp3: false,
        parts: vec![part],
    });
    true
}

/// What the previous owner answered.
enum Answer<'a> {
    /// The value and its remaining TTL in ms (None: no expiry).
    Value(&'a [u8], Option<u64>),
    Missing,
}

/// `[value, pttl]` or nil.
fn parse(reply: &[u8]) -> Option<Answer<'_>> {
    if matches!(reply, b"$-1\r\n" | b"*-1\r\n" | b"_\r\n") {
        return Some(Answer::Missing);
    }
    let items = elements(reply)?;
    let [value, pttl] = items.as_slice() else {
        return None;
    };
    let pttl = integer(pttl)?;
    Some(Answer::Value(bulk(value)?, u64::try_from(pttl).ok()))
}

/// The previous owner answered (or failed): stores the value here if the
/// key is still absent, and answers the parked GET.
pub fn settle(ctx: &mut Ctx<'_>, key: &[u8], results: Vec<PartResult>) -> CmdResult {
    let state = ctx.state;
    let Some(node) = state.cluster.get() else {
        ctx.out.null();
        return Ok(());
    };
    let counters = &node.handoff;
    let reply = match results.into_iter().next() {
        Some(Ok(replies)) => replies.into_iter().next(),
        Some(Err(e)) => {
            tracing::debug!("warm hand-off failed: {e}");
            None
        }
        None => None,
    };
    let answer = reply.as_deref().and_then(parse);
    let (value, ttl) = match answer {
        Some(Answer::Value(value, ttl)) => (value, ttl),
        Some(Answer::Missing) => return miss(ctx, &counters.misses),
        None => return miss(ctx, &counters.errors),
    };
    // A write here since the GET parked is newer (a deletion included):
    // it stays, and is answered.
    let written = ctx
        .thread
        .cluster
        .as_mut()
        .is_some_and(|view| view.current().written.marked(key));
    let cache = &mut ctx.thread.cache;
    let expire_at = ttl.map(|t| cache.now_ms() + t);
    let stored = (!written).then(|| {
        cache.update(&[key], |items, changes| {
            if items[0].is_some() {
                return Ok(false);
            }
            changes.put(0, &[value], expire_at).map(|_| true)
        })
    });
    match stored {
        // Stored, or not storable here (too large, out of memory): the
        // previous owner's value is the answer either way.
        Some(Ok(Ok(true)) | Ok(Err(_)) | Err(_)) => {
            counters.hits.fetch_add(1, Ordering::Relaxed);
            ctx.out.bulk(value);
        }
        // Written here meanwhile: what is here now.
        Some(Ok(Ok(false))) | None => {
            counters.misses.fetch_add(1, Ordering::Relaxed);
            let mark = ctx.out.buf.len();
            let out = &mut ctx.out;
            if cache
                .get(key, |item| {
                    out.buf.truncate(mark);
                    reply_value(out, item);
                })
                .is_none()
            {
                ctx.out.null();
            }
        }
    }
    Ok(())
}

/// A write command is about to run here: within the hand-off window, its
/// keys in slots that moved here are marked written (never handed off).
pub fn note_write(ctx: &mut Ctx<'_>, def: &CommandDef, args: Args<'_>) {
    let window = match ctx.state.cluster.get() {
        Some(node) => node.handoff.window,
        None => None,
    };
    let (Some(window), Some(view)) = (window, ctx.thread.cluster.as_mut()) else {
        return;
    };
    let topology = view.current();
    if topology.changed_at.is_none_or(|at| at.elapsed() > window) {
        return;
    }
    def.for_each_key(args, |key| {
        if topology.previous_owner(key_slot(key)).is_some() {
            topology.written.mark(key);
        }
    });
}

fn miss(ctx: &mut Ctx<'_>, counter: &AtomicU64) -> CmdResult {
    counter.fetch_add(1, Ordering::Relaxed);
    ctx.out.null();
    Ok(())
}

/// CLUSTER HANDOFF key: `[value, pttl]` (pttl -1: no expiry) or nil, from
/// this node's cache whichever node owns the key's slot now. For peers
/// only: the connection must have said CLUSTER NOPROXY, as the
/// forwarder's peer connections do.
pub fn serve(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if ctx.thread.cluster.is_none() {
        return Err(CmdError::ClusterDisabled);
    }
    if !ctx.conn.no_proxy {
        return Err(CmdError::Static(
            "ERR CLUSTER HANDOFF is for peer nodes (their connections say CLUSTER NOPROXY first)",
        ));
    }
    let key = args.get(2);
    let cache = &mut ctx.thread.cache;
    let now = cache.now_ms();
    let mark = ctx.out.buf.len();
    let out = &mut ctx.out;
    let found = cache.get(key, |item| {
        out.buf.truncate(mark);
        out.array(2);
        reply_value(out, item);
        let pttl = item
            .expire_at()
            .map_or(-1, |at| at.saturating_sub(now) as i64);
        out.int(pttl);
    });
    if found.is_none() {
        ctx.out.buf.truncate(mark);
        ctx.out.null();
    }
    Ok(())
}
