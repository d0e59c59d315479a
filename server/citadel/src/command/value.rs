//! Helpers over cache items shared by the commands.

use citadel_cache::{Changes, ItemRef, WriteError};

use citadel_resp::{num, Reply};

/// Replies with the item's value as a bulk string.
pub fn reply_value(out: &mut Reply<'_>, item: &ItemRef<'_>) {
    out.bulk_header(item.value_len());
    match item.contiguous() {
        Some(v) => out.buf.extend_from_slice(v),
        None => item.chunks().for_each(|c| out.buf.extend_from_slice(c)),
    }
    out.crlf();
}

/// Writes `item`'s value, followed by `extra`, to key `i` of `changes`.
pub fn put_value(
    changes: &mut Changes,
    i: usize,
    item: &ItemRef<'_>,
    extra: &[u8],
    expire_at: Option<u64>,
) -> Result<(), WriteError> {
    match item.contiguous() {
        Some(v) if extra.is_empty() => changes.put(i, &[v], expire_at),
        Some(v) => changes.put(i, &[v, extra], expire_at),
        None => {
            // Multi-chunk values are large; one small vector is noise there.
            let mut parts: Vec<&[u8]> = item.chunks().collect();
            parts.push(extra);
            changes.put(i, &parts, expire_at)
        }
    }
}

/// The value as an integer, if it is one by Redis's strict rules.
pub fn item_i64(item: &ItemRef<'_>) -> Option<i64> {
    item.contiguous().and_then(num::parse_i64)
}
