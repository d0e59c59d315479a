//! Set commands: SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SMOVE here;
//! SINTER SUNION SDIFF, their STORE forms and SINTERCARD in `algebra.rs`;
//! SPOP and SRANDMEMBER in `random.rs`; SSCAN in `scan.rs`. Members are
//! stored by `citadel_collections::set` (OBJECT ENCODING answers "intset"
//! or "hashtable" by the members, as Redis 7.0 encodes a new set).

use citadel_cache::ValueKind;
use citadel_collections::linear_hash::entry_bytes;
use citadel_collections::{Packed, SetView};
use citadel_resp::Reply;

use super::few::Few;
use super::linear::{read_one, update_one};
use super::shape::Shape;
use super::value::with_value;
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

mod algebra;
mod moves;
mod random;
mod scan;

const SET: ValueKind = ValueKind::Set;

/// A set to the code shared with hashes (`linear.rs`).
pub(super) const SHAPE: Shape = super::shape::SET;

/// Runs `f` on the whole set at `key` (empty when missing), paged or not.
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

/// Members of one SADD checked by a scan of the set before re-encoding it.
const FEW: usize = 4;

fn all_present(set: &SetView<'_>, members: &[&[u8]]) -> Result<bool, CmdError> {
    for member in members {
        if !set.contains(member)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// SADD key member [member ...]: how many were new.
pub fn sadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // One member (the common SADD) as an array, a few on the stack.
    let one: [&[u8]; 1];
    let few: Few<&[u8]>;
    let members: &[&[u8]] = if args.len() == 3 {
        one = [args.get(2)];
        &one
    } else {
        few = args.from(2).iter().collect();
        &few
    };
    let added = update_one(
        ctx,
        args.get(1),
        SHAPE,
        |root| {
            root.pages_for(
                members.iter().copied(),
                members.len() as u64,
                entry_bytes(members.iter().copied()),
                0,
            )
        },
        |value| {
            let set = SetView::new(value.unwrap_or(Packed::empty()));
            // Members all there already (the common repeated SADD): a
            // scan answers, nothing is re-encoded or written.
            if members.len() <= FEW && all_present(&set, members)? {
                return Ok((0, None));
            }
            let edited = set.with_members(members)?;
            let write = (edited.changed > 0).then_some((edited.value, edited.members));
            Ok((edited.changed, write))
        },
        |table| {
            let mut added = 0;
            for member in members.iter() {
                added += usize::from(table.put(&[member], true)?);
            }
            Ok(added)
        },
    )?;
    ctx.out.int(added as i64);
    Ok(())
}

/// SREM key member [member ...]: how many were removed; the key goes when
/// the set is empty.
pub fn srem(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let members: Few<&[u8]> = args.from(2).iter().collect();
    let removed = update_one(
        ctx,
        args.get(1),
        SHAPE,
        |root| root.pages_for(members.iter().copied(), 0, 0, members.len() as u64),
        |value| {
            let Some(value) = value else {
                return Ok((0, None));
            };
            let edited = SetView::new(value).without_members(&members)?;
            let write = (edited.changed > 0).then_some((edited.value, edited.members));
            Ok((edited.changed, write))
        },
        |table| {
            let mut removed = 0;
            for member in members.iter() {
                removed += usize::from(table.remove(member)?.is_some());
            }
            Ok(removed)
        },
    )?;
    ctx.out.int(removed as i64);
    Ok(())
}

pub fn smembers(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    with_set(ctx, args.get(1), |out, set| {
        reply_set(out, set.to_vec()?.into_iter());
        Ok(())
    })
}

/// Whether each of `members` is in the set at `key`.
fn contains(ctx: &mut Ctx<'_>, key: &[u8], members: &[&[u8]]) -> Result<Vec<bool>, CmdError> {
    read_one(
        ctx,
        key,
        SHAPE,
        |root| root.pages_for(members.iter().copied(), 0, 0, 0),
        |packed| {
            let set = SetView::new(packed);
            if members.len() == 1 {
                return Ok(vec![set.contains(members[0])?]);
            }
            let lookup = set.lookup()?;
            Ok(members.iter().map(|m| lookup.contains(m)).collect())
        },
        |table| {
            members
                .iter()
                .map(|m| Ok(table.get(m)?.is_some()))
                .collect()
        },
    )
}

pub fn sismember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let found = contains(ctx, args.get(1), &[args.get(2)])?;
    ctx.out.int(i64::from(found[0]));
    Ok(())
}

pub fn smismember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let members: Few<&[u8]> = args.from(2).iter().collect();
    let found = contains(ctx, args.get(1), &members)?;
    ctx.out.array(found.len());
    found.into_iter().for_each(|f| ctx.out.int(i64::from(f)));
    Ok(())
}

pub fn scard(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let len = read_one(
        ctx,
        args.get(1),
        SHAPE,
        |_| Vec::new(),
        |packed| Ok(packed.len() as u64),
        |table| Ok(table.len()),
    )?;
    ctx.out.int(len as i64);
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
    c("smove", 4, WF, KEYS_2, S, "1.0.0", "Moves a member from one set to another.", moves::smove),
    c("spop", -2, WF, KEY1, S, "1.0.0", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", random::spop),
    c("srandmember", -2, R, KEY1, S, "1.0.0", "Get one or multiple random members from a set", random::srandmember),
    c("sinter", -2, R, KEYS_ALL, S, "1.0.0", "Returns the intersect of multiple sets.", algebra::sinter),
    c("sintercard", -3, &["readonly", "movablekeys"], NOKEYS, S, "7.0.0", "Returns the number of members of the intersect of multiple sets.", algebra::sintercard).finding_keys(algebra::for_each_sintercard_key),
    c("sunion", -2, R, KEYS_ALL, S, "1.0.0", "Returns the union of multiple sets.", algebra::sunion),
    c("sdiff", -2, R, KEYS_ALL, S, "1.0.0", "Returns the difference of multiple sets.", algebra::sdiff),
    c("sinterstore", -3, WM, KEYS_ALL, S, "1.0.0", "Stores the intersect of multiple sets in a key.", algebra::sinterstore),
    c("sunionstore", -3, WM, KEYS_ALL, S, "1.0.0", "Stores the union of multiple sets in a key.", algebra::sunionstore),
    c("sdiffstore", -3, WM, KEYS_ALL, S, "1.0.0", "Stores the difference of multiple sets in a key.", algebra::sdiffstore),
    c("sscan", -3, R, KEY1, S, "2.8.0", "Iterates over members of a set.", scan::sscan),
];
