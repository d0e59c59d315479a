//! A read of a paged hash or set without an update (HGET, HMGET,
//! HEXISTS, HSTRLEN, SISMEMBER, SMISMEMBER, HRANDFIELD, SRANDMEMBER ...):
//! the pages it needs are copied without locks (`CacheHandle::peek`;
//! inside a transaction, its view), the read runs over them, and its
//! answer stands when the key still holds the root it planned from
//! afterwards (`paged::still_root`). Every write of a paged value writes a
//! new root and locks all its homes before it stores anything, so a page
//! copied from a newer version means the root's home was locked first,
//! and the root read after the copies shows that version: the copies were
//! the root's pages. Otherwise (or on any error) the caller reads in an
//! update, as before, which also answers the errors.

use citadel_cache::owned::{owner_generation, page_key};
use citadel_cache::CacheHandle;
use citadel_collections::linear_hash::{Root, Table};

use super::super::paged::still_root;
use super::super::shape::Shape;
use super::table;
use crate::command::error::CmdError;

/// Runs `paged` over copies of the pages `plan_pages` names from `root`,
/// the paged root of `key` as read: its answer, or None (read it in an
/// update).
pub(super) fn read_unlocked<R>(
    cache: &mut CacheHandle,
    key: &[u8],
    shape: Shape,
    root: &[u8],
    plan_pages: &mut impl FnMut(&Root) -> Vec<u64>,
    paged: &mut impl FnMut(&Table<'_>) -> Result<R, CmdError>,
) -> Option<R> {
    let parsed = Root::parse(root).ok()?;
    let generation = owner_generation(root)?;
    let mut page_key_buf = Vec::new();
    let mut copy = |page: u64| {
        page_key(key, generation, page, &mut page_key_buf);
        let bytes = cache.peek(&page_key_buf, |item| {
            let mut value = Vec::new();
            item.write_value_to(&mut value);
            value
        });
        (page, bytes)
    };
    let pages: Vec<(u64, Option<Vec<u8>>)> =
        plan_pages(&parsed).into_iter().map(&mut copy).collect();
    let result = paged(&table(root, shape, &pages).ok()?).ok()?;
    still_root(cache, key, root).then_some(result)
}
