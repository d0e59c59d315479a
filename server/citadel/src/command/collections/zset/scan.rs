//! ZSCAN key cursor [MATCH pattern] [COUNT count]. A packed sorted set is
//! answered whole with cursor 0, as Redis answers a listpack one. A paged
//! one is walked through its member index, page by page in scan-position
//! order, as HSCAN walks a paged hash (`linear::scan_table`): each call
//! reads only the index pages of about COUNT members, and a member present
//! for the whole scan is returned exactly once however the set changes
//! between calls. (Read whole, a 10M-member set was copied and answered in
//! one reply of 20M bulks, past any client's output limit.)

use citadel_collections::zset::paged::BASE;
use citadel_collections::zset::Entry;
use citadel_resp::{num, Reply};

use super::paged::{self, is_paged};
use super::with_entries;
use crate::command::args::Args;
use crate::command::collections::linear::scan_plan;
use crate::command::context::Ctx;
use crate::command::error::CmdResult;
use crate::command::scan::{parse_cursor, parse_member_scan_opts};
use crate::glob::glob_match;

pub fn zscan(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let cursor = parse_cursor(args.get(2))?;
    let key = args.get(1);
    if is_paged(&mut ctx.thread.cache, key) {
        let (pattern, count) = parse_member_scan_opts(args.from(3))?;
        let page = paged::update_planned(
            &mut ctx.thread.cache,
            key,
            |root| {
                let pages = scan_plan(&root.index, cursor, count);
                pages.into_iter().map(|p| BASE + p).collect()
            },
            |_, _, _| Ok(None),
            |z| z.scan(cursor, count).map(Some),
        )?;
        // None: no longer paged (emptied, or rewritten packed): read it whole.
        if let Some((entries, next)) = page {
            let matching = entries
                .iter()
                .filter(|(member, _)| pattern.is_none_or(|p| glob_match(p, member)));
            let matching: Vec<_> = matching.map(|(m, s)| (*s, &m[..])).collect();
            reply_page(&mut ctx.out, next, &matching, Encoding::Skiplist);
            return Ok(());
        }
    }
    with_entries(ctx, key, |out, entries| {
        let pattern = match entries.is_empty() {
            true => None,
            false => parse_member_scan_opts(args.from(3))?.0,
        };
        let matching: Vec<Entry<'_>> = entries
            .iter()
            .filter(|e| pattern.is_none_or(|p| glob_match(p, e.1)))
            .copied()
            .collect();
        reply_page(out, 0, &matching, Encoding::Listpack);
        Ok(())
    })
}

/// Which of Redis's encodings a reply's scores are written as.
#[derive(Clone, Copy)]
enum Encoding {
    /// A listpack holds integers within +-2^62 as integers: ZSCAN copies
    /// their digits.
    Listpack,
    /// A skiplist's doubles go through `d2string`: digits for integers
    /// within +-2^52, else `%.17g`.
    Skiplist,
}

fn reply_page(out: &mut Reply<'_>, next: u64, entries: &[Entry<'_>], encoding: Encoding) {
    out.array(2);
    out.bulk_u64(next);
    out.array(2 * entries.len());
    let mut text = Vec::with_capacity(24);
    for &(score, member) in entries {
        out.bulk(member);
        text.clear();
        push_score(&mut text, score, encoding);
        out.bulk(&text);
    }
}

/// A score as Redis 7.0's ZSCAN writes it for `encoding`.
fn push_score(out: &mut Vec<u8>, score: f64, encoding: Encoding) {
    let integral = score.fract() == 0.0
        && match encoding {
            Encoding::Listpack => score.abs() <= (1u64 << 62) as f64,
            Encoding::Skiplist => score.abs() < (1u64 << 52) as f64,
        };
    if integral {
        num::push_i64(out, score as i64);
    } else {
        num::push_g17(out, score);
    }
}
