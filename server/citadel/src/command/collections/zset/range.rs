//! Sorted-set ranges: ZRANGE (BYSCORE BYLEX REV LIMIT WITHSCORES) and its
//! older forms ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX
//! ZREVRANGEBYLEX, ZRANGESTORE, ZCOUNT, ZLEXCOUNT and ZREMRANGEBYRANK /
//! BYSCORE / BYLEX. One parser serves them all, as Redis's
//! zrangeGenericCommand, so each form has Redis's errors.

use std::ops::Range;

use citadel_collections::zset::tree::into_owned;
use citadel_collections::zset::{self, Entry};
use citadel_collections::{LexRange, ScoreRange};

use super::paged::{gather, is_paged, update_into, Fail, PagedZ};
use super::{
    remove_and_count, reply_entries, reply_owned, run_paged, update_store, with_entries, Owned,
    ZError, ZSET,
};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// What a range counts in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// Parsed bounds.
enum Bounds<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

/// A parsed range request.
struct Query<'a> {
    bounds: Bounds<'a>,
    rev: bool,
    with_scores: bool,
    /// LIMIT offset count (count -1: no limit).
    offset: i64,
    count: i64,
}

fn parse_bounds<'a>(by: By, min: &'a [u8], max: &'a [u8]) -> Result<Bounds<'a>, CmdError> {
    let int = |arg: &[u8]| citadel_resp::num::parse_i64(arg).ok_or(CmdError::NotInteger);
    Ok(match by {
        By::Rank => Bounds::Rank(int(min)?, int(max)?),
        By::Score => Bounds::Score(score_range(min, max)?),
        By::Lex => Bounds::Lex(LexRange::parse(min, max).ok_or(ZError::MinMaxLex)?),
    })
}

/// Score bounds as Redis's zslParseRange reads them (strtod: decimal or
/// hex floats, out of range saturating; see `ScoreRange::parse`).
fn score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, ZError> {
    fn strtod(text: &[u8]) -> Option<f64> {
        citadel_resp::num::strtod_hex_f64(text)
            .or_else(|| std::str::from_utf8(text).ok()?.parse().ok())
    }
    ScoreRange::parse(min, max, strtod).ok_or(ZError::MinMaxFloat)
}

/// Parses `src min max [options]` at `at` (the source key's index);
/// `by`/`rev` are preset by the older command forms, which then refuse
/// those options.
fn parse_query<'a>(
    args: &Args<'a>,
    at: usize,
    by: Option<By>,
    rev: Option<bool>,
    store: bool,
) -> Result<Query<'a>, CmdError> {
    let (mut by_opt, mut rev_opt) = (by, rev);
    let (mut with_scores, mut offset, mut count) = (false, 0, -1);
    let mut i = at + 3;
    while i < args.len() {
        let left = args.len() - i - 1;
        if args.is(i, "withscores") && !store {
            with_scores = true;
        } else if args.is(i, "limit") && left >= 2 {
            offset = args.int(i + 1)?;
            count = args.int(i + 2)?;
            i += 2;
        } else if args.is(i, "rev") && rev_opt.is_none() {
            rev_opt = Some(true);
        } else if args.is(i, "bylex") && by_opt.is_none() {
            by_opt = Some(By::Lex);
        } else if args.is(i, "byscore") && by_opt.is_none() {
            by_opt = Some(By::Score);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let (by, rev) = (by_opt.unwrap_or(By::Rank), rev_opt.unwrap_or(false));
    if count != -1 && by == By::Rank {
        return Err(ZError::LimitWithRank.into());
    }
    if with_scores && by == By::Lex {
        return Err(ZError::ScoresWithLex.into());
    }
    let (mut min, mut max) = (args.get(at + 1), args.get(at + 2));
    if rev && by != By::Rank {
        // Given as max, min.
        std::mem::swap(&mut min, &mut max);
    }
    Ok(Query {
        bounds: parse_bounds(by, min, max)?,
        rev,
        with_scores,
        offset,
        count,
    })
}

/// Ranks `start..=end` (negative from the end) clamped to `len`.
fn rank_span(start: i64, end: i64, len: usize) -> Range<usize> {
    let len = len as i64;
    let start = if start < 0 {
        (start + len).max(0)
    } else {
        start
    };
    let end = if end < 0 { end + len } else { end.min(len - 1) };
    if start > end || start >= len {
        return 0..0;
    }
    start as usize..end as usize + 1
}

/// The ranks (forward) a rank or score query selects, `span` being the
/// ranks a score range covers; the reply lists them backward when
/// `q.rev`. For a score range this is Redis's walk (LIMIT's offset then
/// count, from the low end, or the high end when reversed).
fn selected_ranks(q: &Query<'_>, len: usize, span: Range<usize>) -> Range<usize> {
    match &q.bounds {
        Bounds::Rank(start, end) => {
            // A rank range takes no LIMIT (only "LIMIT n -1" gets this
            // far, and Redis ignores it).
            let r = rank_span(*start, *end, len);
            match q.rev {
                true => len - r.end..len - r.start,
                false => r,
            }
        }
        _ if span.is_empty() || q.offset < 0 => 0..0,
        _ => {
            let offset = usize::try_from(q.offset).unwrap_or(usize::MAX);
            let limit = usize::try_from(q.count).unwrap_or(usize::MAX);
            if q.rev {
                let top = span.end.saturating_sub(offset).max(span.start);
                top.saturating_sub(limit).max(span.start)..top
            } else {
                let low = span.start.saturating_add(offset).min(span.end);
                low..low.saturating_add(limit).min(span.end)
            }
        }
    }
}

/// The entries a query selects, in reply order.
fn select<'e>(q: &Query<'_>, entries: &[Entry<'e>]) -> Vec<Entry<'e>> {
    let span = match &q.bounds {
        Bounds::Rank(..) => 0..0,
        Bounds::Score(range) => range.span(entries),
        Bounds::Lex(range) if q.rev => {
            return walk(q, entries, range.last(entries), |i| {
                range.continues_backward(entries[i].1)
            })
        }
        Bounds::Lex(range) => {
            return walk(q, entries, range.first(entries), |i| {
                range.continues_forward(entries[i].1)
            })
        }
    };
    let ranks = selected_ranks(q, entries.len(), span);
    let picked = entries[ranks].iter().copied();
    match q.rev {
        true => picked.rev().collect(),
        false => picked.collect(),
    }
}

/// The ranks of a paged sorted set's entries in a score range.
pub(super) fn paged_span(z: &mut PagedZ<'_>, range: &ScoreRange) -> Result<Range<usize>, Fail> {
    let mut need = Vec::new();
    let start = gather(z.tree.count_before(|k| !range.above_min(k.0)), &mut need)?;
    let end = gather(z.tree.count_before(|k| range.below_max(k.0)), &mut need)?;
    match (start, end) {
        (Some(start), Some(end)) => Ok(start as usize..end.max(start) as usize),
        _ => Err(Fail::Need(need)),
    }
}

/// The ranks of a paged sorted set's members in a lex range when every
/// score is equal (the first and last are: members are then in order and
/// the range is one run, which Redis's walk covers); None with mixed
/// scores, where Redis's walk is not one run and the whole set is read.
fn paged_lex_span(z: &mut PagedZ<'_>, range: &LexRange<'_>) -> Result<Option<Range<usize>>, Fail> {
    let len = z.len();
    if len == 0 {
        return Ok(Some(0..0));
    }
    // All four paths in one round per level.
    let mut need = Vec::new();
    let first = gather(z.tree.range(0, 1), &mut need)?;
    let last = gather(z.tree.range(len - 1, len), &mut need)?;
    let start = gather(z.tree.count_before(|k| !range.above_min(&k.1)), &mut need)?;
    let end = gather(z.tree.count_before(|k| range.below_max(&k.1)), &mut need)?;
    let (Some(first), Some(last), Some(start), Some(end)) = (first, last, start, end) else {
        return Err(Fail::Need(need));
    };
    match (first.first(), last.first()) {
        (Some(a), Some(b)) if a.0 == b.0 => Ok(Some(start as usize..end.max(start) as usize)),
        _ => Ok(None),
    }
}

/// A query on a paged sorted set: the entries, in reply order (reads the
/// pages of the selected ranks only); None for a lex range over mixed
/// scores.
fn select_paged(q: &Query<'_>, z: &mut PagedZ<'_>) -> Result<Option<Owned>, Fail> {
    let span = match &q.bounds {
        Bounds::Score(range) => paged_span(z, range)?,
        Bounds::Lex(range) => match paged_lex_span(z, range)? {
            Some(span) => span,
            None => return Ok(None),
        },
        Bounds::Rank(..) => 0..0,
    };
    let ranks = selected_ranks(q, z.len() as usize, span);
    let mut picked = z.tree.range(ranks.start as u64, ranks.end as u64)?;
    if q.rev {
        picked.reverse();
    }
    Ok(Some(into_owned(picked)))
}

/// Redis's walk over a score or lex range: from `start`, LIMIT's offset
/// steps are skipped unchecked, then entries are taken while `goes_on`
/// (with mixed scores a lex range is not one run, and this is what Redis
/// answers).
fn walk<'e>(
    q: &Query<'_>,
    entries: &[Entry<'e>],
    start: Option<usize>,
    goes_on: impl Fn(usize) -> bool,
) -> Vec<Entry<'e>> {
    let Some(start) = start.filter(|_| q.offset >= 0) else {
        return Vec::new();
    };
    let offset = usize::try_from(q.offset).unwrap_or(usize::MAX);
    let limit = usize::try_from(q.count).unwrap_or(usize::MAX);
    let ranks: Box<dyn Iterator<Item = usize>> = if q.rev {
        Box::new((0..=start).rev())
    } else {
        Box::new(start..entries.len())
    };
    ranks
        .skip(offset)
        .take_while(|&i| goes_on(i))
        .take(limit)
        .map(|i| entries[i])
        .collect()
}

fn range_command(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    by: Option<By>,
    rev: Option<bool>,
) -> CmdResult {
    let q = parse_query(&args, 1, by, rev, false)?;
    if let Some(Some(picked)) = run_paged(ctx, args.get(1), &[], |z| select_paged(&q, z))? {
        reply_owned(&mut ctx.out, &picked, q.with_scores);
        return Ok(());
    }
    with_entries(ctx, args.get(1), |out, entries| {
        let picked = select(&q, entries);
        reply_entries(out, picked.iter(), q.with_scores);
        Ok(())
    })
}

pub fn zrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_command(ctx, args, None, None)
}

pub fn zrevrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_command(ctx, args, Some(By::Rank), Some(true))
}

pub fn zrangebyscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_command(ctx, args, Some(By::Score), Some(false))
}

pub fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_command(ctx, args, Some(By::Score), Some(true))
}

pub fn zrangebylex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_command(ctx, args, Some(By::Lex), Some(false))
}

pub fn zrevrangebylex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_command(ctx, args, Some(By::Lex), Some(true))
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]:
/// the size of dst, which is replaced (deleted when the range is empty).
pub fn zrangestore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let q = parse_query(&args, 2, None, None, true)?;
    let keys = [args.get(1), args.get(2)];
    // A paged source: only the pages of the range are read.
    if is_paged(&mut ctx.thread.cache, keys[1]) {
        let stored = update_into(&mut ctx.thread.cache, keys, |z, items, changes, w| {
            let Some(picked) = select_paged(&q, z)? else {
                return Ok(None);
            };
            let mut sorted: Vec<Entry<'_>> = picked.iter().map(|(s, m)| (*s, &m[..])).collect();
            sorted.sort_by(zset::cmp);
            w.replace(changes, 0, items[0].is_some(), &sorted)?;
            Ok(Some(sorted.len()))
        })?;
        if let Some(stored) = stored {
            ctx.out.int(stored as i64);
            return Ok(());
        }
    }
    let src_buf = &mut ctx.conn.scratch;
    let stored = update_store(&mut ctx.thread.cache, &keys, true, |items, changes, w| {
        let found = w.load(items, 1, ZSET, src_buf)?.is_some();
        let entries = zset::entries(super::super::value::view(src_buf, found)?)?;
        let mut sorted = select(&q, &entries);
        sorted.sort_by(zset::cmp);
        w.replace(changes, 0, items[0].is_some(), &sorted)?;
        Ok(sorted.len())
    })?;
    ctx.out.int(stored as i64);
    Ok(())
}

/// ZCOUNT key min max
pub fn zcount(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let range = score_range(args.get(2), args.get(3))?;
    if let Some(span) = run_paged(ctx, args.get(1), &[], |z| paged_span(z, &range))? {
        ctx.out.int(span.len() as i64);
        return Ok(());
    }
    with_entries(ctx, args.get(1), |out, entries| {
        out.int(range.span(entries).len() as i64);
        Ok(())
    })
}

/// ZLEXCOUNT key min max
pub fn zlexcount(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let range = LexRange::parse(args.get(2), args.get(3)).ok_or(ZError::MinMaxLex)?;
    if let Some(Some(span)) = run_paged(ctx, args.get(1), &[], |z| paged_lex_span(z, &range))? {
        ctx.out.int(span.len() as i64);
        return Ok(());
    }
    with_entries(ctx, args.get(1), |out, entries| {
        out.int(range.span(entries).len() as i64);
        Ok(())
    })
}

/// The ranks a ZREMRANGEBY* removes from a paged sorted set (None: a lex
/// range over mixed scores, removed through the whole set).
fn paged_removal(bounds: &Bounds<'_>, z: &mut PagedZ<'_>) -> Result<Option<Range<usize>>, Fail> {
    Ok(Some(match bounds {
        Bounds::Rank(start, end) => rank_span(*start, *end, z.len() as usize),
        Bounds::Score(range) => paged_span(z, range)?,
        Bounds::Lex(range) => match paged_lex_span(z, range)? {
            Some(span) => span,
            None => return Ok(None),
        },
    }))
}

/// Removes the ranks `bounds` select (forward); replies how many. On a
/// paged set: the range's leaves and its members' index pages only.
fn remove_range(ctx: &mut Ctx<'_>, args: Args<'_>, by: By) -> CmdResult {
    let bounds = parse_bounds(by, args.get(2), args.get(3))?;
    let paged = run_paged(ctx, args.get(1), &[], |z| {
        let Some(span) = paged_removal(&bounds, z)? else {
            return Ok(None);
        };
        let doomed = z.tree.range(span.start as u64, span.end as u64)?;
        z.need_members(doomed.iter().map(|(_, m)| &m[..]), 0, doomed.len() as u64)?;
        for (_, member) in &doomed {
            z.remove(member)?;
        }
        Ok(Some(doomed.len()))
    })?;
    if let Some(Some(removed)) = paged {
        ctx.out.int(removed as i64);
        return Ok(());
    }
    remove_and_count(ctx, args.get(1), |z| {
        let span = match &bounds {
            Bounds::Rank(start, end) => rank_span(*start, *end, z.len()),
            Bounds::Score(range) => range.span(z.entries()),
            Bounds::Lex(range) => range.span(z.entries()),
        };
        z.remove_ranks(span).len()
    })
}

pub fn zremrangebyrank(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    remove_range(ctx, args, By::Rank)
}

pub fn zremrangebyscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    remove_range(ctx, args, By::Score)
}

pub fn zremrangebylex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    remove_range(ctx, args, By::Lex)
}

#[cfg(test)]
mod tests {
    use super::rank_span;

    #[test]
    fn ranks_clamp_like_redis() {
        assert_eq!(rank_span(0, -1, 3), 0..3);
        assert_eq!(rank_span(-100, 100, 3), 0..3);
        assert_eq!(rank_span(2, 1, 3), 0..0);
        assert_eq!(rank_span(3, 5, 3), 0..0);
        assert_eq!(rank_span(-1, -1, 3), 2..3);
        assert_eq!(rank_span(0, -4, 3), 0..0);
        assert_eq!(rank_span(0, 0, 0), 0..0);
    }
}
