//! Hash commands: HSET HSETNX HMSET HGET HMGET HDEL HLEN HEXISTS HGETALL
//! HKEYS HVALS HSTRLEN here; HINCRBY HINCRBYFLOAT (`counters`),
//! HRANDFIELD (`random`) and HSCAN (`scan`) in the submodules.

use citadel_cache::ValueKind;
use citadel_collections::linear_hash::entry_bytes;
use citadel_collections::{HashView, Packed};

use super::few::Few;
use super::linear::{read_one, update_one};
use super::paged::spare_buf;
use super::shape::Shape;
use super::value::with_value;
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

mod counters;
mod random;
mod scan;

const HASH: ValueKind = ValueKind::Hash;

/// Whether Redis would hold a hash of this content as a listpack (the
/// whole-hash replies of HSCAN). Redis never converts back after a hash
/// shrinks; this answers for the content as it is now (OBJECT ENCODING
/// reads the mark a write leaves: `small_form`).
pub(crate) fn is_listpack(hash: &HashView<'_>) -> Result<bool, CmdError> {
    Ok(super::small_form::hash_fits(hash)?)
}

/// A hash to the code shared with sets (`linear.rs`).
pub(super) const SHAPE: Shape = super::shape::HASH;

/// Sets fields atomically; returns how many were new.
fn set_fields(ctx: &mut Ctx<'_>, args: Args<'_>, only_new: bool) -> Result<usize, CmdError> {
    // The (field, value) pairs from index 2: one (the common HSET) as an
    // array, a few on the stack, no allocation.
    let one: [(&[u8], &[u8]); 1];
    let few: Few<(&[u8], &[u8])>;
    let updates: &[(&[u8], &[u8])] = if args.len() == 4 {
        one = [(args.get(2), args.get(3))];
        &one
    } else {
        few = (1..args.len() / 2)
            .map(|pair| (args.get(2 * pair), args.get(2 * pair + 1)))
            .collect();
        &few
    };
    update_one(
        ctx,
        args.get(1),
        SHAPE,
        |root| {
            root.pages_for(
                updates.iter().map(|u| u.0),
                updates.len() as u64,
                updates.iter().map(|(f, v)| entry_bytes([*f, *v])).sum(),
                0,
            )
        },
        |value| {
            let hash = HashView::new(value.unwrap_or(Packed::empty()))?;
            // (Into a spare buffer: `update_one` keeps the value's once
            // stored.)
            let edited = hash.with_fields_in(updates, only_new, spare_buf())?;
            let write = (edited.changed > 0 || !only_new).then_some((edited.value, edited.fields));
            Ok((edited.changed, write))
        },
        |table| {
            let mut added = 0;
            for (field, value) in updates {
                added += usize::from(table.put(&[field, value], only_new)?);
            }
            Ok(added)
        },
    )
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
    let fields: Few<&[u8]> = args.from(2).iter().collect();
    let removed = update_one(
        ctx,
        args.get(1),
        SHAPE,
        |root| root.pages_for(fields.iter().copied(), 0, 0, fields.len() as u64),
        |value| {
            let Some(value) = value else {
                return Ok((0, None));
            };
            let edited = HashView::new(value)?.without_fields(&fields)?;
            let write = (edited.changed > 0).then_some((edited.value, edited.fields));
            Ok((edited.changed, write))
        },
        |table| {
            let mut removed = 0;
            for field in fields.iter() {
                removed += usize::from(table.remove(field)?.is_some());
            }
            Ok(removed)
        },
    )?;
    ctx.out.int(removed as i64);
    Ok(())
}

/// The values of `fields` in the hash at `key` (None: no such field).
fn lookup(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    fields: &[&[u8]],
) -> Result<Vec<Option<Vec<u8>>>, CmdError> {
    read_one(
        ctx,
        key,
        SHAPE,
        |root| root.pages_for(fields.iter().copied(), 0, 0, 0),
        |packed| {
            let hash = HashView::new(packed)?;
            fields
                .iter()
                .map(|f| Ok(hash.get(f)?.map(<[u8]>::to_vec)))
                .collect()
        },
        |table| {
            fields
                .iter()
                .map(|f| Ok(table.get(f)?.map(|e| e[1].to_vec())))
                .collect()
        },
    )
}

/// The value of one field, for HGET, HEXISTS and HSTRLEN.
fn lookup_one(ctx: &mut Ctx<'_>, args: &Args<'_>) -> Result<Option<Vec<u8>>, CmdError> {
    Ok(lookup(ctx, args.get(1), &[args.get(2)])?.pop().flatten())
}

pub fn hget(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    match lookup_one(ctx, &args)? {
        Some(v) => ctx.out.bulk(&v),
        None => ctx.out.null(),
    }
    Ok(())
}

pub fn hmget(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let fields: Vec<&[u8]> = args.from(2).iter().collect();
    let values = lookup(ctx, args.get(1), &fields)?;
    ctx.out.array(values.len());
    for value in values {
        match value {
            Some(v) => ctx.out.bulk(&v),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

pub fn hlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let len = read_one(
        ctx,
        args.get(1),
        SHAPE,
        |_| Vec::new(),
        |packed| Ok(HashView::new(packed)?.len() as u64),
        |table| Ok(table.len()),
    )?;
    ctx.out.int(len as i64);
    Ok(())
}

pub fn hexists(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let found = lookup_one(ctx, &args)?.is_some();
    ctx.out.int(i64::from(found));
    Ok(())
}

pub fn hstrlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let len = lookup_one(ctx, &args)?.map_or(0, |v| v.len());
    ctx.out.int(len as i64);
    Ok(())
}

/// Runs `f` on the whole hash at `key` (empty when missing), paged or not.
fn with_hash<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut citadel_resp::Reply<'_>, HashView<'_>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    with_value(ctx, key, HASH, |out, packed| f(out, HashView::new(packed)?))
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
