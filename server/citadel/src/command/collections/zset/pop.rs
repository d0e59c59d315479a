//! Sorted-set pops: ZPOPMIN ZPOPMAX ZMPOP (the lowest or highest scores,
//! removed).

use super::paged::{Fail, PagedZ};
use super::whole::Whole;
use super::{
    numkeys_range, owned, paged, reply_owned, reply_score, update_whole, with_entries, Owned,
    ZError, ZSET,
};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};
use citadel_cache::{Changes, ItemRef};
use citadel_collections::zset::tree::into_owned;

/// What `pop_first` took: the key's index, the entries in pop order, and
/// how many entries that key has left.
pub(super) type Popped = (usize, Owned, usize);

/// What to pop: from which keys, how many, which end.
struct Pop<'k> {
    keys: &'k [&'k [u8]],
    servable: &'k [bool],
    count: usize,
    max: bool,
    /// A blocked client's run: a key holding another type is passed over
    /// (Redis leaves the client blocked), also one that changed type
    /// after `may_serve_kind` looked.
    pass_over: bool,
}

impl Pop<'_> {
    /// Pops from the first servable key that holds something, each read
    /// whole (the packed form; a paged one of several keys).
    fn whole(
        &self,
        items: &[Option<ItemRef<'_>>],
        changes: &mut Changes<'_>,
        w: &mut Whole<'_>,
        buf: &mut Vec<u8>,
    ) -> Result<Option<Popped>, CmdError> {
        for i in 0..self.keys.len() {
            // (A missing key is skipped before anything is parsed.)
            let other_kind = |item: &ItemRef<'_>| item.kind() != ZSET;
            if !self.servable[i]
                || items[i]
                    .as_ref()
                    .is_none_or(|item| self.pass_over && other_kind(item))
            {
                continue;
            }
            let (existing, mut z) = w.load_edit(items, i, buf)?;
            if existing.is_none() {
                continue;
            }
            let n = self.count.min(z.len());
            let range = if self.max { z.len() - n..z.len() } else { 0..n };
            let mut popped = z.remove_ranks(range);
            if self.max {
                popped.reverse();
            }
            w.save(changes, i, &z, existing)?;
            return Ok(Some((i, owned(&popped), z.len())));
        }
        Ok(None)
    }

    /// Pops from one paged sorted set: the end leaves and the popped
    /// members' index pages only.
    fn paged(&self, z: &mut PagedZ<'_>) -> Result<Option<Popped>, Fail> {
        let len = z.len();
        let n = (self.count as u64).min(len);
        let ranks = if self.max { len - n..len } else { 0..n };
        let mut popped = z.tree.range(ranks.start, ranks.end)?;
        z.need_members(popped.iter().map(|(_, m)| &m[..]), 0, n)?;
        for (_, member) in &popped {
            z.remove(member)?;
        }
        if self.max {
            popped.reverse();
        }
        Ok(Some((0, into_owned(popped), (len - n) as usize)))
    }
}

/// Pops up to `count` entries from the first existing key of `keys` that
/// `servable` allows (blocked clients' order; lowest scores first unless
/// `max`).
pub(super) fn pop_first(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    servable: &[bool],
    count: usize,
    max: bool,
) -> Result<Option<Popped>, CmdError> {
    let buf = &mut ctx.conn.scratch;
    let pop = Pop {
        keys,
        servable,
        count,
        max,
        pass_over: ctx.conn.blocked.is_some(),
    };
    let cache = &mut ctx.thread.cache;
    if let [key] = keys {
        if servable[0] {
            return paged::update_one(
                cache,
                key,
                (&[], 0, 0),
                // (A pop of a missing key, a drained queue's, costs no call.)
                |items, changes, w| match items[0] {
                    None => Ok(None),
                    Some(_) => pop.whole(items, changes, w, buf),
                },
                |z| pop.paged(z),
            );
        }
    }
    // Several keys: the first servable one that exists is found with a
    // look-up per key, then popped like a single key (a paged set's end
    // leaves only, not the set read and rewritten whole) in an update
    // that also checks the servable keys before it are still missing;
    // when one appeared meanwhile, it is looked for again.
    let mut guarded = Vec::with_capacity(keys.len());
    for _ in 0..GUARDED_TRIES {
        let found = (0..keys.len()).find(|&i| servable[i] && cache.peek(keys[i], |_| ()).is_some());
        let Some(i) = found else {
            break;
        };
        if cache.peek(keys[i], |item| item.kind()) != Some(ZSET) {
            break;
        }
        guarded.clear();
        guarded.push(keys[i]);
        guarded.extend((0..i).filter(|&j| servable[j]).map(|j| keys[j]));
        let one = Pop {
            keys: &guarded[..1],
            servable: &[true],
            count,
            max,
            pass_over: pop.pass_over,
        };
        let popped = paged::update_guarded(
            cache,
            &guarded,
            |root| root.index_pages(std::iter::empty(), 0, 0),
            |items, changes, w| one.whole(items, changes, w, buf),
            |z| one.paged(z),
        )?;
        match popped {
            Some(Some((_, entries, left))) => return Ok(Some((i, entries, left))),
            // Emptied meanwhile: looked for again.
            Some(None) => {}
            // A key before it appeared: looked for again.
            None => {}
        }
    }
    // No key, another type first (WRONGTYPE in Redis's order), or keys
    // changing under every try: all keys in one update, read whole.
    update_whole(cache, keys, |items, changes, w| {
        pop.whole(items, changes, w, buf)
    })
}

/// Tries of the guarded multi-key pop before the whole-value path.
const GUARDED_TRIES: usize = 4;

fn zpop(ctx: &mut Ctx<'_>, args: Args<'_>, max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = if args.len() == 3 {
        match args.int(2) {
            Ok(n) if n >= 0 => Some(n as usize),
            _ => return Err(ZError::MustBePositive.into()),
        }
    } else {
        None
    };
    if count == Some(0) {
        // Nothing to pop, but the key's type is still checked.
        return with_entries(ctx, args.get(1), |out, _| {
            out.array(0);
            Ok(())
        });
    }
    let popped = pop_first(ctx, &[args.get(1)], &[true], count.unwrap_or(1), max)?;
    let popped = popped.map(|(_, p, _)| p).unwrap_or_default();
    match count {
        Some(_) => reply_owned(&mut ctx.out, &popped, true),
        None => {
            // One pop is a flat [member, score] in both protocols.
            ctx.out.array(2 * popped.len());
            for (score, member) in &popped {
                ctx.out.bulk(member);
                reply_score(&mut ctx.out, *score);
            }
        }
    }
    Ok(())
}

pub fn zpopmin(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    zpop(ctx, args, false)
}

pub fn zpopmax(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    zpop(ctx, args, true)
}

/// ZMPOP's (and BZMPOP's) arguments from `numkeys` at `at`: the keys,
/// MAX (else MIN), the count.
pub(super) fn parse_zmpop<'a>(
    args: &Args<'a>,
    at: usize,
) -> Result<(Vec<&'a [u8]>, bool, usize), CmdError> {
    if args.int(at).map_or(true, |n| n <= 0) {
        return Err(ZError::NumKeys.into());
    }
    let keys_at = numkeys_range(args, at).ok_or(CmdError::Syntax)?;
    let mut i = keys_at.end;
    let max = match args.get(i).to_ascii_lowercase().as_slice() {
        b"min" => false,
        b"max" => true,
        _ => return Err(CmdError::Syntax),
    };
    i += 1;
    let mut count = None;
    while i < args.len() {
        if !args.is(i, "count") || count.is_some() || i + 1 >= args.len() {
            return Err(CmdError::Syntax);
        }
        match args.int(i + 1) {
            Ok(n) if n > 0 => count = Some(n as usize),
            _ => return Err(ZError::Count.into()),
        }
        i += 2;
    }
    let keys = keys_at.map(|k| args.get(k)).collect();
    Ok((keys, max, count.unwrap_or(1)))
}

/// Replies `[key, [[member, score] ...]]` (ZMPOP, BZMPOP).
pub(super) fn reply_key_and_entries(ctx: &mut Ctx<'_>, key: &[u8], popped: &Owned) {
    ctx.out.array(2);
    ctx.out.bulk(key);
    ctx.out.array(popped.len());
    for (score, member) in popped {
        ctx.out.array(2);
        ctx.out.bulk(member);
        reply_score(&mut ctx.out, *score);
    }
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
pub fn zmpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (keys, max, count) = parse_zmpop(&args, 1)?;
    let servable = vec![true; keys.len()];
    match pop_first(ctx, &keys, &servable, count, max)? {
        None => ctx.out.null_array(),
        Some((k, popped, _)) => reply_key_and_entries(ctx, keys[k], &popped),
    }
    Ok(())
}
