//! List commands (Redis 7.0): pushes, pops, LMOVE and LMPOP here; reads
//! (LLEN LRANGE LINDEX LPOS) in `read`, in-place edits (LSET LINSERT LREM
//! LTRIM) in `edit`. Each write decodes the packed list, builds the new
//! one and stores it in one atomic update (the key goes when it empties).
//!
//! Every push, from LPUSH to the destination of LMOVE, goes through
//! [`push`]. Clients blocked on a key (BLPOP and friends, `blocking.rs`)
//! are woken by the command layer once any list write committed
//! (`command::blocking`).

use citadel_cache::{CacheHandle, Changes, ValueKind};
use citadel_collections::list::{encode, Encoded};
use citadel_collections::ListView;

use super::value::{load, store, view, Existing};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

mod blocking;
mod edit;
mod moves;
mod read;

const LIST: ValueKind = ValueKind::List;

/// Which end of a list: LEFT (head) or RIGHT (tail).
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Head,
    Tail,
}

impl End {
    fn parse(arg: &[u8]) -> Result<End, CmdError> {
        if arg.eq_ignore_ascii_case(b"left") {
            Ok(End::Head)
        } else if arg.eq_ignore_ascii_case(b"right") {
            Ok(End::Tail)
        } else {
            Err(CmdError::Syntax)
        }
    }
}

/// Stores list `i` as `new` (deleting it when empty), keeping its TTL.
fn put(
    changes: &mut Changes,
    i: usize,
    new: &Encoded,
    existing: Option<Existing>,
) -> Result<(), CmdError> {
    Ok(store(changes, i, LIST, &new.value, new.len, existing)?)
}

/// Pushes `pushed` one by one at `end` of `list` (so LPUSH a b c leaves
/// c first) and stores it as key `i`; returns the new length. The only way
/// elements are added to a list's ends: see the module docs.
fn push(
    changes: &mut Changes,
    i: usize,
    list: &[&[u8]],
    existing: Option<Existing>,
    pushed: &[&[u8]],
    end: End,
) -> Result<u64, CmdError> {
    let new = match end {
        End::Head => encode(pushed.iter().rev().chain(list).copied()),
        End::Tail => encode(list.iter().chain(pushed).copied()),
    };
    put(changes, i, &new, existing)?;
    Ok(new.len)
}

/// Runs `f` on the list at `key` (elements head first, empty when missing)
/// in one atomic update, `f` storing what it changes as key 0.
/// (`buf`: a scratch buffer for the value.)
fn update_list<R>(
    cache: &mut CacheHandle,
    buf: &mut Vec<u8>,
    key: &[u8],
    mut f: impl FnMut(&mut Changes, &[&[u8]], Option<Existing>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    cache.update(&[key], |items, changes| {
        let existing = load(items[0].as_ref(), LIST, buf)?;
        let list = ListView::new(view(buf, existing.is_some())?).elements()?;
        f(changes, &list, existing)
    })?
}

/// LPUSH RPUSH LPUSHX RPUSHX: the new length (0 for an X on no list).
fn push_command(ctx: &mut Ctx<'_>, args: Args<'_>, end: End, only_existing: bool) -> CmdResult {
    let key = args.get(1);
    let elements: Vec<&[u8]> = args.from(2).iter().collect();
    let (cache, buf) = (&mut ctx.thread.cache, &mut ctx.conn.scratch);
    let len = update_list(cache, buf, key, |changes, list, existing| {
        if only_existing && existing.is_none() {
            return Ok(0);
        }
        push(changes, 0, list, existing, &elements, end)
    })?;
    ctx.out.int(len as i64);
    Ok(())
}

pub fn lpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push_command(ctx, args, End::Head, false)
}

pub fn rpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push_command(ctx, args, End::Tail, false)
}

pub fn lpushx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push_command(ctx, args, End::Head, true)
}

pub fn rpushx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push_command(ctx, args, End::Tail, true)
}

/// Splits up to `count` elements off `end` of `list`: (them in pop
/// order, the rest).
fn split_end<'l, 's>(
    list: &'s [&'l [u8]],
    end: End,
    count: usize,
) -> (Vec<&'l [u8]>, &'s [&'l [u8]]) {
    let n = count.min(list.len());
    match end {
        End::Head => (list[..n].to_vec(), &list[n..]),
        End::Tail => (
            list[list.len() - n..].iter().rev().copied().collect(),
            &list[..list.len() - n],
        ),
    }
}

/// Takes up to `count` elements off `end` of the list at key `i`, storing
/// the rest; returns them in pop order.
fn pop_from<'l>(
    changes: &mut Changes,
    i: usize,
    list: &[&'l [u8]],
    existing: Option<Existing>,
    end: End,
    count: usize,
) -> Result<Vec<&'l [u8]>, CmdError> {
    let (popped, rest) = split_end(list, end, count);
    if !popped.is_empty() {
        put(changes, i, &encode(rest.iter().copied()), existing)?;
    }
    Ok(popped)
}

/// LPOP/RPOP key [count]: one element (nil when missing), or with a count
/// an array (nil array when missing, empty for count 0).
fn pop_command(ctx: &mut Ctx<'_>, args: Args<'_>, end: End, name: &'static str) -> CmdResult {
    const NOT_POSITIVE: CmdError = CmdError::Static("ERR value is out of range, must be positive");
    let count = match args.len() {
        2 => None,
        3 => Some(
            usize::try_from(args.int(2).map_err(|_| NOT_POSITIVE)?).map_err(|_| NOT_POSITIVE)?,
        ),
        _ => return Err(CmdError::Arity(name)),
    };
    let (cache, buf, out) = (&mut ctx.thread.cache, &mut ctx.conn.scratch, &mut ctx.out);
    let mark = out.buf.len();
    update_list(cache, buf, args.get(1), |changes, list, existing| {
        out.buf.truncate(mark);
        if existing.is_none() {
            match count {
                None => out.null(),
                Some(_) => out.null_array(),
            }
            return Ok(());
        }
        let popped = pop_from(changes, 0, list, existing, end, count.unwrap_or(1))?;
        match count {
            // A stored list is never empty; a corrupt one may read so.
            None => out.bulk(popped.first().ok_or(CmdError::CorruptValue)?),
            Some(_) => {
                out.array(popped.len());
                popped.iter().for_each(|e| out.bulk(e));
            }
        }
        Ok(())
    })
}

pub fn lpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    pop_command(ctx, args, End::Head, "lpop")
}

pub fn rpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    pop_command(ctx, args, End::Tail, "rpop")
}

use crate::command::table::{c, CommandDef, KEY1, KEYS_2, NOKEYS, R, RF, W, WF, WM, WMF};

const L: &str = "list";

#[rustfmt::skip]
pub static COMMANDS: &[CommandDef] = &[
    c("lpush", -3, WMF, KEY1, L, "1.0.0", "Prepends one or more elements to a list. Creates the key if it doesn't exist.", lpush),
    c("rpush", -3, WMF, KEY1, L, "1.0.0", "Appends one or more elements to a list. Creates the key if it doesn't exist.", rpush),
    c("lpushx", -3, WMF, KEY1, L, "2.2.0", "Prepends one or more elements to a list only when the list exists.", lpushx),
    c("rpushx", -3, WMF, KEY1, L, "2.2.0", "Appends an element to a list only when the list exists.", rpushx),
    c("lpop", -2, WF, KEY1, L, "1.0.0", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", lpop),
    c("rpop", -2, WF, KEY1, L, "1.0.0", "Returns and removes the last elements of the list. Deletes the list if the last element was popped.", rpop),
    c("llen", 2, RF, KEY1, L, "1.0.0", "Returns the length of a list.", read::llen),
    c("lrange", 4, R, KEY1, L, "1.0.0", "Returns a range of elements from a list.", read::lrange),
    c("lindex", 3, R, KEY1, L, "1.0.0", "Returns an element from a list by its index.", read::lindex),
    c("lpos", -3, R, KEY1, L, "6.0.6", "Returns the index of matching elements in a list.", read::lpos),
    c("lset", 4, WM, KEY1, L, "1.0.0", "Sets the value of an element in a list by its index.", edit::lset),
    c("linsert", 5, WM, KEY1, L, "2.2.0", "Inserts an element before or after another element in a list.", edit::linsert),
    c("lrem", 4, W, KEY1, L, "1.0.0", "Removes elements from a list. Deletes the list if the last element was removed.", edit::lrem),
    c("ltrim", 4, W, KEY1, L, "1.0.0", "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", edit::ltrim),
    c("lmove", 5, WM, KEYS_2, L, "6.2.0", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", moves::lmove),
    c("rpoplpush", 3, WM, KEYS_2, L, "1.2.0", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", moves::rpoplpush),
    c("lmpop", -4, &["write", "movablekeys"], NOKEYS, L, "7.0.0", "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", moves::lmpop).finding_keys(moves::lmpop_keys),
    c("blpop", -3, BLOCKING, (1, -2, 1), L, "2.0.0", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", blocking::blpop),
    c("brpop", -3, BLOCKING, (1, -2, 1), L, "2.0.0", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", blocking::brpop),
    c("blmove", 6, BLOCKING_M, KEYS_2, L, "6.2.0", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", blocking::blmove),
    c("brpoplpush", 4, BLOCKING_M, KEYS_2, L, "2.2.0", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", blocking::brpoplpush),
    c("blmpop", -5, &["write", "blocking", "movablekeys"], NOKEYS, L, "7.0.0", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", blocking::blmpop).finding_keys(moves::blmpop_keys),
];

const BLOCKING: &[&str] = &["write", "noscript", "blocking"];
const BLOCKING_M: &[&str] = &["write", "denyoom", "noscript", "blocking"];
