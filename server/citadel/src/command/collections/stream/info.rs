//! XINFO STREAM key [FULL [COUNT count]] and XINFO HELP (GROUPS and
//! CONSUMERS: `info_groups`).

use citadel_collections::stream::page::entries;
use citadel_collections::stream::{StreamId, StreamRoot};
use citadel_resp::Reply;

use super::super::paged::{update_paged_fresh, PagePlan, Step};
use super::edit::{loaded_only, retry, StreamTxn};
use super::info_groups::{plan_all_pels, reply_full_groups};
use super::range::{collect_range, plan_range, reply_entry};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// XINFO STREAM key [FULL [COUNT count]]
pub fn xinfo_stream(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // FULL's entries: the first `count` (0: all; default 10).
    let full =
        match args.len() {
            3 => None,
            4 if args.is(3, "full") => Some(10),
            6 if args.is(3, "full") && args.is(4, "count") => {
                let n = citadel_resp::num::parse_i64(args.get(5)).ok_or(CmdError::NotInteger)?;
                Some(if n < 0 { 10 } else { n as u64 })
            }
            _ => return Err(CmdError::Static(
                "ERR unknown subcommand or wrong number of arguments for 'stream'. Try XINFO HELP.",
            )),
        };
    let plan = |user: usize, root: &[u8], plan: &mut PagePlan| {
        match full {
            Some(count) => {
                plan_range(root, user, plan, StreamId::MIN, StreamId::MAX, count, false);
                plan_all_pels(root, user, plan);
            }
            None => {
                if let Ok(r) = StreamRoot::parse(root) {
                    for p in [r.dir.first(), r.dir.last()].into_iter().flatten() {
                        plan.need(user, p.page);
                    }
                }
            }
        }
        Ok(())
    };
    let resp3 = ctx.out.resp3;
    let mut reply = Vec::new();
    update_paged_fresh(
        &mut ctx.thread.cache,
        &[args.get(2)],
        plan,
        |items, _, plan| {
            reply.clear();
            let mut s = StreamTxn::open(items, plan, 0)?.ok_or(CmdError::NoSuchKey)?;
            let ends = [s.root.dir.first().copied(), s.root.dir.last().copied()];
            let pages: Vec<u64> = match full {
                Some(count) => s.root.pages_in(StreamId::MIN, StreamId::MAX, count, false),
                None => ends.iter().flatten().map(|p| p.page).collect(),
            };
            if let Err(fail) = s.load_all(&pages) {
                return retry(fail);
            }
            let mut out = Reply::new(&mut reply, resp3);
            let m = s.root.meta;
            out.map(if full.is_some() { 9 } else { 10 });
            let field_int = |out: &mut Reply<'_>, name: &[u8], v: u64| {
                out.bulk(name);
                out.int(v as i64);
            };
            field_int(&mut out, b"length", m.length);
            // Redis's radix tree has a key per node (a page here); its node
            // count is an estimate (Redis's depends on the keys' prefixes).
            field_int(&mut out, b"radix-tree-keys", s.root.dir.len() as u64);
            field_int(&mut out, b"radix-tree-nodes", s.root.dir.len() as u64 + 1);
            for (name, id) in [
                (&b"last-generated-id"[..], m.last_id),
                (b"max-deleted-entry-id", m.max_deleted),
            ] {
                out.bulk(name);
                out.bulk(&id.text());
            }
            field_int(&mut out, b"entries-added", m.entries_added);
            out.bulk(b"recorded-first-entry-id");
            out.bulk(&m.first_id.text());
            if let Some(count) = full {
                out.bulk(b"entries");
                let mut body = Vec::new();
                let mut inner = Reply::new(&mut body, resp3);
                let n = collect_range(&mut s, StreamId::MIN, StreamId::MAX, count, false, |e| {
                    reply_entry(&mut inner, e)
                })
                .map_err(loaded_only)?;
                out.array(n as usize);
                out.buf.extend_from_slice(&body);
                out.bulk(b"groups");
                if let Err(fail) = reply_full_groups(&mut s, &mut out, count) {
                    return retry(fail);
                }
            } else {
                let groups = s.groups()?.len() as u64;
                field_int(&mut out, b"groups", groups);
                for (name, info, last) in [
                    (&b"first-entry"[..], ends[0], false),
                    (b"last-entry", ends[1], true),
                ] {
                    out.bulk(name);
                    let Some(info) = info else {
                        out.null();
                        continue;
                    };
                    let list = entries(s.loaded(info.page)?)?;
                    let e = if last { list.last() } else { list.first() };
                    reply_entry(&mut out, e.ok_or(CmdError::CorruptValue)?);
                }
            }
            Ok(Step::Done(()))
        },
    )?;
    ctx.out.buf.extend_from_slice(&reply);
    Ok(())
}

/// XINFO HELP (the subcommands there are).
pub fn xinfo_help(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    crate::command::context::reply_lines(
        &mut ctx.out,
        &[
            "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
            "HELP",
            "    Prints this help.",
        ],
    );
    Ok(())
}
