//! SSCAN key cursor [MATCH pattern] [COUNT count], checked in Redis's
//! order: the cursor, then the key (a missing one answers an empty page
//! whatever the options), then the options.

use citadel_collections::set::scan::scan;

use super::with_set;
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};
use crate::command::scan::parse_member_scan_opts;
use crate::glob::glob_match;

/// A cursor as Redis's strtoul reads it: optional sign ("-1" wraps to the
/// largest cursor), digits, no spaces; the empty string is 0.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (negative, digits) = match arg {
        [] => return Some(0),
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

pub fn sscan(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let cursor = parse_cursor(args.get(2)).ok_or(CmdError::Cursor)?;
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
