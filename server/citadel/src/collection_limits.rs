//! The collections' size limits from the live settings (Redis's names),
//! mirrored into atomics at start-up and after CONFIG SET so a command
//! reads one Relaxed load, never the settings store.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use citadel_collections::list::paged::ListLimit;
use citadel_settings::{server as setting, Store};

/// list-max-listpack-size (Redis's default -2: 8 KiB per node).
static LIST_MAX_LISTPACK_SIZE: AtomicI64 = AtomicI64::new(-2);

/// Mirrors the live settings.
pub fn refresh(settings: &Store) {
    let list = settings.get(&setting::LIST_MAX_LISTPACK_SIZE);
    LIST_MAX_LISTPACK_SIZE.store(list, Relaxed);
}

/// How big a packed list may grow, and how big its pages are once paged.
pub fn list() -> ListLimit {
    ListLimit::from_setting(LIST_MAX_LISTPACK_SIZE.load(Relaxed))
}
