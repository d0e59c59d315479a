//! Connection ids: unique across threads, given at accept (by the loop,
//! or by the stall door for a connection it takes while a long command
//! stalls the thread).

use std::cell::Cell;

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
}

/// A new connection's id, unique across threads (the thread's index in
/// the top bits). The stall door takes one at its accept, so a command it
/// answers (HELLO) names the id the connection's session will have.
pub(super) fn connection_id(thread: usize) -> u64 {
    let next = NEXT_ID.get();
    NEXT_ID.set(next + 1);
    ((thread as u64) << 48) | next
}
