//! Commands on parts of a string: APPEND STRLEN GETRANGE SETRANGE.

use super::args::Args;
use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use super::value::{get_string, put_raw, put_value, string_item};
use citadel_cache::{Changes, ItemRef, Part, WriteError};
use citadel_resp::Reply;

/// Redis's checkStringLength against the cache's largest value.
fn check_len(ctx: &Ctx<'_>, offset: u64, add: u64) -> Result<(), CmdError> {
    match offset.checked_add(add) {
        Some(total) if total <= ctx.state.cache.max_value_size() => Ok(()),
        _ => Err(CmdError::StringTooLong),
    }
}

pub fn append(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let value = args.get(2);
    let max = ctx.state.cache.max_value_size();
    let len = ctx.thread.cache.update(&[args.get(1)], |items, changes| {
        let Some(item) = string_item(items[0].as_ref())? else {
            changes.put(0, &[value], None)?;
            return Ok(value.len());
        };
        let total = item.value_len() + value.len();
        if total as u64 > max {
            return Err(CmdError::StringTooLong);
        }
        put_value(changes, 0, item, Some(value), item.expire_at())?;
        Ok(total)
    })??;
    ctx.out.int(len as i64);
    Ok(())
}

pub fn strlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let len = get_string(&mut ctx.thread.cache, args.get(1), |item| item.value_len())?;
    ctx.out.int(len.unwrap_or(0) as i64);
    Ok(())
}

/// Redis's GETRANGE index arithmetic: the byte range to return, if any.
fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return None;
    }
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 {
        (len + end).max(0)
    } else {
        end.min(len - 1)
    };
    (start <= end).then_some((start as usize, (end - start + 1) as usize))
}

/// Replies with `len` bytes of the value from `start`, across chunks.
fn reply_range(out: &mut Reply<'_>, item: &citadel_cache::ItemRef<'_>, start: usize, len: usize) {
    out.bulk_header(len);
    for piece in item.value_range(start, len) {
        piece.append_to(out.buf);
    }
    out.crlf();
}

pub fn getrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (start, end) = (args.int(2)?, args.int(3)?);
    let out = &mut ctx.out;
    let mark = out.buf.len();
    let found = get_string(&mut ctx.thread.cache, args.get(1), |item| {
        out.buf.truncate(mark);
        match clamp_range(start, end, item.value_len()) {
            Some((from, len)) => reply_range(out, item, from, len),
            None => out.bulk(b""),
        }
    })?;
    if found.is_none() {
        out.buf.truncate(mark);
        out.bulk(b"");
    }
    Ok(())
}

pub fn setrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let offset = args.int(2)?;
    if offset < 0 {
        return Err(CmdError::Offset);
    }
    let offset = offset as usize;
    let value = args.get(3);
    check_len(ctx, offset as u64, value.len() as u64).or_else(|e| {
        // An empty write never grows the string, so it cannot be too long.
        if value.is_empty() {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    let len = ctx.thread.cache.update(&[args.get(1)], |items, changes| {
        let item = string_item(items[0].as_ref())?;
        let old_len = item.map_or(0, |i| i.value_len());
        if value.is_empty() {
            return Ok(old_len);
        }
        overwrite(changes, item, offset, value)?;
        Ok::<_, CmdError>(old_len.max(offset + value.len()))
    })??;
    ctx.out.int(len as i64);
    Ok(())
}

/// Writes key 0 as `item`'s value (or nothing) with `value` written at
/// `offset`, zero-padded up to it, keeping the expiry (SETRANGE, SETBIT),
/// raw as Redis holds such a string.
/// The kept head and tail are copied from the cache straight into the new
/// item.
pub(super) fn overwrite(
    changes: &mut Changes,
    item: Option<&ItemRef<'_>>,
    offset: usize,
    value: &[u8],
) -> Result<(), WriteError> {
    let old_len = item.map_or(0, |i| i.value_len());
    let zeros = vec![0u8; offset.saturating_sub(old_len)];
    let (end, expire) = (offset + value.len(), item.and_then(|i| i.expire_at()));
    match item {
        Some(item) if item.contiguous().is_none() => {
            // Multi-chunk values: one piece per chunk; a small vector is noise.
            let mut parts: Vec<Part> = item.value_range(0, offset).map(Part::Shared).collect();
            parts.extend([Part::Local(&zeros), Part::Local(value)]);
            parts.extend(
                item.value_range(end, old_len.saturating_sub(end))
                    .map(Part::Shared),
            );
            put_raw(changes, 0, &parts, expire)
        }
        item => {
            let old = item.and_then(|i| i.contiguous());
            let slice = |r: std::ops::Range<usize>| {
                old.and_then(|o| o.get(r))
                    .map_or(Part::Local(&[]), Part::Shared)
            };
            let (head, tail) = (
                slice(0..offset.min(old_len)),
                slice(end.min(old_len)..old_len),
            );
            let parts = [head, Part::Local(&zeros), Part::Local(value), tail];
            put_raw(changes, 0, &parts, expire)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clamp_range;

    #[test]
    fn getrange_arithmetic() {
        assert_eq!(clamp_range(0, 3, 10), Some((0, 4)));
        assert_eq!(clamp_range(-3, -1, 10), Some((7, 3)));
        assert_eq!(clamp_range(0, -1, 10), Some((0, 10)));
        assert_eq!(clamp_range(10, 100, 20), Some((10, 10)));
        assert_eq!(clamp_range(5, 3, 10), None);
        assert_eq!(clamp_range(-1, -5, 10), None);
        assert_eq!(clamp_range(0, 0, 0), None);
        assert_eq!(clamp_range(-100, 100, 5), Some((0, 5)));
        assert_eq!(clamp_range(100, 200, 5), None);
    }
}
