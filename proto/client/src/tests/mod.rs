//! Unit tests against an in-process mock server.

#[cfg(feature = "tokio")]
mod asynch;
mod blocking;
mod discovery;
mod mock;
mod pool;
mod shm;

use std::time::Duration;

/// Runs `f` on a thread and returns its result, failing the test if it
/// takes longer than `limit` (a hang).
pub(crate) fn within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).expect("hung")
}
