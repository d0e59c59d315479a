//! Applying `Invalidation` records a plugin pushes on its reply ring
//! (envelope kind Invalidation, payload a FlatBuffers
//! `citadel.plugin.Invalidation`): each listed key is deleted from the
//! cache. The cache is shared by every thread, so one thread applying a
//! record is enough; plugins push it on any one of their reply rings.
//! Read-through (`readthrough::ThreadLoads::invalidate`) applies them and
//! also marks the keys' loads in flight.

use super::PluginId;

/// Calls `on_resync` if the record says changes may have been missed, and
/// `on_key` for each key it lists; returns how many keys it listed.
pub fn for_each_invalidated(
    plugin: PluginId,
    payload: &[u8],
    on_resync: impl FnOnce(),
    mut on_key: impl FnMut(&[u8]),
) -> usize {
    let inv = match citadel_proto::load::decode_invalidation(payload) {
        Ok(inv) => inv,
        Err(e) => {
            tracing::warn!(plugin, "ignoring a malformed Invalidation record: {e}");
            return 0;
        }
    };
    if inv.resync {
        on_resync();
    }
    let mut n = 0;
    for key in inv.keys() {
        on_key(key);
        n += 1;
    }
    n
}
