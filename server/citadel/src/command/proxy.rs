//! Proxy mode (`cluster-proxy yes`): what happens to a command the
//! cluster would refuse, for clients that do not follow -MOVED. A command
//! on one slot of another node is forwarded whole; MGET / MSET / DEL /
//! EXISTS / UNLINK / TOUCH on keys of several nodes are split per node
//! (the local piece runs here at once, the others are forwarded in
//! parallel); EXEC of a queue on one slot of another node forwards MULTI,
//! the queue and EXEC. The connection parks on `Pending::Forward` until
//! the forwarder's workers (`crate::forward`) mail the replies back;
//! `proxy_merge` writes the client's reply from them. Pipelined commands
//! behind a parked one wait, so replies keep their order. A RESP3
//! tracking client's reads carry their keys (`Part::tracked`): they go on
//! the peer's tracking link, whose invalidations reach the client here.

use std::sync::Arc;

use citadel_cluster::Route;
use citadel_proto::cluster::key_slot;
use citadel_resp::Reply;

use super::args::Args;
use super::context::{ConnState, Ctx, Pending};
use super::error::{reply_error, CmdError};
use super::proxy_merge::{Combine, How, Merge, Split};
use super::queue::TxState;
use super::table::CommandDef;
use crate::forward::{encode_command, Done, ForwardError, Job, Part};
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::wait::Mail;

/// What proxy mode does with a command the cluster refused.
pub enum Taken {
    /// Forwarded: the connection waits (`conn.pending` is set).
    Parked,
    /// Every key is served here after all (a split over local slots only).
    RunHere,
    /// A split's local keys that just moved here are first read from their
    /// previous owner (warm hand-off): the command, not consumed, runs (and
    /// splits) again once they are (`conn.pending` is set).
    HandingOff,
    /// Not for proxying: the refusal stands (or this one replaces it).
    Refuse(CmdError),
}

/// This node is in proxy mode.
pub fn enabled(state: &ServerState) -> bool {
    state.cluster.get().is_some_and(|node| node.proxy) && state.forwarder.get().is_some()
}

/// Commands whose effect stays with the connection cannot be forwarded
/// over a shared peer connection: they keep -MOVED.
pub fn forwardable(def: &CommandDef) -> bool {
    !matches!(def.name, "watch" | "ssubscribe" | "sunsubscribe")
}

/// A command outside MULTI that the cluster refused with `refusal`
/// (-MOVED or -CROSSSLOT), in proxy mode. A CLUSTER NOPROXY connection
/// (another node forwarding) gets only what is served here: a split
/// whose keys are all this node's, across slots. `handed_off`: this run
/// follows a warm hand-off (no second one).
pub fn take(
    state: &Arc<ServerState>,
    thread: &mut ThreadCtx,
    conn: &mut ConnState,
    (idx, def, args): (usize, &CommandDef, Args<'_>),
    refusal: CmdError,
    handed_off: bool,
) -> Taken {
    match refusal {
        CmdError::Moved { addr, .. } if forwardable(def) && !conn.no_proxy => {
            let mut request = Vec::new();
            encode_command(&mut request, args.len(), args.iter());
            let part = Part {
                addr,
                request,
                replies: 1,
                tracked: tracked_keys(conn, def, args),
            };
            forward(state, thread, conn, vec![part], How::Relay);
            Taken::Parked
        }
        CmdError::CrossSlot => match combine_of(def) {
            Some(combine) if !reads_through(state, combine) => {
                let command = (idx, def, args);
                split(state, thread, conn, command, combine, handed_off)
            }
            _ => Taken::Refuse(CmdError::CrossSlot),
        },
        other => Taken::Refuse(other),
    }
}

/// EXEC of a queue whose keys are in one slot of the node at `addr`:
/// MULTI, the queue and EXEC go there; EXEC's reply is relayed.
pub fn forward_exec(ctx: &mut Ctx<'_>, tx: &TxState, addr: String) {
    let mut request = Vec::new();
    let mut tracked: Option<Vec<Box<[u8]>>> = None;
    encode_command(&mut request, 1, [&b"MULTI"[..]]);
    for i in 0..tx.len() {
        let (_, def, args) = tx.command(i);
        encode_command(&mut request, args.len(), args.iter());
        if let Some(keys) = tracked_keys(ctx.conn, def, args) {
            tracked.get_or_insert_with(Vec::new).extend(keys);
        }
    }
    encode_command(&mut request, 1, [&b"EXEC"[..]]);
    let part = Part {
        addr,
        request,
        replies: tx.len() + 2,
        tracked,
    };
    forward(ctx.state, ctx.thread, ctx.conn, vec![part], How::Exec);
}

/// Whether the peer must track what `def` reads for this client (see
/// `tracked_keys`): the cheap test, before any key is gathered.
fn peer_tracks(conn: &ConnState, def: &CommandDef) -> bool {
    conn.resp3 && conn.tracking.is_some_and(|t| !t.bcast) && def.has_flag("readonly")
}

/// The keys the peer must track for a RESP3 tracking client (default
/// mode) whose read `def args` it runs; None for any other command or
/// client (RESP2 connections carry no pushes: a RESP2 client's forwarded
/// reads are not invalidated from the peer).
fn tracked_keys(conn: &ConnState, def: &CommandDef, args: Args<'_>) -> Option<Vec<Box<[u8]>>> {
    if !peer_tracks(conn, def) {
        return None;
    }
    let mut keys = Vec::new();
    def.for_each_key(args, |k| keys.push(k.into()));
    Some(keys)
}

/// How the pieces of a splittable command combine (None: not one).
fn combine_of(def: &CommandDef) -> Option<Combine> {
    Some(match def.name {
        "mget" => Combine::Values,
        "del" | "exists" | "unlink" | "touch" => Combine::Sum,
        "mset" => Combine::AllOk,
        _ => return None,
    })
}

/// An MGET's local piece could park on a read-through load, which a
/// split cannot wait for beside its forwards: not split then.
fn reads_through(state: &ServerState, combine: Combine) -> bool {
    combine == Combine::Values && state.readthrough.get().is_some()
}

/// Splits a multi-key command by the node of each key: the local piece
/// runs now, the others are forwarded, one part per node.
fn split(
    state: &Arc<ServerState>,
    thread: &mut ThreadCtx,
    conn: &mut ConnState,
    (idx, def, args): (usize, &CommandDef, Args<'_>),
    combine: Combine,
    handed_off: bool,
) -> Taken {
    let step = if combine == Combine::AllOk { 2 } else { 1 };
    let keys = (args.len() - 1) / step;
    let Some(view) = thread.cluster.as_mut() else {
        return Taken::Refuse(CmdError::CrossSlot);
    };
    let topology = view.current();
    let mut local = Vec::new();
    let mut remote: Vec<(String, Vec<usize>)> = Vec::new();
    for k in 0..keys {
        match topology.route(key_slot(args.get(1 + k * step))) {
            Route::Local => local.push(k),
            Route::Moved(owner) => match remote.iter_mut().find(|(a, _)| *a == owner.addr) {
                Some((_, ks)) => ks.push(k),
                None => remote.push((owner.addr.clone(), vec![k])),
            },
            Route::Down => return Taken::Refuse(CmdError::ClusterDown),
        }
    }
    if remote.is_empty() {
        return Taken::RunHere;
    }
    if conn.no_proxy {
        return Taken::Refuse(CmdError::CrossSlot);
    }
    // The command's name, then the keys (MSET: key and value) of `keys`.
    let piece = |keys: &[usize]| -> Vec<&[u8]> {
        let words = keys
            .iter()
            .flat_map(|&k| (0..step).map(move |j| args.get(1 + k * step + j)));
        std::iter::once(args.get(0)).chain(words).collect()
    };
    // Dispatch's warm hand-off comes after this split: the local piece's
    // moved keys are asked here, before it runs (the whole command waits
    // and splits again once they are here).
    let local = if local.is_empty() {
        None
    } else {
        let reply = with_args(&piece(&local), |args| {
            if !handed_off && super::handoff::park(state, thread, conn, def, args) {
                return None;
            }
            Some(run_local(state, thread, conn, idx, def, args))
        });
        let Some(reply) = reply else {
            return Taken::HandingOff;
        };
        Some((local, reply))
    };
    let mut parts = Vec::with_capacity(remote.len());
    let mut positions = Vec::with_capacity(remote.len());
    for (addr, keys) in remote {
        let words = piece(&keys);
        let mut request = Vec::new();
        encode_command(&mut request, words.len(), words.iter().copied());
        // Gathered only for a tracking client's read (most clients: none).
        let tracked = peer_tracks(conn, def)
            .then(|| with_args(&words, |args| tracked_keys(conn, def, args)))
            .flatten();
        parts.push(Part {
            addr,
            request,
            replies: 1,
            tracked,
        });
        positions.push(keys);
    }
    let how = How::Split(Split {
        combine,
        keys,
        parts: positions,
        local,
    });
    forward(state, thread, conn, parts, how);
    Taken::Parked
}

/// Runs the local piece of a split (`args`: the command and its keys)
/// with the command's handler; its reply, error included.
fn run_local(
    state: &Arc<ServerState>,
    thread: &mut ThreadCtx,
    conn: &mut ConnState,
    idx: usize,
    def: &CommandDef,
    args: Args<'_>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let resp3 = conn.resp3;
    let mut ctx = Ctx {
        state,
        thread,
        conn,
        out: Reply::new(&mut out, resp3),
    };
    ctx.thread.cache.set_change_tag(idx as u16);
    ctx.conn.cannot_wait = true;
    let result = (def.handler)(&mut ctx, args);
    ctx.conn.cannot_wait = false;
    if let Err(e) = result {
        ctx.out.buf.clear();
        reply_error(&mut ctx.out, &e);
    }
    out
}

/// Calls `f` with `words` as a command's arguments.
fn with_args<R>(words: &[&[u8]], f: impl FnOnce(Args<'_>) -> R) -> R {
    let mut buf = Vec::new();
    let mut spans = Vec::with_capacity(words.len());
    for w in words {
        spans.push(buf.len()..buf.len() + w.len());
        buf.extend_from_slice(w);
    }
    f(Args::new(&buf, &spans))
}

/// Submits the parts and parks the connection on the job.
fn forward(
    state: &Arc<ServerState>,
    thread: &mut ThreadCtx,
    conn: &mut ConnState,
    parts: Vec<Part>,
    how: How,
) {
    let id = thread.next_forward();
    let addrs = parts.iter().map(|p| p.addr.clone()).collect();
    let job = Job {
        thread: thread.index,
        id,
        resp3: conn.resp3,
        parts,
    };
    conn.pending = Some(Pending::Forward {
        id,
        plan: Box::new(Merge { addrs, how }),
    });
    match state.forwarder.get() {
        Some(forwarder) => forwarder.submit(job),
        // Not in proxy mode (callers check): fail the wait, never hang it.
        None => {
            let done = Done::failed(&job, || ForwardError::Unavailable);
            thread.inboxes.send(done.thread, Mail::Forwarded(done));
        }
    }
}
