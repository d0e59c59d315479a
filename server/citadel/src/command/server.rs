//! Server-wide commands: TIME SHUTDOWN (DBSIZE, FLUSHDB and FLUSHALL are
//! in databases.rs).

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};

pub fn time(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ctx.out.array(2);
    ctx.out.bulk_u64(now.as_secs());
    ctx.out.bulk_u64(u64::from(now.subsec_micros()));
    Ok(())
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]: the cache file persists by itself,
/// so SAVE and NOSAVE are the same. Like Redis, no reply: the connection closes.
pub fn shutdown(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    shutdown_args(args)?;
    ctx.state.shutdown.request();
    ctx.conn.close = true;
    Ok(())
}

/// SHUTDOWN's arguments checked: one SAVE or NOSAVE, NOW, FORCE.
pub(super) fn shutdown_args(args: Args<'_>) -> Result<(), CmdError> {
    let mut save_given = false;
    for i in 1..args.len() {
        let is_save = args.is(i, "save") || args.is(i, "nosave");
        if is_save && !save_given {
            save_given = true;
        } else if !(args.is(i, "now") || args.is(i, "force")) {
            return Err(CmdError::Syntax);
        }
    }
    Ok(())
}
