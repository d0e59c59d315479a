//! SAVE, BGSAVE [SCHEDULE], BGREWRITEAOF and LASTSAVE (`crate::saves`):
//! a save makes the cache file and the functions' side file durable on
//! their storage. Redis 7.0's replies and errors.

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use super::table;
use crate::saves::{BusyWith, SaveKind};
use crate::state::ServerState;

/// Why a save command refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveError {
    BgsaveRunning,
    AofRewriteRunning,
    /// BGSAVE while a BGREWRITEAOF runs, without SCHEDULE.
    OtherRunning,
    /// msync or fsync failed (logged).
    Failed,
}

impl From<SaveError> for CmdError {
    fn from(e: SaveError) -> Self {
        CmdError::Static(match e {
            SaveError::BgsaveRunning => "ERR Background save already in progress",
            SaveError::AofRewriteRunning => {
                "ERR Background append only file rewriting already in progress"
            }
            SaveError::OtherRunning => {
                "ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE \
                 SCHEDULE in order to schedule a BGSAVE whenever possible."
            }
            SaveError::Failed => "ERR",
        })
    }
}

/// Write commands that answered no error and changed something, on every
/// core since start-up: what `rdb_changes_since_last_save` counts from.
pub fn writes(state: &ServerState) -> u64 {
    let is_write = |i: usize| table::by_index(i).is_some_and(|d| d.has_flag("write"));
    state
        .thread_stats
        .iter()
        .map(|t| {
            let unchanged = t
                .unchanged_writes
                .load(std::sync::atomic::Ordering::Relaxed);
            t.calls.succeeded(is_write).saturating_sub(unchanged)
        })
        .sum()
}

/// SAVE: on this core (Redis's SAVE blocks its server; this blocks this
/// core's connections only), unless a BGSAVE runs.
pub fn save(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let state = ctx.state;
    if state.saves.running() == Some(SaveKind::Rdb) {
        return Err(SaveError::BgsaveRunning.into());
    }
    save_files(state)?;
    ctx.out.ok();
    Ok(())
}

/// The save of SAVE and DEBUG RELOAD.
pub fn save_files(state: &ServerState) -> Result<(), SaveError> {
    state
        .saves
        .save_now(&state.cache, &state.scripts, writes(state))
        .map_err(|e| {
            tracing::error!(error = %e, "SAVE failed");
            SaveError::Failed
        })
}

fn start(ctx: &Ctx<'_>, kind: SaveKind, schedule: bool) -> Result<(), BusyWith> {
    let state = ctx.state;
    let files = (state.cache.clone(), state.scripts.clone());
    state.saves.start(kind, schedule, files, writes(state))
}

/// BGSAVE [SCHEDULE]: on a thread of its own.
pub fn bgsave(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let schedule = match args.len() {
        1 => false,
        2 if args.is(1, "schedule") => true,
        _ => return Err(CmdError::Syntax),
    };
    match start(ctx, SaveKind::Rdb, schedule) {
        Ok(()) => ctx.out.simple(b"Background saving started"),
        Err(BusyWith::Same) => return Err(SaveError::BgsaveRunning.into()),
        Err(BusyWith::Other { scheduled: true }) => ctx.out.simple(b"Background saving scheduled"),
        Err(BusyWith::Other { scheduled: false }) => return Err(SaveError::OtherRunning.into()),
    }
    Ok(())
}

/// BGREWRITEAOF: there is no append-only file; the same background save,
/// reported as a rewrite (a BGSAVE running: it follows it).
pub fn bgrewriteaof(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    match start(ctx, SaveKind::Aof, true) {
        Ok(()) => ctx
            .out
            .simple(b"Background append only file rewriting started"),
        Err(BusyWith::Same) => return Err(SaveError::AofRewriteRunning.into()),
        Err(BusyWith::Other { .. }) => ctx
            .out
            .simple(b"Background append only file rewriting scheduled"),
    }
    Ok(())
}

/// LASTSAVE: unix seconds of the last completed save (start-up counts).
pub fn lastsave(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    ctx.out.int(ctx.state.saves.last_save() as i64);
    Ok(())
}
