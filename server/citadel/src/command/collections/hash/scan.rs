//! HSCAN key cursor [MATCH pattern] [COUNT count]. A hash small enough to
//! be a listpack in Redis comes back whole in stored order with cursor 0,
//! as Redis does. A bigger one is walked in order of its fields' scan
//! positions (`citadel_collections::linear_hash::scan`: the reversed hash
//! that also orders the pages of a paged hash): the cursor is the next
//! position to visit, so a field present for the whole scan is returned
//! exactly once, however the hash changes (or becomes paged) between calls.

use citadel_collections::linear_hash::scan::{entries_from, position};
use citadel_collections::HashView;

use super::{is_listpack, SHAPE};
use crate::command::args::Args;
use crate::command::collections::linear::{read_one, scan_plan, scan_table};
use crate::command::context::Ctx;
use crate::command::error::CmdResult;
use crate::command::scan::{parse_cursor, parse_opts};
use crate::glob::glob_match;

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

pub fn hscan(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let cursor = parse_cursor(args.get(2))?;
    let options = args.from(3);
    // Options are checked only once the key holds fields (as Redis).
    let count = parse_opts(options, false).map_or(10, |o| o.count);
    let page: Option<(Pairs, u64)> = read_one(
        ctx,
        args.get(1),
        SHAPE,
        |root| scan_plan(root, cursor, count),
        |packed| {
            let hash = HashView::new(packed)?;
            if hash.is_empty() {
                return Ok(None);
            }
            let opts = parse_opts(options, false)?;
            let pairs = hash.pairs().collect::<Result<Vec<_>, _>>()?;
            let (chosen, next) = if is_listpack(&hash)? {
                (pairs, 0)
            } else {
                let positioned = pairs.into_iter().map(|p| (position(p.0), p)).collect();
                entries_from(positioned, cursor, opts.count)
            };
            let owned = chosen.into_iter().map(|(f, v)| (f.to_vec(), v.to_vec()));
            Ok(Some((owned.collect(), next)))
        },
        |table| {
            parse_opts(options, false)?;
            let (entries, next) = scan_table(table, cursor, count)?;
            let pairs = entries.into_iter().map(|mut e| {
                let value = e.pop().unwrap_or_default();
                (e.pop().unwrap_or_default(), value)
            });
            Ok(Some((pairs.collect(), next)))
        },
    )?;
    let (mut chosen, next) = page.unwrap_or_default();
    if let Some(pattern) = parse_opts(options, false).ok().and_then(|o| o.pattern) {
        chosen.retain(|(f, _)| glob_match(pattern, f));
    }
    ctx.out.array(2);
    ctx.out.bulk_u64(next);
    ctx.out.array(2 * chosen.len());
    for (field, value) in chosen {
        ctx.out.bulk(&field);
        ctx.out.bulk(&value);
    }
    Ok(())
}
