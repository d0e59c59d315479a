//! XREADGROUP GROUP group consumer [COUNT count] [BLOCK ms] [NOACK]
//! STREAMS key [key ...] id [id ...] (Redis 7.0's `xreadCommand` with a
//! group): `>` delivers entries past the group's last delivered ID and
//! notes them in its PEL; another ID reads the consumer's own pending
//! entries after it. Every stream is read and written in one update; a
//! blocked reader parks like XREAD and runs again when a key is written,
//! answering an error when the key or the group went meanwhile.

use citadel_collections::stream::group::advance;
use citadel_collections::stream::pel::PEL_PAGE_MAX;
use citadel_collections::stream::{Pending, StreamId};
use citadel_resp::Reply;

use super::super::paged::{update_paged_fresh, PagePlan, Step};
use super::args::strict_id;
use super::consumer_made;
use super::edit::{retry, Fail, StreamTxn};
use super::pel::{self, planned_group};
use super::range::{collect_range, plan_range, reply_entry};
use super::read::{parse_read, ReadArgs};
use crate::command::args::Args;
use crate::command::blocking::{block, may_block, may_serve, served, timed_out};
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// Entries a woken reader without COUNT takes (Redis's
/// `XREAD_BLOCKED_DEFAULT_COUNT`).
const BLOCKED_DEFAULT_COUNT: u64 = 1000;

/// How a key is read: new entries (`>`) or the consumer's history after an ID.
#[derive(Clone, Copy)]
enum From {
    New,
    History(StreamId),
}

fn from_arg(arg: &[u8]) -> Result<From, CmdError> {
    match arg {
        b">" => Ok(From::New),
        b"$" => Err(CmdError::Static(
            "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
        )),
        _ => strict_id(arg, 0).map(From::History),
    }
}

/// Why a rerun of a blocked reader stops with an error.
enum Gone {
    Key,
    Group,
}

/// Reads every stream; replies and returns the keys served (none: no
/// reply). A woken reader takes from a key only when first in its line
/// (Redis serves blocked readers in the order they came).
fn try_read(ctx: &mut Ctx<'_>, read: &ReadArgs<'_>, rerun: bool) -> Result<Vec<usize>, CmdError> {
    let turn: Vec<bool> = read
        .keys
        .iter()
        .map(|k| !rerun || may_serve(ctx, k))
        .collect();
    let count = if rerun && read.count == 0 {
        BLOCKED_DEFAULT_COUNT
    } else {
        read.count
    };
    let plan = |user: usize, root: &[u8], plan: &mut PagePlan| {
        let Some((parsed, g)) = planned_group(root, read.group) else {
            return Ok(());
        };
        match from_arg(read.ids[user]) {
            Ok(From::New) => {
                let start = g.last_id.next().unwrap_or(StreamId::MAX);
                plan_range(root, user, plan, start, StreamId::MAX, count, false);
                if !read.noack {
                    pel::plan_scan(&g, start, 0, user, plan);
                    let n = if count == 0 {
                        parsed.meta.length
                    } else {
                        count
                    };
                    pel::plan_new(&parsed, n / PEL_PAGE_MAX as u64 + 2, user, plan);
                }
            }
            Ok(From::History(id)) => {
                pel::plan_scan(&g, id.next().unwrap_or(StreamId::MAX), 0, user, plan);
            }
            Err(_) => {}
        }
        Ok(())
    };
    let resp3 = ctx.out.resp3;
    let mut reply = Vec::new();
    // The keys whose group got the consumer (Redis's `xgroup-createconsumer`).
    let mut made_for = Vec::new();
    let now = citadel_cache::unix_millis();
    let outcome = update_paged_fresh(
        &mut ctx.thread.cache,
        &read.keys,
        plan,
        |items, changes, plan| {
            reply.clear();
            made_for.clear();
            let mut streams = Vec::with_capacity(read.keys.len());
            for (i, key) in read.keys.iter().enumerate() {
                let s = match StreamTxn::open(items, plan, i) {
                    Ok(s) => s,
                    Err(CmdError::WrongType) if rerun => return Ok(Step::Done(Err(Gone::Key))),
                    Err(e) => return Err(e),
                };
                let Some(mut s) = s else {
                    if rerun {
                        return Ok(Step::Done(Err(Gone::Key)));
                    }
                    return Err(no_group_readgroup(key, read.group));
                };
                let Some(g) = s.find_group(read.group)? else {
                    if rerun {
                        return Ok(Step::Done(Err(Gone::Group)));
                    }
                    return Err(no_group_readgroup(key, read.group));
                };
                let from = from_arg(read.ids[i])?;
                streams.push((s, g, from, false));
            }
            let mut out = Reply::new(&mut reply, resp3);
            let mut served_keys = Vec::new();
            for (i, (s, g, from, was_served)) in streams.iter_mut().enumerate() {
                if !turn[i] {
                    continue;
                }
                let start = match *from {
                    From::History(id) => id.next(),
                    From::New => {
                        let last = s.group(*g).last_id;
                        let ahead = s.root.meta.length > 0
                            && s.root.last_valid().is_some_and(|top| top > last);
                        if !ahead {
                            continue;
                        }
                        last.next()
                    }
                };
                let Some(start) = start else { continue };
                if !resp3 {
                    out.array(2);
                }
                out.bulk(read.keys[i]);
                let mut body = Vec::new();
                let mut made = false;
                let n = match serve(
                    s,
                    *g,
                    read,
                    *from,
                    start,
                    count,
                    now,
                    (&mut body, resp3),
                    &mut made,
                ) {
                    Ok(n) => n,
                    Err(fail) => return retry(fail),
                };
                if made {
                    made_for.push(i);
                }
                out.array(n);
                out.buf.extend_from_slice(&body);
                served_keys.push(i);
                *was_served = true;
            }
            for (s, _, _, was_served) in streams {
                if was_served {
                    s.commit(changes)?;
                }
            }
            Ok(Step::Done(Ok(served_keys)))
        },
    )?;
    let served_keys = match outcome {
        Ok(n) => n,
        Err(gone) => {
            served(ctx, read.keys[0], false);
            return Err(match gone {
                Gone::Key => CmdError::Static("UNBLOCKED the stream key no longer exists"),
                Gone::Group => CmdError::Static(
                    "NOGROUP the consumer group this client was blocked on no longer exists",
                ),
            });
        }
    };
    for i in made_for {
        consumer_made(ctx, read.keys[i]);
    }
    if served_keys.is_empty() {
        return Ok(served_keys);
    }
    if ctx.out.resp3 {
        ctx.out.map(served_keys.len());
    } else {
        ctx.out.array(served_keys.len());
    }
    ctx.out.buf.extend_from_slice(&reply);
    Ok(served_keys)
}

/// A blocked reader was served from `keys`: it leaves every line, and the
/// next reader in each line looks (entries may be left for it).
fn pass_turn(ctx: &mut Ctx<'_>, read: &ReadArgs<'_>, keys: &[usize]) {
    for &k in keys {
        served(ctx, read.keys[k], true);
    }
}

fn no_group_readgroup(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Text(format!(
        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

/// Serves one stream from `start`: writes its entries to `body`, returns
/// how many; `made`: set when the consumer was made for it.
#[allow(clippy::too_many_arguments)]
fn serve(
    s: &mut StreamTxn<'_, '_>,
    g: usize,
    read: &ReadArgs<'_>,
    from: From,
    start: StreamId,
    count: u64,
    now: u64,
    (body, resp3): (&mut Vec<u8>, bool),
    made: &mut bool,
) -> Result<usize, Fail> {
    let group = s.group(g);
    let (c, new) = group.add_consumer(read.consumer, now);
    *made = new;
    group.consumers[c].seen_time = now;
    let consumer = group.consumers[c].id;
    let mut out = Reply::new(body, resp3);
    match from {
        From::History(_) => {
            let mut mine = Vec::new();
            pel::scan(s, g, start, StreamId::MAX, |p| {
                if p.consumer == consumer {
                    mine.push(*p);
                }
                count == 0 || (mine.len() as u64) < count
            })?;
            let ids: Vec<StreamId> = mine.iter().map(|p| p.id).collect();
            pel::load_entries(s, &ids)?;
            for mut p in mine {
                out.array(2);
                out.bulk(&p.id.text());
                match pel::entry_fields(s, p.id)? {
                    Some(fields) => {
                        out.array(fields.len());
                        fields.iter().for_each(|f| out.bulk(f));
                        p.delivery_time = now;
                        p.delivery_count += 1;
                        pel::put(s, g, p)?;
                    }
                    None => out.null_array(),
                }
            }
            Ok(ids.len())
        }
        From::New => {
            let mut ids = Vec::new();
            collect_range(s, start, StreamId::MAX, count, false, |e| {
                reply_entry(&mut out, e);
                ids.push(e.id);
            })?;
            let meta = s.root.meta;
            for &id in &ids {
                advance(&meta, s.group(g), id);
                if !read.noack {
                    pel::put(
                        s,
                        g,
                        Pending {
                            id,
                            delivery_time: now,
                            delivery_count: 1,
                            consumer,
                        },
                    )?;
                }
            }
            Ok(ids.len())
        }
    }
}

pub fn xreadgroup(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let read = parse_read(&args, true)?;
    if timed_out(ctx) {
        ctx.out.null_array();
        return Ok(());
    }
    let rerun = ctx.conn.blocked.is_some();
    let keys = try_read(ctx, &read, rerun)?;
    if !keys.is_empty() {
        if ctx.conn.blocked.is_some() {
            pass_turn(ctx, &read, &keys);
        }
        return Ok(());
    }
    let Some(timeout) = read.block else {
        ctx.out.null_array();
        return Ok(());
    };
    if !may_block(ctx) {
        ctx.out.null_array();
        return Ok(());
    }
    block(ctx, read.keys.iter().copied(), timeout, |ctx| {
        let keys = try_read(ctx, &read, true)?;
        pass_turn(ctx, &read, &keys);
        Ok(!keys.is_empty())
    })
}
