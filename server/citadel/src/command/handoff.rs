//! Warm hand-off (`cluster-handoff yes`): after a membership change, a
//! command that reads a key missing here, on a slot this node took over
//! within `cluster-handoff-ms`, first reads that key from the slot's
//! previous owner, which still holds what it cached (until it evicts it).
//! Any keyed read hands off, and so do writes that read (INCR continues
//! from the previous owner's count), scripts' declared KEYS and EXEC's
//! queue (`handoff_keys.rs`). Before such a command runs (`park`, called
//! by dispatch) the connection parks on `Pending::Handoff` while the
//! forwarder (`crate::forward`) asks each previous owner `CLUSTER
//! HANDOFF key` per key (one pipelined part per owner); [`settle`]
//! restores each answer here (its DUMP payload and remaining TTL,
//! `handoff_wire.rs`) unless the key exists here now or was written here
//! since the change, then the command, left unconsumed, runs unchanged.
//! Best effort: a previous owner that fails, times out or has its circuit
//! open leaves its keys missing, never an error.
//!
//! A key written here since the change (`note_write`: every write
//! command, before it runs) is never handed off: the previous owner's copy
//! is older than what was written, or deleted, here.

use std::sync::atomic::{AtomicU64, Ordering};

use citadel_cluster::Route;
use citadel_proto::cluster::key_slot;

use super::args::Args;
use super::context::{ConnState, Ctx, Pending};
use super::dump::restore_absent;
use super::error::CmdResult;
use super::handoff_keys::for_each_read_key;
use super::handoff_wire::{parse, Answer};
use super::load_plan::HandoffPlan;
use super::table::CommandDef;
use crate::cluster::Handoff;
use crate::forward::{encode_command, Job, Part, PartResult};
use crate::state::ServerState;
use crate::thread::ThreadCtx;

/// The previous owner of `key`'s slot (its RESP address), if the slot
/// moved here within the window from a member still in the map and the
/// key was not written here since. Not
/// for a slot served elsewhere (an EXEC's queue forwarded or refused).
fn source_of(state: &ServerState, thread: &mut ThreadCtx, key: &[u8]) -> Option<String> {
    let window = state.cluster.get()?.handoff.window?;
    let now = thread.cache.now_ms();
    let topology = thread.cluster.as_mut()?.current();
    let slot = key_slot(key);
    if !matches!(topology.route(slot), Route::Local) {
        return None;
    }
    let owner = topology.handoff_source(slot, window, now)?;
    (!topology.written.marked(key)).then(|| owner.addr.clone())
}

/// Whether this node is within a hand-off window at all (the cheap test
/// before looking at keys).
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

/// Before `def` runs here (cluster mode, not queued, not a rerun): if a
/// key it reads is missing here and its slot's previous owner may hold
/// it, asks for those keys and parks the connection (true); the command
/// is not consumed and runs again once [`settle`] restored them.
pub fn park(
    state: &ServerState,
    thread: &mut ThreadCtx,
    conn: &mut ConnState,
    def: &CommandDef,
    args: Args<'_>,
) -> bool {
    if !in_window(state, thread) {
        return false;
    }
    let Some(forwarder) = state.forwarder.get() else {
        return false;
    };
    let mut asks = Asks::default();
    for_each_read_key(def, args, &conn.tx, &mut |key| {
        asks.ask_if_missing(state, thread, key)
    });
    if asks.is_empty() {
        return false;
    }
    let id = thread.next_forward();
    let Asked {
        parts,
        positions,
        keys,
    } = asks.into_parts();
    conn.pending = Some(Pending::Handoff {
        id,
        wait: Box::new(HandoffPlan {
            keys,
            parts: positions,
        }),
    });
    forwarder.submit(Job {
        thread: thread.index,
        id,
        // The replies are decoded here, whatever the client speaks: RESP2.
        resp3: false,
        parts,
    });
    true
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

    /// Asks `key`'s previous owner for it unless it is asked already, is
    /// here, or its slot has no previous owner within the window (the RESP
    /// and RPC hand-offs' common step).
    pub fn ask_if_missing(&mut self, state: &ServerState, thread: &mut ThreadCtx, key: &[u8]) {
        if self.keys.iter().any(|k| **k == *key) || thread.cache.peek(key, |_| ()).is_some() {
            return;
        }
        if let Some(addr) = source_of(state, thread, key) {
            self.ask(addr, key);
        }
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
                tracked: None,
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

/// Every previous owner answered (or failed): their values are restored
/// here, and the parked command, not consumed, runs again as it came
/// (without a second hand-off).
pub fn settle(ctx: &mut Ctx<'_>, wait: HandoffPlan, results: Vec<PartResult>) -> CmdResult {
    let HandoffPlan { keys, parts } = wait;
    let replies = replies_by_key(keys.len(), &parts, results);
    for (key, reply) in keys.iter().zip(&replies) {
        settle_answer(ctx.state, ctx.thread, key, reply.as_deref());
    }
    ctx.conn.handed_off = true;
    if ctx.thread.cache.has_changes() {
        // The restores' keyspace events and invalidations, now (the
        // command's own follow when it runs).
        super::key_events::flush(ctx.state, ctx.thread, None, None);
    }
    Ok(())
}

/// One key's answer from its previous owner (`reply`; None: the part
/// failed): restored here unless the key exists here or was written here
/// meanwhile, and counted.
pub fn settle_answer(
    state: &ServerState,
    thread: &mut ThreadCtx,
    key: &[u8],
    reply: Option<&[u8]>,
) {
    let Some(Handoff {
        hits,
        misses,
        errors,
        ..
    }) = state.cluster.get().map(|node| &node.handoff)
    else {
        return;
    };
    let (payload, ttl) = match parse(reply) {
        Answer::Value(payload, ttl) => (payload, ttl),
        Answer::Missing => return count(misses),
        Answer::NotOwner => {
            if let Some(view) = thread.cluster.as_mut() {
                let topology = view.current();
                let source = topology.previous_owner(key_slot(key));
                if let Some(i) = source.and_then(|m| topology.map.index_of(&m.id)) {
                    topology.dry.mark(i);
                }
            }
            return count(misses);
        }
        Answer::Failed => return count(errors),
    };
    // A write here since the command parked is newer (a deletion
    // included): it stays.
    let written = thread
        .cluster
        .as_mut()
        .is_some_and(|view| view.current().written.marked(key));
    if written {
        return count(misses);
    }
    let cache = &mut thread.cache;
    let expire_at = ttl.map(|t| cache.now_ms() + t);
    match restore_absent(cache, key, payload, expire_at) {
        Ok(true) => count(hits),
        Ok(false) => count(misses),
        // Not storable here (too large, out of memory, a bad payload).
        Err(e) => {
            tracing::debug!("warm hand-off of a key not restored: {e:?}");
            count(errors)
        }
    }
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
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
