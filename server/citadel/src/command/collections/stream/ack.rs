//! XACK and XPENDING: a group's pending entries acknowledged (each one
//! rewrites its PEL page and the root) or listed.

use citadel_collections::stream::pel::PEL_PAGE_MAX;
use citadel_collections::stream::StreamId;
use citadel_resp::Reply;

use super::super::paged::{update_paged_fresh, PagePlan, Step};
use super::args::{interval_id, strict_id, INVALID_ID};
use super::edit::{step, StreamTxn};
use super::pel::{self, planned_group};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// XACK key group id [id ...]
pub fn xack(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let group = args.get(2);
    let ids: Result<Vec<StreamId>, CmdError> =
        (3..args.len()).map(|i| strict_id(args.get(i), 0)).collect();
    let plan = |user: usize, root: &[u8], plan: &mut PagePlan| {
        if let (Some((_, g)), Ok(ids)) = (planned_group(root, group), &ids) {
            pel::plan_ids(&g, ids, user, plan);
        }
        Ok(())
    };
    let acked = update_paged_fresh(
        &mut ctx.thread.cache,
        &[args.get(1)],
        plan,
        |items, changes, plan| {
            let Some(mut s) = StreamTxn::open(items, plan, 0)? else {
                return Ok(Step::Done(0));
            };
            let Some(g) = s.find_group(group)? else {
                return Ok(Step::Done(0));
            };
            // (strict_id's one error.)
            let ids = ids.as_ref().map_err(|_| INVALID_ID)?;
            step((|| {
                let mut n = 0i64;
                for &id in ids {
                    n += i64::from(pel::remove(&mut s, g, id)?.is_some());
                }
                if n > 0 {
                    s.commit(changes)?;
                }
                Ok(n)
            })())
        },
    )?;
    ctx.out.int(acked);
    Ok(())
}

/// XPENDING's extended form.
struct Extended<'a> {
    min_idle: i64,
    start: StreamId,
    end: StreamId,
    count: u64,
    consumer: Option<&'a [u8]>,
}

fn parse_extended<'a>(args: &Args<'a>) -> Result<Option<Extended<'a>>, CmdError> {
    let n = args.len();
    if n == 3 {
        return Ok(None);
    }
    if !(6..=9).contains(&n) {
        return Err(CmdError::Syntax);
    }
    let mut at = 3;
    let mut min_idle = 0;
    if args.is(3, "idle") {
        min_idle = args.int(4)?;
        if n < 8 {
            return Err(CmdError::Syntax);
        }
        at += 2;
    }
    let count = args.int(at + 2)?.max(0) as u64;
    let start = interval_id(args.get(at), true)?;
    let end = interval_id(args.get(at + 1), false)?;
    Ok(Some(Extended {
        min_idle,
        start,
        end,
        count,
        consumer: (at + 3 < n).then(|| args.get(at + 3)),
    }))
}

/// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
pub fn xpending(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let ext = parse_extended(&args)?;
    let key = args.get(1);
    let group = args.get(2);
    let plan = |user: usize, root: &[u8], plan: &mut PagePlan| {
        if let (Some((_, g)), Some(e)) = (planned_group(root, group), &ext) {
            let filtered = e.consumer.is_some() || e.min_idle > 0;
            let pages = if filtered || e.count == 0 {
                0
            } else {
                (e.count as usize).div_ceil(PEL_PAGE_MAX) + 1
            };
            if e.count > 0 {
                pel::plan_scan(&g, e.start, pages, user, plan);
            }
        }
        Ok(())
    };
    let resp3 = ctx.out.resp3;
    let mut reply = Vec::new();
    let now = citadel_cache::unix_millis() as i64;
    update_paged_fresh(&mut ctx.thread.cache, &[key], plan, |items, _, plan| {
        reply.clear();
        let mut out = Reply::new(&mut reply, resp3);
        let (mut s, g) = pel::open_group(items, plan, key, group)?;
        let Some(e) = &ext else {
            let gr = s.group(g);
            out.array(4);
            out.int(gr.pel_count as i64);
            match gr.pel_ends() {
                None => {
                    out.null();
                    out.null();
                    out.null_array();
                }
                Some((first, last)) => {
                    out.bulk(&first.text());
                    out.bulk(&last.text());
                    let busy: Vec<_> = gr.consumers.iter().filter(|c| c.pending > 0).collect();
                    out.array(busy.len());
                    for c in busy {
                        out.array(2);
                        out.bulk(&c.name);
                        out.bulk_u64(c.pending);
                    }
                }
            }
            return Ok(Step::Done(()));
        };
        let wanted = match e.consumer {
            Some(name) => match s.group(g).consumer(name) {
                Ok(c) => Some(s.group(g).consumers[c].id),
                Err(_) => {
                    out.array(0);
                    return Ok(Step::Done(()));
                }
            },
            None => None,
        };
        let mut rows = Vec::new();
        if e.count > 0 {
            let scanned = pel::scan(&mut s, g, e.start, e.end, |p| {
                let idle = now - p.delivery_time as i64;
                if wanted.is_none_or(|c| c == p.consumer) && (e.min_idle == 0 || idle >= e.min_idle)
                {
                    rows.push(*p);
                }
                (rows.len() as u64) < e.count
            });
            if let Err(fail) = scanned {
                return step(Err(fail));
            }
        }
        out.array(rows.len());
        for p in rows {
            let gr = s.group(g);
            let name = gr
                .consumer_by_id(p.consumer)
                .map(|c| gr.consumers[c].name.clone())
                .unwrap_or_default();
            out.array(4);
            out.bulk(&p.id.text());
            out.bulk(&name);
            out.int((now - p.delivery_time as i64).max(0));
            out.int(p.delivery_count as i64);
        }
        Ok(Step::Done(()))
    })?;
    ctx.out.buf.extend_from_slice(&reply);
    Ok(())
}
