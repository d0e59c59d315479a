//! The warm hand-off (`command/handoff.rs`) for the RPC front door: an
//! operation run here that reads a key missing here, on a slot that moved
//! here within `cluster-handoff-ms`, first reads that key from the slot's
//! previous owner, as the RESP commands do. Every operation that reads
//! hands off: GET, MGET, EXISTS, TTL, INCR (it continues from the
//! previous owner's count), EXPIRE, SET NX/XX, and each such operation of
//! a batch run here; pure overwrites (plain SET, MSET, DELETE) do not.
//! The request waits on `WaitKey::Forward` (the forwarder's `CLUSTER
//! HANDOFF` parts) with its frame kept; when they come back each value is
//! restored here with its remaining TTL unless the key exists or was
//! written here meanwhile, and the request, decoded again, is routed and
//! runs unchanged (`RpcSession::handoff_finished`), without a second
//! hand-off. A proxy-split EXISTS or MGET asks for its local piece's keys
//! (`Asks::ask_if_missing` skips other nodes' slots) before it splits.

use citadel_proto::rpc::{Condition, FrameHeader, Op};

use super::route::{self, Routed};
use crate::command::{handoff_replies, in_handoff_window, settle_handoff, HandoffAsks};
use crate::forward::PartResult;
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::wait::WaitKey;

/// A request waiting for previous owners.
pub struct RpcHandoff {
    /// The request's frame, to decode it again when the answers come.
    pub header: FrameHeader,
    pub body: Vec<u8>,
    keys: Vec<Box<[u8]>>,
    /// Per part, the positions in `keys` of the keys it answers.
    parts: Vec<Vec<usize>>,
}

/// Starts the hand-off of `op` (run here; its frame `header`, `body`) if
/// a key it reads is missing here and a previous owner may hold it; None:
/// run it as usual. Outside a hand-off window this is a couple of loads.
pub fn start(
    state: &ServerState,
    thread: &mut ThreadCtx,
    (header, body): (&FrameHeader, &[u8]),
    op: &Op<'_>,
) -> Option<(WaitKey, Box<RpcHandoff>)> {
    if !in_handoff_window(state, thread) {
        return None;
    }
    let forwarder = state.forwarder.get()?;
    let mut asks = HandoffAsks::default();
    let mut ask = |thread: &mut ThreadCtx, key: &[u8]| asks.ask_if_missing(state, thread, key);
    match op {
        Op::Batch(batch) => {
            for op in batch.iter().flatten() {
                // Only the operations a batch runs here (the others are
                // forwarded or refused).
                if matches!(route::route(thread, &op), Ok(Routed::Local)) {
                    for_each_read_key(&op, |key| ask(thread, key));
                }
            }
        }
        op => for_each_read_key(op, |key| ask(thread, key)),
    }
    if asks.is_empty() {
        return None;
    }
    let asked = asks.into_parts();
    let key = super::forward::submit(forwarder, thread, asked.parts);
    let wait = RpcHandoff {
        header: *header,
        body: body.to_vec(),
        keys: asked.keys,
        parts: asked.positions,
    };
    Some((key, Box::new(wait)))
}

/// Calls `f` with each key whose previous value `op` reads (an overwrite
/// reads none: plain SET, MSET, DELETE).
pub fn for_each_read_key<'a>(op: &Op<'a>, mut f: impl FnMut(&'a [u8])) {
    match op {
        Op::Set { condition, .. } if *condition == Condition::Always => {}
        Op::Delete(_) | Op::MSet(_) => {}
        op => route::for_each_key(op, &mut f),
    }
}

/// The previous owners answered (or failed): each value restored here
/// (see the module documentation); the request then runs here.
pub fn settle(
    state: &ServerState,
    thread: &mut ThreadCtx,
    wait: &RpcHandoff,
    results: Vec<PartResult>,
) {
    let replies = handoff_replies(wait.keys.len(), &wait.parts, results);
    for (key, reply) in wait.keys.iter().zip(&replies) {
        settle_handoff(state, thread, key, reply.as_deref());
    }
}
