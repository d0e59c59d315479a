//! Cluster mode for the RPC front door: each keyed operation is checked
//! against the slot map exactly as RESP's `command::redirect` checks a
//! command (`Topology::route` of its keys' one slot). Another node's slot
//! is refused with a `Moved` error naming the slot and that node's RPC
//! address (or, in proxy mode, forwarded: `rpc/forward.rs`); an isolated
//! node answers `ClusterDown`; keys in several slots `CrossSlot` (split
//! over nodes in proxy mode: `rpc/split.rs`). Off (no
//! `ThreadView`), nothing here runs.

use citadel_cluster::{KeySlots, Route};
use citadel_proto::rpc::Op;

use super::RpcError;
use crate::command::mark_written;
use crate::state::ServerState;
use crate::thread::ThreadCtx;

/// Where an operation runs.
pub enum Routed {
    /// Here (also every operation outside cluster mode, and keyless ones).
    Local,
    /// On the member whose RESP listener is `resp` (what proxy mode
    /// forwards to); `refusal` is the `Moved` error otherwise answered.
    Elsewhere { resp: String, refusal: RpcError },
}

/// Where `op` runs, or why nowhere.
pub fn route(thread: &mut ThreadCtx, op: &Op<'_>) -> Result<Routed, RpcError> {
    let Some(view) = thread.cluster.as_mut() else {
        return Ok(Routed::Local);
    };
    let mut slots = KeySlots::default();
    for_each_key(op, |key| slots.add(key));
    let Some(slot) = slots.slot().map_err(|_| RpcError::CrossSlot)? else {
        return Ok(Routed::Local);
    };
    match view.current().route(slot) {
        Route::Local => {}
        Route::Moved(owner) => {
            return Ok(Routed::Elsewhere {
                resp: owner.addr.clone(),
                refusal: RpcError::Moved {
                    slot,
                    addr: owner.rpc.clone().unwrap_or_default(),
                },
            })
        }
        Route::Down => return Err(RpcError::ClusterDown),
    }
    Ok(Routed::Local)
}

/// `op` is about to run here: if it writes, its keys are noted for the
/// warm hand-off (as RESP's writes are). Not when routed: a write that
/// reads (INCR) hands off first, then runs and is noted.
pub fn note_write(state: &ServerState, thread: &mut ThreadCtx, op: &Op<'_>) {
    if is_write(op) {
        mark_written(state, thread, |mark| for_each_key(op, mark));
    }
}

/// Calls `f` with each key `op` names (none for keyless operations; a
/// batch's operations are routed one by one).
pub fn for_each_key<'a>(op: &Op<'a>, mut f: impl FnMut(&'a [u8])) {
    match op {
        Op::Get { key }
        | Op::Set { key, .. }
        | Op::Expire { key, .. }
        | Op::Ttl { key }
        | Op::Incr { key, .. } => f(key),
        Op::Delete(keys) | Op::Exists(keys) | Op::MGet(keys) => keys.iter().for_each(f),
        Op::MSet(pairs) => pairs.iter().for_each(|(k, _)| f(k)),
        Op::Scan { .. } | Op::Call { .. } | Op::Stats { .. } | Op::Hello { .. } | Op::Batch(_) => {}
    }
}

pub fn is_write(op: &Op<'_>) -> bool {
    matches!(
        op,
        Op::Set { .. } | Op::Delete(_) | Op::Expire { .. } | Op::Incr { .. } | Op::MSet(_)
    )
}
