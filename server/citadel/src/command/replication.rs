//! WAIT and WAITAOF, ROLE and REPLICAOF: Citadel has no replicas and no
//! append-only file, so WAIT and WAITAOF answer at once with what was
//! acknowledged (nothing), ROLE says master, and REPLICAOF NO ONE is OK
//! while following a master is refused.

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

/// ROLE: a master with replication offset 0 and no replicas.
pub fn role(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    ctx.out.array(3);
    ctx.out.bulk(b"master");
    ctx.out.int(0);
    ctx.out.array(0);
    Ok(())
}

/// Why REPLICAOF refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaOfError {
    ClusterMode,
    InvalidPort,
    /// A real master: Citadel does not replicate.
    NotSupported,
}

impl From<ReplicaOfError> for CmdError {
    fn from(e: ReplicaOfError) -> Self {
        CmdError::Static(match e {
            ReplicaOfError::ClusterMode => "ERR REPLICAOF not allowed in cluster mode.",
            ReplicaOfError::InvalidPort => "ERR Invalid master port",
            ReplicaOfError::NotSupported => {
                "ERR replication is not supported by Citadel: it stays a master (REPLICAOF NO ONE \
                 is accepted)"
            }
        })
    }
}

/// REPLICAOF / SLAVEOF host port: `NO ONE` is OK (this is a master
/// already); a master to follow is refused, since Citadel has no
/// replication.
pub fn replicaof(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if ctx.state.cluster.get().is_some() {
        return Err(ReplicaOfError::ClusterMode.into());
    }
    if args.is(1, "no") && args.is(2, "one") {
        ctx.out.ok();
        return Ok(());
    }
    if !args.int(2).is_ok_and(|p| (0..=65535).contains(&p)) {
        return Err(ReplicaOfError::InvalidPort.into());
    }
    Err(ReplicaOfError::NotSupported.into())
}
