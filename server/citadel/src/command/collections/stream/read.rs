//! XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]:
//! every named stream read in one update. A blocked XREAD parks like
//! BLPOP (`command::blocking`) and runs again when a key is written; its
//! first run's IDs (`$` resolved then) are kept with the client. Unlike a
//! pop, a read takes nothing: every blocked reader of a key may be served.

use citadel_collections::stream::{StreamId, StreamRoot};
use citadel_resp::Reply;

use super::super::paged::{update_paged_fresh, PagePlan, Step};
use super::args::strict_id;
use super::edit::{retry, StreamTxn};
use super::range::{collect_range, plan_range, reply_entry};
use crate::command::args::Args;
use crate::command::blocking::{block, may_block, served, timed_out};
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// XREAD's and XREADGROUP's options (Redis's one `xreadCommand` parse).
pub(super) struct ReadArgs<'a> {
    /// XREADGROUP's GROUP group consumer (empty for XREAD).
    pub(super) group: &'a [u8],
    pub(super) consumer: &'a [u8],
    pub(super) count: u64,
    /// BLOCK's timeout (None: no BLOCK; Some(None): forever).
    pub(super) block: Option<Option<u64>>,
    pub(super) noack: bool,
    pub(super) keys: Vec<&'a [u8]>,
    pub(super) ids: Vec<&'a [u8]>,
}

/// Parses XREAD's (`grouped` false) or XREADGROUP's arguments, with
/// Redis's errors for an option of the other command.
pub(super) fn parse_read<'a>(args: &Args<'a>, grouped: bool) -> Result<ReadArgs<'a>, CmdError> {
    let mut read = ReadArgs {
        group: b"",
        consumer: b"",
        count: 0,
        block: None,
        noack: false,
        keys: Vec::new(),
        ids: Vec::new(),
    };
    let mut has_group = false;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        if args.is(i, "block") && more > 0 {
            i += 1;
            let ms = citadel_resp::num::parse_i64(args.get(i)).ok_or(CmdError::Static(
                "ERR timeout is not an integer or out of range",
            ))?;
            if ms < 0 {
                return Err(CmdError::Static("ERR timeout is negative"));
            }
            read.block = Some((ms > 0).then_some(ms as u64));
        } else if args.is(i, "count") && more > 0 {
            i += 1;
            let n = citadel_resp::num::parse_i64(args.get(i)).ok_or(CmdError::NotInteger)?;
            read.count = n.max(0) as u64;
        } else if args.is(i, "streams") && more > 0 {
            let rest = args.len() - i - 1;
            if !rest.is_multiple_of(2) {
                return Err(CmdError::Static(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            let n = rest / 2;
            read.keys = (i + 1..i + 1 + n).map(|k| args.get(k)).collect();
            read.ids = (i + 1 + n..args.len()).map(|k| args.get(k)).collect();
            if grouped && !has_group {
                return Err(CmdError::Static("ERR Missing GROUP option for XREADGROUP"));
            }
            return Ok(read);
        } else if args.is(i, "group") && more >= 2 {
            if !grouped {
                return Err(CmdError::Static(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            has_group = true;
            read.group = args.get(i + 1);
            read.consumer = args.get(i + 2);
            i += 2;
        } else if args.is(i, "noack") {
            if !grouped {
                return Err(CmdError::Static(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            read.noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    Err(CmdError::Syntax)
}

/// The ID `arg` names in `root` (`$`: its last ID; `+`: just before its
/// last entry, as Redis 7.4 reads it).
fn resolve(arg: &[u8], root: Option<&StreamRoot>) -> Result<StreamId, CmdError> {
    match arg {
        b"$" => Ok(root.map_or(StreamId::MIN, |r| r.meta.last_id)),
        b"+" => Ok(root
            .and_then(|r| r.last_valid())
            .and_then(StreamId::prev)
            .unwrap_or(StreamId::MIN)),
        _ => strict_id(arg, 0),
    }
}

/// Reads every stream past its ID; replies and returns true when one had
/// something. Returns the IDs used (resolved on the first run).
fn try_read(
    ctx: &mut Ctx<'_>,
    read: &ReadArgs<'_>,
    resolved: Option<&[StreamId]>,
) -> Result<(bool, Vec<StreamId>), CmdError> {
    let plan = |user: usize, root: &[u8], plan: &mut PagePlan| {
        let parsed = StreamRoot::parse(root).ok();
        let id = match resolved {
            Some(ids) => Some(ids[user]),
            None => resolve(read.ids[user], parsed.as_ref()).ok(),
        };
        if let Some(from) = id.and_then(StreamId::next) {
            plan_range(root, user, plan, from, StreamId::MAX, read.count, false);
        }
        Ok(())
    };
    let resp3 = ctx.out.resp3;
    // Once blocked, a key that now holds another type is passed over: the
    // client stays blocked, as Redis serves a woken XREAD from streams
    // only (the first run answers WRONGTYPE).
    let rerun = ctx.conn.blocked.is_some();
    let mut reply = Vec::new();
    let (served_keys, ids) =
        update_paged_fresh(&mut ctx.thread.cache, &read.keys, plan, |items, _, plan| {
            reply.clear();
            let mut streams = Vec::with_capacity(read.keys.len());
            let mut ids = Vec::with_capacity(read.keys.len());
            for (i, arg) in read.ids.iter().enumerate() {
                let s = match StreamTxn::open(items, plan, i) {
                    Err(CmdError::WrongType) if rerun => None,
                    opened => opened?,
                };
                ids.push(match resolved {
                    Some(r) => r[i],
                    None => resolve(arg, s.as_ref().map(|s| &s.root))?,
                });
                streams.push(s);
            }
            let mut out = Reply::new(&mut reply, resp3);
            let mut n = 0;
            for (i, s) in streams.iter_mut().enumerate() {
                let Some(s) = s else { continue };
                let Some(from) = ids[i].next() else { continue };
                if s.root.last_valid().is_none_or(|last| last < from) {
                    continue;
                }
                if !resp3 {
                    out.array(2);
                }
                out.bulk(read.keys[i]);
                let mut entries = Vec::new();
                let mut inner = Reply::new(&mut entries, resp3);
                let count = match collect_range(s, from, StreamId::MAX, read.count, false, |e| {
                    reply_entry(&mut inner, e)
                }) {
                    Ok(count) => count,
                    Err(fail) => return retry(fail),
                };
                out.array(count as usize);
                out.buf.extend_from_slice(&entries);
                n += 1;
            }
            Ok(Step::Done((n, ids)))
        })?;
    if served_keys == 0 {
        return Ok((false, ids));
    }
    // RESP2: an array of [key, entries] pairs; RESP3: a map.
    if ctx.out.resp3 {
        ctx.out.map(served_keys);
    } else {
        ctx.out.array(served_keys);
    }
    ctx.out.buf.extend_from_slice(&reply);
    Ok((true, ids))
}

pub fn xread(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let read = parse_read(&args, false)?;
    if timed_out(ctx) {
        ctx.out.null_array();
        return Ok(());
    }
    let resolved: Option<Vec<StreamId>> = ctx
        .conn
        .blocked
        .as_ref()
        .and_then(|b| b.stream_ids())
        .map(<[StreamId]>::to_vec);
    let (done, ids) = try_read(ctx, &read, resolved.as_deref())?;
    if done {
        if ctx.conn.blocked.is_some() {
            served(ctx, read.keys[0], false);
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
    let first_run = ctx.conn.blocked.is_none();
    block(ctx, read.keys.iter().copied(), timeout, |ctx| {
        let (done, _) = try_read(ctx, &read, Some(&ids))?;
        if done {
            served(ctx, read.keys[0], false);
        }
        Ok(done)
    })?;
    if first_run {
        if let Some(b) = ctx.conn.blocked.as_mut() {
            b.set_stream_ids(ids.into_boxed_slice());
        }
    }
    Ok(())
}
