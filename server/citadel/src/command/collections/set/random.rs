//! SPOP and SRANDMEMBER: members picked at random (`citadel_collections::
//! sample`) from a per-thread xorshift stream seeded at random.

use citadel_collections::set::encode;
use citadel_collections::{sample, SetView};

use super::{reply_set, SHAPE};
use crate::command::args::Args;
use crate::command::collections::linear::{
    loaded_entries, next_random, random_pages, sample_pool, update_one,
};
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// SRANDMEMBER with a negative count answers at most this many members:
/// a count near i64::MIN would otherwise build a reply without end.
const MAX_REPEATED: u64 = 1 << 24;

/// Removes up to `count` random members of the set at `key`: None when
/// the key is missing (after the type check). On a paged set, from a
/// random run of pages (`linear::random_pages`), all in one update.
fn pop(ctx: &mut Ctx<'_>, key: &[u8], count: usize) -> Result<Option<Vec<Vec<u8>>>, CmdError> {
    let mut whole = false;
    loop {
        let popped = update_one(
            ctx,
            key,
            SHAPE,
            |root| {
                let mut pages = match whole {
                    true => (0..root.page_count()).collect(),
                    false => random_pages(root, 2 * count as u64 + 16, &mut next_random),
                };
                pages.extend(root.pages_for(std::iter::empty(), 0, 0, count as u64));
                pages
            },
            |value| {
                let Some(value) = value else {
                    return Ok((Some(None), None));
                };
                let members = SetView::new(value).to_vec()?;
                let picked = sample::distinct(members.len(), count, &mut next_random);
                let mut chosen = vec![false; members.len()];
                picked.iter().for_each(|&i| chosen[i] = true);
                let mut kept: Vec<&[u8]> = (0..members.len())
                    .filter(|&i| !chosen[i])
                    .map(|i| members[i])
                    .collect();
                let write = (!picked.is_empty()).then(|| (encode(&mut kept), kept.len() as u64));
                let popped = picked.iter().map(|&i| members[i].to_vec()).collect();
                Ok((Some(Some(popped)), write))
            },
            |table| {
                let members: Vec<Vec<u8>> = loaded_entries(table)?
                    .iter()
                    .map(|e| e[0].to_vec())
                    .collect();
                if (members.len() as u64) < (count as u64).min(table.len()) {
                    return Ok(None);
                }
                let picked = sample::distinct(members.len(), count, &mut next_random);
                for &i in &picked {
                    table.remove(&members[i])?;
                }
                Ok(Some(Some(
                    picked.iter().map(|&i| members[i].clone()).collect(),
                )))
            },
        )?;
        match popped {
            Some(popped) => return Ok(popped),
            None => whole = true,
        }
    }
}

/// SPOP key [count]: one member (nil when none), or a set of up to count.
pub fn spop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    match args.len() {
        2 => {
            let popped = pop(ctx, args.get(1), 1)?.unwrap_or_default();
            match popped.first() {
                Some(m) => ctx.out.bulk(m),
                None => ctx.out.null(),
            }
        }
        3 => {
            let count = args
                .int(2)
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or(CmdError::Static(
                    "ERR value is out of range, must be positive",
                ))?;
            let popped = pop(ctx, args.get(1), count)?.unwrap_or_default();
            reply_set(&mut ctx.out, popped.iter().map(|m| &m[..]));
        }
        _ => return Err(CmdError::Syntax),
    }
    Ok(())
}

/// SRANDMEMBER key [count]: one member (nil when none); with a count, an
/// array of up to count distinct members, or of -count members with
/// repeats when it is negative.
pub fn srandmember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => match args.int(2)? {
            i64::MIN => {
                return Err(CmdError::Static(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                ))
            }
            n => Some(n),
        },
        _ => return Err(CmdError::Syntax),
    };
    let want = match count {
        None => 1,
        Some(count) => count.unsigned_abs().min(MAX_REPEATED),
    };
    let pool = sample_pool(ctx, args.get(1), SHAPE, want)?;
    let members: Vec<&[u8]> = pool.iter().map(|e| &e[0][..]).collect();
    let out = &mut ctx.out;
    let n = members.len();
    match count {
        None if n == 0 => out.null(),
        None => out.bulk(members[sample::below(&mut next_random, n)]),
        Some(count) if count >= 0 => {
            let picked = sample::distinct(n, count as usize, &mut next_random);
            out.array(picked.len());
            picked.iter().for_each(|&i| out.bulk(members[i]));
        }
        Some(_) if n == 0 => out.array(0),
        Some(count) => {
            let repeats = count.unsigned_abs();
            if repeats > MAX_REPEATED {
                return Err(CmdError::Static(
                    "ERR value is out of range, a negative count must be at least -16777216",
                ));
            }
            out.array(repeats as usize);
            for i in sample::with_repeats(n, repeats as usize, &mut next_random) {
                out.bulk(members[i]);
            }
        }
    }
    Ok(())
}
