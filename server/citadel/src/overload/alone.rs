//! Whether a connection is alone on its core (ARCHITECTURE.md, "Overload
//! protection", a client's own work): the only client connection open
//! there. Then nobody can be waiting behind its input, and all the delay
//! its input meets is its own making: a slow command and the commands sent
//! with it, however many reads they span (one write of FLUSHALL and 20,000
//! SETs is some 40 reads of 16 KiB). Redis runs it all; so does the core.
//!
//! Served-alone-since-the-core-idled was tried first: a lone flood's whole
//! input is often reaped in one turn before another connection's PING (or
//! a second flooder's input) that waits behind it, which the core cannot
//! see until the turn ends, so floods were served whole where they must be
//! shed (`tests/overload.rs`, 2 runs in 6). An open connection is known at
//! once, whether or not its input has been read.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

/// The client connections open on one core (RESP and RPC over the loop).
#[derive(Debug, Clone, Default)]
pub struct CoreConnections(Arc<AtomicU32>);

impl CoreConnections {
    /// Counts a connection until the returned guard is dropped.
    pub fn opened(&self) -> OpenConnection {
        // ORDERING: Relaxed: a count of its own, read by the same core.
        self.0.fetch_add(1, Relaxed);
        OpenConnection(self.0.clone())
    }

    /// True when at most one connection is open.
    #[inline]
    pub fn alone(&self) -> bool {
        // ORDERING: Relaxed: see `opened`.
        self.0.load(Relaxed) <= 1
    }
}

/// A counted connection (held by its session).
#[derive(Debug)]
pub struct OpenConnection(Arc<AtomicU32>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        // ORDERING: Relaxed: see `CoreConnections::opened`.
        self.0.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_alone_while_no_other_is_open() {
        let core = CoreConnections::default();
        let first = core.opened();
        assert!(core.alone());
        let second = core.opened();
        assert!(!core.alone());
        drop(first);
        assert!(core.alone(), "the other one closed");
        drop(second);
        assert!(core.alone());
    }
}
