//! Key expiry: EXPIRE PEXPIRE EXPIREAT PEXPIREAT (NX XX GT LT), TTL PTTL
//! EXPIRETIME PEXPIRETIME, PERSIST.

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use super::value::put_value;

#[derive(Debug, Default, Clone, Copy)]
struct Cond {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

impl Cond {
    fn parse(opts: Args<'_>) -> Result<Cond, CmdError> {
        let mut c = Cond::default();
        for opt in opts.iter() {
            let flag = match () {
                _ if opt.eq_ignore_ascii_case(b"nx") => &mut c.nx,
                _ if opt.eq_ignore_ascii_case(b"xx") => &mut c.xx,
                _ if opt.eq_ignore_ascii_case(b"gt") => &mut c.gt,
                _ if opt.eq_ignore_ascii_case(b"lt") => &mut c.lt,
                _ => return Err(CmdError::quoting("ERR Unsupported option ", opt, "")),
            };
            *flag = true;
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(CmdError::ExpireNxConflict);
        }
        if c.gt && c.lt {
            return Err(CmdError::ExpireGtLt);
        }
        Ok(c)
    }

    /// Whether the new expiry applies given the current one (None: no TTL,
    /// which GT and LT treat as infinite).
    fn allows(&self, current: Option<u64>, when: i64) -> bool {
        match current {
            None => !(self.xx || self.gt),
            Some(cur) => {
                !(self.nx || (self.gt && when <= cur as i64) || (self.lt && when >= cur as i64))
            }
        }
    }
}

fn expire_generic(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    relative: bool,
    seconds: bool,
    cmd: &'static str,
) -> CmdResult {
    let cond = Cond::parse(args.from(3))?;
    let mut when = args.int(2)?;
    if seconds {
        when = when.checked_mul(1000).ok_or(CmdError::ExpireTime(cmd))?;
    }
    let now = ctx.thread.cache.now_ms() as i64;
    if relative {
        when = when.checked_add(now).ok_or(CmdError::ExpireTime(cmd))?;
    }
    let changed = ctx.thread.cache.update(&[args.get(1)], |items, changes| {
        let Some(item) = &items[0] else {
            return Ok(false);
        };
        if !cond.allows(item.expire_at(), when) {
            return Ok(false);
        }
        if when <= now {
            changes.delete(0);
        } else {
            put_value(changes, 0, item, None, Some(when as u64))?;
        }
        Ok::<_, citadel_cache::WriteError>(true)
    })??;
    ctx.out.int(changed as i64);
    Ok(())
}

pub fn expire(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    expire_generic(ctx, args, true, true, "expire")
}

pub fn pexpire(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    expire_generic(ctx, args, true, false, "pexpire")
}

pub fn expireat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    expire_generic(ctx, args, false, true, "expireat")
}

pub fn pexpireat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    expire_generic(ctx, args, false, false, "pexpireat")
}

/// Replies -2 for a missing key, -1 for no TTL, else `f(expire_at, now)`.
fn ttl_generic(ctx: &mut Ctx<'_>, args: Args<'_>, f: fn(u64, u64) -> i64) -> CmdResult {
    let now = ctx.thread.cache.now_ms();
    let v = match ctx.thread.cache.peek(args.get(1), |item| item.expire_at()) {
        None => -2,
        Some(None) => -1,
        Some(Some(at)) => f(at, now),
    };
    ctx.out.int(v);
    Ok(())
}

pub fn ttl(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, |at, now| {
        (at.saturating_sub(now) as i64 + 500) / 1000
    })
}

pub fn pttl(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, |at, now| at.saturating_sub(now) as i64)
}

pub fn expiretime(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, |at, _| at as i64 / 1000)
}

pub fn pexpiretime(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, |at, _| at as i64)
}

pub fn persist(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let changed = ctx
        .thread
        .cache
        .update(&[args.get(1)], |items, changes| match &items[0] {
            Some(item) if item.expire_at().is_some() => {
                put_value(changes, 0, item, None, None).map(|_| true)
            }
            _ => Ok(false),
        })??;
    ctx.out.int(changed as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Cond;

    #[test]
    fn conditions() {
        let c = |nx, xx, gt, lt| Cond { nx, xx, gt, lt };
        assert!(c(false, false, false, false).allows(None, 5));
        assert!(c(true, false, false, false).allows(None, 5));
        assert!(!c(true, false, false, false).allows(Some(1), 5));
        assert!(!c(false, true, false, false).allows(None, 5));
        assert!(c(false, true, false, false).allows(Some(1), 5));
        assert!(!c(false, false, true, false).allows(None, 5));
        assert!(c(false, false, true, false).allows(Some(1), 5));
        assert!(!c(false, false, true, false).allows(Some(9), 5));
        assert!(c(false, false, false, true).allows(None, 5));
        assert!(!c(false, false, false, true).allows(Some(1), 5));
        assert!(c(false, false, false, true).allows(Some(9), 5));
    }
}
