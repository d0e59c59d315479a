//! Redis's small encodings of a hash, set or sorted set (listpack, intset)
//! and the mark a packed value carries once it left them
//! (`ENCODING_PACKED_BIG`). Redis converts a collection to its big
//! encoding (hashtable, skiplist) when it grows past the limits and never
//! back, so a write marks the value when it was marked before or when its
//! content is past the limits now, and OBJECT ENCODING reads the mark.
//! A value written whole (RESTORE, the STORE commands) has no past: its
//! content decides, as Redis builds such a value afresh.

use citadel_cache::ValueKind;
use citadel_collections::packed::{is_packed_big, ENCODING_PACKED, ENCODING_PACKED_BIG};
use citadel_collections::{set, zset, Corrupt, HashView, Packed};

use crate::collection_limits;

/// Whether Redis would hold a hash of these fields and values as a
/// listpack (`hash-max-listpack-entries`, `hash-max-listpack-value`).
pub fn hash_fits(hash: &HashView<'_>) -> Result<bool, Corrupt> {
    let max_value = collection_limits::hash_listpack_value();
    if hash.len() > collection_limits::hash_listpack_entries() {
        return Ok(false);
    }
    // (No element is longer than all of them: most small hashes need no
    // walk.)
    if hash.body_len() <= max_value {
        return Ok(true);
    }
    for pair in hash.pairs() {
        let (field, value) = pair?;
        if field.len() > max_value || value.len() > max_value {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether Redis would hold a `kind` collection of this content in its
/// small encoding (a list or another kind: true, nothing to mark).
pub fn fits(kind: ValueKind, packed: Packed<'_>) -> Result<bool, Corrupt> {
    match kind {
        ValueKind::Hash => hash_fits(&HashView::new(packed)?),
        ValueKind::Set => {
            if packed.len() > set::intset_max_entries() {
                return Ok(false);
            }
            for member in packed.iter() {
                if !set::is_int(member?) {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        ValueKind::ZSet => {
            if packed.len() / 2 > zset::listpack_entries() {
                return Ok(false);
            }
            let max_value = zset::listpack_value();
            if packed.body_len() <= max_value {
                return Ok(true);
            }
            // Members and scores alternate: every other element is a member.
            for member in packed.iter().step_by(2) {
                if member?.len() > max_value {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        _ => Ok(true),
    }
}

/// Whether a `kind` collection is marked for its big encoding.
fn marks(kind: ValueKind) -> bool {
    matches!(kind, ValueKind::Hash | ValueKind::Set | ValueKind::ZSet)
}

/// The encoding byte to store `value` (a `kind` value about to be
/// written) with instead of its own: big when it is a packed hash, set or
/// sorted set that was big before (`was_big`) or whose content is past
/// the limits now. None: its own byte is right (marked already, not
/// past them, or not such a value: a paged root, a list).
pub fn restamp(kind: ValueKind, value: &[u8], was_big: bool) -> Result<Option<u8>, Corrupt> {
    match value.first() {
        Some(&ENCODING_PACKED) if marks(kind) => {
            let big = was_big || !fits(kind, Packed::parse(value)?)?;
            Ok(big.then_some(ENCODING_PACKED_BIG))
        }
        _ => Ok(None),
    }
}

/// Marks `value` (a packed `kind` value about to be stored) big when it
/// was big before (`was_big`) or its content is past the limits now.
pub fn mark(kind: ValueKind, value: &mut [u8], was_big: bool) -> Result<(), Corrupt> {
    if let Some(byte) = restamp(kind, value, was_big)? {
        value[0] = byte;
    }
    Ok(())
}

/// Whether a stored value (as read) is marked big.
pub fn is_big(value: &[u8]) -> bool {
    is_packed_big(value)
}
