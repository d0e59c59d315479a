//! The commands EXEC and scripts run, counted in INFO commandstats (calls,
//! usec, failed_calls, latencystats) and the per-command metrics as Redis
//! counts them: each one, besides the EXEC or EVAL that ran it. They are
//! logged per attempt (`introspect::nested`) and counted when the
//! outermost transaction is published.

use super::args::Args;
use super::context::Ctx;
use super::dispatch;
use super::table::CommandDef;
pub use crate::command_clock::monotonic_nanos;
use crate::introspect::calls::telemetry_bucket;
use crate::thread::ThreadCtx;

/// Runs a queued command of EXEC through its handler, timed from `since`
/// and logged; `since` becomes its end. EXEC runs its queue back to back,
/// so one clock reading ends a command and starts the next (see
/// `command_clock`); start a run with [`monotonic_nanos`].
pub fn run_logged(
    ctx: &mut Ctx<'_>,
    (idx, def, args): (usize, &CommandDef, Args<'_>),
    since: &mut u64,
) {
    // The rules may have changed since the command queued (Redis checks
    // again at EXEC).
    let refused = super::acl_check::refuse_at_exec(ctx.state, ctx.conn, idx, def, args);
    let failed = match refused {
        Some(e) => {
            super::error::reply_error(&mut ctx.out, &e);
            true
        }
        None => dispatch::run_handler(ctx, idx, def, args),
    };
    let now = monotonic_nanos();
    ctx.thread
        .nested_calls
        .ran(idx, now.saturating_sub(*since), failed);
    *since = now;
}

/// The published transaction's commands, logged from `mark` on, are
/// counted.
pub fn count_from(thread: &mut ThreadCtx, mark: usize) {
    let stats = &thread.stats;
    thread
        .nested_calls
        .take_from(mark, |cmd, bucket, calls, nanos, failed| {
            stats.calls.ran_many(cmd, calls, nanos, failed, bucket);
            if let Some(region) = &stats.telemetry {
                region.commands(cmd, calls, nanos, failed, telemetry_bucket(bucket));
            }
        });
}
