//! Set commands: SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SMOVE here;
//! SINTER SUNION SDIFF, their STORE forms and SINTERCARD in `algebra.rs`;
//! SPOP and SRANDMEMBER in `random.rs`; SSCAN in `scan.rs`. Members are
//! stored by `citadel_collections::set` (OBJECT ENCODING answers "intset"
//! or "hashtable" by the members, as Redis 7.0 encodes a new set).

use citadel_cache::ValueKind;
use citadel_collections::{Packed, SetView};
use citadel_resp::Reply;

use super::value::{load, store, view, with_value};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

mod algebra;
mod random;
mod scan;

const SET: ValueKind = ValueKind::Set;

/// Runs `f` on the set at `key` (empty when missing).
fn with_set<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut Reply<'_>, SetView<'_>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    with_value(ctx, key, SET, |out, packed| f(out, SetView::new(packed)))
}

/// Replies `members` as a set (RESP3 `~`, an array in RESP2).
fn reply_set<'m>(out: &mut Reply<'_>, members: impl ExactSizeIterator<Item = &'m [u8]>) {
    out.set(members.len());
    members.for_each(|m| out.bulk(m));
}

/// SADD key member [member ...]: how many were new.
pub fn sadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let members: Vec<&[u8]> = args.from(2).iter().collect();
    let buf = &mut ctx.conn.scratch;
    let added = ctx.thread.cache.update(&[args.get(1)], |items, changes| {
        let existing = load(items[0].as_ref(), SET, buf)?;
        let edited = SetView::new(view(buf, existing.is_some())?).with_members(&members)?;
        if edited.changed > 0 {
            store(changes, 0, SET, &edited.value, edited.members, existing)?;
        }
        Ok::<_, CmdError>(edited.changed)
    })??;
    ctx.out.int(added as i64);
    Ok(())
}

/// SREM key member [member ...]: how many were removed; the key goes when
/// the set is empty.
pub fn srem(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let members: Vec<&[u8]> = args.from(2).iter().collect();
    let buf = &mut ctx.conn.scratch;
    let removed = ctx.thread.cache.update(&[args.get(1)], |items, changes| {
        let Some(existing) = load(items[0].as_ref(), SET, buf)? else {
            return Ok(0);
        };
        let edited = SetView::new(Packed::parse(buf)?).without_members(&members)?;
        if edited.changed > 0 {
            store(
                changes,
                0,
                SET,
                &edited.value,
                edited.members,
                Some(existing),
            )?;
        }
        Ok::<_, CmdError>(edited.changed)
    })??;
    ctx.out.int(removed as i64);
    Ok(())
}

pub fn smembers(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    with_set(ctx, args.get(1), |out, set| {
        reply_set(out, set.to_vec()?.into_iter());
        Ok(())
    })
}

pub fn sismember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    with_set(ctx, args.get(1), |out, set| {
        out.int(i64::from(set.contains(args.get(2))?));
        Ok(())
    })
}

pub fn smismember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    with_set(ctx, args.get(1), |out, set| {
        let lookup = set.lookup()?;
        out.array(args.len() - 2);
        for member in args.from(2).iter() {
            out.int(i64::from(lookup.contains(member)));
        }
        Ok(())
    })
}

pub fn scard(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    with_set(ctx, args.get(1), |out, set| {
        out.int(set.len() as i64);
        Ok(())
    })
}

/// SMOVE source destination member: 1 when moved (or, with source and
/// destination the same set, when the member is there), else 0.
pub fn smove(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (source, destination, member) = (args.get(1), args.get(2), args.get(3));
    let src_buf = &mut ctx.conn.scratch;
    let mut dst_buf = Vec::new();
    let moved = ctx
        .thread
        .cache
        .update(&[source, destination], |items, changes| {
            // A missing source moves nothing, whatever the destination holds.
            let Some(src_existing) = load(items[0].as_ref(), SET, src_buf)? else {
                return Ok(false);
            };
            let dst_existing = load(items[1].as_ref(), SET, &mut dst_buf)?;
            let src = SetView::new(Packed::parse(src_buf)?);
            if source == destination {
                return Ok(src.contains(member)?);
            }
            let removed = src.without_members(&[member])?;
            if removed.changed == 0 {
                return Ok(false);
            }
            let dst = SetView::new(view(&dst_buf, dst_existing.is_some())?);
            let added = dst.with_members(&[member])?;
            store(
                changes,
                0,
                SET,
                &removed.value,
                removed.members,
                Some(src_existing),
            )?;
            if added.changed > 0 {
                store(changes, 1, SET, &added.value, added.members, dst_existing)?;
            }
            Ok::<_, CmdError>(true)
        })??;
    src_buf.clear();
    ctx.out.int(i64::from(moved));
    Ok(())
}

use crate::command::table::{c, CommandDef, KEY1, KEYS_2, KEYS_ALL, NOKEYS, R, RF, WF, WM, WMF};

const S: &str = "set";

#[rustfmt::skip]
pub static COMMANDS: &[CommandDef] = &[
    c("sadd", -3, WMF, KEY1, S, "1.0.0", "Adds one or more members to a set. Creates the key if it doesn't exist.", sadd),
    c("srem", -3, WF, KEY1, S, "1.0.0", "Removes one or more members from a set. Deletes the set if the last member was removed.", srem),
    c("smembers", 2, R, KEY1, S, "1.0.0", "Returns all members of a set.", smembers),
    c("sismember", 3, RF, KEY1, S, "1.0.0", "Determines whether a member belongs to a set.", sismember),
    c("smismember", -3, RF, KEY1, S, "6.2.0", "Determines whether multiple members belong to a set.", smismember),
    c("scard", 2, RF, KEY1, S, "1.0.0", "Returns the number of members in a set.", scard),
    c("smove", 4, WF, KEYS_2, S, "1.0.0", "Moves a member from one set to another.", smove),
    c("spop", -2, WF, KEY1, S, "1.0.0", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", random::spop),
    c("srandmember", -2, R, KEY1, S, "1.0.0", "Get one or multiple random members from a set", random::srandmember),
    c("sinter", -2, R, KEYS_ALL, S, "1.0.0", "Returns the intersect of multiple sets.", algebra::sinter),
    c("sintercard", -3, R, NOKEYS, S, "7.0.0", "Returns the number of members of the intersect of multiple sets.", algebra::sintercard).finding_keys(algebra::for_each_sintercard_key),
    c("sunion", -2, R, KEYS_ALL, S, "1.0.0", "Returns the union of multiple sets.", algebra::sunion),
    c("sdiff", -2, R, KEYS_ALL, S, "1.0.0", "Returns the difference of multiple sets.", algebra::sdiff),
    c("sinterstore", -3, WM, KEYS_ALL, S, "1.0.0", "Stores the intersect of multiple sets in a key.", algebra::sinterstore),
    c("sunionstore", -3, WM, KEYS_ALL, S, "1.0.0", "Stores the union of multiple sets in a key.", algebra::sunionstore),
    c("sdiffstore", -3, WM, KEYS_ALL, S, "1.0.0", "Stores the difference of multiple sets in a key.", algebra::sdiffstore),
    c("sscan", -3, R, KEY1, S, "2.8.0", "Iterates over members of a set.", scan::sscan),
];
