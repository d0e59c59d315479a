//! Sorted-set commands: the shared loading, saving and reply helpers,
//! ZADD ZINCRBY ZSCORE ZMSCORE ZCARD ZREM ZRANK ZREVRANK, and the table
//! rows of every sorted-set command. Ranges are in `zset_range.rs`, pops,
//! random members and ZSCAN in `zset_pop.rs`, unions, intersections and
//! differences in `zset_algebra.rs`.
//!
//! Scores are replied as Redis 7.0 does (`%.17g`): a bulk string in RESP2,
//! a double in RESP3; WITHSCORES lists are flat in RESP2 and (member,
//! score) pairs in RESP3.

use std::borrow::Cow;

use citadel_cache::{CacheHandle, ValueKind};
use citadel_collections::rdb::{self, Dumpable};
use citadel_collections::zset::{self, Entry};
use citadel_collections::{Packed, ZSetEdit};
use citadel_resp::{num, Reply};

mod algebra;
mod blocking;
mod geo;
mod paged;
mod pop;
mod random;
mod range;
mod scan;
mod score;
mod whole;

pub use self::geo::COMMANDS as GEO_COMMANDS;
use self::paged::{is_paged, Fail, PagedZ};
use self::score::parse_score;
use self::whole::{update_store, update_whole};
use super::few::Few;
use super::value::{read, view};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

pub(super) const ZSET: ValueKind = ValueKind::ZSet;

/// Sorted-set errors with Redis's texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ZError {
    NanScore,
    NxXx,
    GtLtNx,
    IncrPair,
    MustBePositive,
    NumKeys,
    Count,
    MinMaxFloat,
    MinMaxLex,
    LimitWithRank,
    ScoresWithLex,
    WeightFloat,
    RandomRange,
}

impl From<ZError> for CmdError {
    fn from(e: ZError) -> CmdError {
        CmdError::Static(match e {
            ZError::NanScore => "ERR resulting score is not a number (NaN)",
            ZError::NxXx => "ERR XX and NX options at the same time are not compatible",
            ZError::GtLtNx => {
                "ERR GT, LT, and/or NX options at the same time are not compatible"
            }
            ZError::IncrPair => "ERR INCR option supports a single increment-element pair",
            ZError::MustBePositive => "ERR value is out of range, must be positive",
            ZError::NumKeys => "ERR numkeys should be greater than 0",
            ZError::Count => "ERR count should be greater than 0",
            ZError::MinMaxFloat => "ERR min or max is not a float",
            ZError::MinMaxLex => "ERR min or max not valid string range item",
            ZError::LimitWithRank => {
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
            }
            ZError::ScoresWithLex => {
                "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
            }
            ZError::WeightFloat => "ERR weight value is not a float",
            ZError::RandomRange => "ERR value is out of range",
        })
    }
}

/// Appends a score in RESP (see the module doc).
pub(super) fn reply_score(out: &mut Reply<'_>, score: f64) {
    if out.resp3 {
        out.buf.push(b',');
        num::push_g17(out.buf, score);
        out.crlf();
    } else {
        let mut text = Vec::with_capacity(24);
        num::push_g17(&mut text, score);
        out.bulk(&text);
    }
}

/// Replies `entries` as members, or members with scores.
pub(super) fn reply_entries<'e>(
    out: &mut Reply<'_>,
    entries: impl ExactSizeIterator<Item = &'e Entry<'e>>,
    with_scores: bool,
) {
    let n = entries.len();
    match (with_scores, out.resp3) {
        (false, _) => out.array(n),
        (true, false) => out.array(2 * n),
        (true, true) => out.array(n),
    }
    for &(score, member) in entries {
        if with_scores && out.resp3 {
            out.array(2);
        }
        out.bulk(member);
        if with_scores {
            reply_score(out, score);
        }
    }
}

/// Owned entries (popped in an `update` closure, replied after it).
pub(super) type Owned = Vec<(f64, Vec<u8>)>;

pub(super) fn owned(entries: &[Entry<'_>]) -> Owned {
    entries.iter().map(|&(s, m)| (s, m.to_vec())).collect()
}

pub(super) fn reply_owned(out: &mut Reply<'_>, entries: &Owned, with_scores: bool) {
    let borrowed: Vec<Entry<'_>> = entries.iter().map(|(s, m)| (*s, &m[..])).collect();
    reply_entries(out, borrowed.iter(), with_scores);
}

/// Runs `f` on the entries of the sorted set at `key` (none when missing).
pub(super) fn with_entries<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut Reply<'_>, &[Entry<'_>]) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let mut buf = std::mem::take(&mut ctx.conn.scratch);
    let result = read(&mut ctx.thread.cache, key, ZSET, &mut buf).and_then(|found| {
        let entries = zset::entries(view(&buf, found)?)?;
        f(&mut ctx.out, &entries)
    });
    buf.clear();
    ctx.conn.scratch = buf;
    result
}

/// ZADD's options.
#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What ZADD did.
#[derive(Default)]
struct Added {
    added: usize,
    updated: usize,
    /// The score of the last member not skipped (INCR's reply).
    last: Option<f64>,
}

fn parse_add(args: &Args<'_>) -> Result<(AddFlags, usize), CmdError> {
    let mut f = AddFlags::default();
    let mut i = 2;
    while i < args.len() {
        // (Compared in place: a lowered copy was an allocation per ZADD.)
        let flag = match args.get(i) {
            w if w.eq_ignore_ascii_case(b"nx") => &mut f.nx,
            w if w.eq_ignore_ascii_case(b"xx") => &mut f.xx,
            w if w.eq_ignore_ascii_case(b"gt") => &mut f.gt,
            w if w.eq_ignore_ascii_case(b"lt") => &mut f.lt,
            w if w.eq_ignore_ascii_case(b"ch") => &mut f.ch,
            w if w.eq_ignore_ascii_case(b"incr") => &mut f.incr,
            _ => break,
        };
        *flag = true;
        i += 1;
    }
    let elements = args.len() - i;
    if elements == 0 || !elements.is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if f.nx && f.xx {
        return Err(ZError::NxXx.into());
    }
    if (f.gt || f.lt) && f.nx || f.gt && f.lt {
        return Err(ZError::GtLtNx.into());
    }
    if f.incr && elements > 2 {
        return Err(ZError::IncrPair.into());
    }
    Ok((f, i))
}

/// A sorted set ZADD edits: packed (`ZSetEdit`) or paged (`PagedZ`).
trait Scores<'a> {
    fn score_of(&self, member: &[u8]) -> Result<Option<f64>, Fail>;
    /// Sets `member`'s score (`old`: its current one, if any).
    fn set_score(&mut self, member: &'a [u8], old: Option<f64>, score: f64) -> Result<(), Fail>;
}

impl<'a> Scores<'a> for ZSetEdit<'a> {
    fn score_of(&self, member: &[u8]) -> Result<Option<f64>, Fail> {
        Ok(self.score(member))
    }

    fn set_score(&mut self, member: &'a [u8], _: Option<f64>, score: f64) -> Result<(), Fail> {
        self.set(member, score);
        Ok(())
    }
}

impl<'a> Scores<'a> for PagedZ<'_> {
    fn score_of(&self, member: &[u8]) -> Result<Option<f64>, Fail> {
        self.score(member)
    }

    fn set_score(&mut self, member: &'a [u8], old: Option<f64>, score: f64) -> Result<(), Fail> {
        self.set(member, old, score)
    }
}

/// A packed edit's error (it never needs pages).
fn packed_error(fail: Fail) -> CmdError {
    match fail {
        Fail::Cmd(e) => e,
        Fail::Need(_) => CmdError::CorruptValue,
    }
}

/// Applies ZADD's pairs in order, as Redis's zsetAdd.
fn add_pairs<'a>(
    z: &mut impl Scores<'a>,
    pairs: &[(f64, &'a [u8])],
    f: AddFlags,
) -> Result<Added, Fail> {
    let mut done = Added::default();
    for &(mut score, member) in pairs {
        match z.score_of(member)? {
            Some(current) => {
                if f.nx {
                    continue;
                }
                if f.incr {
                    score += current;
                    if score.is_nan() {
                        return Err(Fail::Cmd(ZError::NanScore.into()));
                    }
                }
                if (f.lt && score >= current) || (f.gt && score <= current) {
                    continue;
                }
                if score != current {
                    z.set_score(member, Some(current), score)?;
                    done.updated += 1;
                }
            }
            None if f.xx => continue,
            None => {
                z.set_score(member, None, score)?;
                done.added += 1;
            }
        }
        done.last = Some(score);
    }
    Ok(done)
}

/// A ZADD argument pair: score, member.
type ScorePair<'a> = (f64, &'a [u8]);

/// Whether every pair's member is in the packed set `value` with that
/// score (ZADD without INCR then changes nothing, whatever its flags).
fn unchanged(value: Packed<'_>, pairs: &[ScorePair<'_>]) -> Result<bool, CmdError> {
    for &(score, member) in pairs {
        if zset::score_of(value, member)? != Some(score) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn zadd_with(ctx: &mut Ctx<'_>, args: Args<'_>, f: AddFlags, first: usize) -> CmdResult {
    // (One pair, the common ZADD, as an array; a few on the stack: no
    // allocation.)
    let pair = |i: usize| {
        let score = parse_score(args.get(i)).ok_or(CmdError::NotFloat)?;
        Ok((score, args.get(i + 1)))
    };
    let (one, one_member): ([ScorePair<'_>; 1], [&[u8]; 1]);
    let (few, few_members): (Few<ScorePair<'_>>, Few<&[u8]>);
    let (pairs, members): (&[ScorePair<'_>], &[&[u8]]);
    if args.len() - first == 2 {
        one = [pair(first)?];
        one_member = [one[0].1];
        (pairs, members) = (&one, &one_member);
    } else {
        few = (first..args.len())
            .step_by(2)
            .map(pair)
            .collect::<Result<_, CmdError>>()?;
        few_members = few.iter().map(|p| p.1).collect();
        (pairs, members) = (&few, &few_members);
    }
    let buf = &mut ctx.conn.scratch;
    let plan = (members, pairs.len() as u64, 0);
    let cache = &mut ctx.thread.cache;
    let done = paged::update_one(
        cache,
        args.get(1),
        plan,
        |items, changes, w| {
            let existing = w.load(items, 0, ZSET, buf)?;
            if existing.is_none() && f.xx {
                return Ok(Added::default());
            }
            let value = view(buf, existing.is_some())?;
            // Every member there with its score already (a repeated ZADD):
            // answered by a scan, nothing decoded or written.
            if !f.incr && unchanged(value, pairs)? {
                return Ok(Added::default());
            }
            let mut z = ZSetEdit::new(zset::entries(value)?);
            let done = add_pairs(&mut z, pairs, f).map_err(packed_error)?;
            if done.added + done.updated > 0 {
                w.save(changes, 0, &z, existing)?;
            }
            Ok(done)
        },
        |z| {
            // One round loads the tree paths of every entry named.
            let mut keys = Vec::with_capacity(2 * pairs.len());
            for &(score, member) in pairs.iter() {
                if let Some(old) = z.score(member)? {
                    keys.push((old, Cow::Borrowed(member)));
                }
                keys.push((score, Cow::Borrowed(member)));
            }
            z.prefetch(&keys)?;
            add_pairs(z, pairs, f)
        },
    )?;
    if f.incr {
        match done.last {
            Some(score) => reply_score(&mut ctx.out, score),
            None => ctx.out.null(),
        }
    } else {
        let n = done.added + if f.ch { done.updated } else { 0 };
        ctx.out.int(n as i64);
    }
    Ok(())
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
pub fn zadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (flags, first) = parse_add(&args)?;
    zadd_with(ctx, args, flags, first)
}

/// ZINCRBY key increment member: ZADD INCR.
pub fn zincrby(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let flags = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    zadd_with(ctx, args, flags, 2)
}

/// Runs `paged` on the sorted set at `key` if it is paged now, planning
/// the index pages of `members` (None: it is packed or missing; the
/// caller reads it as before). A read, or a write: what it changes in
/// the tree is stored in the same update.
fn run_paged<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    members: &[&[u8]],
    mut paged: impl FnMut(&mut PagedZ<'_>) -> Result<R, Fail>,
) -> Result<Option<R>, CmdError> {
    paged::read_one(&mut ctx.thread.cache, key, members, |z| paged(z))
}

/// The DUMP payload of the paged sorted set at `key`, its entries read in
/// order from its tree's pages alone (the same payload as from the set
/// read whole); None when it is not paged.
pub fn paged_dump(cache: &mut CacheHandle, key: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    if !is_paged(cache, key) {
        return Ok(None);
    }
    paged::update_one(
        cache,
        key,
        (&[], 0, 0),
        |_, _, _| Ok(None),
        |z| {
            let all = z.tree.range(0, z.len())?;
            let entries: Vec<Entry<'_>> = all.iter().map(|(s, m)| (*s, &m[..])).collect();
            Ok(Some(rdb::dump(Dumpable::ZSet {
                entries: &entries,
                // Paged past the listpack limits: a skiplist in Redis.
                listpack: false,
            })))
        },
    )
}

fn reply_maybe_score(out: &mut Reply<'_>, score: Option<f64>) {
    match score {
        Some(score) => reply_score(out, score),
        None => out.null(),
    }
}

pub fn zscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let member = args.get(2);
    if let Some(score) = run_paged(ctx, args.get(1), &[member], |z| z.score(member))? {
        reply_maybe_score(&mut ctx.out, score);
        return Ok(());
    }
    with_entries(ctx, args.get(1), |out, entries| {
        reply_maybe_score(out, entries.iter().find(|e| e.1 == member).map(|e| e.0));
        Ok(())
    })
}

/// The scores of `members` in the sorted set at `key` (None for a missing
/// member; all None for a missing key): ZMSCORE's, and GEO's positions.
pub(super) fn scores_of(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    members: &[&[u8]],
) -> Result<Vec<Option<f64>>, CmdError> {
    let paged = run_paged(ctx, key, members, |z| {
        members
            .iter()
            .map(|m| z.score(m))
            .collect::<Result<Vec<_>, _>>()
    })?;
    if let Some(scores) = paged {
        return Ok(scores);
    }
    with_entries(ctx, key, |_, entries| {
        let z = ZSetEdit::new(entries.to_vec());
        Ok(members.iter().map(|m| z.score(m)).collect())
    })
}

pub fn zmscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let members: Vec<&[u8]> = args.from(2).iter().collect();
    let scores = scores_of(ctx, args.get(1), &members)?;
    ctx.out.array(scores.len());
    scores
        .into_iter()
        .for_each(|s| reply_maybe_score(&mut ctx.out, s));
    Ok(())
}

pub fn zcard(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if let Some(len) = run_paged(ctx, args.get(1), &[], |z| Ok(z.len()))? {
        ctx.out.int(len as i64);
        return Ok(());
    }
    with_entries(ctx, args.get(1), |out, entries| {
        out.int(entries.len() as i64);
        Ok(())
    })
}

fn rank(ctx: &mut Ctx<'_>, args: Args<'_>, reverse: bool) -> CmdResult {
    let member = args.get(2);
    let paged = run_paged(ctx, args.get(1), &[member], |z| {
        let Some(score) = z.score(member)? else {
            return Ok(None);
        };
        let rank = z.tree.rank(&(score, Cow::Borrowed(member)))?;
        Ok(rank.map(|r| (r as usize, z.len() as usize)))
    })?;
    let found = match paged {
        Some(found) => found,
        None => with_entries(ctx, args.get(1), |_, entries| {
            Ok(entries
                .iter()
                .position(|e| e.1 == member)
                .map(|r| (r, entries.len())))
        })?,
    };
    match found {
        Some((r, len)) if reverse => ctx.out.int((len - 1 - r) as i64),
        Some((r, _)) => ctx.out.int(r as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

pub fn zrank(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    rank(ctx, args, false)
}

pub fn zrevrank(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    rank(ctx, args, true)
}

/// Removes what `pick` removes from the sorted set at `key` (saved when
/// anything went); replies how many.
pub(super) fn remove_and_count(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    pick: impl Fn(&mut ZSetEdit<'_>) -> usize,
) -> CmdResult {
    let buf = &mut ctx.conn.scratch;
    let removed = update_whole(&mut ctx.thread.cache, &[key], |items, changes, w| {
        let (existing, mut z) = w.load_edit(items, 0, buf)?;
        let removed = pick(&mut z);
        if removed > 0 {
            w.save(changes, 0, &z, existing)?;
        }
        Ok(removed)
    })?;
    ctx.out.int(removed as i64);
    Ok(())
}

/// ZREM key member [member ...]: how many were removed.
pub fn zrem(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let members: Vec<&[u8]> = args.from(2).iter().collect();
    let buf = &mut ctx.conn.scratch;
    let plan = (&members[..], 0, members.len() as u64);
    let cache = &mut ctx.thread.cache;
    let removed = paged::update_one(
        cache,
        args.get(1),
        plan,
        |items, changes, w| {
            let (existing, mut z) = w.load_edit(items, 0, buf)?;
            let removed = members.iter().filter(|m| z.remove(m).is_some()).count();
            if removed > 0 {
                w.save(changes, 0, &z, existing)?;
            }
            Ok(removed)
        },
        |z| {
            let mut keys = Vec::with_capacity(members.len());
            for member in &members {
                if let Some(score) = z.score(member)? {
                    keys.push((score, Cow::Borrowed(&member[..])));
                }
            }
            z.prefetch(&keys)?;
            let mut removed = 0;
            for member in &members {
                removed += usize::from(z.remove(member)?.is_some());
            }
            Ok(removed)
        },
    )?;
    ctx.out.int(removed as i64);
    Ok(())
}

/// The packed value of a set (kind Set) read as a sorted set: every
/// member scores 1, as Redis's ZUNION/ZINTER read plain sets.
pub(super) fn set_as_entries(packed: Packed<'_>) -> Result<Vec<Entry<'_>>, CmdError> {
    let mut entries: Vec<Entry<'_>> = packed
        .iter()
        .map(|m| m.map(|m| (1.0, m)))
        .collect::<Result<_, _>>()?;
    entries.sort_by(zset::cmp);
    Ok(entries)
}

/// The keys of ZMPOP, ZUNION, ZINTER, ZDIFF, ZINTERCARD: `numkeys` at
/// argument `at`, the keys after it; None when numkeys is bad.
pub(super) fn numkeys_range(args: &Args<'_>, at: usize) -> Option<std::ops::Range<usize>> {
    let n = args.int(at).ok().filter(|&n| n > 0)? as u64;
    let first = at + 1;
    (n <= args.len().saturating_sub(first) as u64).then(|| first..first + n as usize)
}

use self::algebra as alg;
use crate::command::table::{c, CommandDef, KEY1, KEYS_2, NOKEYS, R, RF, W, WF, WM, WMF};

const Z: &str = "sorted-set";
/// Commands whose keys follow a numkeys argument (found by
/// `zset_algebra::numkeys_at_1` / `dest_and_numkeys_at_2`).
const R_MOVABLE: &[&str] = &["readonly", "movablekeys"];
const W_MOVABLE: &[&str] = &["write", "movablekeys"];
const WM_MOVABLE: &[&str] = &["write", "denyoom", "movablekeys"];

#[rustfmt::skip]
pub static COMMANDS: &[CommandDef] = &[
    c("zadd", -4, WMF, KEY1, Z, "1.2.0", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", zadd),
    c("zincrby", 4, WMF, KEY1, Z, "1.2.0", "Increments the score of a member in a sorted set.", zincrby),
    c("zscore", 3, RF, KEY1, Z, "1.2.0", "Returns the score of a member in a sorted set.", zscore),
    c("zmscore", -3, RF, KEY1, Z, "6.2.0", "Returns the score of one or more members in a sorted set.", zmscore),
    c("zcard", 2, RF, KEY1, Z, "1.2.0", "Returns the number of members in a sorted set.", zcard),
    c("zrem", -3, WF, KEY1, Z, "1.2.0", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", zrem),
    c("zrank", 3, RF, KEY1, Z, "2.0.0", "Returns the index of a member in a sorted set ordered by ascending scores.", zrank),
    c("zrevrank", 3, RF, KEY1, Z, "2.0.0", "Returns the index of a member in a sorted set ordered by descending scores.", zrevrank),
    c("zrange", -4, R, KEY1, Z, "1.2.0", "Returns members in a sorted set within a range of indexes.", range::zrange),
    c("zrevrange", -4, R, KEY1, Z, "1.2.0", "Returns members in a sorted set within a range of indexes in reverse order.", range::zrevrange),
    c("zrangebyscore", -4, R, KEY1, Z, "1.0.5", "Returns members in a sorted set within a range of scores.", range::zrangebyscore),
    c("zrevrangebyscore", -4, R, KEY1, Z, "2.2.0", "Returns members in a sorted set within a range of scores in reverse order.", range::zrevrangebyscore),
    c("zrangebylex", -4, R, KEY1, Z, "2.8.9", "Returns members in a sorted set within a lexicographical range.", range::zrangebylex),
    c("zrevrangebylex", -4, R, KEY1, Z, "2.8.9", "Returns members in a sorted set within a lexicographical range in reverse order.", range::zrevrangebylex),
    c("zrangestore", -5, WM, KEYS_2, Z, "6.2.0", "Stores a range of members from sorted set in a key.", range::zrangestore),
    c("zcount", 4, RF, KEY1, Z, "2.0.0", "Returns the count of members in a sorted set that have scores within a range.", range::zcount),
    c("zlexcount", 4, RF, KEY1, Z, "2.8.9", "Returns the number of members in a sorted set within a lexicographical range.", range::zlexcount),
    c("zremrangebyrank", 4, W, KEY1, Z, "2.0.0", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", range::zremrangebyrank),
    c("zremrangebyscore", 4, W, KEY1, Z, "1.2.0", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", range::zremrangebyscore),
    c("zremrangebylex", 4, W, KEY1, Z, "2.8.9", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", range::zremrangebylex),
    c("zpopmin", -2, WF, KEY1, Z, "5.0.0", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", pop::zpopmin),
    c("zpopmax", -2, WF, KEY1, Z, "5.0.0", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", pop::zpopmax),
    c("zmpop", -4, W_MOVABLE, NOKEYS, Z, "7.0.0", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", pop::zmpop).finding_keys(alg::numkeys_at_1),
    c("zrandmember", -2, R, KEY1, Z, "6.2.0", "Returns one or more random members from a sorted set.", random::zrandmember),
    c("zscan", -3, R, KEY1, Z, "2.8.0", "Iterates over members and scores of a sorted set.", scan::zscan),
    c("zunion", -3, R_MOVABLE, NOKEYS, Z, "6.2.0", "Returns the union of multiple sorted sets.", alg::zunion).finding_keys(alg::numkeys_at_1),
    c("zinter", -3, R_MOVABLE, NOKEYS, Z, "6.2.0", "Returns the intersect of multiple sorted sets.", alg::zinter).finding_keys(alg::numkeys_at_1),
    c("zdiff", -3, R_MOVABLE, NOKEYS, Z, "6.2.0", "Returns the difference between multiple sorted sets.", alg::zdiff).finding_keys(alg::numkeys_at_1),
    c("zintercard", -3, R_MOVABLE, NOKEYS, Z, "7.0.0", "Returns the number of members of the intersect of multiple sorted sets.", alg::zintercard).finding_keys(alg::numkeys_at_1),
    c("zunionstore", -4, WM_MOVABLE, KEY1, Z, "2.0.0", "Stores the union of multiple sorted sets in a key.", alg::zunionstore).finding_keys(alg::dest_and_numkeys_at_2),
    c("zinterstore", -4, WM_MOVABLE, KEY1, Z, "2.0.0", "Stores the intersect of multiple sorted sets in a key.", alg::zinterstore).finding_keys(alg::dest_and_numkeys_at_2),
    c("zdiffstore", -4, WM_MOVABLE, KEY1, Z, "6.2.0", "Stores the difference of multiple sorted sets in a key.", alg::zdiffstore).finding_keys(alg::dest_and_numkeys_at_2),
    c("bzpopmin", -3, BLOCKING, (1, -2, 1), Z, "5.0.0", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", blocking::bzpopmin),
    c("bzpopmax", -3, BLOCKING, (1, -2, 1), Z, "5.0.0", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise. Deletes the sorted set if the last element was popped.", blocking::bzpopmax),
    c("bzmpop", -5, &["write", "blocking", "movablekeys"], NOKEYS, Z, "7.0.0", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", blocking::bzmpop).finding_keys(blocking::bzmpop_keys),
];

const BLOCKING: &[&str] = &["write", "noscript", "blocking", "fast"];
