//! String commands that read or replace whole values: GET SET SETNX SETEX
//! PSETEX GETSET GETDEL GETEX MGET MSET MSETNX.

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use super::set_options::{Change, OptsFor, StringOpts, TtlArg, TtlUnit};
use super::value::{get_and_change, reply_value, string_item};
use citadel_cache::KeyHash;

/// GET and MGET load misses under a `[[keyspace]]` (see `loading`).
pub fn get(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    super::loading::get(ctx, args)
}

pub fn mget(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    super::loading::mget(ctx, args)
}

/// Plain SET key value (most of them): no options to parse. The batched
/// path (`fast_path.rs`) calls it directly, with the key's hash; always
/// inlined there (its call cost ~30 instructions a pipelined SET).
#[inline(always)]
pub fn set_plain(ctx: &mut Ctx<'_>, args: Args<'_>, hash: KeyHash) -> CmdResult {
    ctx.thread
        .cache
        .set_hashed(args.get(1), hash, args.get(2), None)?;
    ctx.out.ok();
    Ok(())
}

pub fn set(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() == 3 {
        let hash = ctx.thread.cache.key_hash(args.get(1));
        return set_plain(ctx, args, hash);
    }
    let opts = StringOpts::parse(args.from(3), OptsFor::Set)?;
    let now = ctx.thread.cache.now_ms();
    let expire = opts.ttl.map(|t| t.resolve(now, "set")).transpose()?;
    let (key, value) = (args.get(1), args.get(2));
    if !(opts.nx || opts.xx || opts.get || opts.keepttl) {
        match expire {
            Some(at) if at <= now => {
                ctx.thread.cache.delete(key);
            }
            _ => ctx.thread.cache.set(key, value, expire)?,
        }
        ctx.out.ok();
        return Ok(());
    }
    let out = &mut ctx.out;
    let mark = out.buf.len();
    let written = ctx.thread.cache.update(&[key], |items, changes| {
        let old = items[0].as_ref();
        if opts.get {
            string_item(old)?;
            out.buf.truncate(mark);
            match old {
                Some(item) => reply_value(out, item),
                None => out.null(),
            }
        }
        if (opts.nx && old.is_some()) || (opts.xx && old.is_none()) {
            return Ok(false);
        }
        let expire = if opts.keepttl {
            old.and_then(|i| i.expire_at())
        } else {
            expire
        };
        match expire {
            Some(at) if at <= now => changes.delete(0),
            _ => changes.put(0, &[value], expire)?,
        }
        Ok::<_, CmdError>(true)
    })??;
    if !opts.get {
        if written {
            out.ok();
        } else {
            out.null();
        }
    }
    Ok(())
}

pub fn setnx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let value = args.get(2);
    let written = ctx.thread.cache.update(&[args.get(1)], |items, changes| {
        if items[0].is_some() {
            return Ok(false);
        }
        changes.put(0, &[value], None).map(|_| true)
    })??;
    ctx.out.int(written as i64);
    Ok(())
}

fn set_with_ttl(ctx: &mut Ctx<'_>, args: Args<'_>, unit: TtlUnit, cmd: &'static str) -> CmdResult {
    let now = ctx.thread.cache.now_ms();
    let at = TtlArg {
        unit,
        value: args.get(2),
    }
    .resolve(now, cmd)?;
    ctx.thread.cache.set(args.get(1), args.get(3), Some(at))?;
    ctx.out.ok();
    Ok(())
}

pub fn setex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    set_with_ttl(ctx, args, TtlUnit::Ex, "setex")
}

pub fn psetex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    set_with_ttl(ctx, args, TtlUnit::Px, "psetex")
}

pub fn getset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    get_and_change(ctx, args.get(1), Change::Replace(args.get(2)))
}

pub fn getdel(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    get_and_change(ctx, args.get(1), Change::Delete)
}

pub fn getex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let opts = StringOpts::parse(args.from(2), OptsFor::GetEx)?;
    let now = ctx.thread.cache.now_ms();
    let change = match opts.ttl {
        // An expiry already in the past removes the key, as in Redis.
        Some(ttl) => match ttl.resolve(now, "getex")? {
            at if at <= now => Change::Delete,
            at => Change::Expire(Some(at)),
        },
        None if opts.persist => Change::Expire(None),
        None => return get(ctx, args),
    };
    if super::loading::getex(ctx, args, change)? {
        return Ok(());
    }
    get_and_change(ctx, args.get(1), change)
}

pub fn mset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() & 1 == 0 {
        return Err(CmdError::Arity("mset"));
    }
    write_pairs(ctx, args, false)?;
    ctx.out.ok();
    Ok(())
}

pub fn msetnx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() & 1 == 0 {
        return Err(CmdError::Arity("msetnx"));
    }
    let written = write_pairs(ctx, args, true)?;
    ctx.out.int(written as i64);
    Ok(())
}

/// Writes every key/value pair of MSET/MSETNX atomically (one cache update
/// over all keys: no reader sees some pairs without the others); with
/// `only_new`, nothing is written if any key exists. Up to 16 keys are
/// gathered on the stack, so the common MSET allocates nothing.
fn write_pairs(ctx: &mut Ctx<'_>, args: Args<'_>, only_new: bool) -> Result<bool, CmdError> {
    const ON_STACK: usize = 16;
    let n = args.len() / 2;
    let mut stack: [&[u8]; ON_STACK] = [&[]; ON_STACK];
    let heap: Vec<&[u8]>;
    let keys: &[&[u8]] = if n <= ON_STACK {
        for (slot, key) in stack.iter_mut().zip(args.iter().skip(1).step_by(2)) {
            *slot = key;
        }
        &stack[..n]
    } else {
        heap = args.iter().skip(1).step_by(2).collect();
        &heap
    };
    let written = ctx.thread.cache.update(keys, |items, changes| {
        if only_new && items.iter().any(Option::is_some) {
            return Ok(false);
        }
        for (k, i) in (2..args.len()).step_by(2).enumerate() {
            changes.put(k, &[args.get(i)], None)?;
        }
        Ok::<_, citadel_cache::WriteError>(true)
    })??;
    Ok(written)
}
