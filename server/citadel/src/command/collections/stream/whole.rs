//! A stream read whole and written whole (DUMP, RESTORE and a cluster
//! hand-off): its root and every page in one update, as the plain
//! values of `citadel_collections::stream::whole`.

use std::ops::Range;

use citadel_cache::{CacheHandle, Changes, ValueKind};
use citadel_collections::stream::WholeStream;

use super::super::paged::{update_paged_fresh, PagePlan, Step};
use super::super::value::plan_whole;
use super::super::whole::write_built;
use crate::command::error::CmdError;

/// `key`'s stream with its pages and groups, read atomically; None when
/// the key is missing, WRONGTYPE when it holds another kind.
pub fn read_stream(cache: &mut CacheHandle, key: &[u8]) -> Result<Option<WholeStream>, CmdError> {
    update_paged_fresh(cache, &[key], plan_whole, |items, _, plan| {
        let Some(item) = &items[0] else {
            return Ok(Step::Done(None));
        };
        if item.kind() != ValueKind::Stream {
            return Err(CmdError::WrongType);
        }
        let root = plan.root(0).ok_or(CmdError::CorruptValue)?;
        let whole = WholeStream::read(root, |page, buf| {
            let item = plan.item(0, page).and_then(|at| items[at].as_ref());
            item.map(|item| item.write_value_to(buf)).is_some()
        })?;
        Ok(Step::Done(Some(whole)))
    })
}

/// Stores user key `i` as the stream `whole` (a root and fresh pages)
/// expiring at `expire_at`. Returns the fresh pages it needs first (then
/// nothing was written: return `Step::Fresh`); even a stream of no pages
/// takes a fresh generation, so no page of an earlier value can be
/// mistaken for its own.
pub fn store_stream(
    changes: &mut Changes,
    plan: &PagePlan,
    i: usize,
    whole: &WholeStream,
    expire_at: Option<u64>,
) -> Result<Option<Range<u64>>, CmdError> {
    let pages = 0..whole.page_count()?;
    match plan.fresh(i) {
        Some((generation, granted)) if granted == pages => {
            let built = whole.build(generation)?;
            write_built(changes, plan, i, ValueKind::Stream, &built, expire_at)?;
            Ok(None)
        }
        _ => Ok(Some(pages)),
    }
}
