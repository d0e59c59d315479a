//! SPOP and SRANDMEMBER: members picked at random (`citadel_collections::
//! sample`) from a per-thread xorshift stream seeded at random.

use std::cell::Cell;
use std::hash::BuildHasher;

use citadel_collections::set::encode;
use citadel_collections::{sample, Packed, SetView};

use super::{load, reply_set, store, with_set, SET};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// SRANDMEMBER with a negative count answers at most this many members:
/// a count near i64::MIN would otherwise build a reply without end.
const MAX_REPEATED: u64 = 1 << 24;

thread_local! {
    static STATE: Cell<u64> = Cell::new(
        std::collections::hash_map::RandomState::new().hash_one(std::thread::current().id()) | 1,
    );
}

/// The thread's next random word (xorshift64*).
fn next_random() -> u64 {
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

/// Removes up to `count` random members of the set at `key`: None when
/// the key is missing (after the type check).
fn pop(ctx: &mut Ctx<'_>, key: &[u8], count: usize) -> Result<Option<Vec<Vec<u8>>>, CmdError> {
    let buf = &mut ctx.conn.scratch;
    let popped = ctx.thread.cache.update(&[key], |items, changes| {
        let Some(existing) = load(items[0].as_ref(), SET, buf)? else {
            return Ok(None);
        };
        let members = SetView::new(Packed::parse(buf)?).to_vec()?;
        let picked = sample::distinct(members.len(), count, &mut next_random);
        let mut chosen = vec![false; members.len()];
        picked.iter().for_each(|&i| chosen[i] = true);
        let mut kept: Vec<&[u8]> = (0..members.len())
            .filter(|&i| !chosen[i])
            .map(|i| members[i])
            .collect();
        if !picked.is_empty() {
            let value = encode(&mut kept);
            store(changes, 0, SET, &value, kept.len() as u64, Some(existing))?;
        }
        Ok::<_, CmdError>(Some(picked.iter().map(|&i| members[i].to_vec()).collect()))
    })??;
    ctx.conn.scratch.clear();
    Ok(popped)
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
    with_set(ctx, args.get(1), |out, set| {
        let members = set.to_vec()?;
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
    })
}
