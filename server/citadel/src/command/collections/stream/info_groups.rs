//! XINFO GROUPS, XINFO CONSUMERS and the groups section of XINFO STREAM
//! FULL (Redis 7.0's replies, entries-read and lag included).

use citadel_collections::stream::group::{lag, INVALID_ENTRIES_READ};
use citadel_collections::stream::{Group, StreamId, StreamMeta};
use citadel_resp::Reply;

use super::super::paged::{update_paged_fresh, PagePlan, Step};
use super::edit::{loaded_only, Fail, StreamTxn};
use super::pel;
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

fn entries_read(out: &mut Reply<'_>, g: &Group) {
    out.bulk(b"entries-read");
    if g.entries_read == INVALID_ENTRIES_READ {
        out.null();
    } else {
        out.int(g.entries_read);
    }
}

fn reply_lag(out: &mut Reply<'_>, m: &StreamMeta, g: &Group) {
    out.bulk(b"lag");
    match lag(m, g) {
        Some(n) => out.int(n),
        None => out.null(),
    }
}

/// Declares every PEL page of every group of `root` (FULL lists them).
pub fn plan_all_pels(root: &[u8], user: usize, plan: &mut PagePlan) {
    let Ok(r) = citadel_collections::stream::StreamRoot::parse(root) else {
        return;
    };
    if let Ok(groups) = citadel_collections::stream::group::parse(&r.rest, &r.header.pages) {
        for g in &groups {
            pel::plan_scan(g, StreamId::MIN, 0, user, plan);
        }
    }
}

/// XINFO STREAM FULL's `groups` array; `count`: most PEL entries listed
/// per group and per consumer (0: all).
pub fn reply_full_groups(
    s: &mut StreamTxn<'_, '_>,
    out: &mut Reply<'_>,
    count: u64,
) -> Result<(), Fail> {
    let meta = s.root.meta;
    let n = s.groups()?.len();
    out.array(n);
    for g in 0..n {
        let group = s.group(g).clone();
        out.map(7);
        out.bulk(b"name");
        out.bulk(&group.name);
        out.bulk(b"last-delivered-id");
        out.bulk(&group.last_id.text());
        entries_read(out, &group);
        reply_lag(out, &meta, &group);
        out.bulk(b"pel-count");
        out.int(group.pel_count as i64);
        out.bulk(b"pending");
        let mut rows = Vec::new();
        pel::scan(s, g, StreamId::MIN, StreamId::MAX, |p| {
            rows.push(*p);
            count == 0 || (rows.len() as u64) < count
        })?;
        out.array(rows.len());
        for p in &rows {
            out.array(4);
            out.bulk(&p.id.text());
            let c = group.consumer_by_id(p.consumer);
            out.bulk(c.map_or(&b""[..], |c| &group.consumers[c].name));
            out.int(p.delivery_time as i64);
            out.int(p.delivery_count as i64);
        }
        out.bulk(b"consumers");
        out.array(group.consumers.len());
        for c in &group.consumers {
            out.map(4);
            out.bulk(b"name");
            out.bulk(&c.name);
            out.bulk(b"seen-time");
            out.int(c.seen_time as i64);
            out.bulk(b"pel-count");
            out.int(c.pending as i64);
            out.bulk(b"pending");
            let mut mine = Vec::new();
            if c.pending > 0 {
                pel::scan(s, g, StreamId::MIN, StreamId::MAX, |p| {
                    if p.consumer == c.id {
                        mine.push(*p);
                    }
                    count == 0 || (mine.len() as u64) < count
                })?;
            }
            out.array(mine.len());
            for p in mine {
                out.array(3);
                out.bulk(&p.id.text());
                out.int(p.delivery_time as i64);
                out.int(p.delivery_count as i64);
            }
        }
    }
    Ok(())
}

/// XINFO GROUPS key
pub fn xinfo_groups(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let no_pages = |_: usize, _: &[u8], _: &mut PagePlan| Ok(());
    let resp3 = ctx.out.resp3;
    let mut reply = Vec::new();
    update_paged_fresh(
        &mut ctx.thread.cache,
        &[args.get(2)],
        no_pages,
        |items, _, plan| {
            reply.clear();
            let mut s = StreamTxn::open(items, plan, 0)?.ok_or(CmdError::NoSuchKey)?;
            let meta = s.root.meta;
            let mut out = Reply::new(&mut reply, resp3);
            let groups = s.groups()?;
            out.array(groups.len());
            for g in groups.iter() {
                out.map(6);
                out.bulk(b"name");
                out.bulk(&g.name);
                out.bulk(b"consumers");
                out.int(g.consumers.len() as i64);
                out.bulk(b"pending");
                out.int(g.pel_count as i64);
                out.bulk(b"last-delivered-id");
                out.bulk(&g.last_id.text());
                entries_read(&mut out, g);
                reply_lag(&mut out, &meta, g);
            }
            Ok(Step::Done(()))
        },
    )?;
    ctx.out.buf.extend_from_slice(&reply);
    Ok(())
}

/// XINFO CONSUMERS key group
pub fn xinfo_consumers(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, name) = (args.get(2), args.get(3));
    let no_pages = |_: usize, _: &[u8], _: &mut PagePlan| Ok(());
    let resp3 = ctx.out.resp3;
    let mut reply = Vec::new();
    let now = citadel_cache::unix_millis() as i64;
    update_paged_fresh(&mut ctx.thread.cache, &[key], no_pages, |items, _, plan| {
        reply.clear();
        let mut s = StreamTxn::open(items, plan, 0)?.ok_or(CmdError::NoSuchKey)?;
        let Some(g) = s.find_group(name).map_err(|e| loaded_only(e.into()))? else {
            return Err(CmdError::Text(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(key)
            )));
        };
        let mut out = Reply::new(&mut reply, resp3);
        let group = s.group(g);
        out.array(group.consumers.len());
        for c in &group.consumers {
            out.map(3);
            out.bulk(b"name");
            out.bulk(&c.name);
            out.bulk(b"pending");
            out.int(c.pending as i64);
            out.bulk(b"idle");
            out.int((now - c.seen_time as i64).max(0));
        }
        Ok(Step::Done(()))
    })?;
    ctx.out.buf.extend_from_slice(&reply);
    Ok(())
}
