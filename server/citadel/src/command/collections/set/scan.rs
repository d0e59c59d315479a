//! SSCAN key cursor [MATCH pattern] [COUNT count], checked in Redis's
//! order: the cursor, then the key (a missing one answers an empty page
//! whatever the options), then the options.

use citadel_collections::set::scan::scan;
use citadel_collections::SetView;

use super::SHAPE;
use crate::command::args::Args;
use crate::command::collections::linear::{read_one, scan_plan, scan_table};
use crate::command::context::Ctx;
use crate::command::error::CmdResult;
use crate::command::scan::{parse_cursor, parse_member_scan_opts};
use crate::glob::glob_match;

pub fn sscan(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let cursor = parse_cursor(args.get(2))?;
    let options = args.from(3);
    // Options are checked only once the key holds members (as Redis).
    let count = parse_member_scan_opts(options).map_or(10, |(_, count)| count);
    let page = read_one(
        ctx,
        args.get(1),
        SHAPE,
        |root| scan_plan(root, cursor, count),
        |packed| {
            let set = SetView::new(packed);
            if set.is_empty() {
                return Ok(None);
            }
            let (pattern, count) = parse_member_scan_opts(options)?;
            let keep = |m: &[u8]| pattern.is_none_or(|p| glob_match(p, m));
            let page = scan(&set, cursor, count, keep)?;
            Ok(Some((
                page.members.iter().map(|m| m.to_vec()).collect(),
                page.next,
            )))
        },
        |table| {
            let (pattern, _) = parse_member_scan_opts(options)?;
            let (entries, next) = scan_table(table, cursor, count)?;
            let members: Vec<Vec<u8>> = entries
                .into_iter()
                .filter_map(|mut e| e.pop())
                .filter(|m| pattern.is_none_or(|p| glob_match(p, m)))
                .collect();
            Ok(Some((members, next)))
        },
    )?;
    let (members, next): (Vec<Vec<u8>>, u64) = page.unwrap_or_default();
    ctx.out.array(2);
    ctx.out.bulk_u64(next);
    ctx.out.array(members.len());
    members.iter().for_each(|m| ctx.out.bulk(m));
    Ok(())
}
