//! XCLAIM and XAUTOCLAIM: pending entries handed to another consumer
//! (Redis 7.0's `xclaimCommand` and `xautoclaimCommand`). An entry no
//! longer in the stream leaves the PEL instead.

use citadel_collections::stream::pel::PEL_PAGE_MAX;
use citadel_collections::stream::{Pending, StreamId};
use citadel_resp::Reply;

use super::super::paged::{update_paged_fresh, PagePlan};
use super::args::{interval_id, strict_id};
use super::consumer_made;
use super::edit::{step, Fail, StreamTxn};
use super::pel::{self, planned_group};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// XCLAIM's arguments after the consumer.
struct Claim {
    min_idle: i64,
    ids: Vec<StreamId>,
    /// IDLE or TIME as a delivery time (None: now).
    delivery_time: Option<i64>,
    retry_count: Option<i64>,
    force: bool,
    just_id: bool,
    last_id: StreamId,
}

fn long_or(args: &Args<'_>, i: usize, err: &'static str) -> Result<i64, CmdError> {
    citadel_resp::num::parse_i64(args.get(i)).ok_or(CmdError::Static(err))
}

fn parse_claim(args: &Args<'_>, now: i64) -> Result<Claim, CmdError> {
    let min_idle = long_or(args, 4, "ERR Invalid min-idle-time argument for XCLAIM")?.max(0);
    let mut j = 5;
    let mut ids = Vec::new();
    while j < args.len() {
        match strict_id(args.get(j), 0) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let mut c = Claim {
        min_idle,
        ids,
        delivery_time: None,
        retry_count: None,
        force: false,
        just_id: false,
        last_id: StreamId::MIN,
    };
    while j < args.len() {
        let more = args.len() - 1 - j;
        if args.is(j, "force") {
            c.force = true;
        } else if args.is(j, "justid") {
            c.just_id = true;
        } else if args.is(j, "idle") && more > 0 {
            j += 1;
            let idle = long_or(args, j, "ERR Invalid IDLE option argument for XCLAIM")?;
            c.delivery_time = Some(now.wrapping_sub(idle));
        } else if args.is(j, "time") && more > 0 {
            j += 1;
            c.delivery_time = Some(long_or(
                args,
                j,
                "ERR Invalid TIME option argument for XCLAIM",
            )?);
        } else if args.is(j, "retrycount") && more > 0 {
            j += 1;
            c.retry_count = Some(long_or(
                args,
                j,
                "ERR Invalid RETRYCOUNT option argument for XCLAIM",
            )?);
        } else if args.is(j, "lastid") && more > 0 {
            j += 1;
            c.last_id = strict_id(args.get(j), 0)?;
        } else {
            return Err(CmdError::quoting(
                "ERR Unrecognized XCLAIM option '",
                args.get(j),
                "'",
            ));
        }
        j += 1;
    }
    Ok(c)
}

/// Replies with entry `id` (its fields, or just its ID).
fn reply_claimed(
    s: &mut StreamTxn<'_, '_>,
    out: &mut Reply<'_>,
    id: StreamId,
    just_id: bool,
) -> Result<(), Fail> {
    if just_id {
        out.bulk(&id.text());
        return Ok(());
    }
    let fields = pel::entry_fields(s, id)?.ok_or(CmdError::CorruptValue)?;
    out.array(2);
    out.bulk(&id.text());
    out.array(fields.len());
    fields.iter().for_each(|f| out.bulk(f));
    Ok(())
}

/// The consumer `name` of group `g`, made (`made` set) or refreshed now;
/// its number.
fn claimer(s: &mut StreamTxn<'_, '_>, g: usize, name: &[u8], now: u64, made: &mut bool) -> u32 {
    let group = s.group(g);
    let (c, new) = group.add_consumer(name, now);
    *made = new;
    group.consumers[c].seen_time = now;
    group.consumers[c].id
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms]
/// [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID id]
pub fn xclaim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, group, name) = (args.get(1), args.get(2), args.get(3));
    let now = citadel_cache::unix_millis();
    let parsed = parse_claim(&args, now as i64);
    let plan = |user: usize, root: &[u8], plan: &mut PagePlan| {
        if let (Some((r, g)), Ok(c)) = (planned_group(root, group), &parsed) {
            pel::plan_ids(&g, &c.ids, user, plan);
            pel::plan_entries(&r, &c.ids, user, plan);
            pel::plan_new(&r, c.ids.len() as u64 / PEL_PAGE_MAX as u64 + 2, user, plan);
        }
        Ok(())
    };
    let resp3 = ctx.out.resp3;
    let mut reply = Vec::new();
    let mut made = false;
    update_paged_fresh(
        &mut ctx.thread.cache,
        &[key],
        plan,
        |items, changes, plan| {
            reply.clear();
            made = false;
            let (mut s, g) = pel::open_group(items, plan, key, group)?;
            // (Redis checks the group before the arguments: the error again.)
            let Ok(c) = &parsed else {
                return Err(parse_claim(&args, now as i64)
                    .err()
                    .unwrap_or(CmdError::Syntax));
            };
            let mut out = Reply::new(&mut reply, resp3);
            step((|| {
                pel::load_entries(&mut s, &c.ids)?;
                let mut wrote = false;
                if c.last_id > s.group(g).last_id {
                    s.group(g).last_id = c.last_id;
                    wrote = true;
                }
                let time = match c.delivery_time {
                    Some(t) if t >= 0 && t <= now as i64 => t as u64,
                    _ => now,
                };
                let mut body = Vec::new();
                let mut inner = Reply::new(&mut body, resp3);
                let mut n = 0;
                let mut consumer = None;
                for &id in &c.ids {
                    let nack = pel::get(&mut s, g, id)?;
                    if pel::entry_fields(&mut s, id)?.is_none() {
                        if nack.is_some() {
                            pel::remove(&mut s, g, id)?;
                            wrote = true;
                        }
                        continue;
                    }
                    let mut p = match nack {
                        Some(p) => {
                            let idle = now as i64 - p.delivery_time as i64;
                            if c.min_idle > 0 && idle < c.min_idle {
                                continue;
                            }
                            p
                        }
                        None if c.force => Pending {
                            id,
                            delivery_time: now,
                            delivery_count: 1,
                            consumer: u32::MAX,
                        },
                        None => continue,
                    };
                    let me =
                        *consumer.get_or_insert_with(|| claimer(&mut s, g, name, now, &mut made));
                    p.consumer = me;
                    p.delivery_time = time;
                    match c.retry_count {
                        Some(r) if r >= 0 => p.delivery_count = r as u64,
                        _ if !c.just_id => p.delivery_count += 1,
                        _ => {}
                    }
                    pel::put(&mut s, g, p)?;
                    reply_claimed(&mut s, &mut inner, id, c.just_id)?;
                    n += 1;
                    wrote = true;
                }
                if wrote || consumer.is_some() {
                    s.commit(changes)?;
                }
                out.array(n);
                out.buf.extend_from_slice(&body);
                Ok(())
            })())
        },
    )?;
    if made {
        consumer_made(ctx, key);
    }
    ctx.out.buf.extend_from_slice(&reply);
    Ok(())
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
pub fn xautoclaim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, group, name) = (args.get(1), args.get(2), args.get(3));
    let min_idle = long_or(
        &args,
        4,
        "ERR Invalid min-idle-time argument for XAUTOCLAIM",
    )?
    .max(0);
    let start = interval_id(args.get(5), true)?;
    let mut count: u64 = 100;
    let mut just_id = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if args.is(j, "count") && more > 0 {
            let max = i64::MAX / 16;
            count = citadel_resp::num::parse_i64(args.get(j + 1))
                .filter(|n| (1..=max).contains(n))
                .ok_or(CmdError::Static("ERR COUNT must be > 0"))? as u64;
            j += 1;
        } else if args.is(j, "justid") {
            just_id = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let attempts = count.saturating_mul(10);
    let now = citadel_cache::unix_millis();
    let plan = |user: usize, root: &[u8], plan: &mut PagePlan| {
        if let Some((r, g)) = planned_group(root, group) {
            let pages = (attempts.min(g.pel_count) as usize + 1).div_ceil(PEL_PAGE_MAX) + 1;
            pel::plan_scan(&g, start, pages, user, plan);
            pel::plan_new(&r, 1, user, plan);
        }
        Ok(())
    };
    let resp3 = ctx.out.resp3;
    let mut reply = Vec::new();
    let mut made = false;
    update_paged_fresh(
        &mut ctx.thread.cache,
        &[key],
        plan,
        |items, changes, plan| {
            reply.clear();
            made = false;
            let (mut s, g) = pel::open_group(items, plan, key, group)?;
            let mut out = Reply::new(&mut reply, resp3);
            step((|| {
                // The entries the loop may look at, and the next as the cursor.
                let mut seen = Vec::new();
                pel::scan(&mut s, g, start, StreamId::MAX, |p| {
                    seen.push(*p);
                    (seen.len() as u64) <= attempts
                })?;
                let ids: Vec<StreamId> = seen.iter().map(|p| p.id).collect();
                pel::load_entries(&mut s, &ids)?;
                let mut body = Vec::new();
                let mut inner = Reply::new(&mut body, resp3);
                let (mut left, mut tries, mut at) = (count, attempts, 0);
                let mut deleted = Vec::new();
                let mut claimed = 0;
                let mut consumer = None;
                while tries > 0 && left > 0 && at < seen.len() {
                    tries -= 1;
                    let mut p = seen[at];
                    at += 1;
                    if pel::entry_fields(&mut s, p.id)?.is_none() {
                        pel::remove(&mut s, g, p.id)?;
                        deleted.push(p.id);
                        left -= 1;
                        continue;
                    }
                    if min_idle > 0 && (now as i64 - p.delivery_time as i64) < min_idle {
                        continue;
                    }
                    let me =
                        *consumer.get_or_insert_with(|| claimer(&mut s, g, name, now, &mut made));
                    p.consumer = me;
                    p.delivery_time = now;
                    if !just_id {
                        p.delivery_count += 1;
                    }
                    pel::put(&mut s, g, p)?;
                    reply_claimed(&mut s, &mut inner, p.id, just_id)?;
                    claimed += 1;
                    left -= 1;
                }
                let cursor = seen.get(at).map_or(StreamId::MIN, |p| p.id);
                if claimed > 0 || !deleted.is_empty() {
                    s.commit(changes)?;
                }
                out.array(3);
                out.bulk(&cursor.text());
                out.array(claimed);
                out.buf.extend_from_slice(&body);
                out.array(deleted.len());
                for id in deleted {
                    out.bulk(&id.text());
                }
                Ok(())
            })())
        },
    )?;
    if made {
        consumer_made(ctx, key);
    }
    ctx.out.buf.extend_from_slice(&reply);
    Ok(())
}
