//! The commands an open EXEC or script ran, kept until its transaction is
//! published (`command::nested_calls` logs and counts them).
//!
//! An attempt that meets a conflict is run again, so its commands are
//! logged per attempt and counted only once the outermost transaction is
//! published: a retried attempt's log is cut back (`retry_from`), and a
//! script inside EXEC leaves its commands to the EXEC's count.
//!
//! The log holds tallies, not single calls: calls of one command whose
//! durations fall in the same histogram buckets (commandstats' and the
//! telemetry's) add up in one entry, so an EXEC of three SETs is counted
//! with one addition per counter, not three. The totals and histograms
//! are the same as counting each call.

use super::calls;

/// Calls of one command whose durations fall in the same `calls::bucket`.
#[derive(Debug, Clone, Copy)]
struct Tally {
    /// The command's index, shifted past the bucket (one compare merges).
    key: u64,
    nanos: u64,
    calls: u32,
    failed: u32,
}

const BUCKET_BITS: u32 = 8;

/// A call merges into one of the last this many tallies, else starts one:
/// scripts and queues repeat or alternate few commands, and the scan stays
/// as short however long the log grows.
const MERGE_WINDOW: usize = 2;

/// A thread's log of the commands its open transaction or script ran.
#[derive(Debug, Default)]
pub struct NestedCalls {
    log: Vec<Tally>,
    /// Tallies before this belong to an enclosing attempt's mark: a call
    /// never merges into them, so cutting back to a mark stays exact.
    floor: usize,
}

impl NestedCalls {
    /// Where an attempt's commands start in the log.
    pub fn mark(&mut self) -> usize {
        self.floor = self.log.len();
        self.floor
    }

    /// Forgets what an attempt from `mark` ran (it is run again, or not at
    /// all).
    pub fn retry_from(&mut self, mark: usize) {
        self.log.truncate(mark);
        self.floor = self.floor.min(mark);
    }

    /// Command `cmd` ran for `nanos`; `failed`: it answered an error.
    #[inline]
    pub fn ran(&mut self, cmd: usize, nanos: u64, failed: bool) {
        let key = ((cmd as u64) << BUCKET_BITS) | calls::bucket(nanos) as u64;
        let from = self.log.len().saturating_sub(MERGE_WINDOW).max(self.floor);
        match self.log[from..].iter_mut().rev().find(|t| t.key == key) {
            Some(t) => {
                t.calls += 1;
                t.nanos += nanos;
                t.failed += u32::from(failed);
            }
            None => self.log.push(Tally {
                key,
                nanos,
                calls: 1,
                failed: u32::from(failed),
            }),
        }
    }

    /// Hands each tally logged from `mark` on to `count` (command,
    /// commandstats bucket, calls, nanoseconds in all, failed calls) and
    /// forgets them.
    pub fn take_from(&mut self, mark: usize, mut count: impl FnMut(usize, usize, u64, u64, u64)) {
        for t in self.log.drain(mark..) {
            let (cmd, bucket) = (t.key >> BUCKET_BITS, t.key & ((1 << BUCKET_BITS) - 1));
            count(
                cmd as usize,
                bucket as usize,
                u64::from(t.calls),
                t.nanos,
                u64::from(t.failed),
            );
        }
        self.floor = self.floor.min(mark);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(log: &mut NestedCalls, mark: usize) -> Vec<(usize, u64, u64, u64)> {
        let mut counted = Vec::new();
        log.take_from(mark, |cmd, bucket, calls, nanos, failed| {
            assert_eq!(bucket, calls::bucket(nanos / calls));
            counted.push((cmd, calls, nanos, failed))
        });
        counted
    }

    #[test]
    fn a_retried_attempt_is_counted_once_and_an_inner_one_by_the_outer() {
        let mut log = NestedCalls::default();
        let exec = log.mark();
        log.ran(1, 10, false);
        // The attempt met a conflict and runs again.
        log.retry_from(exec);
        log.ran(1, 12, false);
        // A script inside it logs into the same attempt, never into the
        // EXEC's own tallies.
        let script = log.mark();
        log.ran(1, 5, true);
        log.ran(2, 5, true);
        assert_eq!(script, 1);
        assert_eq!(
            taken(&mut log, exec),
            [(1, 1, 12, 0), (1, 1, 5, 1), (2, 1, 5, 1)]
        );
        assert_eq!(log.mark(), 0);
    }

    #[test]
    fn calls_in_the_same_buckets_add_up() {
        let mut log = NestedCalls::default();
        let mark = log.mark();
        for _ in 0..3 {
            log.ran(7, 100, false);
            log.ran(8, 200, true);
        }
        // Another histogram bucket: its own tally.
        log.ran(7, 5_000, false);
        // The first tally of command 7 is past the window now.
        log.ran(7, 300, false);
        assert_eq!(
            taken(&mut log, mark),
            [
                (7, 3, 300, 0),
                (8, 3, 600, 3),
                (7, 1, 5_000, 0),
                (7, 1, 300, 0)
            ]
        );
    }

    #[test]
    fn a_call_merges_only_within_the_window() {
        let mut log = NestedCalls::default();
        let mark = log.mark();
        for cmd in 0..=MERGE_WINDOW {
            log.ran(cmd, 1, false);
        }
        // Command 0's tally is past the window: a new one starts.
        log.ran(0, 1, false);
        let counted = taken(&mut log, mark);
        assert_eq!(counted.len(), MERGE_WINDOW + 2);
        assert_eq!(
            counted.iter().map(|c| c.1).sum::<u64>(),
            MERGE_WINDOW as u64 + 2
        );
    }
}
