//! After a command ran: its statistics (INFO commandstats / errorstats /
//! latencystats), the slow log, the latency monitor,
//! then CLIENT REPLY's mode, then MONITOR's line (`monitor.rs`; one
//! Relaxed load while nobody monitors). Called once per command by
//! `dispatch::run`.

use std::sync::Arc;

use super::args::Args;
use super::context::{ConnState, Pending, ReplyMode};
use super::prefetch::AHEAD;
use super::table::CommandDef;
use crate::introspect::calls::{bucket, telemetry_bucket, BUCKETS};
use crate::introspect::slowlog::{trimmed_args, SlowEntry};
use crate::state::ServerState;
use crate::thread::ThreadCtx;

/// What dispatch did with a command.
pub enum Ran {
    /// Queued between MULTI and EXEC (counted when EXEC runs it).
    Queued,
    /// No such command (or subcommand): an error reply, no command to count.
    Unknown,
    /// Refused before its handler (arity, auth, subscribe mode): the
    /// global index of the command.
    Rejected(usize),
    /// The handler ran for `nanos`; `failed`: it answered an error.
    Executed {
        cmd: usize,
        def: &'static CommandDef,
        nanos: u64,
        failed: bool,
    },
}

/// Records what `ran` did; `out[mark..]` is the command's reply.
pub fn after(
    state: &Arc<ServerState>,
    thread: &mut ThreadCtx,
    conn: &mut ConnState,
    args: Args<'_>,
    ran: Ran,
    out: &mut Vec<u8>,
    mark: usize,
) {
    let calls = &thread.stats.calls;
    let mut fed = None;
    // Asked only of a silenced connection: one compare per command otherwise.
    let pushed = conn.reply_mode != ReplyMode::On
        && matches!(&ran, Ran::Executed { def, .. } if pushes_through_silence(def));
    match ran {
        Ran::Queued => {}
        Ran::Unknown => calls.error_reply(&out[mark..]),
        Ran::Rejected(cmd) => {
            calls.rejected(cmd);
            calls.error_reply(&out[mark..]);
        }
        Ran::Executed {
            cmd,
            def,
            nanos,
            failed,
        } => {
            if state.monitors.active() {
                fed = Some(def);
            }
            let reply = &out[mark..];
            executed(
                state,
                thread,
                conn,
                (cmd, def, args),
                nanos,
                failed.then_some(reply),
            );
        }
    }
    let mode = conn.reply_mode;
    apply_reply_mode(conn, out, mark, pushed);
    if let Some(def) = fed {
        // Nothing more reaches a connection closing after its reply (QUIT).
        let own = (super::monitor::own_line_shown(mode) && !conn.close).then_some(out);
        // A script's line went out before it ran (dispatch), ahead of the
        // lines of the commands it ran.
        if !def.has_flag("movablekeys") {
            super::monitor::feed(state, thread, conn, def, args, own);
        }
    }
}

/// A blocked command (counted when it blocked) ran to its end once woken
/// (served, timed out or failed; `error`: its error reply): the slow log
/// gets it now, as Redis logs a blocked command when it unblocks, and an
/// error counts as a failed call.
pub fn finished_after_block(
    state: &ServerState,
    thread: &ThreadCtx,
    conn: &ConnState,
    (cmd, def, args): (usize, &CommandDef, Args<'_>),
    nanos: u64,
    error: Option<&[u8]>,
) {
    if let Some(reply) = error {
        failed_after_block(thread, cmd, reply);
    }
    if state.introspect.is_slow(nanos / 1000) {
        log_slow(state, thread, conn, def, args, nanos / 1000);
    }
}

/// A blocked command (counted when it blocked) answered `reply`, an
/// error, once woken: Redis counts the error and the failed call.
pub fn failed_after_block(thread: &ThreadCtx, cmd: usize, reply: &[u8]) {
    let calls = &thread.stats.calls;
    calls.failed_after_block(cmd);
    calls.error_reply(reply);
}

/// The statistics, slow log and latency monitor of a command whose
/// handler ran for `nanos`; `error`: the error reply it answered.
/// `fast_path.rs` calls this directly for the commands of its runs (no
/// reply mode to apply, nobody monitoring).
#[inline]
pub fn executed(
    state: &ServerState,
    thread: &ThreadCtx,
    conn: &ConnState,
    command: (usize, &CommandDef, Args<'_>),
    nanos: u64,
    error: Option<&[u8]>,
) {
    let cmd = command.0;
    let calls = &thread.stats.calls;
    calls.ran(cmd, nanos, error.is_some());
    if let Some(region) = &thread.stats.telemetry {
        region.command(cmd, nanos, error.is_some());
    }
    if let Some(reply) = error {
        calls.error_reply(reply);
    }
    let watch = &state.introspect;
    // A command that blocked is logged once it is served (Redis logs it
    // when it unblocks): `finished_after_block`.
    let slow =
        watch.is_slow(nanos / 1000) && !matches!(conn.pending, Some(Pending::Blocked { .. }));
    let late = watch
        .latency_threshold_ms()
        .is_some_and(|threshold| nanos / 1_000_000 >= threshold);
    if slow || late {
        note_slow(state, thread, conn, command, nanos, slow, late);
    }
}

/// The statistics of the commands of one pipelined run (`fast_path.rs`)
/// that answered no error and ran under the slow log's and latency
/// monitor's thresholds: for those, `executed` would only add a call, its
/// time and a histogram count, so the run adds them up here and writes
/// each figure once at its end, exactly what `executed` would have
/// written (INFO sees the run's commands together, as it sees
/// `total_commands_processed` per receive). The thresholds are read once
/// per run.
pub struct RunStats {
    /// Commands this long or longer go through `executed`.
    below: u64,
    /// The first `RUN_COMMANDS` distinct commands of the run (a pipeline
    /// mostly repeats one or two); later ones go through `executed`.
    tallies: [Tally; RUN_COMMANDS],
}

/// Distinct commands a run adds up.
const RUN_COMMANDS: usize = 4;

struct Tally {
    /// The command's global index; `usize::MAX`: a free tally.
    cmd: usize,
    calls: u64,
    nanos: u64,
    /// Which histogram buckets `counts` holds calls in (bit b: bucket b).
    used: u128,
    /// Calls per histogram bucket: a run is at most the skim's `AHEAD`
    /// commands, so a byte each.
    counts: [u8; BUCKETS],
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            cmd: usize::MAX,
            calls: 0,
            nanos: 0,
            used: 0,
            counts: [0; BUCKETS],
        }
    }
}

const _: () = assert!(BUCKETS <= 128, "a bucket per bit of `Tally::used`");
const _: () = assert!(AHEAD < 256, "a run's calls per bucket fit a `u8`");

impl RunStats {
    pub fn new(state: &ServerState) -> RunStats {
        let watch = &state.introspect;
        let slow = watch
            .slowlog_threshold_us()
            .map(|us| us.saturating_mul(1000));
        let late = watch
            .latency_threshold_ms()
            .map(|ms| ms.saturating_mul(1_000_000));
        RunStats {
            below: slow.unwrap_or(u64::MAX).min(late.unwrap_or(u64::MAX)),
            tallies: Default::default(),
        }
    }

    /// Counts command `cmd` (global index) that ran `nanos` and answered
    /// no error, unless the slow log or the latency monitor wants it or
    /// the run's tallies are all taken; false: `executed` counts it.
    #[inline]
    pub fn add(&mut self, cmd: usize, nanos: u64) -> bool {
        if nanos >= self.below {
            return false;
        }
        let Some(t) = self
            .tallies
            .iter_mut()
            .find(|t| t.cmd == cmd || t.cmd == usize::MAX)
        else {
            return false;
        };
        if t.calls >= AHEAD as u64 {
            return false;
        }
        let b = bucket(nanos);
        t.cmd = cmd;
        t.calls += 1;
        t.nanos += nanos;
        t.used |= 1 << b;
        t.counts[b] += 1;
        true
    }

    /// Writes what was counted.
    pub fn flush(&self, thread: &ThreadCtx) {
        for t in &self.tallies {
            if t.calls == 0 {
                // Tallies are taken in order: the rest are free too.
                break;
            }
            // The run's time is added with its first bucket's calls.
            let mut nanos = t.nanos;
            for b in set_bits(t.used) {
                let calls = u64::from(t.counts[b]);
                thread.stats.calls.ran_many(t.cmd, calls, nanos, 0, b);
                if let Some(region) = &thread.stats.telemetry {
                    region.commands(t.cmd, calls, nanos, 0, telemetry_bucket(b));
                }
                nanos = 0;
            }
        }
    }
}

/// The set bits of `mask`, lowest first.
fn set_bits(mut mask: u128) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let b = mask.trailing_zeros() as usize;
        mask &= mask.checked_sub(1)?;
        Some(b)
    })
}

/// The slow log's entry (`slow`) and the latency monitor's event (`late`)
/// of a command that took `nanos`: rare, so out of line.
#[inline(never)]
fn note_slow(
    state: &ServerState,
    thread: &ThreadCtx,
    conn: &ConnState,
    (_, def, args): (usize, &CommandDef, Args<'_>),
    nanos: u64,
    slow: bool,
    late: bool,
) {
    if slow {
        log_slow(state, thread, conn, def, args, nanos / 1000);
    }
    if late {
        let event = if def.has_flag("fast") {
            "fast-command"
        } else {
            "command"
        };
        let (now_secs, ms) = (thread.cache.now_ms() / 1000, nanos / 1_000_000);
        state.introspect.latency.record(event, now_secs, ms);
    }
}

/// (Un)subscription confirmations are Pub/Sub pushes, which Redis sends
/// whatever CLIENT REPLY says (as it does the messages themselves): a
/// client that silenced its replies still learns its subscriptions.
fn pushes_through_silence(def: &CommandDef) -> bool {
    matches!(
        def.name,
        "subscribe" | "psubscribe" | "ssubscribe" | "unsubscribe" | "punsubscribe" | "sunsubscribe"
    )
}

/// CLIENT REPLY OFF / SKIP: the command's reply is dropped, unless it is
/// `pushed` (see `pushes_through_silence`); SKIP still counts the command.
fn apply_reply_mode(conn: &mut ConnState, out: &mut Vec<u8>, mark: usize, pushed: bool) {
    let silenced = match conn.reply_mode {
        ReplyMode::On => false,
        ReplyMode::Off => true,
        // CLIENT REPLY SKIP itself is not answered, nor is the next command.
        ReplyMode::Skip => {
            conn.reply_mode = ReplyMode::SkipNext;
            true
        }
        ReplyMode::SkipNext => {
            conn.reply_mode = ReplyMode::On;
            true
        }
    };
    if silenced && !pushed {
        out.truncate(mark);
    }
}

fn log_slow(
    state: &ServerState,
    thread: &ThreadCtx,
    conn: &ConnState,
    def: &CommandDef,
    args: Args<'_>,
    micros: u64,
) {
    let mut logged = trimmed_args((0..args.len()).map(|i| args.get(i)));
    for i in super::monitor::redacted(def.name, args) {
        if let Some(arg) = logged.get_mut(i) {
            *arg = b"(redacted)".to_vec();
        }
    }
    let entry = SlowEntry {
        id: state.introspect.next_slowlog_id(),
        unix_secs: thread.cache.now_ms() / 1000,
        micros,
        args: logged,
        addr: conn.client.peer.to_string(),
        name: conn.client.names().name.clone(),
    };
    let max_len = state.introspect.slowlog_max_len();
    thread.stats.slowlog.push(entry, max_len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_bits_lists_each_bit_once_lowest_first() {
        let bits: Vec<usize> = set_bits(1 | 1 << 7 | 1 << 127).collect();
        assert_eq!(bits, [0, 7, 127]);
        assert_eq!(set_bits(0).count(), 0);
    }

    #[test]
    fn a_run_adds_up_its_first_distinct_commands_under_the_thresholds() {
        let mut stats = RunStats {
            below: 1_000_000,
            tallies: Default::default(),
        };
        for cmd in [7, 3, 7, 9, 11, 3] {
            assert!(stats.add(cmd, 500), "{cmd}");
        }
        // A fifth distinct command, and one over a threshold, go to `executed`.
        assert!(!stats.add(12, 500));
        assert!(!stats.add(7, 1_000_000));
        let counted: Vec<(usize, u64, u64)> = stats
            .tallies
            .iter()
            .map(|t| (t.cmd, t.calls, t.nanos))
            .collect();
        assert_eq!(
            counted,
            [(7, 2, 1000), (3, 2, 1000), (9, 1, 500), (11, 1, 500)]
        );
        assert_eq!(stats.tallies[0].counts[bucket(500)], 2);
        // A tally holds at most a skim's commands.
        let mut stats = RunStats {
            below: u64::MAX,
            tallies: Default::default(),
        };
        assert!((0..AHEAD).all(|_| stats.add(1, 2000)));
        assert!(!stats.add(1, 2000));
    }
}
