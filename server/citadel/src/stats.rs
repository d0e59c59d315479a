//! Counters of one server thread, readable by INFO from any thread:
//! the loop's own (`citadel_net::LoopStats`) and the commands it ran.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use citadel_net::LoopStats;

use crate::introspect::{calls::CallStats, slowlog::SlowLog};

#[derive(Debug, Default)]
pub struct ThreadStats {
    /// Commands run (single writer: the thread's loop).
    pub commands: AtomicU64,
    /// Connections, bytes, busy time, panics: the network loop's counters.
    pub net: Arc<LoopStats>,
    /// The RPC front door's requests (single writer: the thread's loop).
    pub rpc: RpcCounters,
    /// MULTI/EXEC outcomes (single writer: the thread's loop).
    pub txn: TxnCounters,
    /// RESP commands by name: calls, time, errors (INFO commandstats).
    pub calls: CallStats,
    /// This thread's slow commands (SLOWLOG).
    pub slowlog: SlowLog,
    /// This thread's slot of the stats region (`metrics`), if there is one.
    pub telemetry: Option<citadel_telemetry::SlotStats>,
    /// Write commands that succeeded and changed nothing (SETBIT, BITFIELD
    /// SET of what a key holds), which Redis's dirty counter skips: taken
    /// off the writes `rdb_changes_since_last_save` counts. Ever (not reset).
    pub unchanged_writes: AtomicU64,
}

/// How EXECs and scripts went: run again after a conflict, aborted by a
/// WATCH.
#[derive(Debug, Default)]
pub struct TxnCounters {
    pub execs: AtomicU64,
    /// Extra runs after a conflicting writer (each EXEC counts its own).
    pub retries: AtomicU64,
    pub watch_aborts: AtomicU64,
    /// Extra runs of scripts and functions (outside MULTI) whose commit
    /// found a key they read or wrote changed meanwhile.
    pub script_retries: AtomicU64,
    /// Transactions that held every client's writes after conflicting
    /// again and again (`command/write_hold.rs`).
    pub write_holds: AtomicU64,
}

/// RPC requests by outcome and by priority class, recorded now so that
/// overload protection can use the priority later.
#[derive(Debug, Default)]
pub struct RpcCounters {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    /// Refused unexecuted: their deadline had passed.
    pub deadline_refused: AtomicU64,
    /// Requests by priority: 0 (default), 1-63, 64-191, 192-255.
    pub by_priority: [AtomicU64; 4],
    /// Shared-memory clients this thread serves (a gauge).
    pub shm_clients: AtomicU64,
}

impl RpcCounters {
    /// The priority class (index of `by_priority`) of `priority`.
    pub fn class(priority: u8) -> usize {
        match priority {
            0 => 0,
            1..=63 => 1,
            64..=191 => 2,
            _ => 3,
        }
    }
}

impl ThreadStats {
    /// A thread's statistics, counting into `telemetry` as well.
    pub fn with_telemetry(telemetry: Option<citadel_telemetry::SlotStats>) -> ThreadStats {
        ThreadStats {
            telemetry,
            ..Default::default()
        }
    }

    /// A write command that succeeded and changed nothing.
    pub fn unchanged_write(&self) {
        self.unchanged_writes.fetch_add(1, Relaxed);
    }

    /// An EXEC that published after `retries` extra runs (or was aborted
    /// by a WATCH).
    pub fn exec_done(&self, retries: u32, watch_aborted: bool) {
        let t = &self.txn;
        t.execs.fetch_add(1, Relaxed);
        t.retries.fetch_add(u64::from(retries), Relaxed);
        t.watch_aborts.fetch_add(u64::from(watch_aborted), Relaxed);
    }

    /// A script ran again after its commit conflicted.
    pub fn script_retried(&self) {
        self.txn.script_retries.fetch_add(1, Relaxed);
    }

    /// A transaction took the write hold.
    pub fn write_hold_taken(&self) {
        self.txn.write_holds.fetch_add(1, Relaxed);
    }

    /// CONFIG RESETSTAT: the counters INFO resets (not gauges such as
    /// connections, nor busy time, which rates are derived from).
    pub fn reset(&self) {
        for c in [
            &self.commands,
            &self.net.accepted,
            &self.net.rejected,
            &self.net.bytes_in,
            &self.net.bytes_out,
            &self.rpc.requests,
            &self.rpc.errors,
            &self.rpc.deadline_refused,
            &self.txn.execs,
            &self.txn.retries,
            &self.txn.watch_aborts,
            &self.txn.script_retries,
            &self.txn.write_holds,
        ]
        .into_iter()
        .chain(&self.rpc.by_priority)
        {
            c.store(0, Relaxed);
        }
        self.calls.reset();
    }
}
