//! The commands an open EXEC or script ran, kept until its transaction is
//! published (`command::nested_calls` logs and counts them).
//!
//! An attempt that meets a conflict is run again, so its commands are
//! logged per attempt and counted only once the outermost transaction is
//! published: a retried attempt's log is cut back (`retry_from`), and a
//! script inside EXEC leaves its commands to the EXEC's count.

/// One command a transaction or script ran.
#[derive(Debug, Clone, Copy)]
struct NestedCall {
    cmd: usize,
    nanos: u64,
    failed: bool,
}

/// A thread's log of the commands its open transaction or script ran.
#[derive(Debug, Default)]
pub struct NestedCalls {
    log: Vec<NestedCall>,
}

impl NestedCalls {
    /// Where an attempt's commands start in the log.
    pub fn mark(&self) -> usize {
        self.log.len()
    }

    /// Forgets what an attempt from `mark` ran (it is run again, or not at
    /// all).
    pub fn retry_from(&mut self, mark: usize) {
        self.log.truncate(mark);
    }

    /// Command `cmd` ran for `nanos`; `failed`: it answered an error.
    pub fn ran(&mut self, cmd: usize, nanos: u64, failed: bool) {
        self.log.push(NestedCall { cmd, nanos, failed });
    }

    /// Hands each command logged from `mark` on to `count` (command,
    /// nanoseconds, failed) and forgets them.
    pub fn take_from(&mut self, mark: usize, mut count: impl FnMut(usize, u64, bool)) {
        for call in self.log.drain(mark..) {
            count(call.cmd, call.nanos, call.failed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retried_attempt_is_counted_once_and_an_inner_one_by_the_outer() {
        let mut log = NestedCalls::default();
        let exec = log.mark();
        log.ran(1, 10, false);
        // The attempt met a conflict and runs again.
        log.retry_from(exec);
        log.ran(1, 12, false);
        // A script inside it logs into the same attempt.
        let script = log.mark();
        log.ran(2, 5, true);
        assert_eq!(script, 1);
        let mut counted = Vec::new();
        log.take_from(exec, |cmd, nanos, failed| {
            counted.push((cmd, nanos, failed))
        });
        assert_eq!(counted, [(1, 12, false), (2, 5, true)]);
        assert_eq!(log.mark(), 0);
    }
}
