//! Helpers over cache items shared by the commands.

use citadel_cache::{CacheHandle, Changes, ItemRef, Part, PutOptions, ValueKind, WriteError};

use citadel_resp::{num, Reply};

use super::context::Ctx;
use super::error::{CmdError, CmdResult};
use super::set_options::Change;

/// Replies with the item's value as a bulk string (inline: GET's reply).
#[inline]
pub fn reply_value(out: &mut Reply<'_>, item: &ItemRef<'_>) {
    out.bulk_header(item.value_len());
    item.write_value_to(out.buf);
    out.crlf();
}

/// Copies the value's bytes from `start` into `dst`; bytes past the end of
/// the value read as zero (Redis's zero-padded view of a bitmap).
pub fn read_into(item: &ItemRef<'_>, start: usize, dst: &mut [u8]) {
    let mut at = 0;
    for piece in item.value_range(start, dst.len()) {
        piece.copy_to(&mut dst[at..at + piece.len()]);
        at += piece.len();
    }
    dst[at..].fill(0);
}

/// Writes `item`'s value, followed by `extra`, to key `i` of `changes`,
/// keeping its kind (EXPIRE, RENAME and COPY move collections too; only a
/// string is ever extended: APPEND, whose result Redis holds raw).
pub fn put_value(
    changes: &mut Changes,
    i: usize,
    item: &ItemRef<'_>,
    extra: Option<&[u8]>,
    expire_at: Option<u64>,
) -> Result<(), WriteError> {
    let opts = PutOptions {
        expire_at,
        kind: item.kind(),
        raw_string: item.is_raw_string() || extra.is_some(),
        ..PutOptions::default()
    };
    let extra = extra.unwrap_or_default();
    // The old value is copied from the cache straight into the new item.
    match item.contiguous() {
        Some(v) if extra.is_empty() => changes.put_with(i, &[v], opts),
        Some(v) => changes.put_with(i, &[Part::Shared(v), Part::Local(extra)], opts),
        None => {
            // Multi-chunk values are large; one small vector is noise there.
            let mut parts: Vec<Part> = item.chunks().map(Part::Shared).collect();
            parts.push(Part::Local(extra));
            changes.put_with(i, &parts, opts)
        }
    }
}

/// Writes key `i` as a string of `parts` that Redis would hold raw
/// whatever its content (SETRANGE, SETBIT, BITFIELD, BITOP: OBJECT
/// ENCODING then says "raw", as for Redis's unshared string).
pub fn put_raw<'p, P: Into<Part<'p>> + Copy>(
    changes: &mut Changes,
    i: usize,
    parts: &[P],
    expire_at: Option<u64>,
) -> Result<(), WriteError> {
    let opts = PutOptions {
        expire_at,
        raw_string: true,
        ..PutOptions::default()
    };
    changes.put_with(i, parts, opts)
}

/// The value as an integer, if it is one by Redis's strict rules.
pub fn item_i64(item: &ItemRef<'_>) -> Option<i64> {
    // parse_i64 takes at most 20 bytes; a longer value is not an integer.
    item.small_value(&mut [0; 32]).and_then(num::parse_i64)
}

/// Atomically replies with the current value (or null) and applies `change`.
pub fn get_and_change(ctx: &mut Ctx<'_>, key: &[u8], change: Change<'_>) -> CmdResult {
    get_and_change_or(ctx, key, change, None)
}

/// [`get_and_change`] that answers `absent` (not nil) when the key is
/// missing: a GETEX whose key was just loaded, where an invalidation may
/// drop the stored value before the change runs. The read happened (the
/// load is the origin's value), then the key went: nothing to change.
pub fn get_and_change_or(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    change: Change<'_>,
    absent: Option<&[u8]>,
) -> CmdResult {
    let out = &mut ctx.out;
    let mark = out.buf.len();
    ctx.thread.cache.update(&[key], |items, changes| {
        out.buf.truncate(mark);
        let item = string_item(items[0].as_ref())?;
        match (item, absent) {
            (Some(item), _) => reply_value(out, item),
            (None, Some(value)) => out.bulk(value),
            (None, None) => out.null(),
        }
        match (change, item) {
            (Change::Replace(v), _) => changes.put(0, &[v], None)?,
            (_, None) => {}
            (Change::Delete, Some(_)) => changes.delete(0),
            (Change::Expire(None), Some(item)) if item.expire_at().is_none() => {}
            (Change::Expire(at), Some(item)) => put_value(changes, 0, item, None, at)?,
        }
        Ok(())
    })?
}

/// Reads `key` if it holds a string (`f` runs on it, maybe more than once
/// under a concurrent write); WRONGTYPE if it holds a collection.
pub fn get_string<R>(
    cache: &mut CacheHandle,
    key: &[u8],
    mut f: impl FnMut(&ItemRef<'_>) -> R,
) -> Result<Option<R>, CmdError> {
    let read = cache.get(key, |item| {
        (item.kind() == ValueKind::String).then(|| f(item))
    });
    match read {
        None => Ok(None),
        Some(None) => Err(CmdError::WrongType),
        Some(found) => Ok(found),
    }
}

/// The item if it holds a string: string commands on a collection answer
/// WRONGTYPE (SET and the other whole-value writes replace any kind).
pub fn string_item<'i, 'a>(
    item: Option<&'i ItemRef<'a>>,
) -> Result<Option<&'i ItemRef<'a>>, CmdError> {
    match item {
        Some(item) if item.kind() != ValueKind::String => Err(CmdError::WrongType),
        other => Ok(other),
    }
}
