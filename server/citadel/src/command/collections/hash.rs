//! Hash commands: HSET HSETNX HMSET HGET HMGET HDEL HLEN HEXISTS HGETALL
//! HKEYS HVALS HSTRLEN here; HINCRBY HINCRBYFLOAT (`counters`),
//! HRANDFIELD (`random`) and HSCAN (`scan`) in the submodules.

use citadel_cache::ValueKind;
use citadel_collections::{HashView, Packed};

use super::value::{load, store, view, with_value};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

mod counters;
mod random;
mod scan;

const HASH: ValueKind = ValueKind::Hash;

/// Redis 7.0's compiled-in defaults (hash-max-listpack-entries, -value;
/// the sample redis.conf says 128 entries, the server without one 512): a
/// hash within both is a listpack there, a bigger one a hash table.
const LISTPACK_ENTRIES: usize = 512;
const LISTPACK_VALUE: usize = 64;

/// Whether Redis would hold `hash` as a listpack (OBJECT ENCODING, and the
/// whole-hash replies of HSCAN). Redis never converts back after a hash
/// shrinks; this answers for the hash as it is now.
pub(super) fn is_listpack(hash: &HashView<'_>) -> Result<bool, CmdError> {
    if hash.len() > LISTPACK_ENTRIES {
        return Ok(false);
    }
    for pair in hash.pairs() {
        let (field, value) = pair?;
        if field.len() > LISTPACK_VALUE || value.len() > LISTPACK_VALUE {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The (field, value) pairs of `args` from index 2.
fn field_values<'a>(args: &Args<'a>) -> Vec<(&'a [u8], &'a [u8])> {
    (2..args.len())
        .step_by(2)
        .map(|i| (args.get(i), args.get(i + 1)))
        .collect()
}

/// Sets fields atomically; returns how many were new.
fn set_fields(ctx: &mut Ctx<'_>, args: Args<'_>, only_new: bool) -> Result<usize, CmdError> {
    let updates = field_values(&args);
    let buf = &mut ctx.conn.scratch;
    ctx.thread.cache.update(&[args.get(1)], |items, changes| {
        let existing = load(items[0].as_ref(), HASH, buf)?;
        let hash = HashView::new(view(buf, existing.is_some())?)?;
        let edited = hash.with_fields(&updates, only_new)?;
        if edited.changed > 0 || !only_new {
            store(changes, 0, HASH, &edited.value, edited.fields, existing)?;
        }
        Ok(edited.changed)
    })?
}

/// HSET key field value [field value ...]: the number of fields added.
pub fn hset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::Arity("hset"));
    }
    let added = set_fields(ctx, args, false)?;
    ctx.out.int(added as i64);
    Ok(())
}

/// HMSET: HSET replying OK.
pub fn hmset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::Arity("hmset"));
    }
    set_fields(ctx, args, false)?;
    ctx.out.ok();
    Ok(())
}

pub fn hsetnx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let added = set_fields(ctx, args, true)?;
    ctx.out.int(added as i64);
    Ok(())
}

/// HDEL key field [field ...]: the number removed; the key goes when empty.
pub fn hdel(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let fields: Vec<&[u8]> = args.from(2).iter().collect();
    let buf = &mut ctx.conn.scratch;
    let removed = ctx.thread.cache.update(&[args.get(1)], |items, changes| {
        let Some(existing) = load(items[0].as_ref(), HASH, buf)? else {
            return Ok(0);
        };
        let edited = HashView::new(Packed::parse(buf)?)?.without_fields(&fields)?;
        if edited.changed > 0 {
            store(
                changes,
                0,
                HASH,
                &edited.value,
                edited.fields,
                Some(existing),
            )?;
        }
        Ok::<_, CmdError>(edited.changed)
    })??;
    ctx.out.int(removed as i64);
    Ok(())
}

/// Runs `f` on the hash at `key` (empty when missing).
fn with_hash<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut citadel_resp::Reply<'_>, HashView<'_>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    with_value(ctx, key, HASH, |out, packed| f(out, HashView::new(packed)?))
}

pub fn hget(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    with_hash(ctx, args.get(1), |out, hash| {
        match hash.get(args.get(2))? {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
        Ok(())
    })
}

pub fn hmget(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    with_hash(ctx, args.get(1), |out, hash| {
        out.array(args.len() - 2);
        for field in args.from(2).iter() {
            match hash.get(field)? {
                Some(v) => out.bulk(v),
                None => out.null(),
            }
        }
        Ok(())
    })
}

pub fn hlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    with_hash(ctx, args.get(1), |out, hash| {
        out.int(hash.len() as i64);
        Ok(())
    })
}

pub fn hexists(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    with_hash(ctx, args.get(1), |out, hash| {
        out.int(i64::from(hash.get(args.get(2))?.is_some()));
        Ok(())
    })
}

pub fn hstrlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    with_hash(ctx, args.get(1), |out, hash| {
        out.int(hash.get(args.get(2))?.map_or(0, <[u8]>::len) as i64);
        Ok(())
    })
}

/// Which parts of each pair HGETALL, HKEYS and HVALS reply with.
#[derive(Clone, Copy)]
enum Parts {
    Both,
    Fields,
    Values,
}

fn reply_pairs(ctx: &mut Ctx<'_>, key: &[u8], parts: Parts) -> CmdResult {
    with_hash(ctx, key, |out, hash| {
        let mark = out.buf.len();
        match parts {
            Parts::Both => out.map(hash.len()),
            _ => out.array(hash.len()),
        }
        for pair in hash.pairs() {
            let Ok((field, value)) = pair else {
                out.buf.truncate(mark);
                return Err(CmdError::CorruptValue);
            };
            match parts {
                Parts::Both => {
                    out.bulk(field);
                    out.bulk(value);
                }
                Parts::Fields => out.bulk(field),
                Parts::Values => out.bulk(value),
            }
        }
        Ok(())
    })
}

pub fn hgetall(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    reply_pairs(ctx, args.get(1), Parts::Both)
}

pub fn hkeys(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    reply_pairs(ctx, args.get(1), Parts::Fields)
}

pub fn hvals(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    reply_pairs(ctx, args.get(1), Parts::Values)
}

use crate::command::table::{c, CommandDef, KEY1, R, RF, WF, WMF};

const H: &str = "hash";

#[rustfmt::skip]
pub static COMMANDS: &[CommandDef] = &[
    c("hset", -4, WMF, KEY1, H, "2.0.0", "Creates or modifies the value of a field in a hash.", hset),
    c("hmset", -4, WMF, KEY1, H, "2.0.0", "Sets the values of multiple fields.", hmset),
    c("hsetnx", 4, WMF, KEY1, H, "2.0.0", "Sets the value of a field in a hash only when the field doesn't exist.", hsetnx),
    c("hget", 3, RF, KEY1, H, "2.0.0", "Returns the value of a field in a hash.", hget),
    c("hmget", -3, RF, KEY1, H, "2.0.0", "Returns the values of all fields in a hash.", hmget),
    c("hdel", -3, WF, KEY1, H, "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", hdel),
    c("hlen", 2, RF, KEY1, H, "2.0.0", "Returns the number of fields in a hash.", hlen),
    c("hexists", 3, RF, KEY1, H, "2.0.0", "Determines whether a field exists in a hash.", hexists),
    c("hstrlen", 3, RF, KEY1, H, "3.2.0", "Returns the length of the value of a field.", hstrlen),
    c("hgetall", 2, R, KEY1, H, "2.0.0", "Returns all fields and values in a hash.", hgetall),
    c("hkeys", 2, R, KEY1, H, "2.0.0", "Returns all fields in a hash.", hkeys),
    c("hvals", 2, R, KEY1, H, "2.0.0", "Returns all values in a hash.", hvals),
    c("hincrby", 4, WMF, KEY1, H, "2.0.0", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", counters::hincrby),
    c("hincrbyfloat", 4, WMF, KEY1, H, "2.6.0", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", counters::hincrbyfloat),
    c("hrandfield", -2, R, KEY1, H, "6.2.0", "Returns one or more random fields from a hash.", random::hrandfield),
    c("hscan", -3, R, KEY1, H, "2.8.0", "Iterates over fields and values of a hash.", scan::hscan),
];
