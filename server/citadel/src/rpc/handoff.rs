//! The warm hand-off (`command/handoff.rs`) for the RPC front door: a GET
//! or MGET run here whose keys miss on a slot that moved here within
//! `cluster-handoff-ms` reads them from the slot's previous owner, as the
//! RESP commands do. The request waits on `WaitKey::Forward` (the
//! forwarder's `CLUSTER HANDOFF` parts) and is answered when they come
//! back: each handed-off value is restored here with its remaining TTL
//! unless the key exists or was written here meanwhile, then every key is
//! read here. Batches and the other operations (EXISTS, TTL, INCR,
//! EXPIRE), which this front door runs by its own dispatch, do not hand
//! off.

use citadel_cache::{ItemRef, ValueKind};
use citadel_proto::rpc::{Body, Method, Op, ReplyWriter};

use super::RpcError;
use crate::command::{
    get_string, handoff_replies, handoff_source, in_handoff_window, settle_handoff, HandoffAsks,
};
use crate::forward::PartResult;
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::wait::WaitKey;

/// A GET or MGET waiting for previous owners.
pub struct RpcHandoff {
    method: Method,
    /// Per key of the request: Some(i) = the `i`th asked key, None = read
    /// here when the answers are in.
    slots: Vec<Option<usize>>,
    keys: Vec<Box<[u8]>>,
    /// Every key of the request, in order (the ones read here too).
    all: Vec<Box<[u8]>>,
    parts: Vec<Vec<usize>>,
}

/// Starts the hand-off of `op` (run here) if it is a GET or MGET with a
/// key missing here that a previous owner may hold; None: run it as usual.
/// Outside a hand-off window this is a couple of loads.
pub fn start(
    state: &ServerState,
    thread: &mut ThreadCtx,
    op: &Op<'_>,
) -> Option<(WaitKey, Box<RpcHandoff>)> {
    if !matches!(op, Op::Get { .. } | Op::MGet(_)) || !in_handoff_window(state, thread) {
        return None;
    }
    let (method, keys): (Method, Vec<&[u8]>) = match op {
        Op::Get { key } => (Method::Get, vec![key]),
        Op::MGet(keys) => (Method::MGet, keys.iter().collect()),
        _ => return None,
    };
    let forwarder = state.forwarder.get()?;
    let mut asks = HandoffAsks::default();
    let mut slots = Vec::with_capacity(keys.len());
    for key in &keys {
        let here = thread.cache.get(key, |_| ()).is_some();
        let source = (!here)
            .then(|| handoff_source(state, thread, key))
            .flatten();
        slots.push(source.map(|addr| {
            asks.ask(addr, key);
            asks.keys.len() - 1
        }));
    }
    if asks.is_empty() {
        return None;
    }
    let asked = asks.into_parts();
    let key = super::forward::submit(forwarder, thread, asked.parts);
    let wait = RpcHandoff {
        method,
        slots,
        keys: asked.keys,
        all: keys.into_iter().map(Box::from).collect(),
        parts: asked.positions,
    };
    Some((key, Box::new(wait)))
}

/// The previous owners answered (or failed): the request's answer.
pub fn finished(
    state: &ServerState,
    thread: &mut ThreadCtx,
    writer: &mut ReplyWriter,
    wait: RpcHandoff,
    results: Vec<PartResult>,
) -> Result<Body, RpcError> {
    let replies = handoff_replies(wait.keys.len(), &wait.parts, results);
    let mut values: Vec<Option<Vec<u8>>> = Vec::with_capacity(wait.all.len());
    for (key, slot) in wait.all.iter().zip(&wait.slots) {
        if let Some(i) = *slot {
            settle_handoff(state, thread, key, replies[i].as_deref());
        }
        values.push(read_here(thread, key, wait.method)?);
    }
    Ok(match wait.method {
        Method::Get => writer.value(values.pop().flatten().as_deref()),
        _ => writer.values(values.iter().map(Option::as_deref)),
    })
}

/// What `key` holds here now: GET's WRONGTYPE on a collection, MGET's
/// no value (as Redis's MGET).
fn read_here(
    thread: &mut ThreadCtx,
    key: &[u8],
    method: Method,
) -> Result<Option<Vec<u8>>, RpcError> {
    let copy = |item: &ItemRef<'_>| {
        let mut value = Vec::with_capacity(item.value_len());
        item.write_value_to(&mut value);
        value
    };
    if method == Method::Get {
        return Ok(get_string(&mut thread.cache, key, copy)?);
    }
    let found = (thread.cache).get(key, |item| {
        (item.kind() == ValueKind::String).then(|| copy(item))
    });
    Ok(found.flatten())
}
