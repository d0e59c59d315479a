//! The RPC's side of overload protection: each operation's class for the
//! shedding order, and its first key for prefix quotas. The request's
//! priority field sets the client priority (see `overload::rpc_priority`).

use citadel_proto::rpc::Op;

use crate::overload::CommandClass;
use crate::state::ServerState;

/// The per-key write limit (`hotkeys-write-limit`) on one operation, as
/// RESP applies it to a command: a write to a key over its rate is shed
/// with the same `OVERLOAD key ...` text. Off: one relaxed load.
pub fn refuse_write(state: &ServerState, op: &Op<'_>) -> Result<(), super::RpcError> {
    if state.hotkeys.writes.limit().is_none() || !super::route::is_write(op) {
        return Ok(());
    }
    match crate::command::write_refused(state, |f| super::route::for_each_key(op, f)) {
        Some(rate) => Err(super::RpcError::Overload(
            crate::command::CmdError::KeyWriteRate(rate).to_string(),
        )),
        None => Ok(()),
    }
}

/// The class of `op` and the first key it names. A batch takes the
/// heaviest class among its operations (compute over write over read).
pub fn op_class<'a>(op: &Op<'a>) -> (CommandClass, Option<&'a [u8]>) {
    match op {
        Op::Get { key } | Op::Ttl { key } => (CommandClass::Read, Some(key)),
        Op::Exists(keys) | Op::MGet(keys) => (CommandClass::Read, keys.iter().next()),
        Op::Scan { .. } => (CommandClass::Read, None),
        Op::Set { key, .. } | Op::Expire { key, .. } | Op::Incr { key, .. } => {
            (CommandClass::Write, Some(key))
        }
        Op::Delete(keys) => (CommandClass::Write, keys.iter().next()),
        Op::MSet(pairs) => (CommandClass::Write, pairs.iter().next().map(|(k, _)| k)),
        Op::Call { .. } => (CommandClass::Compute, None),
        Op::Stats { .. } | Op::Hello { .. } => (CommandClass::Admin, None),
        Op::Batch(batch) => {
            let classes = batch.iter().filter_map(|o| o.ok()).map(|o| op_class(&o));
            classes.fold((CommandClass::Admin, None), |(class, key), (c, k)| {
                (heavier(class, c), key.or(k))
            })
        }
    }
}

fn heavier(a: CommandClass, b: CommandClass) -> CommandClass {
    let weight = |c| match c {
        CommandClass::Admin => 0,
        CommandClass::Read => 1,
        CommandClass::Write => 2,
        CommandClass::Compute => 3,
    };
    if weight(b) > weight(a) {
        b
    } else {
        a
    }
}
