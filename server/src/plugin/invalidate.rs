//! Applying `Invalidation` records a plugin pushes on its reply ring
//! (envelope kind Invalidation, payload a FlatBuffers
//! `citadel.plugin.Invalidation`): each listed key is deleted from the
//! cache. The cache is shared by every thread, so one thread applying a
//! record is enough; plugins push it on any one of their reply rings.

use citadel_cache::CacheHandle;
use citadel_proto::schema::Invalidation;

use super::PluginId;

/// Deletes the keys `payload` lists; returns how many were present.
pub fn apply_invalidation(cache: &mut CacheHandle, plugin: PluginId, payload: &[u8]) -> usize {
    let inv = match flatbuffers::root::<Invalidation>(payload) {
        Ok(inv) => inv,
        Err(e) => {
            tracing::warn!(plugin, "ignoring a malformed Invalidation record: {e}");
            return 0;
        }
    };
    let Some(keys) = inv.keys() else {
        return 0;
    };
    keys.iter()
        .filter_map(|arg| arg.value())
        .filter(|key| cache.delete(key.bytes()))
        .count()
}
