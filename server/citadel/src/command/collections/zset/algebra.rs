//! Sorted-set algebra: ZUNION ZINTER ZDIFF (WEIGHTS, AGGREGATE,
//! WITHSCORES), their STORE forms and ZINTERCARD, computed as Redis's
//! zunionInterDiffGenericCommand computes them (inputs sorted by size for
//! union and intersection, so sums add in Redis's order; NaN sums are 0;
//! plain sets read as members scoring 1).

use std::collections::HashMap;
use std::ops::Range;

use citadel_cache::{ItemRef, ValueKind};
use citadel_collections::zset::{self, Entry};
use citadel_collections::{Packed, ZSetEdit};

use super::whole::{update_store, Whole};
use super::{numkeys_range, owned, reply_owned, set_as_entries, Owned, ZError};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
    /// ZINTERCARD: the intersection's size only.
    InterCard,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, target: &mut f64, value: f64) {
        match self {
            Aggregate::Sum => {
                *target += value;
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => {
                if value < *target {
                    *target = value;
                }
            }
            Aggregate::Max => {
                if value > *target {
                    *target = value;
                }
            }
        }
    }
}

/// A parsed union / intersection / difference.
struct Request {
    weights: Vec<f64>,
    aggregate: Aggregate,
    with_scores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    limit: usize,
}

/// The command name Redis quotes in "at least 1 input key" errors.
fn name_of(op: Op, store: bool) -> &'static str {
    match (op, store) {
        (Op::Union, false) => "zunion",
        (Op::Union, true) => "zunionstore",
        (Op::Inter, false) => "zinter",
        (Op::Inter, true) => "zinterstore",
        (Op::Diff, false) => "zdiff",
        (Op::Diff, true) => "zdiffstore",
        (Op::InterCard, _) => "zintercard",
    }
}

/// The numkeys and key checks (before the keys are read).
fn parse_keys(args: &Args<'_>, op: Op, at: usize, store: bool) -> Result<Range<usize>, CmdError> {
    if args.int(at)? < 1 {
        return Err(CmdError::Text(format!(
            "ERR at least 1 input key is needed for '{}' command",
            name_of(op, store)
        )));
    }
    numkeys_range(args, at).ok_or(CmdError::Syntax)
}

/// The options after the keys (parsed after the keys' types are checked,
/// as Redis does).
fn parse_options(
    args: &Args<'_>,
    op: Op,
    keys: Range<usize>,
    store: bool,
) -> Result<Request, CmdError> {
    let n = keys.len();
    let mut req = Request {
        weights: vec![1.0; n],
        aggregate: Aggregate::Sum,
        with_scores: false,
        limit: 0,
    };
    let algebra = matches!(op, Op::Union | Op::Inter);
    let mut j = keys.end;
    while j < args.len() {
        let remaining = args.len() - j;
        if algebra && remaining > n && args.is(j, "weights") {
            for w in &mut req.weights {
                j += 1;
                *w = super::parse_score(args.get(j)).ok_or(ZError::WeightFloat)?;
            }
        } else if algebra && remaining >= 2 && args.is(j, "aggregate") {
            j += 1;
            req.aggregate = match args.get(j).to_ascii_lowercase().as_slice() {
                b"sum" => Aggregate::Sum,
                b"min" => Aggregate::Min,
                b"max" => Aggregate::Max,
                _ => return Err(CmdError::Syntax),
            };
        } else if !store && op != Op::InterCard && args.is(j, "withscores") {
            req.with_scores = true;
        } else if op == Op::InterCard && remaining >= 2 && args.is(j, "limit") {
            j += 1;
            req.limit = args
                .int(j)
                .ok()
                .and_then(|l| usize::try_from(l).ok())
                .ok_or(CmdError::Static("ERR LIMIT can't be negative"))?;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(req)
}

/// Copies a source's value into `buf`: true for a sorted set, false for
/// a set (or a missing key, left empty); WRONGTYPE for anything else.
fn load_source(
    items: &[Option<ItemRef<'_>>],
    i: usize,
    w: &Whole<'_>,
    buf: &mut Vec<u8>,
) -> Result<bool, CmdError> {
    buf.clear();
    let Some(item) = &items[i] else {
        return Ok(true);
    };
    let kind = item.kind();
    match kind {
        ValueKind::ZSet | ValueKind::Set => w.load(items, i, kind, buf)?,
        _ => return Err(CmdError::WrongType),
    };
    Ok(kind == ValueKind::ZSet)
}

fn source_entries(buf: &[u8], is_zset: bool) -> Result<Vec<Entry<'_>>, CmdError> {
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    let packed = Packed::parse(buf)?;
    if is_zset {
        Ok(zset::entries(packed)?)
    } else {
        set_as_entries(packed)
    }
}

/// The result, sorted, or its size for ZINTERCARD.
fn compute<'e>(op: Op, req: &Request, sources: &[Vec<Entry<'e>>]) -> (Vec<Entry<'e>>, usize) {
    let mut inputs: Vec<(&[Entry<'e>], f64)> = sources
        .iter()
        .zip(&req.weights)
        .map(|(s, &w)| (&s[..], w))
        .collect();
    if op != Op::Diff {
        inputs.sort_by_key(|(s, _)| s.len());
    }
    let weighted = |score: f64, w: f64| {
        let v = score * w;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    let mut out: Vec<Entry<'e>> = Vec::new();
    let mut card = 0;
    match op {
        Op::Union => {
            let mut acc: HashMap<&[u8], f64> = HashMap::new();
            let mut order: Vec<&'e [u8]> = Vec::new();
            for (source, w) in &inputs {
                for &(score, member) in source.iter() {
                    let v = weighted(score, *w);
                    match acc.get_mut(member) {
                        Some(total) => req.aggregate.apply(total, v),
                        None => {
                            acc.insert(member, v);
                            order.push(member);
                        }
                    }
                }
            }
            out = order.into_iter().map(|m| (acc[m], m)).collect();
        }
        Op::Inter | Op::InterCard => {
            let finders: Vec<ZSetEdit<'e>> = inputs
                .iter()
                .map(|(s, _)| ZSetEdit::new(s.to_vec()))
                .collect();
            let Some((first, w0)) = inputs.first() else {
                return (out, 0);
            };
            'members: for &(score, member) in first.iter() {
                let mut total = weighted(score, *w0);
                for (finder, (_, w)) in finders.iter().zip(&inputs).skip(1) {
                    let Some(s) = finder.score(member) else {
                        continue 'members;
                    };
                    req.aggregate.apply(&mut total, s * w);
                }
                card += 1;
                if op == Op::InterCard {
                    if req.limit > 0 && card >= req.limit {
                        break;
                    }
                } else {
                    out.push((total, member));
                }
            }
        }
        Op::Diff => {
            let others: Vec<ZSetEdit<'e>> = inputs[1..]
                .iter()
                .map(|(s, _)| ZSetEdit::new(s.to_vec()))
                .collect();
            out = inputs[0]
                .0
                .iter()
                .filter(|(_, m)| others.iter().all(|o| o.score(m).is_none()))
                .copied()
                .collect();
        }
    }
    out.sort_by(zset::cmp);
    (out, card)
}

/// What the closure hands back to be replied.
enum Outcome {
    Entries(Owned),
    Count(usize),
}

fn run(ctx: &mut Ctx<'_>, args: Args<'_>, op: Op, store: bool) -> CmdResult {
    let at = if store { 2 } else { 1 };
    let keys = parse_keys(&args, op, at, store)?;
    let mut names: Vec<&[u8]> = Vec::with_capacity(keys.len() + 1);
    if store {
        names.push(args.get(1));
    }
    names.extend(keys.clone().map(|k| args.get(k)));
    let first = usize::from(store);
    let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); keys.len()];
    let outcome = update_store(&mut ctx.thread.cache, &names, store, |items, changes, w| {
        let mut kinds = Vec::with_capacity(bufs.len());
        for (at, buf) in bufs.iter_mut().enumerate() {
            kinds.push(load_source(items, first + at, w, buf)?);
        }
        let req = parse_options(&args, op, keys.clone(), store)?;
        let sources = bufs
            .iter()
            .zip(kinds)
            .map(|(buf, is_zset)| source_entries(buf, is_zset))
            .collect::<Result<Vec<_>, _>>()?;
        let (result, card) = compute(op, &req, &sources);
        if op == Op::InterCard {
            return Ok((Outcome::Count(card), false));
        }
        if store {
            w.replace(changes, 0, items[0].is_some(), &result)?;
            return Ok((Outcome::Count(result.len()), false));
        }
        Ok((Outcome::Entries(owned(&result)), req.with_scores))
    })?;
    match outcome {
        (Outcome::Count(n), _) => ctx.out.int(n as i64),
        (Outcome::Entries(entries), with_scores) => {
            reply_owned(&mut ctx.out, &entries, with_scores)
        }
    }
    Ok(())
}

pub fn zunion(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Op::Union, false)
}

pub fn zinter(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Op::Inter, false)
}

pub fn zdiff(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Op::Diff, false)
}

pub fn zunionstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Op::Union, true)
}

pub fn zinterstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Op::Inter, true)
}

pub fn zdiffstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Op::Diff, true)
}

pub fn zintercard(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Op::InterCard, false)
}

/// Keys of ZUNION ZINTER ZDIFF ZINTERCARD ZMPOP (numkeys at 1).
pub fn numkeys_at_1<'a>(args: Args<'a>, f: &mut dyn FnMut(&'a [u8])) {
    if let Some(keys) = numkeys_range(&args, 1) {
        keys.for_each(|i| f(args.get(i)));
    }
}

/// Keys of the STORE forms: the destination, then numkeys at 2.
pub fn dest_and_numkeys_at_2<'a>(args: Args<'a>, f: &mut dyn FnMut(&'a [u8])) {
    f(args.get(1));
    if let Some(keys) = numkeys_range(&args, 2) {
        keys.for_each(|i| f(args.get(i)));
    }
}
