//! The retry policy of the clients that can reconnect ([`Pool`],
//! [`Discovered`]): a call that failed because its connection did is run
//! once more, on a fresh connection, if running it twice is harmless.
//!
//! [`Pool`]: crate::Pool
//! [`Discovered`]: crate::Discovered

use crate::error::Result;

/// Runs `attempt`; after a transport failure, calls `on_retry` and runs
/// it once more if `idempotent`. `attempt` picks (or reconnects) its
/// connection itself, so the second run goes elsewhere.
pub(crate) fn once<T>(
    idempotent: bool,
    mut attempt: impl FnMut() -> Result<T>,
    on_retry: impl FnOnce(),
) -> Result<T> {
    match attempt() {
        Err(e) if e.is_transport() && idempotent => {
            on_retry();
            attempt()
        }
        done => done,
    }
}
