//! What a finished load writes to the cache, and the stale value a failed
//! one may serve. A load never replaces a fresh value that got there
//! first (a SET that raced it): the waiters get that value instead.

use std::sync::Arc;

use citadel_cache::{CacheHandle, ItemRef, PutOptions};

fn copy(item: &ItemRef<'_>) -> Arc<[u8]> {
    let mut v = Vec::with_capacity(item.value_len());
    item.write_value_to(&mut v);
    v.into()
}

/// A value that is there and fresh at `now_ms` (not a marker, not stale).
fn fresh(item: &ItemRef<'_>, now_ms: u64) -> bool {
    !item.is_negative() && item.soft_expire_at().is_none_or(|t| t > now_ms)
}

/// Writes `value` (or `None`: a negative marker, when `opts` is Some) for
/// `key` unless a fresh value is present; returns what the waiters get.
pub fn put(
    cache: &mut CacheHandle,
    key: &[u8],
    value: Option<&[u8]>,
    opts: Option<PutOptions>,
) -> Option<Arc<[u8]>> {
    let now = cache.now_ms();
    let mut present = None;
    let result = cache.update(&[key], |items, ch| {
        present = items[0].as_ref().filter(|item| fresh(item, now)).map(copy);
        match opts {
            Some(opts) if present.is_none() => ch.put_with(0, &[value.unwrap_or_default()], opts),
            _ => Ok(()),
        }
    });
    match result {
        Ok(Err(e)) | Err(e) => {
            tracing::warn!(key = %String::from_utf8_lossy(key), "storing a loaded value: {e}")
        }
        Ok(Ok(())) => {}
    }
    present.or_else(|| value.map(Arc::from))
}

/// A value still held for `key` (stale within its window, or fresh).
pub fn stale(cache: &mut CacheHandle, key: &[u8]) -> Option<Arc<[u8]>> {
    cache
        .get_any(key, |item| (!item.is_negative()).then(|| copy(item)))
        .flatten()
}

/// Drops `key`, negative marker included (an invalidation).
pub fn drop_key(cache: &mut CacheHandle, key: &[u8]) {
    let _ = cache.update(&[key], |_, ch| ch.delete(0));
}
