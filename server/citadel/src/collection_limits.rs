//! The collections' (and HyperLogLogs') size limits from the live
//! settings (Redis's names),
//! mirrored into atomics at start-up and after CONFIG SET so a command
//! reads one Relaxed load, never the settings store.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering::Relaxed};

use citadel_collections::list::paged::ListLimit;
use citadel_settings::{server as setting, Store};

/// list-max-listpack-size (Redis's default -2: 8 KiB per node).
static LIST_MAX_LISTPACK_SIZE: AtomicI64 = AtomicI64::new(-2);

/// `hash-max-listpack-entries` and `-value` (Redis 7.0.15's defaults): a
/// hash within both is a listpack there, a bigger one a hash table.
static HASH_MAX_LISTPACK_ENTRIES: AtomicUsize = AtomicUsize::new(512);
static HASH_MAX_LISTPACK_VALUE: AtomicUsize = AtomicUsize::new(64);

/// `hll-sparse-max-bytes` (Redis's default): a sparse HyperLogLog that an
/// update would make longer turns dense.
static HLL_SPARSE_MAX_BYTES: AtomicUsize = AtomicUsize::new(3000);

/// Mirrors the live settings.
pub fn refresh(settings: &Store) {
    let list = settings.get(&setting::LIST_MAX_LISTPACK_SIZE);
    LIST_MAX_LISTPACK_SIZE.store(list, Relaxed);
    let entries = settings.get(&setting::HASH_MAX_LISTPACK_ENTRIES);
    HASH_MAX_LISTPACK_ENTRIES.store(entries, Relaxed);
    let value = settings.get(&setting::HASH_MAX_LISTPACK_VALUE);
    HASH_MAX_LISTPACK_VALUE.store(value, Relaxed);
    let hll = settings.get(&setting::HLL_SPARSE_MAX_BYTES).bytes();
    HLL_SPARSE_MAX_BYTES.store(usize::try_from(hll).unwrap_or(usize::MAX), Relaxed);
    citadel_collections::set::set_intset_max_entries(
        settings.get(&setting::SET_MAX_INTSET_ENTRIES),
    );
    citadel_collections::zset::set_listpack_limits(
        settings.get(&setting::ZSET_MAX_LISTPACK_ENTRIES),
        settings.get(&setting::ZSET_MAX_LISTPACK_VALUE),
    );
    citadel_collections::stream::set_node_limits(
        settings.get(&setting::STREAM_NODE_MAX_ENTRIES),
        settings.get(&setting::STREAM_NODE_MAX_BYTES).bytes(),
    );
}

/// Most fields a hash Redis would keep as a listpack.
pub fn hash_listpack_entries() -> usize {
    HASH_MAX_LISTPACK_ENTRIES.load(Relaxed)
}

/// Longest field or value a hash Redis would keep as a listpack.
pub fn hash_listpack_value() -> usize {
    HASH_MAX_LISTPACK_VALUE.load(Relaxed)
}

/// Longest sparse HyperLogLog (header included).
pub fn hll_sparse_max_bytes() -> usize {
    HLL_SPARSE_MAX_BYTES.load(Relaxed)
}

/// How big a packed list may grow, and how big its pages are once paged.
pub fn list() -> ListLimit {
    ListLimit::from_setting(LIST_MAX_LISTPACK_SIZE.load(Relaxed))
}
