//! WAIT and WAITAOF: Citadel has no replicas and no append-only file, so
//! both answer at once with what was acknowledged: nothing.

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};

fn timeout(args: Args<'_>, i: usize) -> Result<i64, CmdError> {
    let t = args
        .int(i)
        .map_err(|_| CmdError::Static("ERR timeout is not an integer or out of range"))?;
    if t < 0 {
        return Err(CmdError::Static("ERR timeout is negative"));
    }
    Ok(t)
}

/// WAIT numreplicas timeout: `:0`, no replica acknowledged.
pub fn wait(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    args.int(1)?;
    timeout(args, 2)?;
    ctx.out.int(0);
    Ok(())
}

/// WAITAOF numlocal numreplicas timeout: `[0, 0]`; asking for a local
/// fsync is Redis's error for a server without appendonly.
pub fn waitaof(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let numlocal = args.int(1)?;
    args.int(2)?;
    timeout(args, 3)?;
    if numlocal > 0 {
        return Err(CmdError::Static(
            "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.",
        ));
    }
    ctx.out.array(2);
    ctx.out.int(0);
    ctx.out.int(0);
    Ok(())
}
