//! Warm hand-off (`cluster-handoff yes`): after a membership change, a GET
//! or MGET that misses here on a slot this node took over within
//! `cluster-handoff-ms` reads the missing keys from the slot's previous
//! owner, which still holds what it cached (until it evicts it). The
//! client parks on `Pending::Handoff` while the forwarder
//! (`crate::forward`) asks each previous owner `CLUSTER HANDOFF key` per
//! key (one pipelined part per owner); [`settle`] stores each value here
//! with its remaining TTL, unless the key was written here meanwhile, and
//! writes the reply. Best effort: a previous owner that fails, times out
//! or has its circuit open makes its keys plain misses (nil), never an
//! error.
//!
//! A key written here since the change (`note_write`: every write
//! command, before it runs) is never handed off: the previous owner's copy
//! is older than what was written, or deleted, here.

use std::sync::atomic::{AtomicU64, Ordering};

use citadel_proto::cluster::key_slot;
use citadel_resp::Reply;

use super::args::Args;
use super::context::{Ctx, Pending};
use super::error::{CmdError, CmdResult};
use super::load_plan::{HandoffPlan, Plan, Slot};
use super::table::CommandDef;
use super::value::reply_value;
use crate::cluster::Handoff;
use crate::forward::reply::{bulk, elements, integer};
use crate::forward::{encode_command, Job, Part, PartResult};
use crate::state::ServerState;
use crate::thread::ThreadCtx;

/// The previous owner a miss of `key` is read from, if the hand-off
/// applies: cluster mode with `cluster-handoff yes`, not in a transaction,
/// a script or a split command's local piece (they cannot wait), and
/// [`source_of`].
fn source(ctx: &mut Ctx<'_>, key: &[u8]) -> Option<String> {
    if ctx.thread.cache.in_txn() || ctx.conn.cannot_wait {
        return None;
    }
    source_of(ctx.state, ctx.thread, key)
}

/// The previous owner of `key`'s slot (its RESP address), if the slot
/// moved here within the window from a member still in the map and the
/// key was not written here since (shared with the RPC's hand-off).
pub fn source_of(state: &ServerState, thread: &mut ThreadCtx, key: &[u8]) -> Option<String> {
    let window = state.cluster.get()?.handoff.window?;
    let now = thread.cache.now_ms();
    let topology = thread.cluster.as_mut()?.current();
    let owner = topology.handoff_source(key_slot(key), window, now)?;
    (!topology.written.marked(key)).then(|| owner.addr.clone())
}

/// Whether this node is within a hand-off window at all (the RPC's cheap
/// test before it looks at keys).
pub fn in_window(state: &ServerState, thread: &mut ThreadCtx) -> bool {
    let Some(window) = state.cluster.get().and_then(|node| node.handoff.window) else {
        return false;
    };
    let now = thread.cache.now_ms();
    thread
        .cluster
        .as_mut()
        .is_some_and(|view| view.current().in_handoff_window(window, now))
}

/// The keys asked of previous owners, grouped into one pipelined part
/// per owner (`CLUSTER HANDOFF key` each).
#[derive(Default)]
pub struct Asks {
    /// (owner's address, its requests, the positions in `keys` it answers)
    parts: Vec<(String, Vec<u8>, Vec<usize>)>,
    pub keys: Vec<Box<[u8]>>,
}

impl Asks {
    /// Asks `addr` for `key`.
    pub fn ask(&mut self, addr: String, key: &[u8]) {
        let i = match self.parts.iter().position(|(a, _, _)| *a == addr) {
            Some(i) => i,
            None => {
                self.parts.push((addr, Vec::new(), Vec::new()));
                self.parts.len() - 1
            }
        };
        let (_, request, positions) = &mut self.parts[i];
        encode_command(request, 3, [&b"CLUSTER"[..], b"HANDOFF", key]);
        positions.push(self.keys.len());
        self.keys.push(key.into());
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The forwarder's parts, and for each the positions of the keys it
    /// answers.
    pub fn into_parts(self) -> Asked {
        let mut parts = Vec::with_capacity(self.parts.len());
        let mut positions = Vec::with_capacity(self.parts.len());
        for (addr, request, keys) in self.parts {
            parts.push(Part {
                addr,
                request,
                replies: keys.len(),
            });
            positions.push(keys);
        }
        Asked {
            parts,
            positions,
            keys: self.keys,
        }
    }
}

/// [`Asks`] as the forwarder's job wants them.
pub struct Asked {
    pub parts: Vec<Part>,
    /// Per part, the positions in `keys` of the keys it answers.
    pub positions: Vec<Vec<usize>>,
    pub keys: Vec<Box<[u8]>>,
}

/// Each asked key's reply (None: its owner's part failed), from the
/// parts' results.
pub fn replies_by_key(
    keys: usize,
    positions: &[Vec<usize>],
    results: Vec<PartResult>,
) -> Vec<Option<Vec<u8>>> {
    let mut replies: Vec<Option<Vec<u8>>> = vec![None; keys];
    for (positions, result) in positions.iter().zip(results) {
        match result {
            Ok(answers) => {
                for (&k, reply) in positions.iter().zip(answers) {
                    replies[k] = Some(reply);
                }
            }
            Err(e) => tracing::debug!("warm hand-off failed: {e}"),
        }
    }
    replies
}

/// Whether a miss of `key` would be handed off (MGET's cheap test).
pub fn applies(ctx: &mut Ctx<'_>, key: &[u8]) -> bool {
    source(ctx, key).is_some()
}

/// GET (`array` false, one key) or MGET of `keys`, one at least missing
/// here with a previous owner (`applies`): each key is read again, the
/// missing ones with a previous owner are asked for and the connection
/// parks; if none is after all, the reply is written now.
pub fn start(ctx: &mut Ctx<'_>, keys: Args<'_>, array: bool) {
    let mut plan = Plan {
        array,
        slots: Vec::with_capacity(keys.len()),
        rendered: Vec::new(),
        getex: None,
    };
    let mut asks = Asks::default();
    for key in keys.iter() {
        let start = plan.rendered.len();
        let mut out = Reply::new(&mut plan.rendered, ctx.conn.resp3);
        let found = ctx.thread.cache.get(key, |item| {
            out.buf.truncate(start);
            reply_value(&mut out, item);
        });
        let from = match found {
            Some(()) => None,
            None => source(ctx, key),
        };
        let Some(addr) = from else {
            if found.is_none() {
                Reply::new(&mut plan.rendered, ctx.conn.resp3).null();
            }
            plan.slots.push(Slot::Rendered(start..plan.rendered.len()));
            continue;
        };
        asks.ask(addr, key);
        plan.slots.push(Slot::Load);
    }
    let forwarder = ctx.state.forwarder.get();
    let Some(forwarder) = forwarder.filter(|_| !asks.is_empty()) else {
        render(&mut ctx.out, &plan, &[]);
        return;
    };
    let id = ctx.thread.next_forward();
    let Asked {
        parts,
        positions,
        keys: waiting,
    } = asks.into_parts();
    let job = Job {
        thread: ctx.thread.index,
        id,
        // The replies are decoded here, whatever the client speaks: RESP2.
        resp3: false,
        parts,
    };
    ctx.conn.pending = Some(Pending::Handoff {
        id,
        wait: Box::new(HandoffPlan {
            plan,
            keys: waiting,
            parts: positions,
        }),
    });
    forwarder.submit(job);
}

/// What the previous owner answered for one key.
enum Answer<'a> {
    /// The value and its remaining TTL in ms (None: no expiry).
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

/// `[value, pttl]` or nil.
fn parse(reply: &[u8]) -> Answer<'_> {
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
        [value, pttl] => Some((bulk(value)?, integer(pttl)?)),
        _ => None,
    });
    match value {
        Some((value, pttl)) => Answer::Value(value, u64::try_from(pttl).ok()),
        None => Answer::Failed,
    }
}

/// Every previous owner answered (or failed): stores the values here and
/// writes the parked command's reply.
pub fn settle(ctx: &mut Ctx<'_>, wait: HandoffPlan, results: Vec<PartResult>) -> CmdResult {
    let HandoffPlan { plan, keys, parts } = wait;
    let replies = replies_by_key(keys.len(), &parts, results);
    let mut answered = Vec::with_capacity(keys.len());
    for (key, reply) in keys.iter().zip(&replies) {
        let mut buf = Vec::new();
        let mut out = Reply::new(&mut buf, ctx.conn.resp3);
        match settle_answer(ctx.state, ctx.thread, key, reply.as_deref()) {
            Settled::Handed(value) => out.bulk(value),
            Settled::Here => {
                let mark = out.buf.len();
                let found = ctx.thread.cache.get(key, |item| {
                    out.buf.truncate(mark);
                    reply_value(&mut out, item);
                });
                if found.is_none() {
                    out.null();
                }
            }
            Settled::Missing => out.null(),
        }
        answered.push(buf);
    }
    render(&mut ctx.out, &plan, &answered);
    Ok(())
}

/// The reply: the keys rendered at once, each waiting one's answer.
fn render(out: &mut Reply<'_>, plan: &Plan, answered: &[Vec<u8>]) {
    if plan.array {
        out.array(plan.slots.len());
    }
    let mut next = answered.iter();
    for slot in &plan.slots {
        let bytes = match slot {
            Slot::Rendered(r) => Some(&plan.rendered[r.clone()]),
            Slot::Load => next.next().map(|b| b.as_slice()),
        };
        match bytes {
            Some(bytes) => out.buf.extend_from_slice(bytes),
            None => out.null(),
        }
    }
}

/// What one key's hand-off came to.
pub enum Settled<'a> {
    /// The previous owner's value (stored here too, where it could be).
    Handed(&'a [u8]),
    /// Written here meanwhile: what is here now is the answer.
    Here,
    /// No value anywhere (or the previous owner failed).
    Missing,
}

/// One key's answer from its previous owner (`reply`; None: the part
/// failed): stored here unless written here meanwhile, and counted.
pub fn settle_answer<'a>(
    state: &ServerState,
    thread: &mut ThreadCtx,
    key: &[u8],
    reply: Option<&'a [u8]>,
) -> Settled<'a> {
    let Some(Handoff {
        hits,
        misses,
        errors,
        ..
    }) = state.cluster.get().map(|node| &node.handoff)
    else {
        return Settled::Missing;
    };
    let (value, ttl) = match reply.map_or(Answer::Failed, parse) {
        Answer::Value(value, ttl) => (value, ttl),
        Answer::Missing => return miss(misses),
        Answer::NotOwner => {
            if let Some(view) = thread.cluster.as_mut() {
                let topology = view.current();
                let source = topology.previous_owner(key_slot(key));
                if let Some(i) = source.and_then(|m| topology.map.index_of(&m.id)) {
                    topology.dry.mark(i);
                }
            }
            return miss(misses);
        }
        Answer::Failed => return miss(errors),
    };
    // A write here since the command parked is newer (a deletion
    // included): it stays, and is answered.
    let written = thread
        .cluster
        .as_mut()
        .is_some_and(|view| view.current().written.marked(key));
    let cache = &mut thread.cache;
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
            hits.fetch_add(1, Ordering::Relaxed);
            Settled::Handed(value)
        }
        Some(Ok(Ok(false))) | None => {
            misses.fetch_add(1, Ordering::Relaxed);
            Settled::Here
        }
    }
}

fn miss<'a>(counter: &AtomicU64) -> Settled<'a> {
    counter.fetch_add(1, Ordering::Relaxed);
    Settled::Missing
}

/// A write command is about to run here: within the hand-off window, its
/// keys in slots that moved here are marked written (never handed off).
pub fn note_write(ctx: &mut Ctx<'_>, def: &CommandDef, args: Args<'_>) {
    mark_written(ctx.state, ctx.thread, |mark| def.for_each_key(args, mark));
}

/// A write about to run here on the keys `keys` calls its argument with
/// (a RESP command's or an RPC operation's): within the hand-off window,
/// those in slots that moved here are marked written.
pub fn mark_written(
    state: &ServerState,
    thread: &mut ThreadCtx,
    keys: impl FnOnce(&mut dyn FnMut(&[u8])),
) {
    if !in_window(state, thread) {
        return;
    }
    let Some(view) = thread.cluster.as_mut() else {
        return;
    };
    let topology = view.current();
    keys(&mut |key| {
        if topology.previous_owner(key_slot(key)).is_some() {
            topology.written.mark(key);
        }
    });
}

/// CLUSTER HANDOFF key: `[value, pttl]` (pttl -1: no expiry) or nil, from
/// this node's cache whichever node owns the key's slot now, if it owned
/// it in the map in force or the one before (else `-NOTOWNER`). For peers
/// only: the connection must have said CLUSTER NOPROXY, as the
/// forwarder's peer connections do.
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
