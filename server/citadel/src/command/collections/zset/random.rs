//! ZRANDMEMBER key [count [WITHSCORES]], as Redis 7.0 answers it. A packed
//! sorted set is read whole. A paged one draws from a random run of its
//! member index's pages holding at least `count` members
//! (`linear::random_pages`, as HRANDFIELD and SRANDMEMBER do), so one
//! random member of a 10M-member set reads a few pages, not the set.

use citadel_collections::zset::paged::BASE;
use citadel_collections::zset::Entry;
use citadel_resp::Reply;

use super::paged::{self, is_paged, ScanPage};
use super::{reply_entries, with_entries, ZError};
use crate::command::args::Args;
use crate::command::collections::linear::{
    distinct_indexes, next_random, random_below, random_pages,
};
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// The most members a negative count (repeats allowed) may ask for: past
/// it the reply alone would take gigabytes.
const MAX_SAMPLES: usize = 10_000_000;

/// A count and WITHSCORES; None: no count (one member, not an array).
type Request = Option<(i64, bool)>;

pub fn zrandmember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let request = match args.len() {
        2 => None,
        _ => Some(parse(&args)?),
    };
    let want = request.map_or(1, |(count, _)| count.unsigned_abs());
    if let Some(pool) = paged_pool(ctx, args.get(1), want)? {
        let mut entries: Vec<Entry<'_>> = pool.iter().map(|(m, s)| (*s, &m[..])).collect();
        // In the set's order, as a whole read gives it ("the whole set,
        // highest first" depends on it).
        entries.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        return answer(&mut ctx.out, &entries, request);
    }
    with_entries(ctx, args.get(1), |out, entries| {
        answer(out, entries, request)
    })
}

fn parse(args: &Args<'_>) -> Result<(i64, bool), CmdError> {
    let count = args.int(2)?;
    if count == i64::MIN {
        return Err(CmdError::Static(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    if args.len() > 4 || (args.len() == 4 && !args.is(3, "withscores")) {
        return Err(CmdError::Syntax);
    }
    let with_scores = args.len() == 4;
    if with_scores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return Err(ZError::RandomRange.into());
    }
    Ok((count, with_scores))
}

/// Of a paged set at `key`: its members on a random run of index pages
/// holding at least `want` (all pages when the run falls short). None
/// when the key holds no paged sorted set (it is read whole).
fn paged_pool(ctx: &mut Ctx<'_>, key: &[u8], want: u64) -> Result<Option<ScanPage>, CmdError> {
    if !is_paged(&mut ctx.thread.cache, key) {
        return Ok(None);
    }
    let mut whole = false;
    loop {
        let pool = paged::update_planned(
            &mut ctx.thread.cache,
            key,
            |root| {
                let pages = match whole {
                    true => (0..root.index.page_count()).collect(),
                    false => {
                        let run = want.saturating_mul(2).saturating_add(16);
                        random_pages(&root.index, run, &mut next_random)
                    }
                };
                pages.into_iter().map(|p| BASE + p).collect()
            },
            |_, _, _| Ok(None),
            |z| z.sample(want).map(Some),
        )?;
        match pool {
            // No longer paged: read whole.
            None => return Ok(None),
            Some(Some(pool)) => return Ok(Some(pool)),
            Some(None) if !whole => whole = true,
            Some(None) => return Err(CmdError::CorruptValue),
        }
    }
}

/// Picks from `entries` (in the set's order) and replies.
fn answer(out: &mut Reply<'_>, entries: &[Entry<'_>], request: Request) -> CmdResult {
    let pick = || entries[random_below(entries.len())];
    let Some((count, with_scores)) = request else {
        match entries.is_empty() {
            true => out.null(),
            false => out.bulk(pick().1),
        }
        return Ok(());
    };
    let n = count.unsigned_abs() as usize;
    if count < 0 && n > MAX_SAMPLES && !entries.is_empty() {
        // Redis would try to build the reply; refuse rather than hang.
        return Err(ZError::RandomRange.into());
    }
    let picked: Vec<Entry<'_>> = if entries.is_empty() || n == 0 {
        Vec::new()
    } else if count < 0 || n == 1 {
        (0..n).map(|_| pick()).collect()
    } else if n >= entries.len() {
        // The whole set, highest score first, as Redis 7.0 answers.
        entries.iter().rev().copied().collect()
    } else {
        let picked = distinct_indexes(n, entries.len());
        picked.into_iter().map(|i| entries[i]).collect()
    };
    reply_entries(out, picked.iter(), with_scores);
    Ok(())
}
