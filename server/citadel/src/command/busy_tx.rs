//! A connection's transaction across a busy script: the script's hook
//! answers the thread's own connections while the loop is stalled
//! (`busy_door.rs`) without their sessions, so what it does to a
//! transaction, as Redis does it during a busy script, is noted in the
//! client's shared record (`ClientShared::stall_tx`) and the session
//! applies it before its next command ([`settle`]):
//!
//! * MULTI begins one (`+OK`);
//! * a command refused inside one (`-BUSY`, unknown command, arity, ACL)
//!   makes its EXEC abort (EXECABORT ... previous errors);
//! * EXEC is refused with `-EXECABORT ... BUSY ...`, and the transaction
//!   (with its WATCHes) is discarded.
//!
//! Whether the connection is in a transaction is its CLIENT LIST `x`
//! flag, which the session keeps and the hook keeps with it here.

use std::sync::atomic::Ordering::Relaxed;

use super::context::ConnState;
use crate::clients::{stall_tx, ClientMode, ClientShared};

/// Whether `client` is inside MULTI (None: a new connection, never).
pub fn in_multi(client: Option<&ClientShared>) -> bool {
    client.is_some_and(|c| c.has_mode(ClientMode::Multi))
}

/// MULTI, outside a transaction, began one.
pub fn begun(client: Option<&ClientShared>) {
    if let Some(c) = client {
        note(c, stall_tx::BEGUN);
        c.set_mode(ClientMode::Multi, true);
    }
}

/// A command was refused: inside a transaction, its EXEC will abort.
pub fn refused(client: Option<&ClientShared>) {
    if let Some(c) = client.filter(|c| c.has_mode(ClientMode::Multi)) {
        note(c, stall_tx::REFUSED);
    }
}

/// EXEC was refused: the transaction, if any, is discarded (what was noted
/// before it no longer matters).
pub fn discarded(client: Option<&ClientShared>) {
    if let Some(c) = client.filter(|c| c.has_mode(ClientMode::Multi)) {
        // ORDERING: Relaxed: the owning thread's hook and session only.
        c.stall_tx.store(stall_tx::DISCARDED, Relaxed);
        c.set_mode(ClientMode::Multi, false);
    }
}

fn note(client: &ClientShared, bit: u8) {
    // ORDERING: Relaxed: the owning thread's hook and session only.
    client.stall_tx.fetch_or(bit, Relaxed);
}

/// Applies what the hook did to the connection's transaction.
pub fn settle(conn: &mut ConnState) {
    // ORDERING: Relaxed: see `note`.
    let done = conn.client.stall_tx.swap(0, Relaxed);
    if done & stall_tx::DISCARDED != 0 {
        conn.tx.discard();
        conn.tx.unwatch();
    }
    if done & stall_tx::BEGUN != 0 {
        conn.tx.in_multi = true;
    }
    if done & stall_tx::REFUSED != 0 {
        conn.tx.dirty = true;
    }
}
