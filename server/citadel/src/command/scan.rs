//! Keyspace iteration: SCAN (MATCH COUNT TYPE), KEYS, RANDOMKEY.

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use crate::glob::glob_match;
use citadel_cache::ValueKind;

const KINDS: [ValueKind; 6] = [
    ValueKind::String,
    ValueKind::Hash,
    ValueKind::List,
    ValueKind::Set,
    ValueKind::ZSet,
    ValueKind::Stream,
];

pub(crate) struct ScanOpts<'a> {
    pub pattern: Option<&'a [u8]>,
    pub count: usize,
    /// SCAN TYPE: None for any type; Some(None) for a name that is no
    /// type (nothing matches, as in Redis 7.0).
    kind: Option<Option<ValueKind>>,
}

/// MATCH, COUNT and (for SCAN: `with_type`) TYPE options.
pub(crate) fn parse_opts(opts: Args<'_>, with_type: bool) -> Result<ScanOpts<'_>, CmdError> {
    let mut o = ScanOpts {
        pattern: None,
        count: 10,
        kind: None,
    };
    let mut i = 0;
    while i < opts.len() {
        if i + 1 >= opts.len() {
            return Err(CmdError::Syntax);
        }
        if opts.is(i, "count") {
            let n = opts.int(i + 1)?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            o.count = n as usize;
        } else if opts.is(i, "match") {
            let p = opts.get(i + 1);
            o.pattern = (p != b"*").then_some(p);
        } else if with_type && opts.is(i, "type") {
            let name = opts.get(i + 1);
            o.kind = Some(
                KINDS
                    .into_iter()
                    .find(|k| name.eq_ignore_ascii_case(k.type_name().as_bytes())),
            );
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(o)
}

/// SSCAN's (and HSCAN's, ZSCAN's) MATCH pattern (None: everything) and COUNT.
pub(crate) fn parse_member_scan_opts(opts: Args<'_>) -> Result<(Option<&[u8]>, usize), CmdError> {
    let o = parse_opts(opts, false)?;
    Ok((o.pattern, o.count))
}

/// Visits from `cursor`, collecting matching keys into the connection's
/// scratch buffers; returns the next cursor.
fn collect(
    ctx: &mut Ctx<'_>,
    cursor: u64,
    count: usize,
    pattern: Option<&[u8]>,
    kind: Option<Option<ValueKind>>,
) -> u64 {
    let (buf, spans) = (&mut ctx.conn.scratch, &mut ctx.conn.scratch_spans);
    ctx.thread.cache.scan(cursor, count, |item| {
        if kind.is_some_and(|k| k != Some(item.kind())) {
            return;
        }
        let start = buf.len();
        item.key().append_to(buf);
        if pattern.is_none_or(|p| glob_match(p, &buf[start..])) {
            spans.push(start..buf.len());
        } else {
            buf.truncate(start);
        }
    })
}

pub(super) fn reply_collected(ctx: &mut Ctx<'_>) {
    ctx.out.array(ctx.conn.scratch_spans.len());
    for span in ctx.conn.scratch_spans.drain(..) {
        ctx.out.bulk(&ctx.conn.scratch[span]);
    }
    ctx.conn.scratch.clear();
    if ctx.conn.scratch.capacity() > 1 << 20 {
        // Do not keep a huge KEYS result's buffer for the connection's life.
        ctx.conn.scratch = Vec::new();
        ctx.conn.scratch_spans = Vec::new();
    }
}

fn clear_scratch(ctx: &mut Ctx<'_>) {
    ctx.conn.scratch.clear();
    ctx.conn.scratch_spans.clear();
}

/// A SCAN-family cursor read as Redis's `strtoul`: an optional sign ("-1"
/// wraps to the largest cursor), digits; "" is cursor 0.
pub(crate) fn parse_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    let (negative, digits) = match arg.split_first() {
        None => return Ok(0),
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        Some(_) => (false, arg),
    };
    let value = std::str::from_utf8(digits)
        .ok()
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u64>().ok())
        .ok_or(CmdError::Cursor)?;
    Ok(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

pub fn scan(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let cursor = parse_cursor(args.get(1))?;
    let opts = parse_opts(args.from(2), true)?;
    clear_scratch(ctx);
    let next = collect(ctx, cursor, opts.count, opts.pattern, opts.kind);
    ctx.out.array(2);
    ctx.out.bulk_u64(next);
    reply_collected(ctx);
    Ok(())
}

pub fn keys(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let pattern = Some(args.get(1)).filter(|p| *p != b"*");
    clear_scratch(ctx);
    let mut cursor = 0;
    loop {
        cursor = collect(ctx, cursor, 1024, pattern, None);
        if cursor == 0 {
            break;
        }
    }
    reply_collected(ctx);
    Ok(())
}

pub fn randomkey(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    clear_scratch(ctx);
    if ctx.thread.cache.random_key(&mut ctx.conn.scratch) {
        ctx.out.bulk(&ctx.conn.scratch);
    } else {
        ctx.out.null();
    }
    clear_scratch(ctx);
    Ok(())
}
