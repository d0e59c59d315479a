//! SSCAN key cursor [MATCH pattern] [COUNT count], checked in Redis's
//! order: the cursor, then the key (a missing one answers an empty page
//! whatever the options), then the options.

use citadel_collections::set::scan::scan;

use super::with_set;
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::CmdResult;
use crate::command::scan::{parse_cursor, parse_member_scan_opts};
use crate::glob::glob_match;

pub fn sscan(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let cursor = parse_cursor(args.get(2))?;
    with_set(ctx, args.get(1), |out, set| {
        if set.is_empty() {
            out.array(2);
            out.bulk(b"0");
            out.array(0);
            return Ok(());
        }
        let (pattern, count) = parse_member_scan_opts(args.from(3))?;
        let keep = |m: &[u8]| pattern.is_none_or(|p| glob_match(p, m));
        let page = scan(&set, cursor, count, keep)?;
        out.array(2);
        out.bulk_u64(page.next);
        out.array(page.members.len());
        page.members.iter().for_each(|m| out.bulk(m));
        Ok(())
    })
}
